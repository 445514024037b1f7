"""Inception and dense blocks: shapes, what each branch or layer reads, and their use in a U-Net."""

import pytest
import torch

from seglib.models.blocks import DenseBlock, InceptionBlock, InceptionModule
from seglib.models.unet import UNet, make_block


def test_inception_module_concatenates_four_branches():
    module = InceptionModule(6, 10).eval()
    out = module(torch.rand(2, 6, 9, 9))
    assert out.shape == (2, 10, 9, 9)
    widths = [branch(torch.rand(1, 6, 9, 9)).shape[1] for branch in module.branches]
    assert widths == [4, 2, 2, 2]  # the 1x1 branch takes the remainder


def test_inception_branches_see_one_three_and_five_pixels():
    """Receptive field of each branch, found by back-propagating from the centre output pixel."""
    torch.manual_seed(0)
    module = InceptionModule(1, 8).eval()
    sides = []
    for branch in module.branches:
        x = torch.randn(32, 1, 11, 11, requires_grad=True)  # many images: some activate every ReLU
        branch(x)[:, :, 5, 5].sum().backward()
        touched = x.grad[:, 0].abs().sum(dim=0) > 0
        sides.append(int(touched.any(dim=0).sum()))
    assert sides == [1, 3, 5, 3]


def test_dense_layers_read_every_earlier_output():
    block = DenseBlock(3, 8, layers=3, growth=2)
    assert [layer[0].in_channels for layer in block.layers] == [3, 5, 7]
    assert block.merge[0].in_channels == 9
    assert block(torch.rand(2, 3, 8, 8)).shape == (2, 8, 8, 8)


@pytest.mark.parametrize("block", ["inception", "dense"])
def test_unet_with_new_blocks_keeps_its_shapes(block):
    torch.manual_seed(0)
    model = UNet(num_classes=3, depth=3, base_width=8, block=block).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    kinds = {type(level).__name__ for level in model.encoder}
    assert kinds == {"InceptionBlock" if block == "inception" else "DenseBlock"}


def test_new_blocks_need_same_padding():
    with pytest.raises(ValueError, match="padding='same'"):
        UNet(num_classes=3, block="dense", padding="valid")
    with pytest.raises(ValueError, match="padding='same'"):
        make_block("inception", 3, 8, "valid")
    with pytest.raises(ValueError, match="block must be one of"):
        make_block("fractal", 3, 8)
    with pytest.raises(ValueError, match="out_channels must be at least 4"):
        InceptionBlock(3, 2)
