"""Notebook 00's measurements: counting from a semantic map, the shift study, the unit map."""

import json

import pytest
import torch

from seglib.data import SceneConfig, generate_scenes
from seglib.labs import overview


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(12, SceneConfig(size=64, min_objects=2, max_objects=4), seed=3)


def test_semantic_counts_one_row_per_scene_and_class(scenes):
    counts = overview.semantic_counts(scenes)
    pairs = sum(len(scenes.instances(i)["labels"].unique()) for i in range(len(scenes)))
    assert all(v.shape == (pairs,) for v in counts.values())
    assert (counts["true"] >= 1).all() and (counts["regions"] >= 1).all()


def test_two_touching_squares_are_one_region(scenes):
    merged = generate_scenes(1, SceneConfig(size=64), seed=0)
    merged.semantic[0] = 0
    merged.semantic[0, 10:20, 10:20] = 3
    merged.semantic[0, 10:20, 20:30] = 3
    merged.valid[0] = False
    merged.valid[0, :2] = True
    merged.labels[0, :2] = 3
    counts = overview.semantic_counts(merged)
    assert counts["true"].tolist() == [2] and counts["regions"].tolist() == [1]


def test_shift_mask_moves_and_loses_pixels_at_the_border():
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[0:2, 5:8] = True
    moved = overview.shift_mask(mask, dx=2, dy=1)
    assert moved[1:3, 7].all() and int(moved.sum()) == 2
    assert not overview.shift_mask(mask, dx=9, dy=0).any()


def test_a_square_loses_as_much_mask_as_box_iou():
    from seglib.metrics.masks import box_iou

    mask = torch.zeros(40, 40, dtype=torch.bool)
    mask[10:30, 10:30] = True
    box = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    moved = overview.shift_mask(mask, 3, 0)
    mask_iou = float((mask & moved).sum() / (mask | moved).sum())
    assert mask_iou == pytest.approx(box_iou(box, box + torch.tensor([3.0, 0, 3.0, 0]))[0, 0].item())


def test_shift_study_shapes_and_the_rule(scenes):
    study = overview.shift_study(scenes, shifts=(1, 3), directions=4)
    things = sum(len(scenes.instances(i)["labels"]) for i in range(len(scenes)))
    assert study["mask_iou"].shape == study["box_iou"].shape == (things, 2)
    assert ((study["fill"] > 0) & (study["fill"] <= 1.0 + 1e-6)).all()
    assert (study["mask_iou"][:, 1] <= study["mask_iou"][:, 0] + 1e-6).all()  # farther is worse
    ax = overview.plot_shift_gap(study, scenes.config.class_names, shift=3)
    assert ax.get_xlabel().startswith("share of its box")


def test_unit_map_reads_bench_results(tmp_path):
    row = {"wall_s": 61.4, "peak_host_mb": 1, "peak_gpu_mb": 0, "metrics": {}}
    (tmp_path / "cpu-box.json").write_text(json.dumps(
        {"profile": "cpu", "machine": "box", "date": "2026-01-02", "notebooks": {"02_fcn": row}}))
    table = overview.unit_map(tmp_path)
    assert "| 02 FCN |" in table and "| 61 s | not measured yet |" in table
    assert "CPU: box (2026-01-02)" in table
    assert table.count("not measured yet") == 2 * len(overview.NOTEBOOKS) - 1


@pytest.mark.parametrize("call, error, match", [
    (lambda: overview.semantic_counts("scenes"), TypeError, "SceneBatch"),
    (lambda: overview.shift_study("scenes"), TypeError, "SceneBatch"),
    (lambda: overview.shift_mask(torch.zeros(3, 3), 1, 1), TypeError, "mask"),
    (lambda: overview.plot_shift_gap({"shifts": torch.tensor([1])}, ("a",), shift=3), ValueError, "shift"),
    (lambda: overview.plot_shift_gap([], ("a",)), TypeError, "study"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
