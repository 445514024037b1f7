"""Notebook 02's lab: the patch classifier, the FCNs, their costs and their model-zoo recipes.

The patch classifier learns from object-centred crops of generated scenes
(:func:`object_patches`, :func:`patch_batches`, :func:`train_classifier`).
All FCN runs share one set-up so that the three variants get the same budget:
fresh 64 x 64 scenes of the default :class:`~seglib.data.SceneConfig` (sky,
grass, circle, rectangle, triangle), batches of :data:`BATCH_SIZE`, pixel-wise
cross entropy, AdamW with a cosine schedule (:func:`train`) and the same
seed; :func:`evaluate` measures them on the 500 test scenes. The zoo entries ``fcn32s``, ``fcn16s`` and ``fcn8s`` are trained
for :data:`ZOO_STEPS` steps; their manifest records the validation curve.

Repurposing the classifier: the zoo's ``patch_classifier`` trains for
:data:`CLASSIFIER_STEPS`; the entries ``fcn8s_transfer_seed{0,1,2}`` start
FCN-8s's first three encoder stages from its encoder (:func:`transfer_encoder`,
applied by :func:`init_entry`) and ``fcn8s_scratch_seed{0,1,2}`` start from
random weights, on the same short budget (:data:`TRANSFER_STEPS`).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seglib.data.batches import semantic_batches
from seglib.data.shapes import IGNORE_INDEX, SceneBatch, SceneConfig, scene_stream, split_scenes
from seglib.metrics.evaluation import scene_evaluator
from seglib.metrics.uncertainty import SceneScores, split_scores
from seglib.models.fcn import VARIANTS, PatchClassifier
from seglib.train import History
from seglib.train import train as train_loop
from seglib.validation import check_choice, check_image, check_positive_int
from seglib.zoo import Recipe, load

CONFIG = SceneConfig(size=64)
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
#: Training steps of each zoo entry (the same for the three variants).
ZOO_STEPS = 3000
#: Steps between the validation points stored in a zoo entry's training curve.
ZOO_EVAL_EVERY = 250
#: Validation scenes used for the curves; the test split (500 scenes) gives the tables.
CURVE_SCENES = 128
#: Side of the classifier's patches.
PATCH_SIZE = 32
#: Steps of the zoo's patch classifier (16 scenes' patches per step).
CLASSIFIER_STEPS = 2000
#: Budget and seeds of the transfer study: the cpu profile's live FCN-8s run.
TRANSFER_STEPS = 400
TRANSFER_SEEDS = (0, 1, 2)


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


def train_classifier(model: PatchClassifier, steps: int, *, device: torch.device | str = "cpu", seed: int = 0,
                     scenes_per_batch: int = 16, lr: float = 3e-3, eval_every: int | None = None,
                     progress: bool = True) -> History:
    """Train a :class:`~seglib.models.fcn.PatchClassifier` in place on :func:`patch_batches`.

    Each step crops ``scenes_per_batch`` fresh scenes (about 3.5 patches per
    scene). The evaluation is the accuracy on the patches of the 200
    validation scenes.

    Returns:
        The :class:`~seglib.train.History`, with ``accuracy`` in ``history.evals``;
        the model ends in eval mode.
    """
    device = torch.device(device)
    model.to(device)
    val_patches, val_labels = object_patches(split_scenes("val", CONFIG))
    return train_loop(model, patch_batches(scenes_per_batch, seed=seed, device=device), F.cross_entropy, steps=steps,
                    lr=lr, evaluate=lambda m: {"accuracy": patch_accuracy(m, val_patches, val_labels)},
                    eval_every=eval_every, progress=progress, desc="patch classifier")


LOSSES = ("cross_entropy",)
"""Loss names of :func:`train`."""

ZOO_ENTRIES: dict[str, Recipe] = {
    f"fcn{variant}": Recipe(lab="fcn", builder="fcn", kwargs={"variant": variant, "num_classes": CONFIG.num_classes},
                            steps=ZOO_STEPS, batch_size=BATCH_SIZE, lr=LEARNING_RATE, loss="cross_entropy", seed=0,
                            eval_every=ZOO_EVAL_EVERY)
    for variant in VARIANTS
} | {
    "patch_classifier": Recipe(lab="fcn", builder="patch_classifier",
                               kwargs={"num_classes": CONFIG.num_classes, "patch_size": PATCH_SIZE},
                               steps=CLASSIFIER_STEPS, batch_size=16, lr=LEARNING_RATE, loss="cross_entropy", seed=0),
} | {
    f"fcn8s_{start}_seed{seed}": Recipe(lab="fcn", builder="fcn", kwargs={"variant": "8s", "num_classes": CONFIG.num_classes},
                                        steps=TRANSFER_STEPS, batch_size=BATCH_SIZE, lr=LEARNING_RATE,
                                        loss="cross_entropy", seed=seed)
    for start in ("transfer", "scratch") for seed in TRANSFER_SEEDS
} | {
    f"fcn{variant}_{init}_seed{seed}": Recipe(
        lab="fcn", builder="fcn", kwargs={"variant": variant, "num_classes": CONFIG.num_classes, "upsampler_init": init},
        steps=TRANSFER_STEPS, batch_size=BATCH_SIZE, lr=LEARNING_RATE, loss="cross_entropy", seed=seed)
    for variant, init in (("32s", "bilinear"), ("16s", "bilinear"), ("8s", "random"))
    for seed in TRANSFER_SEEDS
}
"""The zoo entries of notebook 02 (run by ``make zoo NAME=...``): the three FCNs,
the patch classifier and the transfer study."""
TRANSFER_ENTRIES = tuple(f"fcn8s_transfer_seed{seed}" for seed in TRANSFER_SEEDS)


def curve_evaluator() -> Callable[[nn.Module], dict[str, float]]:
    """``model -> metrics`` on :data:`CURVE_SCENES` validation scenes (the training curves)."""
    return scene_evaluator(CONFIG, "val", CURVE_SCENES)


def evaluate(model: nn.Module) -> dict[str, float]:
    """mIoU, boundary F1, pixel accuracy and per-class IoU of ``model`` on the 500 test scenes.

    For a :class:`~seglib.models.fcn.PatchClassifier`: ``{"accuracy": ...}`` on the
    patches of the 500 test scenes.
    """
    if isinstance(model, PatchClassifier):
        return {"accuracy": patch_accuracy(model, *object_patches(split_scenes("test", CONFIG)))}
    return scene_evaluator(CONFIG, "test")(model)


def test_scores(model: nn.Module, n: int | None = None) -> SceneScores:
    """Per-scene confusion matrices and boundary F1 on the first ``n`` of the 500 test scenes
    (default: all of them), for bootstrap intervals."""
    return split_scores(model, CONFIG, "test", n)


def transfer_encoder(fcn: nn.Module, classifier: PatchClassifier) -> int:
    """Copy the classifier's encoder stages into the first stages of ``fcn.encoder``; return the tensors copied.

    Both encoders are :class:`~seglib.models.fcn.Encoder` stacks, so the
    classifier's stage ``i`` (convolutions and batch norms) has the shapes of
    the FCN's stage ``i``. Everything else in the FCN keeps its initialisation.
    """
    if not isinstance(classifier, PatchClassifier):
        raise TypeError(f"classifier must be a PatchClassifier, got {type(classifier).__name__}")
    if not hasattr(fcn, "encoder") or tuple(fcn.encoder.widths[:len(classifier.encoder.widths)]) != \
            tuple(classifier.encoder.widths):
        raise ValueError(f"fcn must have an encoder whose first stages have the classifier's widths "
                         f"{tuple(classifier.encoder.widths)}, got {getattr(getattr(fcn, 'encoder', None), 'widths', None)}")
    state = classifier.encoder.state_dict()
    fcn.encoder.load_state_dict(state, strict=False)
    return len(state)


def init_entry(name: str, model: nn.Module, device: torch.device | str) -> None:
    """Start zoo entry ``name`` as its recipe says: the transfer entries from the zoo's ``patch_classifier``."""
    if name in TRANSFER_ENTRIES:
        transfer_encoder(model, load("patch_classifier", device))


