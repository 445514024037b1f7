"""The FCN exercise checks accept the reference answers and explain stubs and typical mistakes."""

import pytest
import torch
from torch import nn

import seglib.checks
from seglib.checks import CheckFailed
from seglib.checks.fcn import check_bilinear_kernel, check_linear_to_conv
from seglib.models.fcn import bilinear_kernel, conv_from_linear

# --------------------------------------------------------------------------- student versions


def linear_to_conv(linear, in_channels, kernel_size):
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size, bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.view(linear.out_features, in_channels, kernel_size, kernel_size))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def linear_to_conv_channels_last(linear, in_channels, kernel_size):
    conv = linear_to_conv(linear, in_channels, kernel_size)
    with torch.no_grad():
        weight = linear.weight.view(linear.out_features, kernel_size, kernel_size, in_channels)
        conv.weight.copy_(weight.permute(0, 3, 1, 2))
    return conv


def linear_to_conv_without_bias(linear, in_channels, kernel_size):
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size, bias=False)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.view(linear.out_features, in_channels, kernel_size, kernel_size))
    return conv


def linear_to_conv_stub(linear, in_channels, kernel_size):
    raise NotImplementedError


def tent_kernel(factor):
    size = 2 * factor - factor % 2
    centre = (size - 1) / 2
    tent = 1 - (torch.arange(size) - centre).abs() / factor
    return tent[:, None] * tent[None, :]


def tent_kernel_centre_k_half(factor):
    size = 2 * factor - factor % 2
    tent = (1 - (torch.arange(size) - size / 2).abs() / factor).clamp_min(0)
    return tent[:, None] * tent[None, :]


# --------------------------------------------------------------------------- tests


def test_exported_from_checks():
    assert seglib.checks.check_linear_to_conv is check_linear_to_conv
    assert seglib.checks.check_bilinear_kernel is check_bilinear_kernel


@pytest.mark.parametrize("answer", [linear_to_conv, conv_from_linear])
def test_linear_to_conv_accepts_correct_answers(answer, capsys):
    check_linear_to_conv(answer)
    assert "linear_to_conv" in capsys.readouterr().out


@pytest.mark.parametrize("answer, message", [
    (linear_to_conv_channels_last, "weight.view\\(out, C, k, k\\)"),
    (linear_to_conv_without_bias, "bias is missing"),
    (linear_to_conv_stub, "not implemented yet"),
    (lambda linear, c, k: linear, "differ|shape"),
    (lambda linear, c, k: 3, "return an nn.Module"),
])
def test_linear_to_conv_explains_mistakes(answer, message):
    with pytest.raises(CheckFailed, match=message):
        check_linear_to_conv(answer)


@pytest.mark.parametrize("answer", [tent_kernel, bilinear_kernel])
def test_bilinear_kernel_accepts_correct_answers(answer, capsys):
    check_bilinear_kernel(answer)
    assert "bilinear_kernel" in capsys.readouterr().out


@pytest.mark.parametrize("answer, message", [
    (tent_kernel_centre_k_half, r"\(k-1\)/2"),
    (lambda f: tent_kernel(f)[:-1], "must be \\(k, k\\)"),
    (lambda f: tent_kernel(f) * 2, "differs from F.interpolate"),
    (lambda f: tent_kernel(f).tolist(), "return a torch.Tensor"),
])
def test_bilinear_kernel_explains_mistakes(answer, message):
    with pytest.raises(CheckFailed, match=message):
        check_bilinear_kernel(answer)
