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

from seglib.common import eval_mode
from seglib.data.prompts import PromptTask, center_clicks, correction_clicks, prompt_tasks
from seglib.losses import mask_losses
from seglib.data.shapes import SceneBatch, SceneConfig, split_scenes
from seglib.metrics.masks import paired_iou
from seglib.metrics.uncertainty import Estimate, bootstrap_interval
from seglib.models.promptable.model import SmallSam, encode_images
from seglib.predictor import select_best_mask
from seglib.data.video import clip_batches, generate_clips
from seglib.models.promptable.memory import VideoSam
from seglib.tracking import VALIDATION_SEED, unroll, video_loss, video_metrics
from seglib.train import History
from seglib.train import train as train_loop
from seglib.validation import check_choice, check_image, check_masks, check_same_size
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
    features = model.encode(task.images).take(task.image_of)
    a, b = task.num_clicks, task.num_clicks + task.num_boxes
    outputs = []
    if b > 0:  # a click (and SAM's padding token) and a box are two tokens each: one decoder pass for both
        prompts = [model.prompt_encoder(task.clicks[:a, None], _ones(a, task)) if a > 0 else None,
                   model.prompt_encoder(boxes=task.boxes[a:b]) if b > a else None]
        sparse, dense = (torch.cat(parts) for parts in zip(*(p for p in prompts if p is not None)))
        head = features.take(slice(0, b))
        outputs.append(model.mask_decoder(head.embedding, model.prompt_encoder.get_dense_pe(), sparse, dense,
                                          head.high_res))
    rest = task.targets.shape[0] - b
    if rest > 0:
        part = features.take(slice(b, None))
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


def _ones(n: int, task: PromptTask) -> torch.Tensor:
    return torch.ones(n, 1, dtype=torch.int64, device=task.images.device)


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


USER_MIN_DEPTH = 2
"""The simulated user's ``min_depth`` (:func:`~seglib.data.prompts.correction_clicks`): errors one or two
pixels wide get no click, the mask is kept."""


class ClickScores(NamedTuple):
    """Per-object IoUs of :func:`click_ious`: ``clicks`` float64 ``(N, K)`` after 1..K clicks, ``box`` ``(N,)``."""

    clicks: torch.Tensor
    box: torch.Tensor


@torch.no_grad()
def click_ious(model: SmallSam, scenes: SceneBatch | None = None, clicks: int = 3,
               batch_size: int = 256) -> ClickScores:
    """IoU of every object of the test scenes after 1..``clicks`` clicks, and with a box.

    The protocol is deterministic: the first click at the pixel farthest from
    the object's outline; each further click at the error pixel farthest from
    its error region's outline (:func:`~seglib.data.prompts.correction_clicks`
    with ``min_depth=USER_MIN_DEPTH``: where every error is thinner, the user
    does not click and the mask stays), with the previous logits as mask
    prompt; the box is the exact box. After one click the mask with the
    highest *predicted* IoU is taken (what a user sees), after more clicks
    and for a box the single-mask output.

    Args:
        model: a :class:`SmallSam`.
        scenes: default :func:`evaluation_scenes`.
        clicks: number of clicks, at least 1.
        batch_size: objects decoded at once.
    """
    if isinstance(clicks, bool) or not isinstance(clicks, int) or clicks < 1:
        raise ValueError(f"clicks must be an int >= 1, got {clicks!r}")
    scenes = scenes if scenes is not None else evaluation_scenes()
    device = next(model.parameters()).device
    scene_index, slot = scenes.valid.nonzero(as_tuple=True)
    per_click, per_box = [], []
    with eval_mode(model):
        encoded = encode_images(model, scenes.images, batch_size)
        for start in range(0, len(scene_index), batch_size):
            rows, slots = scene_index[start:start + batch_size], slot[start:start + batch_size]
            targets = scenes.masks[rows, slots].to(device)
            features = encoded.take(rows.to(device))
            points, labels = center_clicks(targets)[:, None], torch.ones(len(rows), 1, dtype=torch.int64, device=device)
            masks, iou = model.decode(features, points, labels, multimask_output=True)
            logits = select_best_mask(masks, iou)[0]
            scores = [paired_iou(logits > 0, targets)]
            for _ in range(1, clicks):
                point, label = correction_clicks(logits > 0, targets, min_depth=USER_MIN_DEPTH)
                points = torch.cat([points, point[:, None]], dim=1)
                labels = torch.cat([labels, label[:, None]], dim=1)
                new = model.decode(features, points, labels, mask_inputs=logits.unsqueeze(1),
                                   multimask_output=False)[0][:, 0]
                logits = torch.where((label >= 0).view(-1, 1, 1), new, logits)
                scores.append(paired_iou(logits > 0, targets))
            per_click.append(torch.stack(scores, dim=1).double().cpu())
            box_logits = model.decode(features, boxes=scenes.boxes[rows, slots].to(device), multimask_output=False)[0]
            per_box.append(paired_iou(box_logits[:, 0] > 0, targets).double().cpu())
    return ClickScores(torch.cat(per_click), torch.cat(per_box))


