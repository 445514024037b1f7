"""The checks of notebook 03's exercises accept the reference and explain typical mistakes."""

import pytest
import torch
from torch import nn

from seglib.checks import CheckFailed, check_decoder_block, check_reached_offsets
from seglib.checks.unet import OFFSET_CASES, measured_offsets
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


def reached_offsets(dilations):
    offsets = {0}
    for d in dilations:
        offsets = {o + step for o in offsets for step in (-d, 0, d)}
    return sorted(offsets)


def test_reached_offsets_reference_passes_and_mistakes_are_explained(capsys):
    check_reached_offsets(reached_offsets)
    assert "(2, 2, 2) reads 7 (gridding), (1, 2, 3) reads 13" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"reached_offsets\(\[2\]\): got \[-2, -1, 0, 1, 2\].*skips the pixels"):
        check_reached_offsets(lambda ds: list(range(-sum(ds), sum(ds) + 1)))
    with pytest.raises(CheckFailed, match=r"forgot the centre tap"):
        check_reached_offsets(lambda ds: [o for o in reached_offsets(ds) if o] if len(ds) == 1 else reached_offsets(ds))
    with pytest.raises(CheckFailed, match=r"sorted, each once"):
        check_reached_offsets(lambda ds: reached_offsets(ds)[::-1])


def test_measured_offsets_match_the_set_of_sums():
    for dilations in OFFSET_CASES:
        assert measured_offsets(dilations) == reached_offsets(dilations)
