"""Simulated prompt batches, the loss with the best-of-three rule, the evaluation protocol."""

import pytest
import torch

from seglib.common import eval_mode
from seglib.data import SceneConfig
from seglib.data.shapes import scene_stream, split_scenes
from seglib.models.promptable import build_small_sam
from seglib.labs.sam import (
    PromptOutputs,
    evaluate,
    mask_losses,
    prompt_tasks,
    promptable_loss,
    simulate_prompts,
    train,
)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_small_sam(embed_dim=32, widths=(8, 8, 16), encoder_depth=1, mlp_dim=32)


def test_prompt_tasks_rows_and_targets():
    task, targets = next(prompt_tasks(10, seed=1))
    assert task.images.shape == (10, 3, 64, 64) and targets.shape == (10, 64, 64) and targets.dtype == torch.bool
    assert (task.num_clicks, task.num_boxes) == (4, 3) and task.corrections in (1, 2)
    clicked = targets[torch.arange(10), task.clicks[:, 1].long(), task.clicks[:, 0].long()]
    assert clicked[task.num_clicks:].all(), "box and correction rows click inside their target"
    assert (task.boxes[:, 2:] > task.boxes[:, :2]).all()
    again, _ = next(prompt_tasks(10, seed=1))
    assert torch.equal(again.clicks, task.clicks), "seeded"
    with pytest.raises(ValueError, match="batch_size"):
        next(prompt_tasks(2))
    with pytest.raises(ValueError, match="click_fraction"):
        next(prompt_tasks(8, click_fraction=0.8, box_fraction=0.5))
    with pytest.raises(ValueError, match="min_objects"):
        next(prompt_tasks(8, SceneConfig(min_objects=0)))


def test_several_prompts_per_image_share_its_encoding(tiny):
    task, targets = next(prompt_tasks(12, seed=4, prompts_per_image=3, nest_fraction=0.0))
    assert task.images.shape == (4, 3, 64, 64) and task.image_of.tolist() == [0, 1, 2, 3] * 3
    again, _ = next(prompt_tasks(12, seed=4, prompts_per_image=1, nest_fraction=0.0))
    assert again.images.shape[0] == 12
    scenes = next(scene_stream(4, SceneConfig(min_objects=1), seed=4))
    assert torch.equal(scenes.images, task.images)
    for n in range(4):                         # the rows of one image ask for different objects where it has them
        masks = targets[task.image_of == n].flatten(1)
        distinct = len({tuple(m.nonzero().flatten().tolist()) for m in masks})
        assert distinct == min(3, int(scenes.valid[n].sum()))
    with eval_mode(tiny), torch.no_grad():    # row 0 (a click on image 0) as if decoded alone
        outputs = simulate_prompts(tiny, task)
        alone = tiny.decode_all(tiny.encode(task.images[:1]), task.clicks[:1, None], torch.ones(1, 1, dtype=torch.int64))
    assert outputs.masks.shape == (12, 4, 64, 64)
    assert torch.allclose(alone[0][0], outputs.masks[0], atol=1e-4)
    with pytest.raises(ValueError, match="prompts_per_image must be a positive int that divides batch_size"):
        next(prompt_tasks(10, prompts_per_image=3))


def test_ambiguous_clicks_sometimes_ask_for_the_whole():
    stream = prompt_tasks(64, seed=3, click_fraction=0.5, box_fraction=0.25, nest_fraction=1.0)
    task, targets = next(stream)
    clicked = targets[torch.arange(64), task.clicks[:, 1].long(), task.clicks[:, 0].long()]
    assert clicked.all(), "the click always lies in its target"
    assert task.asks_whole.any() and not task.asks_whole[task.num_clicks:].any()


