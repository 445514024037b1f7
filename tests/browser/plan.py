"""What the browser test expects of each notebook, as JSON (run by the node test).

    python tests/browser/plan.py ROOT NOTEBOOK...

copies the notebooks into the server folder ROOT, writes the widget probe
notebook there, and prints per notebook: its slide count (seglib.tools.slides), its
speaker-note cells, whether it has math, and its widget cells (saved widget
outputs, or a call in WIDGET_CALLS) with the code the kernel needs before
running them (the setup cell and the imports above).
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path

import nbformat

from seglib.tools.slides import count_slides, shows_widget

PROBE = "widget_probe.ipynb"
NOTEBOOKS = "notebooks"  # the notebooks' folder under the server's root
# Calls that show a live widget, for notebooks whose saved outputs do not (yet) hold one.
WIDGET_CALLS = ("conv_explorer(", "interact(", "interactive(", "interactive_output(")
PROBE_CELLS = [
    ("markdown", "slide", "# Widget probe\n\nA slider with an interactive output, and the convolution explorer."),
    ("code", "slide", (
        "import ipywidgets as widgets\n\n"
        "n = widgets.IntSlider(value=3, min=0, max=10, description='n')\n"
        "square = widgets.interactive_output(lambda n: print(f'{n} squared is {n * n}'), {'n': n})\n"
        "widgets.VBox([n, square])"
    )),
    ("code", "subslide", "from seglib.widgets import conv_explorer\n\nconv_explorer()"),
]


def probe_notebook() -> nbformat.NotebookNode:
    """A small notebook whose code cells each show a live widget."""
    nb = nbformat.v4.new_notebook()
    for kind, slide_type, source in PROBE_CELLS:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        cell.metadata["slideshow"] = {"slide_type": slide_type}
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["rise"] = {"theme": "white", "transition": "none", "scroll": True, "center": False}
    return nb


def imports_of(source: str) -> list[str]:
    """The top-level import statements of a cell (IPython magics ignored)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    text = "\n".join(lines)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    return [ast.get_source_segment(text, node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]


def plan(nb: nbformat.NotebookNode, name: str) -> dict:
    """The expectations for one notebook."""
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    setup = next((c.source for _, c in code if "seglib.setup(" in c.source), "")
    widget_cells = []
    for index, cell in code:
        saved = any(shows_widget(out) for out in cell.get("outputs", []))
        if name == PROBE or saved or any(call in cell.source for call in WIDGET_CALLS):
            above = [imp for i, c in code if i < index and c.source != setup for imp in imports_of(c.source)]
            widget_cells.append({"index": index, "source": cell.source.strip(),
                                 "prelude": "\n".join([setup, *above]).strip()})
    text = "\n".join(c.source for c in nb.cells if c.metadata.get("slideshow", {}).get("slide_type") != "skip")
    return {
        "name": name,
        "path": f"{NOTEBOOKS}/{name}",
        "slides": count_slides(nb),
        "notes": sum(c.metadata.get("slideshow", {}).get("slide_type") == "notes" for c in nb.cells),
        "math": "$$" in text or "\\(" in text,
        "widget_cells": widget_cells,
    }


def main(argv: list[str]) -> None:
    root = Path(argv[0])
    # The notebooks sit in a folder below the server's root, as in `make lab`: RISE
    # asks for <folder>/rise.css, and for a notebook at the root that request fails
    # (files//rise.css, jupyterlab-contrib/rise#27).
    folder = root / NOTEBOOKS
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path("notebooks") / "rise.css", folder / "rise.css")
    plans = []
    for source in map(Path, argv[1:]):
        shutil.copy2(source, folder / source.name)
        plans.append(plan(nbformat.read(source, as_version=4), source.name))
    probe = probe_notebook()
    nbformat.write(probe, folder / PROBE)
    plans.append(plan(probe, PROBE))
    print(json.dumps(plans))


if __name__ == "__main__":
    main(sys.argv[1:])
