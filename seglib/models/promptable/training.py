"""Training and evaluation of the small SAM with simulated prompts.

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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, NamedTuple

import torch
import torch.nn.functional as F

from seglib.data.prompts import center_clicks, correction_clicks, jitter_boxes, nest_spots, random_clicks
from seglib.data.shapes import SceneBatch, SceneConfig, scene_stream, split_scenes
from seglib.models.promptable.model import SmallSam, build_small_sam, paired_iou, select_best_mask

IOU_WEIGHT = 1.0
"""Weight of the IoU head's squared error in :func:`promptable_loss`."""

if TYPE_CHECKING:
    from seglib.zoo import ZooResult

EVAL_SCENES = 256
"""Test scenes of the evaluation (two chunks of the generator: a fixed prefix of the test split)."""


@dataclass
class PromptTask:
    """The inputs of one training step (see the module docstring).

    Attributes:
        images: float ``(B, 3, H, W)``.
        targets: bool ``(B, H, W)`` the mask each row's prompt asks for.
        clicks: float ``(B, 2)`` first positive click of every row.
        boxes: float ``(B, 4)`` jittered boxes of the object of every row.
        num_clicks, num_boxes: rows ``[0, num_clicks)`` are one-click rows,
            the next ``num_boxes`` box rows, the rest correction rows.
        corrections: correction clicks of the correction rows (1 or 2).
        generator: random source for the correction clicks.
        asks_whole: bool ``(B,)`` one-click rows whose click is on a nested
            spot and whose target is the whole thing under it.
    """

    images: torch.Tensor
    targets: torch.Tensor
    clicks: torch.Tensor
    boxes: torch.Tensor
    num_clicks: int
    num_boxes: int
    corrections: int
    generator: torch.Generator
    asks_whole: torch.Tensor


class PromptOutputs(NamedTuple):
    """What :func:`simulate_prompts` returns: all 4 outputs of every row, in batch order.

    ``masks`` float ``(B, 4, H, W)``, ``iou`` float ``(B, 4)``, ``multimask``
    bool ``(B,)`` (rows trained on outputs 1-3 rather than output 0).
    """

    masks: torch.Tensor
    iou: torch.Tensor
    multimask: torch.Tensor


