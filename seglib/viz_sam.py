"""Figures of promptable segmentation: the candidates of one prompt, an object tracked through a clip, and
the masks of "segment everything"."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from seglib.metrics.masks import paired_iou
from seglib.predictor import Prediction
from seglib.viz import dimmed, highlight, overlay_masks, show_image, show_points


def show_candidates(image: torch.Tensor, prediction: Prediction, points: torch.Tensor | None = None,
                    labels: torch.Tensor | None = None, target: torch.Tensor | None = None, size: float = 3.0,
                    point_size: float = 60):
    """One panel per candidate mask of ``prediction``, titled with its predicted IoU.

    Args:
        image: float ``(3, H, W)``.
        prediction: from a predictor's ``predict`` on that image.
        points, labels: the prompt's points ``(N, 2)`` and labels ``(N,)``, drawn on every panel.
        target: bool ``(H, W)``; if given, each title also gives the true IoU.
        size: panel side in inches.
        point_size: marker area of the points (small, so that a click does not hide a small mask).

    Returns:
        The matplotlib figure.
    """
    count = len(prediction.masks)
    fig, axes = plt.subplots(1, count, figsize=(size * count, size * 1.15), squeeze=False)
    best = int(prediction.iou_predictions.argmax())
    for i, ax in enumerate(axes[0]):
        mask = prediction.masks[i].cpu()
        title = f"mask {i + 1}{' (shown)' if i == best else ''}\npredicted IoU {float(prediction.iou_predictions[i]):.2f}"
        if target is not None:
            title += f", true {float(paired_iou(mask, target.cpu())):.2f}"
        show_image(highlight(image, mask), ax=ax, title=title)
        if points is not None:
            show_points(points, labels, ax=ax, size=point_size)
    fig.tight_layout()
    return fig


def show_tracks(frames: torch.Tensor, target: torch.Tensor, tracks: dict, steps: list[int], size: float = 1.6):
    """Frames (columns) of one clip: the truth, then one row per tracking method.

    Args:
        frames: float ``(T, 3, H, W)``.
        target: bool ``(T, H, W)``: the tracked object (its frames without a pixel are titled "hidden").
        tracks: method -> ``(masks bool (T, H, W), visible bool (T,))``; a frame the
            method calls hidden is marked "says hidden".
        steps: frame indices shown.

    Returns:
        The matplotlib figure.
    """
    rows = {"truth": (target, target.flatten(1).any(dim=1)), **tracks}
    fig, axes = plt.subplots(len(rows), len(steps), figsize=(size * len(steps), size * len(rows) * 1.05),
                             squeeze=False)
    for r, (name, (masks, visible)) in enumerate(rows.items()):
        for c, t in enumerate(steps):
            hidden = not bool(target[t].any())
            title = (f"frame {t}" + ("\nhidden" if hidden else "")) if r == 0 else None
            ax = show_image(highlight(frames[t], masks[t]), ax=axes[r, c], title=title)
            if r and not bool(visible[t]):
                ax.text(0.5, 0.5, "says\nhidden", transform=ax.transAxes, ha="center", va="center", fontsize=11,
                        color="white", bbox=dict(facecolor="black", alpha=0.6, pad=2))
            if c == 0:
                ax.text(-0.08, 0.5, name.replace("_", " "), transform=ax.transAxes, rotation=90, ha="right",
                        va="center", fontsize=12)
    fig.subplots_adjust(wspace=0.06, hspace=0.12)
    return fig


def show_everything(scenes, generated: list, indices: list[int], size: float = 3.0, title: str | None = None):
    """Scenes (columns) with every generated mask in its own colour, and the grid points that kept one.

    Args:
        scenes: a :class:`~seglib.data.shapes.SceneBatch`.
        generated: one :class:`~seglib.mask_generator.GeneratedMasks` per scene, in scene order.
        indices: scenes shown.
        title: the figure's title (which model and filters), or ``None``.

    Returns:
        The matplotlib figure.
    """
    fig, axes = plt.subplots(1, len(indices), figsize=(size * len(indices), size * 1.1), squeeze=False)
    for ax, i in zip(axes[0], indices):
        found = generated[i]
        count = len(found.masks)
        show_image(overlay_masks(dimmed(scenes.images[i]), found.masks, alpha=0.85), ax=ax,
                   title=f"scene {i}: {count} mask{'' if count == 1 else 's'}")
        ax.scatter(found.points[:, 0] - 0.5, found.points[:, 1] - 0.5, s=30, c="white", edgecolors="black")
    if title is not None:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig
