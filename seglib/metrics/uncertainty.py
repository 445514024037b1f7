"""How sure is a measurement? Intervals over seeds and over test scenes.

* :func:`seed_estimate`: mean of a metric over training seeds, with a
  Student-t interval (few seeds give a wide one, as they should);
* :func:`scene_scores` (:func:`split_scores` on a split of generated scenes,
  :func:`label_scores` from predicted label maps):
  a model's per-scene confusion matrices and boundary F1 on a test set, the raw
  material of the bootstrap;
* :func:`metric_estimate` and :func:`difference_estimate`: a dataset-level
  metric, or the paired difference of two models on the same scenes, with a
  percentile bootstrap interval over the test scenes;
* :class:`SeedStudy` and :func:`seed_table`: several runs (arms) each trained
  from the same seeds, their means and paired gains over seeds;
* :func:`quarter_gap`: how a per-item score differs between the top and the
  bottom quarter of another quantity, with a bootstrap interval.

A difference between two models is only a difference when its interval
excludes 0; otherwise it is a tie.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch
from torch import nn

from seglib.common import eval_mode
from seglib.data.shapes import SceneConfig, split_scenes
from seglib.metrics.evaluation import _logits_of, _model_device
from seglib.metrics.semantic import _boundary_f1_per_image, _confusion_matrices, mean_iou
from seglib.validation import check_image, check_int, check_label_map

METRICS = ("miou", "boundary_f1")


@dataclass(frozen=True)
class Estimate:
    """A measured value and its interval ``(low, high)`` at ``level`` (e.g. 0.95)."""

    value: float
    low: float
    high: float
    level: float = 0.95

    @property
    def interval(self) -> tuple[float, float]:
        return (self.low, self.high)

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of 0 (a difference, not a tie)."""
        return self.low > 0 or self.high < 0

    def clipped(self, low: float, high: float) -> "Estimate":
        """The estimate with its interval cut to ``[low, high]``, the range the quantity can take.

        A t-interval over a few seeds is symmetric, so for a fraction near 0 or 1 it
        reaches past the possible values (for example 0.948 [0.820, 1.076]).
        """
        if not low < high:
            raise ValueError(f"low must be below high, got low={low!r}, high={high!r}")
        return replace(self, low=min(max(self.low, low), high), high=max(min(self.high, high), low))

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class SceneScores:
    """Per-scene scores of one model: int64 ``confusion (N, C, C)``, float ``boundary_f1 (N,)`` (NaN: undefined)."""

    confusion: torch.Tensor
    boundary_f1: torch.Tensor

    def __len__(self) -> int:
        return self.confusion.shape[0]

    def metric(self, name: str, index: torch.Tensor | None = None) -> float:
        """Dataset-level ``"miou"`` (pooled confusion) or mean ``"boundary_f1"`` over scenes ``index``."""
        if name not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {name!r}")
        index = torch.arange(len(self)) if index is None else index
        if name == "miou":
            return mean_iou(self.confusion[index].sum(dim=0))
        scores = self.boundary_f1[index]
        return float(scores[~torch.isnan(scores)].mean())


def _check_level(level: object) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    return float(level)


