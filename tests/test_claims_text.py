"""The notebooks' text agrees with the claims ledger of their benchmark runs.

A markdown cell links a number to the claim that measures it by writing an HTML
comment (invisible when rendered) right after the number:

* ``0.65<!-- claim: overview.mask_iou_3px -->``: the number is the measured
  value, written to the precision shown (``65%`` reads as 0.65);
* ``above 0.6<!-- claim: unet.live_miou threshold -->``: the number is the
  claim's threshold;
* a comment with no number before it links a qualitative sentence.

Every linked claim must be recorded by the notebook's own code, appear in each
``bench/results/*.json`` that ran the notebook (run ``make bench`` after adding
one), hold there, and agree with the number the text states.
"""

import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
RESULTS = sorted((ROOT / "bench" / "results").glob("*.json"))
LINK = re.compile(r"(?:(?<![\w.])(-?\d+(?:\.\d+)?)(\s*%)?\s*)?<!--\s*claim:\s*([A-Za-z0-9_.\-]+)(\s+threshold)?\s*-->")


def links(path):
    """``(number text or None, percent, claim name, is_threshold)`` for each link in the markdown."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found += [(m.group(1), bool(m.group(2)), m.group(3), bool(m.group(4))) for m in LINK.finditer(cell.source)]
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    return found, code


def ledgers(stem):
    """``{results file name: claims of the notebook}`` for every results file that ran it with claims."""
    out = {}
    for path in RESULTS:
        row = json.loads(path.read_text())["notebooks"].get(stem)
        if row is not None and "claims" in row:
            out[path.name] = row["claims"]
    return out


def agrees(number, percent, value):
    """Whether the written ``number`` is ``value`` rounded to the digits written."""
    decimals = len(number.split(".")[1]) if "." in number else 0
    value = 100 * value if percent else value
    return abs(round(value, decimals) - float(number)) < 10 ** -decimals / 2 + 1e-9


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_linked_numbers_agree_with_the_ledger(path):
    found, code = links(path)
    stored = ledgers(path.stem)
    problems = []
    for number, percent, name, is_threshold in found:
        if f'"{name}"' not in code and f"'{name}'" not in code:
            problems.append(f"{name}: linked in the text but not recorded by the notebook's code")
            continue
        if not stored:
            problems.append(f"{name}: no bench/results file holds this notebook's claims; run make bench")
        for source, claims in stored.items():
            entry = claims.get(name)
            if entry is None:
                problems.append(f"{name}: missing from {source}; run make bench")
            elif not entry["holds"]:
                problems.append(f"{name}: does not hold in {source}")
            elif number is not None:
                value = entry["threshold"] if is_threshold else entry["measured"]
                if not agrees(number, percent, value):
                    problems.append(f"{name}: the text says {number}{'%' if percent else ''}, {source} measured "
                                    f"{'threshold ' if is_threshold else ''}{value:.4g}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("number, percent, value, ok", [
    ("0.65", False, 0.6499, True), ("0.65", False, 0.656, False), ("65", True, 0.6512, True),
    ("3", False, 2.6, True), ("0.2", False, 0.26, False),
])
def test_agrees_rounds_to_the_written_digits(number, percent, value, ok):
    assert agrees(number, percent, value) is ok


def test_link_pattern():
    text = ("drops to 0.65<!-- claim: a.b --> and 12 %<!-- claim: c threshold --> <!-- claim: d --> "
            "boundary F1<!-- claim: e -->")
    assert [m.groups() for m in LINK.finditer(text)] == [
        ("0.65", None, "a.b", None), ("12", " %", "c", " threshold"), (None, None, "d", None),
        (None, None, "e", None)]
