"""Interactive prompting and the figures of the Segment Anything notebook.

Figures: :func:`show_candidates` (the masks of one prompt with their
predicted IoU), :func:`simulate_user` and :func:`show_click_rounds` (a user
who clicks where the mask is wrong), :func:`show_tracks` and
:func:`plot_j` (a mask carried through a video).

:class:`PromptSession` is the headless core (what the tests drive): it holds
an image already encoded by a predictor, the prompts placed so far, and the
latest :class:`~seglib.predictor.Prediction`; every change
of the prompts runs only the light ``predict``, never the image encoder.

:func:`prompt_widget` wraps a session in ipywidgets: sliders choose a pixel,
buttons add it as a foreground or background point, undo or clear, and two
range sliders with a checkbox make a box. Where the ``ipyevents`` package is
installed, clicking the picture adds a point directly (shift-click: a
background point). ipywidgets is imported only there and the code uses API
shared by ipywidgets 7.7 (Colab) and 8.
"""

from __future__ import annotations

import io
from typing import Any

import torch

from seglib.predictor import Prediction
from seglib.validation import check_image
from seglib.viz import highlight, overlay_boxes, to_uint8

FOREGROUND_COLOUR = (0, 158, 115)
BACKGROUND_COLOUR = (213, 94, 0)


