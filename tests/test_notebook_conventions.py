"""Every notebook follows the anatomy of DESIGN.md (checked without running it)."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}
COLAB = "https://colab.research.google.com/github/"


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebooks"


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    path = request.param
    return path, nbformat.read(path, as_version=4)


def test_valid_nbformat_4(notebook):
    path, nb = notebook
    assert nb.nbformat == 4
    nbformat.validate(nb)


def test_colab_badge_in_first_cell(notebook):
    path, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert "colab-badge.svg" in first.source
    assert f"{COLAB}" in first.source and f"/blob/main/notebooks/{path.name}" in first.source


def test_setup_cell_is_second(notebook):
    _, nb = notebook
    setup = nb.cells[1]
    assert setup.cell_type == "code"
    assert "import seglib" in setup.source and "seglib.setup(" in setup.source
    assert "google.colab" in setup.source


def test_slideshow_metadata_on_every_cell(notebook):
    _, nb = notebook
    for i, cell in enumerate(nb.cells):
        slide_type = cell.metadata.get("slideshow", {}).get("slide_type")
        assert slide_type in SLIDE_TYPES, f"cell {i} has slide_type {slide_type!r}"
    assert nb.cells[0].metadata.slideshow.slide_type == "slide"


MAX_SLIDE_CODE_LINES = 15
MAX_SLIDE_CODE_WIDTH = 100


def test_code_on_a_slide_fits_it(notebook):
    # a code cell that a slide shows (not `skip`, not `notes`) fits a 1280 x 720 slide; an exercise
    # is projected as its student version (the solution is revealed later, and may scroll)
    from seglib.tools.exercises import student_source

    _, nb = notebook
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.metadata.get("slideshow", {}).get("slide_type") in ("skip", "notes"):
            continue
        lines = cell.source.splitlines()
        if len(student_source(cell.source, "code").splitlines()) > MAX_SLIDE_CODE_LINES:
            problems.append(f"cell {i}: {len(lines)} lines (at most {MAX_SLIDE_CODE_LINES})")
        wide = [n + 1 for n, line in enumerate(lines) if len(line) > MAX_SLIDE_CODE_WIDTH]
        if wide:
            problems.append(f"cell {i}: line(s) {wide} over {MAX_SLIDE_CODE_WIDTH} characters")
    assert not problems, "code cells too large for a slide (move plumbing to seglib or a `skip` cell):\n" + \
        "\n".join(problems)


def test_rise_metadata(notebook):
    _, nb = notebook
    rise = nb.metadata.get("rise", {})
    assert rise.get("scroll") is True
    assert "theme" in rise


def test_no_stored_errors_and_small_outputs(notebook):
    path, nb = notebook
    errors = [i for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"stored error outputs in cells {errors}"
    assert path.stat().st_size < 3_000_000, f"{path.name} takes {path.stat().st_size / 1e6:.2f} MB on disk"


MIN_FIGURE_WIDTH = 600
SMALL_FIGURE_TAG = "small-figure"
"""Tag of a cell whose figures are deliberately small (an inline sketch)."""


def test_figures_are_wide_enough_for_a_slide(notebook):
    import base64
    import io

    from PIL import Image

    _, nb = notebook
    narrow = []
    for i, cell in enumerate(nb.cells):
        if SMALL_FIGURE_TAG in cell.metadata.get("tags", []):
            continue
        for output in cell.get("outputs", []):
            for kind in ("image/png", "image/jpeg"):
                if kind in output.get("data", {}):
                    width = Image.open(io.BytesIO(base64.b64decode(output["data"][kind]))).size[0]
                    if width < MIN_FIGURE_WIDTH:
                        narrow.append(f"cell {i}: {width} px")
    assert not narrow, f"figures under {MIN_FIGURE_WIDTH} px wide (a larger figsize, or tag the cell " \
                       f"{SMALL_FIGURE_TAG!r}): {narrow}"


def test_kernel_is_python(notebook):
    _, nb = notebook
    assert nb.metadata.kernelspec.language == "python"


CLAIMS_LEDGER = ("00", "01", "02", "03", "04", "05", "06")
"""Notebooks whose results cell keeps the claims ledger (the others still assert floors directly)."""


def test_solutions_are_hidden_until_revealed(notebook):
    # on a RISE or reveal.js slide a solution never shows with its question: a fragment or its own (sub)slide
    _, nb = notebook
    shown = [i for i, c in enumerate(nb.cells) if "### BEGIN SOLUTION" in c.source
             and c.metadata.get("slideshow", {}).get("slide_type", "-") not in ("fragment", "subslide", "slide")]
    assert not shown, f"solution cells on screen with their question: {shown}"


def test_learning_goals_summary_and_results(notebook):
    path, nb = notebook
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Learning goals" in text and "Summary" in text
    last_code = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert "report.record(" in last_code.source or "report.claim(" in last_code.source
    if path.stem[:2] in CLAIMS_LEDGER:  # the results cell records the text's claims and asserts them all
        assert "report.claim(" in last_code.source and "report.check_claims()" in last_code.source
    else:
        assert "assert" in last_code.source
