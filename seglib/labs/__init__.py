"""One lab per notebook: the experiment code of ``notebooks/NN_<lab>.ipynb``.

Each lab has the same small surface:

* its configuration as data (``CONFIG``, ``BATCH_SIZE``, ``LEARNING_RATE`` ...);
* ``train(model, steps, *, ..., eval_every=None, ...) -> History``: trains in place;
* ``evaluate(model) -> dict``: the lab's metrics on its fixed test scenes;
* ``ZOO_ENTRIES``: its model-zoo recipes (:class:`seglib.zoo.Recipe`, data only).

A lab uses the layers below it (models, data, metrics, losses, train, viz); no
lab imports another lab, and nothing below the labs imports one.
"""

import importlib
from types import ModuleType

LABS = ("upsampling", "fcn", "unet", "losses", "mask_rcnn", "sam")
"""Names of the labs that train models, in the order of the notebooks (01 to 06).
Notebook 00's lab, :mod:`seglib.labs.overview`, measures without training and has
no such surface."""


def get(name: str) -> ModuleType:
    """The lab module ``seglib.labs.<name>``; ``name`` is one of :data:`LABS`."""
    if name not in LABS:
        raise ValueError(f"name must be one of {LABS}, got {name!r}")
    return importlib.import_module(f"seglib.labs.{name}")
