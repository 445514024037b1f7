import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F

from seglib.labs import losses as losses_lab
from seglib.data import SceneConfig, generate_scenes
from seglib.losses import focal_loss, soft_dice_loss
from seglib.models.unet import UNet


def random_case(seed=0, shape=(2, 2, 8, 8)):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=generator)
    return logits, target


def test_config_has_a_tiny_foreground_class():
    scenes = generate_scenes(256, losses_lab.CONFIG, seed=0)
    fraction = losses_lab.foreground_fraction(scenes.semantic)
    assert 0.01 <= fraction <= 0.03
    assert losses_lab.CONFIG.class_names[losses_lab.FOREGROUND] == "circle"


def test_foreground_fraction_skips_ignored_pixels_and_checks_input():
    labels = torch.tensor([[[0, 1], [255, 0]]])
    assert losses_lab.foreground_fraction(labels) == pytest.approx(1 / 3)
    with pytest.raises(TypeError, match="labels"):
        losses_lab.foreground_fraction(labels.float())
    with pytest.raises(ValueError, match="255"):
        losses_lab.foreground_fraction(torch.full((1, 2, 2), 255))


def test_class_weights_favour_the_tiny_class():
    weights = losses_lab.train_class_weights()
    assert weights.shape == (2,)
    assert weights[1] > 20 * weights[0]
    assert float(weights.mean()) == pytest.approx(1.0)


@pytest.mark.parametrize("name", losses_lab.LOSSES)
def test_every_loss_gives_a_finite_scalar_with_gradients(name):
    logits, target = random_case()
    logits.requires_grad_(True)
    loss = losses_lab.make_loss(name, weights=[0.2, 1.8] if name == "weighted_ce" else None)(logits, target)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_losses_are_the_documented_formulas():
    logits, target = random_case(1)
    weight = torch.tensor([0.3, 1.7])
    make = losses_lab.make_loss
    assert torch.allclose(make("ce")(logits, target), F.cross_entropy(logits, target))
    assert torch.allclose(make("weighted_ce", weight)(logits, target), F.cross_entropy(logits, target, weight=weight))
    assert torch.allclose(make("dice")(logits, target), soft_dice_loss(logits, target))
    assert torch.allclose(make("focal")(logits, target), focal_loss(logits, target, gamma=2.0))
    expected = F.cross_entropy(logits, target) + soft_dice_loss(logits, target)
    assert torch.allclose(make("ce_dice")(logits, target), expected)


def test_losses_run_in_float32_on_half_logits():
    logits, target = random_case(2)
    assert losses_lab.make_loss("ce")(logits.bfloat16(), target).dtype == torch.float32


def test_make_loss_rejects_unknown_names_and_misplaced_weights():
    with pytest.raises(ValueError, match="name must be one of"):
        losses_lab.make_loss("hinge")
    with pytest.raises(ValueError, match="weighted_ce"):
        losses_lab.make_loss("dice", weights=[1.0, 1.0])


def test_training_is_reproducible_and_logs_the_loss():
    config = SceneConfig(size=16, background="plain", shapes=("circle",), object_size=(0.2, 0.3))
    runs = [losses_lab.train_losses(4, ("ce_dice",), config=config, progress=False)["ce_dice"] for _ in range(2)]
    assert runs[0].history.steps == [4]
    first, second = (run.model.state_dict() for run in runs)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not runs[0].model.training


def test_train_losses_trains_each_name():
    config = SceneConfig(size=16, background="plain", shapes=("circle",), object_size=(0.2, 0.3))
    runs = losses_lab.train_losses(2, ("ce", "dice"), config=config, progress=False)
    assert list(runs) == ["ce", "dice"]
    with pytest.raises(ValueError, match="names"):
        losses_lab.train_losses(2, "ce")
    with pytest.raises(ValueError, match="name must be one of"):
        losses_lab.train_losses(2, ("ce", "hinge"))


