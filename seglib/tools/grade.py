"""Grading with nbgrader: release the exercises, autograde a class's submissions, write a CSV.

The instructor notebooks carry nbgrader's cell metadata: the cell that holds
a ``### BEGIN SOLUTION`` block is a ``solution`` cell, the check cell after
it a locked, graded test cell with ``points`` (its hidden tests sit between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``). This module keeps
an nbgrader course directory (default ``build/grading/``)::

    nbgrader_config.py                         written here, read by every nbgrader command
    source/<NN_name>/<NN_name>.ipynb           the instructor notebook, one assignment per notebook
    release/<NN_name>/<NN_name>.ipynb          the student version (its cells are those of exercises/)
    submitted/<student>/<NN_name>/<NN_name>.ipynb
    autograded/..., feedback/..., gradebook.db
    grades.csv                                 points per student and exercise

Commands, from the repository root (``make grade SUBMISSIONS=dir`` runs the last)::

    python -m seglib.tools.grade release             # nbgrader generate_assignment, every notebook
    python -m seglib.tools.grade grade DIR           # release, collect DIR/<student>/<NN_name>.ipynb,
                                                     # autograde, generate_feedback, write grades.csv
    python -m seglib.tools.grade csv                 # grades.csv again, after grading written answers

Written answers (a markdown cell that is an nbgrader solution *and* grade
cell, its model answer and marking scheme between ``<!-- ### BEGIN SOLUTION -->``
and ``<!-- ### END SOLUTION -->``) are graded by hand in nbgrader's formgrader
(``nbgrader formgrade`` in the course directory, or the Formgrader tab of
JupyterLab); until then their ``points`` are empty and ``needs_manual_grade`` is True.

Grading is fast because the autograder runs only what the exercises need:
the setup cell, the cells tagged ``grading-context``, the solution cells and
the test cells (:class:`RunExerciseCellsOnly`); training and measurements
are not run (their code stays in the graded notebook, without outputs).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearSolutions, NbGraderPreprocessor

from seglib.tools.exercises import SOURCE_DIR, exercise_badges, find_blocks, note_cell, student_source

COURSE_DIR = Path("build/grading")
COURSE_ID = "image-segmentation"
GRADING_CONTEXT_TAG = "grading-context"
"""Tag of a code cell that the exercises need besides the setup cell (e.g. data they use)."""

CSV_COLUMNS = ("student", "assignment", "exercise", "points", "max_points", "needs_manual_grade")
_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

CONFIG = '''\
# nbgrader configuration of the course, written by `python -m seglib.tools.grade`.
from seglib.tools import grade

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "{course_id}"
c.CourseDirectory.root = "{root}"
c.GenerateAssignment.preprocessors = grade.release_preprocessors()
c.Autograde.autograde_preprocessors = grade.autograde_preprocessors()
c.Execute.timeout = 300
'''


def is_written_answer(cell: nbformat.NotebookNode) -> bool:
    """True for a manually graded written answer: a markdown cell that is both nbgrader solution and grade."""
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "markdown" and bool(meta.get("solution") and meta.get("grade"))


def is_graded(cell: nbformat.NotebookNode) -> bool:
    """True for nbgrader's solution and graded cells (they always run when grading)."""
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("solution") or meta.get("grade"))


class StudentStubs(ClearSolutions):
    """nbgrader's solution clearing with the course's stubs: the line of :func:`~seglib.tools.exercises.student_source`.

    A solution block becomes ``raise NotImplementedError("Exercise: ...")`` with
    its hint, exactly as in ``exercises/``.
    """

    def _replace_solution_region(self, cell: nbformat.NotebookNode, language: str) -> bool:
        blocks = find_blocks(cell.source, f"cell {cell.get('id', '?')}")
        if any(block.kind == "hidden" for block in blocks) and any(block.kind == "solution" for block in blocks):
            raise ValueError(f"cell {cell.get('id', '?')}: hidden tests belong in the graded test cell, "
                             "not in a solution cell")
        if not any(block.kind == "solution" for block in blocks):
            return False
        cell.source = student_source(cell.source, cell.cell_type)
        return True


