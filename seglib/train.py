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
import numbers
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm

from seglib.validation import check_choice, check_int


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


def _check_number(name: str, value: object, expected: str, ok: Callable[[float], bool],
                  allow_none: bool = False) -> float | None:
    """``value`` as a float if it is a real number (not a bool) for which ``ok`` holds; else raise naming ``name``.

    ``expected`` reads like ``"a positive number"``; `` or None`` is appended when ``allow_none``.
    """
    if value is None and allow_none:
        return None
    expected += " or None" if allow_none else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    if not ok(float(value)):  # NaN fails every comparison, so it lands here
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def _check_budget(steps, seconds) -> None:
    if steps is None and seconds is None:
        raise ValueError("give a budget: steps=... or seconds=... (or both)")
    if steps is not None:
        check_int("steps", steps, 1)
    _check_number("seconds", seconds, "a positive number", lambda v: 0 < v < math.inf, allow_none=True)


def _check_callable(name: str, value: object, allow_none: bool = False) -> None:
    if not (callable(value) or (allow_none and value is None)):
        raise TypeError(f"{name} must be callable{' or None' if allow_none else ''}, got {type(value).__name__}")


def _check_arguments(model, loss_fn, steps, seconds, lr, weight_decay, optimizer, schedule, warmup_steps,
                     grad_clip, evaluate, eval_every, log_every, forward) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_callable("loss_fn", loss_fn)
    _check_budget(steps, seconds)
    _check_number("lr", lr, "a number > 0", lambda v: 0 < v < math.inf)
    _check_number("weight_decay", weight_decay, "a number >= 0", lambda v: 0 <= v < math.inf)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    check_choice("schedule", schedule, ("cosine", "constant"))
    check_int("warmup_steps", warmup_steps, 0)
    _check_number("grad_clip", grad_clip, "a number > 0", lambda v: v > 0, allow_none=True)
    _check_callable("evaluate", evaluate, allow_none=True)
    if eval_every is not None:
        check_int("eval_every", eval_every, 1)
    check_int("log_every", log_every, 1)
    _check_callable("forward", forward, allow_none=True)


class _Batches:
    """Endless ``next()`` over ``batches``: a re-iterable (a list, a DataLoader) starts a new pass when
    one ends; a one-shot iterator (a generator) that runs out raises ``ValueError``."""

    def __init__(self, batches: Iterable, steps: int | None, seconds: float | None) -> None:
        try:
            self.iterator = iter(batches)
        except TypeError:
            raise TypeError("batches must be an iterable of (inputs, targets) pairs (a generator, a list, "
                            f"a DataLoader), got {type(batches).__name__}") from None
        self.source = None if self.iterator is batches else batches  # None: one-shot
        self.steps, self.seconds, self.count, self.in_pass = steps, seconds, 0, 0

    def __next__(self):
        try:
            batch = next(self.iterator)
        except StopIteration:
            if self.source is None or self.in_pass == 0:
                raise ValueError(self._ran_out()) from None
            self.iterator, self.in_pass = iter(self.source), 0
            return next(self)
        self.count += 1
        self.in_pass += 1
        return batch

    def _ran_out(self) -> str:
        kind = type(self.source if self.source is not None else self.iterator).__name__
        if self.source is not None:
            after = f"a new pass after {self.count} batch(es)" if self.count else "its first pass"
            return f"batches is empty: {after} over the {kind} gave no batch"
        asked = (f"{self.steps} steps were asked" if self.steps is not None
                 else f"the seconds={self.seconds} budget was not spent")
        return (f"batches (a one-shot {kind}) ran out after giving {self.count} batch(es), but {asked}; "
                "pass an endless generator, a re-iterable such as a list or a DataLoader (it is cycled), "
                "or a smaller budget")


def train(
    model: nn.Module,
    batches: Iterable,
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
        batches: ``(inputs, targets)`` pairs: an iterator (an endless generator),
            or a re-iterable such as a list or a DataLoader, which is cycled
            (a new pass starts when one ends). Tensors are moved to the device
            if they are not there already (generate them there instead).
        loss_fn: ``loss_fn(outputs, targets)`` -> scalar tensor.
        steps, seconds: the budget (an int >= 1, a number > 0); training stops
            at whichever comes first.
        lr, weight_decay: AdamW settings, a number > 0 and >= 0 (ignored when
            ``optimizer`` is given).
        schedule: ``"cosine"`` (warm-up then cosine decay to 0 over the budget,
            measured in steps or, with only ``seconds``, in elapsed time) or
            ``"constant"``.
        warmup_steps: steps of linear warm-up (int >= 0) of the cosine schedule.
        grad_clip: maximum gradient norm, a number > 0; ``None`` for no clipping.
        evaluate: ``evaluate(model)`` -> dict of metrics, run every
            ``eval_every`` steps (int >= 1; ``None``: only at the end) and at
            the end (model in eval mode meanwhile).
        log_every: steps between reads of the loss from the device (int >= 1).
        device: default: the model's device.
        amp: autocast (bf16, else fp16 with a scaler); default on for CUDA.
        channels_last: memory format for 4-D inputs; default on for CUDA.
        forward: ``forward(model, inputs)`` -> outputs, when the model needs
            more than ``model(inputs)``.
        progress: show a tqdm progress bar.

    Returns:
        The :class:`History` of the run (the model is trained in place).

    Raises:
        TypeError: an argument of the wrong type (``batches`` not iterable,
            ``steps`` not an int, ``grad_clip`` not a number ...).
        ValueError: no budget, a value out of range (``grad_clip <= 0`` or NaN,
            ``lr <= 0`` ...), batches that are not pairs, an empty re-iterable,
            or a one-shot iterator that runs out before the budget is spent.
        FloatingPointError: the loss became NaN or infinite.
    """
    _check_arguments(model, loss_fn, steps, seconds, lr, weight_decay, optimizer, schedule, warmup_steps,
                     grad_clip, evaluate, eval_every, log_every, forward)
    batches = _Batches(batches, steps, seconds)
    first = next(model.parameters(), None)
    if first is None:
        raise ValueError("model must have parameters to train, got a model with none")
    device = torch.device(device) if device is not None else first.device
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
    try:
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
    finally:
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
        got = f"a {type(batch).__name__} of length {len(batch)}" if isinstance(batch, (tuple, list)) else \
            type(batch).__name__
        raise ValueError(f"batches must yield (inputs, targets) pairs, got {got}")
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
