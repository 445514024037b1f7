"""Notebook 06's lab: the small SAM trained on simulated prompts, evaluated, tracking video.

Every training batch is a set of generated scenes, one target object per
scene, and one of three prompt kinds per row (SAM's recipe, shrunk):

* **one click** (the first ``click_fraction`` of the rows): a positive click
  drawn uniformly inside the object. Such a prompt can be ambiguous, so the
  model answers with its three multi-mask outputs and only the best of the
  three is trained (the *minimum* of the three losses). On a spot nested
  inside a larger thing (:func:`~seglib.data.prompts.nest_spots`) the target
  is the spot or the whole thing, half the time each;
* **a box** (the next ``box_fraction``): the object's box with noise; the
  single-mask output is trained;
* **clicks and corrections** (the rest): the model is run without gradients
  on the first click, then a correction click is drawn from its error
  region (positive on a miss, negative on a false positive), once or twice;
  the last round also gets the previous low-resolution logits as a mask
  prompt. Only the image embedding is shared between the rounds, which is
  what makes this simulation cheap: the encoder runs once per image.

The loss of a mask is binary cross-entropy plus soft Dice; the IoU head is
trained with the mean squared error to the true IoU of each trained mask.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from seglib.common import eval_mode
from seglib.data.prompts import PromptTask, center_clicks, correction_clicks, prompt_tasks
from seglib.data.shapes import SceneBatch, SceneConfig, split_scenes
from seglib.metrics.masks import paired_iou
from seglib.metrics.video import j_scores
from seglib.models.promptable.model import SmallSam
from seglib.predictor import select_best_mask
from seglib.tracking import METHODS, track
from seglib.train import History
from seglib.train import train as train_loop
from seglib.validation import check_choice, check_image, check_masks, check_same_size, check_tensor
from seglib.viz import highlight, overlay_boxes, show_image, show_points
from seglib.zoo import Recipe

IOU_WEIGHT = 1.0
"""Weight of the IoU head's squared error in :func:`promptable_loss`."""

EVAL_SCENES = 256
"""Test scenes of the evaluation (two chunks of the generator: a fixed prefix of the test split)."""


class PromptOutputs(NamedTuple):
    """What :func:`simulate_prompts` returns: all 4 outputs of every row, in batch order.

    ``masks`` float ``(B, 4, H, W)``, ``iou`` float ``(B, 4)``, ``multimask``
    bool ``(B,)`` (rows trained on outputs 1-3 rather than output 0).
    """

    masks: torch.Tensor
    iou: torch.Tensor
    multimask: torch.Tensor


def simulate_prompts(model: SmallSam, task: PromptTask) -> PromptOutputs:
    """Run the model on a :class:`PromptTask`: encode once, decode each prompt kind.

    This is the ``forward`` that :func:`seglib.train.train` calls.
    """
    features = model.encode(task.images)
    a, b = task.num_clicks, task.num_clicks + task.num_boxes
    outputs = []
    if a > 0:
        outputs.append(model.decode_all(_rows(features, 0, a), task.clicks[:a, None], _ones(a, task)))
    if b > a:
        outputs.append(model.decode_all(_rows(features, a, b), boxes=task.boxes[a:b]))
    rest = task.images.shape[0] - b
    if rest > 0:
        part = _rows(features, b, b + rest)
        target = task.targets[b:]
        points, labels = task.clicks[b:, None], _ones(rest, task)
        logits = None
        with torch.no_grad():
            for round_ in range(task.corrections):
                masks, iou = model.decode_all(part, points, labels, mask_inputs=logits)
                best = select_best_mask(masks[:, 1:], iou[:, 1:])[0] if round_ == 0 else masks[:, 0]
                logits = best.unsqueeze(1).detach()
                new_point, new_label = correction_clicks(best > 0, target, task.generator)
                points = torch.cat([points, new_point[:, None]], dim=1)
                labels = torch.cat([labels, new_label[:, None]], dim=1)
        outputs.append(model.decode_all(part, points, labels, mask_inputs=logits))
    masks = torch.cat([m for m, _ in outputs])
    iou = torch.cat([i for _, i in outputs])
    multimask = torch.arange(masks.shape[0], device=masks.device) < a
    return PromptOutputs(masks, iou, multimask)


def _rows(features, start: int, stop: int):
    return type(features)(features.embedding[start:stop], tuple(t[start:stop] for t in features.high_res))