def test_circle_probabilities_shapes_and_mode():
    model = UNet(**losses_lab.MODEL_KWARGS)
    model.train()
    images = torch.rand(5, 3, 32, 32)
    probabilities = losses_lab.circle_probabilities(model, images, batch_size=2)
    assert probabilities.shape == (5, 32, 32) and probabilities.dtype == torch.float32
    assert ((probabilities >= 0) & (probabilities <= 1)).all() and model.training
    with pytest.raises(TypeError, match="images"):
        losses_lab.circle_probabilities(model, images.long())


def test_metrics_of_a_hand_made_case():
    target = torch.tensor([[[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]])
    pred = target.clone()
    pred[0, 1, 1] = 0  # one missed foreground pixel
    pred[0, 0, 0] = 1  # one false alarm
    metrics = losses_lab.imbalance_metrics(pred, target)
    assert metrics["fg_iou"] == pytest.approx(3 / 5)
    assert metrics["fg_dice"] == pytest.approx(6 / 8)
    assert metrics["fg_precision"] == pytest.approx(3 / 4)
    assert metrics["fg_recall"] == pytest.approx(3 / 4)
    assert metrics["bg_iou"] == pytest.approx(11 / 13)
    assert metrics["pixel_accuracy"] == pytest.approx(14 / 16)


def test_an_all_background_prediction_is_accurate_but_useless():
    target = generate_scenes(32, losses_lab.CONFIG, seed=3).semantic
    metrics = losses_lab.imbalance_metrics(torch.zeros_like(target), target)
    assert metrics["pixel_accuracy"] == pytest.approx(1 - losses_lab.foreground_fraction(target))
    assert metrics["fg_iou"] == 0 and metrics["fg_precision"] == 0 and metrics["fg_recall"] == 0


def test_per_image_dice():
    target = torch.zeros(3, 2, 2, dtype=torch.int64)
    target[0, 0] = 1
    pred = torch.zeros_like(target)
    pred[0, 0, 0] = 1
    pred[1, 1, 1] = 1
    assert losses_lab.per_image_dice(pred, target).tolist() == pytest.approx([2 / 3, 0.0, 1.0])
    with pytest.raises(ValueError, match="(same shape|must have shape)"):
        losses_lab.per_image_dice(pred[0], target[0])


def test_evaluator_returns_the_table_keys():
    torch.manual_seed(0)
    metrics = losses_lab.evaluate(UNet(**losses_lab.MODEL_KWARGS), split="val", n=16)
    assert set(metrics) == {"fg_iou", "fg_dice", "fg_precision", "fg_recall", "bg_iou", "miou",
                            "pixel_accuracy", "per_image_miou", "boundary_f1"}


def test_every_loss_has_a_zoo_entry_with_the_same_budget():
    entries = losses_lab.ZOO_ENTRIES
    assert sorted(entries) == sorted(losses_lab.seed_entry(name, seed)
                                     for name in losses_lab.LOSSES for seed in losses_lab.SEEDS)
    for seed in losses_lab.SEEDS:
        same_seed = [entries[losses_lab.seed_entry(name, seed)] for name in losses_lab.LOSSES]
        assert len({(e.steps, e.batch_size, e.lr, e.seed, e.builder, str(e.kwargs)) for e in same_seed}) == 1


def test_objects_found_counts_objects_with_any_hit():
    scenes = generate_scenes(8, losses_lab.CONFIG, seed=5)
    assert losses_lab.objects_found(scenes.semantic, scenes) == 1.0
    assert losses_lab.objects_found(torch.zeros_like(scenes.semantic), scenes) == 0.0
    one_pixel = torch.zeros_like(scenes.semantic)
    first = scenes.instances(0)["masks"][0].nonzero()[0]
    one_pixel[0, first[0], first[1]] = losses_lab.FOREGROUND
    assert losses_lab.objects_found(one_pixel, scenes) == pytest.approx(1 / int(scenes.valid.sum()))
    with pytest.raises(ValueError, match="pred"):
        losses_lab.objects_found(one_pixel[:2], scenes)


def test_hardest_images_rank_by_mean_dice():
    target = torch.zeros(3, 2, 2, dtype=torch.int64)
    target[:, 0, 0] = 1
    good, bad = target.clone(), torch.zeros_like(target)
    mixed = target.clone()
    mixed[2] = 0
    hardest = losses_lab.hardest_images({"a": good, "b": mixed, "c": bad}, target, k=2)
    assert hardest.tolist() == [2, 0]
    with pytest.raises(ValueError, match="k must be"):
        losses_lab.hardest_images({"a": good}, target, k=4)
    with pytest.raises(ValueError, match="predictions"):
        losses_lab.hardest_images({}, target)


def fake_study():
    scores = {"ce": [{"fg_iou": 0.60, "threshold": 0.4}, {"fg_iou": 0.62, "threshold": 0.4},
                     {"fg_iou": 0.64, "threshold": 0.5}],
              "dice": [{"fg_iou": 0.63, "threshold": 0.5}, {"fg_iou": 0.61, "threshold": 0.6},
                       {"fg_iou": 0.69, "threshold": 0.5}]}
    probs = {"ce": torch.tensor([[[0.2, 0.7]]]), "dice": torch.tensor([[[0.6, 0.4]]])}
    return losses_lab.LossStudy(scores, "ce", probs)


def test_loss_study_pairs_seeds():
    study = fake_study()
    assert study.values("fg_iou")["dice"] == [0.63, 0.61, 0.69]
    gain = study.gain("dice", "fg_iou")
    assert gain.value == pytest.approx(0.0233333, abs=1e-6) and gain.low < 0 < gain.high  # -0.01 in seed 1: a tie
    assert study.estimate("ce", "fg_iou").value == pytest.approx(0.62)
    assert {name: p.tolist() for name, p in study.predictions().items()} == {"ce": [[[0, 1]]], "dice": [[[1, 0]]]}
    with pytest.raises(ValueError, match="name must be one of"):
        study.gain("focal", "fg_iou")
    with pytest.raises(ValueError, match="baseline must be one of"):
        study.gain("dice", "fg_iou", baseline="focal")
    assert study.gain("dice", "fg_iou").value == study.gain("dice", "fg_iou", baseline="ce").value


def test_seed_table_shows_mean_and_interval():
    from seglib.metrics.uncertainty import seed_table

    table = seed_table(fake_study(), {"fg_iou": "circle IoU"}, losses_lab.LOSS_TITLES, first="loss (3 seeds)")
    table = table.splitlines()
    assert table[0] == "| loss (3 seeds) | circle IoU |"
    assert table[2].startswith("| cross-entropy | 0.620 [0.570, 0.670]")
    with pytest.raises(TypeError, match="study must be a SeedStudy"):
        seed_table({}, {"fg_iou": "circle IoU"})
    with pytest.raises(ValueError, match="columns"):
        seed_table(fake_study(), {})


def test_tuned_threshold_picks_the_best_iou():
    target = torch.tensor([[[1, 1, 0, 0]]])
    probs = torch.tensor([[[0.9, 0.3, 0.2, 0.1]]])  # only thresholds in [0.2, 0.3) keep both circle pixels alone
    assert 0.2 <= losses_lab.tuned_threshold(probs, target) < 0.3
    with pytest.raises(TypeError, match="scores"):
        losses_lab.tuned_threshold(target, target)


def test_unweighted_threshold_inverts_the_class_weights():
    from seglib.losses import unweighted_threshold

    # weights 1 : 3 turn p = 0.25 into q = 3 * 0.25 / (3 * 0.25 + 0.75) = 0.5
    assert unweighted_threshold(0.5, [1.0, 3.0]) == pytest.approx(0.25)
    assert unweighted_threshold(0.5, [2.0, 2.0]) == pytest.approx(0.5)
    assert unweighted_threshold(0.5, [3.0, 1.0], class_id=0) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="threshold must be"):
        unweighted_threshold(1.0, [1.0, 3.0])
    with pytest.raises(ValueError, match="weights must be"):
        unweighted_threshold(0.5, [1.0, 0.0])


