"""Learned upsampling layers and the checkerboard measures."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seglib.data import SceneConfig
from seglib.models.upsamplers import SuperResolver, UPSAMPLING_KINDS, transposed_padding, upsample_layer
from seglib.labs.upsampling import checkerboard_amplitude
from seglib.data.batches import superresolution_batches
from seglib.ops.upsampling import conv_transpose_output_size


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("kernel_size", range(1, 8))
def test_transposed_padding_scales_sizes_exactly(kernel_size, scale):
    padding, output_padding = transposed_padding(kernel_size, scale)
    assert padding >= 0 and 0 <= output_padding < scale
    for n in (1, 3, 8):
        assert conv_transpose_output_size(n, kernel_size, scale, padding, 1, output_padding) == scale * n


@pytest.mark.parametrize("kind", UPSAMPLING_KINDS)
@pytest.mark.parametrize("kernel_size", [2, 3, 4])
def test_upsample_layer_output_shape(kind, kernel_size):
    layer = upsample_layer(kind, 4, 5, kernel_size=kernel_size, scale=2)
    assert layer(torch.rand(2, 4, 6, 7)).shape == (2, 5, 12, 14)


@pytest.mark.parametrize("kind", ["nearest", "bilinear"])
def test_resize_then_convolve_keeps_a_constant_input_constant(kind):
    torch.manual_seed(0)
    out = upsample_layer(kind, 3, 2, kernel_size=3)(torch.full((1, 3, 8, 8), 0.7)).detach()
    assert torch.allclose(out, out[:, :, :1, :1].expand_as(out), atol=1e-6)
    assert checkerboard_amplitude(out).item() < 1e-7


def test_uneven_overlap_makes_a_checkerboard_from_a_constant_input():
    layer = upsample_layer("transposed", 1, 1, kernel_size=3)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
    out = layer(torch.ones(1, 1, 6, 6))
    assert checkerboard_amplitude(out, border=1).item() > 0.5
    assert set(out[0, 0, 1:-1, 1:-1].unique().tolist()) == {1.0, 2.0, 4.0}
    even = upsample_layer("transposed", 1, 1, kernel_size=4)
    with torch.no_grad():
        even.weight.fill_(1.0)
        even.bias.zero_()
    assert checkerboard_amplitude(even(torch.ones(1, 1, 6, 6)), border=1).item() == 0.0


@pytest.mark.parametrize("kwargs, error", [
    (dict(kind="bicubic"), ValueError),
    (dict(in_channels=0), ValueError),
    (dict(kernel_size=1.5), TypeError),
    (dict(scale=1), ValueError),
])
def test_upsample_layer_validates(kwargs, error):
    arguments = dict(kind="transposed", in_channels=2, out_channels=2) | kwargs
    with pytest.raises(error):
        upsample_layer(**arguments)


def test_checkerboard_amplitude():
    board = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4).view(1, 1, 8, 8)
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    # the ramp 0..7: odd columns average one more than even ones, a +-0.5 pattern
    assert checkerboard_amplitude(torch.cat([0.3 * board + 0.5, ramp])).tolist() == pytest.approx([0.3, 0.5])
    assert checkerboard_amplitude(torch.full((2, 3, 6, 6), 0.4)).tolist() == [0.0, 0.0]
    noise = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    assert checkerboard_amplitude(noise).item() < 0.02


def test_checkerboard_border_crops_before_measuring():
    image = torch.full((1, 1, 10, 10), 0.5)
    image[..., 0, :] = 1.0  # a padding effect along the top row only
    assert checkerboard_amplitude(image).item() > 0
    assert checkerboard_amplitude(image, border=1).item() == 0.0


def test_checkerboard_validates():
    with pytest.raises(ValueError, match="images"):
        checkerboard_amplitude(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="period"):
        checkerboard_amplitude(torch.rand(1, 1, 8, 8), period=1)
    with pytest.raises(ValueError, match="less than one period"):
        checkerboard_amplitude(torch.rand(1, 1, 8, 8), border=4)
    with pytest.raises(TypeError, match="border"):
        checkerboard_amplitude(torch.rand(1, 1, 8, 8), border=0.5)


@pytest.mark.parametrize("kind", UPSAMPLING_KINDS)
def test_super_resolver_shapes(kind):
    model = SuperResolver(kind, width=4, kernel_size=3, scale=2)
    assert model(torch.rand(2, 3, 5, 6)).shape == (2, 3, 10, 12)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(2, 1, 5, 6))


def test_superresolution_batches():
    low, high = next(superresolution_batches(3, SceneConfig(size=16), scale=2, seed=0))
    assert low.shape == (3, 3, 8, 8) and high.shape == (3, 3, 16, 16)
    assert torch.allclose(low, F.avg_pool2d(high, 2))
    with pytest.raises(ValueError, match="multiple of scale"):
        next(superresolution_batches(2, SceneConfig(size=18), scale=4))
