"""Overlap-tile inference: exact for pointwise models, valid-convolution geometry, mirror padding, errors."""

import pytest
import torch
from torch import nn

from seglib.ops.tiling import interior_agreement, mirror_pad, tile_grid, tiled_predict
from seglib.models.unet import UNet


def pointwise():
    torch.manual_seed(0)
    return nn.Conv2d(3, 4, 1)


@pytest.mark.parametrize("height,width,tile,overlap", [(37, 50, 16, 4), (16, 16, 16, 0), (5, 70, 12, 8),
                                                       (64, 64, 32, 16)])
def test_pointwise_model_is_reproduced_exactly(height, width, tile, overlap):
    model = pointwise()
    image = torch.rand(2, 3, height, width)
    with torch.no_grad():
        expected = model(image)
    got = tiled_predict(model, image, tile, overlap)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)
    assert tiled_predict(model, image[0], tile, overlap).shape == expected.shape[1:]


def test_grid_covers_image_and_pads_with_context():
    grid = tile_grid(37, 50, tile=20, overlap=4, context=2)
    assert grid.out_tile == 16 and grid.step == 12 and grid.margin == 2
    assert grid.pad[0] == grid.pad[2] == 4  # context + margin
    top, bottom, left, right = grid.pad
    assert grid.rows[-1] + grid.tile == top + 37 + bottom
    assert grid.cols[-1] + grid.tile == left + 50 + right
    assert len(grid) == len(grid.rows) * len(grid.cols) == grid.input_boxes().shape[0]
    assert grid.image_box().tolist() == [[4.0, 4.0, 54.0, 41.0]]
    # every image pixel lies in the centre region of some output tile
    for size, starts, lead in ((37, grid.rows, top), (50, grid.cols, left)):
        covered = set()
        for s in starts:
            first = s + grid.context - lead  # image coordinate of the tile's first output pixel
            covered.update(range(first + grid.margin, first + grid.out_tile - grid.margin))
        assert set(range(size)) <= covered


def test_valid_unet_tiles_match_whole_image():
    """With valid convolutions and aligned tiles, overlap-tile inference equals one big forward pass."""
    torch.manual_seed(0)
    model = UNet(num_classes=3, depth=3, base_width=4, padding="valid").eval()
    # The whole 52 x 52 image gives the 12 x 12 logits of its centre (20 px of context per side).
    # Tiles of 44 give 4 x 4 outputs; those over the centre read only real pixels, no mirrored ones,
    # and start at multiples of 4 = 2 ** (depth - 1), so the pooling grids line up.
    image = torch.rand(1, 3, 52, 52)
    with torch.no_grad():
        whole = model(image)
    tiled = tiled_predict(model, image, tile=44, overlap=0)
    assert tiled.shape == (1, 3, 52, 52)
    assert torch.allclose(tiled[..., 20:32, 20:32], whole, atol=1e-5)


def test_same_unet_agrees_away_from_borders():
    torch.manual_seed(0)
    model = UNet(num_classes=3, depth=2, base_width=4).eval()
    image = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        whole = model(image).argmax(1)
    tiled = tiled_predict(model, image, tile=24, overlap=12).argmax(1)
    assert interior_agreement(whole, tiled, border=4) > 0.9


@pytest.mark.parametrize("height,width,tile,overlap", [(37, 50, 16, 4), (16, 16, 16, 0), (64, 100, 32, 16)])
def test_inside_tiles_reproduce_a_pointwise_model_and_stay_inside(height, width, tile, overlap):
    model = pointwise()
    image = torch.rand(1, 3, height, width)
    with torch.no_grad():
        expected = model(image)
    assert torch.allclose(tiled_predict(model, image, tile, overlap, border="inside"), expected, atol=1e-5)
    grid = tile_grid(height, width, tile, overlap, border="inside")
    assert grid.pad == (0, 0, 0, 0) and grid.rows[0] == 0 and grid.rows[-1] == height - tile
    assert grid.cols[-1] == width - tile and all(b - a <= tile - overlap for a, b in zip(grid.cols, grid.cols[1:]))


def test_inside_tiles_match_a_same_padded_network_at_the_image_edges():
    torch.manual_seed(0)
    model = UNet(num_classes=3, depth=2, base_width=4).eval()
    image = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        whole = model(image)
    inside = tiled_predict(model, image, tile=24, overlap=12, border="inside")
    # the top-left tile sees exactly what the whole image shows there, zero padding included
    assert torch.allclose(inside[..., :6, :6], whole[..., :6, :6], atol=1e-4)


def test_inside_needs_a_same_padded_model_and_a_large_enough_image():
    with pytest.raises(ValueError, match="border='inside' needs"):
        tile_grid(10, 40, tile=16, overlap=4, border="inside")
    with pytest.raises(ValueError, match="border='inside' needs"):
        tile_grid(40, 40, tile=16, overlap=4, context=2, border="inside")
    with pytest.raises(ValueError, match="border must be one of"):
        tile_grid(40, 40, tile=16, overlap=4, border="zeros")


def test_a_float64_model_is_tiled_in_float64():
    model = pointwise().double()
    image = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        expected = model(image.double())
    assert torch.allclose(tiled_predict(model, image, 8, 2).double(), expected, atol=1e-6)


def test_training_mode_restored():
    model = pointwise().train()
    tiled_predict(model, torch.rand(3, 10, 10), 8, 2)
    assert model.training


def test_mirror_pad_reflects_repeatedly():
    row = torch.arange(3.).view(1, 1, 1, 3)
    assert mirror_pad(row, (0, 0, 5, 5)).flatten().tolist() == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]
    x = torch.rand(1, 2, 6, 7)
    assert torch.equal(mirror_pad(x, (2, 3, 1, 4)), torch.nn.functional.pad(x, (1, 4, 2, 3), mode="reflect"))
    assert mirror_pad(torch.rand(1, 1, 1, 1), (2, 2, 2, 2)).shape == (1, 1, 5, 5)


def test_interior_agreement():
    a = torch.zeros(6, 6, dtype=torch.long)
    b = a.clone()
    b[0, :] = 1
    assert interior_agreement(a, b, 0) == pytest.approx(30 / 36)
    assert interior_agreement(a, b, 1) == 1.0
    with pytest.raises(ValueError, match="half"):
        interior_agreement(a, b, 3)
    with pytest.raises(TypeError, match="integer label map"):
        interior_agreement(a.float(), b, 1)


def test_clear_errors():
    model = pointwise()
    image = torch.rand(3, 20, 20)
    with pytest.raises(ValueError, match="larger than overlap"):
        tiled_predict(model, image, tile=8, overlap=8)
    with pytest.raises(ValueError, match="even"):
        tiled_predict(model, image, tile=8, overlap=3)
    with pytest.raises(ValueError, match="not compatible with the model.*nearest sizes that fit: 56 or 64"):
        tiled_predict(UNet(num_classes=2), image, tile=60, overlap=4)
    valid = UNet(num_classes=2, depth=3, base_width=4, padding="valid")
    with pytest.raises(ValueError, match="output tile"):
        tiled_predict(valid, image, tile=44, overlap=4)  # 44 -> 4 output pixels
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        tiled_predict(model, torch.rand(20, 20), 8, 2)
    with pytest.raises(ValueError, match="not compatible"):
        tiled_predict(nn.Upsample(scale_factor=2), torch.rand(3, 10, 10), 8, 2)