def prompt_tasks(batch_size: int = 32, config: SceneConfig | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", click_fraction: float = 0.4, box_fraction: float = 0.3,
                 nest_fraction: float = 0.25) -> Iterator[tuple[PromptTask, torch.Tensor]]:
    """Endless ``(PromptTask, targets)`` training batches generated on ``device``.

    Args:
        batch_size: scenes (and prompts) per batch, at least 3.
        config: scene options (default :class:`SceneConfig`, 64 x 64).
        seed: seed of the scenes and of the prompts.
        click_fraction, box_fraction: shares of one-click and box rows; the
            rest are correction rows.
        nest_fraction: share of scenes that get a nested spot (ambiguous clicks).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 3:
        raise ValueError(f"batch_size must be an int >= 3, got {batch_size!r}")
    if not (0 <= click_fraction and 0 <= box_fraction and click_fraction + box_fraction <= 1):
        raise ValueError(f"click_fraction and box_fraction must be >= 0 with a sum <= 1, "
                         f"got {click_fraction} and {box_fraction}")
    config = config or SceneConfig(min_objects=1)
    if config.min_objects < 1:
        raise ValueError(f"config.min_objects must be at least 1 (every scene needs a target), got {config.min_objects}")
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(int(seed) + 1)
    num_clicks = round(batch_size * click_fraction)
    num_boxes = round(batch_size * box_fraction)
    for scenes in scene_stream(batch_size, config, seed=seed, device=device):
        scenes, whole_of = nest_spots(scenes, nest_fraction, generator)
        rows = torch.arange(batch_size, device=device)
        pick = torch.rand(scenes.valid.shape, generator=generator, device=device).masked_fill(~scenes.valid, -1)
        chosen = pick.argmax(dim=1)
        own = scenes.masks[rows, chosen]
        clicks = random_clicks(own, generator)
        # A click on a nested spot asks, half the time, for the whole thing under it.
        parent = whole_of[rows, chosen]
        whole = scenes.masks[rows, parent.clamp(min=0)] | own
        ask_whole = (parent >= 0) & (torch.rand(batch_size, generator=generator, device=device) < 0.5)
        ask_whole &= rows < num_clicks
        targets = torch.where(ask_whole[:, None, None], whole, own)
        boxes = jitter_boxes(scenes.boxes[rows, chosen], config.size, generator=generator)
        corrections = int(torch.randint(1, 3, (1,), generator=generator, device=device))
        yield (PromptTask(scenes.images, targets, clicks, boxes, num_clicks, num_boxes, corrections, generator,
                          ask_whole), targets)


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
    if logits.dim() != 4 or targets.shape != (logits.shape[0], *logits.shape[2:]):
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
def evaluate_promptable(model: SmallSam, scenes: SceneBatch | None = None, clicks: int = 3,
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
    was_training = model.training
    model.eval()
    scene_index, slot = scenes.valid.nonzero(as_tuple=True)
    totals = torch.zeros(clicks + 1, dtype=torch.float64)
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
    model.train(was_training)
    means = (totals / max(len(scene_index), 1)).tolist()
    result = {f"click{k + 1}_miou": round(means[k], 4) for k in range(clicks)}
    result["box_miou"] = round(means[clicks], 4)
    result["objects"] = float(len(scene_index))
    return result


def train_small_sam(model: SmallSam | None = None, steps: int = 800, batch_size: int = 12, lr: float = 3e-3,
                    seed: int = 0, device: torch.device | str = "cpu", evaluate_every: int | None = None,
                    progress: bool = True, desc: str = "small SAM"):
    """Train a small SAM on simulated prompts with :func:`seglib.train.train`.

    The defaults are the cpu profile's live run of the notebook: 800 steps
    of 12 scenes, about two minutes on an idle 2-core CPU.

    Args:
        model: default a fresh :func:`build_small_sam`.
        steps: fixed number of optimisation steps.
        batch_size: scenes (one prompt each) per step.
        lr: peak learning rate of AdamW (cosine decay).
        seed: seed of the initialisation, the scenes and the prompts.
        device: where to train (scenes are generated there).
        evaluate_every: steps between evaluations on 64 validation scenes
            (``None``: no evaluation during training).

    Returns:
        ``(model, history)``.
    """
    from seglib.env import seed_everything
    from seglib.train import train

    seed_everything(seed)
    model = model or build_small_sam()
    device = torch.device(device)
    model.to(device)
    evaluate = None
    if evaluate_every:
        val = split_scenes("val", SceneConfig(min_objects=1), n=64)
        evaluate = lambda m: evaluate_promptable(m, val, clicks=1)  # noqa: E731
    history = train(model, prompt_tasks(batch_size, seed=seed, device=device), promptable_loss,
                    steps=steps, lr=lr, forward=simulate_prompts, evaluate=evaluate, eval_every=evaluate_every,
                    device=device, channels_last=False, progress=progress, desc=desc)
    return model, history


ZOO_KWARGS = {"image_size": 64, "embed_dim": 64, "widths": [16, 32, 64], "encoder_depth": 2, "decoder_depth": 2,
              "heads": 4, "mlp_dim": 128, "dense_points": True, "scored_iou": True}
"""Builder arguments of the zoo entry ``promptable`` (:func:`build_small_sam`)."""

ZOO_TRAINING = {"steps": 20000, "batch_size": 16, "lr": 3e-3, "seed": 0}
"""Training budget of the zoo entry ``promptable``."""


def zoo_recipe(device: torch.device | str) -> "ZooResult":
    """The zoo recipe of entry ``promptable``: :data:`ZOO_TRAINING` with :func:`train_small_sam`.

    Run it with ``python -m seglib.zoo promptable``; the metrics of record are
    re-measured by :func:`evaluate_promptable` on the stored half-precision weights.
    """
    from seglib.zoo import ZooResult

    model, history = train_small_sam(build_small_sam(**ZOO_KWARGS), device=device, desc="small SAM (zoo)",
                                     **ZOO_TRAINING)
    model = model.cpu()
    return ZooResult(model=model, builder="seglib.models.promptable.model:build_small_sam", kwargs=dict(ZOO_KWARGS),
                     evaluator="seglib.models.promptable.training:evaluate_promptable",
                     metrics=evaluate_promptable(model),
                     training={**ZOO_TRAINING, "final_loss": round(history.loss[-1], 4),
                               "seconds": round(history.total_seconds, 1), "device": str(device)},
                     seed=ZOO_TRAINING["seed"])
