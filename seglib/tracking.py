"""SAM 2's way through a video: a trained memory, and the baselines it is measured against.

Training (:func:`unroll` and :func:`video_loss`, run by the lab): a batch of
generated clips is segmented frame by frame as at test time. Frame 0 gets a
click inside the object and is stored in the memory bank as a prompted
frame; every later frame is segmented from the memory alone, and its
prediction is stored in turn. In half of the batches one later frame also
gets a correction click (drawn from where that frame's mask is wrong, as
SAM 2's training simulates its interactive users) and becomes a prompted
frame. The loss sums over frames: binary cross-entropy plus soft Dice of the
mask on frames where the object is visible, binary cross-entropy towards an
empty mask on frames where it is hidden, and the occlusion head's binary
cross-entropy (visible or hidden) on every frame, hidden frames weighted
:data:`HIDDEN_WEIGHT` times (about one frame in eight is hidden: unweighted,
the head learns to say "visible" always).

Tracking (:func:`track_memory`, :func:`track_prompts`) runs B clips side by
side. The baselines use the plain :class:`~seglib.models.promptable.SmallSam`:

* ``"first_frame"``: frame 0's click is reused on every frame;
* ``"every_frame"``: the user clicks the centre of the object on every frame
  where it shows; where it is hidden the user has nothing to click, so the
  last click stays. The model answers every click with a mask: neither
  baseline can say "hidden" (its mask is empty only by accident).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from seglib.data.prompts import center_clicks, correction_clicks, random_clicks
from seglib.data.video import ClipBatch, VideoClip, generate_clips
from seglib.losses.functional import mask_losses
from seglib.metrics.masks import paired_iou
from seglib.metrics.uncertainty import Estimate, bootstrap_intervals
from seglib.metrics.video import hidden_auc, visibility_counts
from seglib.models.promptable.image_encoder import ImageFeatures
from seglib.models.promptable.memory import MemoryBank, VideoSam
from seglib.models.promptable.model import SmallSam
from seglib.validation import check_image, check_masks

METHODS = ("memory", "first_frame", "every_frame")
"""The tracking methods compared in notebook 06 (see the module docstring)."""
METHOD_TITLES = {"memory": "memory", "first_frame": "first-frame click", "every_frame": "a click every frame"}
"""How tables and figures name the :data:`METHODS`."""

PLACEMENTS = ("error", "random")
"""Where :func:`correct_once` puts its click: inside the widest error region, or (the control) on a random
pixel with the same label: of the object for a positive click, of the background for a negative one."""

VALIDATION_SEED = 500_000
"""Seeds of the validation clips of the memory's training curve (test clips: 0-63, training: from 10**6)."""

VIDEO_CLIPS = 64
"""Test clips of :func:`video_clips` (seeds 0-63, 20 frames each)."""

OBJECT_WEIGHT = 0.5
"""Weight of the occlusion head's binary cross-entropy in :func:`video_loss`."""


HIDDEN_WEIGHT = 3.0
"""Weight of a hidden frame in the occlusion head's loss (a visible frame weighs 1)."""


class VideoOutputs(NamedTuple):
    """What :func:`unroll` returns: ``logits`` float ``(B, T, H, W)`` (the decoder's
    masks before the occlusion decision) and ``object_scores`` float ``(B, T)``."""

    logits: torch.Tensor
    object_scores: torch.Tensor


class Track(NamedTuple):
    """What the trackers return: ``masks`` bool ``(B, T, H, W)``, ``visible`` bool ``(B, T)`` (the
    method's own call: for the baselines, a non-empty mask) and ``scores`` float ``(B, T)``, the
    occlusion head's logits (> 0: visible), or ``None`` for a method without the head."""

    masks: torch.Tensor
    visible: torch.Tensor
    scores: torch.Tensor | None = None


def unroll(model: VideoSam, batch: ClipBatch, capacity: int = 4) -> VideoOutputs:
    """Segment every frame of a batch of clips as in training (see the module docstring).

    This is the ``forward`` that :func:`seglib.train.train` calls; the image
    encoder runs without gradients: its weights are fixed, but in train mode its batch norms
    normalise with each batch's statistics and update their running statistics on the clips.
    """
    b, t_max = batch.targets.shape[:2]
    with torch.no_grad():
        features = model.encode(batch.frames.flatten(0, 1))
    bank = MemoryBank(capacity)
    first = batch.targets[:, 0]
    points, labels = random_clicks(first, batch.generator), torch.ones(b, dtype=torch.int64, device=first.device)
    logits, scores = [], []
    for t in range(t_max):
        frame = features.take(slice(t, None, t_max))              # frame t of every clip (clip-major rows)
        out = model.step(frame, bank, points[:, None], labels[:, None]) if t == 0 else model.step(frame, bank)
        prompted = t == 0
        if t == batch.correction_frame:
            click, label = correction_clicks(out.mask_logits.detach() > 0, batch.targets[:, t], batch.generator)
            out = model.step(frame, bank, click[:, None], label[:, None])
            prompted = True
        bank.add(out, prompted)
        logits.append(out.raw_logits)
        scores.append(out.object_score)
    return VideoOutputs(torch.stack(logits, dim=1), torch.stack(scores, dim=1))


