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


def test_claim_holds_and_writes_the_ledger(tmp_path, monkeypatch):
    path = tmp_path / "nb.json"
    monkeypatch.setenv("SEGLIB_REPORT", str(path))
    report.claim("gain", "FCN-8s beats FCN-32s", 0.2, 0.0, interval=(0.1, 0.3))
    report.claim("small", "the error stays small", 0.01, 0.05, relation="<")
    data = json.loads(path.read_text())["claims"]
    assert data["gain"] == {"statement": "FCN-8s beats FCN-32s", "measured": 0.2, "threshold": 0.0,
                            "relation": ">", "interval": [0.1, 0.3], "holds": True}
    assert data["small"]["holds"] and data["small"]["interval"] is None
    assert set(report.check_claims()) == {"gain", "small"}


@pytest.mark.parametrize("measured, interval, relation, holds", [
    (0.2, (0.1, 0.3), ">", True),
    (0.2, (-0.1, 0.3), ">", False),   # the interval reaches "no difference"
    (-0.1, None, ">", False),
    (0.01, (-0.02, 0.04), "tie", True),
    (0.05, (0.01, 0.09), "tie", False),  # a real difference is no tie
    (0.2, (0.1, 0.3), "<", False),
    (-0.2, (-0.3, -0.1), "<", True),
])
def test_claim_relations(measured, interval, relation, holds):
    assert report.claim("c", "a sentence", measured, 0.0, interval=interval, relation=relation).holds is holds


def test_check_claims_names_what_fails(capsys):
    report.claim("good", "holds", 1.0, 0.5)
    report.claim("bad", "does not hold", 0.1, 0.5)
    with pytest.raises(AssertionError, match="bad: does not hold") as error:
        report.check_claims()
    assert "good" not in str(error.value)
    assert "**NO**" in capsys.readouterr().out


def test_check_claims_needs_a_claim():
    with pytest.raises(AssertionError, match="no claim"):
        report.check_claims()


def test_claim_takes_an_estimate():
    from seglib.metrics.uncertainty import Estimate

    made = report.claim("e", "a difference", Estimate(0.2, 0.1, 0.3), 0.0)
    assert made.interval == (0.1, 0.3) and made.holds


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(statement=" "), ValueError, "statement"),
    (dict(measured="x"), TypeError, "measured"),
    (dict(threshold=math.inf), ValueError, "threshold"),
    (dict(relation=">="), ValueError, "relation"),
    (dict(interval=(0.3, 0.4)), ValueError, "contain measured"),
    (dict(interval=0.1), TypeError, "pair"),
    (dict(relation="tie"), ValueError, "needs an interval"),
])
def test_claim_rejects_bad_input(kwargs, error, match):
    args = dict(name="c", statement="a sentence", measured=0.2, threshold=0.0) | kwargs
    with pytest.raises(error, match=match):
        report.claim(**args)
