"""The zoo's mechanics on a throwaway entry, its errors, and the real manifest's integrity."""

import json
import re
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from seglib import zoo
from seglib.models import registry
from seglib.tools import zoo as zoo_tool
from seglib.train import History


def build_tiny(channels=4):
    return nn.Conv2d(3, channels, 1)


def evaluate_tiny(model):
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return {"mean_output": round(float(model(x).mean()), 6)}


def train_tiny(model, steps, **options):
    return History(steps=[steps], seconds=[0.0], loss=[1.0])


TINY_LAB = SimpleNamespace(train=train_tiny, evaluate=evaluate_tiny, ZOO_ENTRIES={})
RECIPE = zoo.Recipe(lab="tiny_lab", builder="tiny", kwargs={"channels": 4}, steps=1, batch_size=1, lr=0.1, loss="none")


@pytest.fixture(autouse=True)
def tiny_builder(monkeypatch):
    monkeypatch.setitem(registry.BUILDERS, "tiny", build_tiny)


def make_result():
    torch.manual_seed(0)
    model = build_tiny(channels=4)
    return zoo.ZooResult(model=model, recipe=RECIPE, metrics=evaluate_tiny(model), training={"steps": 0})


def test_save_and_load_roundtrip(tmp_path):
    result = make_result()
    record = zoo.save("tiny", result, tmp_path)
    assert record["sha256"] == zoo.sha256(tmp_path / "tiny.pt")
    stored = json.loads((tmp_path / "manifest.json").read_text())["tiny"]
    assert stored["kwargs"] == {"channels": 4} and stored["builder"] == "tiny" and stored["lab"] == "tiny_lab"
    assert stored["recipe"] == {"steps": 1, "batch_size": 1, "lr": 0.1, "loss": "none", "seed": 0, "eval_every": None}
    model = zoo.load("tiny", directory=str(tmp_path))  # a str directory works as well as a Path
    assert not model.training
    assert torch.allclose(model.weight, result.model.weight, atol=1e-3)  # stored in half precision
    assert zoo.metrics("tiny", tmp_path) == result.metrics


def test_missing_and_corrupt_files_are_clear_errors(tmp_path):
    zoo.save("tiny", make_result(), tmp_path)
    with pytest.raises(zoo.ZooError, match="no zoo entry named 'other'"):
        zoo.load("other", directory=tmp_path)
    (tmp_path / "tiny.pt").write_bytes(b"garbage")
    with pytest.raises(zoo.ZooError, match="corrupt.*make zoo NAME=tiny"):
        zoo.load("tiny", directory=tmp_path)
    (tmp_path / "tiny.pt").unlink()
    with pytest.raises(zoo.ZooError, match="missing.*make zoo NAME=tiny"):
        zoo.load("tiny", directory=tmp_path)


def test_broken_manifests_are_zoo_errors_that_name_the_manifest(tmp_path):
    with pytest.raises(zoo.ZooError, match=re.escape(str(tmp_path / "manifest.json")) + r".*known: none"):
        zoo.load("tiny", directory=tmp_path)
    zoo.save("tiny", make_result(), tmp_path)
    text = (tmp_path / "manifest.json").read_text()
    (tmp_path / "manifest.json").write_text(text[: len(text) // 2])  # half written
    with pytest.raises(zoo.ZooError, match="not valid JSON.*git checkout"):
        zoo.load("tiny", directory=tmp_path)
    entry = json.loads(text)
    del entry["tiny"]["sha256"]
    (tmp_path / "manifest.json").write_text(json.dumps(entry))
    with pytest.raises(zoo.ZooError, match="lacks sha256.*make zoo NAME=tiny"):
        zoo.load("tiny", directory=tmp_path)
    with pytest.raises(TypeError, match="directory must be a str or a path, got int"):
        zoo.load("tiny", directory=3)


def test_retrain_runs_the_recipe_and_records_stored_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo_tool, "recipes", lambda: {"tiny": RECIPE})
    monkeypatch.setattr(zoo_tool.labs, "get", lambda name: TINY_LAB)
    record = zoo_tool.retrain("tiny", device="cpu", directory=tmp_path)
    assert record["recipe"]["steps"] == 1 and record["training"]["loss_curve"] == {"steps": [1], "loss": [1.0]}
    assert record["metrics"] == evaluate_tiny(zoo.load("tiny", directory=tmp_path))
    with pytest.raises(zoo.ZooError, match="no recipe for 'nope'"):
        zoo_tool.retrain("nope", directory=tmp_path)


def test_zoo_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLIB_ZOO", str(tmp_path))
    assert zoo.zoo_dir() == tmp_path
    assert zoo.manifest() == {}


ENTRIES = sorted(zoo.manifest())


def test_every_entry_has_its_recipe_and_no_import_path():
    recipes = zoo_tool.recipes()
    assert sorted(recipes) == ENTRIES
    for name, entry in zoo.manifest().items():
        recipe = recipes[name]
        assert (entry["lab"], entry["builder"], entry["kwargs"]) == (recipe.lab, recipe.builder, recipe.kwargs), name
        assert entry["recipe"] == recipe.training(), name
    assert not re.search(r"seglib\.\w+[.:]", (zoo.zoo_dir() / "manifest.json").read_text())


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_file_matches_hash_and_size(name):
    entry = zoo.manifest()[name]
    path = zoo.zoo_dir() / entry["file"]
    assert path.stat().st_size <= zoo.MAX_ENTRY_BYTES
    assert zoo.sha256(path) == entry["sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ENTRIES)
def test_entry_reproduces_its_metrics(name):
    recorded = zoo.metrics(name)
    measured = zoo_tool.evaluate(name)
    for key, value in recorded.items():
        if isinstance(value, (int, float)):
            assert measured[key] == pytest.approx(value, abs=0.01), key