class StudentHeader(NbGraderPreprocessor):
    """The first cell of ``exercises/`` (what is left to the student) and Colab badges pointing at ``exercises/``."""

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict) -> tuple[nbformat.NotebookNode, dict]:
        name = f"{resources['unique_key']}.ipynb"
        source = (Path(resources["metadata"]["path"]) / name).resolve()
        original = nbformat.read(source, as_version=4)
        kinds = {"code": 0, "markdown": 0}
        for cell in original.cells:
            if cell.cell_type in kinds:
                kinds[cell.cell_type] += sum(b.kind == "solution" for b in find_blocks(cell.source))
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = exercise_badges(cell.source, name)[0]
        if nb.cells and nb.cells[0].metadata.get("slideshow", {}).get("slide_type") == "slide":
            nb.cells[0].metadata["slideshow"] = {"slide_type": "-"}
        nb.cells.insert(0, note_cell(f"{SOURCE_DIR}/{name}", kinds["code"], kinds["markdown"]))
        return nb, resources


class RunExerciseCellsOnly(NbGraderPreprocessor):
    """Before execution: empty every code cell the exercises do not need (kept in ``resources``).

    Kept: the first code cell (setup), cells tagged :data:`GRADING_CONTEXT_TAG`,
    and nbgrader's solution and graded cells.
    """

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict) -> tuple[nbformat.NotebookNode, dict]:
        skipped, seen_code = {}, False
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            keep = not seen_code or is_graded(cell) or GRADING_CONTEXT_TAG in cell.metadata.get("tags", [])
            seen_code = True
            if not keep and cell.source.strip():
                skipped[index] = cell.source
                cell.source = ""
        resources["seglib_skipped_cells"] = skipped
        return nb, resources


class RestoreSkippedCells(NbGraderPreprocessor):
    """After execution: put back the code of the cells :class:`RunExerciseCellsOnly` emptied (without outputs)."""

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict) -> tuple[nbformat.NotebookNode, dict]:
        for index, source in resources.pop("seglib_skipped_cells", {}).items():
            nb.cells[index].source = source
        return nb, resources


def release_preprocessors() -> list[type]:
    """``nbgrader generate_assignment``'s preprocessors with :class:`StudentStubs` and :class:`StudentHeader`."""
    from nbgrader.converters import GenerateAssignment

    chain = [StudentStubs if p is ClearSolutions else p for p in GenerateAssignment.class_traits()["preprocessors"].default()]
    return [*chain, StudentHeader]


