"""U-Net: shapes per stage, valid padding with cropping, residual blocks, the auxiliary head and loss."""

import pytest
import torch
import torch.nn.functional as F

from seglib.models.unet import ConvBlock, DecoderBlock, UNet, center_crop
from seglib.losses.modules import AuxLoss


def small(**kwargs):
    torch.manual_seed(0)
    return UNet(num_classes=3, depth=3, base_width=4, **kwargs).eval()


def recorded_shapes(model, x):
    """Shapes of every stage from a real forward pass, via hooks."""
    shapes = []
    modules = list(model.encoder) + list(model.decoder) + [model.head]
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for m in modules]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize("padding,size", [("same", 32), ("valid", 44), ("same", 24)])
@pytest.mark.parametrize("block", ["plain", "residual"])
def test_stage_shapes_match_forward(padding, size, block):
    model = small(padding=padding, block=block)
    predicted = [shape for _, shape in model.stage_shapes(size)]
    assert recorded_shapes(model, torch.rand(2, 3, size, size)) == predicted
    assert model.output_size(size) == predicted[-1][1:]


def test_paper_sizes_with_valid_padding():
    with torch.device("meta"):  # only the sizes are needed, not 31 M initialised weights
        paper = UNet(num_classes=2, depth=5, base_width=64, padding="valid")
    shapes = dict(paper.stage_shapes(572))
    assert shapes["enc1"] == (64, 568, 568)
    assert shapes["bottleneck"] == (1024, 28, 28)
    assert shapes["head"] == (2, 388, 388)
    assert paper.stage_names[:2] == ["enc1", "enc2"] and paper.stage_names[-1] == "head"


def test_default_unet_docstring_shapes():
    model = UNet(num_classes=5)
    assert model.widths == (16, 32, 64, 128)
    assert dict(model.stage_shapes(64))["bottleneck"] == (128, 8, 8)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 5, 64, 64)
    assert model.output_size(48, 64) == (48, 64)


def test_sizes_that_do_not_fit_name_the_nearest():
    with pytest.raises(ValueError, match="nearest sizes that fit: 56 or 64"):
        UNet(num_classes=5).output_size(60)
    with pytest.raises(ValueError, match="odd size"):
        small(padding="valid")(torch.rand(1, 3, 46, 46))
    with pytest.raises(ValueError, match="width 30"):
        small().output_size(32, 30)


def test_valid_unet_tiles_seamlessly():
    """Valid convolutions: the output of a shifted input window is the shifted output (no padding effects)."""
    model = small(padding="valid")
    assert model.output_size(44) == (4, 4) and model.output_size(52) == (12, 12)
    x = torch.rand(1, 3, 52, 52)
    with torch.no_grad():
        whole = model(x)
        window = model(x[..., 8:52, 4:48])  # shifts by multiples of 2 ** (depth - 1)
    assert torch.allclose(window, whole[..., 8:12, 4:8], atol=1e-5)


def test_center_crop():
    x = torch.arange(2 * 1 * 5 * 6.).view(2, 1, 5, 6)
    out = center_crop(x, 3, 3)
    assert out.shape == (2, 1, 3, 3)
    assert torch.equal(out, x[..., 1:4, 1:4])
    with pytest.raises(ValueError, match="larger"):
        center_crop(x, 6, 6)


def test_conv_block_sizes_and_errors():
    assert ConvBlock(3, 8, "valid")(torch.rand(1, 3, 10, 10)).shape == (1, 8, 6, 6)
    assert ConvBlock(3, 8, residual=True, stride=2, dilation=2)(torch.rand(1, 3, 10, 10)).shape == (1, 8, 5, 5)
    assert ConvBlock(8, 8, "valid", residual=True)(torch.rand(1, 8, 10, 10)).shape == (1, 8, 6, 6)
    with pytest.raises(ValueError, match="padding='same'"):
        ConvBlock(3, 8, "valid", stride=2)
    with pytest.raises(ValueError, match="padding"):
        ConvBlock(3, 8, "full")


def test_decoder_block_crops_and_concatenates_skip_first():
    torch.manual_seed(0)
    block = DecoderBlock(8, 4, 4, padding="valid").eval()
    x, skip = torch.rand(1, 8, 6, 6), torch.rand(1, 4, 16, 16)
    assert block(x, skip).shape == (1, 4, 8, 8)
    up = block.up(x)
    expected = block.block(torch.cat([center_crop(skip, 12, 12), up], dim=1))
    assert torch.allclose(block(x, skip), expected)
    with pytest.raises(ValueError, match="at least as large"):
        block(x, torch.rand(1, 4, 10, 10))
    with pytest.raises(ValueError, match="skip must have shape"):
        block(x, torch.rand(1, 5, 16, 16))


def test_residual_blocks_add_shortcut_parameters():
    plain, residual = small(), small(block="residual")
    assert sum(p.numel() for p in residual.parameters()) > sum(p.numel() for p in plain.parameters())
    assert any("shortcut" in name for name, _ in residual.named_parameters())


def test_aux_head_returns_dict_only_in_training():
    model = small(aux_head=True)
    x = torch.rand(2, 3, 32, 32)
    assert isinstance(model(x), torch.Tensor)
    model.train()
    out = model(x)
    assert set(out) == {"out", "aux"}
    assert out["out"].shape == (2, 3, 32, 32) and out["aux"].shape == (2, 3, 8, 8)
    assert isinstance(model(x, return_aux=False), torch.Tensor)
    model.eval()
    assert set(model(x, return_aux=True)) == {"out", "aux"}
    with pytest.raises(ValueError, match="aux_head=True"):
        small()(x, return_aux=True)


def test_aux_loss():
    torch.manual_seed(0)
    target = torch.randint(0, 3, (2, 16, 16))
    target[0, 0, 0] = 255
    out, aux = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 4, 4)
    main = F.cross_entropy(out, target, ignore_index=255)
    up = F.interpolate(aux, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(AuxLoss(0.5)(out, target), main)
    assert torch.allclose(AuxLoss(0.5)({"out": out, "aux": aux}, target),
                          main + 0.5 * F.cross_entropy(up, target, ignore_index=255))
    assert torch.allclose(AuxLoss(0.0)({"out": out, "aux": aux}, target), main)
    with pytest.raises(ValueError, match="weight"):
        AuxLoss(-1)
    with pytest.raises(TypeError, match="'out'"):
        AuxLoss()({"aux": aux}, target)


def test_training_with_aux_head_learns():
    from seglib.data.shapes import SceneConfig
    from seglib.train import train
    from seglib.data.batches import semantic_batches

    torch.manual_seed(0)
    model = UNet(num_classes=5, depth=2, base_width=4, aux_head=True)
    history = train(model, semantic_batches(SceneConfig(size=16), 8), AuxLoss(), steps=20, lr=1e-2,
                    progress=False, log_every=5)
    assert history.loss[-1] < history.loss[0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=1)
    with pytest.raises(ValueError, match="block"):
        UNet(block="fractal")
    with pytest.raises(TypeError, match="base_width"):
        UNet(base_width=1.5)
    with pytest.raises(ValueError, match=r"x must have shape \(B,3,H,W\)"):
        small()(torch.rand(1, 1, 32, 32))
