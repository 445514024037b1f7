"""Headline metrics of a notebook run.

A notebook's results cell calls ``record("fcn8s_miou", 0.91)`` for each number
its text relies on. With ``SEGLIB_REPORT=path.json`` set (the benchmark sets
it per notebook), every call rewrites that file with one JSON object:
``{"profile": ..., "device": ..., "metrics": {name: value, ...}}``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

REPORT_VARIABLE = "SEGLIB_REPORT"
_metrics: dict[str, float] = {}


def record(name: str, value: float) -> float:
    """Record headline metric ``name`` (letters, digits, ``_ . -``) with a finite number."""
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_.-" for c in name):
        raise ValueError(f"name must be a non-empty string of letters, digits, '_', '.', '-', got {name!r}")
    if isinstance(value, bool):
        raise TypeError(f"value of {name!r} must be a number, got bool")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"value of {name!r} must be a number, got {type(value).__name__}") from None
    if not math.isfinite(number):
        raise ValueError(f"value of {name!r} must be finite, got {number}")
    _metrics[name] = number
    path = os.environ.get(REPORT_VARIABLE)
    if path:
        _write(Path(path))
    return number


def recorded() -> dict[str, float]:
    """A copy of the metrics recorded so far in this process."""
    return dict(_metrics)


def clear() -> None:
    """Forget the recorded metrics."""
    _metrics.clear()


def _write(path: Path) -> None:
    from seglib.env import device, profile

    payload = {"profile": profile(), "device": str(device()), "metrics": recorded()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(handle.name, path)
