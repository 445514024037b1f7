"""SAM 2's idea on generated clips: the memory read-out and the three tracking methods."""

import pytest
import torch
import torch.nn.functional as F

from seglib.data.video import generate_clip
from seglib.tracking import MaskMemory, track
from seglib.metrics.video import j_scores
from seglib.predictor import Prediction


def test_readout_copies_the_mask_of_matching_cells():
    embedding = torch.zeros(4, 3, 3)
    embedding[0] = 1.0
    embedding[1, 1, 1], embedding[0, 1, 1] = 1.0, 0.0  # one cell looks different: the object
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[1, 1] = True
    memory = MaskMemory(capacity=2)
    memory.add(embedding, mask, prompted=True)
    moved = torch.zeros(4, 3, 3)
    moved[0] = 1.0
    moved[1, 0, 2], moved[0, 0, 2] = 1.0, 0.0  # the object moved to another cell
    readout = memory.read(moved)
    assert readout.shape == (3, 3)
    assert readout[0, 2] > 0.99 and readout[1, 1] < 0.01


def test_memory_keeps_prompted_frames_and_the_recent_ones():
    memory = MaskMemory(capacity=2)
    frame = torch.randn(4, 2, 2)
    memory.add(frame, torch.ones(4, 4, dtype=torch.bool), prompted=True)
    for _ in range(5):
        memory.add(frame, torch.zeros(4, 4, dtype=torch.bool))
    assert len(memory) == 3 and len(memory.prompted) == 1
    with pytest.raises(RuntimeError, match="empty"):
        MaskMemory().read(frame)
    with pytest.raises(ValueError, match="capacity"):
        MaskMemory(capacity=-1)
    with pytest.raises(ValueError, match=r"\(D,h,w\)"):
        memory.add(torch.randn(4, 4), torch.ones(4, 4, dtype=torch.bool))


class OraclePredictor:
    """Knows the clip: an embedding from the frame's colours, masks of the object under a click."""

    def __init__(self, clip):
        self.clip, self.t = clip, -1

    def set_image(self, frame):
        self.t += 1
        self.frame = frame

    def memory_features(self):
        pooled = F.avg_pool2d(self.frame[None], 4)[0]
        return pooled - pooled.mean(dim=(1, 2), keepdim=True)

    def predict(self, point_coords, point_labels, multimask_output=True):
        x, y = (int(v) for v in point_coords[0])
        masks = self.clip.masks[self.t]
        hit = masks[:, y, x]
        own = masks[int(hit.nonzero()[0])] if hit.any() else torch.zeros_like(masks[0])
        candidates = torch.stack([own, torch.zeros_like(own), torch.ones_like(own)])
        return Prediction(candidates, torch.tensor([0.9, 0.1, 0.2]), candidates.float())


def test_memory_beats_the_first_click_and_reprompting_is_exact():
    clip = generate_clip(16, seed=1)
    targets = clip.masks[:, 0]
    scores = {}
    for method in ("memory", "first_frame", "every_frame"):
        result = track(OraclePredictor(clip), clip.frames, targets[0], method, targets=targets)
        assert result.masks.shape == targets.shape
        scores[method] = j_scores(result.masks, targets).mean().item()
    assert scores["every_frame"] == pytest.approx(1.0)
    assert scores["memory"] > scores["first_frame"]


def test_track_validates():
    clip = generate_clip(4, seed=0)
    with pytest.raises(ValueError, match="method"):
        track(OraclePredictor(clip), clip.frames, clip.masks[0, 0], method="magic")
    with pytest.raises(ValueError, match="empty"):
        track(OraclePredictor(clip), clip.frames, torch.zeros(64, 64, dtype=torch.bool))
    with pytest.raises(ValueError, match="needs targets"):
        track(OraclePredictor(clip), clip.frames, clip.masks[0, 0], method="every_frame")
    assert j_scores(torch.zeros(2, 4, 4, dtype=torch.bool), torch.zeros(2, 4, 4, dtype=torch.bool)).tolist() == [1, 1]