def train(model: nn.Module, steps: int, *, batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE,
          loss: str = "cross_entropy", seed: int = 0, eval_every: int | None = None,
          evaluate: Callable[[nn.Module], dict] | None = None, device: torch.device | str = "cpu",
          progress: bool = True, desc: str = "FCN") -> History:
    """Train ``model`` (an FCN, or any network of logits) in place on generated scenes.

    The scenes are drawn from ``seed`` and generated on ``device``, so models
    trained with the same seed and batch size see the same batches. Seed the
    weights before building the model (``torch.manual_seed(0)``) to compare
    variants from comparable starts.

    Args:
        model: returns logits ``(B, 5, 64, 64)`` for images ``(B, 3, 64, 64)``.
        steps: the budget in optimiser steps.
        batch_size: scenes per step.
        lr: peak learning rate of AdamW (cosine schedule).
        loss: ``"cross_entropy"`` (pixels labelled 255 ignored).
        seed: seed of the training scenes.
        eval_every: steps between evaluations (``None``: only at the end).
        evaluate: ``model -> dict`` (default: :func:`curve_evaluator`).
        device: where to train.
        progress: show a progress bar.

    Returns:
        The :class:`~seglib.train.History`; the model ends in eval mode.
    """
    check_choice("loss", loss, LOSSES)
    device = torch.device(device)
    if isinstance(model, PatchClassifier):
        return train_classifier(model, steps, device=device, seed=seed, scenes_per_batch=batch_size, lr=lr,
                                eval_every=eval_every, progress=progress)
    batches = semantic_batches(CONFIG, batch_size, seed=seed, device=device)
    return train_loop(model.to(device), batches,
                      lambda logits, target: F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX),
                      steps=steps, lr=lr, evaluate=evaluate or curve_evaluator(), eval_every=eval_every,
                      progress=progress, desc=desc)


