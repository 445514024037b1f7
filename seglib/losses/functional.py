"""Segmentation losses as functions, written out for teaching.

All losses take raw logits ``(B, C, H, W)`` (models never apply softmax) and
an int64 label map ``(B, H, W)`` whose ``ignore_index`` pixels (255 by
default) take no part in the loss. They return a scalar tensor.

* :func:`cross_entropy`: pixel-wise cross entropy, from scratch; matches
  ``torch.nn.functional.cross_entropy``.
* :func:`focal_loss`: cross entropy that down-weights pixels already right.
* :func:`soft_dice_loss`, :func:`tversky_loss`: overlap losses computed on
  probabilities, insensitive to how many pixels a class has.
* :func:`mask_losses`: binary cross-entropy plus soft Dice of every
  candidate mask of every row (promptable models pick the best candidate).
* :func:`class_weights`: per-class weights from label frequencies, for the
  ``weight`` of cross entropy or the ``alpha`` of the focal loss.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from seglib.validation import check_logits, check_masks, check_tensor

__all__ = [
    "CLASS_WEIGHT_METHODS",
    "class_weights",
    "cross_entropy",
    "focal_loss",
    "mask_losses",
    "soft_dice_loss",
    "tversky_loss",
]

CLASS_WEIGHT_METHODS = ("inverse_frequency", "inverse_sqrt_frequency")


# -- input checks ---------------------------------------------------------------------------------


def _check_logits(logits: Any, name: str = "logits") -> None:
    check_logits(name, logits, "(B, C, H, W)", ndim=range(2, 6))
    if logits.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image, got an empty batch {tuple(logits.shape)}")


def _check_target(logits: torch.Tensor, target: Any, ignore_index: int | None, num_ids: int) -> torch.Tensor:
    """Check ``target`` against ``logits`` and return the bool mask of pixels that count.

    ``num_ids`` is how many class ids are allowed: ``[0, num_ids)``.
    """
    if not isinstance(target, torch.Tensor) or target.dtype == torch.bool or target.is_floating_point():
        got = target.dtype if isinstance(target, torch.Tensor) else type(target).__name__
        raise TypeError(f"target must be an integer label map (int64, (B,H,W)), got {got}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target must have shape (B,H,W) = {expected} to match logits {tuple(logits.shape)}, "
            f"got {tuple(target.shape)}"
        )
    if target.device != logits.device:
        raise ValueError(f"target must be on the logits' device {logits.device}, got {target.device}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    values = target[valid]
    bad = (values < 0) | (values >= num_ids)
    if bool(bad.any()):
        raise ValueError(
            f"target must hold class ids in [0, {num_ids}) or ignore_index={ignore_index} "
            f"(logits have C={logits.shape[1]} channels), got {int(bad.sum())} pixel(s) with other values, "
            f"e.g. {int(values[bad][0])}"
        )
    return valid


def _per_class_tensor(name: str, value: Any, logits: torch.Tensor) -> torch.Tensor:
    """Check a per-class weight vector and return it as ``(C,)`` on the logits' device and dtype."""
    num_classes = logits.shape[1]
    if not isinstance(value, torch.Tensor):
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise TypeError(
                f"{name} must be a tensor or sequence of {num_classes} floats, got {type(value).__name__}"
            )
        value = torch.tensor(value, dtype=logits.dtype)
    if value.shape != (num_classes,):
        raise ValueError(
            f"{name} must have shape (C,) = ({num_classes},), one value per class, got {tuple(value.shape)}"
        )
    value = value.to(device=logits.device, dtype=logits.dtype)
    if not bool(torch.isfinite(value).all()) or bool((value < 0).any()):
        raise ValueError(f"{name} must be finite and non-negative, got {value.tolist()}")
    return value


def _check_non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return float(value)


# -- cross entropy and focal loss -----------------------------------------------------------------


