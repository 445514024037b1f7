"""Every lab exposes the same small surface: train -> History, evaluate -> dict, LOSSES, ZOO_ENTRIES."""

import inspect

import pytest

from seglib import labs
from seglib.zoo import Recipe

TRAIN_ARGUMENTS = ("model", "steps", "batch_size", "lr", "loss", "seed", "eval_every", "evaluate", "device")


@pytest.mark.parametrize("name", labs.LABS)
def test_lab_surface(name):
    lab = labs.get(name)
    parameters = inspect.signature(lab.train).parameters
    assert tuple(parameters)[:2] == ("model", "steps")
    assert set(TRAIN_ARGUMENTS) <= set(parameters), set(TRAIN_ARGUMENTS) - set(parameters)
    assert "evaluate_every" not in parameters
    assert inspect.signature(lab.train).return_annotation in ("History", "'History'")
    assert tuple(inspect.signature(lab.evaluate).parameters)[0] == "model"
    assert lab.LOSSES and isinstance(lab.LOSSES, tuple)
    for entry, recipe in lab.ZOO_ENTRIES.items():
        assert isinstance(recipe, Recipe) and recipe.lab == name and recipe.loss in lab.LOSSES, entry


def test_an_unknown_lab_is_a_clear_error():
    with pytest.raises(ValueError, match="name must be one of"):
        labs.get("segnet")
