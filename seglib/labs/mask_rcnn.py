"""Notebook 05's lab: the small Mask R-CNN trained, unpacked, judged, and its model-zoo recipe.

The model (:func:`seglib.models.maskrcnn.build_maskrcnn`) trains on fresh
128 x 128 scenes (:data:`CONFIG`), four per
step, with AdamW (learning rate 2e-3, weight decay 1e-4, cosine decay after a
short warm-up) and gradient clipping at norm 1.0, in float32 on every device.
It is judged on the first :data:`TEST_SCENES` scenes of the fixed test split
with COCO's evaluator (mask and box AP, :func:`coco_summary`) and by its
panoptic quality. :func:`rpn_stages` unpacks the region proposal network on
one image (anchor labels, candidates, NMS), :func:`error_counts` sorts the
detections into kinds of error, and :func:`roi_strides` tells which pyramid
level the heads read for a box; the zoo entry ``maskrcnn_canonical56`` is the
same recipe with :data:`MATCHED_CANONICAL_SCALE`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN

from seglib.common import eval_mode
from seglib.data.detection import detection_batches, scene_targets
from seglib.data.shapes import PANOPTIC_DIVISOR, SceneBatch, SceneConfig, split_scenes
from seglib.metrics.instance import coco_mask_ap
from seglib.metrics.panoptic import fill_stuff, panoptic_from_instances, panoptic_quality, panoptic_summary
from seglib.metrics.uncertainty import Estimate, bootstrap_interval
from seglib.ops.roi import sampling_points, snap_boxes
from seglib.train import History
from seglib.train import train as train_loop
from seglib.validation import check_boxes, check_choice, check_image, check_int
from seglib.zoo import Recipe

CONFIG = SceneConfig(size=128)
"""The scenes of notebook 05: 128 x 128, the default classes."""
#: torchvision's names of the five training losses, in the order of the lecture.
LOSS_NAMES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask")
BATCH_SIZE = 4
LEARNING_RATE = 2e-3
#: Test scenes of every evaluation (a multiple of 128: a prefix of the 500-scene split).
TEST_SCENES = 256
#: Training steps of the zoo entry ``maskrcnn``.
ZOO_STEPS = 3000
#: Canonical scale of the zoo entry ``maskrcnn_canonical56``: a 56-pixel box is read from the stride-16 level,
#: which spreads our objects (18 to 80 pixels) over the strides 4, 8 and 16 (torchvision's 224 puts all at 4).
MATCHED_CANONICAL_SCALE = 56


def evaluation_scenes(n: int = TEST_SCENES):
    """The first ``n`` scenes of the fixed test split at 128 x 128 (CPU)."""
    return split_scenes("test", CONFIG, n=n)


LOSSES = ("maskrcnn",)
"""Loss names of :func:`train`: the sum of torchvision's five Mask R-CNN losses (:data:`LOSS_NAMES`)."""

ZOO_ENTRIES: dict[str, Recipe] = {
    "maskrcnn": Recipe(lab="mask_rcnn", builder="maskrcnn", kwargs={}, steps=ZOO_STEPS, batch_size=BATCH_SIZE,
                       lr=LEARNING_RATE, loss="maskrcnn", seed=0),
    f"maskrcnn_canonical{MATCHED_CANONICAL_SCALE}": Recipe(
        lab="mask_rcnn", builder="maskrcnn", kwargs={"canonical_scale": MATCHED_CANONICAL_SCALE}, steps=ZOO_STEPS,
        batch_size=BATCH_SIZE, lr=LEARNING_RATE, loss="maskrcnn", seed=0),
}
"""The zoo entries ``maskrcnn`` and ``maskrcnn_canonical56``, the same recipe with the RoI levels of
:data:`MATCHED_CANONICAL_SCALE` (run by ``make zoo NAME=...``)."""


def train(model: nn.Module, steps: int, *, batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE,
          loss: str = "maskrcnn", seed: int = 0, eval_every: int | None = None,
          evaluate: Callable[[nn.Module], dict] | None = None, device: torch.device | str = "cpu",
          log: "LossLog | None" = None, progress: bool = True, desc: str = "Mask R-CNN") -> History:
    """Train a torchvision Mask R-CNN in place on fresh generated scenes for ``steps`` steps.

    AdamW with weight decay 1e-4, gradient clipping at norm 1.0, float32 (no
    autocast) on every device.

    Args:
        model: a Mask R-CNN whose classes are ``background + CONFIG.shapes``.
        steps: optimiser steps.
        batch_size: scenes per step.
        lr: peak learning rate of AdamW.
        loss: ``"maskrcnn"``, the sum of the five losses.
        seed: seed of the training scenes.
        eval_every, evaluate: as for :func:`seglib.train.train`.
        device: where to train (the scenes are generated there).
        log: a :class:`LossLog` that records every loss term, if given.
        progress: show a progress bar.

    Returns:
        The :class:`~seglib.train.History` of the total loss.
    """
    check_choice("loss", loss, LOSSES)
    return train_loop(model.to(device), detection_batches(CONFIG, batch_size, seed, device), log or LossLog(),
                      steps=steps, lr=lr, weight_decay=1e-4, grad_clip=1.0, forward=detection_forward, amp=False,
                      channels_last=False, evaluate=evaluate, eval_every=eval_every, progress=progress, desc=desc)


