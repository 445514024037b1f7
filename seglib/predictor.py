"""The predictor: ``set_image`` once, ``predict`` many times.

SAM's design puts the cost in the image encoder and keeps the prompt side
light, so an interactive tool encodes an image once (``set_image``) and then
answers each click in milliseconds (``predict``). Two predictors share that
interface here:

* :class:`SmallSamPredictor` around the small model trained in the course;
* :class:`SegmentAnythingAdapter` around the ``segment_anything`` package's
  ``SamPredictor`` (the real SAM, ViT-B; or MobileSAM's ViT-T, whose
  ``mobile_sam`` package has the same API), built by
  :func:`load_segment_anything` when the package and a checkpoint can be had.

Interface (DESIGN.md conventions): ``set_image(image)`` takes float
``(3, H, W)`` in [0, 1] (or uint8); ``predict(point_coords, point_labels, box,
mask_input, multimask_output)`` takes points float ``(N, 2)`` ``(x, y)`` in
pixels (pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``), labels int ``(N,)``
1 = foreground, 0 = background, a box float ``(4,)`` xyxy on pixel edges, and
returns a :class:`Prediction`: masks bool ``(C, H, W)``, predicted IoUs float
``(C,)`` and low-resolution logits float ``(C, h, w)``, with ``C = 3`` for
``multimask_output=True`` and 1 otherwise.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from seglib.models.promptable.image_encoder import ImageFeatures
from seglib.models.promptable.model import SmallSam
from seglib.validation import check_boxes, check_image, check_tensor

SAM_CHECKPOINTS: dict[str, dict[str, str | None]] = {
    "vit_b": {
        "package": "segment_anything",
        "url": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
        "sha256": "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        "install": "pip install git+https://github.com/facebookresearch/segment-anything.git",
    },
    "vit_t": {
        "package": "mobile_sam",
        "url": "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
        # MobileSAM publishes no digest of its weights: pass sha256=... to check one.
        "sha256": None,
        "install": "pip install git+https://github.com/ChaoningZhang/MobileSAM.git",
    },
}
"""Checkpoints :func:`load_segment_anything` knows: package, URL, SHA-256, how to install."""


class Prediction(NamedTuple):
    """What ``predict`` returns: masks bool ``(C, H, W)``, ``iou_predictions`` ``(C,)``,
    ``low_res_logits`` ``(C, h, w)``."""

    masks: torch.Tensor
    iou_predictions: torch.Tensor
    low_res_logits: torch.Tensor


def _check_image(image) -> torch.Tensor:
    check_image("image", image, allow_uint8=True)
    if image.dtype == torch.uint8:
        return image.float() / 255
    return image.float()


def _check_prompts(point_coords, point_labels, box, mask_input=None, low_res: int | None = None) -> None:
    if point_coords is None and box is None and mask_input is None:
        raise ValueError("give a prompt: point_coords (with point_labels), box or mask_input")
    if (point_coords is None) != (point_labels is None):
        raise ValueError("point_coords and point_labels go together: give both or neither")
    if point_coords is not None:
        check_tensor("point_coords", point_coords, "(N, 2) of (x, y) pixels", "float")
        if point_coords.shape[1] != 2:
            raise ValueError(f"point_coords must have shape (N, 2) of (x, y) pixels, got {tuple(point_coords.shape)}")
        check_tensor("point_labels", point_labels, "(N,) of 1 (foreground) or 0 (background)", "int", 1)
        if tuple(point_labels.shape) != (point_coords.shape[0],):
            got = tuple(point_labels.shape) if isinstance(point_labels, torch.Tensor) else type(point_labels).__name__
            raise ValueError(f"point_labels must be an int tensor ({point_coords.shape[0]},), got {got}")
        if point_labels.is_floating_point() or bool(((point_labels < -1) | (point_labels > 1)).any()):
            raise ValueError(f"point_labels must be integers 1 (foreground), 0 (background) or -1 (padding), "
                             f"got {point_labels.tolist()}")
    if box is not None:
        check_tensor("box", box, "(4,) xyxy", "float", (1, 2))
        if box.numel() != 4:
            raise ValueError(f"box must have shape (4,) xyxy, got {tuple(box.shape)}")
        x1, y1, x2, y2 = box.reshape(4).tolist()
        if x2 < x1 or y2 < y1:
            raise ValueError(f"box must be xyxy with x2 >= x1 and y2 >= y1, got {[x1, y1, x2, y2]}")
    if mask_input is not None and low_res is not None:
        if not isinstance(mask_input, torch.Tensor) or tuple(mask_input.shape[-2:]) != (low_res, low_res) \
                or mask_input.numel() != low_res * low_res:
            got = tuple(mask_input.shape) if isinstance(mask_input, torch.Tensor) else type(mask_input).__name__
            raise ValueError(f"mask_input must be low-resolution logits (1,{low_res},{low_res}) from an earlier "
                             f"predict, got {got}")


class SmallSamPredictor:
    """SAM's predictor interface for a :class:`SmallSam` (see the module docstring).

    Images of another size are resized to the model's side for encoding;
    prompts are scaled to match and masks come back at the image's size.

    Args:
        model: the trained model (it is put in eval mode).
        device: where to run (default: the model's device).
    """

    def __init__(self, model: SmallSam, device: torch.device | str | None = None) -> None:
        if not isinstance(model, SmallSam):
            raise TypeError(f"model must be a SmallSam, got {type(model).__name__}")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.features: ImageFeatures | None = None
        self.original_size: tuple[int, int] | None = None

    @property
    def is_image_set(self) -> bool:
        return self.features is not None

    @torch.no_grad()
    def set_image(self, image: torch.Tensor) -> None:
        """Run the image encoder once on ``image`` float ``(3, H, W)`` in [0, 1] (or uint8)."""
        image = _check_image(image).to(self.device)
        self.original_size = tuple(image.shape[-2:])
        size = self.model.image_size
        batch = image.unsqueeze(0)
        if self.original_size != (size, size):
            batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False)
        self.features = self.model.encode(batch)

    def reset_image(self) -> None:
        """Forget the current image."""
        self.features, self.original_size = None, None

    @torch.no_grad()
    def predict(self, point_coords: torch.Tensor | None = None, point_labels: torch.Tensor | None = None,
                box: torch.Tensor | None = None, mask_input: torch.Tensor | None = None,
                multimask_output: bool = True) -> Prediction:
        """Masks for one prompt set on the image of :meth:`set_image`.

        Args:
            point_coords: float ``(N, 2)`` ``(x, y)`` pixels of the original image.
            point_labels: int ``(N,)``: 1 foreground, 0 background.
            box: float ``(4,)`` xyxy pixels of the original image.
            mask_input: float ``(1, h, w)`` low-resolution logits of an earlier prediction.
            multimask_output: three masks (for an ambiguous prompt such as
                one click) or one.

        Returns:
            A :class:`Prediction` (masks at the original image size). The IoU
            head regresses the IoU without bounds (it can say 1.06); the
            predictions are clipped to [0, 1] here.
        """
        if self.features is None:
            raise RuntimeError("call set_image(image) before predict(...)")
        size = self.model.image_size
        _check_prompts(point_coords, point_labels, box, mask_input, low_res=size)
        height, width = self.original_size
        scale = torch.tensor([size / width, size / height], device=self.device)
        points = labels = boxes = masks = None
        if point_coords is not None:
            points = (point_coords.to(self.device).float() * scale).unsqueeze(0)
            labels = point_labels.to(self.device).long().unsqueeze(0)
        if box is not None:
            boxes = (box.to(self.device).float().reshape(2, 2) * scale).reshape(1, 4)
        if mask_input is not None:
            masks = mask_input.to(self.device).float().reshape(1, 1, size, size)
        logits, iou = self.model.decode(self.features, points, labels, boxes, masks, multimask_output)
        full = logits
        if (height, width) != (size, size):
            full = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        return Prediction(full[0] > 0, iou[0].clamp(0, 1), logits[0])

    @torch.no_grad()
    def predict_boxes(self, boxes: torch.Tensor) -> Prediction:
        """One mask per box, all boxes decoded in one batch (SAM's ``predict_torch`` with boxes).

        Args:
            boxes: float ``(K, 4)`` xyxy pixels of the original image.

        Returns:
            A :class:`Prediction` with ``C = K``: mask ``k`` answers box ``k``.
        """
        if self.features is None:
            raise RuntimeError("call set_image(image) before predict_boxes(...)")
        check_boxes("boxes", boxes, "(K, 4) xyxy pixels")
        if boxes.dim() != 2 or len(boxes) == 0:
            raise ValueError(f"boxes must have shape (K, 4) with K >= 1, got {tuple(boxes.shape)}")
        size = self.model.image_size
        height, width = self.original_size
        scale = torch.tensor([size / width, size / height] * 2, device=self.device)
        logits, iou = self.model.decode(self.features.expand(len(boxes)), boxes=boxes.to(self.device).float() * scale,
                                        multimask_output=False)
        full = logits[:, 0]
        if (height, width) != (size, size):
            full = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
        return Prediction(full > 0, iou[:, 0].clamp(0, 1), logits[:, 0])


class SegmentAnythingAdapter:
    """The course's predictor interface around a ``segment_anything`` ``SamPredictor``.

    ``SamPredictor`` takes numpy arrays: an ``(H, W, 3)`` uint8 RGB image and
    points on a grid whose pixel centres are the integers. The adapter
    converts images and tensors, shifts coordinates by half a pixel (our
    pixel centres are at ``i + 0.5``) and returns torch tensors.

    Args:
        sam_predictor: an object with SamPredictor's ``set_image(image)`` and
            ``predict(point_coords=, point_labels=, box=, mask_input=,
            multimask_output=)`` returning ``(masks, scores, low_res_logits)``.
    """

    def __init__(self, sam_predictor) -> None:
        for method in ("set_image", "predict"):
            if not callable(getattr(sam_predictor, method, None)):
                raise TypeError(f"sam_predictor must have a {method}() method like segment_anything's "
                                f"SamPredictor, got {type(sam_predictor).__name__}")
        self.predictor = sam_predictor
        self.original_size: tuple[int, int] | None = None

    @property
    def is_image_set(self) -> bool:
        return self.original_size is not None

    def set_image(self, image: torch.Tensor) -> None:
        """Encode ``image`` float ``(3, H, W)`` in [0, 1] (or uint8) with SAM's image encoder."""
        image = _check_image(image)
        self.original_size = tuple(image.shape[-2:])
        pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()
        self.predictor.set_image(pixels)

    def predict(self, point_coords: torch.Tensor | None = None, point_labels: torch.Tensor | None = None,
                box: torch.Tensor | None = None, mask_input: torch.Tensor | None = None,
                multimask_output: bool = True) -> Prediction:
        """As :meth:`SmallSamPredictor.predict`; low-resolution logits are SAM's ``(C, 256, 256)``."""
        if self.original_size is None:
            raise RuntimeError("call set_image(image) before predict(...)")
        _check_prompts(point_coords, point_labels, box)
        kwargs = {"multimask_output": bool(multimask_output)}
        if point_coords is not None:
            kwargs["point_coords"] = (point_coords.detach().float().cpu() - 0.5).numpy()
            kwargs["point_labels"] = point_labels.detach().long().cpu().numpy()
        if box is not None:
            kwargs["box"] = (box.detach().float().reshape(4).cpu() - 0.5).numpy()
        if mask_input is not None:
            kwargs["mask_input"] = mask_input.detach().float().cpu().reshape(1, *mask_input.shape[-2:]).numpy()
        masks, scores, low_res = self.predictor.predict(**kwargs)
        return Prediction(torch.as_tensor(masks).bool(), torch.as_tensor(scores).float(),
                          torch.as_tensor(low_res).float())


def load_segment_anything(model_type: str = "vit_b", url: str | None = None, sha256: str | None = None,
                          directory: Path | None = None, device: torch.device | str = "cpu"
                          ) -> tuple[SegmentAnythingAdapter | None, str]:
    """The real SAM behind :class:`SegmentAnythingAdapter`, or ``None`` and why not, in one line.

    Needs the package (``segment_anything`` for ``"vit_b"``, ``mobile_sam``
    for ``"vit_t"``; imported only here) and the checkpoint, fetched once into
    the cache with :func:`seglib.pretrained.download` and checked against its
    SHA-256.

    Args:
        model_type: a key of :data:`SAM_CHECKPOINTS`.
        url, sha256: override the checkpoint's address and digest (tests use
            a ``file://`` fixture).
        directory: download cache (default torch.hub's).
        device: where the model runs.

    Returns:
        ``(predictor, message)``; ``predictor`` is ``None`` when the package
        or the checkpoint is missing, and the message says which.
    """
    from seglib.pretrained import DownloadError, download

    if model_type not in SAM_CHECKPOINTS:
        raise ValueError(f"model_type must be one of {tuple(SAM_CHECKPOINTS)}, got {model_type!r}")
    entry = SAM_CHECKPOINTS[model_type]
    try:
        package = importlib.import_module(entry["package"])
    except ImportError:
        return None, (f"the real SAM needs the {entry['package']} package ({entry['install']}); "
                      "using the small model instead.")
    url = url or entry["url"]
    try:
        path = download(url, sha256 if sha256 is not None else entry["sha256"], directory)
    except DownloadError as exc:
        return None, f"SAM {model_type} checkpoint not available ({exc}); using the small model instead."
    sam = package.sam_model_registry[model_type](checkpoint=str(path))
    sam.to(device).eval()
    return SegmentAnythingAdapter(package.SamPredictor(sam)), f"loaded SAM {model_type} from {url}"


def select_best_mask(masks: torch.Tensor, iou_predictions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick, for each prompt, the candidate mask with the highest predicted IoU.

    Args:
        masks: ``(B, C, H, W)`` candidate masks (bool or logits).
        iou_predictions: float ``(B, C)``.

    Returns:
        ``(best, index)``: the chosen masks ``(B, H, W)`` (same dtype as
        ``masks``) and their indices int64 ``(B,)``.
    """
    check_tensor("masks", masks, "(B, C, H, W)")
    check_tensor("iou_predictions", iou_predictions, "(B, C)", "float")
    if tuple(iou_predictions.shape) != tuple(masks.shape[:2]):
        got = tuple(iou_predictions.shape) if isinstance(iou_predictions, torch.Tensor) else type(iou_predictions).__name__
        raise ValueError(f"iou_predictions must have shape (B,C) = {tuple(masks.shape[:2])}, got {got}")
    index = iou_predictions.argmax(dim=1)
    return masks[torch.arange(masks.shape[0], device=masks.device), index], index
