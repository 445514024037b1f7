"""The one training loop every notebook uses.

``train(model, batches, loss_fn, steps=...)`` or ``seconds=...`` runs AdamW
with a cosine learning-rate decay over the budget, shows a tqdm progress bar,
and returns a :class:`History` of the loss and of periodic evaluations.

On CUDA it uses bf16 (or fp16 with a gradient scaler) autocast and
channels_last, and it never synchronises with the host inside a step: the
loss is summed on the device and read back every ``log_every`` steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm


class Run(NamedTuple):
    """A trained model and the :class:`History` of its training."""

    model: nn.Module
    history: "History"


@dataclass
class History:
    """What a training run logged.

    ``steps``, ``seconds`` and ``loss`` are aligned lists (the loss is the mean
    over the last ``log_every`` steps); ``evals`` holds one dict per
    evaluation with keys ``step``, ``seconds`` and the evaluator's metrics.
    """

    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return self.steps[-1] if self.steps else 0

    @property
    def total_seconds(self) -> float:
        return self.seconds[-1] if self.seconds else 0.0

    @property
    def seconds_per_step(self) -> float:
        """Median seconds per training step between log points (NaN before the first log).

        The median skips the intervals that also ran an evaluation or warmed up.
        """
        if not self.steps:
            return math.nan
        steps, seconds = [0] + self.steps, [0.0] + self.seconds
        rates = sorted((seconds[i + 1] - seconds[i]) / (steps[i + 1] - steps[i]) for i in range(len(self.steps)))
        middle = len(rates) // 2
        return rates[middle] if len(rates) % 2 else (rates[middle - 1] + rates[middle]) / 2


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _check_budget(steps, seconds) -> None:
    if steps is None and seconds is None:
        raise ValueError("give a budget: steps=... or seconds=... (or both)")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")


def train(
    model: nn.Module,
    batches: Iterator,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    steps: int | None = None,
    seconds: float | None = None,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    optimizer: torch.optim.Optimizer | None = None,
    schedule: str = "cosine",
    warmup_steps: int = 20,
    grad_clip: float | None = 1.0,
    evaluate: Callable[[nn.Module], dict] | None = None,
    eval_every: int | None = None,
    log_every: int = 10,
    device: torch.device | str | None = None,
    amp: bool | None = None,
    channels_last: bool | None = None,
    forward: Callable[[nn.Module, object], torch.Tensor] | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` in place on ``batches`` for a step and/or time budget.

    Args:
        model: returns logits (or whatever ``loss_fn`` takes) for the inputs.
        batches: iterator of ``(inputs, targets)``; tensors are moved to the
            device if they are not there already (generate them there instead).
        loss_fn: ``loss_fn(outputs, targets)`` -> scalar tensor.
        steps, seconds: the budget; training stops at whichever comes first.
        lr, weight_decay: AdamW settings (ignored when ``optimizer`` is given).
        schedule: ``"cosine"`` (warm-up then cosine decay to 0 over the budget,
            measured in steps or, with only ``seconds``, in elapsed time) or
            ``"constant"``.
        grad_clip: maximum gradient norm, ``None`` for no clipping.
        evaluate: ``evaluate(model)`` -> dict of metrics, run every
            ``eval_every`` steps and at the end (model in eval mode meanwhile).
        log_every: steps between reads of the loss from the device.
        device: default: the model's device.
        amp: autocast (bf16, else fp16 with a scaler); default on for CUDA.
        channels_last: memory format for 4-D inputs; default on for CUDA.
        forward: ``forward(model, inputs)`` -> outputs, when the model needs
            more than ``model(inputs)``.
        progress: show a tqdm progress bar.

    Returns:
        The :class:`History` of the run (the model is trained in place).
    """
    _check_budget(steps, seconds)
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    amp_dtype = _autocast_dtype(device) if amp is not False else None
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    forward = forward or (lambda m, x: m(x))

    history = History()
    running = torch.zeros((), device=device)
    bar = tqdm(total=steps if steps is not None else round(seconds), desc=desc, disable=not progress,
               unit="step" if steps is not None else "s")
    start = time.perf_counter()
    model.train()
    step = 0
    while True:
        elapsed = time.perf_counter() - start
        fraction = max(step / steps if steps else 0.0, elapsed / seconds if seconds else 0.0)
        if fraction >= 1.0:
            break
        _set_lr(optimizer, base_lrs, schedule, step, warmup_steps, fraction)
        inputs, targets = _to_device(next(batches), device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss = loss_fn(forward(model, inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        running += loss.detach().float()
        step += 1
        if step % log_every == 0:
            _log(history, step, time.perf_counter() - start, running.item() / log_every, bar)
            running.zero_()
        if steps is not None:
            bar.update(1)
        else:
            bar.n = min(round(time.perf_counter() - start), bar.total)
            bar.refresh()
        if evaluate is not None and eval_every and step % eval_every == 0:
            _evaluate(model, evaluate, history, step, time.perf_counter() - start)
    if step % log_every:
        _log(history, step, time.perf_counter() - start, running.item() / (step % log_every), bar)
    if evaluate is not None and (not history.evals or history.evals[-1]["step"] != step):
        _evaluate(model, evaluate, history, step, time.perf_counter() - start)
    bar.close()
    model.eval()
    return history


def _set_lr(optimizer, base_lrs, schedule, step, warmup_steps, fraction) -> None:
    factor = 1.0
    if schedule == "cosine":
        factor = 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0)))
        if step < warmup_steps:
            factor *= (step + 1) / warmup_steps
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * factor


def _to_device(batch, device, channels_last):
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ValueError("batches must yield (inputs, targets) pairs")
    inputs, targets = batch
    if isinstance(inputs, torch.Tensor):
        inputs = inputs.to(device, non_blocking=True)
        if channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
    if isinstance(targets, torch.Tensor):
        targets = targets.to(device, non_blocking=True)
    return inputs, targets


def _log(history: History, step: int, seconds: float, loss: float, bar) -> None:
    if not math.isfinite(loss):
        raise FloatingPointError(f"training loss became {loss} at step {step}; lower the learning rate")
    history.steps.append(step)
    history.seconds.append(seconds)
    history.loss.append(loss)
    bar.set_postfix(loss=f"{loss:.3f}")


def _evaluate(model, evaluate, history: History, step: int, seconds: float) -> None:
    model.eval()
    with torch.no_grad():
        metrics = evaluate(model)
    model.train()
    history.evals.append({"step": step, "seconds": seconds, **metrics})
