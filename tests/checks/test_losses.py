import pytest
import torch
import torch.nn.functional as F

import seglib.checks as checks
from seglib.checks import CheckFailed
from seglib.losses import class_weights, soft_dice_loss


def stub(*args):
    raise NotImplementedError("Exercise: write this function")


def dice_without_softmax(logits, target):
    onehot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).float()
    intersection = (logits * onehot).sum(dim=(0, 2, 3))
    cardinality = logits.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    return 1 - ((2 * intersection + 1) / (cardinality + 1)).mean()


def dice_as_float(logits, target):
    return soft_dice_loss(logits, target).item()


def dice_detached(logits, target):
    return soft_dice_loss(logits.detach(), target)


def unnormalised_weights(labels, num_classes):
    counts = torch.bincount(labels[labels != 255], minlength=num_classes).double()
    return torch.where(counts > 0, counts.sum() / counts, torch.zeros_like(counts))


def weights_counting_label_255(labels, num_classes):
    counts = torch.bincount(labels.flatten(), minlength=num_classes).double()
    weights = torch.where(counts > 0, 1 / counts, torch.zeros_like(counts))
    return weights / weights[counts > 0].mean()


def weights_inf_for_absent(labels, num_classes):
    weights = class_weights(labels, num_classes)
    return torch.where(weights == 0, torch.full_like(weights, float("inf")), weights)


def test_checks_are_exported():
    for name in ("check_soft_dice_loss", "check_class_weights"):
        assert name in checks.__all__ and callable(getattr(checks, name))


@pytest.mark.parametrize(
    "check, reference",
    [
        (checks.check_soft_dice_loss, soft_dice_loss),
        (checks.check_class_weights, class_weights),
    ],
)
def test_checks_pass_on_the_reference_and_remind_on_a_stub(check, reference, capsys):
    check(reference)
    assert capsys.readouterr().out.startswith("\u2714")
    with pytest.raises(CheckFailed, match=r"not implemented yet \(Exercise: write this function\)"):
        check(stub)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (dice_without_softmax, r"got -0\.5857.*expected 0\.1252.*raw logits.*softmax"),
        (dice_as_float, r"return a torch\.Tensor, got float.*\.item\(\)"),
        (dice_detached, r"not connected to the logits"),
    ],
)
def test_soft_dice_check_explains_wrong_answers(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_soft_dice_loss(wrong)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (unnormalised_weights, r"got \[1\.3333, 4\.0\], expected \[0\.5, 1\.5\].*not normalised"),
        (weights_counting_label_255, r"shape \(3,\), got shape \(256,\).*Label 255"),
        (weights_inf_for_absent, r"class 2 has no pixel, so its weight should be 0.*got inf"),
    ],
)
def test_class_weights_check_explains_wrong_answers(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_class_weights(wrong)


NETWORKS = [("ce", 0, torch.tensor([[900, 20], [40, 60]])), ("weighted_ce", 0, torch.tensor([[850, 70], [5, 95]])),
            ("dice", 1, torch.tensor([[905, 15], [35, 65]]))]


def test_weighted_ce_detector_passes_the_rule_and_names_the_network_it_got_wrong(capsys):
    checks.check_weighted_ce_detector(lambda cm, k: bool(cm[:, k].sum() > cm[k].sum()), NETWORKS, 1)
    assert "3 zoo networks and 3 constructed matrices told apart" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"trained with ce \(seed 0, recall 0.60\) got True.*predicts the small "
                                          r"class on 80 pixels, and 100"):
        checks.check_weighted_ce_detector(lambda cm, k: True, NETWORKS, 1)
    # a threshold on recall separates these three networks, not the constructed matrices
    with pytest.raises(CheckFailed, match=r"trained with ce \(constructed: trained longer, recall 0.95\) got True"):
        checks.check_weighted_ce_detector(lambda cm, k: bool(cm[k, k] > 0.9 * cm[k].sum()), NETWORKS, 1)
    with pytest.raises(CheckFailed, match=r"return True or False"):
        checks.check_weighted_ce_detector(lambda cm, k: "yes", NETWORKS, 1)

    with pytest.raises(ValueError, match="weighted_ce among them"):
        checks.check_weighted_ce_detector(lambda cm, k: True, NETWORKS[:1], 1)


@pytest.mark.parametrize("small_class", [0, 1, 2])
def test_constructed_matrices_have_the_recall_and_precision_they_name(small_class):
    from seglib.checks.losses import CONSTRUCTED, _constructed

    for _, _, recall, precision in CONSTRUCTED:
        cm = _constructed(3, small_class, recall, precision)
        k = small_class
        assert cm.sum() == 100_000 and (cm >= 0).all()
        assert abs(cm[k, k] / cm[k].sum() - recall) < 1e-3 and abs(cm[k, k] / cm[:, k].sum() - precision) < 1e-3


def test_zoo_confusions_cover_the_15_networks():
    from seglib.labs import losses

    networks = losses.zoo_confusions(n=16)
    assert [(name, seed) for name, seed, _ in networks] == [(n, s) for n in losses.LOSSES for s in losses.SEEDS]
    assert all(cm.shape == (2, 2) and int(cm.sum()) == 16 * 32 * 32 for _, _, cm in networks)