class PromptSession:
    """An image, a predictor and the prompts a user has placed on it.

    Args:
        predictor: anything with the course's predictor interface
            (``set_image`` and ``predict``); ``set_image`` is called here, once.
        image: float ``(3, H, W)`` in [0, 1].
    """

    def __init__(self, predictor, image: torch.Tensor) -> None:
        for method in ("set_image", "predict"):
            if not callable(getattr(predictor, method, None)):
                raise TypeError(f"predictor must have a {method}() method, got {type(predictor).__name__}")
        check_image("image", image, allow_uint8=True)
        self.predictor, self.image = predictor, image
        self.height, self.width = image.shape[-2:]
        self.points: list[tuple[float, float]] = []
        self.labels: list[int] = []
        self.box: tuple[float, float, float, float] | None = None
        self.prediction: Prediction | None = None
        self.best: int | None = None
        self.message = "Add a point or a box."
        predictor.set_image(image)

    # -- prompts --------------------------------------------------------------------------------

    def add_point(self, x: float, y: float, foreground: bool = True) -> Prediction | None:
        """Add a point at ``(x, y)`` pixels (a pixel's centre is ``(i + 0.5, j + 0.5)``) and predict.

        A point outside the image is not added; :attr:`message` says why.
        """
        if not (0 <= x <= self.width and 0 <= y <= self.height):
            self.message = (f"({x:g}, {y:g}) lies outside the {self.width} x {self.height} image; "
                            "no point added.")
            return self.prediction
        self.points.append((float(x), float(y)))
        self.labels.append(1 if foreground else 0)
        return self.update()

    def set_box(self, box: tuple[float, float, float, float] | None) -> Prediction | None:
        """Set the box ``(x1, y1, x2, y2)`` on pixel edges (``None`` removes it) and predict."""
        if box is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            if not (0 <= x1 < x2 <= self.width and 0 <= y1 < y2 <= self.height):
                self.message = (f"box {box} is empty or leaves the image (need 0 <= x1 < x2 <= {self.width}, "
                                f"0 <= y1 < y2 <= {self.height}); box not changed.")
                return self.prediction
            box = (x1, y1, x2, y2)
        self.box = box
        return self.update()

    def undo(self) -> Prediction | None:
        """Remove the last point (or, without points, the box) and predict again."""
        if self.points:
            self.points.pop()
            self.labels.pop()
        else:
            self.box = None
        return self.update()

    def clear(self) -> None:
        """Remove every prompt."""
        self.points.clear()
        self.labels.clear()
        self.box = None
        self.update()

    # -- prediction -----------------------------------------------------------------------------

    @property
    def multimask(self) -> bool:
        """SAM's advice: ask for three masks when the prompt is a single point."""
        return len(self.points) == 1 and self.box is None

    def update(self) -> Prediction | None:
        """Run ``predict`` on the current prompts; keep and return the result (``None`` without prompts)."""
        if not self.points and self.box is None:
            self.prediction, self.best = None, None
            self.message = "Add a point or a box."
            return None
        kwargs: dict[str, Any] = {"multimask_output": self.multimask}
        if self.points:
            kwargs["point_coords"] = torch.tensor(self.points, dtype=torch.float32)
            kwargs["point_labels"] = torch.tensor(self.labels, dtype=torch.int64)
        if self.box is not None:
            kwargs["box"] = torch.tensor(self.box, dtype=torch.float32)
        self.prediction = self.predictor.predict(**kwargs)
        self.best = int(self.prediction.iou_predictions.argmax())
        self.message = self.describe()
        return self.prediction

    @property
    def mask(self) -> torch.Tensor | None:
        """The mask shown: the candidate with the highest predicted IoU, bool ``(H, W)``."""
        return None if self.prediction is None else self.prediction.masks[self.best].cpu()

    def describe(self) -> str:
        """One line on the prompts and the masks."""
        fg, bg = sum(self.labels), len(self.labels) - sum(self.labels)
        text = f"{fg} foreground, {bg} background point(s), {'a box' if self.box else 'no box'}"
        if self.prediction is None:
            return text + "."
        scores = ", ".join(f"{v:.2f}" for v in self.prediction.iou_predictions.tolist())
        return (f"{text}: {len(self.prediction.masks)} mask(s), predicted IoU {scores}; "
                f"showing mask {self.best + 1} ({int(self.mask.sum())} px).")

    # -- drawing --------------------------------------------------------------------------------

    def render(self, scale: int = 5) -> torch.Tensor:
        """The image with the shown mask, the box and the points, enlarged: uint8 ``(3, H*scale, W*scale)``."""
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be an int >= 1, got {scale!r}")
        picture = to_uint8(self.image)
        if self.mask is not None:
            picture = highlight(picture.float() / 255, self.mask, alpha=0.5)
        picture = picture.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
        if self.box is not None:
            box = torch.tensor([self.box]) * scale
            picture = overlay_boxes(picture.float() / 255, box, labels=torch.tensor([5]), width=2)
        radius = max(scale // 2 + 1, 2)
        for (x, y), label in zip(self.points, self.labels):
            colour = torch.tensor(FOREGROUND_COLOUR if label else BACKGROUND_COLOUR, dtype=torch.uint8)
            cx, cy = int(x * scale), int(y * scale)
            y0, y1 = max(cy - radius, 0), min(cy + radius + 1, picture.shape[1])
            x0, x1 = max(cx - radius, 0), min(cx + radius + 1, picture.shape[2])
            picture[:, y0:y1, x0:x1] = 255
            picture[:, y0 + 1:y1 - 1, x0 + 1:x1 - 1] = colour[:, None, None]
        return picture

    def candidates(self, scale: int = 2) -> list[torch.Tensor]:
        """Every candidate mask over the image, uint8 ``(3, H*scale, W*scale)`` each (empty without a prediction)."""
        if self.prediction is None:
            return []
        image = self.image.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
        return [highlight(image, m.cpu().repeat_interleave(scale, 0).repeat_interleave(scale, 1))
                for m in self.prediction.masks]


def _png(picture: torch.Tensor) -> bytes:
    """PNG bytes of a uint8 ``(3, H, W)`` picture (Pillow comes with matplotlib)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture.permute(1, 2, 0).contiguous().numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


class PromptWidget:
    """The ipywidgets front of a :class:`PromptSession` (build it with :func:`prompt_widget`).

    Attributes:
        session: the headless session.
        picture: ``ipywidgets.Image`` showing :meth:`PromptSession.render`.
        widget: the whole UI; displaying the object displays it.
    """

    def __init__(self, session: PromptSession, scale: int = 5) -> None:
        import ipywidgets as widgets

        self.session, self.scale = session, scale
        h, w = session.height, session.width
        style, wide = {"description_width": "initial"}, widgets.Layout(width="340px")
        self.x = widgets.IntSlider(value=w // 2, min=0, max=w - 1, description="point x", style=style, layout=wide)
        self.y = widgets.IntSlider(value=h // 2, min=0, max=h - 1, description="point y", style=style, layout=wide)
        self.add_fg = widgets.Button(description="add foreground point", button_style="success")
        self.add_bg = widgets.Button(description="add background point", button_style="danger")
        self.undo_button = widgets.Button(description="undo")
        self.clear_button = widgets.Button(description="clear")
        self.use_box = widgets.Checkbox(value=False, description="use a box", style=style)
        self.box_x = widgets.IntRangeSlider(value=(w // 4, 3 * w // 4), min=0, max=w - 1, description="box x",
                                            style=style, layout=wide)
        self.box_y = widgets.IntRangeSlider(value=(h // 4, 3 * h // 4), min=0, max=h - 1, description="box y",
                                            style=style, layout=wide)
        self.picture = widgets.Image(format="png", width=str(w * scale), height=str(h * scale))
        self.candidate_row = widgets.HBox([])
        self.status = widgets.HTML()
        self.add_fg.on_click(lambda _: self._add(True))
        self.add_bg.on_click(lambda _: self._add(False))
        self.undo_button.on_click(lambda _: self._after(self.session.undo()))
        self.clear_button.on_click(lambda _: self._after(self.session.clear()))
        for control in (self.use_box, self.box_x, self.box_y):
            control.observe(self._box_changed, names="value")
        self.click_support = self._connect_clicks()
        controls = widgets.VBox([
            self.x, self.y, widgets.HBox([self.add_fg, self.add_bg]), widgets.HBox([self.undo_button, self.clear_button]),
            self.use_box, self.box_x, self.box_y,
        ])
        hint = widgets.HTML("<i>Click the picture to add a point (shift-click: background).</i>"
                            if self.click_support else
                            "<i>Choose a pixel with the sliders, then add it as a point.</i>")
        self.widget = widgets.VBox([widgets.HBox([self.picture, controls]), hint, self.status, self.candidate_row])
        self.refresh()

    def _connect_clicks(self) -> bool:
        try:
            from ipyevents import Event
        except ImportError:
            return False
        self._events = Event(source=self.picture, watched_events=["click"])
        self._events.on_dom_event(self.on_image_click)
        return True

    def on_image_click(self, event: dict) -> None:
        """Handle a click on the picture (ipyevents' event dict: ``dataX``, ``dataY``, ``shiftKey``)."""
        x, y = event.get("dataX"), event.get("dataY")
        if x is None or y is None:
            self.status.value = "The click carried no position; use the sliders instead."
            return
        self.session.add_point(int(x // self.scale) + 0.5, int(y // self.scale) + 0.5,
                               foreground=not event.get("shiftKey", False))
        self.refresh()

    def _add(self, foreground: bool) -> None:
        self.session.add_point(self.x.value + 0.5, self.y.value + 0.5, foreground)
        self.refresh()

    def _box_changed(self, change: Any = None) -> None:
        if self.use_box.value:
            (x1, x2), (y1, y2) = self.box_x.value, self.box_y.value
            self.session.set_box((x1, y1, x2 + 1, y2 + 1))
        else:
            self.session.set_box(None)
        self.refresh()

    def _after(self, _result: Any) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Redraw the picture, the candidate masks and the status line from the session."""
        import ipywidgets as widgets

        self.picture.value = _png(self.session.render(self.scale))
        row = []
        if self.session.prediction is not None:
            for i, (image, score) in enumerate(zip(self.session.candidates(),
                                                   self.session.prediction.iou_predictions.tolist())):
                marker = " (shown)" if i == self.session.best else ""
                row.append(widgets.VBox([widgets.Image(value=_png(image), format="png"),
                                         widgets.HTML(f"mask {i + 1}: IoU<sub>pred</sub> {score:.2f}{marker}")]))
        self.candidate_row.children = row
        self.status.value = self.session.message

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def prompt_widget(predictor, image: torch.Tensor, scale: int = 5) -> PromptWidget:
    """An interactive prompt editor for ``image`` (float ``(3, H, W)``) with ``predictor``.

    Args:
        predictor: e.g. a :class:`~seglib.predictor.SmallSamPredictor`.
        image: the image to segment (encoded once, here).
        scale: how many screen pixels show one image pixel.
    """
    return PromptWidget(PromptSession(predictor, image), scale)


# -- figures ------------------------------------------------------------------------------------


__all__ = ["PromptSession", "PromptWidget", "prompt_widget"]
