"""Notebook 03's lab: the U-Nets and the small DeepLab, trained and judged on generated scenes.

The set-up is that of the FCNs of notebook 02, repeated here as data: the same
64 x 64 scenes (:data:`CONFIG`), batches of :data:`BATCH_SIZE` drawn from the
same seed, AdamW with a cosine schedule, and the same evaluation on the 500
test scenes (:func:`evaluate`). The zoo entries ``unet``, ``unet_residual`` and
``deeplab`` train for :data:`ZOO_STEPS` steps, half the FCNs' budget (a U-Net
step costs about 2.4 FCN-8s steps on a CPU), so the FCN-8s entry has seen twice
the scenes. The ablation entries ``unet_ablation_{aux,plain}_seed{0,1,2}``
train the default U-Net for a short budget (:data:`ABLATION_STEPS`) with and
without the auxiliary head, from three seeds each; the architecture study
(``arch_<label>_seed{0,1,2}``, :data:`ARCH_STUDY`) trains FCN-8s, DeepLab and
U-Nets with residual, Inception and dense blocks exactly like the plain arm
(:func:`arch_study` re-measures all six).

The U-Nets are trained with an auxiliary cross-entropy loss on the
bottleneck's own prediction (loss ``"cross_entropy_aux"``,
:class:`~seglib.losses.AuxLoss` with weight :data:`AUX_WEIGHT`): without it a
U-Net separates shapes from background within seconds but takes many more
steps to tell the shapes apart.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from seglib.data.batches import semantic_batches
from seglib.data.shapes import SceneConfig
from seglib.losses import AuxLoss
from seglib.metrics.evaluation import scene_evaluator
from seglib.data.shapes import split_scenes
from seglib.metrics.uncertainty import SceneScores, label_scores, split_scores
from seglib.ops.crf import CRFParams, crf_refine
from seglib.train import History
from seglib.train import train as train_loop
from seglib.validation import check_choice, check_int
from seglib.zoo import Recipe, load

CONFIG = SceneConfig(size=64)
BATCH_SIZE = 32
#: Validation scenes of the training curves; the test split (500 scenes) gives the tables.
CURVE_SCENES = 128
LEARNING_RATE = 3e-3
#: Training steps of each zoo entry of notebook 03.
ZOO_STEPS = 1500
#: Weight of the bottleneck's auxiliary cross entropy (U-Nets only).
AUX_WEIGHT = 0.5
#: Budget of the ablation entries: short, as in a live CPU run.
ABLATION_STEPS = 400
ABLATION_BATCH_SIZE = 16
ABLATION_SEEDS = (0, 1, 2)
#: The architecture study: each model trained like the plain ablation arm (same loss, steps,
#: batches and seeds), label -> (builder, kwargs). The U-Net arm is ``unet_ablation_plain_seed*``.
ARCH_STUDY = {"fcn8s": ("fcn", {"variant": "8s"}), "unet_residual": ("unet", {"block": "residual"}),
              "unet_inception": ("unet", {"block": "inception"}), "unet_dense": ("unet", {"block": "dense"}),
              "deeplab": ("deeplab", {})}
#: Steps between the validation points stored in a zoo entry's training curve.
ZOO_EVAL_EVERY = 250

#: The CRF that refines DeepLab's output, chosen by :func:`choose_crf` (boundary F1 of the
#: ``deeplab`` zoo entry on 100 validation scenes) among :data:`CRF_GRID`.
CRF_PARAMS = CRFParams(w_bilateral=10.0, theta_rgb=0.05, theta_xy=4.0)
CRF_GRID = tuple(CRFParams(w_bilateral=w, theta_rgb=rgb, theta_xy=xy)
                 for w in (3.0, 10.0) for rgb in (0.05, 0.15) for xy in (2.0, 4.0))

LOSSES = ("cross_entropy", "cross_entropy_aux")
"""Loss names of :func:`train`: plain cross entropy, or with the auxiliary head's term."""

ZOO_ENTRIES: dict[str, Recipe] = {
    name: Recipe(lab="unet", builder=builder, kwargs={"num_classes": CONFIG.num_classes, **kwargs}, steps=ZOO_STEPS,
                 batch_size=BATCH_SIZE, lr=LEARNING_RATE, loss=loss, seed=0, eval_every=ZOO_EVAL_EVERY)
    for name, builder, kwargs, loss in (
        ("unet", "unet", {"aux_head": True}, "cross_entropy_aux"),
        ("unet_residual", "unet", {"block": "residual", "aux_head": True}, "cross_entropy_aux"),
        ("deeplab", "deeplab", {}, "cross_entropy"),
    )
} | {
    f"unet_ablation_{label}_seed{seed}": Recipe(
        lab="unet", builder="unet", kwargs={"num_classes": CONFIG.num_classes, "aux_head": label == "aux"},
        steps=ABLATION_STEPS, batch_size=ABLATION_BATCH_SIZE, lr=LEARNING_RATE, loss=loss, seed=seed)
    for label, loss in (("aux", "cross_entropy_aux"), ("plain", "cross_entropy")) for seed in ABLATION_SEEDS
} | {
    f"arch_{label}_seed{seed}": Recipe(
        lab="unet", builder=builder, kwargs={"num_classes": CONFIG.num_classes, **kwargs},
        steps=ABLATION_STEPS, batch_size=ABLATION_BATCH_SIZE, lr=LEARNING_RATE, loss="cross_entropy", seed=seed)
    for label, (builder, kwargs) in ARCH_STUDY.items() for seed in ABLATION_SEEDS
}
"""The zoo entries of notebook 03 (run by ``make zoo NAME=...``)."""