def video_loss(outputs: VideoOutputs, targets: torch.Tensor, object_weight: float = OBJECT_WEIGHT,
               hidden_weight: float = HIDDEN_WEIGHT) -> torch.Tensor:
    """Mask loss on every frame plus the occlusion head's loss (see the module docstring).

    Args:
        outputs: :class:`VideoOutputs` of :func:`unroll`.
        targets: bool ``(B, T, H, W)``.
        object_weight: weight of the occlusion head's binary cross-entropy.
        hidden_weight: weight of a hidden frame in that cross-entropy.

    Returns:
        Scalar tensor.
    """
    visible = targets.flatten(2).any(dim=2)                                          # (B, T)
    logits = outputs.logits.flatten(0, 1).float()
    shows = visible.flatten()
    losses = mask_losses(logits[:, None], targets.flatten(0, 1))[:, 0]
    mask_loss = losses[shows].mean() if bool(shows.any()) else losses.sum() * 0
    if not bool(shows.all()):
        hidden = logits[~shows]
        mask_loss = mask_loss + F.binary_cross_entropy_with_logits(hidden, torch.zeros_like(hidden))
    weight = torch.where(visible, 1.0, hidden_weight)
    object_loss = F.binary_cross_entropy_with_logits(outputs.object_scores.float(), visible.float(), weight=weight)
    return mask_loss + object_weight * object_loss


def _check_clips(frames: torch.Tensor, first_masks: torch.Tensor) -> None:
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a float tensor (B, T, 3, H, W), got {type(frames).__name__}")
    if frames.dim() != 5:
        raise ValueError(f"frames must be a float tensor (B, T, 3, H, W), got shape {tuple(frames.shape)}")
    check_image("frames", frames.flatten(0, 1), batched=True)
    check_masks("first_masks", first_masks, "(B, H, W)")
    if first_masks.shape != (frames.shape[0], *frames.shape[-2:]):
        raise ValueError(f"first_masks must be (B, H, W) = ({frames.shape[0]}, {frames.shape[-2]}, "
                         f"{frames.shape[-1]}), the object on frame 0 of each clip, got {tuple(first_masks.shape)}")
    if not bool(first_masks.flatten(1).any(dim=1).all()):
        raise ValueError("first_masks must not be empty: the object must show on frame 0 to be clicked")


@torch.no_grad()
def encode_frames(model: VideoSam | SmallSam, frames: torch.Tensor | list[VideoClip]) -> list[ImageFeatures]:
    """Every frame encoded once: ``T`` :class:`ImageFeatures` of batch ``B``, on the model's device.

    Args:
        model: a :class:`VideoSam` or a :class:`SmallSam`.
        frames: float ``(B, T, 3, H, W)``, or the clips themselves.
    """
    if isinstance(frames, list):
        frames = _stack(frames)[0]
    device = next(model.parameters()).device
    return [model.encode(frames[:, t].to(device)) for t in range(frames.shape[1])]


def _frame_features(model, frames: torch.Tensor, features: list[ImageFeatures] | None) -> list[ImageFeatures]:
    """``features`` checked against the frames ``(B, T, 3, H, W)``, or the frames encoded now."""
    if features is None:
        return encode_frames(model, frames)
    b, t_max = frames.shape[:2]
    if len(features) != t_max or any(f.embedding.shape[0] != b for f in features):
        got = [f.embedding.shape[0] for f in features]
        raise ValueError(f"features must hold {t_max} frames of {b} clips (encode_frames), got batches {got}")
    return features


