"""The package layout's rules: imports go downwards, modules stay small."""

import ast
from pathlib import Path

import pytest

SEGLIB = Path(__file__).resolve().parents[1] / "seglib"
MODULES = sorted(SEGLIB.rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SEGLIB.parent).with_suffix("").parts).removesuffix(".__init__")


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_module_is_at_most_450_lines(path):
    assert len(path.read_text().splitlines()) <= 450


@pytest.mark.parametrize("path", sorted((SEGLIB / "models").rglob("*.py")), ids=module_name)
def test_models_import_no_plotting_training_or_lab(path):
    bad = [name for name in imported(path)
           if name.startswith(("matplotlib", "seglib.labs", "seglib.train", "seglib.viz", "seglib.tools"))]
    assert not bad, bad


@pytest.mark.parametrize("path", [p for p in MODULES if "labs" not in p.parts and "tools" not in p.parts],
                         ids=module_name)
def test_nothing_below_the_labs_imports_a_lab_or_a_tool(path):
    bad = [name for name in imported(path) if name.startswith(("seglib.labs", "seglib.tools"))]
    assert not bad, bad


@pytest.mark.parametrize("path", sorted((SEGLIB / "labs").glob("[!_]*.py")), ids=module_name)
def test_no_lab_imports_another_lab(path):
    assert not [name for name in imported(path) if name.startswith("seglib.labs")]


def test_every_notebook_has_a_lab_and_a_checks_module_of_the_same_name():
    from seglib import labs

    for name in labs.LABS:
        assert (SEGLIB / "labs" / f"{name}.py").exists(), name
    notebooks = {path.stem.split("_", 1)[1] for path in (SEGLIB.parent / "notebooks").glob("0[1-6]_*.ipynb")}
    assert notebooks == set(labs.LABS)
    lab_modules = {path.stem for path in (SEGLIB / "labs").glob("[!_]*.py")}   # 00's overview included
    assert {path.stem for path in (SEGLIB / "checks").glob("[!_]*.py")} - {"core"} <= lab_modules