def _true_class_log_prob(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p`` of the true class at every pixel ``(B, H, W)`` and the target with ignored pixels set to 0.

    ``log softmax(x)_c = x_c - log sum_k exp(x_k)``; ``logsumexp`` subtracts the
    largest logit before exponentiating, so large logits do not overflow.
    """
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    safe_target = torch.where(valid, target, torch.zeros_like(target)).long()
    return log_probs.gather(1, safe_target.unsqueeze(1)).squeeze(1), safe_target


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int | None = 255,
    weight: torch.Tensor | Sequence[float] | None = None,
) -> torch.Tensor:
    """Pixel-wise cross entropy ``-log p(true class)``, averaged over the pixels that count.

    Without ``weight`` it is the plain mean over non-ignored pixels. With
    ``weight`` each pixel counts ``weight[true class]`` times and the sum is
    divided by the sum of those weights, as ``F.cross_entropy`` does. When
    every pixel is ignored the result is NaN (0/0), as in PyTorch.

    Args:
        logits: float ``(B, C, H, W)`` (any ``(B, C, *)`` works).
        target: int64 ``(B, H, W)``, ids in ``[0, C)`` or ``ignore_index``.
        ignore_index: label of pixels to leave out, or ``None``.
        weight: optional non-negative ``(C,)`` class weights.

    Returns:
        Scalar tensor.
    """
    _check_logits(logits)
    valid = _check_target(logits, target, ignore_index, logits.shape[1])
    log_pt, safe_target = _true_class_log_prob(logits, target, valid)
    pixel_weight = valid.to(logits.dtype)
    if weight is not None:
        pixel_weight = pixel_weight * _per_class_tensor("weight", weight, logits)[safe_target]
    return -(pixel_weight * log_pt).sum() / pixel_weight.sum()


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    alpha: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int | None = 255,
) -> torch.Tensor:
    """Multi-class focal loss (Lin et al., 2017): ``-alpha_t (1 - p_t)^gamma log p_t``.

    ``p_t`` is the softmax probability of the true class. The factor
    ``(1 - p_t)^gamma`` shrinks the loss of pixels that are already right, so
    training concentrates on hard pixels. ``gamma = 0`` and ``alpha = None``
    give :func:`cross_entropy`. The result is the plain mean over
    non-ignored pixels (with ``alpha`` it is *not* divided by the sum of the
    alphas, unlike a weighted cross entropy).

    Args:
        logits: float ``(B, C, H, W)``.
        target: int64 ``(B, H, W)``, ids in ``[0, C)`` or ``ignore_index``.
        gamma: focusing parameter, ``>= 0``.
        alpha: optional non-negative ``(C,)`` class weights.
        ignore_index: label of pixels to leave out, or ``None``.

    Returns:
        Scalar tensor (NaN when every pixel is ignored).
    """
    _check_logits(logits)
    gamma = _check_non_negative("gamma", gamma)
    valid = _check_target(logits, target, ignore_index, logits.shape[1])
    log_pt, safe_target = _true_class_log_prob(logits, target, valid)
    # the clamp keeps the gradient of (1 - p_t)^gamma finite at p_t = 1 for gamma < 1
    loss = -((1 - log_pt.exp()).clamp_min(1e-12) ** gamma) * log_pt
    if alpha is not None:
        loss = loss * _per_class_tensor("alpha", alpha, logits)[safe_target]
    return (loss * valid).sum() / valid.sum()


# -- overlap losses -------------------------------------------------------------------------------


def _check_classes(classes: Any, num_classes: int) -> list[int]:
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise TypeError(f"classes must be a sequence of class ids, got {type(classes).__name__}")
    ids = list(classes)
    if not ids or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < num_classes for c in ids):
        raise ValueError(f"classes must be a non-empty list of ids in [0, {num_classes}), got {ids}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"classes must not repeat an id, got {ids}")
    return ids


def _soft_counts(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int | None,
    from_logits: bool,
    classes: Sequence[int] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft true positives, false positives and false negatives per class, each ``(K,)``.

    Sums run over the batch and all pixels that count. One channel
    (``C = 1``) means binary: sigmoid, foreground only. Otherwise softmax over
    C and one row per class of ``classes`` (all classes by default).
    """
    _check_logits(logits)
    if not isinstance(from_logits, bool):
        raise TypeError(f"from_logits must be a bool, got {type(from_logits).__name__}")
    binary = logits.shape[1] == 1
    if binary and classes is not None:
        raise ValueError("classes is for multi-class logits (C >= 2); binary logits (B,1,H,W) have one class")
    valid = _check_target(logits, target, ignore_index, 2 if binary else logits.shape[1])
    if from_logits:
        probs = torch.sigmoid(logits) if binary else torch.softmax(logits, dim=1)
    else:
        low, high = float(logits.min()), float(logits.max())
        if low < 0 or high > 1:
            raise ValueError(
                f"logits: from_logits=False means probabilities in [0, 1], got values in [{low:.4g}, {high:.4g}]"
            )
        probs = logits
    safe_target = torch.where(valid, target, torch.zeros_like(target)).long()
    if binary:
        truth = safe_target.unsqueeze(1).to(probs.dtype)
    else:
        truth = F.one_hot(safe_target, logits.shape[1]).movedim(-1, 1).to(probs.dtype)
    mask = valid.unsqueeze(1).to(probs.dtype)
    probs, truth = probs * mask, truth * mask
    dims = [0, *range(2, probs.dim())]
    tp = (probs * truth).sum(dim=dims)
    fp = (probs * (1 - truth)).sum(dim=dims)
    fn = ((1 - probs) * truth).sum(dim=dims)
    if classes is not None:
        ids = _check_classes(classes, logits.shape[1])
        tp, fp, fn = tp[ids], fp[ids], fn[ids]
    return tp, fp, fn


def _overlap_loss(
    tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, alpha: float, beta: float, smooth: float
) -> torch.Tensor:
    """``1 - mean_c (2 TP + s) / (2 TP + 2 alpha FP + 2 beta FN + s)``; a class with 0/0 scores 1, NaN stays NaN."""
    numerator = 2 * tp + smooth
    denominator = 2 * tp + 2 * alpha * fp + 2 * beta * fn + smooth
    defined = denominator != 0  # NaN counts (from NaN logits) stay NaN: a diverged model never scores 0
    safe = torch.where(defined, denominator, torch.ones_like(denominator))
    score = torch.where(defined, numerator / safe, torch.ones_like(denominator))
    return 1 - score.mean()


def soft_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int | None = 255,
    smooth: float = 1.0,
    from_logits: bool = True,
    classes: Sequence[int] | None = None,
) -> torch.Tensor:
    """Soft Dice loss ``1 - mean_c (2 sum p g + s) / (sum p + sum g + s)``.

    ``p`` are the predicted probabilities of class c, ``g`` its one-hot
    target; the sums run over the whole batch and all non-ignored pixels (one
    Dice per class for the batch, not one per image), then the classes are
    averaged. ``s = smooth`` keeps a class absent from target and prediction
    at Dice 1 and the gradient finite.

    Two modes, chosen by the number of channels:

    * multi-class: logits ``(B, C, H, W)`` with ``C >= 2``, softmax over C,
      target ids in ``[0, C)``;
    * binary: logits ``(B, 1, H, W)``, sigmoid, target in ``{0, 1}``, Dice of
      the foreground only.

    Args:
        logits: float ``(B, C, H, W)`` logits, or probabilities when
            ``from_logits=False``.
        target: int64 ``(B, H, W)`` with ``ignore_index`` for pixels to leave out.
        ignore_index: label to leave out, or ``None``.
        smooth: ``s >= 0``.
        from_logits: False when ``logits`` already holds probabilities in [0, 1].
        classes: class ids to average over (multi-class only); default all.

    Returns:
        Scalar tensor in [0, 1].
    """
    smooth = _check_non_negative("smooth", smooth)
    tp, fp, fn = _soft_counts(logits, target, ignore_index, from_logits, classes)
    return _overlap_loss(tp, fp, fn, 0.5, 0.5, smooth)


