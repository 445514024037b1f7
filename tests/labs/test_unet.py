"""Notebook 03's training helpers and zoo recipes, on tiny budgets."""

import pytest
import torch

from seglib.labs import unet as unet_lab
from seglib.models.deeplab import DeepLab
from seglib.models.registry import build
from seglib.models.unet import UNet


def test_zoo_entries_build_the_models_of_notebook_03():
    entries = unet_lab.ZOO_ENTRIES
    assert isinstance(build(entries["deeplab"].builder, **entries["deeplab"].kwargs), DeepLab)
    residual = build(entries["unet_residual"].builder, **entries["unet_residual"].kwargs)
    assert isinstance(residual, UNet) and residual.block == "residual" and residual.aux is not None
    assert {entry.loss for entry in entries.values()} <= set(unet_lab.LOSSES)


def test_train_on_scenes_with_aux_head_and_evaluator():
    torch.manual_seed(0)
    model = UNet(num_classes=5, depth=2, base_width=4, aux_head=True)
    history = unet_lab.train(model, 4, batch_size=2, progress=False,
                                           evaluate=lambda m: {"calls": 1.0})
    assert history.total_steps == 4 and history.evals[-1]["calls"] == 1.0
    assert not model.training
    with pytest.raises(ValueError, match="loss must be one of"):
        unet_lab.train(model, 1, loss="hinge", progress=False)


def test_aux_ablation_returns_both_curves():
    keys = ("miou", "boundary_f1", "iou_circle", "iou_rectangle", "iou_triangle")
    curves = unet_lab.aux_ablation(steps=2, batch_size=2, eval_every=1, progress=False,
                                       evaluate=lambda model: dict.fromkeys(keys, 0.5))
    assert set(curves) == {"with_aux", "without_aux"}
    for curve in curves.values():
        assert [point["step"] for point in curve] == [1, 2]
        assert set(keys) <= set(curve[0])
