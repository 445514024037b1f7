"""Mean-field CRF: it removes isolated mistakes and snaps labels to colour edges."""

import pytest
import torch

from seglib.ops.crf import CRFParams, crf_refine


def two_halves():
    images = torch.zeros(1, 3, 16, 16)
    images[..., 8:] = 1.0                         # a colour edge down the middle
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[..., 8:] = 1
    return images, labels


def test_an_isolated_wrong_pixel_is_corrected():
    images, labels = two_halves()
    logits = torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float() * 2
    logits[0, :, 4, 3] = torch.tensor([0.0, 1.0])  # one confident-ish wrong pixel inside the left half
    refined = crf_refine(logits, images)
    assert refined.argmax(1)[0, 4, 3] == 0
    assert torch.equal(refined.argmax(1), labels)


def test_a_blurred_boundary_snaps_to_the_colour_edge():
    images, labels = two_halves()
    ramp = torch.linspace(-1, 1, 16).view(1, 1, 1, 16) - 0.25   # scores crossing 3 px left of the edge
    logits = torch.cat([-ramp, ramp], dim=1).expand(1, 2, 16, 16)
    assert (logits.argmax(1) != labels).sum() > 0
    refined = crf_refine(logits, images, CRFParams(w_bilateral=10.0, theta_rgb=0.05, theta_xy=4.0))
    assert (refined.argmax(1) != labels).sum() < (logits.argmax(1) != labels).sum()


def test_output_is_log_probabilities_batched_like_the_input():
    images, _ = two_halves()
    logits = torch.randn(3, 4, 16, 16)
    out = crf_refine(logits, images.expand(3, -1, -1, -1), batch_size=2)
    assert out.shape == logits.shape
    assert torch.allclose(out.exp().sum(1), torch.ones(3, 16, 16), atol=1e-5)


@pytest.mark.parametrize("call, error, match", [
    (lambda: crf_refine(torch.randn(1, 2, 8, 8), torch.rand(1, 3, 8, 9)), ValueError, "images"),
    (lambda: crf_refine(torch.randn(2, 8, 8), torch.rand(1, 3, 8, 8)), ValueError, "logits"),
    (lambda: crf_refine(torch.randn(1, 2, 8, 8), torch.rand(1, 3, 8, 8), params={}), TypeError, "CRFParams"),
    (lambda: CRFParams(window=4), ValueError, "odd"),
    (lambda: CRFParams(theta_xy=0), ValueError, "theta_xy"),
    (lambda: CRFParams(iterations=0), ValueError, "iterations"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
