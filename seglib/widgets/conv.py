"""Interactive figures: the convolution-arithmetic explorer.

:func:`draw_conv_arithmetic` is a pure drawing function (matplotlib only, any
backend), in the style of the well-known convolution-arithmetic animations:
the grid the kernel slides over, the kernel's footprint for one output cell,
and the output grid. A transposed convolution is drawn as the equivalent
direct convolution: ``stride - 1`` zeros inserted between the input cells,
``dilation*(k-1) - padding`` cells of zero padding on each side (plus
``output_padding`` cells on the bottom and right), and a kernel that moves by 1.

Drawing costs time per cell, so the figure is bounded: ``input_size`` is at
most :data:`MAX_INPUT_SIZE` and a drawing at most :data:`MAX_DRAWN_CELLS`
cells (grid plus output), about a second; every combination of the
explorer's sliders fits.

:func:`conv_explorer` wraps it in ipywidgets sliders. ipywidgets is imported
only there, so this module imports without it; the widget code uses only API
shared by ipywidgets 7.7 (Colab) and 8.
"""

from __future__ import annotations

import html
import itertools
import textwrap
from dataclasses import dataclass
from typing import Any

from seglib.ops.upsampling import (
    CONV_SIZE_FORMULA,
    CONV_TRANSPOSE_SIZE_FORMULA,
    conv_output_size,
    conv_transpose_output_size,
    explain_output_size,
)
from seglib.validation import check_int

COLORS = {
    "input": "#6baed6",
    "padding": "#eeeeee",
    "inserted zero": "#ffffff",
    "footprint": "#08306b",
    "output": "#a1d99b",
    "output cell": "#238b45",
}
HATCHES = {"input": None, "padding": "///", "inserted zero": ".."}
GAP = 2  # empty cells between the input grid and the output grid
MAX_INPUT_SIZE = 32
"""Largest ``input_size`` :func:`draw_conv_arithmetic` draws."""
MAX_DRAWN_CELLS = 3200
"""Most cells (grid plus output) of one drawing, about a second to draw and render: the largest
combination of the explorer's sliders draws 45 x 45 + 33 x 33 = 3114 cells in 1.3 s on a 2-core VM."""


@dataclass(frozen=True)
class ConvArithmetic:
    """What :func:`draw_conv_arithmetic` drew.

    Attributes:
        output_size: side of the square output, or None for an impossible combination.
        formula: the size formula; with the numbers filled in when the combination is possible.
        description: how the kernel moves over which grid (empty for an impossible combination).
        error: None, or why the combination is impossible.
        position: ``(x, y)`` of the highlighted output cell after clamping to the output, or None.
        grid_size: side of the grid the kernel slides over (the padded input, or
            for a transposed convolution the zero-inserted, padded input), or None.
        footprint: ``(x, y)`` cells of that grid under the kernel for ``position``.
        ax: the matplotlib Axes drawn on.
    """

    output_size: int | None
    formula: str
    description: str
    error: str | None
    position: tuple[int, int] | None
    grid_size: int | None
    footprint: tuple[tuple[int, int], ...]
    ax: Any


def _axis_kinds(input_size: int, kernel_size: int, stride: int, padding: int, dilation: int,
                output_padding: int, transposed: bool) -> list[str]:
    """Kind of each cell along one axis of the grid the kernel slides over."""
    if not transposed:
        return ["padding"] * padding + ["input"] * input_size + ["padding"] * padding
    border = dilation * (kernel_size - 1) - padding  # negative: the stretched input is cropped
    last = (input_size - 1) * stride  # stretched coordinate of the last input cell
    kinds = []
    for v in range(-border, last + border + output_padding + 1):
        if not 0 <= v <= last:
            kinds.append("padding")
        else:
            kinds.append("input" if v % stride == 0 else "inserted zero")
    return kinds


def _grid_size(input_size: int, kernel_size: int, stride: int, padding: int, dilation: int,
               output_padding: int, transposed: bool) -> int:
    """Side of the grid the kernel slides over: ``len(_axis_kinds(...))``, without building it."""
    if not transposed:
        return input_size + 2 * padding
    return (input_size - 1) * stride + 1 + 2 * (dilation * (kernel_size - 1) - padding) + output_padding


def _cell_kind(row: str, column: str) -> str:
    if "padding" in (row, column):
        return "padding"
    return "input" if row == column == "input" else "inserted zero"


