"""Notebook 04's lab: the class-imbalance experiment, one tiny class and five losses.

Generated scenes with a plain background and one or two small circles
(:data:`CONFIG`, about 2 % of the pixels) under strong pixel noise, so that
faint circles are ambiguous. The same small U-Net (:data:`MODEL_KWARGS`) is
trained from the same seed on the same batches for the same number of steps
with each loss of :data:`LOSSES`:

================  ================================================================
``ce``            pixel-wise cross entropy
``weighted_ce``   cross entropy with inverse-frequency class weights
                  (:func:`seglib.losses.class_weights` of the training split)
``dice``          soft Dice loss, averaged over both classes
``focal``         focal loss with ``gamma = 2``
``ce_dice``       cross entropy + soft Dice, weight 1 each
================  ================================================================

:func:`imbalance_metrics` reads the circle's scores from predicted label maps;
:func:`seed_study` scores the zoo's models of every loss and seed
(``loss_<name>[_seed<k>]``) at the argmax, at a threshold tuned on validation
scenes, and by the pixels' average precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from seglib.common import eval_mode
from seglib.data.batches import semantic_batches
from seglib.data.shapes import IGNORE_INDEX, SceneBatch, SceneConfig, split_scenes
from seglib.losses import CombinedLoss, class_weights, cross_entropy, focal_loss, soft_dice_loss
from seglib.metrics.semantic import (
    boundary_f1,
    confusion_matrix,
    dice_per_class,
    iou_per_class,
    per_image_mean_iou,
    pixel_accuracy,
    pixel_precision_recall,
    threshold_iou,
)
from seglib.metrics.uncertainty import SeedStudy
from seglib.models.unet import UNet
from seglib.train import History, Run
from seglib.train import train as train_loop
from seglib.validation import check_image, check_int, check_label_map
from seglib.zoo import Recipe, load

#: Scenes of the experiment: 32 x 32 px, plain background, one or two circles of 3 to 5 px, pixel noise 0.2.
CONFIG = SceneConfig(size=32, min_objects=1, max_objects=2, object_size=(0.1, 0.16), shapes=("circle",),
                     background="plain", noise=0.2)
FOREGROUND = 1  #: class id of the tiny class (the circle)
#: The small U-Net every loss trains: three levels, 8 channels at full resolution.
MODEL_KWARGS = {"num_classes": CONFIG.num_classes, "depth": 3, "base_width": 8}
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
FOCAL_GAMMA = 2.0
LOSSES = ("ce", "weighted_ce", "dice", "focal", "ce_dice")  #: loss names of :func:`train`, in table order
LOSS_TITLES = {"ce": "cross-entropy", "weighted_ce": "weighted CE", "dice": "soft Dice",
               "focal": "focal", "ce_dice": "CE + Dice"}
#: Training steps of each zoo entry ``loss_<name>``.
ZOO_STEPS = 1500
#: Steps between the validation points stored in a zoo entry's training curve.
ZOO_EVAL_EVERY = 250
#: Seeds of the loss comparison: every loss is trained from each (weights and batches).
SEEDS = (0, 1, 2)
#: Validation scenes of the curves; the test split (500 scenes) gives the tables.
CURVE_SCENES = 128
#: Validation scenes on which :func:`tuned_threshold` picks each model's threshold.
TUNING_SCENES = 512
#: Thresholds on p(circle) tried by :func:`tuned_threshold`: 121 even steps in logit from -6 to 6 (0.0025-0.9975).
THRESHOLDS = tuple(round(1 / (1 + math.exp(-0.1 * k)), 4) for k in range(-60, 61))
#: A pixel is *undecided* when its circle probability lies in this open interval (see :func:`model_scores`).
UNDECIDED = (0.05, 0.95)


def _check_name(name: str) -> str:
    if name not in LOSSES:
        raise ValueError(f"name must be one of {LOSSES}, got {name!r}")
    return name


def foreground_fraction(labels: torch.Tensor, class_id: int = FOREGROUND) -> float:
    """Fraction of the non-ignored pixels of ``labels`` (int ``(N, H, W)``) that have ``class_id``."""
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        got = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise TypeError(f"labels must be an integer label map (N,H,W), got {got}")
    counted = labels[labels != IGNORE_INDEX]
    if counted.numel() == 0:
        raise ValueError("labels has no pixel other than the ignore label 255")
    return float((counted == class_id).double().mean())


def train_class_weights(config: SceneConfig = CONFIG) -> torch.Tensor:
    """Inverse-frequency class weights float ``(C,)`` from the training split of ``config``."""
    return _train_class_weights(config).clone()


@lru_cache(maxsize=4)
def _train_class_weights(config: SceneConfig) -> torch.Tensor:
    return class_weights(split_scenes("train", config).semantic, config.num_classes)


def make_loss(name: str, weights: torch.Tensor | Sequence[float] | None = None
              ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss ``fn(logits (B,C,H,W), target (B,H,W)) -> scalar`` of :data:`LOSSES` entry ``name``.

    Logits are cast to float32 first (full precision under autocast too); pixels labelled 255 are ignored.

    Args:
        name: one of :data:`LOSSES`.
        weights: class weights ``(C,)`` of ``"weighted_ce"`` (default:
            :func:`train_class_weights`); not allowed for the other losses.
    """
    _check_name(name)
    if weights is not None and name != "weighted_ce":
        raise ValueError(f"weights are for 'weighted_ce' only, got weights for {name!r}")
    if name == "weighted_ce":
        term = partial(cross_entropy, weight=train_class_weights() if weights is None else weights)
    else:
        term = {"ce": cross_entropy, "dice": soft_dice_loss, "focal": partial(focal_loss, gamma=FOCAL_GAMMA),
                "ce_dice": CombinedLoss({"ce": (cross_entropy, 1.0), "dice": (soft_dice_loss, 1.0)})}[name]
    return lambda logits, target: term(logits.float(), target)