def _ones(n: int, task: PromptTask) -> torch.Tensor:
    return torch.ones(n, 1, dtype=torch.int64, device=task.images.device)


def mask_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice of every candidate mask.

    Unlike :func:`seglib.losses.soft_dice_loss` (one Dice for a batch), this
    keeps one loss per row and candidate, so that the best of several
    candidates can be picked.

    Args:
        logits: float ``(B, K, H, W)`` mask logits.
        targets: bool ``(B, H, W)``.

    Returns:
        float ``(B, K)``.
    """
    check_tensor("logits", logits, "(B, K, H, W)", "float")
    check_masks("targets", targets, "(B, H, W)")
    if targets.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"logits must be (B,K,H,W) and targets (B,H,W) with the same B,H,W, got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    truth = targets.unsqueeze(1).float().expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, truth, reduction="none").mean(dim=(2, 3))
    probs = torch.sigmoid(logits)
    overlap = (probs * truth).sum(dim=(2, 3))
    dice = 1 - (2 * overlap + 1) / (probs.sum(dim=(2, 3)) + truth.sum(dim=(2, 3)) + 1)
    return bce + dice


def promptable_loss(outputs: PromptOutputs, targets: torch.Tensor, iou_weight: float = IOU_WEIGHT) -> torch.Tensor:
    """The training loss: the mask loss of the trained outputs plus the IoU head's weighted MSE.

    Args:
        outputs: :class:`PromptOutputs` of :func:`simulate_prompts`.
        targets: bool ``(B, H, W)``.
        iou_weight: weight of the IoU head's mean squared error.

    Returns:
        Scalar tensor.
    """
    masks, iou, multimask = outputs
    losses = mask_losses(masks.float(), targets)  # (B, 4)
    multi_loss, best = losses[:, 1:].min(dim=1)
    mask_loss = torch.where(multimask, multi_loss, losses[:, 0]).mean()
    with torch.no_grad():
        true_iou = paired_iou(masks.detach() > 0, targets.unsqueeze(1).expand_as(masks))
    # The IoU head learns all three multi-mask answers of one-click rows, output 0 elsewhere.
    trained = torch.zeros_like(true_iou, dtype=torch.bool)
    trained[:, 1:] = multimask[:, None]
    trained[:, 0] = ~multimask
    iou_loss = ((iou.float() - true_iou) ** 2)[trained].mean()
    return mask_loss + iou_weight * iou_loss


def evaluation_scenes(n: int = EVAL_SCENES, config: SceneConfig | None = None) -> SceneBatch:
    """The fixed test scenes of the promptable evaluation (a prefix of the test split)."""
    return split_scenes("test", config or SceneConfig(min_objects=1), n=n)


@torch.no_grad()
def evaluate(model: SmallSam, scenes: SceneBatch | None = None, clicks: int = 3,
                        batch_size: int = 256) -> dict[str, float]:
    """Mean IoU over every object of the test scenes for 1..``clicks`` clicks and for a box.

    The protocol is deterministic: the first click at the pixel farthest from
    the object's outline; each further click at the error pixel farthest from
    its error region's outline (:func:`~seglib.data.prompts.correction_clicks`),
    with the previous logits as mask prompt; the box is the exact box. After
    one click the mask with the highest *predicted* IoU is taken (what a user
    sees), after more clicks and for a box the single-mask output.

    Args:
        model: a :class:`SmallSam`.
        scenes: default :func:`evaluation_scenes`.
        clicks: number of clicks, at least 1.
        batch_size: objects decoded at once.

    Returns:
        ``{"click1_miou": ..., ..., "click{clicks}_miou": ..., "box_miou": ...,
        "objects": n}``.
    """
    if isinstance(clicks, bool) or not isinstance(clicks, int) or clicks < 1:
        raise ValueError(f"clicks must be an int >= 1, got {clicks!r}")
    scenes = scenes if scenes is not None else evaluation_scenes()
    device = next(model.parameters()).device
    scene_index, slot = scenes.valid.nonzero(as_tuple=True)
    totals = torch.zeros(clicks + 1, dtype=torch.float64)
    with eval_mode(model):
        for start in range(0, len(scene_index), batch_size):
            rows, slots = scene_index[start:start + batch_size], slot[start:start + batch_size]
            images = scenes.images[rows].to(device)
            targets = scenes.masks[rows, slots].to(device)
            features = model.encode(images)
            points, labels = center_clicks(targets)[:, None], torch.ones(len(rows), 1, dtype=torch.int64, device=device)
            masks, iou = model.decode(features, points, labels, multimask_output=True)
            logits = select_best_mask(masks, iou)[0]
            totals[0] += paired_iou(logits > 0, targets).sum().item()
            for k in range(1, clicks):
                point, label = correction_clicks(logits > 0, targets)
                points = torch.cat([points, point[:, None]], dim=1)
                labels = torch.cat([labels, label[:, None]], dim=1)
                logits = model.decode(features, points, labels, mask_inputs=logits.unsqueeze(1),
                                      multimask_output=False)[0][:, 0]
                totals[k] += paired_iou(logits > 0, targets).sum().item()
            box_logits = model.decode(features, boxes=scenes.boxes[rows, slots].to(device), multimask_output=False)[0]
            totals[clicks] += paired_iou(box_logits[:, 0] > 0, targets).sum().item()
    means = (totals / max(len(scene_index), 1)).tolist()
    result = {f"click{k + 1}_miou": round(means[k], 4) for k in range(clicks)}
    result["box_miou"] = round(means[clicks], 4)
    result["objects"] = float(len(scene_index))
    return result


LOSSES = ("promptable",)
"""Loss names of :func:`train`: :func:`promptable_loss` on :func:`simulate_prompts`."""

ZOO_ENTRIES: dict[str, Recipe] = {
    "promptable": Recipe(lab="sam", builder="small_sam",
                         kwargs={"image_size": 64, "embed_dim": 64, "widths": [16, 32, 64], "encoder_depth": 2,
                                 "decoder_depth": 2, "heads": 4, "mlp_dim": 128, "dense_points": True,
                                 "scored_iou": True},
                         steps=20000, batch_size=16, lr=3e-3, loss="promptable", seed=0),
}
"""The zoo entry ``promptable`` (run by ``make zoo NAME=promptable``)."""


def curve_evaluator() -> Callable[[SmallSam], dict[str, float]]:
    """``model -> {"click1_miou", ...}`` on 64 validation scenes, one click per object (the training curve)."""
    val = split_scenes("val", SceneConfig(min_objects=1), n=64)
    return lambda model: evaluate(model, val, clicks=1)


def train(model: SmallSam, steps: int = 800, *, batch_size: int = 12, lr: float = 3e-3, loss: str = "promptable",
          seed: int = 0, eval_every: int | None = None, evaluate: Callable[[SmallSam], dict] | None = None,
          device: torch.device | str = "cpu", progress: bool = True, desc: str = "small SAM") -> History:
    """Train a small SAM in place on simulated prompts.

    The defaults are the cpu profile's live run of the notebook: 800 steps
    of 12 scenes, about two minutes on an idle 2-core CPU. Seed everything
    (``seglib.seed_everything``) before building the model for a repeatable run.

    Args:
        model: a :class:`SmallSam` (:func:`~seglib.models.promptable.build_small_sam`).
        steps: fixed number of optimisation steps.
        batch_size: scenes (one prompt each) per step.
        lr: peak learning rate of AdamW (cosine decay).
        loss: ``"promptable"``.
        seed: seed of the scenes and the prompts.
        eval_every: steps between evaluations (``None``: only at the end).
        evaluate: ``model -> dict`` (default: :func:`curve_evaluator` when ``eval_every`` is set, else none).
        device: where to train (scenes are generated there).
        progress: show a progress bar.

    Returns:
        The :class:`~seglib.train.History`; the model ends in eval mode.
    """
    check_choice("loss", loss, LOSSES)
    device = torch.device(device)
    model.to(device)
    if evaluate is None and eval_every:
        evaluate = curve_evaluator()
    return train_loop(model, prompt_tasks(batch_size, seed=seed, device=device), promptable_loss,
                      steps=steps, lr=lr, forward=simulate_prompts, evaluate=evaluate, eval_every=eval_every,
                      device=device, channels_last=False, progress=progress, desc=desc)


def evaluate_tracking(predictor, clips, methods: tuple[str, ...] = METHODS, target: int = 0,
                      **options) -> dict[str, torch.Tensor]:
    """Per-frame J of each method on each clip, tracking thing ``target`` from frame 0.

    Args:
        predictor: as for :func:`track`.
        clips: a list of :class:`~seglib.data.video.VideoClip` (the target
            must be visible on frame 0 of each).
        methods: names from :data:`METHODS`.
        target: slot of the thing to follow (0 is the bottom thing, the one
            :func:`~seglib.data.video.generate_clip` hides mid-clip).
        options: passed to :func:`track` (``capacity``, ``temperature``, ``presence``).

    Returns:
        method -> float32 ``(num_clips, T)``; frame 0 (prompted in every
        method) is included.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be taken from {METHODS}, got {unknown}")
    scores = {method: [] for method in methods}
    for clip in clips:
        targets = clip.masks[:, target]
        for method in methods:
            result = track(predictor, clip.frames, targets[0], method, targets=targets, **options)
            scores[method].append(j_scores(result.masks, targets))
    return {method: torch.stack(values) for method, values in scores.items()}


