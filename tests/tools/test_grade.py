"""Grading with the real nbgrader: full points for the solution, zero for stubs and wrong answers."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from seglib.tools import grade
from seglib.tools.exercises import student_source
from tests.checks.mutants import MUTANTS, mutate, solution_sources

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def graded_ids(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def written_ids() -> set[tuple[str, str]]:
    """(assignment, grade_id) of every written answer."""
    return {(p.stem, c.metadata["nbgrader"]["grade_id"]) for p in NOTEBOOKS
            for c in nbformat.read(p, as_version=4).cells if grade.is_written_answer(c)}


def wrong_submission(name: str) -> nbformat.NotebookNode:
    """The student version with the first typical mistake of each exercise written in (and a written answer)."""
    nb = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    solutions = solution_sources(name)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade.is_written_answer(cell):
            cell.source = "It depends on the data."
        elif cell.metadata.get("nbgrader", {}).get("solution"):
            _, old, new = MUTANTS[name][grade_id][0]
            cell.source = mutate(solutions[grade_id], old, new)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Three submissions of every notebook graded by nbgrader: (course dir, CSV rows, seconds)."""
    base = tmp_path_factory.mktemp("grading")
    submissions = base / "submissions"
    for student in ("solution", "stub", "wrong"):
        (submissions / student).mkdir(parents=True)
    for path in NOTEBOOKS:
        shutil.copyfile(path, submissions / "solution" / path.name)
        shutil.copyfile(ROOT / "exercises" / path.name, submissions / "stub" / path.name)
        nbformat.write(wrong_submission(path.stem), submissions / "wrong" / path.name)
    start = time.perf_counter()
    csv_path = grade.grade(submissions, base / "course", NOTEBOOKS, feedback=False)
    seconds = time.perf_counter() - start
    with csv_path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return base / "course", rows, seconds


def test_every_exercise_of_every_submission_is_graded(graded):
    _, rows, seconds = graded
    expected = {(p.stem, g) for p in NOTEBOOKS for g in graded_ids(p)}
    assert len(expected) >= 2 * (len(NOTEBOOKS) - 1)   # two exercises or more in 01-06
    for student in ("solution", "stub", "wrong"):
        got = {(r["assignment"], r["exercise"]) for r in rows if r["student"] == student}
        assert got == expected, f"{student}: graded {sorted(got)}, expected {sorted(expected)}"
    # about 20 s per notebook and submission at most on 2 cores (it runs only the exercises)
    assert seconds < 20 * 3 * len(NOTEBOOKS), f"grading took {seconds:.0f} s"


@pytest.mark.parametrize("student, full", [("solution", True), ("stub", False), ("wrong", False)])
def test_points(graded, student, full):
    _, rows, _ = graded
    written = written_ids()
    assert len(written) >= 3
    for row in (r for r in rows if r["student"] == student):
        assert float(row["max_points"]) > 0
        if (row["assignment"], row["exercise"]) in written and student != "stub":
            # an answer was written: it waits for the instructor
            assert row["points"] == "" and row["needs_manual_grade"] == "True", f"{student}: {row}"
            continue
        expected = float(row["max_points"]) if full else 0.0
        assert float(row["points"]) == expected and row["needs_manual_grade"] == "False", f"{student}: {row}"


def test_a_manual_grade_reaches_the_csv(graded):
    course, _, _ = graded
    assignment, grade_id = sorted(written_ids())[0]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(assignment, assignment, "solution")
        found = next(g for g in notebook.grades if g.name == grade_id)
        found.manual_score = 1.5
        gradebook.db.commit()
    with grade.write_csv(course).open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["student"] == "solution" and r["exercise"] == grade_id]
    assert [(r["points"], r["needs_manual_grade"]) for r in rows] == [("1.5", "False")]


def test_released_student_versions_are_the_exercises(graded):
    course, _, _ = graded
    for path in NOTEBOOKS:
        released = nbformat.read(course / "release" / path.stem / path.name, as_version=4)
        exercise = nbformat.read(ROOT / "exercises" / path.name, as_version=4)
        assert [c.get("id") for c in released.cells] == [c.get("id") for c in exercise.cells], path.name
        for ours, theirs in zip(released.cells, exercise.cells):
            assert ours.source == theirs.source, f"{path.name} cell {ours.get('id')}"


