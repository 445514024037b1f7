"""Student versions of the notebooks: ``exercises/`` generated from ``notebooks/``.

An instructor notebook marks what the student writes with nbgrader's markers::

    def conv_transpose1d(x, w, stride):
        ### BEGIN SOLUTION
        out = ...
        return out
        ### END SOLUTION

The student version (:func:`student_notebook`) replaces every such block by one
line, at the indentation of the ``### BEGIN SOLUTION`` marker::

        raise NotImplementedError("Exercise: complete conv_transpose1d()")

Text after the marker (``### BEGIN SOLUTION scatter-add each kernel``) replaces
the default hint. In markdown cells (where the markers may sit in HTML comments,
``<!-- ### BEGIN SOLUTION -->``, so that the slide does not show them) the block
becomes a placeholder for the student's answer. Lines between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS`` are removed (a cell left empty is dropped). Outputs,
execution counts, run timings and saved widget state are cleared, a note at the top says
that this is the student version, and the Open-in-Colab badge points at the
``exercises/`` copy. The checks of :mod:`seglib.checks` turn the stub's
``NotImplementedError`` into a one-line reminder.

Command line (from the repository root; ``make exercises`` runs the first)::

    python -m seglib.tools.exercises              # notebooks/*.ipynb -> exercises/
    python -m seglib.tools.exercises --check      # exit 1 when exercises/ is out of date
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPOSITORY = "segcourse/image-segmentation"
"""The course repository on GitHub (``owner/name``), used by the Colab and Binder badges."""

COLAB_PREFIX = f"https://colab.research.google.com/github/{REPOSITORY}/blob/"
SOURCE_DIR = "notebooks"
EXERCISE_DIR = "exercises"
SLIDE_STYLE = "rise.css"  # RISE reads the slide stylesheet of a notebook's folder

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
MARKDOWN_PLACEHOLDER = "*Write your answer here.*"
NOTE_CELL_ID = "student-version-note"
RUN_METADATA = ("execution", "ExecuteTime")  # cell metadata of a run (timings), not of the notebook

_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(")
_COLAB_LINK = re.compile(re.escape(COLAB_PREFIX) + r"([^/\s)]+)/" + re.escape(SOURCE_DIR) + r"/([^\s)]+\.ipynb)")


@dataclass(frozen=True)
class Block:
    """One marked block of a cell: ``kind`` is ``"solution"`` or ``"hidden"``.

    ``start`` and ``end`` are the line numbers of its BEGIN and END markers,
    ``indent`` the marker's leading whitespace, ``hint`` the text after the
    BEGIN marker.
    """

    kind: str
    start: int
    end: int
    indent: str
    hint: str


def find_blocks(source: str, where: str = "cell") -> list[Block]:
    """The solution and hidden-test blocks of one cell's ``source``.

    Args:
        source: the cell's text.
        where: how to name the cell in error messages (e.g. ``"01_upsampling.ipynb cell 12"``).

    Raises:
        TypeError: ``source`` is not a string.
        ValueError: a marker without its partner, or a block inside another block.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    blocks, open_kind, open_line, open_indent, open_hint = [], None, 0, "", ""
    begins = {BEGIN_SOLUTION: "solution", BEGIN_HIDDEN: "hidden"}
    ends = {END_SOLUTION: "solution", END_HIDDEN: "hidden"}
    for number, line in enumerate(source.splitlines()):
        text = _unwrap_comment(line.strip())
        begin = next((kind for marker, kind in begins.items() if _is_marker(text, marker)), None)
        end = next((kind for marker, kind in ends.items() if text == marker), None)
        if begin is not None:
            if open_kind is not None:
                raise ValueError(
                    f"{where}, line {number + 1}: expected the END marker of the {open_kind} block "
                    f"opened on line {open_line + 1}, got {text!r}"
                )
            marker = BEGIN_SOLUTION if begin == "solution" else BEGIN_HIDDEN
            open_kind, open_line = begin, number
            open_indent = line[: len(line) - len(line.lstrip())]
            open_hint = text[len(marker):].strip(" :-")
        elif end is not None:
            if open_kind != end:
                expected = f"the END marker of the {open_kind} block" if open_kind else "no END marker"
                raise ValueError(f"{where}, line {number + 1}: expected {expected}, got {text!r}")
            blocks.append(Block(end, open_line, number, open_indent, open_hint))
            open_kind = None
    if open_kind is not None:
        raise ValueError(
            f"{where}: the {open_kind} block opened on line {open_line + 1} has no END marker; "
            f"expected {END_SOLUTION if open_kind == 'solution' else END_HIDDEN!r}"
        )
    return blocks


def _unwrap_comment(text: str) -> str:
    """``text`` without an enclosing HTML comment: a markdown cell writes ``<!-- ### BEGIN SOLUTION -->``."""
    if text.startswith("<!--") and text.endswith("-->"):
        return text[4:-3].strip()
    return text


