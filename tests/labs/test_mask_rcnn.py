"""The small Mask R-CNN: construction, targets from scenes, training plumbing, predictions."""

import pytest
import torch

from seglib.data import SceneConfig, generate_scenes
from seglib.metrics.instance import area_counts, coco_summary, error_counts
from seglib.metrics.panoptic import panoptic_quality
from seglib import viz
from seglib.data import detection
from seglib.labs import mask_rcnn as lab
from seglib.models import maskrcnn as mrcnn

SMALL = SceneConfig(size=64, min_objects=1, max_objects=3)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return mrcnn.build_maskrcnn(image_size=64)


def test_default_model_size_and_heads():
    model = mrcnn.build_maskrcnn()
    assert 2.8e6 < sum(p.numel() for p in model.parameters()) < 3.0e6
    heads = model.roi_heads
    assert heads.fg_bg_sampler.batch_size_per_image == 32 and heads.fg_bg_sampler.positive_fraction == 0.5
    assert model.rpn.fg_bg_sampler.batch_size_per_image == 64
    assert model.rpn._pre_nms_top_n == {"training": 300, "testing": 150}
    assert model.rpn._post_nms_top_n == {"training": 100, "testing": 50}
    assert len(heads.mask_head) == 2 and heads.mask_roi_pool.sampling_ratio == 1
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.body.modules())
    with pytest.raises(ValueError, match="widths must hold 5 ints"):
        mrcnn.build_maskrcnn(widths=(8, 16))
    with pytest.raises(ValueError, match="num_classes"):
        mrcnn.build_maskrcnn(num_classes=1)
    with pytest.raises(ValueError, match="sampling_ratio"):
        mrcnn.build_maskrcnn(sampling_ratio=-1)


def test_scene_targets_shift_labels():
    scenes = generate_scenes(3, SMALL, seed=1)
    targets = detection.scene_targets(scenes)
    assert len(targets) == 3
    for i, target in enumerate(targets):
        assert torch.equal(target["labels"], scenes.instances(i)["labels"] - 1)  # sky, grass -> background
        assert target["masks"].dtype == torch.bool and target["boxes"].shape == (len(target["labels"]), 4)
    assert set(torch.cat([t["labels"] for t in targets]).tolist()) <= {1, 2, 3}
    assert detection.detection_class_names(SMALL) == ("background", "circle", "rectangle", "triangle")
    with pytest.raises(TypeError, match="SceneBatch"):
        detection.scene_targets(scenes.images)


def test_training_step_logs_every_loss(model):
    from seglib.train import train

    log = lab.LossLog()
    history = train(model, detection.detection_batches(SMALL, batch_size=2, seed=0), log, steps=4, lr=1e-3,
                    forward=lab.detection_forward, progress=False, log_every=2)
    assert set(log.terms) == set(lab.LOSS_NAMES)
    assert all(len(values) == 4 for values in log.terms.values())
    curves = log.curves(every=2)
    assert all(len(values) == 2 for values in curves.values())
    total = sum(curves[name][0] for name in lab.LOSS_NAMES)
    assert total == pytest.approx(history.loss[0], rel=1e-4)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert log.plot(every=2, ax=ax).get_yscale() == "log"
    plt.close(fig)
    with pytest.raises(TypeError, match="loss dict"):
        log(torch.tensor(1.0))


def test_predict_and_panoptic(model):
    scenes = generate_scenes(2, SMALL, seed=2)
    predictions = lab.predict(model, scenes.images, batch_size=1)
    assert len(predictions) == 2 and not model.training
    for p in predictions:
        assert p["masks"].dtype == torch.bool and p["masks"].shape[1:] == (64, 64)
        assert p["boxes"].shape == (len(p["scores"]), 4)
    # the true instances as "predictions" give a perfect panoptic map
    perfect = [dict(t, scores=torch.ones(len(t["labels"]))) for t in detection.scene_targets(scenes)]
    panoptic = lab.scene_panoptic(perfect, scenes)
    assert panoptic.shape == (2, 64, 64)
    assert panoptic_quality(panoptic, scenes.panoptic, SMALL.thing_ids, SMALL.stuff_ids)["pq"] == 1.0
    with pytest.raises(ValueError, match="one dict per scene"):
        lab.scene_panoptic(perfect[:1], scenes)
    with pytest.raises(TypeError, match="images must be a float image tensor"):
        lab.predict(model, scenes.semantic)


def test_replace_predictors_and_anchors(model):
    import copy

    two = mrcnn.replace_predictors(copy.deepcopy(model), 2)
    assert two.roi_heads.box_predictor.bbox_pred.out_features == 8
    assert two.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 2
    anchors = lab.level_anchors(model, 64, (32, 32))
    assert list(anchors) == ["0", "1", "2", "3", "pool"]
    sizes = [(a[:, 2:] - a[:, :2]).prod(dim=1).sqrt() for a in anchors.values()]
    assert [round(float(s.mean())) for s in sizes] == [16, 24, 40, 64, 96]
    centre = (anchors["0"][:, :2] + anchors["0"][:, 2:]) / 2
    assert torch.allclose(centre, torch.tensor([32.0, 32.0]), atol=1.0)
    with pytest.raises(TypeError, match="MaskRCNN"):
        mrcnn.replace_predictors(torch.nn.Linear(2, 2), 2)


