"""FCN pieces: convolutionalization, bilinear upsampling, the three variants, the FCN data helpers."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seglib.data import SceneConfig, generate_scenes
from seglib.models.fcn import Encoder, FCN, PatchClassifier, bilinear_kernel, bilinear_upsampler, build_fcn, conv_from_linear, convolutionalize
from seglib.labs.fcn import activation_bytes, forward_flops, full_resolution_cost, sliding_window_scores
from seglib.ops.receptive_field import receptive_field
from seglib.labs import fcn
from seglib.labs.fcn import object_patches, patch_accuracy, patch_batches
from seglib.metrics.evaluation import scene_evaluator
from seglib.metrics.evaluation import flat_metrics


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    return PatchClassifier(num_classes=5, patch_size=16, widths=(4, 8), hidden=6).eval()


def test_encoder_stages_and_stride():
    encoder = Encoder((4, 6, 8))
    outputs = encoder.stages(torch.rand(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outputs] == [(2, 4, 16, 16), (2, 6, 8, 8), (2, 8, 4, 4)]
    assert encoder.stride == 8 and encoder(torch.zeros(1, 3, 8, 8)).shape[1:] == (8, 1, 1)


def test_conv_from_linear_matches_linear_on_every_window():
    torch.manual_seed(1)
    linear = nn.Linear(3 * 2 * 2, 7)
    conv = conv_from_linear(linear, 3, 2)
    x = torch.randn(2, 3, 5, 4)
    windows = F.unfold(x, 2).transpose(1, 2)
    with torch.no_grad():
        assert torch.allclose(conv(x), linear(windows).transpose(1, 2).reshape(2, 7, 4, 3), atol=1e-6)
    with pytest.raises(ValueError, match="in_features must be in_channels"):
        conv_from_linear(linear, 2, 2)
    with pytest.raises(TypeError, match="linear must be a torch.nn.Linear"):
        conv_from_linear(conv, 3, 2)


def test_convolutionalized_classifier_same_scores_and_dense_map(classifier):
    dense = convolutionalize(classifier)
    patches = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(dense(patches)[:, :, 0, 0], classifier(patches), atol=1e-5)
        assert dense(torch.rand(1, 3, 40, 24)).shape == (1, 5, 40 // 4 - 3, 24 // 4 - 3)
    assert dense[0] is classifier.encoder
    with pytest.raises(ValueError, match="convolutionalize"):
        classifier(torch.rand(1, 3, 20, 20))


def test_sliding_window_agrees_with_dense_pass(classifier):
    image = torch.rand(3, 16, 16)
    scores = sliding_window_scores(classifier, image, stride=4, batch_size=5)
    assert scores.shape == (5, 4, 4)
    padded = F.pad(image[None], (8, 7, 8, 7), mode="replicate")
    with torch.no_grad():
        window = classifier(padded[:, :, 4:20, 8:24])[0]  # centred on pixel (row 4, column 8)
    assert torch.allclose(scores[:, 1, 2], window, atol=1e-5)
    assert sliding_window_scores(classifier, image).shape == (5, 16, 16)
    with pytest.raises(ValueError, match=r"image must be one image \(3, H, W\), got a batch"):
        sliding_window_scores(classifier, image[None])


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 8])
def test_bilinear_upsampler_matches_interpolate_inside(factor):
    x = torch.rand(2, 3, 5, 6)
    up = bilinear_upsampler(3, factor)
    reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    with torch.no_grad():
        out = up(x)
    assert out.shape == reference.shape
    inner = (..., slice(factor, -factor or None), slice(factor, -factor or None))
    assert torch.allclose(out[inner], reference[inner], atol=1e-6)


def test_bilinear_kernel_values():
    assert torch.allclose(bilinear_kernel(2)[1], torch.tensor([0.1875, 0.5625, 0.5625, 0.1875]))
    assert bilinear_kernel(3).shape == (5, 5) and bilinear_kernel(3)[2, 2] == 1
    with pytest.raises(ValueError, match="factor must be a positive int"):
        bilinear_kernel(0)
    with pytest.raises(TypeError, match="dtype"):
        bilinear_kernel(2, dtype=torch.int64)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_fcn_shapes_and_bilinear_start(variant):
    torch.manual_seed(0)
    model = build_fcn(variant, num_classes=4, widths=(4, 4, 8, 8, 8), head_width=8).eval()
    x = torch.rand(2, 3, 192, 160)
    with torch.no_grad():
        logits = model(x)
        expected = model.head(model.encoder(x))
    assert logits.shape == (2, 4, 192, 160)
    assert model.output_stride == int(variant[:-1])
    # The skip scores start at zero and every upsampler is bilinear, so at the start each
    # variant is a chain of bilinear upsamplings (x2 per skip, then the rest) of the stride-32 scores.
    for factor in [2] * len(model.up2) + [model.output_stride]:
        expected = F.interpolate(expected, scale_factor=factor, mode="bilinear", align_corners=False)
    inner = (..., slice(64, -64), slice(64, -64))
    assert torch.allclose(logits[inner], expected[inner], atol=1e-5)


def test_fcn_rejects_bad_arguments():
    with pytest.raises(ValueError, match="variant must be one of"):
        FCN(variant="4s")
    with pytest.raises(ValueError, match="5 stages"):
        FCN(widths=(4, 4, 4, 4, 4, 4))
    with pytest.raises(ValueError, match="multiples of 32"):
        FCN()(torch.rand(1, 3, 48, 64))
    with pytest.raises(ValueError, match=r"shape \(B, 3, H, W\)"):
        FCN()(torch.rand(1, 1, 64, 64))


def test_receptive_field_and_flops(classifier):
    assert receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))) == (8, 2)
    assert receptive_field(classifier.encoder) == (16, 4)
    assert receptive_field(nn.Conv2d(1, 1, 3, dilation=2)) == (5, 1)
    with pytest.raises(ValueError, match="at least one Conv2d"):
        receptive_field(nn.ReLU())
    assert forward_flops(nn.Conv2d(2, 3, 1, bias=False), torch.rand(1, 2, 4, 5)) == 2 * 2 * 3 * 20


def test_full_resolution_cost_matches_a_built_stack():
    cost = full_resolution_cost(16, channels=8)
    assert cost["layers"] == 8 and cost["receptive_field"] == 17
    layers = [nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU()]
    for _ in range(cost["layers"] - 1):
        layers += [nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU()]
    stack, x = nn.Sequential(*layers).to("meta"), torch.empty(1, 3, 16, 16, device="meta")
    assert receptive_field(stack) == (cost["receptive_field"], 1)
    assert forward_flops(stack, x) == pytest.approx(cost["gflops"] * 1e9)
    assert activation_bytes(stack, x) == pytest.approx(cost["activation_mb"] * 2**20)
    with pytest.raises(ValueError, match="at least 2"):
        full_resolution_cost(1)
    matched = full_resolution_cost(64, channels=8, receptive_field=17)
    assert matched["layers"] == 8 and matched["gflops"] == pytest.approx(16 * cost["gflops"])
    with pytest.raises(ValueError, match="receptive_field"):
        full_resolution_cost(64, receptive_field=1)


def test_object_patches_are_centred_and_labelled():
    scenes = generate_scenes(6, SceneConfig(size=64), seed=3)
    patches, labels = object_patches(scenes, patch_size=32, stuff_per_scene=2, seed=0)
    things = int(scenes.valid.sum())
    assert patches.shape == (things + 12, 3, 32, 32) and labels.shape == (things + 12,)
    assert torch.equal(labels[:things], scenes.labels[scenes.valid])
    assert set(labels[things:].tolist()) <= {0, 1}
    # The first thing's patch holds the pixels of its box centre.
    box = scenes.boxes[0, 0]
    cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
    left, top = min(max(round(cx + 0.5 - 16), 0), 32), min(max(round(cy + 0.5 - 16), 0), 32)
    assert torch.equal(patches[0], scenes.images[0, :, top:top + 32, left:left + 32])
    with pytest.raises(ValueError, match="patch_size must be in"):
        object_patches(scenes, patch_size=65)
    patches, labels = next(patch_batches(3, patch_size=16, seed=1))
    assert patches.shape[1:] == (3, 16, 16) and len(labels) == len(patches) >= 3 + 3


def test_patch_accuracy_and_flat_metrics(classifier):
    patches, labels = torch.rand(4, 3, 16, 16), torch.zeros(4, dtype=torch.int64)
    with torch.no_grad():
        expected = float((classifier(patches).argmax(1) == 0).float().mean())
    assert patch_accuracy(classifier, patches, labels) == expected
    with pytest.raises(ValueError, match="labels must be a tensor of shape"):
        patch_accuracy(classifier, patches, labels[:2])
    flat = flat_metrics({"miou": 0.5, "boundary_f1": 0.4, "pixel_accuracy": 0.9, "iou": [0.2, 0.8]}, ("a", "b"))
    assert flat == {"miou": 0.5, "boundary_f1": 0.4, "pixel_accuracy": 0.9, "iou_a": 0.2, "iou_b": 0.8}
    with pytest.raises(ValueError, match="class_names must name"):
        flat_metrics({"iou": [0.1]}, ("a", "b"))


def test_train_runs_and_evaluates():
    model = build_fcn("8s", num_classes=5)
    history = fcn.train(model, 2, batch_size=2, eval_every=1, evaluate=scene_evaluator(fcn.CONFIG, "val", 4),
                        progress=False)
    assert [e["step"] for e in history.evals] == [1, 2]
    assert {"miou", "boundary_f1", "iou_circle"} <= set(history.evals[-1])
    assert not model.training
    with pytest.raises(ValueError, match="loss must be one of"):
        fcn.train(model, 1, loss="dice", progress=False)


def test_transfer_encoder_copies_the_classifier_stages_only():
    from seglib.labs.fcn import transfer_encoder
    from seglib.models.fcn import PatchClassifier, build_fcn

    torch.manual_seed(0)
    classifier, fcn_model = PatchClassifier(), build_fcn("8s")
    stage4 = fcn_model.encoder[3][0].weight.clone()
    assert transfer_encoder(fcn_model, classifier) == len(classifier.encoder.state_dict())
    for i in range(3):
        assert torch.equal(fcn_model.encoder[i][0].weight, classifier.encoder[i][0].weight)
    assert torch.equal(fcn_model.encoder[3][0].weight, stage4)
    with pytest.raises(ValueError, match="widths"):
        transfer_encoder(build_fcn("8s", widths=(8, 16, 32, 64, 64)), classifier)
    with pytest.raises(TypeError, match="PatchClassifier"):
        transfer_encoder(fcn_model, fcn_model)


def test_transfer_study_entries_share_a_budget_and_differ_in_their_start():
    from seglib.labs import fcn as fcn_lab

    transfer, scratch = fcn_lab.ZOO_ENTRIES["fcn8s_transfer_seed2"], fcn_lab.ZOO_ENTRIES["fcn8s_scratch_seed2"]
    assert transfer == scratch  # same recipe: only init_entry tells them apart
    assert fcn_lab.TRANSFER_ENTRIES == ("fcn8s_transfer_seed0", "fcn8s_transfer_seed1", "fcn8s_transfer_seed2")


def test_the_lab_trains_and_evaluates_a_patch_classifier():
    from seglib.labs import fcn as fcn_lab
    from seglib.models.fcn import PatchClassifier

    torch.manual_seed(0)
    model = PatchClassifier()
    history = fcn_lab.train(model, 2, batch_size=2, progress=False)
    assert history.total_steps == 2
    assert 0.0 <= fcn_lab.evaluate(model)["accuracy"] <= 1.0


def test_random_upsampler_init_changes_only_the_upsamplers():
    torch.manual_seed(0)
    bilinear = build_fcn("8s", num_classes=4, widths=(4, 4, 8, 8, 8), head_width=8)
    torch.manual_seed(0)
    random = build_fcn("8s", num_classes=4, widths=(4, 4, 8, 8, 8), head_width=8, upsampler_init="random")
    for (name, a), (_, b) in zip(bilinear.state_dict().items(), random.state_dict().items()):
        assert torch.equal(a, b) != (name.startswith(("up2", "final_up")) and name.endswith("weight")), name
    with pytest.raises(ValueError, match="upsampler_init must be one of"):
        build_fcn("8s", upsampler_init="zeros")
