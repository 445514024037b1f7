"""Figures shared by the notebooks: label maps, overlays, grids, curves.

Colours come from the Okabe-Ito palette, which stays distinguishable for the
common forms of colour blindness. Boxes use torchvision's
``draw_bounding_boxes``; masks are blended here, smallest on top.
"""

from __future__ import annotations

import re
import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.patches import Patch
from torchvision.utils import draw_bounding_boxes

from seglib.data.shapes import IGNORE_INDEX
from seglib.validation import (check_boxes, check_image, check_int, check_label_map, check_masks, check_same_size,
                              check_tensor)

#: Okabe-Ito colours (name, RGB 0-255), in the order classes get them.
PALETTE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("sky blue", (86, 180, 233)),
    ("bluish green", (0, 158, 115)),
    ("orange", (230, 159, 0)),
    ("vermillion", (213, 94, 0)),
    ("yellow", (240, 228, 66)),
    ("blue", (0, 114, 178)),
    ("reddish purple", (204, 121, 167)),
    ("black", (0, 0, 0)),
)
IGNORE_COLOUR = (255, 255, 255)
#: Paul Tol's colour-blind-safe "bright" scheme, for instances (not classes).
INSTANCE_PALETTE: tuple[tuple[int, int, int], ...] = (
    (68, 119, 170), (238, 102, 119), (34, 136, 51), (204, 187, 68), (102, 204, 238), (170, 51, 119),
)


def _check_image(image: torch.Tensor, name: str = "image") -> None:
    check_image(name, image, allow_uint8=True)


def _check_label_map(labels: torch.Tensor, name: str = "labels") -> None:
    check_label_map(name, labels, shape="(H, W)")


