"""SegNet: unpooling puts values back where the maxima were; the transposed variant differs only there."""

import pytest
import torch
import torch.nn.functional as F

from seglib.models.segnet import SegNet


def test_shapes_and_parameters():
    unpool, transposed = SegNet(5, upsampling="unpool"), SegNet(5, upsampling="transposed")
    x = torch.rand(2, 3, 32, 32)
    assert unpool(x).shape == transposed(x).shape == (2, 5, 32, 32)
    extra = sum(p.numel() for p in transposed.parameters()) - sum(p.numel() for p in unpool.parameters())
    assert extra == sum(w * w * 4 + w for w in (16, 32, 64))  # only the 2x2 transposed convolutions


def test_unpooling_restores_positions_of_the_maxima():
    """The decoder's input after unpooling is non-zero exactly where the pool found its maxima."""
    torch.manual_seed(0)
    x = torch.rand(1, 1, 8, 8)
    pooled, index = F.max_pool2d(x, 2, return_indices=True)
    restored = F.max_unpool2d(pooled, index, 2)
    assert torch.equal(restored != 0, x == F.interpolate(pooled, scale_factor=2))
    assert torch.equal(restored[restored != 0], x[restored != 0])


def test_gradients_reach_the_input_through_the_indices():
    model = SegNet(3, widths=(4, 8), upsampling="unpool")
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    model(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_bad_input():
    with pytest.raises(ValueError, match="upsampling must be one of"):
        SegNet(5, upsampling="bilinear")
    with pytest.raises(ValueError, match="multiples of 8"):
        SegNet(5)(torch.rand(1, 3, 20, 20))
    with pytest.raises(TypeError, match="x must be"):
        SegNet(5)(torch.zeros(1, 3, 16, 16, dtype=torch.long))
