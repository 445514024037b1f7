import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seglib.losses import CombinedLoss, class_weights, cross_entropy, focal_loss, soft_dice_loss, tversky_loss


def random_batch(batch=2, num_classes=4, size=6, seed=0, ignore_fraction=0.2):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, num_classes, size, size, generator=generator) * 2
    target = torch.randint(0, num_classes, (batch, size, size), generator=generator)
    target[torch.rand(batch, size, size, generator=generator) < ignore_fraction] = 255
    return logits, target


def grad_of(loss_fn, logits, target, **kwargs):
    logits = logits.clone().requires_grad_(True)
    loss = loss_fn(logits, target, **kwargs)
    loss.backward()
    return loss.detach(), logits.grad


# Two pixels, two classes, given as probabilities: p(class 0) = [0.8, 0.3], target = [0, 1].
HAND_PROBS = torch.tensor([[[[0.8, 0.3]], [[0.2, 0.7]]]])
HAND_TARGET = torch.tensor([[[0, 1]]])


# -- cross entropy and focal ----------------------------------------------------------------------


@pytest.mark.parametrize("use_weight", [False, True])
def test_cross_entropy_matches_pytorch_with_ignore_and_weights(use_weight):
    logits, target = random_batch()
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0]) if use_weight else None
    ours, our_grad = grad_of(cross_entropy, logits, target, weight=weight)
    theirs, their_grad = grad_of(F.cross_entropy, logits, target, weight=weight, ignore_index=255)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.allclose(our_grad, their_grad, atol=1e-7)


def test_cross_entropy_is_stable_for_huge_logits():
    logits, target = random_batch(ignore_fraction=0)
    logits = logits * 1e4
    assert torch.allclose(cross_entropy(logits, target), F.cross_entropy(logits, target), rtol=1e-5)


def test_cross_entropy_accepts_weights_as_a_list_and_any_spatial_shape():
    logits = torch.randn(5, 3)
    target = torch.tensor([0, 2, 1, 255, 2])
    expected = F.cross_entropy(logits, target, weight=torch.tensor([1.0, 2.0, 3.0]), ignore_index=255)
    assert torch.allclose(cross_entropy(logits, target, weight=[1.0, 2.0, 3.0]), expected)


def test_focal_with_gamma_zero_is_cross_entropy():
    logits, target = random_batch(seed=1)
    assert torch.allclose(focal_loss(logits, target, gamma=0.0), cross_entropy(logits, target), atol=1e-6)


def test_focal_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]]).view(1, 2, 1, 1)
    target = torch.tensor([[[1]]])
    expected = -((1 - 0.75) ** 2) * math.log(0.75)
    assert focal_loss(logits, target).item() == pytest.approx(expected)
    assert focal_loss(logits, target, alpha=[1.0, 0.25]).item() == pytest.approx(0.25 * expected)


def test_focal_alpha_is_a_plain_mean_of_weighted_pixels():
    logits, target = random_batch(seed=2)
    alpha = torch.tensor([0.5, 2.0, 1.0, 3.0])
    valid = target != 255
    pixel_ce = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    expected = (alpha[target.clamp_max(3)] * pixel_ce)[valid].mean()
    assert torch.allclose(focal_loss(logits, target, gamma=0.0, alpha=alpha), expected, atol=1e-6)


def test_focal_is_smaller_than_cross_entropy_for_easy_pixels():
    logits, target = random_batch(seed=3)
    assert focal_loss(logits, target, gamma=2.0) < focal_loss(logits, target, gamma=0.5) < cross_entropy(logits, target)


# -- Dice and Tversky -----------------------------------------------------------------------------


def test_soft_dice_multi_class_by_hand():
    no_smooth = soft_dice_loss(HAND_PROBS, HAND_TARGET, smooth=0.0, from_logits=False)
    assert no_smooth.item() == pytest.approx(1 - (1.6 / 2.1 + 1.4 / 1.9) / 2)
    smoothed = soft_dice_loss(HAND_PROBS, HAND_TARGET, smooth=1.0, from_logits=False)
    assert smoothed.item() == pytest.approx(1 - (2.6 / 3.1 + 2.4 / 2.9) / 2)
    only_class_1 = soft_dice_loss(HAND_PROBS, HAND_TARGET, smooth=0.0, from_logits=False, classes=[1])
    assert only_class_1.item() == pytest.approx(1 - 1.4 / 1.9)