ZOO_ENTRIES: dict[str, Recipe] = {
    f"loss_{name}": Recipe(lab="losses", builder="unet", kwargs=dict(MODEL_KWARGS), steps=ZOO_STEPS,
                           batch_size=BATCH_SIZE, lr=LEARNING_RATE, loss=name, seed=0, eval_every=ZOO_EVAL_EVERY)
    for name in LOSSES
} | {
    f"loss_{name}_seed{seed}": Recipe(lab="losses", builder="unet", kwargs=dict(MODEL_KWARGS), steps=ZOO_STEPS,
                                      batch_size=BATCH_SIZE, lr=LEARNING_RATE, loss=name, seed=seed)
    for name in LOSSES for seed in SEEDS[1:]
}
"""Zoo entries ``loss_<name>`` (seed 0, with a curve) and ``loss_<name>_seed<k>`` (the other :data:`SEEDS`)."""


def seed_entry(name: str, seed: int) -> str:
    """Zoo entry of loss ``name`` trained from ``seed`` (one of :data:`SEEDS`)."""
    _check_name(name)
    if seed not in SEEDS:
        raise ValueError(f"seed must be one of {SEEDS}, got {seed!r}")
    return f"loss_{name}" if seed == SEEDS[0] else f"loss_{name}_seed{seed}"


def curve_evaluator() -> Callable[[nn.Module], dict[str, float]]:
    """``model -> metrics`` on :data:`CURVE_SCENES` validation scenes (the training curves)."""
    return partial(evaluate, split="val", n=CURVE_SCENES)


def train(model: nn.Module, steps: int, *, batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE,
          loss: str = "ce", seed: int = 0, eval_every: int | None = None,
          evaluate: Callable[[nn.Module], dict] | None = None, device: torch.device | str = "cpu",
          config: SceneConfig = CONFIG, progress: bool = True, desc: str | None = None) -> History:
    """Train ``model`` in place with loss ``loss`` on scenes of ``config``.

    Batches come from ``seed``, so every loss sees the same scenes (generated
    on ``device``), with AdamW and a cosine schedule. Seed the weights before
    building the model so that every loss starts from the same network.

    Args:
        model: returns logits ``(B, 2, 32, 32)`` (the U-Net of :data:`MODEL_KWARGS`).
        steps: the budget in optimiser steps.
        batch_size: scenes per step.
        lr: peak learning rate.
        loss: one of :data:`LOSSES`.
        seed: seed of the training scenes.
        eval_every: steps between evaluations (``None``: only at the end).
        evaluate: ``model -> dict`` of metrics (default: none during training).
        device: where to train.
        config: the scenes (default :data:`CONFIG`).
        progress: show a progress bar.

    Returns:
        The :class:`~seglib.train.History`; the model ends in eval mode.
    """
    _check_name(loss)
    device = torch.device(device)
    batches = semantic_batches(config, batch_size, seed=seed, device=device)
    weights = train_class_weights(config) if loss == "weighted_ce" else None
    return train_loop(model.to(device), batches, make_loss(loss, weights), steps=steps, lr=lr, evaluate=evaluate,
                      eval_every=eval_every, progress=progress, desc=desc or LOSS_TITLES[loss])


