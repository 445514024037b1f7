"""The predictor interface: the small model's predictor, the adapter around SAM, the checkpoint loader."""

import hashlib
import sys
import types

import numpy as np
import pytest
import torch

from seglib.models.promptable import build_small_sam
from seglib.predictor import (
    Prediction,
    SegmentAnythingAdapter,
    SmallSamPredictor,
    load_segment_anything,
)


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return SmallSamPredictor(build_small_sam(image_size=32, embed_dim=32, widths=(8, 16, 32), encoder_depth=1))


def image(size=32, seed=0):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


def test_set_image_once_predict_many(predictor):
    predictor.set_image(image())
    assert predictor.is_image_set
    embedding = predictor.features.embedding.clone()
    assert embedding.shape == (1, 32, 8, 8)
    out = predictor.predict(torch.tensor([[10.5, 12.5]]), torch.tensor([1]))
    assert isinstance(out, Prediction)
    assert out.masks.shape == (3, 32, 32) and out.masks.dtype == torch.bool
    assert out.iou_predictions.shape == (3,) and out.low_res_logits.shape == (3, 32, 32)
    single = predictor.predict(box=torch.tensor([4.0, 4.0, 20.0, 24.0]), multimask_output=False)
    assert single.masks.shape == (1, 32, 32)
    refined = predictor.predict(torch.tensor([[10.5, 12.5], [3.5, 3.5]]), torch.tensor([1, 0]),
                                mask_input=out.low_res_logits[:1], multimask_output=False)
    assert refined.masks.shape == (1, 32, 32)
    assert torch.equal(predictor.features.embedding, embedding), "predict never re-encodes"


def test_other_image_sizes_are_resized(predictor):
    predictor.set_image(image(48))
    out = predictor.predict(torch.tensor([[24.0, 24.0]]), torch.tensor([1]))
    assert out.masks.shape == (3, 48, 48) and out.low_res_logits.shape == (3, 32, 32)
    uint8 = (image(32) * 255).to(torch.uint8)
    predictor.set_image(uint8)
    assert predictor.original_size == (32, 32)