def click_curve(scores: ClickScores, resamples: int = 1000) -> dict[str, list[Estimate]]:
    """Mean IoU after each click and the change each click brings, with 95 % bootstrap intervals over objects.

    Returns:
        ``{"mean": [Estimate after click 1, ...], "gain": [Estimate of click 2 - click 1, ...]}``.
    """
    values = scores.clicks
    n = len(values)

    def estimate(column: torch.Tensor) -> Estimate:
        low, high = bootstrap_interval(lambda index: float(column[index].mean()), n, resamples=resamples)
        return Estimate(float(column.mean()), low, high)

    gains = values.diff(dim=1)
    return {"mean": [estimate(values[:, k]) for k in range(values.shape[1])],
            "gain": [estimate(gains[:, k]) for k in range(gains.shape[1])]}


def box_fill(scenes: SceneBatch) -> torch.Tensor:
    """Share of its box each object fills, float ``(N,)`` in the order of :func:`click_ious`."""
    rows, slots = scenes.valid.nonzero(as_tuple=True)
    boxes = scenes.boxes[rows, slots]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return scenes.masks[rows, slots].flatten(1).sum(1) / area.clamp(min=1)


@torch.no_grad()
def refinement_ious(model: SmallSam, scenes: SceneBatch | None = None, rounds: int = 2) -> torch.Tensor:
    """IoU of every test object after one central click, then after feeding the logits back ``rounds`` times.

    Each round decodes the same click again with the previous low-resolution
    logits as the mask prompt (single-mask output), as SAM's predictor is used
    to refine its own answer. Returns float64 ``(N, rounds + 1)``.
    """
    scenes = scenes if scenes is not None else evaluation_scenes()
    rows, slots = scenes.valid.nonzero(as_tuple=True)
    targets = scenes.masks[rows, slots]
    with eval_mode(model):
        features = encode_images(model, scenes.images).take(rows)
        points, labels = center_clicks(targets)[:, None], torch.ones(len(rows), 1, dtype=torch.int64)
        logits = select_best_mask(*model.decode(features, points, labels))[0]
        ious = [paired_iou(logits > 0, targets)]
        for _ in range(rounds):
            logits = model.decode(features, points, labels, mask_inputs=logits[:, None], multimask_output=False)[0][:, 0]
            ious.append(paired_iou(logits > 0, targets))
    return torch.stack(ious, dim=1).double()


@torch.no_grad()
def box_negative_ious(model: SmallSam, nested: SceneBatch, whole_of: torch.Tensor) -> torch.Tensor:
    """On every nested spot: IoU with "the shape without its spot" of the shape's box, and of the box plus
    a negative click on the spot. ``nested, whole_of`` from :func:`~seglib.data.prompts.nest_spots`;
    returns float64 ``(N, 2)``."""
    rows, spot = (whole_of >= 0).nonzero(as_tuple=True)
    shape = whole_of[rows, spot]
    target = nested.masks[rows, shape]                          # the shape's visible pixels: the spot left out
    boxes = nested.boxes[rows, shape]
    negative = center_clicks(nested.masks[rows, spot])[:, None]
    with eval_mode(model):
        features = model.encode(nested.images[rows])
        box_only = model.decode(features, boxes=boxes, multimask_output=False)[0][:, 0]
        with_click = model.decode(features, negative, torch.zeros(len(rows), 1, dtype=torch.int64), boxes,
                                  multimask_output=False)[0][:, 0]
    return torch.stack([paired_iou(box_only > 0, target), paired_iou(with_click > 0, target)], dim=1).double()


def evaluate(model, scenes: SceneBatch | None = None, clicks: int = 3, batch_size: int = 256) -> dict[str, float]:
    """Mean IoU over every object of the test scenes for 1..``clicks`` clicks and a box (:func:`click_ious`).

    A :class:`~seglib.models.promptable.memory.VideoSam` is measured on video
    instead (:func:`~seglib.tracking.video_metrics`).

    Returns:
        ``{"click1_miou": ..., ..., "click{clicks}_miou": ..., "box_miou": ...,
        "objects": n}``.
    """
    if isinstance(model, VideoSam):
        return video_metrics(model)
    scores = click_ious(model, scenes, clicks, batch_size)
    result = {f"click{k + 1}_miou": round(float(v), 4) for k, v in enumerate(scores.clicks.mean(dim=0))}
    result["box_miou"] = round(float(scores.box.mean()), 4)
    result["objects"] = float(len(scores.box))
    return result


LOSSES = ("promptable", "video")
"""Loss names of :func:`train`: :func:`promptable_loss` on :func:`simulate_prompts` (a
:class:`SmallSam`), :func:`~seglib.tracking.video_loss` on :func:`~seglib.tracking.unroll` (a :class:`VideoSam`)."""

MEMORY_KWARGS = {"sam_kwargs": {"image_size": 64, "embed_dim": 64, "widths": [16, 32, 64], "encoder_depth": 2,
                                "decoder_depth": 2, "heads": 4, "mlp_dim": 128, "dense_points": True,
                                "scored_iou": True},
                 "layers": 1, "heads": 4, "mlp_dim": 128, "max_age": 8}
"""The builder arguments of the zoo's video entries (``build_video_sam``)."""