def simulate_user(predictor, image: torch.Tensor, target: torch.Tensor, clicks: int = 3) -> list[dict]:
    """A simulated user: the central click, then clicks where the mask is wrong.

    The protocol of :func:`evaluate`
    on one object with a predictor: after the first click the mask with the
    highest predicted IoU is kept, each later round passes the earlier
    low-resolution logits as a mask prompt.

    Args:
        predictor: a predictor (``set_image`` is called here).
        image: float ``(3, H, W)``.
        target: bool ``(H, W)``, the object the user wants (not empty).
        clicks: number of clicks, at least 1.

    Returns:
        One dict per click: ``points`` ``(k, 2)``, ``labels`` ``(k,)``, ``mask``
        bool ``(H, W)`` and its true ``iou``.
    """
    if isinstance(clicks, bool) or not isinstance(clicks, int) or clicks < 1:
        raise ValueError(f"clicks must be an int >= 1, got {clicks!r}")
    check_image("image", image, allow_uint8=True)
    check_masks("target", target, "(H, W)")
    check_same_size("target", target, "image", image)
    predictor.set_image(image)
    target = target.cpu()
    points, labels = center_clicks(target[None]), torch.ones(1, dtype=torch.int64)
    prediction = predictor.predict(points, labels, multimask_output=True)
    best = int(prediction.iou_predictions.argmax())
    mask, logits = prediction.masks[best].cpu(), prediction.low_res_logits[best:best + 1]
    rounds = [{"points": points, "labels": labels, "mask": mask, "iou": float(paired_iou(mask, target))}]
    for _ in range(clicks - 1):
        point, label = correction_clicks(mask[None], target[None])
        if int(label) < 0:  # nothing left to correct
            rounds.append(dict(rounds[-1]))
            continue
        points, labels = torch.cat([points, point]), torch.cat([labels, label])
        prediction = predictor.predict(points, labels, mask_input=logits, multimask_output=False)
        mask, logits = prediction.masks[0].cpu(), prediction.low_res_logits[:1]
        rounds.append({"points": points, "labels": labels, "mask": mask, "iou": float(paired_iou(mask, target))})
    return rounds



