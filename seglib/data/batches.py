"""Endless training batches: iterators of ``(inputs, targets)`` for :func:`seglib.train.train`.

* :func:`semantic_batches`: generated scenes and their label maps ``(B,3,H,W)``, ``(B,H,W)``;
* :func:`reconstruction_batches`: scenes as both input and target (autoencoders);
* :func:`superresolution_batches`: scenes averaged down by a factor and the scenes;
* :func:`random_batches`: random batches of images and label maps held in memory (real datasets).

Generated batches are drawn from their own seeded generator on the given device.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from seglib.data.shapes import SceneConfig, scene_stream
from seglib.validation import check_image, check_int, check_label_map


def reconstruction_batches(batch_size: int = 32, config: SceneConfig | None = None, seed: int = 0,
                           device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(images, images)`` pairs ``(B, 3, H, W)``: the target of a reconstruction is its input."""
    for scenes in scene_stream(batch_size, config, seed=seed, device=device):
        yield scenes.images, scenes.images


def superresolution_batches(batch_size: int = 16, config: SceneConfig | None = None, scale: int = 2, seed: int = 0,
                            device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless training pairs ``(low_res, images)``: the scenes averaged down by ``scale``.

    ``low_res`` is ``(B, 3, H/scale, W/scale)``, ``images`` is ``(B, 3, H, W)``;
    ``config.size`` must be a multiple of ``scale``.
    """
    check_int("scale", scale, 2)
    config = config or SceneConfig()
    if config.size % scale:
        raise ValueError(f"config.size must be a multiple of scale ({scale}), got {config.size}")
    for scenes in scene_stream(batch_size, config, seed=seed, device=device):
        yield F.avg_pool2d(scenes.images, scale), scenes.images


def semantic_batches(config: SceneConfig | None = None, batch_size: int = 32, seed: int = 0,
                     device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(images (B,3,H,W), labels (B,H,W))`` batches generated on ``device``."""
    for scenes in scene_stream(batch_size, config, seed=seed, device=device):
        yield scenes.images, scenes.semantic


def random_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int = 0,
                   flip: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless random batches ``(images (B,3,S,S), labels (B,S,S))`` drawn from tensors in memory.

    Each batch samples ``batch_size`` indices without replacement (a new
    permutation every epoch) on the tensors' device; with ``flip`` half of the
    pairs are mirrored left-right.
    """
    check_image("images", images, batched=True)
    check_label_map("labels", labels, shape="(N, H, W)")
    if images.shape[0] != labels.shape[0] or images.shape[-2:] != labels.shape[-2:]:
        raise ValueError(f"images (N,3,H,W) and labels (N,H,W) must match, got {tuple(images.shape)} "
                         f"and {tuple(labels.shape)}")
    check_int("batch_size", batch_size, 1, images.shape[0])
    return _random_batches(images, labels, batch_size, seed, flip)


def _random_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int,
                    flip: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(images.shape[0], generator=generator)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            index = order[start:start + batch_size].to(images.device)
            batch_images, batch_labels = images[index], labels[index]
            if flip:
                mirror = (torch.rand(batch_size, generator=generator) < 0.5).to(images.device)
                batch_images = torch.where(mirror[:, None, None, None], batch_images.flip(-1), batch_images)
                batch_labels = torch.where(mirror[:, None, None], batch_labels.flip(-1), batch_labels)
            yield batch_images, batch_labels