def test_simulate_prompts_and_loss(tiny):
    task, targets = next(prompt_tasks(9, seed=2))
    outputs = simulate_prompts(tiny, task)
    assert isinstance(outputs, PromptOutputs)
    assert outputs.masks.shape == (9, 4, 64, 64) and outputs.iou.shape == (9, 4)
    assert outputs.multimask.tolist() == [True] * task.num_clicks + [False] * (9 - task.num_clicks)
    loss = promptable_loss(outputs, targets)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert tiny.image_encoder.stage0[0][0].weight.grad is not None
    tiny.zero_grad()


def test_mask_losses_per_candidate():
    target = torch.zeros(1, 8, 8, dtype=torch.bool)
    target[0, 2:6, 2:6] = True
    logits = torch.stack([target[0].float() * 20 - 10, -10 * torch.ones(8, 8)])[None]
    losses = mask_losses(logits, target)
    assert losses.shape == (1, 2) and losses[0, 0] < 0.01 < losses[0, 1]
    with pytest.raises(ValueError, match="logits must (be|have)"):
        mask_losses(logits[0], target)


def test_evaluation_protocol_is_deterministic(tiny):
    scenes = split_scenes("test", SceneConfig(min_objects=1), n=6)
    first = evaluate(tiny, scenes, clicks=2)
    assert set(first) == {"click1_miou", "click2_miou", "box_miou", "objects"}
    assert first["objects"] == float(scenes.valid.sum())
    assert all(0 <= first[k] <= 1 for k in ("click1_miou", "click2_miou", "box_miou"))
    assert evaluate(tiny, scenes, clicks=2) == first
    with pytest.raises(ValueError, match="clicks"):
        evaluate(tiny, scenes, clicks=0)


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    model = build_small_sam(embed_dim=32, widths=(8, 8, 16), encoder_depth=1, mlp_dim=32)
    history = train(model, steps=12, batch_size=6, progress=False)
    assert history.total_steps == 12 and history.loss[-1] < history.loss[0]


def test_click_scores_agree_with_the_simulated_user(tiny):
    from seglib.labs.sam import click_curve, click_ious, simulate_user
    from seglib.predictor import SmallSamPredictor

    scenes = split_scenes("test", SceneConfig(min_objects=1), n=4)
    scores = click_ious(tiny, scenes, clicks=3)
    assert scores.clicks.shape == (int(scenes.valid.sum()), 3) and scores.box.shape == (int(scenes.valid.sum()),)
    means = evaluate(tiny, scenes, clicks=3)
    assert means["click2_miou"] == round(float(scores.clicks[:, 1].mean()), 4)
    predictor = SmallSamPredictor(tiny)
    rows, slots = scenes.valid.nonzero(as_tuple=True)
    rounds = simulate_user(predictor, scenes.images[rows[0]], scenes.masks[rows[0], slots[0]], clicks=3)
    assert [r["iou"] for r in rounds] == pytest.approx(scores.clicks[0].tolist(), abs=1e-5)  # one protocol
    curve = click_curve(scores, resamples=20)
    assert len(curve["mean"]) == 3 and len(curve["gain"]) == 2
    assert curve["gain"][0].value == pytest.approx(float((scores.clicks[:, 1] - scores.clicks[:, 0]).mean()))


def test_box_fill_refinement_and_box_with_a_negative_click(tiny):
    from seglib.data.prompts import nest_spots
    from seglib.labs.sam import box_fill, box_negative_ious, refinement_ious

    scenes = split_scenes("test", SceneConfig(min_objects=1), n=4)
    fill = box_fill(scenes)
    assert fill.shape == (int(scenes.valid.sum()),) and bool(((fill > 0) & (fill <= 1)).all())
    refined = refinement_ious(tiny, scenes, rounds=2)
    assert refined.shape == (len(fill), 3)
    nested, whole_of = nest_spots(scenes, fraction=1.0, generator=torch.Generator().manual_seed(0))
    pairs = box_negative_ious(tiny, nested, whole_of)
    assert pairs.shape == (int((whole_of >= 0).sum()), 2) and bool(((pairs >= 0) & (pairs <= 1)).all())
