"""The SAM exercise checks accept the reference and explain typical mistakes."""

import math

import pytest
import torch

from seglib.checks import CheckFailed
from seglib.checks.sam import check_best_mask, check_fourier_encoding, fourier_encoding_reference
from seglib.metrics.masks import paired_iou


def test_fourier_reference_passes(capsys):
    check_fourier_encoding(fourier_encoding_reference)
    assert "fourier_encoding" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda p, g, s: torch.cat([torch.cos(2 * math.pi * ((2 * p / s - 1) @ g)),
                                torch.sin(2 * math.pi * ((2 * p / s - 1) @ g))], -1), "sine first"),
    (lambda p, g, s: torch.cat([torch.sin(2 * math.pi * ((p / s) @ g)),
                                torch.cos(2 * math.pi * ((p / s) @ g))], -1), "2p - 1"),
    (lambda p, g, s: fourier_encoding_reference(p * s, g, s), "divide the pixel coordinates"),
])
def test_fourier_mistakes_get_hints(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        check_fourier_encoding(wrong)


def test_fourier_stub_and_wrong_shape():
    def stub(points, gaussian, image_size):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="not implemented yet"):
        check_fourier_encoding(stub)
    with pytest.raises(CheckFailed, match="expected shape"):
        check_fourier_encoding(lambda p, g, s: fourier_encoding_reference(p, g, s)[:, :1])


def best_mask(masks, iou_predictions, target):
    index = int(iou_predictions.argmax())
    return masks[index], index, float(paired_iou(masks[index], target))


def test_best_mask_reference_passes(capsys):
    check_best_mask(best_mask)
    assert "best_mask" in capsys.readouterr().out


def test_best_mask_mistakes_get_hints():
    def lowest(masks, scores, target):
        return best_mask(masks, -scores, target)

    def over_target(masks, scores, target):
        mask, index, _ = best_mask(masks, scores, target)
        return mask, index, float((mask & target).sum() / target.sum())

    def predicted(masks, scores, target):
        mask, index, _ = best_mask(masks, scores, target)
        return mask, index, float(scores[index])

    with pytest.raises(CheckFailed, match="argmax"):
        check_best_mask(lowest)
    with pytest.raises(CheckFailed, match="divided by the target"):
        check_best_mask(over_target)
    with pytest.raises(CheckFailed, match="predicted IoU"):
        check_best_mask(predicted)
    with pytest.raises(CheckFailed, match="return a tuple"):
        check_best_mask(lambda m, s, t: m[0])