def seed_estimate(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean of ``values`` (one per seed, at least 2) with a Student-t interval at ``level``."""
    from scipy.stats import t

    level = _check_level(level)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) < 2:
        raise ValueError(f"values must be a sequence of at least 2 numbers (one per seed), got {values!r}")
    data = torch.as_tensor([float(v) for v in values], dtype=torch.float64)
    if not torch.isfinite(data).all():
        raise ValueError(f"values must be finite, got {data.tolist()}")
    mean, n = float(data.mean()), data.numel()
    half = float(t.ppf(0.5 + level / 2, n - 1)) * float(data.std()) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, level)


def scene_scores(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                 batch_size: int = 64, boundary_tolerance: int = 2, ignore_index: int | None = 255) -> SceneScores:
    """Run ``model`` (logits ``(B, C, H, W)`` or a dict with ``"out"``) over ``images (N, 3, H, W)``.

    Returns the :class:`SceneScores` of the argmax prediction against ``labels (N, H, W)``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_image("images", images, batched=True)
    check_label_map("labels", labels, num_classes, ignore_index, "(N, H, W)", ndim=3)
    if labels.shape[0] != images.shape[0] or labels.shape[1:] != images.shape[2:]:
        raise ValueError(f"labels must have shape {(images.shape[0], *images.shape[2:])} to match images "
                         f"{tuple(images.shape)}, got {tuple(labels.shape)}")
    check_int("batch_size", batch_size, 1)
    device = _model_device(model)
    with eval_mode(model), torch.no_grad():
        predicted = torch.cat([_logits_of(model(images[start:start + batch_size].to(device))).argmax(dim=1).cpu()
                               for start in range(0, images.shape[0], batch_size)])
    return label_scores(predicted, labels, num_classes, boundary_tolerance, ignore_index)


def label_scores(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int, boundary_tolerance: int = 2,
                 ignore_index: int | None = 255) -> SceneScores:
    """The :class:`SceneScores` of predicted label maps ``(N, H, W)`` against ``labels (N, H, W)``."""
    check_label_map("predicted", predicted, num_classes, None, "(N, H, W)", ndim=3)
    check_label_map("labels", labels, num_classes, ignore_index, "(N, H, W)", ndim=3)
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted must have the shape of labels {tuple(labels.shape)}, got {tuple(predicted.shape)}")
    check_int("boundary_tolerance", boundary_tolerance, 0)
    confusion = _confusion_matrices(predicted, labels, num_classes, ignore_index)
    boundary = _boundary_f1_per_image(predicted, labels, num_classes, boundary_tolerance, ignore_index)
    return SceneScores(confusion, boundary)


def split_scores(model: nn.Module, config: SceneConfig, split: str = "test", n: int | None = None) -> SceneScores:
    """:func:`scene_scores` of ``model`` on a fixed split of generated scenes (see :func:`split_scenes`)."""
    scenes = split_scenes(split, config, n)
    return scene_scores(model, scenes.images, scenes.semantic, config.num_classes, batch_size=128)


def bootstrap_interval(statistic: Callable[[torch.Tensor], float], n: int, *, level: float = 0.95,
                       resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(index)`` over ``n`` items resampled with replacement.

    ``statistic`` receives an int64 index tensor ``(n,)`` and returns a float.
    """
    if not callable(statistic):
        raise TypeError(f"statistic must be callable index -> float, got {type(statistic).__name__}")
    return bootstrap_intervals(lambda index: {"value": statistic(index)}, n, level=level, resamples=resamples,
                               seed=seed)["value"]


def bootstrap_intervals(statistics: Callable[[torch.Tensor], dict[str, float]], n: int, *, level: float = 0.95,
                        resamples: int = 1000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """:func:`bootstrap_interval` of several statistics computed together on each resample.

    ``statistics`` receives an int64 index tensor ``(n,)`` and returns ``{name: float}``; each
    name gets its ``(low, high)``, from the same resamples as ``bootstrap_interval`` with this seed.
    """
    if not callable(statistics):
        raise TypeError(f"statistics must be callable index -> dict of floats, got {type(statistics).__name__}")
    check_int("n", n, 1)
    check_int("resamples", resamples, 10)
    level = _check_level(level)
    generator = torch.Generator().manual_seed(seed)
    draws = [statistics(torch.randint(n, (n,), generator=generator)) for _ in range(resamples)]
    tail = (1 - level) / 2
    probabilities = torch.tensor([tail, 1 - tail], dtype=torch.float64)
    return {key: tuple(torch.quantile(torch.tensor([d[key] for d in draws]).double(), probabilities).tolist())
            for key in draws[0]}


def _check_scores(name: str, value: object) -> SceneScores:
    if not isinstance(value, SceneScores):
        raise TypeError(f"{name} must be SceneScores (from scene_scores), got {type(value).__name__}")
    return value


def metric_estimate(scores: SceneScores, metric: str = "miou", level: float = 0.95, resamples: int = 1000,
                    seed: int = 0) -> Estimate:
    """``metric`` (``"miou"`` or ``"boundary_f1"``) of ``scores`` with a bootstrap interval over scenes."""
    scores = _check_scores("scores", scores)
    value = scores.metric(metric)
    low, high = bootstrap_interval(lambda index: scores.metric(metric, index), len(scores), level=level,
                                   resamples=resamples, seed=seed)
    return Estimate(value, min(low, value), max(high, value), level)


def difference_estimate(a: SceneScores, b: SceneScores, metric: str = "miou", level: float = 0.95,
                        resamples: int = 1000, seed: int = 0) -> Estimate:
    """``metric(a) - metric(b)`` on the same scenes, with a paired bootstrap interval over scenes."""
    a, b = _check_scores("a", a), _check_scores("b", b)
    if a.confusion.shape != b.confusion.shape:
        raise ValueError(f"a and b must score the same scenes and classes, got {tuple(a.confusion.shape)} "
                         f"and {tuple(b.confusion.shape)}")
    value = a.metric(metric) - b.metric(metric)
    low, high = bootstrap_interval(lambda index: a.metric(metric, index) - b.metric(metric, index), len(a),
                                   level=level, resamples=resamples, seed=seed)
    return Estimate(value, min(low, value), max(high, value), level)


@dataclass(frozen=True)
class SeedStudy:
    """Scores of several arms (losses, architectures ...), each trained from the same seeds.

    Attributes:
        scores: arm name -> one dict of metrics per seed, the seeds in the same order for every arm.
        baseline: the arm :meth:`gain` compares with by default.
    """

    scores: dict[str, list[dict[str, float]]]
    baseline: str | None = None

    def values(self, key: str) -> dict[str, list[float]]:
        """Arm name -> the value of ``key`` in every seed."""
        return {name: [seed[key] for seed in seeds] for name, seeds in self.scores.items()}

    def _arm(self, what: str, name: str) -> str:
        if name not in self.scores:
            raise ValueError(f"{what} must be one of {tuple(self.scores)}, got {name!r}")
        return name

    def estimate(self, name: str, key: str, level: float = 0.95) -> Estimate:
        """Mean of ``key`` over the seeds of arm ``name``, with a Student-t interval."""
        return seed_estimate(self.values(key)[self._arm("name", name)], level)

    def gain(self, name: str, key: str, baseline: str | None = None, level: float = 0.95) -> Estimate:
        """``key`` of arm ``name`` minus that of ``baseline`` (default: the study's), paired by seed."""
        values = self.values(key)
        pairs = zip(values[self._arm("name", name)], values[self._arm("baseline", baseline or self.baseline)])
        return seed_estimate([a - b for a, b in pairs], level)


def seed_table(study: SeedStudy, columns: dict[str, str], titles: dict[str, str] | None = None,
               first: str = "run", digits: int = 3) -> str:
    """A Markdown table of ``study``: a row per arm, per column ``mean [low, high]`` over the seeds.

    Args:
        study: the :class:`SeedStudy`.
        columns: key of the scores -> column header.
        titles: arm name -> the row's title (default: the name).
        first: header of the first column.
        digits: decimals of every number.
    """
    from seglib.common import markdown_table

    if not isinstance(study, SeedStudy):
        raise TypeError(f"study must be a SeedStudy, got {type(study).__name__}")
    if not columns:
        raise ValueError("columns must map at least one key of the scores to a header")
    titles = titles or {}
    cells = []
    for name in study.scores:
        row = [titles.get(name, name)]
        for key in columns:
            e = study.estimate(name, key)
            row.append(f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]")
        cells.append(row)
    return markdown_table([first, *columns.values()], cells)


def quarter_gap(x: torch.Tensor, y: torch.Tensor, resamples: int = 1000, level: float = 0.95) -> Estimate:
    """Mean ``y`` of the quarter of items with the highest ``x`` minus that of the lowest quarter.

    The interval is a percentile bootstrap over the items (quartiles recomputed in every resample).

    Args:
        x: float ``(N,)``, e.g. each scene's contrast.
        y: float ``(N,)``, e.g. each scene's Dice.
    """
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dim() != 1:
            got = (value.dtype, tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__
            raise TypeError(f"{name} must be a float tensor (N,), got {got}")
    if x.shape != y.shape or x.numel() < 8:
        raise ValueError(f"x and y must have the same shape (N,) with N >= 8, got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.double(), y.double()

    def gap(index: torch.Tensor) -> float:
        xs, ys = x[index], y[index]
        low, high = torch.quantile(xs, torch.tensor([0.25, 0.75], dtype=torch.float64))
        return float(ys[xs >= high].mean() - ys[xs <= low].mean())

    value = gap(torch.arange(x.numel()))
    low, high = bootstrap_interval(gap, x.numel(), level=level, resamples=resamples)
    return Estimate(value, min(low, value), max(high, value), level)
