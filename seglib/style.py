"""The course's figure style, applied by :func:`seglib.setup`.

Figures are drawn for a projected 1280 x 720 slide and a laptop screen: at
:data:`DPI` dots per inch a figure ``figsize`` inches wide is shown ``100 *
width`` pixels wide (a 9-inch figure: 900 px), and text of ``10`` points is
about 14 px tall, so tick labels, legends and captions stay readable from the
back of a room. Notebooks set figure sizes, not resolutions.
"""

from __future__ import annotations

DPI = 100
"""Dots per inch of inline figures and of saved ones."""

MIN_FONT_POINTS = 9
"""The smallest font size a figure of the course uses (about 12.5 px at :data:`DPI`)."""

COURSE_STYLE: dict[str, object] = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.title_fontsize": 10,
    "figure.titlesize": 13,
    "lines.linewidth": 2.0,
}
"""matplotlib rcParams of the course style."""


def use_course_style() -> None:
    """Apply :data:`COURSE_STYLE` to matplotlib (inline figures drawn after this call use it)."""
    import matplotlib

    matplotlib.rcParams.update(COURSE_STYLE)