def tversky_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.5,
    beta: float = 0.5,
    ignore_index: int | None = 255,
    smooth: float = 1.0,
    from_logits: bool = True,
    classes: Sequence[int] | None = None,
) -> torch.Tensor:
    """Tversky loss (Salehi et al., 2017): Dice with separate weights on FP and FN.

    With soft counts ``TP = sum p g``, ``FP = sum p (1 - g)``,
    ``FN = sum (1 - p) g`` per class (sums as in :func:`soft_dice_loss`)::

        TI_c = (TP + s/2) / (TP + alpha FP + beta FN + s/2),   loss = 1 - mean_c TI_c

    ``alpha`` weighs false positives and ``beta`` false negatives: ``beta >
    alpha`` favours recall (fewer missed pixels of small structures).
    ``alpha = beta = 0.5`` gives :func:`soft_dice_loss` exactly, for the same
    ``smooth`` (hence ``s/2``); ``alpha = beta = 1`` gives a soft Jaccard loss.

    Args:
        logits, target, ignore_index, smooth, from_logits, classes: as in :func:`soft_dice_loss`.
        alpha: weight of false positives, ``>= 0``.
        beta: weight of false negatives, ``>= 0``.

    Returns:
        Scalar tensor in [0, 1].
    """
    alpha = _check_non_negative("alpha", alpha)
    beta = _check_non_negative("beta", beta)
    smooth = _check_non_negative("smooth", smooth)
    tp, fp, fn = _soft_counts(logits, target, ignore_index, from_logits, classes)
    return _overlap_loss(tp, fp, fn, alpha, beta, smooth)


