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
    ({"seconds": float("inf")}, "seconds must be a positive number"),
    ({"steps": 2, "schedule": "linear"}, "schedule"),
    ({"steps": 2, "lr": 0}, r"lr must be a number > 0, got 0"),
    ({"steps": 2, "lr": float("nan")}, r"lr must be a number > 0, got nan"),
    ({"steps": 2, "weight_decay": -0.1}, r"weight_decay must be a number >= 0, got -0.1"),
    ({"steps": 2, "warmup_steps": -1}, r"warmup_steps must be an int >= 0, got -1"),
    ({"steps": 2, "eval_every": 0}, r"eval_every must be a positive int, got 0"),
    ({"steps": 2, "log_every": 0}, r"log_every must be a positive int, got 0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(tiny_model(), semantic_batches(SceneConfig(size=16), 2), F.cross_entropy, progress=False, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 2.5}, r"steps must be an int, got float 2.5"),
    ({"steps": True}, r"steps must be an int"),
    ({"seconds": "5"}, r"seconds must be a positive number or None, got str '5'"),
    ({"steps": 2, "lr": "1e-3"}, r"lr must be a number > 0, got str"),
    ({"steps": 2, "log_every": None}, r"log_every must be an int, got NoneType"),
    ({"steps": 2, "eval_every": 2.0}, r"eval_every must be an int, got float"),
    ({"steps": 2, "grad_clip": "1"}, r"grad_clip must be a number > 0 or None, got str '1'"),
    ({"steps": 2, "optimizer": "adam"}, r"optimizer must be a torch.optim.Optimizer or None, got str"),
    ({"steps": 2, "evaluate": {"acc": 1}}, r"evaluate must be callable or None, got dict"),
])
def test_bad_argument_types(kwargs, match):
    with pytest.raises(TypeError, match=match):
        train(tiny_model(), semantic_batches(SceneConfig(size=16), 2), F.cross_entropy, progress=False, **kwargs)


@pytest.mark.parametrize("grad_clip", [-1, 0, float("nan"), -0.5])
def test_grad_clip_must_be_positive(grad_clip):
    model = tiny_model()
    before = model[0].weight.detach().clone()
    with pytest.raises(ValueError, match=rf"grad_clip must be a number > 0 or None, got {grad_clip}"):
        train(model, semantic_batches(SceneConfig(size=16), 2), F.cross_entropy, steps=2, grad_clip=grad_clip,
              progress=False)
    assert torch.equal(model[0].weight, before)  # refused before any step


def test_grad_clip_none_and_positive_train():
    for grad_clip in (None, 0.5):
        history = train(tiny_model(), semantic_batches(SceneConfig(size=16), 2), F.cross_entropy, steps=2,
                        grad_clip=grad_clip, log_every=1, progress=False)
        assert history.total_steps == 2


def _fixed_batches(count, size=8):
    generator = torch.Generator().manual_seed(0)
    return [(torch.rand(2, 3, size, size, generator=generator),
             torch.randint(0, 5, (2, size, size), generator=generator)) for _ in range(count)]


def _recording_forward(seen):
    def forward(model, inputs):
        seen.append(inputs)
        return model(inputs)
    return forward


def test_a_list_of_batches_is_cycled():
    batches, seen = _fixed_batches(3), []
    history = train(tiny_model(), batches, F.cross_entropy, steps=7, log_every=1, progress=False,
                    forward=_recording_forward(seen))
    assert history.total_steps == 7
    assert all(torch.equal(got, batches[i % 3][0]) for i, got in enumerate(seen))


def test_a_dataloader_is_cycled_pass_after_pass():
    from torch.utils.data import DataLoader, TensorDataset

    images, labels = torch.rand(4, 3, 8, 8), torch.randint(0, 5, (4, 8, 8))
    loader = DataLoader(TensorDataset(images, labels), batch_size=2, shuffle=True)
    seen = []
    history = train(tiny_model(), loader, F.cross_entropy, steps=5, log_every=1, progress=False,
                    forward=_recording_forward(seen))
    assert history.total_steps == 5 and len(seen) == 5  # 2 batches per pass: 3 passes
    assert all(batch.shape == (2, 3, 8, 8) for batch in seen)


def test_a_one_shot_iterator_that_runs_out_says_how_far_it_got():
    with pytest.raises(ValueError, match=r"ran out after giving 3 batch\(es\), but 10 steps were asked"):
        train(tiny_model(), (batch for batch in _fixed_batches(3)), F.cross_entropy, steps=10, progress=False)
    with pytest.raises(ValueError, match=r"ran out after giving 2 batch\(es\), but the seconds=30 budget"):
        train(tiny_model(), iter(_fixed_batches(2)), F.cross_entropy, seconds=30, progress=False)
    history = train(tiny_model(), iter(_fixed_batches(3)), F.cross_entropy, steps=3, progress=False)
    assert history.total_steps == 3  # exactly enough is fine


def test_empty_or_non_iterable_batches():
    with pytest.raises(ValueError, match="batches is empty: its first pass over the list gave no batch"):
        train(tiny_model(), [], F.cross_entropy, steps=2, progress=False)
    with pytest.raises(TypeError, match="batches must be an iterable of \\(inputs, targets\\) pairs"):
        train(tiny_model(), 3, F.cross_entropy, steps=2, progress=False)
    with pytest.raises(ValueError, match="batches must yield \\(inputs, targets\\) pairs, got a tuple of length 3"):
        train(tiny_model(), [(1, 2, 3)], F.cross_entropy, steps=2, progress=False)


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
