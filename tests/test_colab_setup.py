"""The setup cell of every notebook (both versions), run as if on Colab, installs nothing here.

A stand-in ``google.colab`` module makes the cell take its Colab branch, and a
recording stand-in for ``subprocess`` collects the commands it would run.
"""

from __future__ import annotations

import re
import sys
import tomllib
import types
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

import seglib
from seglib.tools.exercises import REPOSITORY

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("*.ipynb"))
IDS = [f"{p.parent.name}/{p.name}" for p in NOTEBOOKS]
# Versions Colab has shipped (ipywidgets has stayed at 7.7.1): pip must keep them.
COLAB_SHIPS = {"torch": "2.5.1", "torchvision": "0.20.1", "ipywidgets": "7.7.1"}


def setup_cell(path: Path) -> str:
    """The setup cell up to ``seglib.setup()``: the notebook's own imports after it are left out."""
    nb = nbformat.read(path, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "google.colab" in c.source]
    assert len(cells) == 1, f"{path.name}: expected one setup cell mentioning google.colab, found {len(cells)}"
    lines = cells[0].splitlines()
    end = next((i for i, line in enumerate(lines) if "seglib.setup(" in line), None)
    assert end is not None, f"{path.name}: the setup cell does not call seglib.setup()"
    return "\n".join(lines[: end + 1])


class Recorder:
    """Stands in for the ``subprocess`` module: records ``run`` calls, runs nothing."""

    def __init__(self):
        self.calls = []

    def run(self, args, **kwargs):
        self.calls.append((list(args), kwargs))
        return types.SimpleNamespace(returncode=0, args=args)


def run_setup(source: str, monkeypatch, on_colab: bool = True):
    """Execute the setup cell; return the recorder and the cell's namespace."""
    recorder = Recorder()
    fake_subprocess = types.ModuleType("subprocess")
    fake_subprocess.run = recorder.run
    monkeypatch.setitem(sys.modules, "subprocess", fake_subprocess)
    if on_colab:
        google = types.ModuleType("google")
        colab = types.ModuleType("google.colab")
        google.colab = colab
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", colab)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(seglib, "setup", lambda *a, **k: "cpu")
    namespace = {"__name__": "__main__"}
    exec(compile(source, "setup cell", "exec"), namespace)  # noqa: S102 - the notebook's own cell
    return recorder, namespace


def test_there_are_setup_cells():
    assert any(p.parent.name == "notebooks" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_on_colab_it_clones_the_course_at_course_ref_and_installs_seglib(path, monkeypatch):
    recorder, ns = run_setup(setup_cell(path), monkeypatch)
    ref = ns["COURSE_REF"]
    assert isinstance(ref, str) and ref
    assert recorder.calls == [
        (["git", "clone", "--quiet", "--depth", "1", "--branch", ref,
          f"https://github.com/{REPOSITORY}.git", "/content/course"], {"check": True}),
        ([sys.executable, "-m", "pip", "install", "--quiet", "-e", "/content/course"], {"check": True}),
    ]
    assert sys.path[0] == "/content/course"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_it_never_installs_torch_or_ipywidgets_itself(path, monkeypatch):
    recorder, _ = run_setup(setup_cell(path), monkeypatch)
    words = [word for args, _ in recorder.calls for word in args]
    for banned in ("torch", "torchvision", "ipywidgets", "--upgrade", "-U", "--force-reinstall", "--no-deps"):
        assert not any(w == banned or w.startswith(banned + "=") for w in words), f"the setup cell passes {banned!r} to pip"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_course_ref_is_the_single_variable_at_the_top(path):
    source = setup_cell(path)
    code = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert code[0].startswith("COURSE_REF = "), "COURSE_REF must be the first statement of the setup cell"
    assert len(re.findall(r"^COURSE_REF\s*=", source, flags=re.M)) == 1


def test_every_notebook_pins_the_same_course_ref_and_version(monkeypatch):
    pins = set()
    for path in NOTEBOOKS:
        _, ns = run_setup(setup_cell(path), monkeypatch, on_colab=False)
        pins.add((ns["COURSE_REF"], ns["COURSE_VERSION"]))
    assert len(pins) == 1, f"the notebooks disagree on COURSE_REF/COURSE_VERSION: {sorted(pins)}"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert pins == {(f"v{version}", version)}, "COURSE_REF must be the release tag v<version>"
    assert seglib.__version__ == version


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_elsewhere_it_installs_nothing(path, monkeypatch):
    recorder, _ = run_setup(setup_cell(path), monkeypatch, on_colab=False)
    assert recorder.calls == []


@pytest.mark.parametrize("path", NOTEBOOKS[:1], ids=IDS[:1])
def test_a_different_installed_seglib_version_stops_the_notebook(path, monkeypatch):
    monkeypatch.setattr(seglib, "__version__", "0.0.9")
    with pytest.raises(AssertionError, match=r"seglib 0\.0\.9 installed, the course needs"):
        run_setup(setup_cell(path), monkeypatch)


def test_colab_keeps_its_torch_and_ipywidgets():
    """pip leaves Colab's packages alone only if seglib's requirements accept their versions."""
    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {Requirement(r).name: Requirement(r) for r in requirements}
    for name, version in COLAB_SHIPS.items():
        assert name in by_name, f"{name} is not a dependency of seglib"
        assert by_name[name].specifier.contains(version), (
            f"seglib requires {by_name[name]}, so pip would replace Colab's {name} {version}"
        )