@torch.no_grad()
def track_memory(model: VideoSam, frames: torch.Tensor, first_masks: torch.Tensor,
                 corrections: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
                 capacity: int = 4, features: list[ImageFeatures] | None = None) -> Track:
    """Track one object per clip with the memory after a click on frame 0.

    Args:
        model: a trained :class:`VideoSam`.
        frames: float ``(B, T, 3, H, W)``.
        first_masks: bool ``(B, H, W)``: the object on frame 0; the click goes
            to its most central pixel (:func:`~seglib.data.prompts.center_clicks`).
        corrections: frame -> ``(points (B, N, 2), labels (B, N))`` clicks given on
            that frame (label -1 for a clip without a click); a corrected frame
            joins the prompted frames of the memory, as in SAM 2's interactive mode.
        capacity: recent frames kept in the memory besides the prompted ones.
        features: the frames already encoded by ``model`` (:func:`encode_frames`), or ``None``.

    Returns:
        A :class:`Track` (on the CPU).
    """
    _check_clips(frames, first_masks)
    features = _frame_features(model, frames, features)
    device = next(model.parameters()).device
    corrections = corrections or {}
    b, t_max = frames.shape[:2]
    bank = MemoryBank(capacity)
    masks, scores = [], []
    first = center_clicks(first_masks.to(device))[:, None], torch.ones(b, 1, dtype=torch.int64, device=device)
    for t in range(t_max):
        if t == 0:
            out = model.step(features[t], bank, *first)
        elif t in corrections:
            points, labels = corrections[t]
            out = model.step(features[t], bank, points.to(device), labels.to(device))
        else:
            out = model.step(features[t], bank)
        bank.add(out, prompted=t == 0 or t in corrections)
        masks.append((out.mask_logits > 0).cpu())
        scores.append(out.object_score.float().cpu())
    scores = torch.stack(scores, dim=1)
    return Track(torch.stack(masks, dim=1), scores > 0, scores)


@torch.no_grad()
def track_prompts(model: SmallSam, frames: torch.Tensor, targets: torch.Tensor, method: str,
                  features: list[ImageFeatures] | None = None) -> Track:
    """The baselines of the module docstring: a click on each frame, no memory.

    Args:
        model: a trained :class:`SmallSam`.
        frames: float ``(B, T, 3, H, W)``.
        targets: bool ``(B, T, H, W)``: frame 0 gives the first click; for
            ``"every_frame"`` each frame where the object shows gives that frame's click.
        method: ``"first_frame"`` or ``"every_frame"``.
        features: the frames already encoded by ``model`` (:func:`encode_frames`), or ``None``.

    Returns:
        A :class:`Track`; after one click the mask with the highest predicted IoU is kept.
    """
    if method not in METHODS[1:]:
        raise ValueError(f"method must be one of {METHODS[1:]}, got {method!r}")
    check_masks("targets", targets, "(B, T, H, W)")
    if targets.dim() != 4 or targets.shape[:2] != frames.shape[:2]:
        raise ValueError(f"targets must be bool (B, T, H, W) with the frames' B and T, got {tuple(targets.shape)}")
    _check_clips(frames, targets[:, 0])
    features = _frame_features(model, frames, features)
    device = next(model.parameters()).device
    b, t_max = frames.shape[:2]
    click = center_clicks(targets[:, 0]).to(device)
    labels = torch.ones(b, 1, dtype=torch.int64, device=device)
    masks = []
    for t in range(t_max):
        shows = targets[:, t].flatten(1).any(dim=1)
        if method == "every_frame" and bool(shows.any()):
            fresh = center_clicks(targets[shows, t]).to(device)
            click = click.clone()
            click[shows.to(device)] = fresh
        logits, iou = model.decode(features[t], click[:, None], labels)
        best = iou.argmax(dim=1)
        masks.append((logits[torch.arange(b, device=device), best] > 0).cpu())
    masks = torch.stack(masks, dim=1)
    return Track(masks, masks.flatten(2).any(dim=2))


def video_clips(n: int = VIDEO_CLIPS, num_frames: int = 20) -> list[VideoClip]:
    """The test clips of the video evaluation: seeds ``0 .. n-1`` (training clips use seeds from 10**6 on)."""
    return generate_clips(n, num_frames, seed=0)