def test_show_detections_and_collate():
    scenes = generate_scenes(1, SMALL, seed=4)
    target = detection.scene_targets(scenes)[0]
    ax = viz.show_detections(scenes.images[0], target, detection.detection_class_names(SMALL))
    assert ax.images
    images, targets = detection.collate([(scenes.images[0], target)] * 2)
    assert len(images) == 2 and targets[1] is target
    with pytest.raises(ValueError, match="key 'masks'"):
        viz.show_detections(scenes.images[0], {"boxes": target["boxes"]}, ("a",))


def test_real_model_offline_gives_a_reason(tmp_path):
    from seglib import pretrained

    model, message = pretrained.try_torchvision("maskrcnn_resnet50_fpn_v2", "MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
                                                url=(tmp_path / "absent.pth").as_uri(), directory=tmp_path / "cache")
    assert model is None and "not available" in message and "\n" not in message


def test_roi_strides_follow_torchvisions_level_mapper():
    boxes = torch.tensor([[0.0, 0, 20, 20], [0, 0, 60, 60], [0, 0, 111, 111], [0, 0, 112, 112], [0, 0, 500, 500]])
    assert mrcnn.roi_strides(boxes).tolist() == [4, 4, 4, 8, 32]  # floor(4 + log2(s / 224)), clamped to 4..32
    assert mrcnn.roi_strides(boxes, canonical_scale=56).tolist() == [4, 16, 16, 32, 32]
    with pytest.raises(ValueError, match="canonical_scale"):
        mrcnn.roi_strides(boxes, canonical_scale=0)


def test_rpn_stages_label_anchors_and_shrink_candidates(model):
    scenes = generate_scenes(1, SMALL, seed=3)  # the fixture's model reads 64-pixel images
    truth = scenes.instances(0)["boxes"]
    stages = mrcnn.rpn_stages(model, scenes.images[0], truth)
    labels, iou = stages["anchor_labels"], stages["anchor_iou"]
    assert len(labels) == len(stages["anchors"]) == len(iou)
    assert (iou[labels == 0] < 0.3).all() and ((iou[labels == -1] >= 0.3) & (iou[labels == -1] < 0.7)).all()
    assert (iou >= 0.7).sum() <= (labels == 1).sum() >= len(truth)  # every object has a positive anchor
    assert len(stages["proposals"]) <= len(stages["candidates"]) == len(stages["candidate_scores"])
    fig = lab.show_rpn_stages(scenes.images[0], stages, candidates=5)
    assert len(fig.axes) == 3
    with pytest.raises(TypeError, match="model must be"):
        mrcnn.rpn_stages(torch.nn.Linear(2, 2), scenes.images[0], truth)


def test_things_pq_gap_is_zero_for_equal_predictions_and_positive_for_better():
    scenes = generate_scenes(12, lab.CONFIG, seed=4)
    things, stuffs = scenes.config.thing_ids, scenes.config.stuff_ids
    perfect = panoptic_quality(scenes.panoptic, scenes.panoptic, things, stuffs)
    stuff_only = scenes.panoptic.clone()
    stuff_only[stuff_only % 1000 > 0] = 0  # every thing missed
    blind = panoptic_quality(stuff_only, scenes.panoptic, things, stuffs)
    same = lab.things_pq_gap(perfect, perfect, things, stuffs, resamples=20)
    assert same.value == same.low == same.high == 0
    better = lab.things_pq_gap(perfect, blind, things, stuffs, resamples=20)
    assert better.value == pytest.approx(1.0) and better.low > 0.9
    with pytest.raises(TypeError, match="per_image"):
        lab.things_pq_gap({"pq": 1.0}, perfect, things, stuffs)


def test_area_counts_and_coco_summary():
    scenes = generate_scenes(4, lab.CONFIG, seed=5)
    counts = area_counts(detection.scene_targets(scenes))
    assert sum(counts.values()) == int(scenes.valid.sum()) and set(counts) == {"small", "medium", "large"}
    metrics = {f"{p}{k}": 0.5 for p in ("mask_", "box_") for k in ("ap", "ap50", "ap75", "ap_small", "ap_medium",
               "ap_large", "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")}
    metrics["mask_ap_large"] = float("nan")
    table = coco_summary(metrics).splitlines()
    assert len(table) == 14 and "| AP_L | 0.50:0.95 | large | n/a | 0.500 |" in table
    with pytest.raises(ValueError, match="twelve numbers"):
        coco_summary({"mask_ap": 0.5})


def test_error_counts_sort_every_kind():
    scenes = generate_scenes(1, SceneConfig(size=64, min_objects=2, max_objects=3), seed=7)
    truth = detection.scene_targets(scenes[0])[0]
    n = len(truth["labels"])
    masks, labels = truth["masks"], truth["labels"]
    background = torch.zeros_like(masks[:1])
    background[0, :2, :2] = True                          # a false alarm on no object
    other = labels[:1] % 3 + 1                            # object 0 again, under another class
    prediction = {"masks": torch.cat([masks[1:], masks[:1], masks[1:2], background]),
                  "labels": torch.cat([labels[1:], other, labels[1:2], labels[:1]]),
                  "scores": torch.cat([torch.full((n - 1,), 0.9), torch.tensor([0.8, 0.7, 0.6])]),
                  "boxes": torch.zeros(n + 2, 4)}
    counts = error_counts([prediction], [truth])
    assert counts == {"correct": n - 1, "wrong class": 1, "duplicate, same class": 1,
                      "duplicate, other class": 0, "background": 1, "missed": 0}
    low = dict(prediction, scores=torch.full_like(prediction["scores"], 0.1))
    assert error_counts([low], [truth])["missed"] == n  # nothing scores 0.5: every object missed
    with pytest.raises(ValueError, match="one entry per image"):
        error_counts([prediction, prediction], [truth])
