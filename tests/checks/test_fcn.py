"""The FCN exercise checks accept the reference answers and explain stubs and typical mistakes."""

import pytest
import torch
from torch import nn

import seglib.checks
from seglib.checks import CheckFailed
from seglib.checks.fcn import check_confusion_matrix, check_linear_to_conv, check_upsampler_padding
from seglib.metrics import confusion_matrix
from seglib.models.fcn import conv_from_linear

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


# --------------------------------------------------------------------------- tests


def test_exported_from_checks():
    assert seglib.checks.check_linear_to_conv is check_linear_to_conv
    assert seglib.checks.check_upsampler_padding is check_upsampler_padding
    assert seglib.checks.check_confusion_matrix is check_confusion_matrix


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


def test_upsampler_padding_accepts_the_rule_and_explains_mistakes(capsys):
    check_upsampler_padding(lambda factor: factor // 2)
    assert "upsampler_padding: factors 1-8" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"upsampler_padding\(2\) = 0: kernel 4, stride 2 maps 1 cells to 4.*padding crops"):
        check_upsampler_padding(lambda factor: 0)
    with pytest.raises(CheckFailed, match=r"2p = k - factor"):
        check_upsampler_padding(lambda factor: factor - factor % 2)
    with pytest.raises(CheckFailed, match=r"return an int"):
        check_upsampler_padding(lambda factor: factor / 2)


def test_confusion_matrix_accepts_seglib_and_explains_mistakes(capsys):
    check_confusion_matrix(confusion_matrix)
    assert "confusion_matrix: 3 cases" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"transpose of the expected one"):
        check_confusion_matrix(lambda pred, target, c: confusion_matrix(pred, target, c).T)
    with pytest.raises(CheckFailed, match=r"ignored pixels \(target 255\) were counted"):
        check_confusion_matrix(lambda pred, target, c: confusion_matrix(pred, target.clamp(max=c - 1), c, None))
