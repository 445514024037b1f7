"""SAM 2's idea for video: a memory of past frames carries the mask forward.

SAM 2 treats an image as a one-frame video. After the user prompts one
frame, every later frame is segmented without a prompt: the current
frame's embedding attends to a *memory bank* that holds, for the prompted
frame and a few recent frames, their embeddings together with the masks
predicted there. What the attention reads out tells the mask decoder
where the object is now, and when the object is hidden the model can say
so and pick it up again when it reappears, because the prompted frame
stays in memory.

SAM 2 learns its memory encoder and memory attention on videos. Ours keeps
the same data flow without training anything new: the memory keys are the
image encoder's features of each frame (its high-resolution maps pooled to
the embedding grid, centred and normalised per cell), the values are the
masks pooled to the grid, and the read-out is a softmax attention from
every cell of the current frame over all memory cells (as in space-time
memory networks). Where the read-out is confident, the
most central pixel of its peak region becomes a positive click for the unchanged mask
decoder; among the decoder's three answers the one that agrees best with
the read-out wins; a read-out that is nowhere confident means "hidden".
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import torch
import torch.nn.functional as F

from seglib.data.prompts import center_clicks
from seglib.metrics.masks import paired_iou
from seglib.validation import check_image, check_masks

METHODS = ("memory", "first_frame", "every_frame")
"""How :func:`track` segments frames after the first (see its docstring)."""


class MaskMemory:
    """A bank of (features, mask) pairs of past frames with an attention read-out.

    Args:
        capacity: recent frames kept besides the prompted frame(s), ``>= 0``.
        temperature: softmax temperature of the cosine similarities; small
            values make each cell copy the mask of its best matches.
    """

    def __init__(self, capacity: int = 4, temperature: float = 0.02) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity must be an int >= 0, got {capacity!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.prompted: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.recent: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self.prompted) + len(self.recent)

    @staticmethod
    def _keys(features: torch.Tensor) -> torch.Tensor:
        if not isinstance(features, torch.Tensor) or features.dim() != 3:
            got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"features must be a tensor (D,h,w), got {got}")
        cells = features.float().flatten(1)
        # Centred per frame, so that what all cells share (the scene's overall look) does not count.
        return F.normalize(cells - cells.mean(dim=1, keepdim=True), dim=0)  # (D, h*w)

    def add(self, features: torch.Tensor, mask: torch.Tensor, prompted: bool = False) -> None:
        """Store a frame: its features float ``(D, h, w)`` and its mask bool or float ``(H, W)``.

        ``prompted`` frames are kept for good; the others only while they are
        among the ``capacity`` most recent.
        """
        keys = self._keys(features)
        if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a tensor (H,W), got {got}")
        grid = features.shape[-2:]
        values = F.adaptive_avg_pool2d(mask.float()[None, None].to(keys.device), grid).flatten()
        (self.prompted.append if prompted else self.recent.append)((keys, values))

    def read(self, features: torch.Tensor) -> torch.Tensor:
        """Attention read-out for a new frame: float ``(h, w)`` in [0, 1], the mask the memory expects.

        Args:
            features: float ``(D, h, w)`` of the current frame.
        """
        if not len(self):
            raise RuntimeError("the memory is empty: add the prompted frame first")
        query = self._keys(features)
        keys = torch.cat([k for k, _ in (*self.prompted, *self.recent)], dim=1)
        values = torch.cat([v for _, v in (*self.prompted, *self.recent)])
        weights = torch.softmax(query.T @ keys / self.temperature, dim=1)  # (h*w, M)
        return (weights @ values).view(features.shape[-2:])


class Track(NamedTuple):
    """What :func:`track` returns: masks bool ``(T, H, W)`` and the read-outs float ``(T, H, W)``
    (zeros for methods without memory)."""

    masks: torch.Tensor
    readouts: torch.Tensor


def _best_of(prediction, reference: torch.Tensor | None) -> torch.Tensor:
    """The candidate mask that best matches ``reference``, or with the highest predicted IoU."""
    if reference is None:
        return prediction.masks[prediction.iou_predictions.argmax()]
    agreement = paired_iou(prediction.masks, reference.expand_as(prediction.masks))
    return prediction.masks[agreement.argmax()]


def _click(mask: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    return center_clicks(mask[None]).to(device), torch.ones(1, dtype=torch.int64, device=device)


def track(predictor, frames: torch.Tensor, first_mask: torch.Tensor, method: str = "memory",
          targets: torch.Tensor | None = None, capacity: int = 4, temperature: float = 0.02,
          presence: float = 0.3) -> Track:
    """Segment one object through a clip after a click on frame 0.

    Frame 0 is prompted with the central click of ``first_mask`` (what the
    user wants). Later frames, by ``method``:

    * ``"memory"``: SAM 2's way, the click comes from the memory read-out
      (see the module docstring); the memory holds frame 0 and the last
      ``capacity`` frames where the object was found;
    * ``"first_frame"``: no memory, frame 0's click is reused on every frame
      (the object moves away from it);
    * ``"every_frame"``: the user clicks again on every frame (the central
      click of ``targets[t]``; no click and an empty mask where the object is
      hidden), the upper bound of interactive work.

    Args:
        predictor: a predictor with ``set_image``, ``predict`` and
            ``memory_features`` (:class:`~seglib.predictor.SmallSamPredictor`).
        frames: float ``(T, 3, H, W)``.
        first_mask: bool ``(H, W)``, the object on frame 0 (not empty).
        method: one of :data:`METHODS`.
        targets: bool ``(T, H, W)``, needed by ``"every_frame"`` only.
        capacity, temperature: of the :class:`MaskMemory`.
        presence: read-out level below which the object counts as hidden;
            where it shows, the click goes to the centre of the cells above half the peak.

    Returns:
        A :class:`Track`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_image("frames", frames, batched=True)
    size = tuple(frames.shape[-2:])
    check_masks("first_mask", first_mask, "(H, W)")
    if tuple(first_mask.shape) != size:
        raise ValueError(f"first_mask must have the frames' size {size} (the object on frame 0), "
                         f"got {tuple(first_mask.shape)}")
    if not bool(first_mask.any()):
        raise ValueError("first_mask is empty: the object must be visible on frame 0 to be clicked")
    if method == "every_frame" and (targets is None or tuple(targets.shape) != (frames.shape[0], *size)):
        raise ValueError(f"method 'every_frame' needs targets bool (T,H,W) = ({frames.shape[0]}, {size[0]}, {size[1]})")
    device = getattr(predictor, "device", "cpu")
    memory = MaskMemory(capacity, temperature)
    masks = torch.zeros(frames.shape[0], *size, dtype=torch.bool)
    readouts = torch.zeros(frames.shape[0], *size)
    first_click = _click(first_mask, device)
    for t, frame in enumerate(frames):
        predictor.set_image(frame)
        reference = None
        if t == 0 or method == "first_frame":
            click = first_click
        elif method == "every_frame":
            if not bool(targets[t].any()):
                continue
            click = _click(targets[t], device)
        else:
            grid = memory.read(predictor.memory_features())
            readout = F.interpolate(grid[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
            readouts[t] = readout.cpu()
            if float(readout.max()) < presence:
                continue  # hidden: nothing to segment, nothing to remember
            reference = readout >= 0.5 * readout.max()
            click = _click(reference, device)
        mask = _best_of(predictor.predict(*click, multimask_output=True), reference).cpu()
        masks[t] = mask
        if method == "memory" and bool(mask.any()):
            memory.add(predictor.memory_features(), mask, prompted=(t == 0))
    return Track(masks, readouts)


