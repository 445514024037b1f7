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


def test_ablation_entries_differ_only_in_the_aux_head():
    entries = {name: r for name, r in unet_lab.ZOO_ENTRIES.items() if name.startswith("unet_ablation_")}
    assert len(entries) == 2 * len(unet_lab.ABLATION_SEEDS)
    aux, plain = entries["unet_ablation_aux_seed1"], entries["unet_ablation_plain_seed1"]
    assert aux.kwargs["aux_head"] and not plain.kwargs["aux_head"]
    assert (aux.steps, aux.batch_size, aux.lr, aux.seed) == (plain.steps, plain.batch_size, plain.lr, plain.seed)
    assert (aux.loss, plain.loss) == ("cross_entropy_aux", "cross_entropy")


def test_test_scores_cover_the_500_test_scenes():
    from torch import nn

    class Constant(nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 5, *x.shape[2:])

    scores = unet_lab.test_scores(Constant())
    assert scores.confusion.shape == (500, 5, 5)



def test_crf_scores_and_choice_use_validation_scenes():
    from torch import nn

    from seglib.ops.crf import CRFParams

    class Noisy(nn.Module):  # the truth plus noise, as logits
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return torch.randn(x.shape[0], 5, *x.shape[2:], generator=torch.Generator().manual_seed(0))

    grid = (CRFParams(iterations=1, window=3), CRFParams(iterations=2, window=3, w_bilateral=0.0))
    before, after = unet_lab.crf_scores(Noisy(), "val", 3, grid[0])
    assert before.confusion.shape == after.confusion.shape == (3, 5, 5)
    assert unet_lab.choose_crf(Noisy(), grid, n=3) in grid
    with pytest.raises(ValueError, match="split"):
        unet_lab.crf_scores(Noisy(), "train", 3)


def test_architecture_study_matches_the_plain_ablation_arm_in_everything_but_the_model():
    plain = unet_lab.ZOO_ENTRIES[unet_lab.arch_entry("unet", 2)]
    assert unet_lab.arch_entry("unet", 2) == "unet_ablation_plain_seed2"
    for label in unet_lab.ARCH_STUDY:
        entry = unet_lab.ZOO_ENTRIES[unet_lab.arch_entry(label, 2)]
        assert (entry.steps, entry.batch_size, entry.lr, entry.loss, entry.seed) == \
            (plain.steps, plain.batch_size, plain.lr, plain.loss, plain.seed)
        model = build(entry.builder, **entry.kwargs)
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 5, 64, 64)
    with pytest.raises(ValueError, match="label must be one of"):
        unet_lab.arch_entry("segnet", 0)
    with pytest.raises(ValueError, match="seed must be one of"):
        unet_lab.arch_entry("unet", 7)


def test_arch_parameters_counts_the_stored_network():
    assert unet_lab.arch_parameters("U-Net") == sum(p.numel() for p in UNet(num_classes=5).parameters())
    with pytest.raises(ValueError, match="name must be one of"):
        unet_lab.arch_parameters("SegNet")
