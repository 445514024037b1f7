import json
import math

import pytest

from seglib import report


@pytest.fixture(autouse=True)
def clean():
    report.clear()
    yield
    report.clear()


def test_record_collects(monkeypatch):
    monkeypatch.delenv("SEGLIB_REPORT", raising=False)
    report.record("miou", 0.5)
    report.record("steps", 10)
    assert report.recorded() == {"miou": 0.5, "steps": 10.0}


def test_record_writes_json(tmp_path, monkeypatch):
    path = tmp_path / "out" / "nb.json"
    monkeypatch.setenv("SEGLIB_REPORT", str(path))
    monkeypatch.setenv("SEGLIB_PROFILE", "cpu")
    report.record("fcn8s.miou", 0.91)
    report.record("time_s", 12.5)
    data = json.loads(path.read_text())
    assert data["metrics"] == {"fcn8s.miou": 0.91, "time_s": 12.5}
    assert data["profile"] == "cpu"


@pytest.mark.parametrize("name, value, error, match", [
    ("", 1.0, ValueError, "name"),
    ("has space", 1.0, ValueError, "name"),
    ("x", "high", TypeError, "must be a number"),
    ("x", True, TypeError, "bool"),
    ("x", math.nan, ValueError, "finite"),
])
def test_record_rejects_bad_input(name, value, error, match):
    with pytest.raises(error, match=match):
        report.record(name, value)