def test_predictor_validates(predictor):
    fresh = SmallSamPredictor(predictor.model)
    with pytest.raises(RuntimeError, match="set_image"):
        fresh.predict(box=torch.tensor([0.0, 0.0, 4.0, 4.0]))
    predictor.set_image(image())
    with pytest.raises(ValueError, match="give a prompt"):
        predictor.predict()
    with pytest.raises(ValueError, match="together"):
        predictor.predict(torch.tensor([[1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        predictor.predict(torch.tensor([1.0, 1.0]), torch.tensor([1]))
    with pytest.raises(ValueError, match="1 \\(foreground\\), 0"):
        predictor.predict(torch.tensor([[1.0, 1.0]]), torch.tensor([3]))
    with pytest.raises(ValueError, match="x2 >= x1"):
        predictor.predict(box=torch.tensor([9.0, 0.0, 4.0, 4.0]))
    with pytest.raises(ValueError, match="mask_input"):
        predictor.predict(box=torch.tensor([0.0, 0.0, 4.0, 4.0]), mask_input=torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        predictor.set_image(torch.rand(1, 8, 8))
    with pytest.raises(TypeError, match="SmallSam"):
        SmallSamPredictor(torch.nn.Linear(2, 2))


class StandInSamPredictor:
    """segment_anything's SamPredictor API on numpy arrays, recording what it is given."""

    def __init__(self, model=None):
        self.model, self.calls = model, []

    def set_image(self, image):
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[2] == 3
        self.image = image

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True):
        self.calls.append(dict(point_coords=point_coords, point_labels=point_labels, box=box,
                               mask_input=mask_input, multimask_output=multimask_output))
        c = 3 if multimask_output else 1
        h, w = self.image.shape[:2]
        masks = np.zeros((c, h, w), dtype=bool)
        masks[:, : h // 2] = True
        return masks, np.linspace(0.5, 0.9, c).astype(np.float32), np.zeros((c, 256, 256), dtype=np.float32)


def test_adapter_converts_to_sam_conventions():
    stand_in = StandInSamPredictor()
    adapter = SegmentAnythingAdapter(stand_in)
    picture = image(20)
    adapter.set_image(picture)
    assert stand_in.image.shape == (20, 20, 3)
    assert np.array_equal(stand_in.image[..., 0], (picture[0] * 255).round().to(torch.uint8).numpy())
    out = adapter.predict(torch.tensor([[3.5, 4.5]]), torch.tensor([1]), box=torch.tensor([1.0, 2.0, 9.0, 10.0]))
    call = stand_in.calls[-1]
    np.testing.assert_allclose(call["point_coords"], [[3.0, 4.0]])  # pixel centres at integers in SAM
    np.testing.assert_array_equal(call["point_labels"], [1])
    np.testing.assert_allclose(call["box"], [0.5, 1.5, 8.5, 9.5])
    assert call["multimask_output"] is True
    assert out.masks.dtype == torch.bool and out.masks.shape == (3, 20, 20)
    assert out.iou_predictions.dtype == torch.float32 and out.low_res_logits.shape == (3, 256, 256)
    adapter.predict(box=torch.tensor([1.0, 2.0, 9.0, 10.0]), mask_input=out.low_res_logits[:1],
                    multimask_output=False)
    assert stand_in.calls[-1]["point_coords"] is None and stand_in.calls[-1]["mask_input"].shape == (1, 256, 256)
    with pytest.raises(TypeError, match="SamPredictor"):
        SegmentAnythingAdapter(object())


def fake_package(monkeypatch, name="segment_anything"):
    built = {}

    def build_vit_b(checkpoint):
        built["checkpoint"] = checkpoint
        return torch.nn.Linear(1, 1)

    package = types.SimpleNamespace(sam_model_registry={"vit_b": build_vit_b, "vit_t": build_vit_b},
                                    SamPredictor=StandInSamPredictor)
    monkeypatch.setitem(sys.modules, name, package)
    return built


def test_loader_downloads_verifies_and_adapts(tmp_path, monkeypatch):
    built = fake_package(monkeypatch)
    checkpoint = tmp_path / "sam_vit_b_fixture.pth"
    checkpoint.write_bytes(b"not really a checkpoint")
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    adapter, message = load_segment_anything("vit_b", url=checkpoint.as_uri(), sha256=digest,
                                             directory=tmp_path / "cache")
    assert isinstance(adapter, SegmentAnythingAdapter) and "loaded SAM vit_b" in message
    assert built["checkpoint"] == str(tmp_path / "cache" / "sam_vit_b_fixture.pth")
    bad, message = load_segment_anything("vit_b", url=checkpoint.as_uri(), sha256="0" * 64,
                                         directory=tmp_path / "other")
    assert bad is None and "sha256" in message and "small model" in message
    missing, message = load_segment_anything("vit_b", url=(tmp_path / "absent.pth").as_uri(),
                                             directory=tmp_path / "c3")
    assert missing is None and "not available" in message


def test_loader_without_package_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "mobile_sam", None)
    predictor, message = load_segment_anything("vit_t")
    assert predictor is None and "mobile_sam" in message and "pip install" in message
    with pytest.raises(ValueError, match="model_type"):
        load_segment_anything("vit_h")


def test_predict_boxes_decodes_every_box_in_one_batch(predictor):
    predictor.set_image(image())
    boxes = torch.tensor([[4.0, 4.0, 20.0, 24.0], [10.0, 2.0, 30.0, 12.0], [0.0, 0.0, 32.0, 32.0]])
    batch = predictor.predict_boxes(boxes)
    assert batch.masks.shape == (3, 32, 32) and batch.iou_predictions.shape == (3,)
    for k, box in enumerate(boxes):  # the same answer as one box at a time
        single = predictor.predict(box=box, multimask_output=False)
        assert torch.equal(single.masks[0], batch.masks[k])
        assert torch.allclose(single.low_res_logits[0], batch.low_res_logits[k], atol=1e-5)
    assert bool(((batch.iou_predictions >= 0) & (batch.iou_predictions <= 1)).all())
    with pytest.raises(ValueError, match="boxes"):
        predictor.predict_boxes(boxes[:0])


def test_predicted_iou_is_clipped_to_the_unit_interval(predictor):
    predictor.set_image(image())
    with torch.no_grad():
        predictor.model.mask_decoder.iou_head.layers[-1].bias.fill_(5.0)  # a head that overshoots
    try:
        out = predictor.predict(torch.tensor([[10.5, 12.5]]), torch.tensor([1]))
        assert bool((out.iou_predictions == 1).all())
    finally:
        with torch.no_grad():
            predictor.model.mask_decoder.iou_head.layers[-1].bias.zero_()
