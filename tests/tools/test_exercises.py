"""Student versions: markers, stubs, the committed exercises/, and how a stub fails."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from seglib.tools import exercises
from seglib.tools.exercises import (
    MARKDOWN_PLACEHOLDER,
    NOTE_CELL_ID,
    colab_url,
    find_blocks,
    generate,
    leaked_lines,
    out_of_date,
    render,
    student_notebook,
    student_source,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXERCISES = ROOT / "exercises"

SOLVED = '''def scale(x, factor):
    """Multiply."""
    out = x
    for _ in range(1):
        ### BEGIN SOLUTION
        out = x * factor
        ### END SOLUTION
    return out'''


def notebook(*cells, name="99_probe.ipynb"):
    """A small instructor notebook with a Colab badge, built from (type, source) pairs."""
    nb = nbformat.v4.new_notebook()
    badge = f"# Probe\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url('notebooks/' + name)})"
    nb.cells = [nbformat.v4.new_markdown_cell(badge)]
    for kind, source in cells:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        nb.cells.append(cell)
    for cell in nb.cells:
        cell.metadata["slideshow"] = {"slide_type": "slide"}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


# ----------------------------------------------------------------------------- one cell


def test_stub_keeps_the_indentation_and_names_the_function():
    student = student_source(SOLVED, "code")
    assert '        raise NotImplementedError("Exercise: complete scale()")' in student.splitlines()
    assert "x * factor" not in student and "SOLUTION" not in student
    assert student.splitlines()[-1] == "    return out"
    compile(student, "student", "exec")


def test_text_after_the_marker_is_the_hint():
    source = "def f():\n    ### BEGIN SOLUTION: add the two halves\n    return 1\n    ### END SOLUTION"
    assert student_source(source, "code") == 'def f():\n    raise NotImplementedError("Exercise: add the two halves")'


def test_top_level_solution_and_hidden_tests():
    source = "x = 1\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\n### BEGIN HIDDEN TESTS\nassert answer == 42\n### END HIDDEN TESTS\ny = 2"
    assert student_source(source, "code") == 'x = 1\nraise NotImplementedError("Exercise: write your code here")\ny = 2'


def test_markdown_answer_becomes_a_placeholder():
    source = "**Answer:**\n\n### BEGIN SOLUTION\nBecause the floor forgets.\n### END SOLUTION"
    assert student_source(source, "markdown") == f"**Answer:**\n\n{MARKDOWN_PLACEHOLDER}"
    hidden = "Q?\n<!-- ### BEGIN SOLUTION -->\n**Model answer.** Because.\n<!--### END SOLUTION-->\nAfter."
    assert student_source(hidden, "markdown") == f"Q?\n{MARKDOWN_PLACEHOLDER}\nAfter."


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "has no END marker"),
    ("x = 1\n### END SOLUTION", "expected no END marker"),
    ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION", "line 2: expected the END marker"),
    ("### BEGIN HIDDEN TESTS\n### END SOLUTION", "expected the END marker of the hidden block"),
])
def test_unbalanced_markers_are_errors(source, message):
    with pytest.raises(ValueError, match=message) as info:
        find_blocks(source, "probe.ipynb cell 3")
    assert "probe.ipynb cell 3" in str(info.value)


def test_bad_arguments():
    with pytest.raises(TypeError, match="source must be a str"):
        find_blocks(["x"])
    with pytest.raises(ValueError, match="cell_type must be"):
        student_source("x", "raw")
    with pytest.raises(TypeError, match="nb must be an nbformat NotebookNode"):
        student_notebook({"cells": []}, "x.ipynb")


# ----------------------------------------------------------------------------- one notebook


def test_student_notebook():
    nb = notebook(("code", SOLVED), ("code", "### BEGIN HIDDEN TESTS\nassert scale(2, 3) == 6\n### END HIDDEN TESTS"),
                  ("markdown", "### BEGIN SOLUTION\nsecret words\n### END SOLUTION"))
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hello")]
    nb.cells[1].execution_count = 4
    nb.cells[1].metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
    nb.metadata["widgets"] = {"state": {}}
    student = student_notebook(nb, "99_probe.ipynb")

    assert student.cells[0].id == NOTE_CELL_ID and "Student version" in student.cells[0].source
    assert "1 piece of code to write" in student.cells[0].source
    assert "1 written answer to give in the cell that says" in student.cells[0].source
    assert student.cells[0].metadata.slideshow.slide_type == "slide"
    assert student.cells[1].metadata.slideshow.slide_type == "-"  # the title shares the note's slide
    assert colab_url("exercises/99_probe.ipynb") in student.cells[1].source
    assert "/notebooks/" not in student.cells[1].source
    assert len(student.cells) == 4  # the hidden-tests cell is gone
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None and "execution" not in c.metadata for c in code)
    assert "widgets" not in student.metadata
    assert leaked_lines(nb, student) == []
    assert nb.cells[1].outputs, "the instructor notebook must stay unchanged"


def test_a_notebook_without_its_badge_is_refused():
    nb = notebook(("code", "x = 1"))
    with pytest.raises(ValueError, match="Open-in-Colab badge"):
        student_notebook(nb, "98_other.ipynb")


def test_generate_check_and_orphans(tmp_path, capsys):
    source = tmp_path / "notebooks" / "99_probe.ipynb"
    source.parent.mkdir()
    nbformat.write(notebook(("code", SOLVED)), source)
    out = tmp_path / "exercises"
    assert out_of_date([source], out) == ["99_probe.ipynb"]
    generate([source], out)
    assert out_of_date([source], out) == []
    (out / "00_gone.ipynb").write_text("{}")
    assert out_of_date([source], out) == ["00_gone.ipynb"]
    assert exercises.main([str(source), "--output-dir", str(out), "--check"]) == 0  # named notebooks: orphans ignored
    (out / "99_probe.ipynb").write_text("{}")
    assert exercises.main([str(source), "--output-dir", str(out), "--check"]) == 1
    assert "run `make exercises`" in capsys.readouterr().err


def test_the_slide_stylesheet_goes_with_the_student_versions(tmp_path):
    source = tmp_path / "notebooks" / "99_probe.ipynb"
    source.parent.mkdir()
    nbformat.write(notebook(("code", SOLVED)), source)
    (source.parent / "rise.css").write_text(".reveal p { font-size: 26px; }")
    out = tmp_path / "exercises"
    generate([source], out)
    assert (out / "rise.css").read_text() == ".reveal p { font-size: 26px; }"
    assert out_of_date([source], out) == []
    (source.parent / "rise.css").write_text(".reveal p { font-size: 24px; }")
    assert out_of_date([source], out) == ["rise.css"]


# ----------------------------------------------------------------------------- the course's notebooks


def test_committed_exercises_are_up_to_date(tmp_path):
    generate(NOTEBOOKS, tmp_path)
    for path in NOTEBOOKS:
        committed = EXERCISES / path.name
        assert committed.is_file(), f"exercises/{path.name} is missing: run `make exercises`"
        assert committed.read_text(encoding="utf-8") == (tmp_path / path.name).read_text(encoding="utf-8"), (
            f"exercises/{path.name} is out of date: run `make exercises`"
        )
    assert (EXERCISES / "rise.css").read_bytes() == (NOTEBOOKS[0].parent / "rise.css").read_bytes(), (
        "exercises/rise.css differs from notebooks/rise.css: run `make exercises`")
    orphans = {p.name for p in EXERCISES.glob("*.ipynb")} - {p.name for p in NOTEBOOKS}
    assert not orphans, f"student versions without a notebook: {sorted(orphans)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_solution_leaks(path):
    instructor = nbformat.read(path, as_version=4)
    student = nbformat.reads(render(path), as_version=4)
    assert leaked_lines(instructor, student) == []
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert colab_url(f"exercises/{path.name}") in text
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_checks_receive_the_exercise_function(path):
    """A stub only turns into the friendly message when the check calls it (seglib.checks.call_student)."""
    student = nbformat.reads(render(path), as_version=4)
    stubs, direct = set(), []
    for index, cell in enumerate(student.cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and "NotImplementedError" in ast.unparse(node):
                stubs.add(node.name)
            elif not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                direct += [f"cell {index}: {ast.unparse(call)}" for call in ast.walk(node)
                           if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in stubs]
    assert not direct, (
        "these cells call an exercise function themselves, so its stub fails with a bare NotImplementedError; "
        f"pass the function to the check instead: {direct}"
    )


# ----------------------------------------------------------------------------- running a student version


def test_a_student_notebook_stops_at_its_first_exercise_with_the_friendly_message(tmp_path):
    nb = notebook(
        ("code", "from seglib.checks import CheckFailed, call_student\nwarmed_up = True"),
        ("code", "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION"),
        ("code", "result = call_student(add, 2, 3)\nif result != 5:\n    raise CheckFailed(f'add(2, 3) should be 5, got {result}')"),
        ("code", "after_the_exercise = True"),
    )
    student = student_notebook(nb, "99_probe.ipynb")
    client = NotebookClient(student, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError):
        client.execute()
    ran = [i for i, c in enumerate(student.cells) if c.cell_type == "code" and c.execution_count]
    assert ran == [2, 3, 4], "the cells up to the check must run, and nothing after it"
    error = next(o for o in student.cells[4].outputs if o.output_type == "error")
    assert error.ename == "CheckFailed"
    assert "add is not implemented yet (Exercise: complete add())" in error.evalue
    assert "replace the `raise NotImplementedError` line" in error.evalue
    trace = "\n".join(error.traceback)
    assert "During handling of the above exception" not in trace and "NotImplementedError:" not in trace
    assert len(error.traceback) <= 6, f"a traceback wall of {len(error.traceback)} parts"
