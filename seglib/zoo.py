"""The suite's own model zoo: checkpoints trained by seglib on generated scenes.

On a CPU a notebook trains live for about a minute, then loads a checkpoint
from here, trained by the same code for longer on the same generated data,
for its full-quality tables. Each entry is a file under ``data/zoo/`` plus a
record in ``data/zoo/manifest.json``, which names everything by stable keys,
never by import path::

    {"fcn8s": {"file": "fcn8s.pt", "sha256": "...", "dtype": "float16",
               "builder": "fcn", "kwargs": {"variant": "8s", "num_classes": 5},
               "lab": "fcn", "recipe": {"steps": 3000, "batch_size": 32, ...},
               "command": "make zoo NAME=fcn8s", "seglib_version": "0.1.0",
               "training": {...}, "metrics": {"miou": 0.91, ...}}}

``builder`` is a name of :data:`seglib.models.registry.BUILDERS`; ``lab`` names
the lab (:mod:`seglib.labs`) whose ``train`` and ``evaluate`` made and judge
the entry; ``recipe`` is the :class:`Recipe` it was trained with.

:func:`load` verifies the hash and loads with ``weights_only=True``. Training
and re-measuring are build tooling: ``make zoo NAME=...`` runs
:mod:`seglib.tools.zoo`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from seglib.models.registry import build as build_model

ZOO_VARIABLE = "SEGLIB_ZOO"
MAX_ENTRY_BYTES = 10 * 2**20
REQUIRED_KEYS = ("file", "sha256", "builder", "kwargs")
"""Keys every manifest record must have for :func:`load`."""


class ZooError(RuntimeError):
    """A zoo entry is unknown, missing or corrupt; the message says how to fix it."""


@dataclass(frozen=True)
class Recipe:
    """How a zoo entry is trained: data only, run by :func:`seglib.tools.zoo.run`.

    ``lab`` names the lab whose ``train(model, steps, batch_size=, lr=, loss=,
    seed=, eval_every=)`` and ``evaluate(model)`` are used; ``builder`` and
    ``kwargs`` build the model (:func:`seglib.models.registry.build`) right
    after ``torch.manual_seed(seed)``; ``loss`` is a loss name of that lab.
    """

    lab: str
    builder: str
    kwargs: dict
    steps: int
    batch_size: int
    lr: float
    loss: str
    seed: int = 0
    eval_every: int | None = None

    def training(self) -> dict:
        """The recipe's training settings as a dict (what the manifest stores under ``recipe``)."""
        return {key: value for key, value in dataclasses.asdict(self).items()
                if key not in ("lab", "builder", "kwargs")}


@dataclass
class ZooResult:
    """What a training run returns: the model, its recipe, metrics and a record of the run."""

    model: nn.Module
    recipe: Recipe
    metrics: dict
    training: dict = field(default_factory=dict)


def _directory(directory: str | os.PathLike | None) -> Path:
    if directory is None:
        return zoo_dir()
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a str or a path, got {type(directory).__name__}")
    return Path(directory)


def zoo_dir() -> Path:
    """Folder of the zoo: ``$SEGLIB_ZOO`` if set, else ``data/zoo`` of the repository."""
    override = os.environ.get(ZOO_VARIABLE)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "data" / "zoo"