def _draw_cells(ax, cells, left: float, facecolor: str, hatch: str | None = None, **style) -> None:
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    patches = [Rectangle((left + x, y), 1, 1) for x, y in cells]
    collection = PatchCollection(patches, facecolor=facecolor, edgecolor="#555555", linewidth=0.6, **style)
    if hatch:
        collection.set_hatch(hatch)
    ax.add_collection(collection)


def _description(transposed: bool, stride: int, padding: int, dilation: int, kernel_size: int,
                 output_padding: int) -> str:
    if not transposed:
        note = "; output_padding only applies to transposed convolutions" if output_padding else ""
        return f"direct convolution: the kernel moves by stride = {stride} over the padded input{note}"
    border = dilation * (kernel_size - 1) - padding
    sides = (
        f"{border} zero cell(s) of padding on each side" if border >= 0
        else f"the stretched input cropped by {-border} cell(s) on each side"
    )
    extra = f", {output_padding} more on the bottom and right (output_padding)" if output_padding else ""
    return (
        f"transposed convolution seen as a direct one: {stride - 1} zero(s) between input cells, "
        f"{sides} (dilation*(k-1) - padding){extra}; the kernel moves by 1"
    )


def _draw_error(ax, message: str, transposed: bool) -> None:
    ax.set_axis_off()
    ax.set_title("impossible combination", color="#b2182b")
    ax.text(0.5, 0.6, "\n".join(textwrap.wrap(message, 60)), ha="center", va="center",
            color="#b2182b", fontsize=11, transform=ax.transAxes)
    formula = CONV_TRANSPOSE_SIZE_FORMULA if transposed else CONV_SIZE_FORMULA
    ax.text(0.5, 0.3, f"output size = {formula}", ha="center", va="center", fontsize=10, transform=ax.transAxes)


