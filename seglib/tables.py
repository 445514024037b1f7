"""Result tables: an HTML table in Jupyter, aligned plain text elsewhere.

A notebook cell ends with ``Table(header, rows)``; Jupyter shows it as an HTML
table (on a slide too), ``print`` and ``str`` give aligned columns, and
:meth:`Table.markdown` the Markdown of ``BENCHMARKS.md``. Numbers are
formatted once, with ``digits``; :class:`~seglib.metrics.uncertainty.Estimate`
and other objects with their own ``str``.
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Sequence

from seglib.common import markdown_table


class Table:
    """A table of ``rows`` under ``header``.

    Args:
        header: column titles.
        rows: one sequence of cells per row, as long as ``header``.
        digits: decimals of float cells (ints and other objects are written as they are).
        caption: a line shown above the table.

    Raises:
        ValueError: an empty header, a row of another length, or ``digits`` not an int >= 0.
    """

    def __init__(self, header: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 3,
                 caption: str | None = None):
        if isinstance(header, str) or not header:
            raise ValueError(f"header must be a non-empty sequence of titles, got {header!r}")
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
            raise ValueError(f"digits must be an int >= 0, got {digits!r}")
        for i, row in enumerate(rows):
            if isinstance(row, str) or len(row) != len(header):
                raise ValueError(f"rows[{i}] must have {len(header)} cells like header, got {row!r}")
        self.header = [str(h) for h in header]
        self.cells = [[self._format(cell, digits) for cell in row] for row in rows]
        self.numeric = [all(isinstance(row[j], numbers.Number) for row in rows) if rows else False
                        for j in range(len(header))]
        self.caption = caption

    @staticmethod
    def _format(cell: object, digits: int) -> str:
        if isinstance(cell, bool) or not isinstance(cell, numbers.Real) or isinstance(cell, numbers.Integral):
            return str(cell)
        return f"{float(cell):.{digits}f}"

    def __str__(self) -> str:
        widths = [max([len(h)] + [len(row[j]) for row in self.cells]) for j, h in enumerate(self.header)]

        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if num else c.ljust(w)
                             for c, w, num in zip(cells, widths, self.numeric)).rstrip()

        lines = [self.caption] if self.caption else []
        lines += [line(self.header), "  ".join("-" * w for w in widths)] + [line(row) for row in self.cells]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        def cell(tag: str, text: str, numeric: bool) -> str:
            style = ' style="text-align:right"' if numeric else ' style="text-align:left"'
            return f"<{tag}{style}>{html.escape(text)}</{tag}>"

        head = "".join(cell("th", h, num) for h, num in zip(self.header, self.numeric))
        body = "".join("<tr>" + "".join(cell("td", c, num) for c, num in zip(row, self.numeric)) + "</tr>"
                       for row in self.cells)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f'<table class="seglib-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def markdown(self) -> str:
        """The table as Markdown (numeric columns right-aligned)."""
        return markdown_table(self.header, self.cells, align="".join("r" if n else "l" for n in self.numeric))