def manifest(directory: str | os.PathLike | None = None) -> dict:
    """The manifest (entry name -> record) of ``directory``; empty if there is none yet.

    Raises:
        ZooError: the manifest is not valid JSON (for example half written).
    """
    path = _directory(directory) / "manifest.json"
    if not path.exists():
        return {}
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ZooError(f"zoo manifest {path} is not valid JSON ({error}); restore it with "
                       f"`git checkout -- {path}` or rebuild the entries with `make zoo`") from None
    if not isinstance(entries, dict):
        raise ZooError(f"zoo manifest {path} must hold an object of entries, got {type(entries).__name__}; "
                       f"restore it with `git checkout -- {path}`")
    return entries


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entry(name: str, directory: Path) -> dict:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str naming a zoo entry, got {type(name).__name__}")
    entries = manifest(directory)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise ZooError(f"no zoo entry named {name!r} in {directory / 'manifest.json'} (known: {known})")
    entry = entries[name]
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise ZooError(f"zoo entry {name!r} of {directory / 'manifest.json'} lacks {', '.join(missing)}; "
                       f"restore the manifest with `git checkout -- {directory / 'manifest.json'}` "
                       f"or rebuild the entry with `make zoo NAME={name}`")
    return entry


def load_state(name: str, directory: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The verified float32 state dict of entry ``name``."""
    directory = _directory(directory)
    entry = _entry(name, directory)
    path = directory / entry["file"]
    rebuild = f"rebuild it with `make zoo NAME={name}`"
    if not path.exists():
        raise ZooError(f"zoo checkpoint {path} is missing; {rebuild}")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise ZooError(f"zoo checkpoint {path} is corrupt (sha256 {digest[:12]}..., expected "
                       f"{entry['sha256'][:12]}...); {rebuild}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def build(name: str, directory: str | os.PathLike | None = None) -> nn.Module:
    """A freshly initialised model of entry ``name`` (its builder and kwargs)."""
    directory = _directory(directory)
    entry = _entry(name, directory)
    try:
        return build_model(entry["builder"], **entry["kwargs"])
    except ValueError as error:
        raise ZooError(f"zoo entry {name!r} of {directory / 'manifest.json'}: {error}") from None


def load(name: str, device: torch.device | str = "cpu", directory: str | os.PathLike | None = None) -> nn.Module:
    """The checkpoint of entry ``name``, verified, in eval mode on ``device``."""
    model = build(name, directory)
    model.load_state_dict(load_state(name, directory))
    return model.to(device).eval()


def metrics(name: str, directory: str | os.PathLike | None = None) -> dict:
    """The metrics recorded for entry ``name`` when it was trained (re-measure with its lab's ``evaluate``)."""
    return dict(_entry(name, _directory(directory)).get("metrics", {}))


def save(name: str, result: ZooResult, directory: str | os.PathLike | None = None) -> dict:
    """Store ``result.model`` as entry ``name`` (half precision) and update the manifest."""
    from seglib import __version__

    directory = _directory(directory)
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
    recipe = result.recipe
    record = {
        "file": path.name,
        "sha256": sha256(path),
        "dtype": "float16",
        "builder": recipe.builder,
        "kwargs": recipe.kwargs,
        "lab": recipe.lab,
        "recipe": recipe.training(),
        "command": f"make zoo NAME={name}",
        "seglib_version": __version__,
        "training": result.training,
        "metrics": result.metrics,
    }
    update(name, record, directory)
    return record


def update(name: str, record: dict, directory: str | os.PathLike | None = None) -> None:
    """Write ``record`` as entry ``name`` of the manifest, holding its lock."""
    directory = _directory(directory)
    with _locked(directory):
        entries = manifest(directory)
        entries[name] = record
        (directory / "manifest.json").write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")


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


def history(name: str, directory: str | os.PathLike | None = None):
    """The training :class:`~seglib.train.History` that entry ``name``'s manifest records.

    Holds the loss curve and the validation points of the recipe's
    ``evaluate`` (entries trained with ``eval_every``); the seconds are not recorded.
    """
    from seglib.train import History

    training = _entry(name, _directory(directory)).get("training", {})
    if "loss_curve" not in training:
        raise ValueError(f"name must be a zoo entry with a recorded loss curve, got {name!r}")
    curve = training["loss_curve"]
    return History(steps=list(curve["steps"]), seconds=[float("nan")] * len(curve["steps"]),
                   loss=list(curve["loss"]), evals=[dict(point) for point in training.get("curve", [])])
