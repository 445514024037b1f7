"""The zoo's mechanics on a throwaway entry, and the real manifest's integrity."""

import json

import pytest
import torch
from torch import nn

from seglib import zoo


def build_tiny(channels=4):
    return nn.Conv2d(3, channels, 1)


def evaluate_tiny(model):
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return {"mean_output": round(float(model(x).mean()), 6)}


def make_result():
    torch.manual_seed(0)
    model = build_tiny(channels=4)
    return zoo.ZooResult(model=model, builder="tests.test_zoo:build_tiny", kwargs={"channels": 4},
                         evaluator="tests.test_zoo:evaluate_tiny", metrics=evaluate_tiny(model),
                         training={"steps": 0}, seed=0)


def test_save_and_load_roundtrip(tmp_path):
    result = make_result()
    record = zoo.save("tiny", result, tmp_path)
    assert record["sha256"] == zoo.sha256(tmp_path / "tiny.pt")
    assert json.loads((tmp_path / "manifest.json").read_text())["tiny"]["kwargs"] == {"channels": 4}
    model = zoo.load("tiny", directory=tmp_path)
    assert not model.training
    assert torch.allclose(model.weight, result.model.weight, atol=1e-3)  # stored in half precision
    assert zoo.evaluate("tiny", directory=tmp_path)["mean_output"] == pytest.approx(
        result.metrics["mean_output"], abs=1e-2)
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


def test_retrain_uses_recipe_and_records_stored_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "recipes", lambda: {"tiny": "tests.test_zoo:recipe"})
    record = zoo.retrain("tiny", device="cpu", directory=tmp_path)
    assert record["recipe"] == "tests.test_zoo:recipe"
    assert record["metrics"] == evaluate_tiny(zoo.load("tiny", directory=tmp_path))
    with pytest.raises(zoo.ZooError, match="no recipe for 'nope'"):
        zoo.retrain("nope", directory=tmp_path)


def recipe(device):
    return make_result()


def test_resolve_rejects_bad_reference():
    with pytest.raises(ValueError, match="module:function"):
        zoo.resolve("no_colon")


def test_zoo_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLIB_ZOO", str(tmp_path))
    assert zoo.zoo_dir() == tmp_path
    assert zoo.manifest() == {}


ENTRIES = sorted(zoo.manifest())


def test_every_recipe_has_an_entry():
    assert sorted(zoo.recipes()) == ENTRIES


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
    measured = zoo.evaluate(name)
    for key, value in recorded.items():
        if isinstance(value, (int, float)):
            assert measured[key] == pytest.approx(value, abs=0.01), key
