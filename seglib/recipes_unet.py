"""Training of the U-Nets and the small DeepLab of notebook 03, and their model-zoo recipes.

They share the set-up of the FCNs (:mod:`seglib.recipes_fcn`): the same
64 x 64 scenes, batches of :data:`~seglib.recipes_fcn.BATCH_SIZE` drawn from
the same seed, AdamW with a cosine schedule, and the same evaluation on the
500 test scenes. The zoo entries ``unet``, ``unet_residual`` and ``deeplab``
train for :data:`ZOO_STEPS` steps, half the FCNs' budget (a U-Net step costs
about 2.4 FCN-8s steps on a CPU), so the FCN-8s entry has seen twice the scenes.
The ``unet`` entry also records :func:`aux_ablation`: the same U-Net trained
for a short budget with and without the auxiliary head.

The U-Nets are trained with an auxiliary cross-entropy loss on the
bottleneck's own prediction (:class:`~seglib.models.unet.AuxLoss`, weight
:data:`AUX_WEIGHT`): without it a U-Net separates shapes from background
within seconds but takes many more steps to tell the shapes apart.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from seglib.models.unet import AuxLoss, UNet
from seglib.recipes_fcn import BATCH_SIZE, CONFIG, scene_evaluator
from seglib.train import History, semantic_batches, train
from seglib.zoo import ZooResult, resolve

__all__ = ["AUX_WEIGHT", "LEARNING_RATE", "MODELS", "ZOO_STEPS", "aux_ablation", "build_model", "deeplab",
           "evaluate_on_test_scenes", "train_on_scenes", "unet", "unet_residual"]

LEARNING_RATE = 3e-3
#: Training steps of each zoo entry of notebook 03.
ZOO_STEPS = 1500
#: Weight of the bottleneck's auxiliary cross entropy (U-Nets only).
AUX_WEIGHT = 0.5
#: Budget of :func:`aux_ablation` (recorded in the ``unet`` entry): short, as in a live CPU run.
ABLATION_STEPS = 400
ABLATION_BATCH_SIZE = 16
#: Steps between the validation points stored in a zoo entry's training curve.
ZOO_EVAL_EVERY = 250

#: Zoo entry -> (builder, kwargs): the models of notebook 03.
MODELS: dict[str, tuple[str, dict]] = {
    "unet": ("seglib.models.unet:UNet", {"num_classes": CONFIG.num_classes, "aux_head": True}),
    "unet_residual": ("seglib.models.unet:UNet",
                      {"num_classes": CONFIG.num_classes, "block": "residual", "aux_head": True}),
    "deeplab": ("seglib.models.deeplab:DeepLab", {"num_classes": CONFIG.num_classes}),
}


def build_model(name: str) -> nn.Module:
    """A fresh model of zoo entry ``name`` of :data:`MODELS`."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {tuple(MODELS)}, got {name!r}")
    builder, kwargs = MODELS[name]
    return resolve(builder)(**kwargs)


def train_on_scenes(model: nn.Module, steps: int, *, batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE,
                    device: torch.device | str = "cpu", seed: int = 0, eval_every: int | None = None,
                    evaluate: Callable[[nn.Module], dict] | None = None, progress: bool = True,
                    desc: str = "training") -> History:
    """Train ``model`` in place on fresh generated scenes (``CONFIG``, 64 x 64) for ``steps`` steps.

    The loss is :class:`~seglib.models.unet.AuxLoss` (cross entropy, plus
    :data:`AUX_WEIGHT` times the auxiliary head's cross entropy when the model
    returns one). Batches come from ``seed``, so models trained with the same
    seed, steps and batch size see the same scenes.

    Args:
        model: returns logits ``(B, 5, 64, 64)`` or a dict with ``"out"`` (and ``"aux"``).
        steps: optimiser steps.
        batch_size: scenes per step.
        lr: peak learning rate of AdamW (cosine schedule).
        device: where to train (the scenes are generated there).
        seed: seed of the training scenes.
        eval_every: steps between evaluations; ``None``: only at the end.
        evaluate: ``model -> dict``; default: 128 validation scenes.
        progress: show a progress bar.

    Returns:
        The :class:`~seglib.train.History`; the model is trained in place (eval mode).
    """
    device = torch.device(device)
    batches = semantic_batches(CONFIG, batch_size, seed=seed, device=device)
    return train(model.to(device), batches, AuxLoss(AUX_WEIGHT), steps=steps, lr=lr,
                 evaluate=evaluate or scene_evaluator(), eval_every=eval_every, progress=progress, desc=desc)