def sliding_window_scores(classifier: PatchClassifier, image: torch.Tensor, stride: int = 1,
                          batch_size: int = 1024) -> torch.Tensor:
    """Classify a window around every ``stride``-th pixel of one image, one window at a time.

    The naive way to segment with a classifier. The image is padded by
    repeating its edge pixels so that every pixel ``(i, j)`` with ``i`` and
    ``j`` multiples of ``stride`` gets the ``P x P`` window whose top-left
    corner is ``(i - P//2, j - P//2)`` (``P = classifier.patch_size``). The
    windows go through the classifier in batches of ``batch_size`` (each
    window is a separate forward pass; batching only saves Python overhead).

    Args:
        classifier: a :class:`PatchClassifier` (in eval mode for deterministic scores).
        image: float ``(3, H, W)``.
        stride: distance between the classified pixels.
        batch_size: windows per call of the classifier.

    Returns:
        Scores ``(K, ceil(H / stride), ceil(W / stride))`` on the classifier's device.
    """
    if not isinstance(classifier, PatchClassifier):
        raise TypeError(f"classifier must be a PatchClassifier, got {type(classifier).__name__}")
    check_image("image", image)
    check_positive_int("stride", stride)
    check_positive_int("batch_size", batch_size)
    size = classifier.patch_size
    before, after = size // 2, size - 1 - size // 2
    device = next(classifier.parameters()).device
    padded = F.pad(image.to(device).unsqueeze(0), (before, after, before, after), mode="replicate")
    windows = F.unfold(padded, size, stride=stride)  # (1, 3*P*P, L)
    windows = windows.squeeze(0).T.reshape(-1, 3, size, size)
    with torch.no_grad():
        scores = torch.cat([classifier(windows[start:start + batch_size])
                            for start in range(0, windows.shape[0], batch_size)])
    rows, cols = -(-image.shape[1] // stride), -(-image.shape[2] // stride)
    return scores.T.reshape(-1, rows, cols)


def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Floating-point operations of ``model(x)`` (a multiply-add counts 2), by ``torch.utils.flop_counter``.

    Only matrix products and convolutions are counted (the operations that
    dominate); the model runs once under ``torch.no_grad``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the outputs of every leaf module in ``model(x)``: the activations training keeps.

    Counts each output tensor of a module without children once (an in-place
    ReLU counts like any other layer, so this is an upper bound). Run it on
    the ``meta`` device to size networks too large to execute.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    handles = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return total


def full_resolution_cost(side: int, channels: int = 64, kernel_size: int = 3, receptive_field: int | None = None
                         ) -> dict[str, float]:
    """What segmenting with stride-1 convolutions only would cost, computed.

    The network keeps the input resolution: ``L`` "same" convolutions of
    ``kernel_size`` with ``channels`` channels, each followed by a ReLU, deep
    enough that an output pixel sees ``receptive_field`` pixels (default: the
    whole ``side x side`` image), ``1 + L (k - 1) >= receptive_field``.

    Args:
        side: image side in pixels (>= 2).
        channels: C, the width of every layer.
        kernel_size: k (>= 2).
        receptive_field: the window to see, >= 2 (default ``side``); pass another
            network's receptive field to compare the two like for like.

    Returns:
        ``layers`` L, ``receptive_field``, ``gflops`` of one forward pass of an
        RGB image (multiply-add = 2), and ``activation_mb``, the float32
        outputs of the L convolutions and L ReLUs (as :func:`activation_bytes`
        counts them), in MiB.
    """
    check_positive_int("side", side)
    check_positive_int("channels", channels)
    check_positive_int("kernel_size", kernel_size)
    if side < 2 or kernel_size < 2:
        raise ValueError(f"side and kernel_size must be at least 2, got side={side}, kernel_size={kernel_size}")
    receptive_field = side if receptive_field is None else check_positive_int("receptive_field", receptive_field)
    if receptive_field < 2:
        raise ValueError(f"receptive_field must be at least 2, got {receptive_field}")
    layers = math.ceil((receptive_field - 1) / (kernel_size - 1))
    pixels = side * side
    flops = 2 * kernel_size**2 * pixels * channels * (3 + (layers - 1) * channels)
    return {
        "layers": layers,
        "receptive_field": 1 + layers * (kernel_size - 1),
        "gflops": flops / 1e9,
        "activation_mb": 2 * layers * channels * pixels * 4 / 2**20,
    }
