"""Losses as modules: sums of the functional losses.

* :class:`CombinedLoss`: a weighted sum such as CE + Dice, logging each part.
* :class:`AuxLoss`: cross entropy on a model's output plus a weighted cross
  entropy on its auxiliary head (``{"out": ..., "aux": ...}``), as in FCN's and
  DeepLab's torchvision versions and the U-Nets of notebook 03.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from seglib.data.shapes import IGNORE_INDEX
from seglib.losses.functional import _check_non_negative
from seglib.validation import check_label_map, check_logits, check_same_size, check_tensor


class CombinedLoss(nn.Module):
    """Weighted sum of losses, keeping each part for logging.

    Example::

        loss_fn = CombinedLoss({"ce": (cross_entropy, 1.0), "dice": (soft_dice_loss, 0.5)})
        loss = loss_fn(logits, target)      # 1.0 * ce + 0.5 * dice
        loss_fn.last_parts                  # {"ce": 0.71, "dice": 0.42}, unweighted floats

    Args:
        losses: ``{name: (fn, weight)}``; ``fn(logits, target)`` returns a
            scalar tensor, ``weight`` is a float ``>= 0``. Functions that are
            ``nn.Module`` become submodules (moved by ``.to(device)``).
    """

    def __init__(self, losses: dict[str, tuple[Callable[..., torch.Tensor], float]]) -> None:
        super().__init__()
        if not isinstance(losses, dict) or not losses:
            raise TypeError(f"losses must be a non-empty dict name -> (fn, weight), got {losses!r}")
        self.terms: dict[str, Callable[..., torch.Tensor]] = {}
        self.weights: dict[str, float] = {}
        for name, entry in losses.items():
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"losses: names must be non-empty strings without '.', got {name!r}")
            if not isinstance(entry, tuple) or len(entry) != 2 or not callable(entry[0]):
                raise TypeError(f"losses[{name!r}] must be a pair (fn, weight) with a callable fn, got {entry!r}")
            self.terms[name] = entry[0]
            self.weights[name] = _check_non_negative(f"losses[{name!r}] weight", entry[1])
        self.loss_modules = nn.ModuleDict({n: fn for n, fn in self.terms.items() if isinstance(fn, nn.Module)})
        self.last_parts: dict[str, float] = {}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return ``sum_name weight * fn(logits, target)`` and store the parts in ``last_parts``."""
        weighted, parts = [], {}
        for name, fn in self.terms.items():
            value = fn(logits, target)
            if not isinstance(value, torch.Tensor) or value.dim() != 0:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise TypeError(f"losses[{name!r}] must return a scalar tensor, got {got}")
            parts[name] = float(value.detach())
            weighted.append(self.weights[name] * value)
        self.last_parts = parts
        return sum(weighted)



class AuxLoss(nn.Module):
    """``loss(out, target) + weight * loss(aux, target)`` for models with an auxiliary head.

    ``outputs`` is either a logits tensor (then this is just ``loss``) or a
    dict with ``"out"`` and optionally ``"aux"`` logits, as returned by
    :class:`~seglib.models.unet.UNet` with ``aux_head=True`` in training mode and by torchvision's
    segmentation models with ``aux_loss=True``. Auxiliary logits at a lower
    resolution are upsampled bilinearly to the target's size first.

    Args:
        weight: weight of the auxiliary term, ``>= 0`` (torchvision's recipes use 0.5).
        loss_fn: ``loss_fn(logits (B,C,H,W), target (B,H,W)) -> scalar``;
            default: cross entropy ignoring label 255.
    """

    def __init__(self, weight: float = 0.5,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"weight must be a number >= 0, got {weight!r}")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.weight = float(weight)
        self.loss_fn = loss_fn or (lambda logits, target: F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX))

    def forward(self, outputs: torch.Tensor | dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        """The loss of ``outputs`` (logits ``(B, C, H, W)`` or ``{"out": ..., "aux": ...}``) against ``target``.

        The values of ``outputs`` and ``target`` are checked on the CPU only
        (on a GPU the check would make the host wait in every training step).
        """
        if not isinstance(outputs, (torch.Tensor, dict)) or (isinstance(outputs, dict) and "out" not in outputs):
            raise TypeError(f"outputs must be logits or a dict with 'out' (and 'aux'), got {type(outputs).__name__}")
        out = outputs if isinstance(outputs, torch.Tensor) else outputs["out"]
        on_cpu = out.device.type == "cpu"
        if on_cpu:
            check_logits("outputs", out)
        else:
            check_tensor("outputs", out, "(B, C, H, W)", "float")
        check_label_map("target", target, out.shape[1], values=on_cpu)
        check_same_size("target", target, "outputs", out)
        if isinstance(outputs, torch.Tensor):
            return self.loss_fn(outputs, target)
        loss = self.loss_fn(out, target)
        aux = outputs.get("aux")
        if aux is None or self.weight == 0:
            return loss
        if aux.shape[-2:] != target.shape[-2:]:
            aux = F.interpolate(aux, size=tuple(target.shape[-2:]), mode="bilinear", align_corners=False)
        return loss + self.weight * self.loss_fn(aux, target)
