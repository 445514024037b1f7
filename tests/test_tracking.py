"""SAM 2's memory on generated clips: the model, its training step, the trackers and their scores."""

import math

import pytest
import torch

from seglib.data.video import clip_batches, generate_clips
from seglib.metrics.video import hidden_auc, hidden_auc_estimate, visibility_counts
from seglib.models.promptable.memory import HIDDEN_LOGIT, MemoryBank, build_video_sam
from seglib.tracking import (
    METHODS, correct_once, correction_gains, encode_frames, pooled, track_memory, track_prompts, unroll, video_counts,
    video_loss, video_table,
)

SAM = dict(image_size=32, embed_dim=16, widths=(8, 8, 16), encoder_depth=1, decoder_depth=1, mlp_dim=16)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_video_sam(SAM, layers=1, mlp_dim=16).eval()


@pytest.fixture(scope="module")
def clips():
    from seglib.data import SceneConfig

    return generate_clips(3, num_frames=6, config=SceneConfig(size=32, min_objects=2, max_objects=3), seed=0)


def _stack(clips):
    return torch.stack([c.frames for c in clips]), torch.stack([c.masks[:, 0] for c in clips])


def test_memory_attention_starts_as_the_identity(model):
    frames = torch.rand(2, 3, 32, 32)
    features = model.encode(frames)
    bank = MemoryBank(capacity=2)
    with torch.no_grad():
        first = model.step(features, bank, torch.full((2, 1, 2), 10.5), torch.ones(2, 1, dtype=torch.int64))
        bank.add(first, prompted=True)
        conditioned = model.condition(features.embedding, bank)
    assert torch.allclose(conditioned, features.embedding)  # zero-initialised residual layers
    assert first.mask_logits.shape == (2, 32, 32) and first.object_score.shape == (2,)
    assert first.memory.shape == (2, 16, 8, 8) and first.pointer.shape == (2, 16)


def test_bank_keeps_prompted_frames_and_the_most_recent(model):
    features = model.encode(torch.rand(1, 3, 32, 32))
    bank = MemoryBank(capacity=2)
    with torch.no_grad():
        out = model.step(features, bank, torch.full((1, 1, 2), 5.5), torch.ones(1, 1, dtype=torch.int64))
    bank.add(out, prompted=True)
    for _ in range(4):
        bank.add(out, prompted=False)
    assert len(bank.prompted) == 1 and len(bank.recent) == 2
    assert [age for *_, age in bank.prompted] == [4] and [age for *_, age in bank.recent] == [1, 0]
    assert len(MemoryBank(capacity=0).recent) == 0


def test_a_frame_called_hidden_gets_an_empty_mask(model):
    features = model.encode(torch.rand(1, 3, 32, 32))
    head = model.object_head.layers[-1]
    with torch.no_grad():
        saved = head.bias.clone()
        head.bias.fill_(-100.0)
        out = model.step(features, MemoryBank())
        head.bias.copy_(saved)
    assert bool((out.object_score < 0).all())
    assert bool((out.mask_logits == HIDDEN_LOGIT).all()) and not bool((out.raw_logits == HIDDEN_LOGIT).all())


def test_training_step_reaches_the_new_parts_and_spares_the_frozen_encoder():
    torch.manual_seed(0)
    model = build_video_sam(SAM, layers=1, mlp_dim=16)
    model.sam.image_encoder.requires_grad_(False)
    from seglib.data import SceneConfig

    batch, targets = next(clip_batches(2, num_frames=4, config=SceneConfig(size=32, min_objects=2, max_objects=2),
                                       correction_rate=1.0))
    assert batch.frames.shape == (2, 4, 3, 32, 32) and 1 <= batch.correction_frame < 4
    outputs = unroll(model, batch)
    assert outputs.logits.shape == (2, 4, 32, 32) and outputs.object_scores.shape == (2, 4)
    loss = video_loss(outputs, targets)
    loss.backward()
    assert model.object_head.layers[0].weight.grad is not None
    assert model.attention[0].cross_attn.out_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.sam.image_encoder.parameters())


