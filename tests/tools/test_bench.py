"""The benchmark runner on a tiny notebook, and its table."""

import nbformat
import pytest

from seglib.tools import bench


def test_run_notebook_measures_time_memory_and_metrics(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from seglib import report\nreport.record('answer', 42)\n"
                                          "report.claim('big', 'the answer is big', 42, 10)")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    row = bench.run_notebook(path, timeout=120)
    assert row["metrics"] == {"answer": 42.0}
    assert row["claims"]["big"]["holds"] and row["claims"]["big"]["measured"] == 42.0
    assert row["wall_s"] >= 0 and row["peak_host_mb"] > 10 and row["peak_gpu_mb"] >= 0


def test_markdown_table():
    results = {"profile": "cpu", "machine": "test-2-cores", "date": "2026-01-01", "total_s": 12.0,
               "notebooks": {"00_overview": {"wall_s": 12.0, "peak_host_mb": 900, "peak_gpu_mb": 0,
                                             "metrics": {"miou": 0.912}}}}
    table = bench.results_table(results)
    assert "| 00_overview | 12 | 900 | 0 | miou 0.912 |" in table


def test_machine_name_is_file_safe():
    name = bench.machine_name()
    assert name and all(c.isalnum() or c == "-" for c in name)


def test_vector_extension_names_the_widest_one(monkeypatch, tmp_path):
    assert bench.vector_extension()
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n")
    real_path = bench.Path
    monkeypatch.setattr(bench, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    assert bench.vector_extension() == "avx2"
    cpuinfo.write_text("flags\t\t: avx avx2 avx512f avx512bw\n")
    assert bench.vector_extension() == "avx512"


def test_the_default_run_finds_the_course_notebooks():
    assert len(sorted((bench.ROOT / "notebooks").glob("0*.ipynb"))) == 7


def test_ledger_tables():
    claim = {"statement": "skips help", "measured": 0.2, "threshold": 0.0, "relation": ">",
             "interval": [0.1, 0.3], "holds": True}
    results = {"notebooks": {"02_fcn": {"claims": {"fcn.skips": claim}}, "00_overview": {"claims": {}}}}
    text = bench.ledger_tables(results)
    assert "### 02_fcn" in text and "00_overview" not in text
    assert "| fcn.skips | skips help | 0.2 | [0.1, 0.3] | > 0 | yes |" in text


def test_show_prints_a_results_file(tmp_path, capsys):
    import json

    claim = {"statement": "skips help", "measured": 0.2, "threshold": 0.0, "relation": ">",
             "interval": None, "holds": True}
    results = {"profile": "cpu", "machine": "m", "date": "2026-01-01", "total_s": 5.0,
               "notebooks": {"02_fcn": {"wall_s": 5.0, "peak_host_mb": 1, "peak_gpu_mb": 0, "metrics": {},
                                        "claims": {"fcn.skips": claim}}}}
    path = tmp_path / "cpu-m.json"
    path.write_text(json.dumps(results))
    assert bench.main(["--show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| 02_fcn | 5 |" in out and "| fcn.skips | skips help |" in out


def test_readme_times_are_written_from_a_results_file():
    text = "intro\n| `00_overview` | labels | about 1 min | not timed yet |\n| `99_x` | y | 3 s | 4 s |\n"
    results = {"profile": "cpu", "notebooks": {"00_overview": {"wall_s": 14.6}}}
    assert bench.readme_with_times(text, results) == text.replace("about 1 min", "15 s")
    results["profile"] = "gpu"
    assert bench.readme_with_times(text, results) == text.replace("not timed yet", "15 s")
    with pytest.raises(ValueError, match="cpu or gpu profile"):
        bench.readme_with_times(text, {"profile": "tpu", "notebooks": {}})


def test_the_readme_times_are_those_of_the_cpu_results():
    import json

    readme = (bench.ROOT / "README.md").read_text(encoding="utf-8")
    for path in sorted((bench.ROOT / "bench" / "results").glob("cpu-*.json")):
        results = json.loads(path.read_text())
        assert bench.readme_with_times(readme, results) == readme, \
            f"README's CPU times differ from {path.name}: run make bench (it rewrites them)"
