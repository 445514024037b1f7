"""Retrain model-zoo entries from their recipes (``make zoo NAME=...``) and re-measure them.

Every lab lists its entries as data (``ZOO_ENTRIES``: name -> :class:`~seglib.zoo.Recipe`);
:func:`run` trains any of them the same way: seed, build, the lab's
``init_entry`` if it has one, ``lab.train``, ``lab.evaluate``. :func:`retrain` stores the result and re-measures the stored
half-precision weights, whose metrics are the ones of record.
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from seglib import labs
from seglib.env import device as default_device
from seglib.models.registry import build as build_model
from seglib.zoo import Recipe, ZooError, ZooResult, load, manifest, save, update


def recipes() -> dict[str, Recipe]:
    """Entry name -> :class:`~seglib.zoo.Recipe` of every lab's zoo entries."""
    entries: dict[str, Recipe] = {}
    for name in labs.LABS:
        entries.update(getattr(labs.get(name), "ZOO_ENTRIES", {}))
    return entries


def run(name: str, recipe: Recipe, device: torch.device | str) -> ZooResult:
    """Train entry ``name`` with ``recipe``: seed, build, ``lab.train``, ``lab.evaluate``.

    The training record holds the budget, the time, the final loss, the
    validation curve and the loss curve, plus what the lab's ``zoo_extras``
    (if it has one) adds for this entry.
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a seglib.zoo.Recipe, got {type(recipe).__name__}")
    lab = labs.get(recipe.lab)
    device = torch.device(device)
    torch.manual_seed(recipe.seed)
    model = build_model(recipe.builder, **recipe.kwargs)
    if hasattr(lab, "init_entry"):  # a start other than the builder's, e.g. a pretrained encoder
        lab.init_entry(name, model, device)
    history = lab.train(model, recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr, loss=recipe.loss,
                        seed=recipe.seed, eval_every=recipe.eval_every, device=device, desc=name)
    model = model.cpu()
    training = {
        "device": str(device), "seconds": round(history.total_seconds, 1),
        "seconds_per_step": round(history.total_seconds / max(history.total_steps, 1), 4),
        "final_loss": round(history.loss[-1], 4) if history.loss else None,
        "loss_curve": {"steps": list(history.steps), "loss": [round(v, 5) for v in history.loss]},
        "curve": [{key: round(float(value), 4) for key, value in point.items()} for point in history.evals],
    }
    if hasattr(lab, "zoo_extras"):
        training.update(lab.zoo_extras(name, device))
    return ZooResult(model=model, recipe=recipe, metrics=lab.evaluate(model), training=training)


def evaluate(name: str, device: torch.device | str = "cpu", directory: str | os.PathLike | None = None) -> dict:
    """Re-measure entry ``name`` with its lab's ``evaluate`` on the stored weights."""
    entry = manifest(directory).get(name)
    if entry is None or "lab" not in entry:
        raise ZooError(f"no zoo entry named {name!r} with a lab to evaluate it (run `make zoo NAME={name}`)")
    return labs.get(entry["lab"]).evaluate(load(name, device, directory))


def retrain(name: str, device: torch.device | str | None = None,
            directory: str | os.PathLike | None = None) -> dict:
    """Train entry ``name`` from its recipe, store it, re-measure the stored weights; return its record."""
    known = recipes()
    if name not in known:
        raise ZooError(f"no recipe for {name!r} (known: {', '.join(sorted(known))})")
    device = torch.device(device) if device is not None else default_device()
    record = save(name, run(name, known[name], device), directory)
    # The metrics of record are those of the stored half-precision weights.
    record["metrics"] = evaluate(name, device, directory)
    update(name, record, directory)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seglib.tools.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="entries to retrain (default: every recipe)")
    parser.add_argument("--list", action="store_true", help="list entries and their recorded metrics")
    args = parser.parse_args(argv)
    if args.list:
        for name, entry in sorted(manifest().items()):
            print(f"{name:<24}{json.dumps(entry.get('metrics', {}))}")
        return 0
    for name in args.names or sorted(recipes()):
        record = retrain(name)
        print(f"{name}: {json.dumps(record['metrics'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
