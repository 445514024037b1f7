"""Notebook 01's lab: the zoo studies and the measures of blur."""

import pytest


def test_blur_and_seed_study_entries_are_recipes_of_this_lab():
    from seglib.labs import upsampling as lab

    assert set(lab.BLUR_ENTRIES) <= set(lab.ZOO_ENTRIES)
    assert {lab.ZOO_ENTRIES[name].loss for name in lab.BLUR_ENTRIES} == {"mse", "l1"}
    study = [name for name in lab.ZOO_ENTRIES if name.startswith("upsampler_")]
    assert len(study) == len(lab.STUDY_LAYERS) * len(lab.STUDY_SEEDS)


def test_high_band_kept_is_one_for_a_perfect_reconstruction():
    import torch

    from seglib.labs.upsampling import band_energy_ratio, high_band_kept, ring_power

    images = torch.rand(4, 3, 16, 16)
    power = ring_power(images)
    assert power.shape == (4, 8)
    assert high_band_kept(power, power) == pytest.approx(1.0)
    blurred = torch.nn.functional.avg_pool2d(images, 2).repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert high_band_kept(ring_power(blurred), power) < 0.5
    assert high_band_kept(ring_power(blurred), power, torch.tensor([1, 1])) == pytest.approx(
        (ring_power(blurred)[1, -1] / power[1, -1]).item())
    assert band_energy_ratio(blurred, images)[1][-1].item() == pytest.approx(high_band_kept(ring_power(blurred), power))


def test_segnet_study_trains_a_segmenter_with_cross_entropy():
    import torch

    from seglib.labs import upsampling as lab
    from seglib.models.segnet import SegNet

    unpool, transposed = lab.ZOO_ENTRIES["segnet_unpool_seed1"], lab.ZOO_ENTRIES["segnet_transposed_seed1"]
    assert unpool.kwargs["upsampling"] == "unpool" and transposed.kwargs["upsampling"] == "transposed"
    assert (unpool.steps, unpool.batch_size, unpool.lr, unpool.loss, unpool.seed) == \
        (transposed.steps, transposed.batch_size, transposed.lr, transposed.loss, transposed.seed)
    torch.manual_seed(0)
    model = SegNet(5, widths=(4, 8))
    history = lab.train(model, 2, batch_size=2, loss="cross_entropy", progress=False)
    assert history.total_steps == 2 and history.loss[-1] > 0
    with pytest.raises(ValueError, match="loss must be 'cross_entropy' for the segmentation task"):
        lab.train(model, 1, loss="mse", progress=False)
    scores = lab.test_scores(model, n=3)
    assert scores.confusion.shape == (3, 5, 5)