def scene_metrics(predictions: list[dict], scenes) -> dict[str, float]:
    """COCO mask and box AP, AP50, AP75 and panoptic quality of predictions on generated scenes.

    Args:
        predictions: one dict per scene from :func:`predict`.
        scenes: the :class:`~seglib.data.SceneBatch` they were made on.

    Returns:
        COCO's twelve summary numbers for masks and for boxes (``mask_ap``,
        ``mask_ap50`` ... ``box_ar_large``, see
        :func:`~seglib.metrics.instance.coco_mask_ap`), and ``pq``, ``sq``,
        ``rq`` (floats in [0, 1] or NaN, 4 decimals). PQ uses the true stuff
        (:func:`scene_panoptic`).
    """
    coco = coco_mask_ap(predictions, scene_targets(scenes), categories=list(range(1, len(scenes.config.shapes) + 1)))
    metrics = {key: value for key, value in coco.items() if key.startswith(("mask_", "box_"))}
    panoptic = panoptic_quality(scene_panoptic(predictions, scenes), scenes.panoptic,
                                scenes.config.thing_ids, scenes.config.stuff_ids)
    metrics.update({key: panoptic[key] for key in ("pq", "sq", "rq")})
    return {key: round(value, 4) for key, value in metrics.items()}


def evaluate(model: nn.Module, n: int = TEST_SCENES) -> dict[str, float]:
    """:func:`scene_metrics` of ``model`` on the first ``n`` test scenes."""
    scenes = evaluation_scenes(n)
    return scene_metrics(predict(model, scenes.images), scenes)