def evaluate_on_test_scenes(model: nn.Module) -> dict[str, float]:
    """Zoo evaluator: mIoU, boundary F1, pixel accuracy and per-class IoU on the 500 test scenes."""
    return scene_evaluator("test", None)(model)


def aux_ablation(steps: int = ABLATION_STEPS, batch_size: int = ABLATION_BATCH_SIZE,
                 device: torch.device | str = "cpu", eval_every: int = 50, progress: bool = True,
                 evaluate: Callable[[nn.Module], dict] | None = None) -> dict[str, list[dict[str, float]]]:
    """Train the default U-Net with and without the auxiliary head on the same budget; return both curves.

    Both runs start from the same seed and see the same batches; the only
    difference is the auxiliary cross entropy on the bottleneck.

    Returns:
        ``{"with_aux": curve, "without_aux": curve}``, each curve a list of
        ``{"step", "miou", "boundary_f1", "iou_circle", "iou_rectangle", "iou_triangle"}``
        on 128 validation scenes (or by ``evaluate``) every ``eval_every`` steps.
    """
    keys = ("step", "miou", "boundary_f1") + tuple(f"iou_{name}" for name in CONFIG.shapes)
    curves = {}
    for label, aux_head in (("with_aux", True), ("without_aux", False)):
        torch.manual_seed(0)
        model = UNet(num_classes=CONFIG.num_classes, aux_head=aux_head)
        history = train_on_scenes(model, steps, batch_size=batch_size, device=device, eval_every=eval_every,
                                  evaluate=evaluate, progress=progress, desc=f"U-Net {label.replace('_', ' ')}")
        curves[label] = [{key: round(float(point[key]), 4) for key in keys} for point in history.evals]
    return curves


def _recipe(name: str, device: torch.device) -> ZooResult:
    torch.manual_seed(0)
    model = build_model(name)
    history = train_on_scenes(model, ZOO_STEPS, device=device, seed=0, eval_every=ZOO_EVAL_EVERY, desc=name)
    curve = [{key: round(float(point[key]), 4) for key in ("step", "seconds", "miou", "boundary_f1")}
             for point in history.evals]
    training = {
        "steps": ZOO_STEPS, "batch_size": BATCH_SIZE, "lr": LEARNING_RATE,
        "loss": f"cross_entropy + {AUX_WEIGHT} x auxiliary cross_entropy" if name != "deeplab" else "cross_entropy",
        "device": str(device), "seconds": round(history.total_seconds, 1),
        "seconds_per_step": round(history.total_seconds / history.total_steps, 4),
        "curve_split": "val (128 scenes)", "curve": curve,
    }
    if name == "unet":
        training["aux_ablation"] = {"steps": ABLATION_STEPS, "batch_size": ABLATION_BATCH_SIZE,
                                    **aux_ablation(device=device)}
    builder, kwargs = MODELS[name]
    return ZooResult(model=model, builder=builder, kwargs=dict(kwargs),
                     evaluator="seglib.recipes_unet:evaluate_on_test_scenes",
                     metrics=evaluate_on_test_scenes(model), training=training, seed=0)


def unet(device: torch.device) -> ZooResult:
    """Zoo recipe of ``unet``: plain U-Net (widths 16-128) with the auxiliary head."""
    return _recipe("unet", device)


def unet_residual(device: torch.device) -> ZooResult:
    """Zoo recipe of ``unet_residual``: the same U-Net with residual blocks."""
    return _recipe("unet_residual", device)


def deeplab(device: torch.device) -> ZooResult:
    """Zoo recipe of ``deeplab``: the small DeepLabv3 (output stride 8, ASPP rates 1, 2, 3)."""
    return _recipe("deeplab", device)
