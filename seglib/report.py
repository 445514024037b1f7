"""Headline metrics and the claims ledger of a notebook run.

A notebook's results cell records the numbers its text relies on:

* ``record("fcn8s_miou", 0.91)``: a headline metric;
* ``claim("fcn.skips_help", "FCN-8s beats FCN-32s on mIoU", measured=gain,
  threshold=0.0, interval=(low, high))``: a sentence of the text that states a
  result, with its measurement, the threshold it must clear and, for a
  comparison of trained models, the uncertainty interval of the measurement.

``check_claims()`` prints the ledger and raises ``AssertionError`` naming every
claim that does not hold, so a broken experiment fails the notebook.

With ``SEGLIB_REPORT=path.json`` set (the benchmark sets it per notebook), every
call rewrites that file with one JSON object: ``{"profile": ..., "device": ...,
"metrics": {name: value}, "claims": {name: {"statement", "measured",
"threshold", "relation", "interval", "holds"}}}``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seglib.common import markdown_table

REPORT_VARIABLE = "SEGLIB_REPORT"
RELATIONS = (">", "<", "tie")
_metrics: dict[str, float] = {}
_claims: dict[str, "Claim"] = {}


@dataclass(frozen=True)
class Claim:
    """One sentence of a notebook's text and the measurement behind it.

    ``relation`` says what the sentence asserts about ``measured``:

    * ``">"``: it exceeds ``threshold`` (and so does the whole ``interval``);
    * ``"<"``: it stays below ``threshold`` (and so does the whole ``interval``);
    * ``"tie"``: the ``interval`` (required) contains ``threshold``: a difference
      inside the noise.
    """

    statement: str
    measured: float
    threshold: float
    relation: str = ">"
    interval: tuple[float, float] | None = None

    @property
    def holds(self) -> bool:
        """Whether the measurement (and its interval) supports the statement."""
        low, high = self.interval if self.interval is not None else (self.measured, self.measured)
        if self.relation == ">":
            return self.measured > self.threshold and low > self.threshold
        if self.relation == "<":
            return self.measured < self.threshold and high < self.threshold
        return low <= self.threshold <= high

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: the fields, ``interval`` as a list or None, and ``holds``."""
        data = asdict(self)
        data["interval"] = list(self.interval) if self.interval is not None else None
        data["holds"] = self.holds
        return data


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_.-" for c in name):
        raise ValueError(f"name must be a non-empty string of letters, digits, '_', '.', '-', got {name!r}")
    return name


def _finite(what: str, value: object) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number, got bool")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {number}")
    return number


def record(name: str, value: float) -> float:
    """Record headline metric ``name`` (letters, digits, ``_ . -``) with a finite number."""
    _check_name(name)
    _metrics[name] = _finite(f"value of {name!r}", value)
    _write_if_asked()
    return _metrics[name]


def claim(name: str, statement: str, measured: Any, threshold: float, *,
          interval: tuple[float, float] | None = None, relation: str = ">") -> Claim:
    """Record that the sentence ``statement`` rests on ``measured`` versus ``threshold``.

    Args:
        name: identifier of the claim (letters, digits, ``_ . -``); markdown cells
            link to it with ``<!-- claim: name -->``.
        statement: the sentence of the text, in short.
        measured: a finite number, or an object with ``value`` and ``interval``
            (:class:`seglib.metrics.uncertainty.Estimate`), whose interval is used.
        threshold: the value the measurement must clear (``0`` for a difference).
        interval: ``(low, high)`` uncertainty of ``measured`` (seeds or a
            bootstrap over test scenes), ``low <= measured <= high``; required
            for ``relation="tie"``.
        relation: ``">"``, ``"<"`` or ``"tie"`` (see :class:`Claim`).

    Returns:
        The :class:`Claim`; it does not raise when the claim fails (the results
        cell calls :func:`check_claims`).
    """
    _check_name(name)
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement of {name!r} must be a non-empty sentence, got {statement!r}")
    if hasattr(measured, "value") and hasattr(measured, "interval"):
        if interval is not None:
            raise ValueError(f"interval of {name!r}: measured already carries an interval, got interval={interval!r}")
        measured, interval = measured.value, measured.interval
    value = _finite(f"measured of {name!r}", measured)
    limit = _finite(f"threshold of {name!r}", threshold)
    if relation not in RELATIONS:
        raise ValueError(f"relation of {name!r} must be one of {RELATIONS}, got {relation!r}")
    if interval is not None:
        if not isinstance(interval, (tuple, list)) or len(interval) != 2:
            raise TypeError(f"interval of {name!r} must be a pair (low, high), got {interval!r}")
        low, high = (_finite(f"interval of {name!r}", v) for v in interval)
        if not low <= value <= high:
            raise ValueError(f"interval of {name!r} must contain measured {value:.4g}, got ({low:.4g}, {high:.4g})")
        interval = (low, high)
    elif relation == "tie":
        raise ValueError(f"relation='tie' of {name!r} needs an interval (a tie is a difference inside the noise)")
    _claims[name] = Claim(statement.strip(), value, limit, relation, interval)
    _write_if_asked()
    return _claims[name]


def recorded() -> dict[str, float]:
    """A copy of the metrics recorded so far in this process."""
    return dict(_metrics)


def claims() -> dict[str, Claim]:
    """A copy of the claims recorded so far in this process."""
    return dict(_claims)


def ledger(entries: dict[str, Claim] | None = None) -> str:
    """The claims as a Markdown table: name, statement, measured, interval, relation, holds."""
    entries = claims() if entries is None else entries
    rows = [[name, c.statement, f"{c.measured:.4g}",
             "" if c.interval is None else f"[{c.interval[0]:.4g}, {c.interval[1]:.4g}]",
             f"{c.relation} {c.threshold:.4g}", "yes" if c.holds else "**NO**"]
            for name, c in entries.items()]
    return markdown_table(["claim", "statement", "measured", "interval", "needs", "holds"], rows, align="llrlll")


def check_claims() -> dict[str, Claim]:
    """Print the ledger; raise ``AssertionError`` naming every claim that does not hold."""
    entries = claims()
    if not entries:
        raise AssertionError("no claim was recorded: the results cell must record the claims of the text")
    print(ledger(entries))
    failed = [f"{name}: {c.statement} (measured {c.measured:.4g}, interval {c.interval}, needs "
              f"{c.relation} {c.threshold:.4g})" for name, c in entries.items() if not c.holds]
    if failed:
        raise AssertionError("claims that the measurements do not support:\n" + "\n".join(failed))
    return entries


def clear() -> None:
    """Forget the recorded metrics and claims."""
    _metrics.clear()
    _claims.clear()


def _write_if_asked() -> None:
    path = os.environ.get(REPORT_VARIABLE)
    if path:
        _write(Path(path))


def _write(path: Path) -> None:
    from seglib.env import device, profile

    payload = {"profile": profile(), "device": str(device()), "metrics": recorded(),
               "claims": {name: c.as_dict() for name, c in _claims.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(handle.name, path)