def test_soft_dice_binary_by_hand():
    probs = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]])
    target = torch.tensor([[[1, 0], [1, 0]]])
    loss = soft_dice_loss(probs, target, from_logits=False)
    assert loss.item() == pytest.approx(1 - (2 * 1.5 + 1) / (1.8 + 2 + 1))
    from_logits = soft_dice_loss(torch.logit(probs), target)
    assert from_logits.item() == pytest.approx(loss.item(), rel=1e-5)


def test_soft_dice_from_logits_equals_softmax_probabilities_and_ignores_pixels():
    logits, target = random_batch(seed=4)
    reference = soft_dice_loss(logits, target)
    assert torch.allclose(reference, soft_dice_loss(logits.softmax(dim=1), target, from_logits=False))
    changed = torch.where((target == 255).unsqueeze(1), torch.randn_like(logits) * 50, logits)
    assert torch.allclose(reference, soft_dice_loss(changed, target))


def test_soft_dice_absent_class_scores_one():
    probs = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]])
    target = torch.tensor([[[0, 1]]])
    assert soft_dice_loss(probs, target, smooth=0.0, from_logits=False).item() == pytest.approx(0.0)


def test_tversky_by_hand():
    # class 0: TP = 0.8, FP = 0.3, FN = 0.2; class 1: TP = 0.7, FP = 0.2, FN = 0.3
    loss = tversky_loss(HAND_PROBS, HAND_TARGET, alpha=0.3, beta=0.7, smooth=0.0, from_logits=False)
    expected = 1 - (0.8 / (0.8 + 0.3 * 0.3 + 0.7 * 0.2) + 0.7 / (0.7 + 0.3 * 0.2 + 0.7 * 0.3)) / 2
    assert loss.item() == pytest.approx(expected)
    jaccard = tversky_loss(HAND_PROBS, HAND_TARGET, alpha=1.0, beta=1.0, smooth=0.0, from_logits=False)
    assert jaccard.item() == pytest.approx(1 - (0.8 / 1.3 + 0.7 / 1.2) / 2)


@pytest.mark.parametrize("smooth", [0.0, 1.0, 10.0])
def test_tversky_with_equal_halves_is_soft_dice(smooth):
    logits, target = random_batch(seed=5)
    dice = soft_dice_loss(logits, target, smooth=smooth)
    assert torch.allclose(tversky_loss(logits, target, alpha=0.5, beta=0.5, smooth=smooth), dice, atol=1e-6)


# -- gradients at the extremes --------------------------------------------------------------------