def autograde_preprocessors() -> list[type]:
    """``nbgrader autograde``'s preprocessors with execution limited to the exercises (see the module docstring)."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    chain = []
    for p in Autograde.class_traits()["autograde_preprocessors"].default():
        chain += [RunExerciseCellsOnly, Execute, RestoreSkippedCells] if p is Execute else [p]
    return chain


def nbgrader(root: Path, *args: str) -> None:
    """Run one nbgrader command in the course directory ``root``; raise with its output if it fails."""
    env = dict(os.environ)  # nbgrader calls the `alembic` script of its own environment
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=root, capture_output=True,
                          text=True, env=env)
    if done.returncode or "Exception while loading config file" in done.stderr:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed in {root}:\n{done.stdout}{done.stderr}")


def release(root: Path = COURSE_DIR, notebooks: list[Path] | None = None) -> list[str]:
    """Write the course directory and run ``nbgrader generate_assignment`` on every assignment in it.

    Args:
        root: the course directory (created if missing).
        notebooks: instructor notebooks copied to ``source/`` (default ``notebooks/*.ipynb``).

    Returns:
        The assignment names of ``notebooks``, one per notebook.
    """
    root = Path(root).resolve()
    notebooks = sorted(Path(SOURCE_DIR).glob("*.ipynb")) if notebooks is None else [Path(n) for n in notebooks]
    if not notebooks:
        raise ValueError(f"notebooks must name at least one .ipynb file, got {notebooks!r}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(CONFIG.format(course_id=COURSE_ID, root=root), encoding="utf-8")
    for path in notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            raise ValueError(f"notebooks must be existing .ipynb files, got {str(path)!r}")
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        target = root / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    nbgrader(root, "generate_assignment", "*")
    return [path.stem for path in notebooks]


def collect(submissions: Path, root: Path = COURSE_DIR, assignments: list[str] | None = None) -> dict[str, list[str]]:
    """Copy ``submissions/<student>/<NN_name>.ipynb`` into nbgrader's ``submitted/`` folder.

    Returns:
        assignment -> the students who submitted it. Notebooks that are no
        assignment's are an error (a typo in a file name would lose a submission).
    """
    submissions, root = Path(submissions), Path(root)
    if not submissions.is_dir():
        raise ValueError(f"submissions must be a folder of <student>/<NN_name>.ipynb, got {str(submissions)!r}")
    known = set(assignments or (p.name for p in (root / "source").iterdir()))
    found: dict[str, list[str]] = {}
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        if not _STUDENT_ID.match(student_dir.name):
            raise ValueError(f"student folder names must be ids of letters, digits, '_', '.', '-', "
                             f"got {student_dir.name!r}")
        for path in sorted(student_dir.glob("*.ipynb")):
            if path.stem not in known:
                raise ValueError(f"{path}: expected a notebook named after an assignment "
                                 f"({', '.join(sorted(known))}), got {path.name!r}")
            target = root / "submitted" / student_dir.name / path.stem / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            found.setdefault(path.stem, []).append(student_dir.name)
    if not found:
        raise ValueError(f"no submissions found: expected {submissions}/<student>/<NN_name>.ipynb")
    return found


def scores(root: Path = COURSE_DIR) -> list[dict]:
    """One row per student, assignment and graded cell of the gradebook (see :data:`CSV_COLUMNS`), in notebook order.

    A written answer that no one has graded yet has ``points`` ``None`` and
    ``needs_manual_grade`` True (an untouched one gets 0 points automatically).
    """
    root = Path(root).resolve()
    order = {}
    for path in sorted((root / "source").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("grade"):
                order[(path.parent.name, cell.metadata["nbgrader"]["grade_id"])] = len(order)
    rows = []
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        pending = grade.manual_score is None and grade.auto_score is None
                        rows.append({"student": submission.student.id, "assignment": assignment.name,
                                     "exercise": grade.name, "points": None if pending else float(grade.score),
                                     "max_points": float(grade.max_score), "needs_manual_grade": pending})
    return sorted(rows, key=lambda r: (r["student"], order.get((r["assignment"], r["exercise"]), len(order))))


def grade(submissions: Path, root: Path = COURSE_DIR, notebooks: list[Path] | None = None,
          feedback: bool = True) -> Path:
    """Release, collect, autograde and (with ``feedback``) write feedback; return the path of ``grades.csv``."""
    root = Path(root).resolve()
    collect(submissions, root, release(root, notebooks))
    nbgrader(root, "autograde", "*")
    if feedback:
        nbgrader(root, "generate_feedback", "*")
    return write_csv(root)


def write_csv(root: Path = COURSE_DIR) -> Path:
    """Write ``grades.csv`` from the gradebook (again after written answers were graded); return its path."""
    root = Path(root).resolve()
    if not (root / "gradebook.db").is_file():
        raise ValueError(f"root must be a course directory that has been graded, got {str(root)!r} "
                         "(no gradebook.db there: run the grade command first)")
    path = root / "grades.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(scores(root))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seglib.tools.grade", description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=Path, default=COURSE_DIR, help="nbgrader course directory")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("release", help="nbgrader generate_assignment on every notebook")
    grading = commands.add_parser("grade", help="release, collect, autograde, feedback, grades.csv")
    grading.add_argument("submissions", type=Path, help="folder of <student>/<NN_name>.ipynb")
    commands.add_parser("csv", help="rewrite grades.csv from the gradebook (after grading written answers)")
    args = parser.parse_args(argv)
    if args.command == "release":
        names = release(args.course)
        print(f"released {len(names)} assignments to {args.course / 'release'}")
    elif args.command == "csv":
        print(f"grades written to {write_csv(args.course)}")
    else:
        print(f"grades written to {grade(args.submissions, args.course)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
