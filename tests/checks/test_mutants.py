"""Every exercise check rejects at least three typical wrong answers (mutants of the solution)."""

from __future__ import annotations

import math

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import seglib
import seglib.checks
from seglib.checks import CheckFailed
from seglib.tools.exercises import SOURCE_DIR
from tests.checks.mutants import MUTANTS, NOTEBOOKS, mutate, solution_sources

MINIMUM = 3


def exercises(notebook: str) -> list[tuple[str, list[str]]]:
    """(solution grade_id, sources of its graded check cells), in notebook order."""
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    out = []
    for cell in (c for c in nb.cells if c.cell_type == "code"):   # written answers are graded by hand
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            out.append((meta["grade_id"], []))
        elif meta.get("grade") and out:
            out[-1][1].append(cell.source)
    return out


def run(notebook: str, replaced: dict[str, str]) -> None:
    """Run every solution cell (``replaced`` ones swapped) and every check cell, as the notebook does."""
    namespace = {"torch": torch, "nn": nn, "F": F, "math": math, "seglib": seglib, "checks": seglib.checks}
    solutions = solution_sources(notebook)
    for grade_id, checks in exercises(notebook):
        exec(replaced.get(grade_id, solutions[grade_id]), namespace)  # noqa: S102 - the notebook's own code
        for check in checks:
            exec(check, namespace)  # noqa: S102


CASES = [pytest.param(nb, grade_id, mistake, old, new, id=f"{grade_id}-{mistake}")
         for nb, table in MUTANTS.items() for grade_id, mutants in table.items() for mistake, old, new in mutants]


@pytest.mark.parametrize("notebook", sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
def test_every_exercise_has_three_mutants_and_its_solution_passes(notebook, capsys):
    found = [grade_id for grade_id, checks in exercises(notebook)]
    assert all(checks for _, checks in exercises(notebook)), f"{notebook}: a solution cell without a graded check"
    table = MUTANTS.get(notebook, {})
    assert sorted(table) == sorted(found), f"{notebook}: mutants for {sorted(table)}, exercises {sorted(found)}"
    assert all(len(m) >= MINIMUM for m in table.values()), f"{notebook}: fewer than {MINIMUM} mutants somewhere"
    run(notebook, {})
    assert capsys.readouterr().out.count("\u2714") >= sum(len(c) for _, c in exercises(notebook))


@pytest.mark.parametrize("notebook, grade_id, mistake, old, new", CASES)
def test_check_rejects_the_mutant(notebook, grade_id, mistake, old, new):
    wrong = mutate(solution_sources(notebook)[grade_id], old, new)
    with pytest.raises(CheckFailed):
        run(notebook, {grade_id: wrong})


def test_mutants_name_existing_notebooks():
    assert set(MUTANTS) <= {p.stem for p in (NOTEBOOKS.parent / SOURCE_DIR).glob("*.ipynb")}


def test_a_crash_in_the_student_code_is_a_check_failure_that_shows_the_students_line():
    def student(x):
        return [][x]

    with pytest.raises(CheckFailed, match="student raised IndexError") as info:
        seglib.checks.core.call_student(student, 1)
    shown = info.value._render_traceback_()
    assert shown[-1].startswith("CheckFailed: student raised IndexError")
    assert any("return [][x]" in line for line in shown)
    assert CheckFailed("off by one")._render_traceback_() == ["CheckFailed: off by one"]