def test_circle_contrast_and_the_gap_of_quarters():
    scenes = generate_scenes(16, losses_lab.CONFIG, seed=0)
    contrast = losses_lab.circle_contrast(scenes)
    assert contrast.shape == (16,) and (contrast > 0).all()
    dice = torch.linspace(0, 1, 16, dtype=torch.float64)
    from seglib.metrics.uncertainty import quarter_gap

    rising = quarter_gap(torch.linspace(0, 1, 16), dice, resamples=50)
    assert rising.value == pytest.approx(0.8) and rising.low > 0  # the top 4 average 0.9, the bottom 4 0.1
    falling = quarter_gap(torch.linspace(1, 0, 16), dice, resamples=50)
    assert falling.value == pytest.approx(-0.8) and falling.high < 0
    with pytest.raises(ValueError, match="N >= 8"):
        quarter_gap(torch.ones(4), torch.ones(4))
    with pytest.raises(TypeError, match="scenes must be a SceneBatch"):
        losses_lab.circle_contrast(scenes.images)


def test_model_scores_of_a_small_unet():
    torch.manual_seed(0)
    model = UNet(**losses_lab.MODEL_KWARGS).eval()
    scenes = generate_scenes(8, losses_lab.CONFIG, seed=1)
    scores = losses_lab.model_scores(model, scenes, scenes)
    assert {"fg_iou", "objects_found", "size_ratio", "threshold", "tuned_iou", "pixel_ap",
            "undecided"} <= set(scores)
    assert 0 <= scores["undecided"] <= 1
    assert scores["tuned_iou"] >= scores["fg_iou"] - 1e-12  # tuned on the same scenes: never worse than 0.5
    assert 0 < scores["pixel_ap"] <= 1 and scores["threshold"] in losses_lab.THRESHOLDS
    with pytest.raises(TypeError, match="tuning must be a SceneBatch"):
        losses_lab.model_scores(model, scenes, None)


