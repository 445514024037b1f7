"""Small primitives shared across seglib: evaluation mode, Markdown tables, the download timeout."""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

from torch import nn

DOWNLOAD_TIMEOUT_S = 20.0
"""Seconds a download (weights, datasets) waits for the server before it falls back."""


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore its training flag afterwards, even on error.

    Example::

        with eval_mode(model), torch.no_grad():
            logits = model(images)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A Markdown table of ``rows`` under ``header``; cells are written with ``str``.

    Args:
        header: column titles.
        rows: one sequence of cells per row, as long as ``header``.
        align: one character per column, ``"l"`` or ``"r"`` (default: all left).
    """
    if isinstance(header, str) or not header:
        raise ValueError(f"header must be a non-empty sequence of titles, got {header!r}")
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align must be {len(header)} characters of 'l' or 'r', got {align!r}")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] must have {len(header)} cells like header, got {len(row)}")
    rule = "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