def test_visibility_counts_by_hand():
    shows = [1, 1, 0, 0, 1, 1, 1, 1]                  # hidden on frames 2-3, back on 4
    targets = torch.zeros(1, 8, 4, 4, dtype=torch.bool)
    for t, s in enumerate(shows):
        targets[0, t, 0, 0] = bool(s)
    masks = targets.clone()
    masks[0, 5] = False                                # a miss on a visible frame
    called = torch.tensor([[1, 1, 0, 1, 1, 0, 1, 1]], dtype=torch.bool)
    counts = visibility_counts(masks, called, targets)
    assert counts["visible_frames"].item() == 5 and counts["j_sum"].item() == 4   # frame 0 left out
    assert counts["hidden_frames"].item() == 2 and counts["hidden_right"].item() == 1
    assert counts["false_hidden"].item() == 1                 # frame 5 shows but is called hidden
    assert counts["reappear_frames"].item() == 3 and counts["reappear_right"].item() == 2
    scores = pooled(counts)
    assert scores["j_visible"] == pytest.approx(0.8) and scores["hidden_accuracy"] == pytest.approx(0.5)
    assert scores["false_hidden"] == pytest.approx(0.2) and scores["hidden_gap"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="reappear"):
        visibility_counts(masks, called, targets, reappear=0)


def test_hidden_auc_by_hand():
    targets = torch.zeros(2, 4, 2, 2, dtype=torch.bool)
    targets[:, :, 0, 0] = True
    targets[0, 2] = targets[1, 3] = False              # one hidden frame per clip
    scores = torch.tensor([[-9.0, 1.0, -1.0, 2.0], [-9.0, 3.0, 2.0, 2.0]])   # frame 0 left out
    # hidden -1 and 2 against visible 1, 2, 3, 2: 4 + (0 + 0.5 + 1 + 0.5) wins of 8
    assert hidden_auc(scores, targets) == pytest.approx(6 / 8)
    assert hidden_auc(-scores, targets) == pytest.approx(2 / 8)
    assert hidden_auc(torch.zeros(2, 4), targets) == pytest.approx(0.5)
    assert math.isnan(hidden_auc(scores, torch.ones_like(targets)))          # nothing hidden
    estimate = hidden_auc_estimate(scores, targets, resamples=50)
    assert estimate.value == pytest.approx(6 / 8) and estimate.low <= estimate.value <= estimate.high
    with pytest.raises(ValueError, match=r"scores must be a float tensor \(B, T\) = \(2, 4\), got \(4,\)"):
        hidden_auc(scores[0], targets)


def test_trackers_on_clips(model, clips):
    from seglib.models.promptable import build_small_sam

    torch.manual_seed(0)
    sam = build_small_sam(**SAM).eval()
    frames, targets = _stack(clips)
    memory = track_memory(model, frames, targets[:, 0])
    assert memory.masks.shape == targets.shape and memory.visible.shape == targets.shape[:2]
    assert torch.equal(memory.visible, memory.scores > 0)          # the head's call is its score's sign
    tracks = {"memory": memory}
    for method in METHODS[1:]:
        tracks[method] = track_prompts(sam, frames, targets, method)
        assert torch.equal(tracks[method].visible, tracks[method].masks.flatten(2).any(dim=2))
        assert tracks[method].scores is None                         # no occlusion head
    table = video_table(video_counts(tracks, clips), resamples=20)
    assert set(table) == {*METHODS, "memory - first_frame", "memory - every_frame"}
    estimate = table["memory"]["j_visible"]
    assert estimate.low <= estimate.value <= estimate.high


def test_frames_encoded_once_give_the_same_tracks(model, clips):
    frames, targets = _stack(clips)
    features = encode_frames(model, clips)
    assert len(features) == frames.shape[1] and features[0].embedding.shape[0] == len(clips)
    again = track_memory(model, frames, targets[:, 0], features=features)
    assert torch.equal(again.masks, track_memory(model, frames, targets[:, 0]).masks)
    with pytest.raises(ValueError, match="features must hold 6 frames of 3 clips"):
        track_memory(model, frames, targets[:, 0], features=features[:5])
    with pytest.raises(ValueError, match="features must hold"):
        track_prompts(model.sam, frames, targets, "first_frame", [f.take(slice(0, 2)) for f in features])