def _stack(clips: list[VideoClip]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([c.frames for c in clips]), torch.stack([c.masks[:, 0] for c in clips])


def video_tracks(video_model: VideoSam, sam_model: SmallSam, clips: list[VideoClip]) -> dict[str, Track]:
    """The three methods of :data:`~seglib.tracking.METHODS` on the clips' bottom thing (slot 0)."""
    frames, targets = _stack(clips)
    tracks = {"memory": track_memory(video_model, frames, targets[:, 0])}
    features = encode_frames(sam_model, frames)                    # both baselines see the same frames
    for method in METHODS[1:]:
        tracks[method] = track_prompts(sam_model, frames, targets, method, features)
    return tracks


def video_counts(tracks: dict[str, Track], clips: list[VideoClip]) -> dict[str, dict[str, torch.Tensor]]:
    """method -> per-clip sums and counts of :func:`~seglib.metrics.video.visibility_counts`."""
    targets = _stack(clips)[1]
    return {method: visibility_counts(t.masks, t.visible, targets) for method, t in tracks.items()}


def pooled(counts: dict[str, torch.Tensor], index: torch.Tensor | None = None) -> dict[str, float]:
    """J on visible frames, hidden-frame and reappearing-frame accuracy, pooled over the clips ``index``.

    ``false_hidden`` is the share of visible frames called hidden and ``hidden_gap`` the share of
    hidden frames called hidden minus it: 0 for a call that ignores the frame (a coin, or always
    "visible"), 1 for a perfect one.
    """
    def ratio(top, bottom):
        top, bottom = counts[top], counts[bottom]
        if index is not None:
            top, bottom = top[index], bottom[index]
        return float(top.sum() / bottom.sum()) if float(bottom.sum()) else float("nan")
    hidden, false_hidden = ratio("hidden_right", "hidden_frames"), ratio("false_hidden", "visible_frames")
    return {"j_visible": ratio("j_sum", "visible_frames"), "hidden_accuracy": hidden,
            "false_hidden": false_hidden, "hidden_gap": hidden - false_hidden,
            "reappear_accuracy": ratio("reappear_right", "reappear_frames"),
            "reappear_j": ratio("reappear_j_sum", "reappear_frames")}


def video_metrics(model: VideoSam, clips: list[VideoClip] | None = None) -> dict[str, float]:
    """The memory's :func:`pooled` scores and its head's ``hidden_auc`` on the test clips (the zoo's metrics)."""
    clips = clips or video_clips()
    frames, targets = _stack(clips)
    track = track_memory(model, frames, targets[:, 0])
    scores = pooled(visibility_counts(track.masks, track.visible, targets))
    return {k: round(v, 4) for k, v in (scores | {"hidden_auc": hidden_auc(track.scores, targets)}).items()}


class Correction(NamedTuple):
    """What :func:`correct_once` returns: ``frame`` int64 ``(B,)`` the clicked frame of each clip
    (-1: no frame to correct), the click's ``label`` ``(B,)`` and the corrected :class:`Track`."""

    frame: torch.Tensor
    label: torch.Tensor
    track: Track


def correct_once(model: VideoSam, clips: list[VideoClip], before: Track, placement: str = "error",
                 seed: int = 0, features: list[ImageFeatures] | None = None) -> Correction:
    """One correction click per clip, on the visible frame (after frame 0) where the memory's mask is worst.

    With ``placement="error"`` the click goes where a user would put it (the
    interior of the widest error region,
    :func:`~seglib.data.prompts.correction_clicks`); ``"random"`` is the
    control: the same kind of click (positive where the user's is positive)
    on a pixel drawn uniformly from the object, or from the background for a
    negative click (seeded by ``seed``). The clicked frame joins
    the memory's prompted frames and the clip is tracked again. Clips whose
    masks have no error on any visible frame get no click. ``features``: the
    clips' frames already encoded by ``model`` (:func:`encode_frames`), or ``None``.
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if before.scores is None:
        raise ValueError("before must be the memory's Track (track_memory, with scores), got one without scores")
    frames, targets = _stack(clips)
    shows = targets.flatten(2).any(dim=2)
    j = paired_iou(before.masks.flatten(0, 1), targets.flatten(0, 1)).view(shows.shape)
    j = torch.where(shows, j, torch.full_like(j, 2.0))
    j[:, 0] = 2.0
    worst_j, frame = j.min(dim=1)
    rows = torch.arange(len(clips))
    points, labels = correction_clicks(before.masks[rows, frame], targets[rows, frame])
    if placement == "random":  # the same kind of click, anywhere on its side of the object's outline
        side = torch.where((labels == 1)[:, None, None], targets[rows, frame], ~targets[rows, frame])
        points = random_clicks(side, torch.Generator().manual_seed(seed))
    frame = torch.where((worst_j < 1) & (labels >= 0), frame, torch.full_like(frame, -1))
    masks, visible, scores = (x.clone() for x in before)
    features = _frame_features(model, frames, features)
    for t in frame[frame >= 0].unique().tolist():  # clips clicked on the same frame are tracked again together
        chosen = (frame == t).nonzero().flatten()
        index = chosen.to(features[0].embedding.device)
        again = track_memory(model, frames[chosen], targets[chosen, 0],
                             {t: (points[chosen, None], labels[chosen, None])},
                             features=[f.take(index) for f in features])
        masks[chosen], visible[chosen], scores[chosen] = again
    return Correction(frame, labels, Track(masks, visible, scores))


def video_table(counts: dict[str, dict[str, torch.Tensor]], resamples: int = 1000) -> dict[str, dict[str, Estimate]]:
    """Pooled scores of each method with 95 % bootstrap intervals over clips (:func:`pooled`).

    Returns:
        method -> ``{"j_visible", "hidden_accuracy", "false_hidden", "hidden_gap", "reappear_accuracy",
        "reappear_j": Estimate}``,
        plus ``"memory - first_frame"`` and ``"memory - every_frame"`` -> ``{"j_visible", "reappear_j":
        Estimate}`` (paired: the same clips resampled).
    """
    n = len(next(iter(counts.values()))["j_sum"])

    def estimates(statistics) -> dict[str, Estimate]:  # every key from one pass over the resamples
        bounds, full = bootstrap_intervals(statistics, n, resamples=resamples), statistics(torch.arange(n))
        return {key: Estimate(full[key], *bounds[key]) for key in full}

    table = {method: estimates(lambda index, c=c: pooled(c, index)) for method, c in counts.items()}
    for baseline in METHODS[1:]:
        if "memory" in counts and baseline in counts:
            table[f"memory - {baseline}"] = estimates(lambda index, b=baseline: {
                key: pooled(counts["memory"], index)[key] - pooled(counts[b], index)[key]
                for key in ("j_visible", "reappear_j")})
    return table


def correction_gains(before: Track, correction: Correction, clips: list[VideoClip], margin: float = 0.05
                     ) -> dict[str, torch.Tensor]:
    """What one correction click changed on the frames after it, per corrected clip.

    Returns:
        float64 ``(C,)`` tensors over the C clips that got a click: ``improved`` and ``worse``
        (frames after the click whose J rose or fell by more than ``margin``), ``after`` (frames
        after the click), ``gain`` (mean change of J over them) and ``clicked_gain`` (on the clicked frame).
    """
    targets = _stack(clips)[1]
    t_max = targets.shape[1]

    def j(track: Track) -> torch.Tensor:
        return paired_iou(track.masks.flatten(0, 1), targets.flatten(0, 1)).view(-1, t_max).double()

    change = j(correction.track) - j(before)
    out = {key: [] for key in ("improved", "worse", "after", "gain", "clicked_gain")}
    for clip, t in enumerate(correction.frame.tolist()):
        if t < 0:
            continue
        later = change[clip, t + 1:]
        out["improved"].append(float((later > margin).sum()))
        out["worse"].append(float((later < -margin).sum()))
        out["after"].append(float(len(later)))
        out["gain"].append(float(later.mean()) if len(later) else 0.0)
        out["clicked_gain"].append(float(change[clip, t]))
    return {key: torch.tensor(values, dtype=torch.float64) for key, values in out.items()}


def correction_estimates(gains: dict[str, torch.Tensor], control: dict[str, torch.Tensor] | None = None,
                         resamples: int = 1000) -> dict[str, Estimate]:
    """Mean change of J on the clicked frame (``"clicked"``) and on the frames after it (``"later"``),
    over the clicked clips of :func:`correction_gains`, with 95 % bootstrap intervals over those clips.

    With the gains of a ``control`` correction of the same clips (``placement="random"``), also
    ``"control_clicked"`` (its change on the clicked frame) and ``"over_control"`` (the paired
    difference on the clicked frame: placed click minus control click).
    """
    values = {"clicked": gains["clicked_gain"], "later": gains["gain"]}
    if control is not None:
        if control["clicked_gain"].shape != gains["clicked_gain"].shape:
            raise ValueError(f"control must correct the same clips: {len(gains['clicked_gain'])} clicked clips, "
                             f"the control {len(control['clicked_gain'])}")
        values["control_clicked"] = control["clicked_gain"]
        values["over_control"] = gains["clicked_gain"] - control["clicked_gain"]
    bounds = bootstrap_intervals(lambda index: {key: float(v[index].mean()) for key, v in values.items()},
                                 len(values["clicked"]), resamples=resamples)
    return {key: Estimate(float(v.mean()), *bounds[key]) for key, v in values.items()}
