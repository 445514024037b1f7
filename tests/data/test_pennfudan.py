"""The Penn-Fudan loader on a tiny fake copy in the real folder layout, and fine-tuning plumbing."""

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from seglib.data import real

NAMES = ["FudanPed00001", "FudanPed00002", "PennPed00001"]


def make_copy(base, names=NAMES):
    """``base/PennFudanPed/{PNGImages, PedMasks}``: photos with one or two people as instance ids."""
    (base / "PennFudanPed" / "PNGImages").mkdir(parents=True)
    (base / "PennFudanPed" / "PedMasks").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, name in enumerate(names):
        height, width = 60 + 4 * k, 80 - 6 * k
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
            base / "PennFudanPed" / "PNGImages" / f"{name}.png")
        ids = np.zeros((height, width), dtype=np.uint8)
        ids[5:50, 10:25] = 1
        if k != 1:
            ids[8:40, 40:55] = 2
        mask = Image.fromarray(ids, mode="L").convert("P")  # the real masks are palette PNGs
        mask.save(base / "PennFudanPed" / "PedMasks" / f"{name}_mask.png")
    return base


def test_fake_copy_loads(tmp_path):
    root = make_copy(tmp_path)
    dataset = real.PennFudanPed(root, split="all")
    assert len(dataset) == 3
    image, target = dataset[0]
    assert image.shape == (3, 60, 80) and image.dtype == torch.float32 and float(image.max()) <= 1
    assert target["masks"].shape == (2, 60, 80) and target["masks"].dtype == torch.bool
    assert target["boxes"].tolist() == [[10.0, 5.0, 25.0, 50.0], [40.0, 8.0, 55.0, 40.0]]
    assert target["labels"].tolist() == [1, 1]
    assert len(dataset[1][1]["labels"]) == 1
    small_image, small = real.PennFudanPed(root, split="all", max_side=40)[0]
    assert small_image.shape == (3, 30, 40) and small["masks"].shape == (2, 30, 40)
    assert small["boxes"][0].tolist() == [5.0, 3.0, 13.0, 25.0]


def test_splits_keep_the_last_photos_for_testing(tmp_path, monkeypatch):
    root = make_copy(tmp_path)
    monkeypatch.setattr(real, "PENNFUDAN_TEST_IMAGES", 1)
    train, test = real.PennFudanPed(root, "train"), real.PennFudanPed(root, "test")
    assert [p.stem for p, _ in train.files] == NAMES[:2] and [p.stem for p, _ in test.files] == NAMES[2:]
    with pytest.raises(ValueError, match="split"):
        real.PennFudanPed(root, "val")
    with pytest.raises(IndexError):
        test[1]


def test_download_from_file_url_and_offline_reason(tmp_path):
    source = make_copy(tmp_path / "source")
    archive = tmp_path / "PennFudanPed.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in (source / "PennFudanPed").rglob("*.png"):
            handle.write(path, path.relative_to(source))
    dataset, message = real.load_penn_fudan("all", root=tmp_path / "data", url=archive.as_uri())
    assert dataset is not None and len(dataset) == 3 and "3 photos" in message
    missing, reason = real.load_penn_fudan(root=tmp_path / "none", url=(tmp_path / "absent.zip").as_uri())
    assert missing is None and reason.startswith("Penn-Fudan not available") and "\n" not in reason
    absent, reason = real.load_penn_fudan(root=tmp_path / "none", download=False)
    assert absent is None and "not found" in reason


def test_finetuning_plumbing_on_the_fake_copy(tmp_path):
    from seglib.metrics.instance import coco_mask_ap
    from seglib.models.maskrcnn import build_maskrcnn, replace_predictors
    from seglib.labs.mask_rcnn import LossLog, detection_forward, predict
    from seglib.data.detection import dataset_batches
    from seglib.train import train

    dataset = real.PennFudanPed(make_copy(tmp_path), split="all")
    torch.manual_seed(0)
    model = replace_predictors(build_maskrcnn(num_classes=4, image_size=64), num_classes=2)
    assert model.roi_heads.box_predictor.cls_score.out_features == 2
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 2
    log = LossLog()
    train(model, dataset_batches(dataset, batch_size=2, seed=0), log, steps=2, forward=detection_forward,
          progress=False, log_every=1)
    assert len(log.terms["loss_mask"]) == 2
    predictions = predict(model, [dataset[i][0] for i in range(len(dataset))])
    metrics = coco_mask_ap(predictions, [dataset[i][1] for i in range(len(dataset))])
    assert 0 <= metrics["mask_ap50"] <= 1