def _is_marker(text: str, marker: str) -> bool:
    """``text`` is ``marker``, optionally followed by a hint."""
    if not text.startswith(marker):
        return False
    rest = text[len(marker):]
    return rest == "" or rest[0] in " :-\t"


def _enclosing_function(lines: list[str], before: int, indent: str) -> str | None:
    """Name of the ``def`` whose body holds line ``before`` (indented by ``indent``), if any."""
    level = len(indent)
    for line in reversed(lines[:before]):
        text = line.strip()
        width = len(line) - len(line.lstrip())
        if not text or text.startswith("#") or width >= level:
            continue
        match = _DEF.match(line)
        if match:
            return match.group(2)
        level = width  # an enclosing for/if/with/class: look further out
    return None


def stub_line(indent: str, function: str | None, hint: str = "") -> str:
    """The line that replaces a code solution: ``raise NotImplementedError("Exercise: ...")``."""
    if hint:
        message = f"Exercise: {hint}"
    elif function:
        message = f"Exercise: complete {function}()"
    else:
        message = "Exercise: write your code here"
    return f"{indent}raise NotImplementedError({json.dumps(message, ensure_ascii=False)})"


def student_source(source: str, cell_type: str, where: str = "cell") -> str:
    """One cell's source with solutions replaced and hidden tests removed.

    Args:
        source: the instructor cell's text.
        cell_type: ``"code"`` (solutions become a ``NotImplementedError`` stub) or
            ``"markdown"`` (solutions become a placeholder for the answer).
        where: how to name the cell in error messages.
    """
    if cell_type not in ("code", "markdown"):
        raise ValueError(f"cell_type must be 'code' or 'markdown', got {cell_type!r}")
    blocks = find_blocks(source, where)
    if not blocks:
        return source
    lines = source.splitlines()
    out: list[str] = []
    position = 0
    for block in blocks:
        out.extend(lines[position: block.start])
        if block.kind == "solution":
            if cell_type == "code":
                out.append(stub_line(block.indent, _enclosing_function(lines, block.start, block.indent), block.hint))
            else:
                out.append(block.indent + MARKDOWN_PLACEHOLDER)
        position = block.end + 1
    out.extend(lines[position:])
    return "\n".join(out)