def _draw_legend(ax, transposed: bool) -> None:
    from matplotlib.colors import to_hex, to_rgb
    from matplotlib.patches import Patch

    kinds = ["input", "padding"] + (["inserted zero"] if transposed else [])
    handles = [Patch(facecolor=COLORS[k], edgecolor="#555555", hatch=HATCHES[k], label=k) for k in kinds]
    handles += [
        # the footprint as it looks on the grid: half-transparent over an input cell
        Patch(facecolor=to_hex([(a + b) / 2 for a, b in zip(to_rgb(COLORS["footprint"]), to_rgb(COLORS["input"]))]),
              edgecolor="#555555", label="kernel (over an input cell)"),
        Patch(facecolor=COLORS["output"], edgecolor="#555555", label="output"),
        Patch(facecolor=COLORS["output cell"], label="chosen output cell"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=9,
              frameon=False)


def draw_conv_arithmetic(
    input_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
    transposed: bool = False,
    position: tuple[int, int] = (0, 0),
    ax: Any = None,
) -> ConvArithmetic:
    """Draw one step of a square 2-D convolution or transposed convolution.

    Left: the grid the kernel slides over, with the kernel's footprint for the
    output cell at ``position``. Right: the output grid with that cell
    highlighted. The title gives the output-size formula with the numbers
    filled in. An impossible combination of valid values (e.g. ``output_padding``
    not smaller than ``stride`` or ``dilation``, a kernel wider than the padded
    input) is not an error: the figure explains it.

    Args:
        input_size: an int in ``[1, MAX_INPUT_SIZE]`` (32).
        kernel_size, stride, dilation: ints ``>= 1``.
        padding, output_padding: ints ``>= 0``; the same along both axes;
            ``output_padding`` is ignored when ``transposed`` is False (and the
            figure says so).
        transposed: draw ``ConvTranspose2d`` instead of ``Conv2d``.
        position: ``(x, y)`` of the output cell to show; clamped to the output.
        ax: a matplotlib Axes; a new figure when None.

    Returns:
        A :class:`ConvArithmetic` describing what was drawn.

    Raises:
        TypeError: an argument that is not an int (``transposed`` not a bool,
            ``position`` not a pair of ints).
        ValueError: a value out of its range, or a possible combination whose
            drawing would exceed ``MAX_DRAWN_CELLS`` (3200) cells, grid plus
            output (it would take seconds to minutes).
    """
    import matplotlib.pyplot as plt

    input_size = check_int("input_size", input_size, 1, MAX_INPUT_SIZE)
    kernel_size, stride = check_int("kernel_size", kernel_size, 1), check_int("stride", stride, 1)
    padding, dilation = check_int("padding", padding, 0), check_int("dilation", dilation, 1)
    output_padding = check_int("output_padding", output_padding, 0)
    if not isinstance(transposed, bool):
        raise TypeError(f"transposed must be a bool, got {type(transposed).__name__}")
    if (not isinstance(position, (tuple, list)) or len(position) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in position)):
        raise TypeError(f"position must be a pair of ints (x, y), got {position!r}")
    effective_output_padding = output_padding if transposed else 0
    try:
        formula = explain_output_size(input_size, kernel_size, stride, padding, dilation,
                                      effective_output_padding, transposed)
    except ValueError as exc:
        if ax is None:
            _, ax = plt.subplots(figsize=(9, 4.2))
        _draw_error(ax, str(exc), transposed)
        formula = CONV_TRANSPOSE_SIZE_FORMULA if transposed else CONV_SIZE_FORMULA
        return ConvArithmetic(None, formula, "", str(exc), None, None, (), ax)
    if transposed:
        output_size = conv_transpose_output_size(input_size, kernel_size, stride, padding, dilation, output_padding)
    else:
        output_size = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    grid_size = _grid_size(input_size, kernel_size, stride, padding, dilation, effective_output_padding, transposed)
    if grid_size**2 + output_size**2 > MAX_DRAWN_CELLS:
        raise ValueError(
            f"input_size={input_size}, kernel_size={kernel_size}, stride={stride}, padding={padding}, "
            f"dilation={dilation}{f', output_padding={output_padding}' if transposed else ''} would draw a "
            f"{grid_size} x {grid_size} grid and a {output_size} x {output_size} output, "
            f"{grid_size**2 + output_size**2} cells; expected at most MAX_DRAWN_CELLS = {MAX_DRAWN_CELLS} "
            "(about a second to draw): use smaller values"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.2))
    x, y = (min(max(value, 0), output_size - 1) for value in position)

    kinds = _axis_kinds(input_size, kernel_size, stride, padding, dilation, effective_output_padding, transposed)
    cells: dict[str, list[tuple[int, int]]] = {kind: [] for kind in HATCHES}
    for row, column in itertools.product(range(grid_size), repeat=2):
        cells[_cell_kind(kinds[row], kinds[column])].append((column, row))
    for kind, kind_cells in cells.items():
        _draw_cells(ax, kind_cells, 0, COLORS[kind], HATCHES[kind])

    step = 1 if transposed else stride
    footprint = tuple(
        (x * step + tx * dilation, y * step + ty * dilation)
        for ty, tx in itertools.product(range(kernel_size), repeat=2)
    )
    _draw_cells(ax, footprint, 0, COLORS["footprint"], alpha=0.5)

    out_left = grid_size + GAP
    _draw_cells(ax, list(itertools.product(range(output_size), repeat=2)), out_left, COLORS["output"])
    _draw_cells(ax, [(x, y)], out_left, COLORS["output cell"])

    ax.set_xlim(-0.5, out_left + output_size + 0.5)
    ax.set_ylim(max(grid_size, output_size) + 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    description = _description(transposed, stride, padding, dilation, kernel_size, output_padding)
    ax.set_title(f"output size = {formula}\n" + "\n".join(textwrap.wrap(description, 110)), fontsize=9)
    ax.text(grid_size / 2, -0.2, "zero-inserted, padded input" if transposed else "padded input",
            ha="center", va="bottom", fontsize=9)
    ax.text(out_left + output_size / 2, -0.2, f"output ({output_size} x {output_size})", ha="center", va="bottom",
            fontsize=9)
    _draw_legend(ax, transposed)
    return ConvArithmetic(output_size, formula, description, None, (x, y), grid_size, footprint, ax)


class ConvExplorer:
    """Sliders for the arguments of :func:`draw_conv_arithmetic`, its figure and the size formula.

    The initial values must lie in the sliders' ranges (:attr:`RANGES`): a
    value outside would be clamped, and the figure would describe another
    convolution than the one asked for. Once built, no slider move raises: an
    impossible combination is shown and explained.

    Raises:
        TypeError: an initial value that is not an int (``transposed`` not a bool).
        ValueError: an initial value outside its slider's range, e.g.
            ``kernel_size must be an int in [1, 5], got 9``.

    Attributes:
        sliders: ``IntSlider`` by name: ``input_size``, ``kernel_size``, ``stride``,
            ``padding``, ``dilation``, ``output_padding``, ``x``, ``y``.
        mode: ``ToggleButtons`` with values ``"conv"`` and ``"transposed"``.
        formula: ``HTML`` with the filled-in formula, or why the combination is impossible.
        output: the ``Output`` that holds the figure.
        widget: the whole UI (a ``VBox``); displaying the explorer displays it.
        result: the :class:`ConvArithmetic` of the latest drawing.
    """

    RANGES = {
        "input_size": (1, 7),
        "kernel_size": (1, 5),
        "stride": (1, 3),
        "padding": (0, 3),
        "dilation": (1, 3),
        "output_padding": (0, 2),
        "x": (0, 6),
        "y": (0, 6),
    }
    DESCRIPTIONS = {"x": "output x", "y": "output y"}

    def __init__(self, input_size: int = 5, kernel_size: int = 3, stride: int = 1, padding: int = 0,
                 dilation: int = 1, output_padding: int = 0, transposed: bool = False) -> None:
        initial = dict(input_size=input_size, kernel_size=kernel_size, stride=stride, padding=padding,
                       dilation=dilation, output_padding=output_padding, x=0, y=0)
        for name, (low, high) in self.RANGES.items():
            check_int(name, initial[name], low, high)
        if not isinstance(transposed, bool):
            raise TypeError(f"transposed must be a bool, got {type(transposed).__name__}")

        import ipywidgets as widgets

        self.sliders = {
            name: widgets.IntSlider(
                value=initial[name], min=low, max=high,
                description=self.DESCRIPTIONS.get(name, name), continuous_update=False,
                style={"description_width": "initial"}, layout=widgets.Layout(width="300px"),
            )
            for name, (low, high) in self.RANGES.items()
        }
        self.mode = widgets.ToggleButtons(options=[("convolution", "conv"), ("transposed", "transposed")],
                                          value="transposed" if transposed else "conv")
        self.formula = widgets.HTML()
        self.output = widgets.Output()
        names = list(self.RANGES)
        columns = [widgets.VBox([self.sliders[n] for n in names[i:i + 3]]) for i in range(0, len(names), 3)]
        self.widget = widgets.VBox([self.mode, widgets.HBox(columns), self.formula, self.output])
        self.result: ConvArithmetic | None = None
        self._refreshing = False
        for control in [*self.sliders.values(), self.mode]:
            control.observe(self.refresh, names="value")
        self.refresh()

    def refresh(self, change: Any = None) -> None:
        """Redraw from the current widget values and clamp the position sliders to the output."""
        import matplotlib.pyplot as plt

        if self._refreshing:
            return
        self._refreshing = True
        try:
            values = {name: slider.value for name, slider in self.sliders.items()}
            with self.output:
                self.output.clear_output(wait=True)
                fig, ax = plt.subplots(figsize=(9, 4.2))
                self.result = draw_conv_arithmetic(
                    values["input_size"], values["kernel_size"], values["stride"], values["padding"],
                    values["dilation"], values["output_padding"], self.mode.value == "transposed",
                    position=(values["x"], values["y"]), ax=ax,
                )
                plt.show()
                plt.close(fig)
            if self.result.output_size is not None:
                for name in ("x", "y"):
                    self.sliders[name].max = self.result.output_size - 1
            self.formula.value = self._formula_html()
        finally:
            self._refreshing = False

    def _formula_html(self) -> str:
        result = self.result
        if result.error is not None:
            return f"<b style='color:#b2182b'>impossible: {html.escape(result.error)}</b>"
        return f"<code>output size = {html.escape(result.formula)}</code>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def conv_explorer(**initial: Any) -> ConvExplorer:
    """Build the convolution-arithmetic explorer; show it by making it the last expression of a cell.

    Keyword arguments set the initial slider values (see :class:`ConvExplorer`),
    e.g. ``conv_explorer(stride=2, transposed=True)``; each must lie in its
    slider's range (``ConvExplorer.RANGES``: ``input_size`` 1-7,
    ``kernel_size`` 1-5, ``stride`` 1-3, ``padding`` 0-3, ``dilation`` 1-3,
    ``output_padding`` 0-2), else ``ValueError`` (``TypeError`` for a non-int).
    """
    return ConvExplorer(**initial)


__all__ = ["ConvArithmetic", "ConvExplorer", "conv_explorer", "draw_conv_arithmetic"]
