import pytest
import torch
from torch import nn
from torch.nn import functional as F

from seglib.data.shapes import SceneConfig
from seglib.train import History, train
from seglib.data.batches import semantic_batches


def tiny_model(num_classes=5):
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, num_classes, 1))


def pixel_accuracy(model, images, labels):
    with torch.no_grad():
        return (model(images).argmax(1) == labels).float().mean().item()


def test_train_learns_and_logs():
    torch.manual_seed(0)
    config = SceneConfig(size=24)
    model = tiny_model()
    held_out = next(semantic_batches(config, 64, seed=99))
    before = pixel_accuracy(model, *held_out)
    history = train(model, semantic_batches(config, 16, seed=0), F.cross_entropy, steps=60, lr=1e-2,
                    evaluate=lambda m: {"acc": pixel_accuracy(m, *held_out)}, eval_every=30,
                    log_every=10, progress=False)
    assert isinstance(history, History)
    assert history.steps == [10, 20, 30, 40, 50, 60] and history.total_steps == 60
    assert [e["step"] for e in history.evals] == [30, 60]
    assert history.loss[-1] < history.loss[0]
    assert history.evals[-1]["acc"] > before + 0.1
    assert not model.training


def test_time_budget_stops():
    model = tiny_model()
    history = train(model, semantic_batches(SceneConfig(size=16), 4), F.cross_entropy, seconds=0.5,
                    progress=False, log_every=5)
    assert 0.5 <= history.total_seconds < 5
    assert history.total_steps >= 1


def test_deterministic_with_steps():
    def run():
        torch.manual_seed(1)
        model = tiny_model()
        train(model, semantic_batches(SceneConfig(size=16), 4, seed=3), F.cross_entropy, steps=5, progress=False)
        return model[0].weight.detach().clone()
    assert torch.equal(run(), run())


@pytest.mark.parametrize("kwargs, match", [
    ({}, "give a budget"),
    ({"steps": 0}, "steps must be a positive int"),
    ({"seconds": -1}, "seconds must be a positive number"),
    ({"steps": 2, "schedule": "linear"}, "schedule"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(tiny_model(), semantic_batches(SceneConfig(size=16), 2), F.cross_entropy, progress=False, **kwargs)


def test_divergence_is_reported():
    def exploding(outputs, targets):
        return outputs.sum() * float("inf")
    with pytest.raises(FloatingPointError, match="loss became"):
        train(tiny_model(), semantic_batches(SceneConfig(size=16), 2), exploding, steps=3, log_every=1,
              progress=False)


def test_seconds_per_step_is_median_of_log_intervals():
    history = History(steps=[10, 20, 30, 40], seconds=[1.0, 2.0, 9.0, 10.0], loss=[1, 1, 1, 1])
    assert history.seconds_per_step == pytest.approx(0.1)  # the slow interval (an evaluation) is skipped
    assert History().seconds_per_step != History().seconds_per_step  # NaN
