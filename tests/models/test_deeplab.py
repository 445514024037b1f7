"""The small DeepLab: atrous backbone strides, ASPP, output shapes, receptive fields, the real model's loading path."""

import pytest
import torch
from torch import nn

from seglib.models.deeplab import ASPP, AtrousBackbone, DeepLab
from seglib.ops.receptive_field import empirical_receptive_field
from seglib.ops.receptive_field import receptive_field


@pytest.mark.parametrize("output_stride,strides,dilations", [
    (4, [1, 2, 1, 1], [1, 1, 2, 4]),
    (8, [1, 2, 2, 1], [1, 1, 1, 2]),
    (16, [1, 2, 2, 2], [1, 1, 1, 1]),
])
def test_backbone_turns_late_strides_into_dilation(output_stride, strides, dilations):
    backbone = AtrousBackbone(widths=(4, 4, 8, 8), output_stride=output_stride)
    assert backbone.strides == strides and backbone.dilations == dilations
    assert backbone(torch.rand(1, 3, 64, 64)).shape == (1, 8, 64 // output_stride, 64 // output_stride)


def test_aspp_shapes_and_branches():
    aspp = ASPP(8, 6, rates=(1, 2, 3))
    assert len(aspp.branches) == 4  # 1x1 and three 3x3 rates; image pooling is separate
    assert [b[0].dilation for b in aspp.branches[1:]] == [(1, 1), (2, 2), (3, 3)]
    assert aspp(torch.rand(2, 8, 8, 8)).shape == (2, 6, 8, 8)


def test_deeplab_output_any_size():
    model = DeepLab(num_classes=5, widths=(4, 4, 8, 8), aspp_channels=8).eval()
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 5, 64, 64)
    assert model(torch.rand(1, 3, 50, 37)).shape == (1, 5, 50, 37)
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.rand(1, 1, 32, 32))


def test_dilation_grows_the_receptive_field():
    plain = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)])
    dilated = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=d, dilation=d) for d in (1, 2, 4)])
    assert empirical_receptive_field(plain, 41, in_channels=1)[0] == receptive_field(plain)[0] == 7
    assert empirical_receptive_field(dilated, 41, in_channels=1) == (15, 15) == (receptive_field(dilated)[0],) * 2


def test_image_pooling_sees_the_whole_input():
    model = DeepLab(num_classes=2, widths=(4, 4, 8, 8), aspp_channels=8)
    assert empirical_receptive_field(model, 48) == (48, 48)
    assert model.training  # restored


def test_bad_arguments():
    with pytest.raises(ValueError, match="output_stride"):
        AtrousBackbone(output_stride=32)
    with pytest.raises(ValueError, match="widths"):
        AtrousBackbone(widths=(4, 4))
    with pytest.raises(ValueError, match="rates"):
        ASPP(8, 8, rates=())
    with pytest.raises(ValueError, match="position"):
        empirical_receptive_field(nn.Conv2d(3, 1, 3), 9, position=(20, 0))


def test_deeplabv3_resnet50_loads_from_a_fixture(tmp_path):
    """The loading path of the notebook's real model, with a local state dict behind a file:// URL."""
    from torchvision.models import get_model

    from seglib import pretrained

    torch.manual_seed(0)
    reference = get_model("deeplabv3_resnet50", weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    path = tmp_path / "deeplabv3.pth"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in reference.state_dict().items()}, path)
    weights = "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"
    model, message = pretrained.try_torchvision("deeplabv3_resnet50", weights, url=path.as_uri(),
                                                directory=tmp_path / "cache", aux_loss=True)
    assert model is not None, message
    assert not model.training and "loaded" in message
    key = "classifier.4.weight"
    assert torch.equal(model.state_dict()[key], reference.state_dict()[key].half().float())
    missing, reason = pretrained.try_torchvision("deeplabv3_resnet50", weights, url=(tmp_path / "absent.pth").as_uri(),
                                                 directory=tmp_path / "c2", aux_loss=True)
    assert missing is None and "continuing" in reason
