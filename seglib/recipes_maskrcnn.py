"""Training and evaluation of the small Mask R-CNN of notebook 05, and its model-zoo recipe.

The model (:func:`seglib.models.maskrcnn.build_maskrcnn`) trains on fresh
128 x 128 scenes (:data:`~seglib.models.maskrcnn.SCENE_CONFIG`), four per
step, with AdamW (learning rate 2e-3, weight decay 1e-4, cosine decay after a
short warm-up) and gradient clipping at norm 1.0, in float32 on every device.
It is judged on the first :data:`TEST_SCENES` scenes of the fixed test split
with COCO's evaluator (mask and box AP) and by its panoptic quality.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from seglib.data.shapes import split_scenes
from seglib.instance_metrics import coco_mask_ap, panoptic_quality
from seglib.models.maskrcnn import (SCENE_CONFIG, LossLog, build_maskrcnn, detection_batches, detection_forward,
                                    predict, scene_panoptic, scene_targets)
from seglib.train import History, train
from seglib.zoo import ZooResult

__all__ = ["BATCH_SIZE", "LEARNING_RATE", "TEST_SCENES", "ZOO_STEPS", "evaluate_maskrcnn", "maskrcnn",
           "scene_metrics", "evaluation_scenes", "train_maskrcnn"]

BATCH_SIZE = 4
LEARNING_RATE = 2e-3
#: Test scenes of every evaluation (a multiple of 128: a prefix of the 500-scene split).
TEST_SCENES = 256
#: Training steps of the zoo entry ``maskrcnn``.
ZOO_STEPS = 3000


def evaluation_scenes(n: int = TEST_SCENES):
    """The first ``n`` scenes of the fixed test split at 128 x 128 (CPU)."""
    return split_scenes("test", SCENE_CONFIG, n=n)


def train_maskrcnn(model: nn.Module, steps: int, *, batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE,
                   device: torch.device | str = "cpu", seed: int = 0,
                   evaluate: Callable[[nn.Module], dict] | None = None, eval_every: int | None = None,
                   progress: bool = True, desc: str = "Mask R-CNN") -> tuple[History, LossLog]:
    """Train a torchvision Mask R-CNN in place on fresh generated scenes for ``steps`` steps.

    Args:
        model: a Mask R-CNN whose classes are ``background + SCENE_CONFIG.shapes``.
        steps: optimiser steps.
        batch_size: scenes per step.
        lr: peak learning rate of AdamW.
        device: where to train (the scenes are generated there).
        seed: seed of the training scenes.
        evaluate, eval_every: as for :func:`seglib.train.train`.
        progress: show a progress bar.

    Returns:
        The :class:`~seglib.train.History` (total loss) and the
        :class:`~seglib.models.maskrcnn.LossLog` of every loss term.
    """
    log = LossLog()
    history = train(model.to(device), detection_batches(SCENE_CONFIG, batch_size, seed, device), log, steps=steps,
                    lr=lr, weight_decay=1e-4, grad_clip=1.0, forward=detection_forward, amp=False,
                    channels_last=False, evaluate=evaluate, eval_every=eval_every, progress=progress, desc=desc)
    return history, log


def scene_metrics(predictions: list[dict], scenes) -> dict[str, float]:
    """COCO mask and box AP, AP50, AP75 and panoptic quality of predictions on generated scenes.

    Args:
        predictions: one dict per scene from :func:`seglib.models.maskrcnn.predict`.
        scenes: the :class:`~seglib.data.SceneBatch` they were made on.

    Returns:
        ``mask_ap``, ``mask_ap50``, ``mask_ap75``, ``box_ap``, ``box_ap50``,
        ``box_ap75``, ``pq``, ``sq``, ``rq`` (floats in [0, 1], 4 decimals).
        PQ uses the true stuff (:func:`~seglib.models.maskrcnn.scene_panoptic`).
    """
    coco = coco_mask_ap(predictions, scene_targets(scenes))
    metrics = {key: coco[key] for key in ("mask_ap", "mask_ap50", "mask_ap75", "box_ap", "box_ap50", "box_ap75")}
    panoptic = panoptic_quality(scene_panoptic(predictions, scenes), scenes.panoptic,
                                scenes.config.thing_ids, scenes.config.stuff_ids)
    metrics.update({key: panoptic[key] for key in ("pq", "sq", "rq")})
    return {key: round(value, 4) for key, value in metrics.items()}


def evaluate_maskrcnn(model: nn.Module, n: int = TEST_SCENES) -> dict[str, float]:
    """:func:`scene_metrics` of ``model`` on the first ``n`` test scenes (the zoo's evaluator)."""
    scenes = evaluation_scenes(n)
    return scene_metrics(predict(model, scenes.images), scenes)


def maskrcnn(device: torch.device | str) -> ZooResult:
    """Zoo recipe ``maskrcnn``: the small Mask R-CNN trained for :data:`ZOO_STEPS` steps (seed 0)."""
    torch.manual_seed(0)
    model = build_maskrcnn()
    history, _ = train_maskrcnn(model, ZOO_STEPS, device=device, seed=0, desc="zoo maskrcnn")
    model = model.cpu()
    return ZooResult(model=model, builder="seglib.models.maskrcnn:build_maskrcnn", kwargs={},
                     evaluator="seglib.recipes_maskrcnn:evaluate_maskrcnn", metrics=evaluate_maskrcnn(model),
                     training={"steps": ZOO_STEPS, "batch_size": BATCH_SIZE, "lr": LEARNING_RATE,
                               "image_size": SCENE_CONFIG.size, "device": str(device),
                               "seconds": round(history.total_seconds, 1),
                               "final_loss": round(history.loss[-1], 4)},
                     seed=0)
