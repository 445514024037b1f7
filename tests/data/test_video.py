"""Generated video clips: identities, occlusion, determinism."""

import pytest
import torch

from seglib.data import SceneConfig
from seglib.data.video import VideoClip, generate_clip, generate_clips


def test_clip_shapes_and_identity():
    clip = generate_clip(12, seed=1)
    t, n = len(clip), clip.num_objects
    assert isinstance(clip, VideoClip) and t == 12 and n >= 2
    assert clip.frames.shape == (t, 3, 64, 64) and clip.frames.dtype == torch.float32
    assert clip.masks.shape == (t, n, 64, 64) and clip.masks.dtype == torch.bool
    assert clip.boxes.shape == (t, n, 4)
    assert 0 <= clip.frames.min() and clip.frames.max() <= 1
    assert (clip.masks.sum(dim=1) <= 1).all(), "visible masks never overlap"
    assert clip.present.shape == (t, n)


def test_things_move_and_the_bottom_one_is_hidden_for_a_while():
    hidden = 0
    for clip in generate_clips(4, 20, seed=0):
        centre = clip.boxes[..., :2] + clip.boxes[..., 2:]
        assert (centre[1:, -1] - centre[:-1, -1]).abs().sum() > 0, "the top thing moves"
        area = clip.masks[:, 0].flatten(1).sum(dim=1)
        assert area[len(clip) // 2] < area.max(), "the top thing covers the bottom one mid-clip"
        hidden += int((~clip.present[:, 0]).any())
    assert hidden >= 1


def test_the_bottom_thing_starts_at_least_half_visible():
    # Seed 11 once drew a clip whose bottom thing was completely hidden on frame 0.
    for clip in generate_clips(40, 20, seed=0):
        visible = int(clip.masks[0, 0].sum())
        assert visible > 0 and clip.present[0, 0]
        assert visible >= 60, f"only {visible} pixels of the bottom thing show on frame 0"


def test_clips_are_deterministic_and_validated():
    a, b = generate_clip(6, seed=3), generate_clip(6, seed=3)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.frames, generate_clip(6, seed=4).frames)
    plain = generate_clip(4, SceneConfig(size=32, max_objects=1), seed=0, occlude=False)
    assert plain.frames.shape[-1] == 32 and plain.num_objects == 1
    with pytest.raises(ValueError, match="num_frames"):
        generate_clip(1)
    with pytest.raises(ValueError, match="occlude needs at least 2"):
        generate_clip(4, SceneConfig(max_objects=1))
    with pytest.raises(ValueError, match="speed"):
        generate_clip(4, speed=(3, 1))
    with pytest.raises(ValueError, match="n must be"):
        generate_clips(0)
