import math

import pytest
import torch
from torch import nn

from seglib.metrics import mean_iou
from seglib.metrics.uncertainty import (
    Estimate,
    SceneScores,
    bootstrap_interval,
    bootstrap_intervals,
    difference_estimate,
    metric_estimate,
    scene_scores,
    seed_estimate,
)


class Fixed(nn.Module):
    """Logits that predict ``labels`` except where ``flip`` is set (class 0 there)."""

    def __init__(self, labels, flip):
        super().__init__()
        self.register_buffer("logits", nn.functional.one_hot(torch.where(flip, 0, labels), 3).permute(0, 3, 1, 2)
                             .float())
        self.calls = 0

    def forward(self, images):
        start = self.calls
        self.calls += images.shape[0]
        return self.logits[start:start + images.shape[0]]


def scenes(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(1, 3, (n, 8, 8), generator=g)
    return torch.rand(n, 3, 8, 8, generator=g), labels


def test_seed_estimate_is_a_t_interval():
    est = seed_estimate([0.80, 0.82, 0.84])
    assert est.value == pytest.approx(0.82)
    assert est.high - est.value == pytest.approx(4.3027 * 0.02 / math.sqrt(3), rel=1e-3)
    assert str(est).startswith("0.820 [")


def test_clipped_cuts_the_interval_to_the_possible_range():
    focal = seed_estimate([0.99, 0.97, 0.88])  # a fraction near 1: its t-interval passes 1
    assert focal.high > 1
    cut = focal.clipped(0, 1)
    assert (cut.value, cut.low, cut.high, cut.level) == (focal.value, focal.low, 1.0, focal.level)
    assert seed_estimate([0.01, 0.0, 0.03]).clipped(0, 1).low == 0.0
    with pytest.raises(ValueError, match="low must be below high"):
        focal.clipped(1, 0)


def test_scene_scores_pool_the_confusion_matrix():
    images, labels = scenes()
    flip = torch.zeros_like(labels, dtype=torch.bool)
    flip[:10, :4] = True  # a quarter of the scenes half wrong
    scores = scene_scores(Fixed(labels, flip), images, labels, 3, batch_size=16)
    assert scores.confusion.shape == (40, 3, 3) and scores.boundary_f1.shape == (40,)
    assert scores.metric("miou") == pytest.approx(mean_iou(scores.confusion.sum(0)))
    assert scores.metric("miou") < 1.0


def test_difference_excludes_zero_only_for_a_real_difference():
    images, labels = scenes(60)
    good = scene_scores(Fixed(labels, torch.zeros_like(labels, dtype=torch.bool)), images, labels, 3)
    flip = torch.rand(labels.shape, generator=torch.Generator().manual_seed(1)) < 0.2
    bad = scene_scores(Fixed(labels, flip), images, labels, 3)
    real = difference_estimate(good, bad)
    assert real.value > 0 and real.excludes_zero
    flip2 = torch.rand(labels.shape, generator=torch.Generator().manual_seed(2)) < 0.2
    bad2 = scene_scores(Fixed(labels, flip2), images, labels, 3)
    tie = difference_estimate(bad, bad2)
    assert not tie.excludes_zero and tie.low <= tie.value <= tie.high


def test_metric_estimate_brackets_the_value():
    images, labels = scenes()
    flip = torch.rand(labels.shape, generator=torch.Generator().manual_seed(3)) < 0.3
    est = metric_estimate(scene_scores(Fixed(labels, flip), images, labels, 3), "boundary_f1")
    assert isinstance(est, Estimate) and est.low < est.value < est.high


def test_bootstrap_interval_of_a_constant_is_a_point():
    assert bootstrap_interval(lambda index: 1.0, 5, resamples=20) == (1.0, 1.0)


def test_bootstrap_intervals_share_the_resamples_of_bootstrap_interval():
    values = torch.arange(10.0) ** 2
    together = bootstrap_intervals(lambda index: {"mean": float(values[index].mean()),
                                                  "max": float(values[index].max())}, 10, resamples=50)
    assert together["mean"] == bootstrap_interval(lambda index: float(values[index].mean()), 10, resamples=50)
    assert together["max"] == bootstrap_interval(lambda index: float(values[index].max()), 10, resamples=50)
    assert together["mean"][0] < together["mean"][1]


@pytest.mark.parametrize("call, error, match", [
    (lambda: seed_estimate([0.5]), ValueError, "at least 2"),
    (lambda: seed_estimate([0.5, math.nan]), ValueError, "finite"),
    (lambda: seed_estimate([0.5, 0.6], level=1.5), ValueError, "level"),
    (lambda: bootstrap_interval(3, 5), TypeError, "statistic"),
    (lambda: bootstrap_intervals(3, 5), TypeError, "statistics"),
    (lambda: bootstrap_interval(lambda i: 1.0, 0), ValueError, "n"),
    (lambda: metric_estimate("x"), TypeError, "SceneScores"),
    (lambda: SceneScores(torch.zeros(1, 2, 2, dtype=torch.int64), torch.zeros(1)).metric("pq"), ValueError, "metric"),
    (lambda: difference_estimate(SceneScores(torch.ones(2, 2, 2, dtype=torch.int64), torch.zeros(2)),
                                 SceneScores(torch.ones(3, 2, 2, dtype=torch.int64), torch.zeros(3))),
     ValueError, "same scenes"),
    (lambda: scene_scores("m", *scenes(2), 3), TypeError, "model"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