def test_autograded_notebooks_keep_the_code_of_the_cells_not_run(graded):
    course, _, _ = graded
    path = NOTEBOOKS[1]
    autograded = nbformat.read(course / "autograded" / "solution" / path.stem / path.name, as_version=4)
    original = nbformat.read(path, as_version=4)
    assert [c.source for c in autograded.cells] == [c.source for c in original.cells]
    ran = [c for c in autograded.cells if c.cell_type == "code" and c.execution_count]
    assert 0 < len(ran) < sum(c.cell_type == "code" for c in autograded.cells)


# --------------------------------------------------------------------------- fast unit tests


def toy_notebook() -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell("import math"), nbformat.v4.new_code_cell("train()"),
             nbformat.v4.new_code_cell("data = 1"), nbformat.v4.new_code_cell("def f():\n    return 1"),
             nbformat.v4.new_code_cell("assert f() == 1")]
    cells[2].metadata["tags"] = [grade.GRADING_CONTEXT_TAG]
    cells[3].metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "f", "locked": False}
    cells[4].metadata["nbgrader"] = {"solution": False, "grade": True, "grade_id": "check_f", "points": 1,
                                     "locked": True}
    return nbformat.v4.new_notebook(cells=cells)


def test_only_setup_context_and_graded_cells_run_and_the_rest_comes_back():
    nb = toy_notebook()
    nb, resources = grade.RunExerciseCellsOnly().preprocess(nb, {})
    assert [c.source for c in nb.cells] == ["import math", "", "data = 1", "def f():\n    return 1",
                                            "assert f() == 1"]
    nb, resources = grade.RestoreSkippedCells().preprocess(nb, resources)
    assert nb.cells[1].source == "train()" and "seglib_skipped_cells" not in resources


def test_student_stubs_are_the_exercise_stubs():
    cell = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION double it\n    return 2 * x\n"
                                     "    ### END SOLUTION")
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "f", "locked": False}
    expected = student_source(cell.source, "code")
    assert grade.StudentStubs()._replace_solution_region(cell, "python")
    assert cell.source == expected and "Exercise: double it" in cell.source


def test_hidden_tests_in_a_solution_cell_are_refused():
    cell = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### BEGIN HIDDEN TESTS\n"
                                     "assert x\n### END HIDDEN TESTS")
    with pytest.raises(ValueError, match="hidden tests belong in the graded test cell"):
        grade.StudentStubs()._replace_solution_region(cell, "python")


def test_collect_refuses_unknown_notebooks_and_odd_student_ids(tmp_path):
    (tmp_path / "course" / "source" / "01_upsampling").mkdir(parents=True)
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "01_upsampling.ipynb").write_text("{}")
    assert grade.collect(tmp_path / "subs", tmp_path / "course") == {"01_upsampling": ["ann"]}
    (tmp_path / "subs" / "ann" / "01_upsampled.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="named after an assignment"):
        grade.collect(tmp_path / "subs", tmp_path / "course")
    (tmp_path / "subs" / "ann" / "01_upsampled.ipynb").unlink()
    (tmp_path / "subs" / "bob smith").mkdir()
    with pytest.raises(ValueError, match="student folder names"):
        grade.collect(tmp_path / "subs", tmp_path / "course")
    with pytest.raises(ValueError, match="submissions must be a folder"):
        grade.collect(tmp_path / "missing", tmp_path / "course")


def test_every_solution_cell_is_followed_by_a_graded_check():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        metas = [c.metadata.get("nbgrader", {}) for c in nb.cells]
        ids = [m["grade_id"] for m in metas if m]
        assert len(ids) == len(set(ids)), f"{path.name}: grade_ids repeat"
        for index, (cell, meta) in enumerate(zip(nb.cells, metas)):
            if meta.get("solution") and not grade.is_written_answer(cell):
                later = [m for m in metas[index + 1:] if m]
                assert later and later[0].get("grade") and later[0].get("locked") and later[0]["points"] > 0, \
                    f"{path.name}: solution {meta['grade_id']} has no graded check after it"
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert grade.GRADING_CONTEXT_TAG in first_code.metadata.get("tags", []), path.name