def test_every_frame_keeps_the_last_click_where_the_object_is_hidden(clips):
    from seglib.data.prompts import center_clicks
    from seglib.models.promptable import build_small_sam

    torch.manual_seed(0)
    sam = build_small_sam(**SAM).eval()
    frames, targets = _stack(clips[:1])
    targets = targets.clone()
    targets[0, 3:] = False                             # hidden from frame 3 on: the user sees nothing to click
    last = max(t for t in range(3) if bool(targets[0, t].any()))
    track = track_prompts(sam, frames, targets, "every_frame")
    with torch.no_grad():
        logits, iou = sam.decode(sam.encode(frames[:, 4]), center_clicks(targets[:, last])[:, None],
                                 torch.ones(1, 1, dtype=torch.int64))
    assert torch.equal(track.masks[0, 4], logits[0, iou[0].argmax()] > 0)   # the last click, answered on frame 4


def test_a_correction_click_joins_the_prompted_memories(model, clips):
    frames, targets = _stack(clips)
    before = track_memory(model, frames, targets[:, 0])
    fixed = correct_once(model, clips, before)
    clicked = fixed.frame >= 0
    assert bool((fixed.frame[clicked] >= 1).all())
    rows = clicked.nonzero().flatten()
    assert bool(targets[rows, fixed.frame[rows]].flatten(1).any(dim=1).all())   # only visible frames are clicked
    for clip in range(len(clips)):                     # frames before the click are untouched
        t = int(fixed.frame[clip]) if clicked[clip] else len(clips[0])
        assert torch.equal(fixed.track.masks[clip, :t], before.masks[clip, :t])
    gains = correction_gains(before, fixed, clips)
    assert len(gains["gain"]) == int(clicked.sum())


def test_the_control_click_is_seeded_and_on_the_same_frames(model, clips):
    frames, targets = _stack(clips)
    before = track_memory(model, frames, targets[:, 0])
    placed = correct_once(model, clips, before)
    control = correct_once(model, clips, before, placement="random", seed=3)
    assert torch.equal(control.frame, placed.frame) and torch.equal(control.label, placed.label)  # another place
    rows = (control.frame >= 0).nonzero().flatten()
    again = correct_once(model, clips, before, placement="random", seed=3)
    assert torch.equal(again.label, control.label) and torch.equal(again.track.masks, control.track.masks)
    with pytest.raises(ValueError, match="placement"):
        correct_once(model, clips, before, placement="centre")
    with pytest.raises(ValueError, match="before must be the memory's Track"):
        correct_once(model, clips, before._replace(scores=None))
    assert torch.equal(control.track.visible, control.track.scores > 0)   # the corrected clips are scored again
    assert len(rows) > 0 and bool((control.label[rows] >= 0).all())


def test_trackers_validate(model):
    frames = torch.rand(2, 3, 3, 32, 32)
    good = torch.zeros(2, 32, 32, dtype=torch.bool)
    good[:, 4:9, 4:9] = True
    with pytest.raises(ValueError, match="first_masks must not be empty"):
        track_memory(model, frames, torch.zeros_like(good))
    with pytest.raises(ValueError, match="frames"):
        track_memory(model, frames[0], good)
    with pytest.raises(ValueError, match="method"):
        track_prompts(model.sam, frames, good[:, None].expand(-1, 3, -1, -1), "memory")


def test_correction_estimates_average_over_the_clicked_clips():
    from seglib.tracking import correction_estimates

    gains = {"clicked_gain": torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64),
             "gain": torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)}
    change = correction_estimates(gains, resamples=200)
    assert change["clicked"].value == pytest.approx(0.4) and 0.2 <= change["clicked"].low <= 0.4 <= change["clicked"].high
    assert change["later"].value == 0.0 and change["later"].low == change["later"].high == 0.0
    control = {"clicked_gain": torch.tensor([0.2, 0.1, 0.6], dtype=torch.float64), "gain": gains["gain"]}
    paired = correction_estimates(gains, control, resamples=200)
    assert paired["control_clicked"].value == pytest.approx(0.3)
    assert paired["over_control"].value == pytest.approx(0.1) and paired["over_control"].low == pytest.approx(0.0)
    with pytest.raises(ValueError, match="same clips"):
        correction_estimates(gains, {"clicked_gain": gains["clicked_gain"][:2], "gain": gains["gain"][:2]})
