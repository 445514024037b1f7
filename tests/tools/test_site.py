"""The static course site: a page per notebook and an index with learning goals, offline."""

import json
import re
from pathlib import Path

import pytest

from seglib.tools.site import build_site, claims_summary, learning_goals
from tests.tools.test_slides import fake_node_modules

ROOT = Path(__file__).resolve().parents[2]


def test_the_course_site_has_every_notebook_and_loads_nothing_from_the_network(tmp_path):
    sources = sorted((ROOT / "notebooks").glob("0*.ipynb"))[:2]
    written = build_site(sources, tmp_path / "site", fake_node_modules(tmp_path / "node_modules"),
                         ROOT / "bench" / "results")
    assert [p.name for p in written] == [f"{s.stem}.html" for s in sources] + ["index.html"]
    index = (tmp_path / "site" / "index.html").read_text()
    for source in sources:
        assert f"href='{source.stem}.html'" in index
    assert index.count("<li>") >= 4  # the learning goals, as a list
    assert re.search(r"\d+ of \d+ claims hold in the benchmark run", index)
    page = written[0].read_text()
    assert "data:image/png;base64," in page  # the figures are in the page
    remote = re.findall(r"""<(?:script|link|img)[^>]+(?:src|href)=["'](https?://[^"']+)""", page)
    assert not remote, f"loaded from the network: {sorted(set(remote))[:5]}"  # links out are fine, loads are not


def test_learning_goals_and_claims_summary(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"),
                                         nbformat.v4.new_markdown_cell("## Learning goals\n\n- one\n- two")])
    assert learning_goals(nb) == "- one\n- two"
    assert learning_goals(nbformat.v4.new_notebook()) == ""
    claim = {"holds": True}
    (tmp_path / "cpu-x.json").write_text(json.dumps({"machine": "x", "date": "2026-11-30", "notebooks": {
        "07_t": {"wall_s": 12.3, "claims": {"a": claim, "b": {"holds": False}}}}}))
    assert claims_summary("07_t", tmp_path).startswith("1 of 2 claims hold in the benchmark run on x (2026-11-30, 12 s)")
    assert claims_summary("08_none", tmp_path) == ""


def test_bad_sources_are_refused(tmp_path):
    with pytest.raises(ValueError, match="sources must be existing .ipynb files"):
        build_site([tmp_path / "notes.txt"], tmp_path / "site", tmp_path / "node_modules")


def test_remote_badges_become_links():
    import nbformat

    from seglib.tools.site import offline_badges

    cell = nbformat.v4.new_markdown_cell("x [![Open In Colab](https://c.example/badge.svg)](https://c.example/nb) y")
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert offline_badges(nb) == 1 and cell.source == "x [Open In Colab](https://c.example/nb) y"