ZOO_ENTRIES: dict[str, Recipe] = {
    "promptable": Recipe(lab="sam", builder="small_sam",
                         kwargs={"image_size": 64, "embed_dim": 64, "widths": [16, 32, 64], "encoder_depth": 2,
                                 "decoder_depth": 2, "heads": 4, "mlp_dim": 128, "dense_points": True,
                                 "scored_iou": True},
                         steps=20000, batch_size=16, lr=3e-3, loss="promptable", seed=0),
    "memory": Recipe(lab="sam", builder="video_sam", kwargs=MEMORY_KWARGS, steps=1500, batch_size=8, lr=2e-3, loss="video", seed=0, eval_every=300),
}
"""The zoo entries ``promptable`` and ``memory`` (``make zoo NAME=...``); ``memory`` starts from ``promptable``."""


def init_entry(name: str, model, device) -> None:
    """The zoo's hook: the ``memory`` entry starts from the ``promptable`` entry's small SAM."""
    if name == "memory":
        from seglib import zoo

        model.sam.load_state_dict(zoo.load("promptable").state_dict())


def curve_evaluator() -> Callable[[SmallSam], dict[str, float]]:
    """``model -> {"click1_miou", ...}`` on 64 validation scenes, one click per object (the training curve)."""
    val = split_scenes("val", SceneConfig(min_objects=1), n=64)
    return lambda model: evaluate(model, val, clicks=1)


def train(model: SmallSam, steps: int = 400, *, batch_size: int = 12, lr: float = 3e-3, loss: str = "promptable",
          prompts_per_image: int = 1, seed: int = 0, eval_every: int | None = None,
          evaluate: Callable[[SmallSam], dict] | None = None, device: torch.device | str = "cpu",
          progress: bool = True, desc: str = "small SAM") -> History:
    """Train a small SAM in place on simulated prompts.

    Notebook 06's live run in the cpu profile is 400 steps of 12 prompts, two
    per scene (about 50 s on an idle 2-core AVX-512 CPU, 90 s on an AVX2
    one); the zoo's checkpoint, one prompt per scene. Seed everything (``seglib.seed_everything``) before
    building the model for a repeatable run.

    Args:
        model: a :class:`SmallSam` (:func:`~seglib.models.promptable.build_small_sam`).
        steps: fixed number of optimisation steps.
        batch_size: prompts per step.
        lr: peak learning rate of AdamW (cosine decay).
        loss: ``"promptable"``, or ``"video"`` for a :class:`VideoSam`.
        prompts_per_image: prompts per scene of a ``"promptable"`` batch (see
            :func:`~seglib.data.prompts.prompt_tasks`).
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
    if loss == "video":
        if not isinstance(model, VideoSam):
            raise TypeError(f"loss 'video' trains a VideoSam, got {type(model).__name__}")
        for part in (model.sam.image_encoder, model.sam.prompt_encoder):
            part.requires_grad_(False)  # fixed weights; the encoder's batch norms still adapt to the clips
        if evaluate is None and eval_every:
            val = generate_clips(16, 20, seed=VALIDATION_SEED)
            evaluate = lambda m: video_metrics(m, val)  # noqa: E731
        return train_loop(model, clip_batches(batch_size, seed=seed, device=device), video_loss,
                          steps=steps, lr=lr, forward=unroll, evaluate=evaluate, eval_every=eval_every,
                          device=device, channels_last=False, progress=progress, desc=desc)
    if evaluate is None and eval_every:
        evaluate = curve_evaluator()
    batches = prompt_tasks(batch_size, seed=seed, device=device, prompts_per_image=prompts_per_image)
    return train_loop(model, batches, promptable_loss, steps=steps, lr=lr, forward=simulate_prompts,
                      evaluate=evaluate, eval_every=eval_every, device=device, channels_last=False,
                      progress=progress, desc=desc)


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
        point, label = correction_clicks(mask[None], target[None], min_depth=USER_MIN_DEPTH)
        if int(label) < 0:  # nothing left to correct
            rounds.append(dict(rounds[-1]))
            continue
        points, labels = torch.cat([points, point]), torch.cat([labels, label])
        prediction = predictor.predict(points, labels, mask_input=logits, multimask_output=False)
        mask, logits = prediction.masks[0].cpu(), prediction.low_res_logits[:1]
        rounds.append({"points": points, "labels": labels, "mask": mask, "iou": float(paired_iou(mask, target))})
    return rounds



def show_click_rounds(predictor, scenes, objects: list[tuple[int, int]], clicks: int = 3, size: float = 2.4):
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
            show_points(result["points"], result["labels"], ax=ax, size=260)
        box = scenes.boxes[i, slot]
        mask = predictor.predict(box=box, multimask_output=False).masks[0].cpu()
        picture = overlay_boxes(highlight(image, mask).float() / 255, box[None], labels=torch.tensor([5]), width=1)
        show_image(picture, ax=axes[row, clicks], title=f"box: IoU {float(paired_iou(mask, target)):.2f}")
        show_image(highlight(image, target), ax=axes[row, clicks + 1], title="target")
    fig.tight_layout()
    return fig
