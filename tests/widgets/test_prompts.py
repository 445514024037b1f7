"""The prompt widget: its headless session and the ipywidgets front (no browser needed)."""

import pytest
import torch

from seglib.models.promptable import build_small_sam
from seglib.predictor import SmallSamPredictor
from seglib.widgets.prompts import PromptSession, PromptWidget, prompt_widget


class CountingPredictor(SmallSamPredictor):
    encodes = 0

    def set_image(self, image):
        self.encodes += 1
        super().set_image(image)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_small_sam(image_size=32, embed_dim=32, widths=(8, 16, 32), encoder_depth=1, dense_points=True)


@pytest.fixture
def session(model):
    return PromptSession(CountingPredictor(model), torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)))


def test_points_and_box_update_the_prediction(session):
    assert session.prediction is None and "Add a point" in session.message
    out = session.add_point(10.5, 12.5)
    assert out.masks.shape == (3, 32, 32) and session.multimask
    assert session.mask.shape == (32, 32) and session.best == int(out.iou_predictions.argmax())
    assert "1 foreground, 0 background" in session.message and "predicted IoU" in session.message
    out = session.add_point(2.5, 2.5, foreground=False)
    assert out.masks.shape == (1, 32, 32) and not session.multimask
    session.set_box((4, 4, 24, 28))
    assert session.box == (4.0, 4.0, 24.0, 28.0) and "a box" in session.message
    session.undo()
    assert len(session.points) == 1
    session.clear()
    assert session.prediction is None and session.box is None
    assert session.predictor.encodes == 1, "prompts never re-encode the image"


def test_impossible_prompts_explain_instead_of_raising(session):
    session.add_point(40, 3)
    assert not session.points and "outside" in session.message
    session.set_box((10, 10, 5, 20))
    assert session.box is None and "empty" in session.message


def test_render_draws_mask_box_and_points(session):
    plain = session.render(scale=3)
    assert plain.shape == (3, 96, 96) and plain.dtype == torch.uint8
    session.add_point(16.5, 16.5)
    session.set_box((2, 2, 30, 30))
    drawn = session.render(scale=3)
    assert not torch.equal(plain, drawn)
    assert tuple(drawn[:, 49, 49].tolist()) == (0, 158, 115), "a foreground point is green"
    assert len(session.candidates()) == 1 and session.candidates()[0].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="scale"):
        session.render(scale=0)


def test_widget_buttons_sliders_and_clicks(model):
    widget = prompt_widget(SmallSamPredictor(model), torch.rand(3, 32, 32), scale=4)
    assert isinstance(widget, PromptWidget) and widget.picture.value[:4] == b"\x89PNG"
    widget.x.value, widget.y.value = 5, 6
    widget.add_fg.click()
    assert widget.session.points == [(5.5, 6.5)] and len(widget.candidate_row.children) == 3
    widget.add_bg.click()
    assert widget.session.labels == [1, 0]
    widget.use_box.value = True
    assert widget.session.box == (8.0, 8.0, 25.0, 25.0)
    widget.on_image_click({"dataX": 41, "dataY": 9, "shiftKey": True})
    assert widget.session.points[-1] == (10.5, 2.5) and widget.session.labels[-1] == 0
    widget.on_image_click({})
    assert "no position" in widget.status.value
    widget.undo_button.click()
    widget.clear_button.click()
    assert widget.session.prediction is None and widget.candidate_row.children == ()
    with pytest.raises(TypeError, match="predict"):
        PromptSession(object(), torch.rand(3, 8, 8))