def scene_panoptic(predictions: Sequence[dict], scenes: SceneBatch, score_threshold: float = 0.5) -> torch.Tensor:
    """Panoptic maps of Mask R-CNN predictions on generated scenes, over the true stuff.

    Things come from the predictions (labels mapped back to scene class ids,
    pasted by :func:`~seglib.metrics.panoptic.panoptic_from_instances`);
    stuff comes from the scenes' semantic maps, completed under the true
    things by :func:`~seglib.metrics.panoptic.fill_stuff`. So the panoptic
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
        check_int("every", every)
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
        ax.legend()
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
        check_image("images", images, batched=True)
        images = list(images)
    if not isinstance(images, (list, tuple)):
        raise TypeError(f"images must be a (N,3,H,W) tensor or a list of (3,H,W) tensors, got {type(images).__name__}")
    if not images:
        raise ValueError("images must hold at least one image, got an empty list")
    for i, image in enumerate(images):
        check_image(f"images[{i}]", image)
    check_int("batch_size", batch_size)
    if not 0 <= mask_threshold <= 1:
        raise ValueError(f"mask_threshold must be in [0, 1], got {mask_threshold}")
    device = next(model.parameters()).device
    outputs = []
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            batch = [image.to(device) for image in images[start:start + batch_size]]
            for output in model(batch):
                output = {k: v.cpu() for k, v in output.items()}
                if "masks" in output:
                    output["masks"] = output["masks"][:, 0] > mask_threshold
                outputs.append(output)
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
    check_int("image_size", image_size)
    x, y = (float(v) for v in point)
    generator = model.rpn.anchor_generator
    device = next(model.parameters()).device
    with torch.no_grad(), eval_mode(model):
        features = model.backbone(torch.zeros(1, 3, image_size, image_size, device=device))
    result = {}
    for (name, feature), base in zip(features.items(), generator.cell_anchors):
        stride = image_size / feature.shape[-1]
        # anchors are centred on multiples of the stride (top-left corner of each cell)
        cx = min(round(x / stride), feature.shape[-1] - 1) * stride
        cy = min(round(y / stride), feature.shape[-2] - 1) * stride
        result[name] = base.cpu() + torch.tensor([cx, cy, cx, cy])
    return result


def show_roi_sampling(box: torch.Tensor, stride: float, feature_size: int, output_size: int = 2,
                      sampling_ratio: int = 2, ax=None):
    """Figure 3 of the Mask R-CNN paper for a real box: grid, bins, sample points, and RoIPool's cells.

    Drawn in feature cells with the pixel-centre convention (``aligned=True``):
    dashed lines are the feature cells, the solid blue box the RoI and its
    bins, dots the bilinear sample points, the red area the cells RoIPool
    pools instead.

    Args:
        box: float ``(4,)`` xyxy in image pixels.
        stride: image pixels per feature cell.
        feature_size: cells per side of the (square) feature map.
        output_size: bins per side.
        sampling_ratio: sample points per bin side.

    Returns:
        The matplotlib axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    box = check_boxes("box", box, "(4,)")
    ax = ax or plt.gca()
    for k in range(feature_size + 1):
        ax.axhline(k, color="0.6", lw=0.8, ls="--")
        ax.axvline(k, color="0.6", lw=0.8, ls="--")
    pooled = snap_boxes(box[None], stride)[0] / stride
    ax.add_patch(Rectangle((pooled[0], pooled[1]), pooled[2] - pooled[0], pooled[3] - pooled[1],
                           color="#D55E00", alpha=0.25, label="RoIPool: whole cells"))
    x1, y1, x2, y2 = (float(v) / stride for v in box)
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="#0072B2", lw=2, label="RoI (RoIAlign)"))
    for k in range(1, output_size):
        ax.plot([x1 + k * (x2 - x1) / output_size] * 2, [y1, y2], color="#0072B2", lw=1)
        ax.plot([x1, x2], [y1 + k * (y2 - y1) / output_size] * 2, color="#0072B2", lw=1)
    y, x = sampling_points(box, output_size, 1 / stride, sampling_ratio, aligned=True)
    ax.scatter(x.flatten() + 0.5, y.flatten() + 0.5, s=14, color="#0072B2", zorder=3, label="sample points")
    ax.set_xlim(0, feature_size)
    ax.set_ylim(feature_size, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def show_rpn_stages(image: torch.Tensor, stages: dict[str, torch.Tensor], candidates: int = 60, size: float = 4.2):
    """Three panels of :func:`rpn_stages`: labelled anchors, candidates before NMS, proposals after.

    Args:
        image: float ``(3, H, W)`` in [0, 1].
        stages: the dict of :func:`rpn_stages`.
        candidates: how many of the best-scoring candidates the middle panel draws.
        size: inches per panel.

    Returns:
        The figure.
    """
    from matplotlib.patches import Rectangle

    from seglib.viz import show_image

    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size + 0.4), layout="constrained")
    labels = stages["anchor_labels"]
    best = stages["candidate_scores"].argsort(descending=True)[:candidates]
    panels = [
        (f"anchors: {int((labels == 1).sum())} positive, {int((labels == -1).sum())} ignored",
         [(stages["anchors"][labels == -1], "#E69F00", "--", 1.0), (stages["anchors"][labels == 1], "#009E73", "-", 2.5)]),
        (f"best {len(best)} of {len(stages['candidates'])} candidates (before NMS)",
         [(stages["candidates"][best], "#D55E00", "-", 1.0)]),
        (f"{len(stages['proposals'])} proposals (after NMS)", [(stages["proposals"], "#0072B2", "-", 1.2)]),
    ]
    for ax, (title, groups) in zip(axes, panels):
        show_image(image, ax=ax)
        ax.set_title(title, fontsize=12)
        for boxes, colour, style, width in groups:
            for x1, y1, x2, y2 in boxes.tolist():
                ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour,
                                       linestyle=style, linewidth=width))
    return fig


def things_pq_gap(a: dict, b: dict, things: Sequence[int], stuffs: Sequence[int], resamples: int = 1000) -> Estimate:
    """PQ of the things of ``a`` minus that of ``b``, with a paired bootstrap interval over the images.

    Args:
        a, b: results of :func:`~seglib.metrics.panoptic.panoptic_quality` on the same images
            (their ``per_image`` statistics are resampled together).
        things, stuffs: the class ids passed to it, in the same order.
    """
    classes = list(things) + list(stuffs)
    for name, result in (("a", a), ("b", b)):
        if not isinstance(result, dict) or "per_image" not in result:
            raise TypeError(f"{name} must be a panoptic_quality result with 'per_image', got {type(result).__name__}")
    if a["per_image"].shape != b["per_image"].shape or a["per_image"].shape[1] != len(classes):
        raise ValueError(f"a and b must cover the same images and the {len(classes)} classes, got "
                         f"{tuple(a['per_image'].shape)} and {tuple(b['per_image'].shape)}")

    def gap(index: torch.Tensor) -> float:
        return (panoptic_summary(a["per_image"][index].sum(dim=0), classes, things)["pq_things"]
                - panoptic_summary(b["per_image"][index].sum(dim=0), classes, things)["pq_things"])

    value = gap(torch.arange(a["per_image"].shape[0]))
    low, high = bootstrap_interval(gap, a["per_image"].shape[0], resamples=resamples)
    return Estimate(value, min(low, value), max(high, value))