def train_losses(steps: int, names: Sequence[str] = LOSSES, progress: bool = True, seed: int = 0,
                 **options) -> dict[str, Run]:
    """A fresh U-Net of :data:`MODEL_KWARGS` trained by :func:`train` with each loss of ``names``.

    Every run seeds the weights with ``seed`` first, so all losses start from
    the same network, see the same batches and get the same budget.

    One progress bar counts the losses (a bar per run would send thousands
    of widget updates to a notebook front end for a short experiment).

    Args:
        steps: the budget of every run.
        names: losses of :data:`LOSSES`, trained in this order.
        progress: show the progress bar.
        seed: seed of the weights and of the batches.
        **options: passed to :func:`train` (``device``, ``evaluate``, ``eval_every`` ...).

    Returns:
        loss name -> :class:`~seglib.train.Run` (the model, in eval mode, and its history).
    """
    if isinstance(names, str) or not names:
        raise ValueError(f"names must be a non-empty sequence of loss names, got {names!r}")
    for name in names:
        _check_name(name)
    runs = {}
    with tqdm(total=len(names), desc="losses trained", unit="loss", disable=not progress) as bar:
        for name in names:
            bar.set_postfix_str(f"{LOSS_TITLES[name]}, {steps} steps")
            torch.manual_seed(seed)
            model = UNet(**{**MODEL_KWARGS, "num_classes": options.get("config", CONFIG).num_classes})
            runs[name] = Run(model, train(model, steps, loss=name, seed=seed, progress=False, **options))
            bar.update(1)
    return runs


def imbalance_metrics(pred: torch.Tensor, target: torch.Tensor, num_classes: int = CONFIG.num_classes,
                      class_id: int = FOREGROUND) -> dict[str, float]:
    """The numbers of the loss table, from predicted and true label maps int ``(N, H, W)``.

    Dataset-level values (one confusion matrix summed over all images):
    ``fg_iou``, ``fg_dice``, ``fg_precision``, ``fg_recall`` of class
    ``class_id``, ``bg_iou`` of class 0, ``miou`` and ``pixel_accuracy``;
    per-image means: ``per_image_miou`` and ``boundary_f1`` (2-pixel tolerance).
    A precision or recall of 0/0 is reported as 0.
    """
    check_int("num_classes", num_classes, 2)
    check_int("class_id", class_id, 0, num_classes - 1)
    cm = confusion_matrix(pred, target, num_classes).double()
    iou, dice = iou_per_class(cm), dice_per_class(cm)
    tp = cm[class_id, class_id]
    return {
        "fg_iou": float(iou[class_id]),
        "fg_dice": float(dice[class_id]),
        "fg_precision": float(tp / cm[:, class_id].sum()) if cm[:, class_id].sum() > 0 else 0.0,
        "fg_recall": float(tp / cm[class_id].sum()) if cm[class_id].sum() > 0 else 0.0,
        "bg_iou": float(iou[0]),
        "miou": float(torch.nanmean(iou)),
        "pixel_accuracy": pixel_accuracy(cm),
        "per_image_miou": per_image_mean_iou(pred, target, num_classes),
        "boundary_f1": boundary_f1(pred, target, num_classes),
    }


def per_image_dice(pred: torch.Tensor, target: torch.Tensor, class_id: int = FOREGROUND) -> torch.Tensor:
    """Dice of class ``class_id`` in every image, float64 ``(N,)``; 1 where neither map has it."""
    check_label_map("pred", pred, shape="(N, H, W)")
    check_label_map("target", target, shape="(N, H, W)")
    check_int("class_id", class_id, 0)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must be label maps of the same shape (N,H,W), "
                         f"got {tuple(pred.shape)} and {tuple(target.shape)}")
    p, g = (pred == class_id).flatten(1).double(), (target == class_id).flatten(1).double()
    total = p.sum(dim=1) + g.sum(dim=1)
    return torch.where(total > 0, 2 * (p * g).sum(dim=1) / total.clamp_min(1), torch.ones_like(total))