# -- class weights and combinations ---------------------------------------------------------------


def class_weights(
    labels: torch.Tensor,
    num_classes: int,
    ignore_index: int | None = 255,
    method: str = "inverse_frequency",
) -> torch.Tensor:
    """Per-class loss weights from how often each class occurs in ``labels``.

    With ``f_c`` the fraction of non-ignored pixels of class c:

    * ``"inverse_frequency"``: ``w_c ∝ 1 / f_c``;
    * ``"inverse_sqrt_frequency"``: ``w_c ∝ 1 / sqrt(f_c)`` (milder).

    The weights are scaled so that their mean over the classes present in
    ``labels`` is 1 (a pixel weighs 1 on average over classes, so the
    learning rate keeps its meaning); classes absent from ``labels`` get 0.

    Args:
        labels: integer label maps of any shape, e.g. ``(N, H, W)``.
        num_classes: C.
        ignore_index: label of pixels not counted, or ``None``.
        method: one of :data:`CLASS_WEIGHT_METHODS`.

    Returns:
        float32 ``(C,)`` on ``labels``' device.
    """
    if not isinstance(labels, torch.Tensor) or labels.dtype == torch.bool or labels.is_floating_point():
        got = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise TypeError(f"labels must be an integer tensor of class ids, got {got}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
    if method not in CLASS_WEIGHT_METHODS:
        raise ValueError(f"method must be one of {CLASS_WEIGHT_METHODS}, got {method!r}")
    values = labels.flatten() if ignore_index is None else labels[labels != ignore_index]
    if values.numel() == 0:
        raise ValueError(f"labels has no pixel other than ignore_index={ignore_index}: no frequency to invert")
    bad = (values < 0) | (values >= num_classes)
    if bool(bad.any()):
        raise ValueError(
            f"labels must hold class ids in [0, {num_classes}) or ignore_index={ignore_index}, "
            f"got {int(bad.sum())} pixel(s) with other values, e.g. {int(values[bad][0])}"
        )
    counts = torch.bincount(values.long(), minlength=num_classes).double()
    present = counts > 0
    frequency = counts / counts.sum()
    raw = 1 / frequency if method == "inverse_frequency" else frequency.rsqrt()
    raw = torch.where(present, raw, torch.zeros_like(raw))
    return (raw / raw[present].mean()).float()




def unweighted_threshold(threshold: float, weights: torch.Tensor | Sequence[float], class_id: int = 1) -> float:
    """The threshold on an unweighted model's probability that matches ``threshold`` of a class-weighted one.

    Two classes, weights ``w0`` (the other class) and ``w1`` (``class_id``):
    where calibrated, a model trained with them estimates
    ``q = w1 p / (w1 p + w0 (1 - p))`` instead of the probability ``p``.
    Solving for ``p``: ``p = w0 q / (w0 q + w1 (1 - q))``.

    Args:
        threshold: ``q`` in (0, 1).
        weights: the two class weights ``(C=2,)``.
        class_id: the class whose probability is thresholded (0 or 1).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (2,) or not bool((w > 0).all()):
        raise ValueError(f"weights must be two positive class weights, got {w.tolist()}")
    if class_id not in (0, 1):
        raise ValueError(f"class_id must be 0 or 1, got {class_id!r}")
    w1, w0 = float(w[class_id]), float(w[1 - class_id])
    return w0 * threshold / (w0 * threshold + w1 * (1 - threshold))


def mask_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice of every candidate mask.

    Unlike :func:`soft_dice_loss` (one Dice for a batch), this keeps one loss
    per row and candidate, so that the best of several candidates can be picked.

    Args:
        logits: float ``(B, K, H, W)`` mask logits.
        targets: bool ``(B, H, W)``.

    Returns:
        float ``(B, K)``.
    """
    check_tensor("logits", logits, "(B, K, H, W)", "float")
    check_masks("targets", targets, "(B, H, W)")
    if targets.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"logits must be (B,K,H,W) and targets (B,H,W) with the same B,H,W, got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    truth = targets.unsqueeze(1).float().expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, truth, reduction="none").mean(dim=(2, 3))
    probs = torch.sigmoid(logits)
    overlap = (probs * truth).sum(dim=(2, 3))
    dice = 1 - (2 * overlap + 1) / (probs.sum(dim=(2, 3)) + truth.sum(dim=(2, 3)) + 1)
    return bce + dice