def test_plot_confusion_matrices_one_panel_each():
    cm = torch.tensor([[90, 2], [3, 5]])
    fig = losses_lab.plot_confusion_matrices({"ce": cm, "dice": cm}, ("background", "circle"))
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "cross-entropy"
    assert "90\n97.8%" in [text.get_text() for text in fig.axes[0].texts]
    plt.close(fig)


def test_zoo_history_reads_the_recorded_curves():
    from seglib import zoo

    history = zoo.history("loss_ce")
    assert history.steps[-1] == losses_lab.ZOO_STEPS and len(history.loss) == len(history.steps)
    assert history.evals[-1]["step"] == losses_lab.ZOO_STEPS and "fg_iou" in history.evals[-1]
    with pytest.raises(zoo.ZooError, match="no_such_entry"):
        zoo.history("no_such_entry")


def test_seed_entries_repeat_the_recipe_of_each_loss():
    from seglib.labs import losses as lab

    for name in lab.LOSSES:
        first = lab.ZOO_ENTRIES[lab.seed_entry(name, 0)]
        for seed in lab.SEEDS[1:]:
            entry = lab.ZOO_ENTRIES[lab.seed_entry(name, seed)]
            assert (entry.builder, entry.kwargs, entry.steps, entry.batch_size, entry.lr, entry.loss) == \
                (first.builder, first.kwargs, first.steps, first.batch_size, first.lr, first.loss)
            assert entry.seed == seed != first.seed
    with pytest.raises(ValueError, match="seed must be one of"):
        lab.seed_entry("ce", 5)
