"""The Penn-Fudan loader on a tiny fake copy in the real folder layout, and fine-tuning plumbing."""

import re
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


# --------------------------------------------------------------------------- partial copies and bad arguments


def _archive(tmp_path):
    source = make_copy(tmp_path / "source")
    archive = tmp_path / "PennFudanPed.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in (source / "PennFudanPed").rglob("*.png"):
            handle.write(path, path.relative_to(source))
    return archive


def _remove(folder, pattern="*"):
    for path in folder.glob(pattern):
        path.unlink()


@pytest.mark.parametrize("damage, message", [
    (lambda base: (_remove(base / "PedMasks"), (base / "PedMasks").rmdir()), "the folder PedMasks is missing"),
    (lambda base: (_remove(base / "PNGImages"), (base / "PNGImages").rmdir()), "the folder PNGImages is missing"),
    (lambda base: _remove(base / "PedMasks"), r"PedMasks holds no \*_mask.png mask"),
    (lambda base: _remove(base / "PNGImages"), "PNGImages holds no .png photo"),
    (lambda base: (base / "PedMasks" / "FudanPed00002_mask.png").unlink(),
     r"1 of 3 photos have no mask in PedMasks \(e.g. FudanPed00002_mask.png\)"),
    (lambda base: (base / "PNGImages" / "PennPed00001.png").unlink(),
     r"1 mask\(s\) have no photo in PNGImages \(e.g. PennPed00001.png\)"),
])
def test_partial_copy_names_the_folder_and_what_is_missing(tmp_path, damage, message):
    root = make_copy(tmp_path)
    base = root / "PennFudanPed"
    damage(base)
    with pytest.raises(RuntimeError, match=f"Penn-Fudan in {re.escape(str(base))} is incomplete: {message}"):
        real.PennFudanPed(root, split="all")
    dataset, reason = real.load_penn_fudan("all", root=root, download=False)
    assert dataset is None and "\n" not in reason
    assert f"Penn-Fudan in {base} is incomplete" in reason and reason.endswith("skipping the real-data section.")


def test_a_copy_too_small_for_the_train_split_is_not_an_empty_dataset(tmp_path):
    root = make_copy(tmp_path)  # 3 photos: all of them in the test split (the last 50)
    with pytest.raises(RuntimeError, match=r"holds 3 photos, all of them in the test split .* split='train' is empty"):
        real.PennFudanPed(root, split="train")
    dataset, reason = real.load_penn_fudan("train", root=root, download=False)
    assert dataset is None and "split='train' is empty" in reason
    assert len(real.PennFudanPed(root, split="test")) == 3


def test_download_completes_a_partial_copy_or_says_why_not(tmp_path):
    archive = _archive(tmp_path)
    root = make_copy(tmp_path / "data")
    _remove(root / "PennFudanPed" / "PedMasks")
    dataset, message = real.load_penn_fudan("all", root=root, url=archive.as_uri())
    assert dataset is not None and len(dataset) == 3, message
    _remove(root / "PennFudanPed" / "PedMasks")
    (root / "PennFudanPed.zip").unlink()  # the cached archive is gone and the server is unreachable
    dataset, reason = real.load_penn_fudan("all", root=root, url=(tmp_path / "absent.zip").as_uri())
    assert dataset is None and "\n" not in reason
    assert "is incomplete: PedMasks holds no" in reason and "the archive could not be had" in reason


@pytest.mark.parametrize("kwargs, error, match", [
    ({"split": "val"}, ValueError, "split must be one of"),
    ({"max_side": 4}, ValueError, r"max_side must be an int >= 8, got 4"),
    ({"max_side": 100.0}, TypeError, r"max_side must be an int, got float"),
    ({"root": 3}, TypeError, r"root must be a folder path \(str or pathlib.Path\) or None, got int"),
    ({"download": "yes"}, TypeError, r"download must be True or False, got str"),
    ({"url": None}, TypeError, r"url must be a str"),
])
def test_load_penn_fudan_checks_arguments_before_downloading(tmp_path, kwargs, error, match):
    archive = _archive(tmp_path)
    arguments = {"split": "all", "root": tmp_path / "data", "url": archive.as_uri()} | kwargs
    with pytest.raises(error, match=match):
        real.load_penn_fudan(**arguments)
    assert not (tmp_path / "data").exists()  # nothing was fetched


def test_penn_fudan_dataset_checks_arguments(tmp_path):
    root = make_copy(tmp_path)
    with pytest.raises(ValueError, match="max_side must be an int >= 8"):
        real.PennFudanPed(root, "all", max_side=2)
    with pytest.raises(TypeError, match="max_side must be an int"):
        real.PennFudanPed(root, "all", max_side="400")
    with pytest.raises(TypeError, match="root must be a folder path"):
        real.PennFudanPed(1, "all")
    with pytest.raises(TypeError, match="index must be an int"):
        real.PennFudanPed(root, "all")[0.5]