def colour(index: int) -> tuple[int, int, int]:
    """RGB colour (0-255) of class ``index``; cycles through :data:`PALETTE`."""
    return PALETTE[index % len(PALETTE)][1]


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Float image ``(3,H,W)`` in [0,1] to uint8 ``(3,H,W)`` (uint8 passes through)."""
    _check_image(image)
    if image.dtype == torch.uint8:
        return image.cpu()
    return (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def colourize(labels: torch.Tensor) -> torch.Tensor:
    """Label map int ``(H,W)`` to an RGB uint8 image ``(3,H,W)``; 255 (ignore) is white."""
    _check_label_map(labels)
    labels = labels.detach().cpu().long()
    table = torch.tensor([colour(i) for i in range(256)], dtype=torch.uint8)
    table[IGNORE_INDEX] = torch.tensor(IGNORE_COLOUR, dtype=torch.uint8)
    if labels.min() < 0 or labels.max() > 255:
        raise ValueError(f"labels must be in [0, 255], got range [{int(labels.min())}, {int(labels.max())}]")
    return table[labels].permute(2, 0, 1).contiguous()


def legend_handles(class_names: Sequence[str]) -> list[Patch]:
    """Matplotlib legend patches, one per class, in the label-map colours."""
    return [Patch(color=[c / 255 for c in colour(i)], label=f"{i} {name}") for i, name in enumerate(class_names)]


def show_image(image: torch.Tensor, ax=None, title: str | None = None):
    """Show an image ``(3,H,W)`` (float in [0,1] or uint8) on ``ax``; returns the axes."""
    ax = ax or plt.gca()
    ax.imshow(to_uint8(image).permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_label_map(labels: torch.Tensor, class_names: Sequence[str] | None = None, ax=None,
                   title: str | None = None, legend: bool = True):
    """Show a label map ``(H,W)`` in palette colours, with a legend of ``class_names``."""
    ax = show_image(colourize(labels), ax=ax, title=title)
    if legend and class_names:
        ax.legend(handles=legend_handles(class_names), loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  frameon=False)
    return ax


def _colours(n: int, labels: torch.Tensor | None) -> list[tuple[int, int, int]]:
    """RGB of ``n`` masks or boxes: their class colours (``labels (n,)``), else instance colours by index."""
    if labels is not None:
        return [colour(int(k)) for k in labels.tolist()]
    return [INSTANCE_PALETTE[k % len(INSTANCE_PALETTE)] for k in range(n)]


def overlay_masks(image: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor | None = None,
                  alpha: float = 0.55) -> torch.Tensor:
    """Instance masks bool ``(N,H,W)`` over an image ``(3,H,W)``; returns uint8 ``(3,H,W)``.

    Each mask takes the colour of its class in ``labels`` ``(N,)`` if given,
    else an instance colour of its index. Where masks overlap, the smallest is
    drawn on top (torchvision's ``draw_segmentation_masks`` paints overlaps
    black, which hides the near-duplicate masks of "segment everything").
    """
    _check_image(image)
    check_masks("masks", masks)
    if masks.shape[1:] != image.shape[1:]:
        raise ValueError(f"masks must be bool (N,H,W) matching the image {tuple(image.shape[1:])}, "
                         f"got {masks.dtype} {tuple(masks.shape)}")
    if masks.shape[0] == 0:
        return to_uint8(image)
    colours = _colours(masks.shape[0], labels)
    base = to_uint8(image)
    masks = masks.cpu()
    paint = base.clone()
    for k in masks.flatten(1).sum(1).argsort(descending=True, stable=True).tolist():  # large first
        paint[:, masks[k]] = torch.tensor(colours[k], dtype=torch.uint8)[:, None]
    return (base * (1 - alpha) + paint * alpha).to(torch.uint8)


def dimmed(image: torch.Tensor) -> torch.Tensor:
    """A light grey copy float ``(3,H,W)`` of an image ``(3,H,W)``, float in [0,1] or uint8.

    Coloured masks drawn over it stand out whatever the image's own colours.
    """
    _check_image(image)
    scaled = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    return 0.35 * scaled.mean(dim=0, keepdim=True).expand(3, -1, -1) + 0.5


def overlay_boxes(image: torch.Tensor, boxes: torch.Tensor, captions: Sequence[str] | None = None,
                  labels: torch.Tensor | None = None, width: int = 2) -> torch.Tensor:
    """xyxy boxes float ``(N,4)`` drawn on an image ``(3,H,W)``; returns uint8 ``(3,H,W)``."""
    _check_image(image)
    check_boxes("boxes", boxes)
    if boxes.shape[0] == 0:
        return to_uint8(image)
    return draw_bounding_boxes(to_uint8(image), boxes.cpu(), labels=list(captions) if captions else None,
                               colors=_colours(boxes.shape[0], labels), width=width)


def show_points(points: torch.Tensor, point_labels: torch.Tensor, ax=None, size: float = 120):
    """Point prompts ``(N,2)`` (x,y) in pixels: foreground (1) green stars, background (0) vermillion crosses."""
    ax = ax or plt.gca()
    check_tensor("points", points, "(N, 2) of (x, y) pixels", "float")
    if points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2) of (x, y) pixels, got {tuple(points.shape)}")
    check_tensor("point_labels", point_labels, "(N,) of 1 (foreground) or 0 (background)", "number")
    points, point_labels = points.detach().cpu(), point_labels.detach().cpu()
    for value, face, marker in ((1, "#009E73", "*"), (0, "#D55E00", "X")):
        chosen = points[point_labels == value]
        ax.scatter(chosen[:, 0] - 0.5, chosen[:, 1] - 0.5, marker=marker, s=size, c=face,
                   edgecolors="white", linewidths=1.2)
    return ax


def fit_title(title: str, width: float) -> str:
    """``title`` broken into lines that fit a column ``width`` inches wide at the course's font size.

    Lines break at spaces and hyphens, never inside parentheses ("bottleneck (8 x 8)"
    becomes "bottleneck" over "(8 x 8)"); a title that fits stays one line.
    """
    chars = max(6, int(width * 9))  # about 11 px per character of a 12 pt title at 100 dpi
    if len(title) <= chars:
        return title
    kept = re.sub(r"\([^)]*\)", lambda group: group.group(0).replace(" ", "\u00a0"), title)
    return textwrap.fill(kept, width=chars).replace("\u00a0", " ")


def show_predictions(images: torch.Tensor, targets: torch.Tensor, predictions: dict[str, torch.Tensor] | None = None,
                     class_names: Sequence[str] | None = None, n: int = 4, size: float = 2.2):
    """A grid: one row per image with image, target and each prediction.

    Args:
        images: float ``(B,3,H,W)``.
        targets: int64 ``(B,H,W)`` label maps.
        predictions: column title -> int64 ``(B,H,W)`` predicted label maps.
        class_names: for the legend.
        n: number of rows (images) shown.
    Returns:
        The matplotlib figure.
    """
    check_image("images", images, batched=True)
    check_label_map("targets", targets)
    check_same_size("targets", targets, "images", images)
    predictions = predictions or {}
    n = min(n, images.shape[0])
    columns = 2 + len(predictions)
    fig, axes = plt.subplots(n, columns, figsize=(size * columns, size * n), squeeze=False)
    for row in range(n):
        show_image(images[row], ax=axes[row, 0], title="image" if row == 0 else None)
        show_label_map(targets[row], ax=axes[row, 1], title="target" if row == 0 else None, legend=False)
        for col, (name, pred) in enumerate(predictions.items(), start=2):
            show_label_map(pred[row], ax=axes[row, col], title=fit_title(name, size) if row == 0 else None,
                           legend=False)
    if class_names:
        fig.legend(handles=legend_handles(class_names), loc="lower center", ncol=len(class_names), frameon=False)
        fig.subplots_adjust(bottom=0.12 if n > 1 else 0.2)
    return fig


def plot_history(histories: dict, metric: str | None = None, ax=None, x: str = "step"):
    """Loss (or an evaluation ``metric``) against ``"step"`` or ``"seconds"``.

    Args:
        histories: run name -> :class:`seglib.train.History`.
        metric: ``None`` for the training loss, else a key of the evaluations.
    """
    ax = ax or plt.gca()
    for name, history in histories.items():
        if metric is None:
            xs = history.steps if x == "step" else history.seconds
            ax.plot(xs, history.loss, label=name)
        else:
            xs = [e[x] for e in history.evals]
            ax.plot(xs, [e[metric] for e in history.evals], marker="o", label=name)
    ax.set_xlabel("training step" if x == "step" else "seconds")
    ax.set_ylabel(metric or "training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_seed_scores(values: dict[str, Sequence[float]], ax=None, xlabel: str = "test mIoU", level: float = 0.95):
    """One row per run: a dot per seed, a bar for the mean and its Student-t interval (:func:`seed_estimate`).

    Args:
        values: label -> one score per seed (at least 2), drawn top to bottom in this order.
        ax: the axes (default: the current ones).
        xlabel: what the scores are.
        level: level of the intervals.
    """
    from seglib.metrics.uncertainty import seed_estimate

    if not isinstance(values, dict) or not values:
        raise ValueError(f"values must be a non-empty dict label -> scores, got {type(values).__name__}")
    ax = ax or plt.gca()
    dot = tuple(c / 255 for c in PALETTE[5][1])
    for row, (label, scores) in enumerate(values.items()):
        estimate = seed_estimate(scores, level)
        ax.plot([estimate.low, estimate.high], [row, row], color="0.35", linewidth=3, solid_capstyle="butt")
        ax.plot([estimate.value], [row], marker="|", markersize=18, color="black")
        ax.plot(list(scores), [row] * len(scores), "o", color=dot, markersize=8, alpha=0.85)
    ax.set_yticks(range(len(values)), list(values))
    ax.set_ylim(len(values) - 0.5, -0.5)
    ax.set_xlabel(f"{xlabel}: seeds (dots), mean and {level:.0%} interval")
    ax.grid(axis="x", alpha=0.3)
    return ax


def colourize_panoptic(panoptic: torch.Tensor, divisor: int = 1000) -> torch.Tensor:
    """Panoptic map int64 ``(H,W)`` (``class * divisor + instance``) to RGB uint8 ``(3,H,W)``.

    Stuff keeps its class colour; each thing instance gets its class colour
    at a different brightness, so touching instances of one class stay apart.
    """
    _check_label_map(panoptic, "panoptic")
    panoptic = panoptic.detach().cpu().long()
    if panoptic.numel() and int(panoptic.min()) < 0:
        raise ValueError(f"panoptic must hold ids class * divisor + instance >= 0, got {int(panoptic.min())}")
    rgb = colourize(panoptic // divisor).float()
    instance = panoptic % divisor
    shade = torch.where(instance > 0, 0.55 + 0.45 * ((instance * 0.618) % 1.0), torch.ones_like(instance,
                        dtype=torch.float32))
    return (rgb * shade).round().clamp(0, 255).to(torch.uint8)


def draw_boxes(ax, boxes: torch.Tensor, captions: Sequence[str] | None = None, labels: torch.Tensor | None = None,
               fontsize: float = 10, linewidth: float = 2.5):
    """Draw xyxy boxes float ``(N, 4)`` (pixels) on the image shown in ``ax``, with legible captions.

    Each box is drawn in its class colour (``labels (N,)``, else an instance
    colour) over a thin black outline, so it stays visible on any background.
    Each caption sits on a white label just inside a corner of its box, or
    just above or below it: the first of these spots that covers no earlier
    caption, else the one that covers the least. Returns the axes.
    """
    from matplotlib.patches import Rectangle

    check_boxes("boxes", boxes)
    boxes = boxes.detach().float().cpu()
    colours = _colours(boxes.shape[0], labels)
    height, width = (abs(v) for v in (ax.get_ylim()[0] - ax.get_ylim()[1], ax.get_xlim()[1] - ax.get_xlim()[0]))
    # Caption size in data pixels: points -> inches -> share of the axes -> data units.
    box_inches = ax.get_window_extent().transformed(ax.figure.dpi_scale_trans.inverted())
    per_point = width / (box_inches.width * 72)
    placed: list[tuple[float, float, float, float]] = []
    for rgb255, (x1, y1, x2, y2) in zip(colours, boxes.tolist()):
        rgb = [c / 255 for c in rgb255]
        for edge, lw in (("black", linewidth + 1.5), (rgb, linewidth)):
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=edge, linewidth=lw))
        if not captions:
            continue
        text = captions[len(placed)]
        w, h = (len(text) * 0.6 + 0.6) * fontsize * per_point, 1.5 * fontsize * per_point
        # inside corners first, then just above or below the box
        corners = [(x1, y1), (x1, y2 - h), (x2 - w, y1), (x2 - w, y2 - h),
                   (x1, y1 - h), (x1, y2), (x2 - w, y1 - h), (x2 - w, y2)]
        spots = [(min(max(x, 0), width - w), min(max(y, 0), height - h)) for x, y in corners]

        def covered(spot):  # area of earlier captions that a caption at `spot` would hide
            return sum(max(0.0, min(spot[0] + w, px + pw) - max(spot[0], px))
                       * max(0.0, min(spot[1] + h, py + ph) - max(spot[1], py)) for px, py, pw, ph in placed)

        x, y = min(spots, key=covered)  # the first free spot, else the one hiding least
        placed.append((x, y, w, h))
        ax.text(x, y, text, fontsize=fontsize, va="top", ha="left", color="black",
                bbox=dict(facecolor="white", edgecolor=rgb, linewidth=1.5, alpha=0.9, pad=1.5))
    return ax


def show_task_ladder(scenes, i: int = 0, size: float = 2.6):
    """The six tasks of the lecture on scene ``i`` of a :class:`SceneBatch`, in two rows of three.

    Classification, classification + localisation and semantic segmentation;
    object detection, instance segmentation (each instance in its own colour
    over a dimmed image) and panoptic segmentation. Returns the figure.
    """
    names = scenes.config.class_names
    image = scenes.images[i]
    inst = scenes.instances(i)
    label = int(scenes.scene_labels[i])
    fig, axes = plt.subplots(2, 3, figsize=(size * 3, size * 2.45))
    axes = axes.ravel()
    show_image(image, ax=axes[0], title=f"classification\n{names[label] if label >= 0 else '-'}")
    show_image(image, ax=axes[1], title="classification\n+ localisation")
    if len(inst["labels"]):
        largest = int(inst["masks"].flatten(1).sum(1).argmax())
        draw_boxes(axes[1], inst["boxes"][largest:largest + 1], [names[label]], inst["labels"][largest:largest + 1])
    show_label_map(scenes.semantic[i], ax=axes[2], title="semantic\nsegmentation", legend=False)
    show_image(image, ax=axes[3], title="object\ndetection")
    draw_boxes(axes[3], inst["boxes"], [names[int(k)] for k in inst["labels"]], inst["labels"])
    show_image(overlay_masks(dimmed(image), inst["masks"], alpha=0.85), ax=axes[4],
               title="instance segmentation\n(a colour per object)")
    show_image(colourize_panoptic(scenes.panoptic[i]), ax=axes[5], title="panoptic\nsegmentation")
    fig.legend(handles=legend_handles(names), loc="lower center", ncol=len(names), frameon=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.08, top=0.9, wspace=0.06, hspace=0.3)
    return fig


def show_detections(image: torch.Tensor, prediction: dict, class_names: Sequence[str], score_threshold: float = 0.5,
                    ax=None, title: str | None = None, palette_shift: int = 0):
    """Masks and captioned boxes of one prediction (or target) over a grey copy of its image.

    Args:
        image: float ``(3, H, W)`` in [0, 1].
        prediction: ``masks`` bool ``(n, H, W)``, ``boxes`` ``(n, 4)``,
            ``labels`` ``(n,)`` and optionally ``scores`` ``(n,)``: only
            instances scoring at least ``score_threshold`` are drawn.
        class_names: name of each label (index = label).
        palette_shift: added to a label to pick its colour (scene detections:
            ``detection.label_shift(config)``, the colours of the label maps).

    Returns:
        The matplotlib axes.
    """
    check_int("palette_shift", palette_shift, minimum=0)
    for key in ("masks", "boxes", "labels"):
        if key not in prediction:
            raise ValueError(f"prediction must have key {key!r}, got keys {sorted(prediction)}")
    scores = prediction.get("scores")
    keep = scores >= score_threshold if scores is not None else torch.ones(len(prediction["labels"]), dtype=torch.bool)
    labels = prediction["labels"][keep].cpu()
    captions = [class_names[int(k)] + (f" {float(s):.2f}" if scores is not None else "")
                for k, s in zip(labels, scores[keep] if scores is not None else labels)]
    colours = labels + palette_shift
    masks = prediction["masks"][keep].cpu().bool()
    ax = show_image(overlay_masks(dimmed(image), masks, colours, alpha=0.75), ax=ax, title=title)
    return draw_boxes(ax, prediction["boxes"][keep].float().cpu(), captions, colours, fontsize=10, linewidth=1.5)


HIGHLIGHT_COLOUR = (255, 0, 255)
"""Fill of :func:`highlight`: magenta, a colour no class of the suite's palette and no scene background uses."""


