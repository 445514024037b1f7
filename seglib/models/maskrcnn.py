"""Mask R-CNN (He, Gkioxari, Dollar and Girshick, ICCV 2017), small enough for a CPU.

torchvision's :class:`~torchvision.models.detection.MaskRCNN` with a plain
convolutional backbone trained from scratch on the generated scenes:

==========================  ====================================================
backbone                    five stages of two 3x3 convs (the first of stride 2)
                            with trainable BatchNorm; widths 32-48-96-192-256,
                            strides 2 to 32
FPN                         64 channels on stages 2-5 (strides 4, 8, 16, 32) plus
                            a max-pooled level (stride 64)
RPN                         3 anchors (aspect 1:2, 1:1, 2:1) per position and
                            level; 64 anchors sampled per image for its losses;
                            300 -> 100 proposals in training, 150 -> 50 at test
RoI sampling                32 proposals per image for the heads' losses, up to
                            half of them positives (torchvision: 512, a quarter)
box head                    RoIAlign 7x7 (one sample per bin), a 256-wide
                            two-layer MLP, class scores and per-class box deltas
mask head                   RoIAlign 14x14, two 3x3 convs, a 2x2 stride-2
                            transposed conv, one 28x28 mask per class
==========================  ====================================================

The torchvision defaults for 800-pixel COCO images (a ResNet-50 with frozen
BatchNorm, 256 FPN channels, 512 sampled RoIs and 256 RPN anchors per image,
2000 proposals, a four-conv mask head, two RoIAlign samples per bin) make a
CPU step about three times slower and learn less in the same minute. With
only 32 sampled RoIs, letting half of them be positives (instead of a
quarter) feeds the mask head twice the examples: mask AP50 on the test
scenes after 500 steps (learning rate 1e-3) rose from 0.53 to 0.59.

Labels: the model numbers classes ``0 = background, 1..K = things``; a
generated scene's thing ``c`` (class id in ``SceneConfig.class_names``) is
``c - len(stuff_names) + 1`` (see :func:`scene_targets`).

Shapes: images float ``(B, 3, H, W)`` in [0, 1] (or a list of ``(3, H_i, W_i)``);
predictions as torchvision returns them (``boxes`` ``(N, 4)``, ``labels``
``(N,)``, ``scores`` ``(N,)``, ``masks`` float ``(N, 1, H, W)`` probabilities).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from seglib.common import eval_mode
from seglib.metrics.masks import box_iou
from seglib.validation import check_boxes, check_image, check_int, check_ints

__all__ = ["PlainBackbone", "build_maskrcnn", "replace_predictors", "roi_strides", "rpn_stages"]


class PlainBackbone(nn.Sequential):
    """Stages of two 3x3 conv-BatchNorm-ReLU layers, the first of stride 2.

    Args:
        widths: output channels of each stage (stage ``i`` has stride ``2**(i+1)``).

    Shapes: ``(B, 3, H, W)`` -> ``(B, widths[-1], H / 2**len(widths), W / 2**len(widths))``;
    :class:`~torchvision.models.detection.backbone_utils.BackboneWithFPN` reads
    the stages by name (``stage1``, ``stage2``, ...).
    """

    def __init__(self, widths: Sequence[int] = (32, 48, 96, 192, 256)) -> None:
        widths = check_ints("widths", widths)
        stages = OrderedDict()
        channels = 3
        for i, width in enumerate(widths, start=1):
            stages[f"stage{i}"] = nn.Sequential(
                nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
            channels = width
        super().__init__(stages)
        self.widths = widths


def build_maskrcnn(
    num_classes: int = 4,
    widths: Sequence[int] = (32, 48, 96, 192, 256),
    fpn_channels: int = 64,
    image_size: int = 128,
    anchor_sizes: Sequence[int] = (16, 24, 40, 64, 96),
    mask_convs: int = 2,
    box_width: int = 256,
    rois_per_image: int = 32,
    rpn_anchors_per_image: int = 64,
    sampling_ratio: int = 1,
    canonical_scale: int = 224,
) -> MaskRCNN:
    """torchvision's Mask R-CNN with a small plain backbone, set up for CPU training.

    Args:
        num_classes: classes including the background (the scenes: 3 things + 1).
        widths: backbone stage widths (five stages; the FPN reads stages 2-5).
        fpn_channels: channels of every FPN level and of the heads' convs.
        image_size: images are resized so their sides lie in ``[image_size,
            image_size]`` (the scenes are square, so they keep their size).
        anchor_sizes: anchor side in pixels on each of the five FPN levels.
        mask_convs: 3x3 convs of the mask head (the paper uses 4).
        box_width: width of the box head's two fully connected layers.
        rois_per_image: proposals sampled per image for the box and mask losses.
        rpn_anchors_per_image: anchors sampled per image for the RPN losses.
        sampling_ratio: RoIAlign samples per bin side (0: adaptive, as in the paper).
        canonical_scale: box side (square root of its area) that the heads read
            from the stride-16 level; a box of side ``s`` is read from level
            ``floor(4 + log2(s / canonical_scale))``, clamped to strides 4 to 32
            (the FPN paper's rule; 224 as in torchvision, which sends every box
            under 112 pixels to the stride-4 level).

    Returns:
        A :class:`~torchvision.models.detection.MaskRCNN` with about 2.9 M
        parameters for the defaults. In train mode ``model(images, targets)``
        returns the dict of its five losses; in eval mode
        ``model(images)`` returns one prediction dict per image.
    """
    check_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background too and must be >= 2, got {num_classes}")
    widths = check_ints("widths", widths, 5)
    anchor_sizes = check_ints("anchor_sizes", anchor_sizes, 5)
    for name, value in (("fpn_channels", fpn_channels), ("image_size", image_size), ("mask_convs", mask_convs),
                        ("box_width", box_width), ("rois_per_image", rois_per_image),
                        ("rpn_anchors_per_image", rpn_anchors_per_image), ("canonical_scale", canonical_scale)):
        check_int(name, value)
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int) or sampling_ratio < 0:
        raise ValueError(f"sampling_ratio must be an int >= 0, got {sampling_ratio!r}")

    levels = {f"stage{i}": str(i - 2) for i in range(2, 6)}
    backbone = BackboneWithFPN(PlainBackbone(widths), levels, list(widths[1:]), fpn_channels, LastLevelMaxPool())
    anchors = AnchorGenerator(tuple((size,) for size in anchor_sizes), ((0.5, 1.0, 2.0),) * 5)
    names = list(levels.values())
    return MaskRCNN(
        backbone,
        min_size=image_size,
        max_size=image_size,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=300,
        rpn_post_nms_top_n_train=100,
        rpn_pre_nms_top_n_test=150,
        rpn_post_nms_top_n_test=50,
        rpn_batch_size_per_image=rpn_anchors_per_image,
        box_roi_pool=MultiScaleRoIAlign(names, output_size=7, sampling_ratio=sampling_ratio,
                                        canonical_scale=canonical_scale),
        box_head=TwoMLPHead(fpn_channels * 7 * 7, box_width),
        box_predictor=FastRCNNPredictor(box_width, num_classes),
        box_batch_size_per_image=rois_per_image,
        box_positive_fraction=0.5,  # up to 16 of the 32 RoIs are objects: more mask-loss samples per step
        mask_roi_pool=MultiScaleRoIAlign(names, output_size=14, sampling_ratio=sampling_ratio,
                                         canonical_scale=canonical_scale),
        mask_head=MaskRCNNHeads(fpn_channels, [fpn_channels] * mask_convs, 1),
        mask_predictor=MaskRCNNPredictor(fpn_channels, fpn_channels, num_classes),
    )


def replace_predictors(model: MaskRCNN, num_classes: int) -> MaskRCNN:
    """Swap the box and mask predictors of ``model`` for fresh ones with ``num_classes``.

    The usual start of fine-tuning on a new dataset (e.g. 2 classes,
    background and person, for Penn-Fudan): the backbone, RPN and heads keep
    their weights, only the last class-specific layers are new.

    Returns:
        The same model, changed in place.
    """
    if not isinstance(model, MaskRCNN):
        raise TypeError(f"model must be a torchvision MaskRCNN, got {type(model).__name__}")
    check_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background too and must be >= 2, got {num_classes}")
    heads = model.roi_heads
    heads.box_predictor = FastRCNNPredictor(heads.box_predictor.cls_score.in_features, num_classes)
    mask_in = heads.mask_predictor.conv5_mask.in_channels
    hidden = heads.mask_predictor.conv5_mask.out_channels
    heads.mask_predictor = MaskRCNNPredictor(mask_in, hidden, num_classes)
    return model


def roi_strides(boxes: torch.Tensor, canonical_scale: int = 224) -> torch.Tensor:
    """Stride of the FPN level that torchvision's ``MultiScaleRoIAlign`` reads for each box, int64 ``(N,)``.

    torchvision's own ``LevelMapper`` (the FPN paper's rule): a box of side
    ``s = sqrt(area)`` goes to level ``floor(4 + log2(s / canonical_scale))``,
    clamped to the levels of the model (strides 4 to 32 here).

    Args:
        boxes: float ``(N, 4)`` xyxy in pixels.
        canonical_scale: the box side read from the stride-16 level (224 in torchvision).
    """
    from torchvision.ops.poolers import LevelMapper

    check_boxes("boxes", boxes)
    check_int("canonical_scale", canonical_scale)
    levels = LevelMapper(k_min=2, k_max=5, canonical_scale=canonical_scale, canonical_level=4)([boxes.float()])
    return 2 ** (levels.long() + 2)


def rpn_stages(model: MaskRCNN, image: torch.Tensor, target_boxes: torch.Tensor) -> dict[str, torch.Tensor]:
    """The region proposal network's work on one image, step by step (model in eval mode, on the CPU).

    Args:
        model: a Mask R-CNN.
        image: float ``(3, H, W)`` in [0, 1], of the size the model reads (it is not resized back).
        target_boxes: the image's true boxes, float ``(K, 4)`` xyxy.

    Returns:
        ``anchors`` float ``(A, 4)`` (all levels); ``anchor_labels`` int64
        ``(A,)``: 1 positive (IoU >= 0.7 with an object, or an object's best
        anchor), 0 negative (IoU < 0.3), -1 ignored (in between), as the RPN's
        ``Matcher`` labels them for its losses; ``anchor_iou`` ``(A,)``, the
        best IoU of each anchor with an object; ``candidates`` ``(P, 4)`` and
        ``candidate_scores`` ``(P,)``: the decoded boxes of the top-scoring
        anchors of every level, before non-maximum suppression; ``proposals``
        ``(Q, 4)``: what the RPN hands to the heads after NMS (IoU 0.7, per level).
    """
    from torchvision.models.detection.rpn import concat_box_prediction_layers

    if not isinstance(model, MaskRCNN):
        raise TypeError(f"model must be a torchvision MaskRCNN, got {type(model).__name__}")
    check_image("image", image)
    check_boxes("target_boxes", target_boxes)
    rpn = model.rpn
    with torch.no_grad(), eval_mode(model):
        images, _ = model.transform([image])
        features = list(model.backbone(images.tensors).values())
        objectness, deltas = rpn.head(features)
        anchors = rpn.anchor_generator(images, features)
        per_level = [o[0].numel() for o in objectness]
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        decoded = rpn.box_coder.decode(deltas, anchors).view(-1, 4)
        top = rpn._get_top_n_idx(objectness.view(1, -1), per_level)[0]
        proposals = rpn(images, dict(enumerate(features)))[0][0]
    iou = box_iou(anchors[0], target_boxes.float()) if len(target_boxes) else anchors[0].new_zeros(len(anchors[0]), 1)
    matched = rpn.proposal_matcher(iou.T) if len(target_boxes) else torch.full((len(anchors[0]),), -1)
    labels = torch.where(matched >= 0, 1, torch.where(matched == rpn.proposal_matcher.BELOW_LOW_THRESHOLD, 0, -1))
    return {"anchors": anchors[0], "anchor_labels": labels, "anchor_iou": iou.max(dim=1).values,
            "candidates": decoded[top].clamp(0, image.shape[-1]), "candidate_scores": objectness.view(-1)[top].sigmoid(),
            "proposals": proposals}
