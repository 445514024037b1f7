"""The suite's own model zoo: checkpoints trained by seglib on generated scenes.

On a CPU a notebook trains live for about a minute, then loads a checkpoint
from here, trained by the same code for longer on the same generated data,
for its full-quality tables. Each entry is a file under ``data/zoo/`` plus a
record in ``data/zoo/manifest.json``::

    {"fcn8s": {"file": "fcn8s.pt", "sha256": "...", "dtype": "float16",
               "builder": "seglib.models.fcn:build_fcn", "kwargs": {...},
               "evaluator": "seglib.recipes:evaluate_semantic",
               "recipe": "seglib.recipes:fcn8s", "seed": 0,
               "command": "make zoo NAME=fcn8s", "seglib_version": "0.1.0",
               "training": {...}, "metrics": {"miou": 0.91, ...}}}

``load(name)`` verifies the hash and loads with ``weights_only=True``;
``python -m seglib.zoo [NAME ...]`` (``make zoo``) retrains entries with their
recipe and rewrites the manifest; ``evaluate(name)`` re-measures an entry's
metrics on the fixed test split.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

ZOO_VARIABLE = "SEGLIB_ZOO"
MAX_ENTRY_BYTES = 10 * 2**20


class ZooError(RuntimeError):
    """A zoo entry is unknown, missing or corrupt; the message says how to fix it."""


@dataclass
class ZooResult:
    """What a training recipe returns: the model and how to rebuild and judge it."""

    model: nn.Module
    builder: str
    kwargs: dict
    evaluator: str
    metrics: dict
    training: dict = field(default_factory=dict)
    seed: int = 0


def zoo_dir() -> Path:
    """Folder of the zoo: ``$SEGLIB_ZOO`` if set, else ``data/zoo`` of the repository."""
    override = os.environ.get(ZOO_VARIABLE)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "data" / "zoo"


def manifest(directory: Path | None = None) -> dict:
    """The manifest (entry name -> record); empty if there is none yet."""
    path = (directory or zoo_dir()) / "manifest.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(reference: str) -> Callable:
    """Import ``"package.module:function"`` and return the function."""
    if not isinstance(reference, str) or ":" not in reference:
        raise ValueError(f"expected 'module:function', got {reference!r}")
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _entry(name: str, directory: Path) -> dict:
    entries = manifest(directory)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise ZooError(f"no zoo entry named {name!r} (known: {known})")
    return entries[name]


def load_state(name: str, directory: Path | None = None) -> dict[str, torch.Tensor]:
    """The verified float32 state dict of entry ``name``."""
    directory = directory or zoo_dir()
    entry = _entry(name, directory)
    path = directory / entry["file"]
    rebuild = f"rebuild it with `make zoo NAME={name}` (or `python -m seglib.zoo {name}`)"
    if not path.exists():
        raise ZooError(f"zoo checkpoint {path} is missing; {rebuild}")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise ZooError(f"zoo checkpoint {path} is corrupt (sha256 {digest[:12]}..., expected "
                       f"{entry['sha256'][:12]}...); {rebuild}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def build(name: str, directory: Path | None = None) -> nn.Module:
    """A freshly initialised model of entry ``name`` (its builder and kwargs)."""
    entry = _entry(name, directory or zoo_dir())
    return resolve(entry["builder"])(**entry["kwargs"])


def load(name: str, device: torch.device | str = "cpu", directory: Path | None = None) -> nn.Module:
    """The checkpoint of entry ``name``, verified, in eval mode on ``device``."""
    model = build(name, directory)
    model.load_state_dict(load_state(name, directory))
    return model.to(device).eval()


def metrics(name: str, directory: Path | None = None) -> dict:
    """The metrics recorded for entry ``name`` on the fixed test split."""
    return dict(_entry(name, directory or zoo_dir())["metrics"])


def evaluate(name: str, device: torch.device | str = "cpu", directory: Path | None = None) -> dict:
    """Re-measure entry ``name`` with its evaluator (on the fixed test split)."""
    entry = _entry(name, directory or zoo_dir())
    return resolve(entry["evaluator"])(load(name, device, directory))


def save(name: str, result: ZooResult, directory: Path | None = None, recipe: str | None = None) -> dict:
    """Store ``result.model`` as entry ``name`` (half precision) and update the manifest."""
    from seglib import __version__

    directory = directory or zoo_dir()
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
             for k, v in result.model.state_dict().items()}
    path = directory / f"{name}.pt"
    torch.save(state, path)
    size = path.stat().st_size
    if size > MAX_ENTRY_BYTES:
        path.unlink()
        raise ZooError(f"checkpoint of {name!r} is {size / 2**20:.1f} MiB, over the "
                       f"{MAX_ENTRY_BYTES / 2**20:.0f} MiB limit of a zoo entry")
    record = {
        "file": path.name,
        "sha256": sha256(path),
        "dtype": "float16",
        "builder": result.builder,
        "kwargs": result.kwargs,
        "evaluator": result.evaluator,
        "recipe": recipe,
        "command": f"make zoo NAME={name}",
        "seed": result.seed,
        "seglib_version": __version__,
        "training": result.training,
        "metrics": result.metrics,
    }
    with _locked(directory):
        entries = manifest(directory)
        entries[name] = record
        _write_manifest(entries, directory)
    return record


def recipes() -> dict[str, str]:
    """Entry name -> ``"module:function"`` of every known training recipe."""
    from seglib.recipes import RECIPES

    return dict(RECIPES)


def retrain(name: str, device: torch.device | str | None = None, directory: Path | None = None) -> dict:
    """Train entry ``name`` with its recipe, re-measure it from the saved file, store it."""
    from seglib.env import device as default_device

    known = recipes()
    if name not in known:
        raise ZooError(f"no recipe for {name!r} (known: {', '.join(sorted(known)) or 'none'})")
    device = torch.device(device) if device is not None else default_device()
    result = resolve(known[name])(device)
    save(name, result, directory, recipe=known[name])
    # The metrics of record are those of the stored half-precision weights.
    measured = evaluate(name, device, directory)
    with _locked(directory or zoo_dir()):
        entries = manifest(directory)
        entries[name]["metrics"] = measured
        _write_manifest(entries, directory or zoo_dir())
    return entries[name]


@contextlib.contextmanager
def _locked(directory: Path):
    """Hold an exclusive lock on the manifest while it is read, changed and written."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".manifest.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_manifest(entries: dict, directory: Path) -> None:
    (directory / "manifest.json").write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seglib.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="entries to retrain (default: all recipes)")
    parser.add_argument("--list", action="store_true", help="list entries and their metrics")
    args = parser.parse_args(argv)
    if args.list:
        for name, entry in sorted(manifest().items()):
            print(f"{name:<24}{json.dumps(entry['metrics'])}")
        return 0
    for name in args.names or sorted(recipes()):
        record = retrain(name)
        print(f"{name}: {json.dumps(record['metrics'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
