"""Data, training and evaluation of notebook 02's networks, and their model-zoo recipes.

The patch classifier learns from object-centred crops of generated scenes
(:func:`object_patches`, :func:`patch_batches`, :func:`train_classifier`).
All FCN runs share one set-up so that the three variants get the same budget:
fresh 64 x 64 scenes of the default :class:`~seglib.data.SceneConfig` (sky,
grass, circle, rectangle, triangle), batches of :data:`BATCH_SIZE`, pixel-wise
cross entropy, AdamW with a cosine schedule (:func:`seglib.train.train`) and
the same seed. The zoo entries ``fcn32s``, ``fcn16s`` and ``fcn8s`` are trained
for :data:`ZOO_STEPS` steps; their manifest records the validation curve.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from seglib.data.shapes import IGNORE_INDEX, SceneBatch, SceneConfig, scene_stream, split_scenes
from seglib.metrics import evaluate_segmentation
from seglib.models.fcn import VARIANTS, PatchClassifier, build_fcn
from seglib.train import History, semantic_batches, train
from seglib.zoo import ZooResult

__all__ = [
    "BATCH_SIZE",
    "BOUNDARY_TOLERANCE",
    "CONFIG",
    "ZOO_STEPS",
    "evaluate_fcn",
    "fcn8s",
    "fcn16s",
    "fcn32s",
    "flat_metrics",
    "object_patches",
    "patch_accuracy",
    "patch_batches",
    "scene_evaluator",
    "train_classifier",
    "train_fcn",
]

CONFIG = SceneConfig(size=64)
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
#: Training steps of each zoo entry (the same for the three variants).
ZOO_STEPS = 3000
#: Steps between the validation points stored in a zoo entry's training curve.
ZOO_EVAL_EVERY = 250
#: Validation scenes used for the curves; the test split (500 scenes) gives the tables.
CURVE_SCENES = 128
#: Tolerance of the boundary F1 score in pixels (:func:`seglib.metrics.boundary_f1`'s default).
BOUNDARY_TOLERANCE = 2
#: Side of the classifier's patches.
PATCH_SIZE = 32


def object_patches(scenes: SceneBatch, patch_size: int = PATCH_SIZE, stuff_per_scene: int = 1,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Square crops of generated scenes, each centred on something of one class.

    * One crop per thing, centred on its box and labelled with its class.
    * ``stuff_per_scene`` crops per scene centred on a random pixel of stuff
      (sky or grass), labelled with that pixel's class.

    Crops that would leave the image are shifted inside it, so a thing near
    the border is off-centre. Things come first (scene by scene), then stuff.

    Args:
        scenes: a :class:`~seglib.data.SceneBatch` of ``B`` scenes ``H x W``.
        patch_size: side P of the crops, at most ``min(H, W)``.
        stuff_per_scene: stuff crops per scene (scenes without stuff get none).
        seed: seed of the stuff pixels.

    Returns:
        ``patches`` float ``(N, 3, P, P)`` and ``labels`` int64 ``(N,)``
        (class ids of ``scenes.config.class_names``), on the scenes' device.
    """
    if not isinstance(scenes, SceneBatch):
        raise TypeError(f"scenes must be a SceneBatch, got {type(scenes).__name__}")
    if isinstance(patch_size, bool) or not isinstance(patch_size, int):
        raise TypeError(f"patch_size must be an int, got {type(patch_size).__name__}")
    height, width = scenes.semantic.shape[1:]
    if not 1 <= patch_size <= min(height, width):
        raise ValueError(f"patch_size must be in [1, {min(height, width)}] for {height}x{width} scenes, "
                         f"got {patch_size}")
    if isinstance(stuff_per_scene, bool) or not isinstance(stuff_per_scene, int) or stuff_per_scene < 0:
        raise ValueError(f"stuff_per_scene must be a non-negative int, got {stuff_per_scene!r}")
    device = scenes.images.device
    scene, slot = scenes.valid.nonzero(as_tuple=True)
    boxes = scenes.boxes[scene, slot]
    centre_x, centre_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    labels = scenes.labels[scene, slot]
    if stuff_per_scene:
        is_stuff = scenes.semantic < len(scenes.config.stuff_names)  # (B,H,W)
        generator = torch.Generator(device=device).manual_seed(seed)
        noise = torch.rand(len(scenes), stuff_per_scene, height * width, generator=generator, device=device)
        pixel = noise.masked_fill(~is_stuff.flatten(1).unsqueeze(1), -1).argmax(dim=2)  # (B,S)
        keep = is_stuff.flatten(1).any(dim=1, keepdim=True).expand_as(pixel)
        stuff_scene = torch.arange(len(scenes), device=device).view(-1, 1).expand_as(pixel)[keep]
        pixel = pixel[keep]
        scene = torch.cat([scene, stuff_scene])
        labels = torch.cat([labels, scenes.semantic.flatten(1)[stuff_scene, pixel]])
        centre_x = torch.cat([centre_x, (pixel % width).float() + 0.5])
        centre_y = torch.cat([centre_y, torch.div(pixel, width, rounding_mode="floor").float() + 0.5])
    left = (centre_x - patch_size / 2).round().long().clamp(0, width - patch_size)
    top = (centre_y - patch_size / 2).round().long().clamp(0, height - patch_size)
    offsets = torch.arange(patch_size, device=device)
    rows, cols = top[:, None] + offsets, left[:, None] + offsets
    patches = scenes.images[scene[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (N,P,P,3)
    return patches.permute(0, 3, 1, 2).contiguous(), labels


def patch_batches(scenes_per_batch: int = 32, config: SceneConfig = CONFIG, patch_size: int = PATCH_SIZE,
                  seed: int = 0, device: torch.device | str = "cpu"):
    """Endless ``(patches (N,3,P,P), labels (N,))`` batches from fresh scenes (see :func:`object_patches`).

    Each batch crops ``scenes_per_batch`` new scenes generated on ``device``,
    so ``N`` varies a little (one crop per thing plus one stuff crop per scene).
    """
    for step, scenes in enumerate(scene_stream(scenes_per_batch, config, seed=seed, device=device)):
        yield object_patches(scenes, patch_size, seed=seed + step)


def patch_accuracy(model: nn.Module, patches: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``patches`` ``(N,3,P,P)`` whose predicted class equals ``labels`` ``(N,)``."""
    if not isinstance(patches, torch.Tensor) or patches.dim() != 4:
        raise ValueError(f"patches must be a tensor (N,3,P,P), got "
                         f"{tuple(patches.shape) if isinstance(patches, torch.Tensor) else type(patches).__name__}")
    if not isinstance(labels, torch.Tensor) or labels.shape != patches.shape[:1]:
        raise ValueError(f"labels must be a tensor of shape ({patches.shape[0]},), got "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    device = next(model.parameters()).device
    with torch.no_grad():
        predicted = model(patches.to(device)).argmax(dim=1)
    return float((predicted == labels.to(device)).float().mean())


def train_classifier(steps: int, *, device: torch.device | str = "cpu", seed: int = 0, scenes_per_batch: int = 16,
                     eval_every: int | None = None, progress: bool = True) -> tuple[PatchClassifier, History]:
    """Train a :class:`~seglib.models.fcn.PatchClassifier` on :func:`patch_batches`.

    Each step crops ``scenes_per_batch`` fresh scenes (about 3.5 patches per
    scene). The evaluation is the accuracy on the patches of the 200
    validation scenes.

    Returns:
        ``(classifier in eval mode, History)`` with ``accuracy`` in ``history.evals``.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    model = PatchClassifier(num_classes=CONFIG.num_classes, patch_size=PATCH_SIZE).to(device)
    val_patches, val_labels = object_patches(split_scenes("val", CONFIG))
    history = train(model, patch_batches(scenes_per_batch, seed=seed, device=device), F.cross_entropy, steps=steps,
                    lr=LEARNING_RATE, evaluate=lambda m: {"accuracy": patch_accuracy(m, val_patches, val_labels)},
                    eval_every=eval_every, progress=progress, desc="patch classifier")
    return model, history


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


def scene_evaluator(split: str = "val", n: int | None = CURVE_SCENES,
                    config: SceneConfig = CONFIG) -> Callable[[nn.Module], dict[str, float]]:
    """A function ``model -> metrics`` on a fixed split of generated scenes.

    The scenes are generated once (on the CPU) and moved to the model's device
    at each call. The metrics are those of :func:`flat_metrics`, from the
    dataset-level confusion matrix and a boundary F1 tolerance of
    :data:`BOUNDARY_TOLERANCE` pixels.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        n: number of scenes (``None``: the whole split).
        config: generator options.
    """
    scenes = split_scenes(split, config, n)

    def evaluate(model: nn.Module) -> dict[str, float]:
        result = evaluate_segmentation(model, scenes.images, scenes.semantic, config.num_classes,
                                       batch_size=128)
        return flat_metrics(result, config.class_names)

    return evaluate


def train_fcn(variant: str, steps: int, *, device: torch.device | str = "cpu", seed: int = 0,
              batch_size: int = BATCH_SIZE, eval_every: int | None = None, evaluate: Callable | None = None,
              progress: bool = True) -> tuple[nn.Module, History]:
    """Train a fresh FCN of ``variant`` for ``steps`` steps on generated scenes.

    The model is initialised and the scenes are drawn from ``seed`` (the same
    for every variant, so they see the same batches), generated on ``device``.

    Args:
        variant: ``"32s"``, ``"16s"`` or ``"8s"``.
        steps: the budget in optimiser steps.
        device: where to train.
        seed: seed of the weights and of the training scenes.
        batch_size: scenes per step.
        eval_every: steps between evaluations (``None``: only at the end).
        evaluate: ``model -> dict`` (default: :func:`scene_evaluator` on 128 validation scenes).
        progress: show a progress bar.

    Returns:
        ``(model in eval mode, History)``; ``history.evals`` holds the metrics.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    device = torch.device(device)
    torch.manual_seed(seed)
    model = build_fcn(variant, num_classes=CONFIG.num_classes).to(device)
    batches = semantic_batches(CONFIG, batch_size, seed=seed, device=device)
    history = train(model, batches, lambda logits, target: F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX),
                    steps=steps, lr=LEARNING_RATE, evaluate=evaluate or scene_evaluator(),
                    eval_every=eval_every, progress=progress, desc=f"FCN-{variant}")
    return model, history


def evaluate_fcn(model: nn.Module) -> dict[str, float]:
    """Zoo evaluator: :func:`flat_metrics` of ``model`` on the 500 test scenes."""
    return scene_evaluator("test", None)(model)


def _curve(history: History) -> list[dict[str, float]]:
    keys = ("step", "seconds", "miou", "boundary_f1")
    return [{key: round(float(point[key]), 4) for key in keys} for point in history.evals]


def _recipe(variant: str, device: torch.device) -> ZooResult:
    model, history = train_fcn(variant, ZOO_STEPS, device=device, seed=0, eval_every=ZOO_EVAL_EVERY)
    training = {
        "steps": ZOO_STEPS, "batch_size": BATCH_SIZE, "lr": LEARNING_RATE, "loss": "cross_entropy",
        "device": str(device), "seconds": round(history.total_seconds, 1),
        "curve_split": f"val ({CURVE_SCENES} scenes)", "curve": _curve(history),
    }
    return ZooResult(model=model, builder="seglib.models.fcn:build_fcn",
                     kwargs={"variant": variant, "num_classes": CONFIG.num_classes},
                     evaluator="seglib.recipes_fcn:evaluate_fcn", metrics=evaluate_fcn(model),
                     training=training, seed=0)


def fcn32s(device: torch.device) -> ZooResult:
    """Zoo recipe of ``fcn32s``: FCN-32s, :data:`ZOO_STEPS` steps."""
    return _recipe("32s", device)


def fcn16s(device: torch.device) -> ZooResult:
    """Zoo recipe of ``fcn16s``: FCN-16s, :data:`ZOO_STEPS` steps."""
    return _recipe("16s", device)


def fcn8s(device: torch.device) -> ZooResult:
    """Zoo recipe of ``fcn8s``: FCN-8s, :data:`ZOO_STEPS` steps."""
    return _recipe("8s", device)