def objects_found(pred: torch.Tensor, scenes: SceneBatch) -> float:
    """Fraction of the things of ``scenes`` with at least one pixel predicted as their class.

    An object-level recall: a circle counts as found however few of its
    pixels the prediction covers.

    Args:
        pred: predicted label maps int ``(N, H, W)`` of the ``N`` scenes.
        scenes: the scenes, with their instance masks ``(N, K, H, W)`` and labels ``(N, K)``.
    """
    if not isinstance(scenes, SceneBatch):
        raise TypeError(f"scenes must be a SceneBatch, got {type(scenes).__name__}")
    if not isinstance(pred, torch.Tensor) or tuple(pred.shape) != tuple(scenes.semantic.shape):
        got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
        raise ValueError(f"pred must be label maps of shape {tuple(scenes.semantic.shape)}, got {got}")
    same_class = pred.to(scenes.labels.device)[:, None] == scenes.labels[:, :, None, None]  # (N, K, H, W)
    hit = (scenes.masks & same_class).flatten(2).any(dim=2) & scenes.valid
    total = int(scenes.valid.sum())
    if total == 0:
        raise ValueError("scenes hold no object")
    return int(hit.sum()) / total


def hardest_images(predictions: dict[str, torch.Tensor], target: torch.Tensor, k: int = 4) -> torch.Tensor:
    """Indices int64 ``(k,)`` of the images with the lowest circle Dice, averaged over the models.

    Args:
        predictions: model name -> predicted label maps ``(N, H, W)``.
        target: true label maps ``(N, H, W)``.
        k: how many images, hardest first (ties keep the image order).
    """
    if not predictions:
        raise ValueError("predictions must hold at least one model's label maps")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= target.shape[0]:
        raise ValueError(f"k must be an int in [1, {target.shape[0]}], got {k!r}")
    scores = torch.stack([per_image_dice(pred, target) for pred in predictions.values()]).mean(dim=0)
    return scores.argsort(stable=True)[:k]


def plot_confusion_matrices(matrices: dict[str, torch.Tensor], class_names: Sequence[str], size: float = 2.4):
    """One panel per ``(C, C)`` confusion matrix (rows true, columns predicted); returns the figure.

    Colours show the share of each true class (row-normalised); each cell is
    annotated with its pixel count.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(size * len(matrices), size * 1.05), squeeze=False)
    for ax, (name, cm) in zip(axes[0], matrices.items()):
        cm = cm.double().cpu()
        share = cm / cm.sum(dim=1, keepdim=True).clamp_min(1)
        ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1)
        for (row, col), count in zip(torch.cartesian_prod(torch.arange(len(cm)), torch.arange(len(cm))).tolist(),
                                     cm.flatten().tolist()):
            ax.text(col, row, f"{int(count)}\n{share[row, col]:.1%}", ha="center", va="center", fontsize=11,
                    color="white" if share[row, col] > 0.5 else "black")
        ax.set_xticks(range(len(class_names)), class_names, fontsize=10)
        ax.set_yticks(range(len(class_names)), class_names, fontsize=10, rotation=90, va="center")
        ax.set_title(LOSS_TITLES.get(name, name), fontsize=12)
        ax.set_xlabel("predicted", fontsize=10)
    axes[0, 0].set_ylabel("true", fontsize=10)
    fig.tight_layout()
    return fig


def evaluate(model: nn.Module, split: str = "test", n: int | None = None) -> dict[str, float]:
    """:func:`imbalance_metrics` of ``model`` on a split of :data:`CONFIG` (default: 500 test scenes)."""
    scenes: SceneBatch = split_scenes(split, CONFIG, n)
    return imbalance_metrics((circle_probabilities(model, scenes.images) > 0.5).long(), scenes.semantic)


def circle_probabilities(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax probability of the circle, float32 ``(N, H, W)`` on the CPU, for images ``(N, 3, H, W)``.

    ``probabilities > 0.5`` is the argmax prediction of the two classes.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_image("images", images, batched=True)
    device = next(model.parameters()).device
    with eval_mode(model), torch.no_grad():
        chunks = [model(images[i:i + batch_size].to(device)).float().softmax(dim=1)[:, FOREGROUND].cpu()
                  for i in range(0, images.shape[0], batch_size)]
    return torch.cat(chunks)


def tuned_threshold(probabilities: torch.Tensor, target: torch.Tensor) -> float:
    """The threshold of :data:`THRESHOLDS` at which ``probabilities > t`` has the highest circle IoU.

    Args:
        probabilities: circle probabilities float ``(N, H, W)`` (validation scenes, not the test set).
        target: their true label maps int ``(N, H, W)``.
    """
    check_label_map("target", target, shape="(N, H, W)")
    ious = threshold_iou(probabilities, target == FOREGROUND, torch.tensor(THRESHOLDS))
    return THRESHOLDS[int(ious.argmax())]


def model_scores(model: nn.Module, test: SceneBatch, tuning: SceneBatch) -> dict[str, float]:
    """What the loss study reads from one model: :func:`imbalance_metrics` of the argmax on ``test``,
    ``objects_found``, ``size_ratio`` (circle pixels predicted / true), ``threshold`` (tuned on ``tuning``),
    ``tuned_iou`` (on ``test`` at it), ``pixel_ap`` and ``undecided`` (share of test pixels with a circle
    probability inside :data:`UNDECIDED`)."""
    for name, scenes in (("test", test), ("tuning", tuning)):
        if not isinstance(scenes, SceneBatch):
            raise TypeError(f"{name} must be a SceneBatch, got {type(scenes).__name__}")
    probabilities = circle_probabilities(model, test.images)
    predicted = (probabilities > 0.5).long()
    scores = imbalance_metrics(predicted, test.semantic)
    threshold = tuned_threshold(circle_probabilities(model, tuning.images), tuning.semantic)
    truth = test.semantic == FOREGROUND
    tuned = threshold_iou(probabilities, truth, torch.tensor([threshold]))
    low, high = UNDECIDED
    return scores | {
        "objects_found": objects_found(predicted, test),
        "size_ratio": scores["fg_recall"] / scores["fg_precision"] if scores["fg_precision"] > 0 else math.nan,
        "threshold": threshold,
        "tuned_iou": float(tuned[0]),
        "pixel_ap": pixel_precision_recall(probabilities, truth)[2],
        "undecided": float(((probabilities > low) & (probabilities < high)).double().mean()),
    }


@dataclass(frozen=True)
class LossStudy(SeedStudy):
    """:class:`~seglib.metrics.uncertainty.SeedStudy` of every loss of :data:`LOSSES` over :data:`SEEDS`.

    ``scores``: loss name -> one :func:`model_scores` dict per seed; ``probabilities``: loss name ->
    circle probabilities float ``(N, H, W)`` of its first seed's model on the test scenes (for figures).
    """

    probabilities: dict[str, torch.Tensor] = field(default_factory=dict)

    def predictions(self) -> dict[str, torch.Tensor]:
        """Loss name -> the argmax label maps int64 ``(N, H, W)`` of its first seed's model."""
        return {name: (p > 0.5).long() for name, p in self.probabilities.items()}


