"""reveal.js slides of the notebooks that work without a network.

nbconvert's slides load reveal.js, require.js, jQuery, MathJax, mermaid and the
widget manager from public CDNs, so on a machine without internet they show
nothing. :func:`build_slides` copies those files from the npm packages of
``package.json`` (``npm ci`` puts them in ``node_modules/``) next to the HTML
and points nbconvert at the copies. Speaker notes (``notes`` cells) are kept
(press ``S``), plumbing cells (``skip``) left out. Theme, transition, scrolling,
slide numbers and the header come from the notebook's ``rise`` metadata.

Widgets: the HTML keeps the widget state saved in the notebook, so a slider
draws where it was, but no Python kernel is behind it; every cell that shows a
widget gets a note saying that the live version needs JupyterLab with RISE.

Command line (from the repository root; ``make slides`` runs it)::

    python -m seglib.tools.slides                      # notebooks/*.ipynb -> build/slides/
    python -m seglib.tools.slides --execute            # run each notebook first
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
from pathlib import Path

import nbformat

SLIDE_TYPES_THAT_START_A_SLIDE = ("slide", "subslide")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# tqdm's text of a progress bar: a widget output that is not there to be played with
PROGRESS_BAR = re.compile(r"\d+%\|.*\| *[\d.]+[kMG]?/[\d.]+[kMG]? \[")
STATIC_WIDGET_NOTE = (
    "Static copy of an interactive widget: these HTML slides have no Python kernel, so moving "
    "its controls recomputes nothing. Present it live in JupyterLab with RISE (<code>make lab</code>, "
    "then the slideshow button)."
)
ASSET_DIR = "assets"

# npm package -> paths inside it that the slides load (files or whole folders)
ASSETS = {
    "reveal.js": ["dist", "plugin/notes"],
    "requirejs": ["require.js"],
    "jquery": ["dist/jquery.min.js"],
    "mathjax": ["MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "extensions",
                "jax/input/TeX", "jax/output/CommonHTML/jax.js", "jax/output/CommonHTML/autoload",
                "jax/output/CommonHTML/fonts/TeX", "jax/element", "fonts/HTML-CSS/TeX/woff", "localization/en"],
    "@jupyter-widgets/html-manager": ["dist"],
}
SKIPPED_SUFFIXES = (".map", ".ts")

TEMPLATE_NAME = "seglib_offline_slides.html.j2"
TEMPLATE = """{%- extends 'reveal/index.html.j2' -%}
{#- No mermaid: the notebooks draw no diagrams, and it would come from a CDN. -#}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style type="text/css">
.seglib-static-widget { font-size: 0.55em; color: #8a4b08; border-left: 4px solid #e6a04e;
                        padding: 0.2em 0.6em; margin: 0.4em 0; text-align: left; }
.seglib-header { position: absolute; top: 0.4em; left: 0.8em; z-index: 30; }
/* code lines of up to about 100 characters fit the 960 px wide slide */
:root { --jp-code-font-size: 14px; --jp-cell-prompt-width: 64px; }
</style>
{%- endblock html_head_css -%}
{#- The header of the notebook's RISE metadata, on every slide. -#}
{%- block body_footer -%}
</div>
{%- if nb.metadata.get('rise', {}).get('header') %}
<div class="seglib-header">{{ nb.metadata.rise.header }}</div>
{%- endif %}
</div>
</main>
</body>
{%- endblock body_footer -%}
"""


def count_slides(nb: nbformat.NotebookNode) -> int:
    """Number of slides a slideshow of ``nb`` has: its ``slide`` and ``subslide`` cells.

    nbconvert and RISE also start a slide at the first visible cell, so that
    cell counts once even without ``slide`` metadata.
    """
    if not isinstance(nb, nbformat.NotebookNode) or "cells" not in nb:
        raise TypeError(f"nb must be an nbformat NotebookNode, got {type(nb).__name__}")
    types = [cell.metadata.get("slideshow", {}).get("slide_type", "-") for cell in nb.cells]
    visible = [t for t in types if t not in ("skip", "notes")]
    if not visible:
        return 0
    return 1 + sum(t in SLIDE_TYPES_THAT_START_A_SLIDE for t in visible[1:])


def shows_widget(output: dict) -> bool:
    """True when a cell output is an interactive widget (not a tqdm progress bar)."""
    data = output.get("data", {})
    return WIDGET_VIEW in data and not PROGRESS_BAR.search(data.get("text/plain", ""))


def add_static_widget_notes(nb: nbformat.NotebookNode) -> int:
    """Put :data:`STATIC_WIDGET_NOTE` above the first widget output of every cell that shows one.

    Changes ``nb`` in place and returns the number of cells that got a note.
    """
    noted = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        first = next((i for i, out in enumerate(cell.get("outputs", [])) if shows_widget(out)), None)
        if first is not None:
            cell.outputs.insert(first, nbformat.v4.new_output(
                "display_data",
                data={"text/html": f"<p class='seglib-static-widget'>{STATIC_WIDGET_NOTE}</p>",
                      "text/plain": "(static copy of an interactive widget: use JupyterLab with RISE)"},
            ))
            noted += 1
    return noted


def copy_assets(node_modules: Path, out_dir: Path) -> Path:
    """Copy the files of :data:`ASSETS` from ``node_modules`` to ``out_dir/assets``.

    Raises:
        FileNotFoundError: a package is missing (run ``npm ci`` in the repository).
    """
    node_modules, target = Path(node_modules), Path(out_dir) / ASSET_DIR
    for package, paths in ASSETS.items():
        root = node_modules / package
        if not root.is_dir():
            raise FileNotFoundError(
                f"node_modules must hold the npm package {package!r} ({root} not found): run `npm ci` "
                "in the repository root"
            )
        for relative in paths:
            source, destination = root / relative, target / package / relative
            if source.is_dir():
                shutil.copytree(source, destination, dirs_exist_ok=True,
                                ignore=lambda _dir, names: [n for n in names if n.endswith(SKIPPED_SUFFIXES)])
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
    return target


def offline_scripts(config) -> None:
    """Point an nbconvert ``Config``'s ``HTMLExporter`` at the copies in ``assets/`` instead of CDNs."""
    config.HTMLExporter.require_js_url = f"{ASSET_DIR}/requirejs/require.js"
    config.HTMLExporter.jquery_url = f"{ASSET_DIR}/jquery/dist/jquery.min.js"
    config.HTMLExporter.mathjax_url = f"{ASSET_DIR}/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
    config.HTMLExporter.widget_renderer_url = f"{ASSET_DIR}/@jupyter-widgets/html-manager/dist/embed-amd.js"


def notebooks_parser(prog: str, description: str, out: str) -> argparse.ArgumentParser:
    """The command line shared by the HTML builders: notebooks, ``--out`` and ``--node-modules``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--node-modules", type=Path, default=Path("node_modules"))
    return parser


def exporter_for(nb: nbformat.NotebookNode):
    """A ``SlidesExporter`` for ``nb`` that loads everything from ``assets/`` next to the HTML."""
    from jinja2 import DictLoader
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    rise = nb.metadata.get("rise", {})
    config = Config()
    config.SlidesExporter.reveal_url_prefix = f"{ASSET_DIR}/reveal.js"
    config.SlidesExporter.reveal_theme = rise.get("theme", "white")
    config.SlidesExporter.reveal_transition = rise.get("transition", "none")
    config.SlidesExporter.reveal_scroll = bool(rise.get("scroll", True))
    config.SlidesExporter.reveal_number = "c/t" if rise.get("slideNumber", True) else ""
    offline_scripts(config)
    return SlidesExporter(config=config, template_file=TEMPLATE_NAME,
                          extra_loaders=[DictLoader({TEMPLATE_NAME: TEMPLATE})])


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 1800) -> None:
    """Run every cell of ``nb`` in place (saving widget state), with ``cwd`` as working directory."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, resources={"metadata": {"path": str(cwd)}}, store_widget_state=True).execute()


def title_of(nb: nbformat.NotebookNode, default: str) -> str:
    """The first Markdown heading of ``nb`` (``default`` when there is none)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return default


def index_html(entries: list[tuple[str, str, int, bool]]) -> str:
    """The page that links the slides: ``(file name, title, slide count, has widgets)`` per notebook."""
    rows = "\n".join(
        f"<li><a href='{html.escape(name)}'>{html.escape(title)}</a> <span class='n'>{count} slides"
        f"{', with widgets (static here)' if widgets else ''}</span></li>"
        for name, title, count, widgets in entries
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Image segmentation: slides</title>
<style>
body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.5; }}
.n {{ color: #666; font-size: 0.9em; }}
kbd {{ border: 1px solid #bbb; border-radius: 3px; padding: 0 0.3em; }}
</style></head>
<body>
<h1>Image segmentation: slides</h1>
<ul>
{rows}
</ul>
<p>These reveal.js slides work offline. Keys: <kbd>&rarr;</kbd>/<kbd>Space</kbd> next,
<kbd>&larr;</kbd> back, <kbd>S</kbd> speaker notes, <kbd>Esc</kbd> overview, <kbd>F</kbd> full screen.</p>
<p>Widgets appear as saved when the notebook ran: there is no Python kernel behind these pages.
For live widgets present the notebooks in JupyterLab with RISE (<code>make lab</code>).</p>
</body>
</html>
"""


def prepare_output(sources: list[Path], out_dir: Path, node_modules: Path) -> tuple[list[Path], Path]:
    """Check that ``sources`` are notebook files, create ``out_dir`` and copy the assets into it.

    Raises:
        ValueError: a source that is not an existing ``.ipynb`` file.
        FileNotFoundError: ``node_modules`` lacks a package of :data:`ASSETS` (run ``npm ci``).
    """
    sources = [Path(s) for s in sources]
    wrong = [str(s) for s in sources if s.suffix != ".ipynb" or not s.is_file()]
    if wrong:
        raise ValueError(f"sources must be existing .ipynb files, got {wrong}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_assets(node_modules, out_dir)
    return sources, out_dir


def build_slides(sources: list[Path], out_dir: Path, node_modules: Path, run: bool = False) -> list[Path]:
    """Write ``NN_name.slides.html`` for every notebook, ``index.html`` and the assets.

    Args:
        sources: notebook files.
        out_dir: where the slides go (e.g. ``build/slides``).
        node_modules: the folder ``npm ci`` filled (see :data:`ASSETS`).
        run: execute each notebook first (otherwise its saved outputs are used).

    Returns:
        The paths of the HTML files written, index last.
    """
    sources, out_dir = prepare_output(sources, out_dir, node_modules)
    written, entries = [], []
    for source in sources:
        nb = nbformat.read(source, as_version=4)
        if run:
            execute(nb, source.parent)
        widgets = add_static_widget_notes(nb) > 0
        body, _ = exporter_for(nb).from_notebook_node(nb, resources={"metadata": {"name": source.stem}})
        target = out_dir / f"{source.stem}.slides.html"
        target.write_text(body, encoding="utf-8")
        written.append(target)
        entries.append((target.name, title_of(nb, source.stem), count_slides(nb), widgets))
    index = out_dir / "index.html"
    index.write_text(index_html(entries), encoding="utf-8")
    return [*written, index]


def main(argv: list[str] | None = None) -> int:
    """Command line: build the slides."""
    parser = notebooks_parser("python -m seglib.tools.slides", __doc__.split("\n\n")[0], "build/slides")
    parser.add_argument("--execute", action="store_true", help="run each notebook before converting it")
    parser.add_argument("--count", action="store_true", help="only print 'name slide-count' per notebook")
    args = parser.parse_args(argv)
    sources = args.notebooks or sorted(Path("notebooks").glob("*.ipynb"))
    if not sources:
        parser.error("no notebooks given and none in notebooks/")
    if args.count:
        for source in sources:
            print(source.name, count_slides(nbformat.read(source, as_version=4)))
        return 0
    for path in build_slides(sources, args.out, args.node_modules, run=args.execute):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
