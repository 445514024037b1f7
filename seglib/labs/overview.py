"""Notebook 00 (overview): measurements behind the map of the unit.

* :func:`semantic_counts`: how often counting the connected regions of a class
  in a semantic map gives the right number of things;
* :func:`argmax_flip_rate`: the share of pixels that noise on one-hot scores
  flips, computed exactly, to check the measured share against;
* :func:`shift_study`: mask IoU against box IoU for every thing shifted by a
  few pixels, with how much of its box each shape fills; :func:`plot_shift_gap`;
* :func:`unit_map`: the table of notebooks with their measured run times,
  read from ``bench/results`` so it cannot go stale.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage

from seglib.common import markdown_table
from seglib.data.shapes import SceneBatch
from seglib.metrics.masks import box_iou
from seglib.validation import check_int, check_ints, check_masks

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
NOTEBOOKS = {
    "00_overview": ("00 Overview", "the task ladder, label maps, one-hot and argmax, IoU"),
    "01_upsampling": ("01 Upsampling", "unpooling, transposed convolution, output sizes, checkerboard artifacts"),
    "02_fcn": ("02 FCN", "convolutionalization, FCN-32s/16s/8s and skip connections, measured"),
    "03_unet": ("03 U-Net", "U-Net, overlap-tile inference, residual blocks, DeepLab's atrous convolution and ASPP"),
    "04_losses": ("04 Losses", "cross-entropy, Dice, focal and Tversky losses under class imbalance; metrics"),
    "05_mask_rcnn": ("05 Mask R-CNN", "RPN, RoIAlign, the mask head, COCO mask AP, panoptic quality"),
    "06_sam": ("06 Segment Anything", "promptable segmentation, a small SAM, SAM 2's memory for video"),
}
"""Notebook file stem -> (title, what it teaches)."""


def _check_scenes(scenes: object) -> SceneBatch:
    if not isinstance(scenes, SceneBatch):
        raise TypeError(f"scenes must be a SceneBatch from seglib.data.generate_scenes, got {type(scenes).__name__}")
    return scenes


def semantic_counts(scenes: SceneBatch) -> dict[str, torch.Tensor]:
    """Things counted as connected regions (8-connected: pixels touching at a corner join) of their class.

    One row per (scene, thing class present in the scene).

    Returns:
        ``scene`` int64 ``(P,)``, ``label`` int64 ``(P,)``, ``true`` int64 ``(P,)``
        (instances of the class) and ``regions`` int64 ``(P,)`` (connected regions).
    """
    scenes = _check_scenes(scenes)
    rows = []
    for i in range(len(scenes)):
        labels = scenes.instances(i)["labels"]
        for c in labels.unique().tolist():
            regions = ndimage.label((scenes.semantic[i] == c).numpy(), structure=np.ones((3, 3)))[1]
            rows.append((i, c, int((labels == c).sum()), regions))
    table = torch.tensor(rows, dtype=torch.int64).reshape(-1, 4)
    return dict(zip(("scene", "label", "true", "regions"), table.unbind(dim=1)))


def argmax_flip_rate(noise: float, num_classes: int, points: int = 20001) -> float:
    """Probability that ``argmax(one_hot + noise * N(0, 1))`` misses the true class.

    The true class scores ``1 + s Z0`` and each of the ``C - 1`` others ``s Zi``; the
    argmax is right when ``1 + s Z0`` beats them all, with probability
    ``integral of phi(z) Phi((1 + s z) / s) ** (C - 1) dz`` (trapezoid rule on ``points``).
    """
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise <= 0:
        raise ValueError(f"noise must be a positive number (the standard deviation), got {noise!r}")
    check_int("num_classes", num_classes, 2)
    z = torch.linspace(-10, 10, check_int("points", points, 3), dtype=torch.float64)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    right = torch.trapezoid(normal.log_prob(z).exp() * normal.cdf((1 + noise * z) / noise) ** (num_classes - 1), z)
    return 1.0 - float(right)


def shift_mask(mask: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """A bool mask ``(H, W)`` moved by ``dx`` pixels right and ``dy`` down; pixels leaving the image are lost."""
    check_masks("mask", mask, "(H, W)", ndim=2)
    height, width = mask.shape
    out = torch.zeros_like(mask)
    if abs(dx) < width and abs(dy) < height:
        out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
            mask[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def shift_study(scenes: SceneBatch, shifts: tuple[int, ...] = (1, 2, 3, 4, 6), directions: int = 8
                ) -> dict[str, torch.Tensor]:
    """Every thing of ``scenes`` shifted by each distance in ``shifts`` along ``directions`` directions.

    Pixels and box edges moved out of the image are lost, as for a prediction.

    Returns float ``(T, S)`` tensors ``mask_iou`` and ``box_iou`` (T things, S shifts,
    averaged over the directions), float ``fill (T,)`` (mask area / box area),
    int64 ``label (T,)`` and int64 ``shifts (S,)``.
    """
    scenes = _check_scenes(scenes)
    shifts = check_ints("shifts", shifts)
    angles = [2 * math.pi * k / check_int("directions", directions) for k in range(directions)]
    mask_rows, box_rows, fill, labels = [], [], [], []
    height, width = scenes.semantic.shape[1:]
    for i in range(len(scenes)):
        inst = scenes.instances(i)
        for mask, box, label in zip(inst["masks"], inst["boxes"], inst["labels"]):
            moves = [[(round(d * math.cos(a)), round(d * math.sin(a))) for a in angles] for d in shifts]
            mask_rows.append([sum(_mask_iou(mask, shift_mask(mask, dx, dy)) for dx, dy in row) / directions
                              for row in moves])
            moved = torch.tensor([[dx, dy, dx, dy] for row in moves for dx, dy in row], dtype=box.dtype) + box
            moved = moved.clamp(min=0).minimum(torch.tensor([width, height, width, height], dtype=box.dtype))
            box_rows.append(box_iou(box[None], moved)[0].reshape(len(shifts), directions).mean(dim=1).tolist())
            fill.append(float(mask.sum()) / float((box[2] - box[0]) * (box[3] - box[1])))
            labels.append(int(label))
    return {"mask_iou": torch.tensor(mask_rows), "box_iou": torch.tensor(box_rows), "fill": torch.tensor(fill),
            "label": torch.tensor(labels, dtype=torch.int64), "shifts": torch.tensor(shifts)}


def _mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


def plot_shift_gap(study: dict[str, torch.Tensor], class_names: tuple[str, ...], shift: int = 3, ax=None):
    """Box IoU minus mask IoU at ``shift`` pixels against the share of its box each shape fills."""
    from seglib.viz import colour

    if not isinstance(study, dict) or "shifts" not in study:
        raise TypeError(f"study must be the dict of shift_study, got {type(study).__name__}")
    if shift not in study["shifts"].tolist():
        raise ValueError(f"shift must be one of the study's shifts {study['shifts'].tolist()}, got {shift!r}")
    position = study["shifts"].tolist().index(shift)
    gap = study["box_iou"][:, position] - study["mask_iou"][:, position]
    ax = ax or plt.subplots(figsize=(8, 4.2), layout="constrained")[1]
    markers = {"circle": "o", "rectangle": "s", "triangle": "^"}
    for c in study["label"].unique().tolist():
        chosen = study["label"] == c
        ax.scatter(study["fill"][chosen], gap[chosen], s=30, alpha=0.8, color=[v / 255 for v in colour(c)],
                   marker=markers.get(class_names[c], "o"), edgecolors="black", linewidths=0.4, label=class_names[c])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("share of its box the shape fills (mask area / box area)")
    ax.set_ylabel(f"box IoU - mask IoU\nafter a {shift}-px shift")
    ax.grid(alpha=0.3)
    ax.legend(title="class", loc="upper right")
    return ax


def unit_map(results: Path = RESULTS) -> str:
    """The notebooks of the unit, what each teaches and its measured wall time, as Markdown.

    Times come from the newest ``bench/results/<profile>-<machine>.json`` of each
    profile (``make bench``); a profile never measured says so.
    """
    newest: dict[str, dict] = {}
    for path in sorted(Path(results).glob("*.json")) if Path(results).is_dir() else []:
        data = json.loads(path.read_text())
        if data.get("profile") in ("cpu", "gpu") and data["date"] >= newest.get(data["profile"], {}).get("date", ""):
            newest[data["profile"]] = data
    header = ["notebook", "what it teaches"]
    for profile in ("cpu", "gpu"):
        data = newest.get(profile)
        header.append(f"{profile.upper()}: {data['machine']} ({data['date']})" if data else profile.upper())
    rows = []
    for stem, (title, topic) in NOTEBOOKS.items():
        times = []
        for profile in ("cpu", "gpu"):
            row = newest.get(profile, {}).get("notebooks", {}).get(stem)
            times.append(f"{row['wall_s']:.0f} s" if row else "not measured yet")
        rows.append([title, topic, *times])
    return markdown_table(header, rows, align="llrr")
