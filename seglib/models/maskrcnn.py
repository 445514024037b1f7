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
from typing import Iterator, Sequence

import matplotlib.pyplot as plt
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from seglib.data.shapes import PANOPTIC_DIVISOR, SceneBatch, SceneConfig, scene_stream
from seglib.instance_metrics import fill_stuff, panoptic_from_instances
from seglib.viz import overlay_boxes, overlay_masks, show_image

__all__ = [
    "LOSS_NAMES",
    "SCENE_CONFIG",
    "LossLog",
    "PlainBackbone",
    "build_maskrcnn",
    "collate",
    "dataset_batches",
    "detection_batches",
    "detection_class_names",
    "detection_forward",
    "level_anchors",
    "predict",
    "replace_predictors",
    "scene_panoptic",
    "scene_targets",
    "show_detections",
]

#: The generated scenes Mask R-CNN trains on: 128 x 128 pixels, 1-4 things.
SCENE_CONFIG = SceneConfig(size=128)

#: torchvision's names of the five training losses, in the order of the lecture.
LOSS_NAMES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask")


def _check_positive_ints(name: str, values, length: int | None = None) -> tuple[int, ...]:
    values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
    if length is not None and len(values) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(values)}: {values!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must hold positive ints, got {values!r}")
    return values


class PlainBackbone(nn.Sequential):
    """Stages of two 3x3 conv-BatchNorm-ReLU layers, the first of stride 2.

    Args:
        widths: output channels of each stage (stage ``i`` has stride ``2**(i+1)``).

    Shapes: ``(B, 3, H, W)`` -> ``(B, widths[-1], H / 2**len(widths), W / 2**len(widths))``;
    :class:`~torchvision.models.detection.backbone_utils.BackboneWithFPN` reads
    the stages by name (``stage1``, ``stage2``, ...).
    """

    def __init__(self, widths: Sequence[int] = (32, 48, 96, 192, 256)) -> None:
        widths = _check_positive_ints("widths", widths)
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

    Returns:
        A :class:`~torchvision.models.detection.MaskRCNN` with about 2.9 M
        parameters for the defaults. In train mode ``model(images, targets)``
        returns the dict of losses (:data:`LOSS_NAMES`); in eval mode
        ``model(images)`` returns one prediction dict per image.
    """
    _check_positive_ints("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background too and must be >= 2, got {num_classes}")
    widths = _check_positive_ints("widths", widths, 5)
    anchor_sizes = _check_positive_ints("anchor_sizes", anchor_sizes, 5)
    for name, value in (("fpn_channels", fpn_channels), ("image_size", image_size), ("mask_convs", mask_convs),
                        ("box_width", box_width), ("rois_per_image", rois_per_image),
                        ("rpn_anchors_per_image", rpn_anchors_per_image)):
        _check_positive_ints(name, value)
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
        box_roi_pool=MultiScaleRoIAlign(names, output_size=7, sampling_ratio=sampling_ratio),
        box_head=TwoMLPHead(fpn_channels * 7 * 7, box_width),
        box_predictor=FastRCNNPredictor(box_width, num_classes),
        box_batch_size_per_image=rois_per_image,
        box_positive_fraction=0.5,  # up to 16 of the 32 RoIs are objects: more mask-loss samples per step
        mask_roi_pool=MultiScaleRoIAlign(names, output_size=14, sampling_ratio=sampling_ratio),
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
    _check_positive_ints("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background too and must be >= 2, got {num_classes}")
    heads = model.roi_heads
    heads.box_predictor = FastRCNNPredictor(heads.box_predictor.cls_score.in_features, num_classes)
    mask_in = heads.mask_predictor.conv5_mask.in_channels
    hidden = heads.mask_predictor.conv5_mask.out_channels
    heads.mask_predictor = MaskRCNNPredictor(mask_in, hidden, num_classes)
    return model


def detection_class_names(config: SceneConfig = SCENE_CONFIG) -> tuple[str, ...]:
    """Names of the model's classes for scenes of ``config``: ``("background", *shapes)``."""
    if not isinstance(config, SceneConfig):
        raise TypeError(f"config must be a SceneConfig, got {type(config).__name__}")
    return ("background",) + config.shapes


def scene_targets(scenes: SceneBatch) -> list[dict[str, torch.Tensor]]:
    """torchvision training targets of generated scenes, one dict per scene.

    Args:
        scenes: a :class:`~seglib.data.SceneBatch` of ``B`` scenes.

    Returns:
        ``B`` dicts with ``boxes`` float32 ``(n, 4)`` xyxy, ``labels`` int64
        ``(n,)`` in ``1..K`` (thing class id minus the number of stuff classes,
        plus 1) and ``masks`` bool ``(n, H, W)``, on the scenes' device.
    """
    if not isinstance(scenes, SceneBatch):
        raise TypeError(f"scenes must be a SceneBatch, got {type(scenes).__name__}")
    shift = len(scenes.config.stuff_names) - 1
    return [dict(t, labels=t["labels"] - shift) for t in scenes.detection_targets()]


def scene_panoptic(predictions: Sequence[dict], scenes: SceneBatch, score_threshold: float = 0.5) -> torch.Tensor:
    """Panoptic maps of Mask R-CNN predictions on generated scenes, over the true stuff.

    Things come from the predictions (labels mapped back to scene class ids,
    pasted by :func:`~seglib.instance_metrics.panoptic_from_instances`);
    stuff comes from the scenes' semantic maps, completed under the true
    things by :func:`~seglib.instance_metrics.fill_stuff`. So the panoptic
    quality of these maps judges the things only through Mask R-CNN.

    Args:
        predictions: ``B`` dicts of :func:`predict` (bool masks).
        scenes: the ``B`` scenes they were predicted on.
        score_threshold: instances below this score are left out.

    Returns:
        int64 ``(B, H, W)`` panoptic maps (``class * 1000 + instance``), like
        ``scenes.panoptic``.
    """
    if not isinstance(scenes, SceneBatch):
        raise TypeError(f"scenes must be a SceneBatch, got {type(scenes).__name__}")
    if len(predictions) != len(scenes):
        raise ValueError(f"predictions must hold one dict per scene ({len(scenes)}), got {len(predictions)}")
    stuff = fill_stuff(scenes.semantic.cpu(), scenes.config.stuff_ids)
    shift = len(scenes.config.stuff_names) - 1
    return torch.stack([
        panoptic_from_instances(p["masks"], p["labels"] + shift, p["scores"], s, score_threshold,
                                divisor=PANOPTIC_DIVISOR)
        for p, s in zip(predictions, stuff)])


def collate(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """``DataLoader`` collate for detection: images and targets stay lists (sizes may differ)."""
    if not isinstance(batch, (list, tuple)) or not batch:
        raise ValueError(f"batch must be a non-empty list of (image, target) pairs, got {batch!r:.60}")
    images, targets = zip(*batch)
    return list(images), list(targets)


def detection_batches(config: SceneConfig = SCENE_CONFIG, batch_size: int = 4, seed: int = 0,
                      device: torch.device | str = "cpu") -> Iterator[tuple[tuple[list, list], None]]:
    """Endless training batches for :func:`seglib.train.train` with :func:`detection_forward`.

    Each item is ``((images, targets), None)``: ``images`` a list of ``B``
    float ``(3, H, W)`` tensors and ``targets`` the :func:`scene_targets` of
    freshly generated scenes (on ``device``). The model needs the targets as
    input in train mode, so they travel with the inputs.
    """
    for scenes in scene_stream(batch_size, config, seed=seed, device=device):
        yield (list(scenes.images), scene_targets(scenes)), None


def dataset_batches(dataset, batch_size: int = 2, seed: int = 0,
                    device: torch.device | str = "cpu") -> Iterator[tuple[tuple[list, list], None]]:
    """Endless shuffled training batches from a detection ``Dataset`` of ``(image, target)`` pairs.

    Same format as :func:`detection_batches`; each epoch visits every item
    once in a new seeded order, and the batch is moved to ``device``.
    """
    _check_positive_ints("batch_size", batch_size)
    if len(dataset) < batch_size:
        raise ValueError(f"batch_size {batch_size} exceeds the {len(dataset)} items of the dataset")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(dataset), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            images, targets = collate([dataset[i] for i in order[start:start + batch_size]])
            yield ([image.to(device) for image in images],
                   [{k: v.to(device) for k, v in target.items()} for target in targets]), None


def detection_forward(model: nn.Module, inputs: tuple[list, list]) -> dict[str, torch.Tensor]:
    """``forward`` for :func:`seglib.train.train`: ``model(images, targets)`` -> loss dict."""
    images, targets = inputs
    return model(images, targets)


class LossLog:
    """Loss function for :func:`seglib.train.train` that also logs each loss term.

    ``loss_log(loss_dict, _)`` returns the sum of the terms and keeps them
    (detached, on their device: no host synchronisation per step).

    Attributes:
        terms: loss name -> list of per-step values (tensors until read).
    """

    def __init__(self) -> None:
        self.terms: dict[str, list[torch.Tensor]] = {}

    def __call__(self, losses: dict[str, torch.Tensor], _targets=None) -> torch.Tensor:
        if not isinstance(losses, dict) or not losses:
            raise TypeError("LossLog expects the loss dict of a detection model in train mode, "
                            f"got {type(losses).__name__}")
        for name, value in losses.items():
            self.terms.setdefault(name, []).append(value.detach())
        return sum(losses.values())

    def curves(self, every: int = 10) -> dict[str, list[float]]:
        """Mean of each term over consecutive windows of ``every`` steps."""
        _check_positive_ints("every", every)
        curves = {}
        for name, values in self.terms.items():
            stacked = torch.stack(values).float().cpu()
            usable = (len(stacked) // every) * every
            curves[name] = stacked[:usable].view(-1, every).mean(dim=1).tolist() if usable else []
        return curves

    def plot(self, every: int = 10, ax=None):
        """The loss terms against the training step, on a log scale; returns the axes."""
        ax = ax or plt.gca()
        curves = self.curves(every)
        for name in [n for n in LOSS_NAMES if n in curves] + [n for n in curves if n not in LOSS_NAMES]:
            values = curves[name]
            ax.plot([every * (i + 1) for i in range(len(values))], values, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        return ax


@torch.no_grad()
def predict(model: nn.Module, images, batch_size: int = 32, mask_threshold: float = 0.5) -> list[dict]:
    """Run a detection model in eval mode; predictions come back on the CPU.

    Args:
        model: a torchvision detection model (it is not moved).
        images: float ``(N, 3, H, W)`` in [0, 1] or a list of ``(3, H_i, W_i)``.
        batch_size: images per forward pass.
        mask_threshold: probability above which a mask pixel is on.

    Returns:
        ``N`` dicts: ``boxes`` ``(n, 4)``, ``labels`` ``(n,)``, ``scores``
        ``(n,)`` (sorted by score) and ``masks`` bool ``(n, H, W)``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"images must be float (N,3,H,W), got {images.dtype} {tuple(images.shape)}")
        images = list(images)
    if not isinstance(images, (list, tuple)) or not images:
        raise ValueError("images must be a non-empty (N,3,H,W) tensor or list of (3,H,W) tensors")
    _check_positive_ints("batch_size", batch_size)
    if not 0 <= mask_threshold <= 1:
        raise ValueError(f"mask_threshold must be in [0, 1], got {mask_threshold}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    try:
        for start in range(0, len(images), batch_size):
            batch = [image.to(device) for image in images[start:start + batch_size]]
            for output in model(batch):
                output = {k: v.cpu() for k, v in output.items()}
                if "masks" in output:
                    output["masks"] = output["masks"][:, 0] > mask_threshold
                outputs.append(output)
    finally:
        model.train(was_training)
    return outputs


def level_anchors(model: MaskRCNN, image_size: int, point: tuple[float, float]) -> dict[str, torch.Tensor]:
    """The anchors of every FPN level centred nearest to ``point``.

    Args:
        model: a Mask R-CNN (its anchor generator and backbone strides are used).
        image_size: side of the square input image in pixels.
        point: ``(x, y)`` in pixels.

    Returns:
        FPN level name -> float ``(A, 4)`` xyxy anchors (``A`` aspect ratios).
    """
    if not isinstance(model, MaskRCNN):
        raise TypeError(f"model must be a torchvision MaskRCNN, got {type(model).__name__}")
    _check_positive_ints("image_size", image_size)
    x, y = (float(v) for v in point)
    generator = model.rpn.anchor_generator
    device = next(model.parameters()).device
    with torch.no_grad():
        was_training = model.training
        model.eval()
        try:
            features = model.backbone(torch.zeros(1, 3, image_size, image_size, device=device))
        finally:
            model.train(was_training)
    result = {}
    for (name, feature), base in zip(features.items(), generator.cell_anchors):
        stride = image_size / feature.shape[-1]
        # anchors are centred on multiples of the stride (top-left corner of each cell)
        cx = min(round(x / stride), feature.shape[-1] - 1) * stride
        cy = min(round(y / stride), feature.shape[-2] - 1) * stride
        result[name] = base.cpu() + torch.tensor([cx, cy, cx, cy])
    return result


def show_detections(image: torch.Tensor, prediction: dict, class_names: Sequence[str], score_threshold: float = 0.5,
                    ax=None, title: str | None = None):
    """Masks and captioned boxes of one prediction (or target) over its image.

    Args:
        image: float ``(3, H, W)`` in [0, 1].
        prediction: ``masks`` bool ``(n, H, W)``, ``boxes`` ``(n, 4)``,
            ``labels`` ``(n,)`` and optionally ``scores`` ``(n,)``: only
            instances scoring at least ``score_threshold`` are drawn.
        class_names: name of each label (index = label).

    Returns:
        The matplotlib axes.
    """
    for key in ("masks", "boxes", "labels"):
        if key not in prediction:
            raise ValueError(f"prediction must have key {key!r}, got keys {sorted(prediction)}")
    scores = prediction.get("scores")
    keep = scores >= score_threshold if scores is not None else torch.ones(len(prediction["labels"]), dtype=torch.bool)
    labels = prediction["labels"][keep].cpu()
    captions = [class_names[int(k)] + (f" {float(s):.2f}" if scores is not None else "")
                for k, s in zip(labels, scores[keep] if scores is not None else labels)]
    drawn = overlay_masks(image, prediction["masks"][keep].cpu().bool(), labels)
    drawn = overlay_boxes(drawn, prediction["boxes"][keep].float().cpu(), captions, labels, width=1)
    return show_image(drawn, ax=ax, title=title)