def highlight(image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.6) -> torch.Tensor:
    """A mask bool ``(H, W)`` over an image ``(3, H, W)``: magenta fill, white outline; uint8 ``(3, H, W)``.

    Promptable masks have no class, so they get no class colour: the fill and
    the outline tell the mask apart from any object of any colour under it.
    """
    _check_image(image)
    check_masks("mask", mask, "(H, W)")
    check_same_size("mask", mask, "image", image)
    picture = to_uint8(image).clone()
    mask = mask.cpu()
    fill = torch.tensor(HIGHLIGHT_COLOUR, dtype=torch.float32).view(3, 1, 1)
    blended = ((1 - alpha) * picture.float() + alpha * fill).round().to(torch.uint8)
    picture = torch.where(mask, blended, picture)
    inner = F.max_pool2d((~mask).float()[None, None], 3, stride=1, padding=1)[0, 0] == 0
    return torch.where(mask & ~inner, torch.full_like(picture, 255), picture)


def as_jpeg(fig, quality: int = 85, dpi: float = 100):
    """``fig`` rendered as a JPEG for the notebook, and closed: photo-like figures stay small on disk.

    Noisy scenes compress badly as PNG (a 600-pixel figure of them takes
    300 kB); a JPEG at ``quality`` 85 keeps them sharp at a quarter of that.

    Args:
        fig: a matplotlib figure.
        quality: JPEG quality, 1 to 95.
        dpi: resolution of the rendering.

    Returns:
        An ``IPython.display.Image``: the last expression of a cell displays it.
    """
    import io

    from IPython.display import Image
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an int in [1, 95], got {quality!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg", dpi=dpi, bbox_inches="tight", pil_kwargs={"quality": quality})
    plt.close(fig)
    return Image(data=buffer.getvalue(), format="jpeg")
