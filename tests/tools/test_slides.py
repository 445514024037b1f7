"""Offline reveal.js slides: slide counting, widget notes, local assets, what the HTML keeps."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from seglib.tools.slides import (
    ASSET_DIR,
    ASSETS,
    STATIC_WIDGET_NOTE,
    WIDGET_VIEW,
    add_static_widget_notes,
    build_slides,
    copy_assets,
    count_slides,
    exporter_for,
    index_html,
    shows_widget,
    title_of,
)

ROOT = Path(__file__).resolve().parents[2]


def cell(kind, slide_type, source, outputs=()):
    c = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
    c.metadata["slideshow"] = {"slide_type": slide_type}
    if outputs:
        c.outputs = list(outputs)
    return c


def widget_output(text="IntSlider(value=3)"):
    return nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "abc", "version_major": 2,
                                                                       "version_minor": 0}, "text/plain": text})


def deck():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        cell("md", "slide", "# Deck title\n\nFirst slide."),
        cell("code", "skip", "PLUMBING_ONLY = 1"),
        cell("md", "subslide", "Second, with math $$a^2 + b^2$$"),
        cell("md", "fragment", "A reveal."),
        cell("md", "notes", "Say this out loud."),
        cell("md", "slide", "## Third"),
        cell("code", "-", "slider", outputs=[widget_output()]),
    ]
    nb.metadata["rise"] = {"theme": "white", "transition": "none", "scroll": True, "slideNumber": True,
                           "header": "<span>Course header</span>"}
    return nb


def test_count_slides():
    assert count_slides(deck()) == 3
    nb = deck()
    nb.cells[0].metadata.slideshow.slide_type = "-"  # the first visible cell starts a slide anyway
    assert count_slides(nb) == 3
    nb.cells = [cell("md", "skip", "x")]
    assert count_slides(nb) == 0
    with pytest.raises(TypeError, match="nb must be an nbformat NotebookNode"):
        count_slides({"cells": []})


def test_widget_notes_skip_progress_bars():
    progress = widget_output("autoencoder:  40%|####      | 120/300 [00:03<00:04, 40.1step/s]")
    assert shows_widget(widget_output()) and not shows_widget(progress)
    nb = deck()
    nb.cells.append(cell("code", "-", "train()", outputs=[progress]))
    assert add_static_widget_notes(nb) == 1
    first = nb.cells[6].outputs[0]
    assert STATIC_WIDGET_NOTE in first.data["text/html"] and WIDGET_VIEW in nb.cells[6].outputs[1].data
    assert len(nb.cells[7].outputs) == 1


def test_html_is_offline_keeps_notes_and_leaves_out_skip_cells():
    nb = deck()
    add_static_widget_notes(nb)
    body, _ = exporter_for(nb).from_notebook_node(nb, resources={"metadata": {"name": "deck"}})
    assert "PLUMBING_ONLY" not in body
    assert re.search(r'<aside class="notes">\s*.*Say this out loud', body, flags=re.S)
    assert body.count("<section") == 2 + 3  # two horizontal slides holding three leaf slides
    assert "Course header" in body and STATIC_WIDGET_NOTE[:40] in body
    loaded = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', body)
    loaded += re.findall(r'"([^"]+\.js)"', body)
    remote = [url for url in loaded if re.match(r"(https?:)?//", url)]
    assert not remote, f"the slides load files from the network: {remote}"
    assert f"{ASSET_DIR}/reveal.js/dist/reveal.js" in body and f"{ASSET_DIR}/requirejs/require.js" in body
    assert "import mermaid" not in body


def fake_node_modules(root: Path) -> Path:
    for package, paths in ASSETS.items():
        for relative in paths:
            target = root / package / relative
            if Path(relative).suffix:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("// stand-in\n")
            else:
                target.mkdir(parents=True, exist_ok=True)
                (target / "file.js").write_text("// stand-in\n")
                (target / "file.js.map").write_text("{}")
    return root


def test_copy_assets_needs_npm_packages(tmp_path):
    with pytest.raises(FileNotFoundError, match="npm ci"):
        copy_assets(tmp_path / "node_modules", tmp_path / "out")
    target = copy_assets(fake_node_modules(tmp_path / "node_modules"), tmp_path / "out")
    assert (target / "reveal.js" / "dist" / "file.js").is_file()
    assert not (target / "reveal.js" / "dist" / "file.js.map").exists()
    assert (target / "requirejs" / "require.js").is_file()


def test_build_slides_writes_each_deck_and_an_index(tmp_path):
    source = tmp_path / "07_deck.ipynb"
    nbformat.write(deck(), source)
    written = build_slides([source], tmp_path / "slides", fake_node_modules(tmp_path / "node_modules"))
    assert [p.name for p in written] == ["07_deck.slides.html", "index.html"]
    index = (tmp_path / "slides" / "index.html").read_text()
    assert "href='07_deck.slides.html'" in index and "3 slides, with widgets (static here)" in index
    assert title_of(deck(), "x") == "Deck title"
    with pytest.raises(ValueError, match="must be existing .ipynb files"):
        build_slides([tmp_path / "notes.txt"], tmp_path / "slides", tmp_path / "node_modules")


def test_index_escapes_titles():
    assert "&lt;b&gt;" in index_html([("a.slides.html", "<b>", 2, False)])