LOSSES = {
    "cross_entropy": cross_entropy,
    "focal_gamma_0": functools.partial(focal_loss, gamma=0.0),
    "focal_gamma_0.5": functools.partial(focal_loss, gamma=0.5),
    "focal_gamma_2": focal_loss,
    "soft_dice": soft_dice_loss,
    "soft_dice_no_smooth": functools.partial(soft_dice_loss, smooth=0.0),
    "tversky": functools.partial(tversky_loss, alpha=0.3, beta=0.7),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("quality", ["perfect", "all_wrong"])
def test_gradients_are_finite_at_extremes(name, quality):
    _, target = random_batch(num_classes=3, seed=6)
    shown = target.clamp_max(2) if quality == "perfect" else (target.clamp_max(2) + 1) % 3
    logits = F.one_hot(shown, 3).movedim(-1, 1).float() * 200.0
    value, grad = grad_of(LOSSES[name], logits, target)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@pytest.mark.parametrize("scale", [200.0, -200.0])
def test_binary_dice_gradient_is_finite_when_saturated(scale):
    target = torch.tensor([[[1, 0], [1, 255]]])
    logits = (target.float() * 2 - 1).clamp(-1, 1).unsqueeze(1) * scale
    value, grad = grad_of(soft_dice_loss, logits, target)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


# -- class weights --------------------------------------------------------------------------------


def test_class_weights_by_hand():
    labels = torch.zeros(1, 4, 4, dtype=torch.int64)
    labels[0, 3] = 1
    assert class_weights(labels, 2).tolist() == pytest.approx([0.5, 1.5])
    assert class_weights(labels, 2, method="inverse_sqrt_frequency").tolist() == pytest.approx(
        [2 / (1 + 3**0.5), 2 * 3**0.5 / (1 + 3**0.5)]
    )


def test_class_weights_skip_ignored_pixels_and_absent_classes():
    labels = torch.tensor([[0, 0, 0, 1, 255, 255, 255, 255]])
    weights = class_weights(labels, 3)
    assert weights.dtype == torch.float32
    assert weights.tolist() == pytest.approx([0.5, 1.5, 0.0])
    assert weights[:2].mean().item() == pytest.approx(1.0)


# -- combined loss --------------------------------------------------------------------------------


def test_combined_loss_is_the_weighted_sum_and_logs_parts():
    logits, target = random_batch(seed=7)
    combined = CombinedLoss({"ce": (cross_entropy, 1.0), "dice": (soft_dice_loss, 0.5)})
    total = combined(logits, target)
    ce, dice = cross_entropy(logits, target), soft_dice_loss(logits, target)
    assert torch.allclose(total, ce + 0.5 * dice)
    assert combined.last_parts == pytest.approx({"ce": ce.item(), "dice": dice.item()})


def test_combined_loss_registers_module_losses():
    module = nn.CrossEntropyLoss(weight=torch.ones(4), ignore_index=255)
    combined = CombinedLoss({"ce": (module, 1.0)})
    assert "loss_modules.ce.weight" in dict(combined.named_buffers())
    logits, target = random_batch(seed=8)
    assert torch.allclose(combined(logits, target), cross_entropy(logits, target))


# -- errors ---------------------------------------------------------------------------------------


def test_errors_name_the_argument_and_what_came():
    logits, target = random_batch(num_classes=3)
    with pytest.raises(ValueError, match=r"target must hold class ids in \[0, 3\).*C=3 channels.*e\.g\. 3"):
        cross_entropy(logits, torch.full_like(target, 3))
    with pytest.raises(ValueError, match=r"target must have shape \(B,H,W\) = \(2, 6, 6\).*got \(2, 5, 6\)"):
        soft_dice_loss(logits, target[:, :5])
    with pytest.raises(TypeError, match="target must be an integer label map.*float32"):
        focal_loss(logits, target.float())
    with pytest.raises(TypeError, match="logits must be a float tensor"):
        cross_entropy(target, target)
    with pytest.raises(ValueError, match=r"weight must have shape \(C,\) = \(3,\).*got \(4,\)"):
        cross_entropy(logits, target, weight=torch.ones(4))
    with pytest.raises(ValueError, match=r"from_logits=False means probabilities in \[0, 1\]"):
        soft_dice_loss(logits, target, from_logits=False)
    with pytest.raises(ValueError, match="classes is for multi-class logits"):
        soft_dice_loss(logits[:, :1], target.clamp_max(1), classes=[0])
    with pytest.raises(ValueError, match=r"classes must be a non-empty list of ids in \[0, 3\), got \[5\]"):
        tversky_loss(logits, target, classes=[5])
    with pytest.raises(ValueError, match=r"target must hold class ids in \[0, 2\)"):
        soft_dice_loss(logits[:, :1], target)
    with pytest.raises(ValueError, match="gamma must be finite and >= 0, got -1"):
        focal_loss(logits, target, gamma=-1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        class_weights(target, 3, method="median")
    with pytest.raises(ValueError, match="no pixel other than ignore_index=255"):
        class_weights(torch.full((2, 2), 255), 3)
    with pytest.raises(TypeError, match=r"losses\['ce'\] must be a pair \(fn, weight\)"):
        CombinedLoss({"ce": cross_entropy})
