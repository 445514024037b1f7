"""The suite benchmark: execute every notebook headless and measure it.

``python -m seglib.tools.bench`` (``make bench``) runs each notebook of
``notebooks/`` with nbclient in the active profile, each in its own process,
and writes ``bench/results/<profile>-<machine>.json`` with, per notebook, the
wall time, the kernel's peak host memory, the peak GPU memory, the headline
metrics the notebook recorded with :func:`seglib.report.record` and its claims
ledger (:func:`seglib.report.claim`). It then prints the table and each
notebook's ledger as Markdown (the format of ``BENCHMARKS.md``). Run on a subset
of the notebooks, it updates their rows of an existing results file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seglib.common import markdown_table

ROOT = Path(__file__).resolve().parents[2]
PEAK_GPU_CELL = (
    "import json as _json, torch as _torch\n"
    "print('SEGLIB_PEAK_GPU_MB=' + _json.dumps(_torch.cuda.max_memory_allocated() / 2**20 "
    "if _torch.cuda.is_available() else 0.0))"
)


def machine_name() -> str:
    """A file-name-safe name of this machine's accelerator, or its CPU and core count."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
    else:
        name = _cpu_model() + f" {os.cpu_count()} cores"
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def vector_extension() -> str:
    """The CPU's widest vector extension (``"avx512"``, ``"avx2"``, ``"avx"``), else its architecture.

    Two machines with the same model name can differ here, and the CPU time of a
    notebook with them (a 2-core AVX-512 machine ran notebook 06 about 1.5 times
    faster than an AVX2 one), so each notebook's result records it.
    """
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        flags = []
    return next((name for flag, name in (("avx512f", "avx512"), ("avx2", "avx2"), ("avx", "avx")) if flag in flags),
                platform.machine() or "cpu")


def run_notebook(path: Path, timeout: int = 1800) -> dict:
    """Execute one notebook in this process's child kernel and measure it.

    Returns a dict with ``wall_s``, ``peak_host_mb`` (kernel's peak resident
    memory), ``peak_gpu_mb``, ``metrics`` and ``claims`` (what the notebook recorded),
    ``date`` and ``cpu`` (:func:`vector_extension`).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_GPU_CELL))
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        os.environ["SEGLIB_REPORT"] = str(report_path)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        client.execute()
        wall = time.perf_counter() - start
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
    peak_gpu = 0.0
    for output in nb.cells[-1].get("outputs", []):
        match = re.search(r"SEGLIB_PEAK_GPU_MB=([0-9.eE+-]+)", output.get("text", ""))
        if match:
            peak_gpu = float(match.group(1))
    # The kernel was a child of this process and has exited: its peak RSS (KiB on Linux).
    peak_host = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_s": round(wall, 1), "peak_host_mb": round(peak_host), "peak_gpu_mb": round(peak_gpu),
            "metrics": report.get("metrics", {}), "claims": report.get("claims", {}),
            "date": time.strftime("%Y-%m-%d"), "cpu": vector_extension()}


def results_table(results: dict) -> str:
    """The results of :func:`main` as a Markdown table."""
    rows = [[name, f"{row['wall_s']:.0f}", row["peak_host_mb"], row["peak_gpu_mb"],
             ", ".join(f"{k} {v:.3g}" for k, v in sorted(row["metrics"].items()))]
            for name, row in results["notebooks"].items()]
    header = ["notebook", "wall time (s)", "peak host memory (MB)", "peak GPU memory (MB)", "headline metrics"]
    return (f"Profile `{results['profile']}` on {results['machine']} ({results['date']}), "
            f"total {results['total_s']:.0f} s\n\n" + markdown_table(header, rows, align="lrrrl"))


def ledger_tables(results: dict) -> str:
    """Each notebook's claims ledger (claim, statement, measured, interval, threshold, holds) as Markdown."""
    from seglib.report import Claim, ledger

    parts = []
    for name, row in results["notebooks"].items():
        claims = {key: Claim(c["statement"], c["measured"], c["threshold"], c["relation"],
                             tuple(c["interval"]) if c["interval"] is not None else None)
                  for key, c in row.get("claims", {}).items()}
        if claims:
            parts.append(f"### {name}\n\n" + ledger(claims))
    return "\n\n".join(parts)


README_ROW = re.compile(r"^(\| `(\d\d_\w+)` \|[^\n]*\| )([^|\n]*)( \| )([^|\n]*)( \|)$", re.MULTILINE)
"""A notebook's row of the README's table: ``| `NN_name` | what it teaches | CPU time | GPU time |``."""


def readme_with_times(text: str, results: dict) -> str:
    """``text`` (the README) with the time column of ``results``' profile set from ``results``.

    Each notebook row's CPU (or GPU) cell becomes the measured wall time, e.g.
    ``174 s``; a notebook that ``results`` lacks keeps its cell.
    """
    group = {"cpu": 3, "gpu": 5}.get(results.get("profile"))
    if group is None:
        raise ValueError(f"results must be of the cpu or gpu profile, got {results.get('profile')!r}")

    def replace(match: re.Match) -> str:
        cells = {g: match.group(g) for g in (1, 3, 4, 5, 6)}
        row = results["notebooks"].get(match.group(2))
        if row is not None:
            cells[group] = f"{row['wall_s']:.0f} s"
        return "".join(cells.values())

    return README_ROW.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seglib.tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--show", type=Path, metavar="RESULTS_JSON",
                        help="print the table and the claims ledgers of a results file, run nothing")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # internal: run one, print JSON
    args = parser.parse_args(argv)
    if args.one:
        print("SEGLIB_BENCH=" + json.dumps(run_notebook(args.one.resolve())))
        return 0
    if args.show:
        results = json.loads(args.show.read_text())
        print(results_table(results) + "\n\n## Claims ledger\n\n" + ledger_tables(results))
        return 0

    from seglib.env import profile

    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        parser.error(f"no notebooks to run in {ROOT / 'notebooks'}")
    results = {"profile": profile(), "machine": machine_name(), "date": time.strftime("%Y-%m-%d"),
               "notebooks": {}}
    target = args.out / f"{results['profile']}-{results['machine']}.json"
    if args.notebooks and target.exists():  # a subset updates its rows of the existing file
        results["notebooks"] = json.loads(target.read_text())["notebooks"]
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        done = subprocess.run([sys.executable, "-m", "seglib.tools.bench", "--one", str(path)],
                              capture_output=True, text=True)
        line = next((l for l in done.stdout.splitlines() if l.startswith("SEGLIB_BENCH=")), None)
        if done.returncode != 0 or line is None:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
            raise SystemExit(f"{path.name} failed to execute (exit code {done.returncode})")
        results["notebooks"][path.stem] = json.loads(line.split("=", 1)[1])
    results["notebooks"] = dict(sorted(results["notebooks"].items()))
    results["total_s"] = sum(r["wall_s"] for r in results["notebooks"].values())
    args.out.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    readme = ROOT / "README.md"
    readme.write_text(readme_with_times(readme.read_text(encoding="utf-8"), results), encoding="utf-8")
    print(results_table(results))
    print("\n## Claims ledger\n\n" + ledger_tables(results))
    print(f"\nwritten to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
