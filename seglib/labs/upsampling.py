"""Notebook 01's lab: the autoencoder and super-resolvers trained and judged, and what is measured on them.

:func:`train` fits a model to reconstruct generated scenes (``task="reconstruction"``,
the convolutional autoencoder) or to undo a 2x average pooling
(``task="superresolution"``, the one-layer upsamplers), with the mean squared
error; :func:`evaluate` measures the same error on 128 test scenes.
:func:`band_energy_ratio` and :func:`checkerboard_amplitude` measure what the upsampled images lost or
gained. The zoo holds the super-resolvers of the checkerboard study, three
seeds per upsampling layer (:data:`ZOO_ENTRIES`), so that the notebook can
state the spread over seeds of what one live run shows, and the unpooling
study: a SegNet trained to segment (``task="segmentation"``, cross entropy)
with max unpooling or with transposed convolutions, three seeds each.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from seglib.data.batches import reconstruction_batches, semantic_batches, superresolution_batches
from seglib.data.shapes import SceneConfig, split_scenes
from seglib.metrics.evaluation import scene_evaluator
from seglib.metrics.uncertainty import SceneScores, split_scores
from seglib.models.segnet import SEGNET_UPSAMPLING, SegNet
from seglib.models.upsamplers import SuperResolver
from seglib.train import History
from seglib.train import train as train_loop
from seglib.validation import check_choice, check_float_tensor, check_int
from seglib.zoo import Recipe, load

CONFIG = SceneConfig(size=64, noise=0.0)
"""The scenes of notebook 01: 64 x 64, no pixel noise (noise would hide the artefacts)."""
TASKS = ("reconstruction", "superresolution", "segmentation")
LOSSES = ("mse", "l1", "cross_entropy")
"""Loss names of :func:`train`: the mean squared (L2) or absolute (L1) error of the pixels,
or the pixel-wise cross entropy of the segmentation task."""
TEST_SCENES = 128
#: The upsampling layers of the checkerboard study: label -> (kind, kernel size).
STUDY_LAYERS = {"transposed_k3": ("transposed", 3), "transposed_k4": ("transposed", 4),
                "resize_conv_k3": ("nearest", 3)}
STUDY_SEEDS = (0, 1, 2)
#: Budget of each super-resolver of the study: the cpu profile's live run.
STUDY_STEPS, STUDY_BATCH_SIZE, STUDY_LR, STUDY_WIDTH = 250, 8, 3e-3, 16
#: The blur study: the live autoencoder's recipe trained 10 times longer (``cae_long``),
#: then with one thing changed: a code 4 times wider (``cae_wide``) or the L1 loss (``cae_l1``).
BLUR_STEPS = 3000
BLUR_ENTRIES = {"cae_long": ({"latent_channels": 8}, "mse"), "cae_wide": ({"latent_channels": 32}, "mse"),
                "cae_l1": ({"latent_channels": 8}, "l1")}
ZOO_ENTRIES: dict[str, Recipe] = {
    name: Recipe(lab="upsampling", builder="conv_autoencoder", kwargs={"widths": [16, 32, 64], **kwargs},
                 steps=BLUR_STEPS, batch_size=16, lr=1e-2, loss=loss, seed=1)
    for name, (kwargs, loss) in BLUR_ENTRIES.items()
} | {
    f"upsampler_{label}_seed{seed}": Recipe(
        lab="upsampling", builder="super_resolver", kwargs={"kind": kind, "width": STUDY_WIDTH, "kernel_size": k},
        steps=STUDY_STEPS, batch_size=STUDY_BATCH_SIZE, lr=STUDY_LR, loss="mse", seed=seed)
    for label, (kind, k) in STUDY_LAYERS.items() for seed in STUDY_SEEDS
}
"""The checkerboard study: each upsampling layer of :data:`STUDY_LAYERS` in a
:class:`~seglib.models.upsamplers.SuperResolver`, trained from each seed of :data:`STUDY_SEEDS`;
the blur study (:data:`BLUR_ENTRIES`); the unpooling study (:data:`SEGNET_STEPS`)."""
#: The unpooling study: a SegNet decoding with the pooling indices (``segnet_unpool_seed*``) or with
#: 2x2 transposed convolutions (``segnet_transposed_seed*``), segmenting the scenes of :data:`CONFIG`.
SEGNET_STEPS, SEGNET_BATCH_SIZE, SEGNET_LR = 400, 16, 3e-3
ZOO_ENTRIES |= {
    f"segnet_{kind}_seed{seed}": Recipe(
        lab="upsampling", builder="segnet", kwargs={"num_classes": CONFIG.num_classes, "upsampling": kind},
        steps=SEGNET_STEPS, batch_size=SEGNET_BATCH_SIZE, lr=SEGNET_LR, loss="cross_entropy", seed=seed)
    for kind in SEGNET_UPSAMPLING for seed in STUDY_SEEDS
}


def _task(model: nn.Module, task: str | None) -> str:
    """``task``, or the task of ``model``'s type: super-resolution for a SuperResolver,
    segmentation for a SegNet, else reconstruction."""
    if task is None:
        if isinstance(model, SegNet):
            return "segmentation"
        return "superresolution" if isinstance(model, SuperResolver) else "reconstruction"
    return check_choice("task", task, TASKS)


def _batches(task: str, batch_size: int, seed: int, device):
    if task == "reconstruction":
        return reconstruction_batches(batch_size, CONFIG, seed=seed, device=device)
    if task == "segmentation":
        return semantic_batches(CONFIG, batch_size, seed=seed, device=device)
    return superresolution_batches(batch_size, CONFIG, seed=seed, device=device)


def train(model: nn.Module, steps: int, *, batch_size: int = 16, lr: float = 1e-2, loss: str = "mse", seed: int = 1,
          eval_every: int | None = None, evaluate: Callable[[nn.Module], dict] | None = None,
          device: torch.device | str = "cpu", task: str | None = None, progress: bool = True,
          desc: str = "autoencoder") -> History:
    """Train ``model`` in place on fresh scenes of :data:`CONFIG` with a pixel loss (L2 by default).

    Args:
        model: images ``(B, 3, 64, 64)`` to images (``"reconstruction"``),
            ``(B, 3, 32, 32)`` to ``(B, 3, 64, 64)`` (``"superresolution"``), or
            to logits ``(B, 5, 64, 64)`` (``"segmentation"``).
        steps: optimiser steps.
        batch_size: scenes per step.
        lr: peak learning rate of AdamW (cosine schedule).
        loss: ``"mse"`` (L2) or ``"l1"``; ``"cross_entropy"`` for segmentation.
        seed: seed of the training scenes.
        eval_every, evaluate: as for :func:`seglib.train.train`.
        device: where to train.
        task: one of :data:`TASKS`; default: ``"superresolution"`` for a
            :class:`~seglib.models.upsamplers.SuperResolver`, ``"segmentation"`` for a
            :class:`~seglib.models.segnet.SegNet`, else ``"reconstruction"``.
        progress: show a progress bar.

    Returns:
        The :class:`~seglib.train.History`; the model ends in eval mode.
    """
    check_choice("loss", loss, LOSSES)
    task = _task(model, task)
    if (task == "segmentation") != (loss == "cross_entropy"):
        raise ValueError(f"loss must be 'cross_entropy' for the segmentation task and a pixel loss otherwise, "
                         f"got loss={loss!r} for task={task!r}")
    criterion = {"mse": F.mse_loss, "l1": F.l1_loss, "cross_entropy": F.cross_entropy}[loss]
    return train_loop(model, _batches(task, batch_size, seed, device), criterion, steps=steps, lr=lr,
                      evaluate=evaluate, eval_every=eval_every, device=device, progress=progress, desc=desc)


@torch.no_grad()
def evaluate(model: nn.Module, task: str | None = None) -> dict[str, float]:
    """``{"test_mse": ...}``: the mean squared error on :data:`TEST_SCENES` test scenes, on the CPU;
    for the segmentation task mIoU, boundary F1 and the rest of ``flat_metrics`` on the 500 test scenes.

    ``task`` as for :func:`train` (default: inferred from the model). The model
    is moved to the CPU (128 scenes are quick there) and stays there.
    """
    task = _task(model, task)
    if task == "segmentation":
        return scene_evaluator(CONFIG, "test")(model)
    scenes = split_scenes("test", CONFIG, n=TEST_SCENES)
    inputs = scenes.images if task == "reconstruction" else F.avg_pool2d(scenes.images, 2)
    model.cpu()
    return {"test_mse": F.mse_loss(model(inputs), scenes.images).item()}


def test_scores(model: nn.Module, n: int | None = None) -> SceneScores:
    """Per-scene confusion matrices and boundary F1 of a segmenter on the first ``n`` test scenes of
    :data:`CONFIG` (default: all 500), for bootstrap intervals."""
    return split_scores(model, CONFIG, "test", n)


def ring_power(images: torch.Tensor, bands: int = 8) -> torch.Tensor:
    """Power of each image in each ring of radial spatial frequency: float64 ``(B, bands)``.

    Each image loses its per-channel mean and goes through a 2-D FFT; its power
    (summed over channels) is summed over rings of radial frequency in cycles
    per pixel, ``0`` to ``0.5`` (the corners beyond 0.5 join the last ring).
    """
    check_float_tensor("images", images)
    check_int("bands", bands)
    height, width = images.shape[-2:]
    fy = torch.fft.fftfreq(height, device=images.device).view(-1, 1)
    fx = torch.fft.fftfreq(width, device=images.device).view(1, -1)
    ring = ((fy**2 + fx**2).sqrt() / 0.5 * bands).long().clamp(max=bands - 1).flatten()
    stack = images.detach().double()
    power = torch.fft.fft2(stack - stack.mean(dim=(-2, -1), keepdim=True)).abs().pow(2).sum(dim=1).flatten(1)
    return torch.zeros(images.shape[0], bands, dtype=torch.float64, device=images.device).index_add_(
        1, ring, power).cpu()


def band_energy_ratio(reconstructions: torch.Tensor, images: torch.Tensor,
                      bands: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """How much of the inputs' power at each spatial frequency the reconstructions keep.

    Args:
        reconstructions, images: float ``(B, C, H, W)`` of the same shape.
        bands: number of rings (see :func:`ring_power`).

    Returns:
        ``(centres, ratio)``, both float ``(bands,)``: the ring centres in
        cycles per pixel and the power of ``reconstructions`` over that of
        ``images`` in each ring, summed over the batch.
    """
    check_float_tensor("reconstructions", reconstructions)
    check_float_tensor("images", images)
    if reconstructions.shape != images.shape:
        raise ValueError(f"reconstructions must have the shape of images {tuple(images.shape)}, "
                         f"got {tuple(reconstructions.shape)}")
    check_int("bands", bands)
    centres = (torch.arange(bands, dtype=torch.float64) + 0.5) * 0.5 / bands
    kept = ring_power(reconstructions, bands).sum(0) / ring_power(images, bands).sum(0).clamp_min(1e-30)
    return centres.float(), kept.float()


def checkerboard_amplitude(images: torch.Tensor, period: int = 2, border: int = 0) -> torch.Tensor:
    """Root-mean-square of the ``period``-periodic pattern of each image, in the units of its pixels.

    The pixels split into ``period**2`` phases by ``(row % period, column %
    period)``; the pattern is each phase's mean minus the image's mean (per
    channel), the best ``period``-periodic approximation of the image. For an
    upsampler fed a constant image, whose output should be constant too, this
    is the strength of the grid it adds (e.g. in grey levels of [0, 1] images).

    Args:
        images: float ``(B, C, H, W)``.
        period: the stride of the upsampling layer under test, at least 2.
        border: pixels cropped from every side first (padding effects).

    Returns:
        float ``(B,)``, >= 0.
    """
    check_float_tensor("images", images)
    check_int("period", period, 2)
    check_int("border", border, 0)
    height, width = images.shape[-2:]
    if min(height, width) - 2 * border < period:
        raise ValueError(f"images of {height}x{width} with border={border} leave less than one period ({period}) "
                         "of pixels; expected larger images or a smaller border")
    crop = images[..., border:height - border, border:width - border].double()
    centred = crop - crop.mean(dim=(-2, -1), keepdim=True)
    pattern = torch.empty_like(centred)
    for row in range(period):
        for column in range(period):
            phase = centred[..., row::period, column::period]
            pattern[..., row::period, column::period] = phase.mean(dim=(-2, -1), keepdim=True)
    return pattern.pow(2).mean(dim=(1, 2, 3)).sqrt().to(images.dtype)


def high_band_kept(recon_power: torch.Tensor, image_power: torch.Tensor, index: torch.Tensor | None = None) -> float:
    """Share of the images' power kept in the highest ring, from :func:`ring_power` of both stacks.

    ``index`` selects scenes (a bootstrap resample); default: all of them.
    """
    index = torch.arange(image_power.shape[0]) if index is None else index
    return (recon_power[index, -1].sum() / image_power[index, -1].sum()).item()


@torch.no_grad()
def seed_study(grey: torch.Tensor, low_res: torch.Tensor, images: torch.Tensor) -> dict[str, dict[str, list[float]]]:
    """Grid amplitude on ``grey (1, 3, h, w)`` before and after training, and test MSE, of every study entry.

    For each layer of :data:`STUDY_LAYERS` and seed of :data:`STUDY_SEEDS`: the
    freshly initialised super-resolver of that seed (as the zoo built it) and the
    zoo's trained one, which upsamples ``low_res (N, 3, h, w)`` towards ``images
    (N, 3, 2h, 2w)``. Returns ``{label: {"grid before", "grid after", "test MSE"}}``,
    each a list over the seeds.
    """
    study = {}
    for label, (kind, k) in STUDY_LAYERS.items():
        row: dict[str, list[float]] = {"grid before": [], "grid after": [], "test MSE": []}
        for seed in STUDY_SEEDS:
            torch.manual_seed(seed)
            fresh = SuperResolver(kind, width=STUDY_WIDTH, kernel_size=k)
            trained = load(f"upsampler_{label}_seed{seed}", "cpu")
            row["grid before"].append(checkerboard_amplitude(fresh(grey), border=2).item())
            row["grid after"].append(checkerboard_amplitude(trained(grey), border=2).item())
            row["test MSE"].append(F.mse_loss(trained(low_res), images).item())
        study[label] = row
    return study
