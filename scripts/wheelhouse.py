"""Download every wheel an offline GPU machine needs to run `make test-gpu`.

The target machine has Python (default 3.12) and PyTorch preinstalled but no
internet. This takes the versions resolved in this checkout's `.venv`, leaves
out PyTorch and its CUDA stack (the machine's own are used), and downloads
manylinux x86_64 wheels of everything else for the target Python into
`wheelhouse/`, plus a wheel of seglib itself.

    python scripts/wheelhouse.py --python-version 3.12   (make wheelhouse PY=3.12)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*|seglib)$", re.IGNORECASE)
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34)] + ["manylinux2014_x86_64",
                                                                             "manylinux1_x86_64"]


def requirements(venv_python: Path) -> list[str]:
    frozen = subprocess.run([str(venv_python), "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    pinned = [line for line in frozen if "==" in line]
    return [line for line in pinned if not LEFT_OUT.match(line.split("==")[0])] + ["setuptools", "wheel"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--venv-python", type=Path, default=ROOT / ".venv" / "bin" / "python")
    parser.add_argument("--dest", type=Path, default=ROOT / "wheelhouse")
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--implementation", "cp", "--python-version", args.python_version, *platforms,
            "-d", str(args.dest)]
    missing = []
    for requirement in requirements(args.venv_python):
        if subprocess.run([*base, requirement]).returncode != 0:
            missing.append(requirement)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(args.dest),
                    str(ROOT)], check=True)
    count = len(list(args.dest.glob("*.whl")))
    print(f"{count} wheels in {args.dest}")
    if missing:
        print("no wheel for Python", args.python_version, "of:", ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
