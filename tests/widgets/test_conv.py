"""Headless tests of the convolution-arithmetic figure and explorer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from seglib.ops.upsampling import conv_output_size, conv_transpose_output_size  # noqa: E402
from seglib.widgets import draw_conv_arithmetic
from seglib.widgets.conv import ConvArithmetic  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_direct_convolution_figure():
    result = draw_conv_arithmetic(5, 3, stride=2, padding=1, position=(1, 2))
    assert isinstance(result, ConvArithmetic) and result.error is None
    assert result.output_size == conv_output_size(5, 3, 2, 1) == 3
    assert result.formula.endswith("floor((5 + 2*1 - 1*(3-1) - 1) / 2) + 1 = floor(4 / 2) + 1 = 3")
    assert result.grid_size == 7  # 5 input cells + 1 padding cell each side
    assert result.position == (1, 2)
    assert result.footprint[0] == (2, 4) and result.footprint[-1] == (4, 6)  # starts at (x*s, y*s)
    assert result.formula in result.ax.get_title()
    assert len(result.ax.collections) > 3


def test_dilated_footprint_skips_cells():
    result = draw_conv_arithmetic(7, 2, dilation=3, position=(1, 0))
    assert result.output_size == 4
    assert result.footprint == ((1, 0), (4, 0), (1, 3), (4, 3))


def test_transposed_figure_describes_the_zero_inserted_input():
    result = draw_conv_arithmetic(3, 3, stride=2, padding=1, output_padding=1, transposed=True, position=(5, 0))
    assert result.output_size == conv_transpose_output_size(3, 3, 2, 1, 1, 1) == 6 and result.error is None
    assert result.grid_size == 6 + (3 - 1)  # the kernel moves by 1 over the drawn grid
    assert result.footprint[0] == (5, 0)
    assert "1 zero(s) between input cells" in result.description
    assert "1 more on the bottom and right (output_padding)" in result.description


def test_transposed_figure_crops_when_padding_exceeds_the_kernel_reach():
    result = draw_conv_arithmetic(4, 2, stride=2, padding=2, transposed=True)
    assert result.error is None and result.output_size == 4
    assert "cropped by 1 cell(s) on each side" in result.description


def _drawn_grid(x: torch.Tensor, stride: int, border: int, output_padding: int, grid_size: int) -> torch.Tensor:
    """The grid the figure shows: x with stride-1 zeros between cells, `border` zeros around
    (a negative border crops), `output_padding` zeros after; (1, 1, n, n) -> (1, 1, grid_size, grid_size)."""
    stretched = (x.shape[-1] - 1) * stride + 1
    pad, crop = max(border, 0), max(-border, 0)
    size = stretched + 2 * pad + output_padding
    grid = torch.zeros(1, 1, size, size, dtype=x.dtype)
    grid[..., pad : pad + stretched : stride, pad : pad + stretched : stride] = x
    return grid[..., crop : crop + grid_size, crop : crop + grid_size]


@pytest.mark.parametrize(
    "n, k, s, p, d, op",
    [(3, 3, 2, 1, 1, 1), (4, 2, 2, 2, 1, 0), (3, 3, 1, 0, 2, 1), (2, 4, 3, 4, 1, 2), (5, 3, 2, 0, 1, 0)],
)
def test_drawn_transposed_view_computes_the_transposed_convolution(n, k, s, p, d, op):
    """A direct convolution with the flipped kernel over the drawn grid equals F.conv_transpose2d."""
    result = draw_conv_arithmetic(n, k, s, p, d, op, transposed=True)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, n, n, dtype=torch.float64, generator=generator)
    w = torch.randn(1, 1, k, k, dtype=torch.float64, generator=generator)
    grid = _drawn_grid(x, s, d * (k - 1) - p, op, result.grid_size)
    direct = F.conv2d(grid, w.flip(-1, -2), dilation=d)
    expected = F.conv_transpose2d(x, w, stride=s, padding=p, dilation=d, output_padding=op)
    assert direct.shape[-1] == result.output_size
    assert torch.allclose(direct, expected)


def test_position_is_clamped_to_the_output():
    result = draw_conv_arithmetic(4, 3, position=(9, -2))
    assert result.output_size == 2 and result.position == (1, 0)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(stride=2, output_padding=2, transposed=True), "output_padding (2) must be smaller than stride (2) or dilation (1)"),
        (dict(stride=1, output_padding=1, transposed=True), "output_padding (1) must be smaller than stride (1) or dilation (1)"),
        (dict(kernel_size=5, dilation=2), "kernel_size=5 with dilation=2 spans 9 cells"),
        (dict(kernel_size=1, padding=3, transposed=True), "padding=3 is too large"),
    ],
)
def test_impossible_combination_is_explained_not_raised(settings, message):
    arguments = dict(input_size=4, kernel_size=3) | settings
    result = draw_conv_arithmetic(**arguments)
    assert result.output_size is None and result.position is None and result.footprint == ()
    assert message in result.error
    assert result.ax.get_title() == "impossible combination"
    assert any(message in text.get_text().replace("\n", " ") for text in result.ax.texts)


def test_output_padding_is_ignored_by_a_direct_convolution():
    result = draw_conv_arithmetic(5, 3, stride=2, output_padding=1)
    assert result.error is None and result.output_size == 2
    assert "output_padding only applies to transposed convolutions" in result.description


def test_draws_on_a_given_axes():
    fig, ax = plt.subplots()
    assert draw_conv_arithmetic(3, 2, ax=ax).ax is ax


def test_position_must_be_a_pair_of_ints():
    with pytest.raises(TypeError, match=r"position must be a pair of ints \(x, y\), got 3"):
        draw_conv_arithmetic(5, 3, position=3)


# --------------------------------------------------------------------------- the ipywidgets explorer


@pytest.fixture
def explorer():
    pytest.importorskip("ipywidgets")
    from seglib.widgets import conv_explorer

    return conv_explorer()


def test_explorer_builds_with_a_figure(explorer):
    import ipywidgets

    assert isinstance(explorer.widget, ipywidgets.VBox)
    assert set(explorer.sliders) == {"input_size", "kernel_size", "stride", "padding", "dilation", "output_padding", "x", "y"}
    assert explorer.result.output_size == 3
    assert "= 3</code>" in explorer.formula.value


def test_explorer_redraws_when_a_slider_moves(explorer):
    explorer.sliders["stride"].value = 2
    assert explorer.result.output_size == 2
    assert "floor(2 / 2) + 1 = 2" in explorer.formula.value
    explorer.mode.value = "transposed"
    assert explorer.result.output_size == conv_transpose_output_size(5, 3, 2) == 11
    assert "(5-1)*2" in explorer.formula.value


def test_explorer_clamps_position_sliders_to_the_output(explorer):
    explorer.sliders["x"].value = 2
    explorer.sliders["y"].value = 1
    assert explorer.result.position == (2, 1)
    explorer.sliders["input_size"].value = 4  # output shrinks from 3 x 3 to 2 x 2
    assert explorer.sliders["x"].max == 1 and explorer.sliders["x"].value == 1
    assert explorer.result.position == (1, 1)
    explorer.sliders["input_size"].value = 7
    assert explorer.sliders["x"].max == 4


def test_explorer_shows_impossible_combinations(explorer):
    explorer.mode.value = "transposed"
    explorer.sliders["output_padding"].value = 1
    assert explorer.result.error == "output_padding (1) must be smaller than stride (1) or dilation (1)"
    assert "impossible" in explorer.formula.value
    explorer.sliders["stride"].value = 2
    assert explorer.result.error is None and explorer.result.output_size == 12


# --------------------------------------------------------------------------- bounded arguments


def test_large_sizes_are_refused_not_drawn_for_minutes():
    import time

    with pytest.raises(ValueError, match=r"input_size must be an int in \[1, 32\], got 300"):
        draw_conv_arithmetic(input_size=300, kernel_size=3)
    with pytest.raises(ValueError, match=r"would draw a 112 x 112 grid and a 88 x 88 output, 20288 cells; "
                                         r"expected at most MAX_DRAWN_CELLS = 3200"):
        draw_conv_arithmetic(16, 7, stride=4, dilation=4, output_padding=3, transposed=True)
    assert not plt.get_fignums()  # refused before a figure was made
    start = time.perf_counter()
    result = draw_conv_arithmetic(32, 1)  # the largest input: 32 x 32 grid and output
    result.ax.figure.canvas.draw()
    assert result.output_size == 32 and time.perf_counter() - start < 10  # about a second; slack for slow CI


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kernel_size=0), ValueError, r"kernel_size must be a positive int, got 0"),
    (dict(padding=-1), ValueError, r"padding must be an int >= 0, got -1"),
    (dict(stride=1.5), TypeError, r"stride must be an int, got float"),
    (dict(transposed="yes"), TypeError, r"transposed must be a bool, got str"),
])
def test_bad_single_values_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        draw_conv_arithmetic(**(dict(input_size=5, kernel_size=3) | kwargs))


def test_every_slider_combination_fits_the_drawing_budget():
    """The explorer never raises on a slider move: each combination draws or explains why it cannot."""
    import itertools

    from seglib.widgets import conv
    from seglib.widgets.conv import ConvExplorer

    ranges = [range(low, high + 1) for name, (low, high) in ConvExplorer.RANGES.items() if name not in ("x", "y")]
    largest = 0
    for (n, k, s, p, d, op), transposed in itertools.product(itertools.product(*ranges), (False, True)):
        try:
            out = conv_transpose_output_size(n, k, s, p, d, op) if transposed else conv_output_size(n, k, s, p, d)
        except ValueError:
            continue  # an impossible combination: explained, not drawn
        grid = conv._grid_size(n, k, s, p, d, op if transposed else 0, transposed)
        assert grid == len(conv._axis_kinds(n, k, s, p, d, op if transposed else 0, transposed))
        largest = max(largest, grid**2 + out**2)
    assert largest == 45**2 + 33**2 <= conv.MAX_DRAWN_CELLS
    result = draw_conv_arithmetic(7, 5, stride=3, dilation=3, output_padding=2, transposed=True)
    assert (result.grid_size, result.output_size) == (45, 33)


@pytest.mark.parametrize("kwargs", [
    dict(input_size=5, kernel_size=3, stride=2, padding=1, position=(1, 1)),  # notebook 01
    dict(input_size=3, kernel_size=3, stride=2, padding=1, transposed=True, position=(2, 1)),  # notebook 01
    dict(input_size=7, kernel_size=3, dilation=2, padding=2, position=(3, 3)),  # notebook 03
])
def test_the_notebooks_drawings_are_within_the_bounds(kwargs):
    assert draw_conv_arithmetic(**kwargs).error is None


def test_explorer_refuses_initial_values_outside_the_sliders():
    pytest.importorskip("ipywidgets")
    from seglib.widgets import conv_explorer

    with pytest.raises(ValueError, match=r"kernel_size must be an int in \[1, 5\], got 9"):
        conv_explorer(kernel_size=9)
    with pytest.raises(ValueError, match=r"input_size must be an int in \[1, 7\], got 0"):
        conv_explorer(input_size=0)
    with pytest.raises(TypeError, match=r"stride must be an int, got float"):
        conv_explorer(stride=2.0)
    with pytest.raises(TypeError, match=r"transposed must be a bool"):
        conv_explorer(transposed=1)
    # the notebooks' explorers (01 and 03) keep their values
    explorer = conv_explorer(input_size=3, kernel_size=3, stride=2, padding=1, transposed=True)
    assert {name: explorer.sliders[name].value for name in ("input_size", "kernel_size", "stride", "padding")} == \
        {"input_size": 3, "kernel_size": 3, "stride": 2, "padding": 1}
    assert conv_explorer(kernel_size=3, dilation=2, padding=2).result.output_size == 5
    # an impossible initial combination is shown, not raised
    assert conv_explorer(input_size=1, kernel_size=5).result.error is not None
