"""Evaluating a segmentation model over a data set.

* :class:`SegmentationMeter`: accumulates the dataset-level confusion matrix and
  the per-image boundary F1 over batches;
* :func:`evaluate_segmentation`: runs a model over images and label maps with it;
* :func:`scene_evaluator`: ``model -> metrics`` on a fixed split of generated scenes,
  as flat floats (:func:`flat_metrics`, the form the model zoo stores).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from seglib.common import eval_mode
from seglib.data.shapes import SceneConfig, split_scenes
from seglib.metrics.semantic import (
    _boundary_f1_per_image,
    _check_ignore_index,
    _check_label_map,
    _check_pair,
    _confusion_matrices,
    iou_per_class,
    mean_dice,
    mean_iou,
    pixel_accuracy,
)
from seglib.validation import check_image, check_int, check_label_map, check_logits, check_tensor


class SegmentationMeter:
    """Accumulates dataset-level segmentation metrics over batches.

    The meter sums one confusion matrix over every batch (so ``miou`` is the
    dataset-level mIoU, not a mean of per-batch values) and keeps the sum and
    count of per-image boundary F1 scores (see :func:`~seglib.metrics.semantic.boundary_f1`).

    Example::

        meter = SegmentationMeter(num_classes=6)
        for images, labels in loader:
            meter.update(model(images), labels)
        meter.compute()["miou"]

    Attributes:
        confusion: int64 ``(C, C)`` confusion matrix on the CPU.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255, boundary_tolerance: int = 2) -> None:
        check_int("num_classes", num_classes, 1)
        _check_ignore_index(ignore_index)
        check_int("boundary_tolerance", boundary_tolerance, 0)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.boundary_tolerance = boundary_tolerance
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        self._boundary_sum = 0.0
        self._boundary_images = 0

    def _labels(self, pred_or_logits: Any, target: Any) -> torch.Tensor:
        """Predicted labels ``(B, H, W)`` from logits ``(B, C, H, W)`` or labels."""
        check_tensor("pred_or_logits", pred_or_logits, "(B, C, H, W) of logits or (B, H, W) of labels", "number",
                     (2, 3, 4))
        if pred_or_logits.dim() == 4 and not pred_or_logits.is_floating_point():
            raise TypeError(f"pred_or_logits of shape (B, C, H, W) is read as logits and must be float, "
                            f"got dtype {pred_or_logits.dtype}")
        if pred_or_logits.is_floating_point():
            check_logits("pred_or_logits", pred_or_logits, ndim=range(5))
            _check_label_map("target", target)
            expected = (target.shape[0], self.num_classes, *target.shape[1:])
            if pred_or_logits.dim() != 4 or tuple(pred_or_logits.shape) != expected:
                raise ValueError(
                    f"pred_or_logits: float input is read as logits and must have shape (B,C,H,W) = {expected} "
                    f"for target {tuple(target.shape)} and num_classes={self.num_classes}, "
                    f"got {tuple(pred_or_logits.shape)}"
                )
            return pred_or_logits.argmax(dim=1)
        return pred_or_logits

    def update(self, pred_or_logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch.

        Args:
            pred_or_logits: float logits ``(B, C, H, W)`` (argmax over C is
                taken) or integer predicted labels ``(B, H, W)``.
            target: integer label map ``(B, H, W)`` with ``ignore_index`` for
                pixels to skip.
        """
        pred = self._labels(pred_or_logits, target)
        per_image = _confusion_matrices(pred, target, self.num_classes, self.ignore_index)
        self.confusion += per_image.sum(dim=0).cpu()
        pred, target = _check_pair(pred, target)
        scores = _boundary_f1_per_image(pred, target, self.num_classes, self.boundary_tolerance, self.ignore_index)
        defined = ~torch.isnan(scores)
        self._boundary_sum += float(scores[defined].sum())
        self._boundary_images += int(defined.sum())

    def compute(self) -> dict[str, Any]:
        """The metrics of everything seen since the last :meth:`reset`.

        Returns:
            ``{"miou": float, "pixel_accuracy": float, "mean_dice": float,
            "iou": list of C floats (NaN for absent classes), "boundary_f1": float}``.
        """
        if int(self.confusion.sum()) == 0:
            raise RuntimeError("SegmentationMeter.compute(): no labelled pixel seen yet; call update() first")
        boundary = self._boundary_sum / self._boundary_images if self._boundary_images else math.nan
        return {
            "miou": mean_iou(self.confusion),
            "pixel_accuracy": pixel_accuracy(self.confusion),
            "mean_dice": mean_dice(self.confusion),
            "iou": iou_per_class(self.confusion).tolist(),
            "boundary_f1": boundary,
        }



def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")



def _logits_of(output: Any) -> torch.Tensor:
    """The logits tensor of a model output: the tensor itself or ``output["out"]``."""
    if isinstance(output, dict):
        if "out" not in output:
            raise ValueError(f"model output is a dict without key 'out' (keys: {sorted(output)})")
        output = output["out"]
    if not isinstance(output, torch.Tensor) or not output.is_floating_point():
        raise TypeError(f"model must return float logits (B,C,H,W) or a dict with 'out', got {type(output).__name__}")
    return output



def evaluate_segmentation(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    ignore_index: int | None = 255,
) -> dict[str, Any]:
    """Run ``model`` over a data set and return :meth:`SegmentationMeter.compute`.

    The model runs in eval mode under ``torch.no_grad``; its training mode is
    restored afterwards. It must return logits ``(B, C, H, W)`` at the label
    resolution, or a dict whose ``"out"`` holds them (torchvision segmentation
    models).

    Args:
        model: the network; it is not moved.
        images: float ``(N, 3, H, W)`` images.
        labels: integer ``(N, H, W)`` label maps.
        num_classes: C.
        batch_size: images per forward pass, ``>= 1``.
        device: where batches are sent; default: the device of the model's
            first parameter (CPU for a model without parameters).
        ignore_index: label value to skip, or ``None``.

    Returns:
        The dict of :meth:`SegmentationMeter.compute`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_image("images", images, batched=True)
    check_label_map("labels", labels, num_classes, ignore_index, "(N, H, W)", ndim=range(5))
    if labels.dim() != 3 or labels.shape[0] != images.shape[0] or labels.shape[1:] != images.shape[2:]:
        raise ValueError(
            f"labels must have shape (N,H,W) = {(images.shape[0], *images.shape[2:])} to match images "
            f"{tuple(images.shape)}, got {tuple(labels.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError("images must hold at least one image, got N=0")
    check_int("batch_size", batch_size, 1)
    device = torch.device(device) if device is not None else _model_device(model)
    meter = SegmentationMeter(num_classes, ignore_index)
    with eval_mode(model), torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device)
            meter.update(_logits_of(model(batch)), labels[start : start + batch_size].to(device))
    return meter.compute()


def flat_metrics(result: dict, class_names: tuple[str, ...]) -> dict[str, float]:
    """:func:`seglib.metrics.evaluate_segmentation`'s result as a flat dict of floats.

    Keys: ``miou``, ``boundary_f1``, ``pixel_accuracy`` and ``iou_<class name>``
    for every class (the form the model zoo's manifest stores).
    """
    if not isinstance(result, dict) or "iou" not in result:
        raise TypeError(f"result must be the dict of evaluate_segmentation, got {type(result).__name__}")
    if len(result["iou"]) != len(class_names):
        raise ValueError(f"class_names must name the {len(result['iou'])} classes of result, "
                         f"got {len(class_names)}: {class_names!r}")
    flat = {key: float(result[key]) for key in ("miou", "boundary_f1", "pixel_accuracy")}
    flat.update({f"iou_{name}": float(value) for name, value in zip(class_names, result["iou"])})
    return flat



def scene_evaluator(config: SceneConfig, split: str = "val", n: int | None = None
                    ) -> Callable[[nn.Module], dict[str, float]]:
    """A function ``model -> metrics`` on a fixed split of generated scenes.

    The scenes are generated once (on the CPU) and moved to the model's device
    at each call. The metrics are those of :func:`flat_metrics`, from the
    dataset-level confusion matrix and a boundary F1 tolerance of 2 pixels.

    Args:
        config: generator options of the scenes.
        split: ``"train"``, ``"val"`` or ``"test"``.
        n: number of scenes (``None``: the whole split).
    """
    scenes = split_scenes(split, config, n)

    def evaluate(model: nn.Module) -> dict[str, float]:
        result = evaluate_segmentation(model, scenes.images, scenes.semantic, config.num_classes,
                                       batch_size=128)
        return flat_metrics(result, config.class_names)

    return evaluate