def solution_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Stripped lines that only the instructor may see.

    These are the non-empty lines inside solution and hidden-test blocks that do
    not also occur outside such blocks in the same notebook (a line such as
    ``return out`` in the student's visible code is no leak).
    """
    inside, outside = set(), set()
    for index, cell in enumerate(nb.cells):
        lines = cell.source.splitlines()
        hidden = set()
        for block in find_blocks(cell.source, f"cell {index}"):
            hidden.update(range(block.start + 1, block.end))
        for number, line in enumerate(lines):
            text = line.strip()
            if text:
                (inside if number in hidden else outside).add(text)
    return inside - outside


def leaked_lines(instructor: nbformat.NotebookNode, student: nbformat.NotebookNode) -> list[str]:
    """Solution or hidden-test lines of ``instructor`` that appear in ``student`` (should be empty)."""
    secret = solution_lines(instructor)
    visible = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    return sorted(secret & visible)


def colab_url(path: str, branch: str = "main") -> str:
    """Open-in-Colab address of ``path`` (e.g. ``"exercises/00_overview.ipynb"``) on ``branch``."""
    return f"{COLAB_PREFIX}{branch}/{path}"


def _count(n: int, noun: str) -> str:
    """``"1 piece"``, ``"3 pieces"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def note_cell(source_path: str, code: int, answers: int) -> nbformat.NotebookNode:
    """The first cell of a student version: what is left to the student, where the notebook came from."""
    parts = []
    if code:
        parts.append(
            f"{_count(code, 'piece')} of code to write: each raises `NotImplementedError` until you replace that "
            "line with your code, and the check cell after it tells you whether your answer is right"
        )
    if answers:
        parts.append(f"{_count(answers, 'written answer')} to give in the cell that says "
                     f"“{MARKDOWN_PLACEHOLDER.strip('*')}” (graded by your instructor)")
    what = ("The exercises are left for you: " + "; ".join(parts) + ".") if parts else "This notebook has no exercises."
    cell = nbformat.v4.new_markdown_cell(
        f"> **Student version.** {what} Generated from `{source_path}` (the instructor "
        "version) by `make exercises`."
    )
    cell.id = NOTE_CELL_ID
    cell.metadata["slideshow"] = {"slide_type": "slide"}
    return cell


def exercise_badges(source: str, name: str) -> tuple[str, int]:
    """A markdown cell's ``source`` with its Open-in-Colab links to ``notebooks/<name>`` pointed at
    ``exercises/<name>``, and how many links were changed."""
    count = 0

    def to_exercises(match: re.Match) -> str:
        nonlocal count
        if match.group(2) != name:
            return match.group(0)
        count += 1
        return colab_url(f"{EXERCISE_DIR}/{name}", match.group(1))

    return _COLAB_LINK.sub(to_exercises, source), count


def student_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student version of the instructor notebook ``nb``.

    Args:
        nb: an nbformat 4 notebook from ``notebooks/`` (left unchanged).
        name: its file name, e.g. ``"01_upsampling.ipynb"``; its Open-in-Colab badge
            must point at ``notebooks/<name>``.

    Returns:
        A new notebook: note cell first, solutions stubbed, hidden tests removed,
        outputs and saved widget state cleared, badge pointing at ``exercises/<name>``.

    Raises:
        TypeError: ``nb`` is not a notebook.
        ValueError: unbalanced markers, or no Colab badge for ``notebooks/<name>``.
    """
    if not isinstance(nb, nbformat.NotebookNode) or "cells" not in nb:
        raise TypeError(f"nb must be an nbformat NotebookNode, got {type(nb).__name__}")
    student = copy.deepcopy(nb)
    student.metadata.pop("widgets", None)
    badges = 0

    cells, solutions = [], {"code": 0, "markdown": 0}
    for index, cell in enumerate(student.cells):
        if cell.cell_type in solutions:
            blocks = find_blocks(cell.source, f"{name} cell {index}")
            solutions[cell.cell_type] += sum(b.kind == "solution" for b in blocks)
            cell.source = student_source(cell.source, cell.cell_type, f"{name} cell {index}")
            if blocks and not cell.source.strip():
                continue  # a cell that held only hidden tests
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "markdown":
            cell.source, found = exercise_badges(cell.source, name)
            badges += found
        cells.append(cell)
    if not badges:
        raise ValueError(
            f"{name}: expected an Open-in-Colab badge linking to {COLAB_PREFIX}<branch>/{SOURCE_DIR}/{name}, "
            "found none"
        )
    if cells and cells[0].metadata.get("slideshow", {}).get("slide_type") == "slide":
        cells[0].metadata["slideshow"] = {"slide_type": "-"}  # the note and the title share a slide
    student.cells = [note_cell(f"{SOURCE_DIR}/{name}", solutions["code"], solutions["markdown"]), *cells]
    nbformat.validate(student)
    return student


def generate(sources: list[Path], output_dir: Path) -> list[Path]:
    """Write the student version of every notebook in ``sources`` into ``output_dir``.

    Returns:
        The written paths, in the order of ``sources``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        source = Path(source)
        if source.suffix != ".ipynb":
            raise ValueError(f"sources must be .ipynb files, got {str(source)!r}")
        target = output_dir / source.name
        target.write_text(render(source), encoding="utf-8")
        written.append(target)
        style = source.parent / SLIDE_STYLE
        if style.is_file():  # the student's slides look like the instructor's
            shutil.copyfile(style, output_dir / SLIDE_STYLE)
    return written


def render(source: Path) -> str:
    """The text of the student version of the notebook file ``source``."""
    nb = nbformat.read(source, as_version=4)
    return nbformat.writes(student_notebook(nb, Path(source).name)) + "\n"


def out_of_date(sources: list[Path], output_dir: Path, orphans: bool = True) -> list[str]:
    """Names of the student notebooks in ``output_dir`` that are missing or stale.

    With ``orphans``, student notebooks without a source in ``sources`` count too.
    """
    output_dir = Path(output_dir)
    problems = []
    for source in map(Path, sources):
        target = output_dir / source.name
        if not target.is_file() or target.read_text(encoding="utf-8") != render(source):
            problems.append(source.name)
        style, copied = source.parent / SLIDE_STYLE, output_dir / SLIDE_STYLE
        if style.is_file() and (not copied.is_file() or copied.read_bytes() != style.read_bytes()):
            problems.append(SLIDE_STYLE)
    if orphans:
        names = {Path(s).name for s in sources}
        problems += [p.name for p in output_dir.glob("*.ipynb") if p.name not in names]
    return sorted(set(problems))


def main(argv: list[str] | None = None) -> int:
    """Command line: write (or ``--check``) the student versions."""
    parser = argparse.ArgumentParser(prog="python -m seglib.tools.exercises", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help=f"instructor notebooks (default: all of {SOURCE_DIR}/, and stale copies are removed)")
    parser.add_argument("--output-dir", type=Path, default=Path(EXERCISE_DIR))
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the output is out of date")
    args = parser.parse_args(argv)
    everything = not args.notebooks
    sources = args.notebooks or sorted(Path(SOURCE_DIR).glob("*.ipynb"))
    if not sources:
        parser.error(f"no notebooks given and none in {SOURCE_DIR}/")
    if args.check:
        stale = out_of_date(sources, args.output_dir, orphans=everything)
        if stale:
            print(f"{args.output_dir}/ is out of date ({', '.join(stale)}): run `make exercises`", file=sys.stderr)
            return 1
        print(f"{args.output_dir}/ is up to date ({len(sources)} notebooks)")
        return 0
    for path in generate(sources, args.output_dir):
        print(f"wrote {path}")
    if everything:
        for orphan in sorted(set(args.output_dir.glob("*.ipynb")) - {args.output_dir / s.name for s in sources}):
            orphan.unlink()
            print(f"removed {orphan} (its notebook is gone)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