def show_click_rounds(predictor, scenes, objects: list[tuple[int, int]], clicks: int = 3, size: float = 2.0):
    """Rows of objects; columns: each click round, a box prompt and the target.

    Args:
        predictor: a predictor.
        scenes: a :class:`~seglib.data.shapes.SceneBatch`.
        objects: ``(scene index, slot)`` pairs.
        clicks: click rounds shown.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    columns = clicks + 2
    fig, axes = plt.subplots(len(objects), columns, figsize=(size * columns, size * len(objects) * 1.1),
                             squeeze=False)
    for row, (i, slot) in enumerate(objects):
        image, target = scenes.images[i], scenes.masks[i, slot]
        for k, result in enumerate(simulate_user(predictor, image, target, clicks)):
            ax = show_image(highlight(image, result["mask"]), ax=axes[row, k],
                            title=f"{k + 1} click{'s' if k else ''}: IoU {result['iou']:.2f}")
            show_points(result["points"], result["labels"], ax=ax, size=60)
        box = scenes.boxes[i, slot]
        mask = predictor.predict(box=box, multimask_output=False).masks[0].cpu()
        picture = overlay_boxes(highlight(image, mask).float() / 255, box[None], labels=torch.tensor([5]), width=1)
        show_image(picture, ax=axes[row, clicks], title=f"box: IoU {float(paired_iou(mask, target)):.2f}")
        show_image(highlight(image, target), ax=axes[row, clicks + 1], title="target")
    fig.tight_layout()
    return fig