def arch_entry(label: str, seed: int) -> str:
    """Zoo entry of the architecture study: ``label`` ``"unet"`` (the plain ablation arm) or one of :data:`ARCH_STUDY`."""
    check_choice("label", label, ("unet", *ARCH_STUDY))
    check_choice("seed", seed, ABLATION_SEEDS)
    return f"unet_ablation_plain_seed{seed}" if label == "unet" else f"arch_{label}_seed{seed}"


#: The arms of the architecture study as the notebook names them -> label of :func:`arch_entry`.
ARCH_LABELS = {"FCN-8s": "fcn8s", "U-Net": "unet", "U-Net, residual": "unet_residual",
               "U-Net, Inception": "unet_inception", "U-Net, dense": "unet_dense", "DeepLab (small)": "deeplab"}


def arch_study(device: torch.device | str = "cpu", n: int = 200,
               known: dict[str, list[SceneScores]] | None = None) -> dict[str, list[SceneScores]]:
    """Test scores (first ``n`` test scenes) of every arm of :data:`ARCH_LABELS`, one per seed.

    ``known`` holds arms already measured (same ``n``), e.g. the plain U-Net of the ablation.
    """
    check_int("n", n, 1)
    known = known or {}
    return {name: known[name] if name in known else
            [test_scores(load(arch_entry(label, seed), device), n) for seed in ABLATION_SEEDS]
            for name, label in ARCH_LABELS.items()}


def arch_parameters(name: str) -> int:
    """Number of weights of the network of arm ``name`` of :data:`ARCH_LABELS`."""
    check_choice("name", name, tuple(ARCH_LABELS))
    return sum(p.numel() for p in load(arch_entry(ARCH_LABELS[name], ABLATION_SEEDS[0])).parameters())


def curve_evaluator() -> Callable[[nn.Module], dict[str, float]]:
    """``model -> metrics`` on :data:`CURVE_SCENES` validation scenes (the training curves)."""
    return scene_evaluator(CONFIG, "val", CURVE_SCENES)


def evaluate(model: nn.Module) -> dict[str, float]:
    """mIoU, boundary F1, pixel accuracy and per-class IoU of ``model`` on the 500 test scenes."""
    return scene_evaluator(CONFIG, "test")(model)


def test_scores(model: nn.Module, n: int | None = None) -> SceneScores:
    """Per-scene confusion matrices and boundary F1 of ``model`` on the first ``n`` of the 500 test scenes
    (default: all of them), for bootstrap intervals."""
    return split_scores(model, CONFIG, "test", n)


def train(model: nn.Module, steps: int, *, batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE,
          loss: str = "cross_entropy_aux", seed: int = 0, eval_every: int | None = None,
          evaluate: Callable[[nn.Module], dict] | None = None, device: torch.device | str = "cpu",
          progress: bool = True, desc: str = "training") -> History:
    """Train ``model`` in place on fresh generated scenes (``CONFIG``, 64 x 64) for ``steps`` steps.

    The loss is :class:`~seglib.losses.AuxLoss` (cross entropy, plus
    :data:`AUX_WEIGHT` times the auxiliary head's cross entropy when the model
    returns one). Batches come from ``seed``, so models trained with the same
    seed, steps and batch size see the same scenes.

    Args:
        model: returns logits ``(B, 5, 64, 64)`` or a dict with ``"out"`` (and ``"aux"``).
        steps: optimiser steps.
        batch_size: scenes per step.
        lr: peak learning rate of AdamW (cosine schedule).
        loss: ``"cross_entropy_aux"`` (cross entropy, plus :data:`AUX_WEIGHT` times the
            auxiliary head's cross entropy when the model returns one) or ``"cross_entropy"``.
        device: where to train (the scenes are generated there).
        seed: seed of the training scenes.
        eval_every: steps between evaluations; ``None``: only at the end.
        evaluate: ``model -> dict``; default: 128 validation scenes.
        progress: show a progress bar.

    Returns:
        The :class:`~seglib.train.History`; the model is trained in place (eval mode).
    """
    check_choice("loss", loss, LOSSES)
    device = torch.device(device)
    batches = semantic_batches(CONFIG, batch_size, seed=seed, device=device)
    return train_loop(model.to(device), batches, AuxLoss(AUX_WEIGHT if loss == "cross_entropy_aux" else 0.0),
                      steps=steps, lr=lr, evaluate=evaluate or curve_evaluator(), eval_every=eval_every,
                      progress=progress, desc=desc)


def crf_scores(model: nn.Module, split: str = "test", n: int | None = None, params: CRFParams = CRF_PARAMS
               ) -> tuple[SceneScores, SceneScores]:
    """``(before, after)``: :class:`SceneScores` of ``model`` on a split, without and with :func:`crf_refine`."""
    check_choice("split", split, ("val", "test"))
    scenes = split_scenes(split, CONFIG, n)
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = torch.cat([model(batch.to(device)).cpu() for batch in scenes.images.split(128)])
    refined = crf_refine(logits, scenes.images, params)
    return tuple(label_scores(scores.argmax(dim=1), scenes.semantic, CONFIG.num_classes)
                 for scores in (logits, refined))


def choose_crf(model: nn.Module, grid: tuple[CRFParams, ...] = CRF_GRID, n: int = 100) -> CRFParams:
    """The parameters of ``grid`` with the best boundary F1 on ``n`` validation scenes (never the test split)."""
    check_int("n", n, 1)
    if not grid or not all(isinstance(params, CRFParams) for params in grid):
        raise ValueError(f"grid must be a non-empty tuple of CRFParams, got {grid!r}")
    return max(grid, key=lambda params: crf_scores(model, "val", n, params)[1].metric("boundary_f1"))
