"""The checks of notebook 03's exercises accept the reference and explain typical mistakes."""

import pytest
import torch
from torch import nn

from seglib.checks import CheckFailed, check_decoder_block, check_receptive_field
from seglib.checks.unet import RECEPTIVE_FIELD_CASES, dilated_stack
from seglib.ops.receptive_field import empirical_receptive_field
from seglib.ops.receptive_field import receptive_field
from seglib.models.unet import center_crop


class Block(nn.Module):
    """A correct decoder block, written as a student would."""

    concat_skip_first = True
    crop = True

    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv1 = nn.Conv2d(skip_channels + out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x, skip):
        x = self.up(x)
        if self.crop:
            skip = center_crop(skip, *x.shape[-2:])
        x = torch.cat([skip, x] if self.concat_skip_first else [x, skip], dim=1)
        x = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(x)))


class SwappedConcat(Block):
    concat_skip_first = False


class NoCrop(Block):
    crop = False


class NoBatchNorm(Block):
    def forward(self, x, skip):
        x = torch.cat([center_crop(skip, 2 * x.shape[-2], 2 * x.shape[-1]), self.up(x)], dim=1)
        return torch.relu(self.conv2(torch.relu(self.conv1(x))))


class BiasedConvs(Block):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__(in_channels, skip_channels, out_channels)
        self.conv1 = nn.Conv2d(skip_channels + out_channels, out_channels, 3, padding=1)


class Unfinished(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        raise NotImplementedError


def test_decoder_block_reference_passes(capsys):
    check_decoder_block(Block)
    assert "\u2714" in capsys.readouterr().out


@pytest.mark.parametrize("student,message", [
    (SwappedConcat, "concatenate the skip first"),
    (NoCrop, "centre-crop"),
    (NoBatchNorm, "values differ"),
    (BiasedConvs, "bias=False"),
    (Unfinished, "not implemented yet"),
])
def test_decoder_block_mistakes(student, message):
    with pytest.raises(CheckFailed, match=message):
        check_decoder_block(student)


def receptive_field_solution(kernel_sizes, dilations):
    return 1 + sum((k - 1) * d for k, d in zip(kernel_sizes, dilations))


def test_receptive_field_reference_passes(capsys):
    check_receptive_field(receptive_field_solution)
    assert "31 pixels" in capsys.readouterr().out


@pytest.mark.parametrize("student,message", [
    (lambda ks, ds: 1 + sum(k - 1 for k in ks), "ignored the dilation"),
    (lambda ks, ds: sum((k - 1) * d for k, d in zip(ks, ds)), r"'\+ 1'"),
    (lambda ks, ds: float(receptive_field_solution(ks, ds)), "must return an int"),
])
def test_receptive_field_mistakes(student, message):
    with pytest.raises(CheckFailed, match=message):
        check_receptive_field(student)


def test_empirical_field_of_the_cases_matches_the_formula():
    for kernel_sizes, dilations in RECEPTIVE_FIELD_CASES:
        stack = dilated_stack(kernel_sizes, dilations)
        expected = receptive_field_solution(kernel_sizes, dilations)
        assert empirical_receptive_field(stack, 81, in_channels=1) == (expected, expected)
        assert receptive_field(stack)[0] == expected
