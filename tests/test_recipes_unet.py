"""Notebook 03's training helpers and zoo recipes, on tiny budgets."""

import pytest
import torch

from seglib import recipes_unet
from seglib.models.deeplab import DeepLab
from seglib.models.unet import UNet


def test_build_model_matches_the_zoo_records():
    assert isinstance(recipes_unet.build_model("deeplab"), DeepLab)
    residual = recipes_unet.build_model("unet_residual")
    assert isinstance(residual, UNet) and residual.block == "residual" and residual.aux is not None
    with pytest.raises(ValueError, match="name must be one of"):
        recipes_unet.build_model("segnet")


def test_train_on_scenes_with_aux_head_and_evaluator():
    torch.manual_seed(0)
    model = UNet(num_classes=5, depth=2, base_width=4, aux_head=True)
    history = recipes_unet.train_on_scenes(model, 4, batch_size=2, progress=False,
                                           evaluate=lambda m: {"calls": 1.0})
    assert history.total_steps == 4 and history.evals[-1]["calls"] == 1.0
    assert not model.training


def test_aux_ablation_returns_both_curves():
    keys = ("miou", "boundary_f1", "iou_circle", "iou_rectangle", "iou_triangle")
    curves = recipes_unet.aux_ablation(steps=2, batch_size=2, eval_every=1, progress=False,
                                       evaluate=lambda model: dict.fromkeys(keys, 0.5))
    assert set(curves) == {"with_aux", "without_aux"}
    for curve in curves.values():
        assert [point["step"] for point in curve] == [1, 2]
        assert set(keys) <= set(curve[0])
