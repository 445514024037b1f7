"""A static course site: the executed notebooks as HTML pages that work offline.

``build/site/`` gets one page per notebook (nbconvert's ``lab`` template: the
text, the code, the stored outputs and figures, the results cell with its
claims ledger; badges become plain links) and ``index.html`` with each notebook's learning goals and the
state of its claims in the newest benchmark run. Like the slides
(:mod:`seglib.tools.slides`), the pages load require.js, MathJax and the widget
manager from ``assets/`` next to them, copied from ``node_modules``, never from
a CDN. Speaker-note cells are kept; nothing is executed.

Command line (from the repository root; ``make site`` runs it)::

    python -m seglib.tools.site              # notebooks/*.ipynb -> build/site/
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import nbformat

from seglib.tools.slides import notebooks_parser, offline_scripts, prepare_output, title_of

GOALS_HEADING = "## Learning goals"
REMOTE_BADGE = re.compile(r"\[!\[([^\]]*)\]\(https?://[^)]+\)\]\((https?://[^)]+)\)")
"""A Markdown badge whose image comes from the network (Open in Colab): a text link on the site."""


def offline_badges(nb: nbformat.NotebookNode) -> int:
    """Turn badges with remote images into plain links (an offline page shows no broken image); return how many."""
    count = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source, n = REMOTE_BADGE.subn(r"[\1](\2)", cell.source)
            count += n
    return count


def learning_goals(nb: nbformat.NotebookNode) -> str:
    """The Markdown of the notebook's learning goals (the cell under :data:`GOALS_HEADING`), or ``""``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith(GOALS_HEADING):
            return cell.source[len(GOALS_HEADING):].strip()
    return ""


def claims_summary(stem: str, results_dir: Path) -> str:
    """One line on the notebook's claims in the newest cpu results file (``""`` when none holds them)."""
    files = sorted(Path(results_dir).glob("cpu-*.json"))
    for path in reversed(files):
        data = json.loads(path.read_text())
        claims = data["notebooks"].get(stem, {}).get("claims")
        if claims:
            held = sum(c["holds"] for c in claims.values())
            return (f"{held} of {len(claims)} claims hold in the benchmark run on {data['machine']} "
                    f"({data['date']}, {data['notebooks'][stem]['wall_s']:.0f} s); the ledger is the page's last output.")
    return ""


def exporter():
    """An ``HTMLExporter`` (``lab`` template) that loads its scripts from ``assets/`` next to the page."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    offline_scripts(config)
    return HTMLExporter(config=config, template_name="lab")


def index_html(entries: list[dict]) -> str:
    """The front page: per notebook its title (a link), learning goals (HTML) and claims line."""
    from nbconvert.filters import markdown2html

    items = "\n".join(
        f"<section><h2><a href='{html.escape(e['page'])}'>{html.escape(e['title'])}</a></h2>\n"
        f"{markdown2html(e['goals']) if e['goals'] else ''}\n"
        f"{'<p class=claims>' + html.escape(e['claims']) + '</p>' if e['claims'] else ''}</section>"
        for e in entries
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Image segmentation: the course</title>
<style>
body {{ font-family: sans-serif; max-width: 50em; margin: 2em auto; line-height: 1.5; padding: 0 1em; }}
h2 {{ margin-bottom: 0.2em; }} .claims {{ color: #555; font-size: 0.9em; }}
</style></head>
<body>
<h1>Image segmentation: the course</h1>
<p>Each page is a notebook as it last ran: text, code, outputs and figures. To run them, open the
notebooks in JupyterLab (<code>make lab</code>) or on Colab.</p>
{items}
</body>
</html>
"""


def build_site(sources: list[Path], out_dir: Path, node_modules: Path,
               results_dir: Path = Path("bench/results")) -> list[Path]:
    """Write ``NN_name.html`` for every notebook, ``index.html`` and the assets; return the pages, index last.

    Raises:
        ValueError: a source that is not an ``.ipynb`` file.
        FileNotFoundError: ``node_modules`` lacks a package of the assets (run ``npm ci``).
    """
    sources, out_dir = prepare_output(sources, out_dir, node_modules)
    pages, entries = [], []
    for source in sources:
        nb = nbformat.read(source, as_version=4)
        offline_badges(nb)
        body, _ = exporter().from_notebook_node(nb, resources={"metadata": {"name": title_of(nb, source.stem)}})
        page = out_dir / f"{source.stem}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        entries.append({"page": page.name, "title": title_of(nb, source.stem), "goals": learning_goals(nb),
                        "claims": claims_summary(source.stem, results_dir)})
    index = out_dir / "index.html"
    index.write_text(index_html(entries), encoding="utf-8")
    return [*pages, index]


def main(argv: list[str] | None = None) -> int:
    """Command line: build the site."""
    parser = notebooks_parser("python -m seglib.tools.site", __doc__.split("\n\n")[0], "build/site")
    args = parser.parse_args(argv)
    sources = args.notebooks or sorted(Path("notebooks").glob("*.ipynb"))
    if not sources:
        parser.error("no notebooks given and none in notebooks/")
    for path in build_site(sources, args.out, args.node_modules):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