def seed_study(device: torch.device | str = "cpu", progress: bool = True) -> LossStudy:
    """Load the zoo's models of every loss and seed (:func:`seed_entry`) and score them (:func:`model_scores`).

    Thresholds are tuned on the first :data:`TUNING_SCENES` validation scenes;
    all other numbers come from the 500 test scenes.
    """
    test, tuning = split_scenes("test", CONFIG), split_scenes("val", CONFIG, TUNING_SCENES)
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in LOSSES}
    probabilities = {}
    with tqdm(total=len(LOSSES) * len(SEEDS), desc="models scored", unit="model", disable=not progress) as bar:
        for name in LOSSES:
            for seed in SEEDS:
                model = load(seed_entry(name, seed), device)
                scores[name].append(model_scores(model, test, tuning))
                if seed == SEEDS[0]:
                    probabilities[name] = circle_probabilities(model, test.images)
                bar.update(1)
    return LossStudy(scores, LOSSES[0], probabilities)


def circle_contrast(scenes: SceneBatch) -> torch.Tensor:
    """Distance between the mean colour of the circle pixels and of the background pixels, float ``(N,)``.

    Averaging over a region removes most of the pixel noise, so this is the
    contrast the network could use at best.
    """
    if not isinstance(scenes, SceneBatch):
        raise TypeError(f"scenes must be a SceneBatch, got {type(scenes).__name__}")
    circle = (scenes.semantic == FOREGROUND)[:, None].to(scenes.images.dtype)  # (N, 1, H, W)
    inside = (scenes.images * circle).sum(dim=(2, 3)) / circle.sum(dim=(2, 3)).clamp_min(1)
    outside = (scenes.images * (1 - circle)).sum(dim=(2, 3)) / (1 - circle).sum(dim=(2, 3)).clamp_min(1)
    return (inside - outside).norm(dim=1)



@lru_cache(maxsize=2)
def zoo_confusions(n: int = 128) -> tuple[tuple[str, int, torch.Tensor], ...]:
    """``(loss, seed, confusion matrix (C, C))`` of the 15 zoo networks on ``n`` test scenes (exercise 3's data)."""
    test = split_scenes("test", CONFIG, n=n)

    def matrix(model: nn.Module) -> torch.Tensor:
        with eval_mode(model), torch.no_grad():
            return confusion_matrix(model(test.images).argmax(dim=1), test.semantic, CONFIG.num_classes)

    return tuple((name, seed, matrix(load(seed_entry(name, seed)))) for name in LOSSES for seed in SEEDS)
