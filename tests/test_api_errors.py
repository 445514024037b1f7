"""Students' usual mistakes get a clear error at seglib's boundary, not a traceback from inside torch.

Every public callable that takes tensors where students call in (ops, losses,
metrics, prompts, batches, viz, predictors, tracking, the labs' measurements,
the models' forward) is listed in :data:`SPECS` with a valid call. Each of its
tensor arguments has a *role* (an image batch, a label map, logits, masks ...)
and :func:`bad_inputs` derives the mistakes that apply to that role: not a
tensor, a missing batch dimension, channels last, 0-255 images, float label
maps, class ids >= C, NaN logits, float masks, wrong box widths, negative
confusion counts, prediction and target of different sizes, an empty instance
list. For each mistake the test asserts the error type (``TypeError`` for a
wrong type, ``ValueError`` for a wrong value or shape) and that the message
names the argument.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import pytest
import torch

from seglib import checks, viz
from seglib.data import batches, prompts
from seglib.data import real
from seglib.labs import fcn as fcn_lab
from seglib.labs import losses as losses_lab
from seglib.labs import mask_rcnn as mask_rcnn_lab
from seglib.labs import sam as sam_lab
from seglib.labs import upsampling as upsampling_lab
from seglib.losses import AuxLoss, CombinedLoss, class_weights, cross_entropy, focal_loss, soft_dice_loss, tversky_loss
from seglib.metrics import evaluation, instance, panoptic, semantic, video
from seglib.metrics import masks as mask_metrics
from seglib.metrics.uncertainty import quarter_gap
from seglib.models.deeplab import DeepLab
from seglib.models.autoencoder import ConvAutoencoder
from seglib.models.fcn import PatchClassifier, build_fcn
from seglib.models.maskrcnn import build_maskrcnn
from seglib.models.promptable import build_small_sam
from seglib.models.unet import UNet
from seglib.models.upsamplers import SuperResolver
from seglib.ops import roi, tiling, upsampling
from seglib.predictor import SmallSamPredictor, select_best_mask
from seglib.mask_generator import generate_masks
from seglib.models.promptable.memory import build_video_sam
from seglib.tracking import track_memory
from seglib.widgets.prompts import PromptSession

S = 16  # side of every test image
C = 3  # classes of every test label map


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def images(b: int = 2) -> torch.Tensor:
    return torch.rand(b, 3, S, S, generator=_gen())


def image() -> torch.Tensor:
    return torch.rand(3, S, S, generator=_gen())


def labels(b: int = 2) -> torch.Tensor:
    return torch.randint(0, C, (b, S, S), generator=_gen())


def logits(b: int = 2) -> torch.Tensor:
    return torch.randn(b, C, S, S, generator=_gen())


def masks(n: int = 2) -> torch.Tensor:
    out = torch.zeros(n, S, S, dtype=torch.bool)
    for i in range(n):
        out[i, 2 + i : 9 + i, 3 : 10 + i] = True
    return out


def boxes(n: int = 2) -> torch.Tensor:
    return torch.tensor([[1.0, 2.0, 9.0, 10.0], [4.0, 3.0, 12.0, 14.0]])[:n]


def cm() -> torch.Tensor:
    return torch.tensor([[5, 1, 0], [2, 7, 1], [0, 1, 4]])


def panoptic_map() -> torch.Tensor:
    out = torch.zeros(1, S, S, dtype=torch.long)  # class 0 (stuff)
    out[0, 2:8, 2:8] = 1 * 1000 + 1
    out[0, 9:14, 9:14] = 2 * 1000 + 1
    return out


#: role -> (description, [(mistake, make_bad(valid) -> value, expected error)])
MISTAKES: dict[str, list[tuple[str, Callable[[torch.Tensor], object], type]]] = {
    "images": [
        ("missing batch dimension", lambda v: v[0], ValueError),
        ("channels last", lambda v: v.permute(0, 2, 3, 1).contiguous(), ValueError),
        ("0-255 floats", lambda v: v * 255, ValueError),
        ("integer dtype", lambda v: (v * 255).to(torch.uint8).long(), TypeError),
    ],
    "image": [
        ("channels last", lambda v: v.permute(1, 2, 0).contiguous(), ValueError),
        ("0-255 floats", lambda v: v * 255, ValueError),
        ("a batch of one", lambda v: v[None], ValueError),
    ],
    "image_or_batch": [
        ("channels last", lambda v: v.permute(1, 2, 0).contiguous(), ValueError),
        ("0-255 floats", lambda v: v * 255, ValueError),
    ],
    "net_input": [  # a model's forward: no value check (it would make a GPU wait in every step)
        ("missing batch dimension", lambda v: v[0], ValueError),
        ("channels last", lambda v: v.permute(0, 2, 3, 1).contiguous(), ValueError),
        ("integer dtype", lambda v: (v * 255).long(), TypeError),
    ],
    "labels": [
        ("float label map", lambda v: v.float(), TypeError),
        ("class id >= C", lambda v: torch.where(v == 0, torch.full_like(v, C + 4), v), ValueError),
    ],
    "any_labels": [  # any id in 0..255 has a colour
        ("float label map", lambda v: v.float(), TypeError),
    ],
    "logits": [
        ("NaN logits", lambda v: torch.where(torch.arange(v.numel()).view(v.shape) == 5, float("nan"), v),
         ValueError),
        ("missing batch dimension", lambda v: v[0], ValueError),
        ("integer logits", lambda v: v.long(), TypeError),
    ],
    "masks": [
        ("float masks", lambda v: v.float(), TypeError),
        ("a single (H, W) mask", lambda v: v[0], ValueError),
    ],
    "mask": [
        ("float mask", lambda v: v.float(), TypeError),
        ("a stack of masks", lambda v: v[None].expand(2, -1, -1), ValueError),
    ],
    "boxes": [
        ("three coordinates", lambda v: v[:, :3], ValueError),
        ("x2 < x1", lambda v: v[:, [2, 1, 0, 3]], ValueError),
    ],
    "box": [
        ("three coordinates", lambda v: v[:3], ValueError),
    ],
    "points": [
        ("three coordinates", lambda v: torch.cat([v, v[:, :1]], dim=1), ValueError),
    ],
    "cm": [
        ("negative counts", lambda v: v - 3, ValueError),
        ("not square", lambda v: v[:, :2], ValueError),
        ("float counts", lambda v: v.float() + 0.5, TypeError),
    ],
    "panoptic": [
        ("negative ids", lambda v: v - 5, ValueError),
        ("float map", lambda v: v.float(), TypeError),
    ],
    "features": [
        ("integer dtype", lambda v: v.long(), TypeError),
        ("missing batch dimension", lambda v: v[0], ValueError),
    ],
    "feature": [
        ("integer dtype", lambda v: v.long(), TypeError),
        ("a batch", lambda v: v[None], ValueError),
    ],
    "tensor": [],
}


@dataclass
class Spec:
    """A valid call of ``fn`` and the role of each of its tensor arguments."""

    fn: Callable
    args: Callable[[], dict]
    roles: dict[str, str]
    pairs: list[tuple[str, str]] = field(default_factory=list)  # arguments whose sizes must agree
    empty: list[str] = field(default_factory=list)  # arguments that must not be an empty instance list


def _meter_update(pred_or_logits, target):
    return evaluation.SegmentationMeter(num_classes=C).update(pred_or_logits, target)


_PREDICTOR = None


def _predictor() -> SmallSamPredictor:
    global _PREDICTOR
    if _PREDICTOR is None:
        torch.manual_seed(0)
        _PREDICTOR = SmallSamPredictor(build_small_sam(image_size=32, embed_dim=16, widths=(8, 8, 16),
                                                       encoder_depth=1, decoder_depth=1, mlp_dim=16).eval())
    return _PREDICTOR


def _set_image(image):
    return _predictor().set_image(image)


def _predict(point_coords, point_labels):
    predictor = _predictor()
    predictor.set_image(torch.rand(3, S, S, generator=_gen()))
    return predictor.predict(point_coords, point_labels)


def _maskrcnn():
    torch.manual_seed(0)
    return build_maskrcnn().eval()


def _small_unet():
    torch.manual_seed(0)
    return UNet(num_classes=C, depth=2, base_width=4).eval()


def _unet_forward(x):
    return _small_unet()(x)


def _fcn_forward(x):
    torch.manual_seed(0)
    return build_fcn("8s", num_classes=C, widths=(4, 4, 4, 4, 4))(x)


def _deeplab_forward(x):
    torch.manual_seed(0)
    return DeepLab(num_classes=C).eval()(x)


def _tiled_predict(image):
    return tiling.tiled_predict(_small_unet(), image, tile=8, overlap=2)


def _track(frames, first_masks):
    torch.manual_seed(0)
    model = build_video_sam(dict(image_size=S, embed_dim=16, widths=(8, 8, 16), encoder_depth=1, decoder_depth=1,
                                 mlp_dim=16), layers=1, mlp_dim=16).eval()
    return track_memory(model, frames, first_masks)


def _predict_boxes(boxes):
    predictor = _predictor()
    predictor.set_image(torch.rand(3, S, S, generator=_gen()))
    return predictor.predict_boxes(boxes)


def _random_batches(images, labels):
    return next(batches.random_batches(images, labels, batch_size=2))


def _combined(logits, target):
    return CombinedLoss({"ce": (cross_entropy, 1.0), "dice": (soft_dice_loss, 1.0)})(logits, target)


def _aux(outputs, target):
    return AuxLoss()(outputs, target)


SPECS: dict[str, Spec] = {
    # ops
    "ops.upsampling.conv_transpose2d": Spec(upsampling.conv_transpose2d,
                                            lambda: dict(x=torch.rand(1, 2, 4, 4), weight=torch.rand(2, 1, 3, 3)),
                                            {"x": "features", "weight": "tensor"}),
    "ops.upsampling.conv_transpose1d": Spec(upsampling.conv_transpose1d,
                                            lambda: dict(x=torch.rand(1, 2, 4), weight=torch.rand(2, 1, 3)),
                                            {"x": "tensor", "weight": "tensor"}),
    "ops.upsampling.conv_matrix": Spec(upsampling.conv_matrix, lambda: dict(weight=torch.rand(3), input_size=5),
                                       {"weight": "tensor"}),
    "ops.upsampling.bed_of_nails": Spec(upsampling.bed_of_nails, lambda: dict(x=torch.rand(1, 2, 4, 4)),
                                        {"x": "features"}),
    "ops.upsampling.nearest_unpool": Spec(upsampling.nearest_unpool, lambda: dict(x=torch.rand(1, 2, 4, 4)),
                                          {"x": "features"}),
    "ops.roi.bilinear_interpolate": Spec(roi.bilinear_interpolate,
                                         lambda: dict(feature=torch.rand(2, 8, 8), y=torch.tensor([1.5]),
                                                      x=torch.tensor([2.5])),
                                         {"feature": "feature", "y": "tensor", "x": "tensor"}),
    "ops.roi.roi_align_box": Spec(roi.roi_align_box,
                                  lambda: dict(feature=torch.rand(2, 8, 8), box=torch.tensor([1.0, 1.0, 6.0, 6.0]),
                                               output_size=2),
                                  {"feature": "feature", "box": "box"}),
    "ops.roi.roi_align": Spec(roi.roi_align,
                              lambda: dict(features=torch.rand(1, 2, 8, 8), boxes=[torch.tensor([[1.0, 1.0, 6.0, 6.0]])],
                                           output_size=2),
                              {"features": "features"}),
    "ops.roi.snap_boxes": Spec(roi.snap_boxes, lambda: dict(boxes=boxes(), stride=4), {"boxes": "boxes"}),
    "ops.roi.mask_targets": Spec(roi.mask_targets,
                                 lambda: dict(gt_masks=masks(), proposals=boxes(), matched=torch.tensor([0, 1])),
                                 {"gt_masks": "masks", "proposals": "boxes", "matched": "tensor"}),
    "ops.roi.paste_masks": Spec(roi.paste_masks, lambda: dict(crops=torch.rand(2, 7, 7), boxes=boxes(), height=S,
                                                               width=S),
                                {"crops": "tensor", "boxes": "boxes"}),
    "ops.roi.quantisation_error": Spec(roi.quantisation_error, lambda: dict(masks=masks(), boxes=boxes(), stride=4),
                                       {"masks": "masks", "boxes": "boxes"}),
    "ops.tiling.mirror_pad": Spec(tiling.mirror_pad, lambda: dict(images=images(), pad=(1, 1, 1, 1)),
                                  {"images": "features"}),
    "ops.tiling.tiled_predict": Spec(_tiled_predict, lambda: dict(image=image()), {"image": "image_or_batch"}),
    "ops.tiling.interior_agreement": Spec(tiling.interior_agreement,
                                          lambda: dict(a=labels(1)[0], b=labels(1)[0], border=1),
                                          {"a": "tensor", "b": "tensor"}, pairs=[("a", "b")]),
    # losses
    "losses.cross_entropy": Spec(cross_entropy, lambda: dict(logits=logits(), target=labels()),
                                 {"logits": "logits", "target": "labels"}, pairs=[("logits", "target")]),
    "losses.focal_loss": Spec(focal_loss, lambda: dict(logits=logits(), target=labels()),
                              {"logits": "logits", "target": "labels"}, pairs=[("logits", "target")]),
    "losses.soft_dice_loss": Spec(soft_dice_loss, lambda: dict(logits=logits(), target=labels()),
                                  {"logits": "logits", "target": "labels"}, pairs=[("logits", "target")]),
    "losses.tversky_loss": Spec(tversky_loss, lambda: dict(logits=logits(), target=labels()),
                                {"logits": "logits", "target": "labels"}, pairs=[("logits", "target")]),
    "losses.CombinedLoss": Spec(_combined, lambda: dict(logits=logits(), target=labels()),
                                {"logits": "logits", "target": "labels"}, pairs=[("logits", "target")]),
    "losses.AuxLoss": Spec(_aux, lambda: dict(outputs=logits(), target=labels()),
                           {"outputs": "logits", "target": "labels"}, pairs=[("outputs", "target")]),
    "losses.class_weights": Spec(class_weights, lambda: dict(labels=labels(), num_classes=C), {"labels": "labels"}),
    # metrics
    "metrics.confusion_matrix": Spec(semantic.confusion_matrix,
                                     lambda: dict(pred=labels(), target=labels(), num_classes=C),
                                     {"pred": "labels", "target": "labels"}, pairs=[("pred", "target")]),
    "metrics.pixel_accuracy": Spec(semantic.pixel_accuracy, lambda: dict(cm=cm()), {"cm": "cm"}),
    "metrics.threshold_iou": Spec(semantic.threshold_iou,
                                  lambda: dict(scores=torch.rand(2, S, S), truth=masks(), thresholds=torch.rand(3)),
                                  {"scores": "features", "truth": "masks", "thresholds": "tensor"},
                                  pairs=[("scores", "truth")]),
    "metrics.pixel_precision_recall": Spec(semantic.pixel_precision_recall,
                                           lambda: dict(scores=torch.rand(2, S, S), truth=masks()),
                                           {"scores": "features", "truth": "masks"}, pairs=[("scores", "truth")]),
    "metrics.iou_per_class": Spec(semantic.iou_per_class, lambda: dict(cm=cm()), {"cm": "cm"}),
    "metrics.mean_iou": Spec(semantic.mean_iou, lambda: dict(cm=cm()), {"cm": "cm"}),
    "metrics.dice_per_class": Spec(semantic.dice_per_class, lambda: dict(cm=cm()), {"cm": "cm"}),
    "metrics.mean_dice": Spec(semantic.mean_dice, lambda: dict(cm=cm()), {"cm": "cm"}),
    "metrics.per_image_mean_iou": Spec(semantic.per_image_mean_iou,
                                       lambda: dict(pred=labels(), target=labels(), num_classes=C),
                                       {"pred": "labels", "target": "labels"}, pairs=[("pred", "target")]),
    "metrics.boundary_f1": Spec(semantic.boundary_f1, lambda: dict(pred=labels(), target=labels(), num_classes=C),
                                {"pred": "labels", "target": "labels"}, pairs=[("pred", "target")]),
    "metrics.SegmentationMeter.update": Spec(_meter_update, lambda: dict(pred_or_logits=logits(), target=labels()),
                                             {"pred_or_logits": "logits", "target": "labels"},
                                             pairs=[("pred_or_logits", "target")]),
    "metrics.evaluate_segmentation": Spec(
        lambda images, labels: evaluation.evaluate_segmentation(_small_unet(), images, labels, C),
        lambda: dict(images=images(), labels=labels()), {"images": "images", "labels": "labels"},
        pairs=[("images", "labels")]),
    "metrics.mask_iou": Spec(mask_metrics.mask_iou, lambda: dict(a=masks(), b=masks()), {"a": "masks", "b": "masks"},
                             pairs=[("a", "b")]),
    "metrics.paired_iou": Spec(mask_metrics.paired_iou, lambda: dict(predicted=masks(), target=masks()),
                               {"predicted": "masks", "target": "masks"}, pairs=[("predicted", "target")]),
    "metrics.box_iou": Spec(mask_metrics.box_iou, lambda: dict(a=boxes(), b=boxes()), {"a": "boxes", "b": "boxes"}),
    "metrics.match_instances": Spec(instance.match_instances,
                                    lambda: dict(pred_masks=masks(), pred_scores=torch.tensor([0.9, 0.8]),
                                                 gt_masks=masks()),
                                    {"pred_masks": "masks", "gt_masks": "masks", "pred_scores": "tensor"},
                                    pairs=[("pred_masks", "gt_masks")]),
    "metrics.coco_mask_ap": Spec(
        lambda predictions, targets: instance.coco_mask_ap(predictions, targets),
        lambda: dict(predictions=[{"masks": masks(), "scores": torch.tensor([0.9, 0.8]),
                                   "labels": torch.tensor([1, 1]), "boxes": boxes()}],
                     targets=[{"masks": masks(), "labels": torch.tensor([1, 1]), "boxes": boxes()}]),
        {}, empty=["predictions", "targets"]),
    "metrics.panoptic_quality": Spec(panoptic.panoptic_quality,
                                     lambda: dict(pred=panoptic_map(), target=panoptic_map(), things=[1, 2],
                                                  stuffs=[0]),
                                     {"pred": "panoptic", "target": "panoptic"}, pairs=[("pred", "target")]),
    "metrics.panoptic_pairs": Spec(panoptic.panoptic_pairs, lambda: dict(panoptic=panoptic_map()),
                                   {"panoptic": "panoptic"}),
    "metrics.j_scores": Spec(video.j_scores, lambda: dict(masks=masks(), targets=masks()),
                             {"masks": "masks", "targets": "masks"}, pairs=[("masks", "targets")]),
    # data
    "data.prompts.distance_to_boundary": Spec(prompts.distance_to_boundary, lambda: dict(masks=masks()),
                                              {"masks": "masks"}),
    "data.prompts.center_clicks": Spec(prompts.center_clicks, lambda: dict(masks=masks()), {"masks": "masks"},
                                       empty=["masks"]),
    "data.prompts.random_clicks": Spec(prompts.random_clicks, lambda: dict(masks=masks()), {"masks": "masks"},
                                       empty=["masks"]),
    "data.prompts.correction_clicks": Spec(prompts.correction_clicks, lambda: dict(predicted=masks(), target=masks()),
                                           {"predicted": "masks", "target": "masks"},
                                           pairs=[("predicted", "target")]),
    "data.prompts.jitter_boxes": Spec(prompts.jitter_boxes, lambda: dict(boxes=boxes(), size=S), {"boxes": "boxes"}),
    "data.batches.random_batches": Spec(_random_batches, lambda: dict(images=images(), labels=labels()),
                                        {"images": "images", "labels": "tensor"}, pairs=[("images", "labels")]),
    # viz
    "viz.to_uint8": Spec(viz.to_uint8, lambda: dict(image=image()), {"image": "image"}),
    "viz.colourize": Spec(viz.colourize, lambda: dict(labels=labels(1)[0]), {"labels": "any_labels"}),
    "viz.overlay_masks": Spec(viz.overlay_masks, lambda: dict(image=image(), masks=masks()),
                              {"image": "image", "masks": "masks"}, pairs=[("image", "masks")]),
    "viz.overlay_boxes": Spec(viz.overlay_boxes, lambda: dict(image=image(), boxes=boxes()),
                              {"image": "image", "boxes": "boxes"}),
    "viz.highlight": Spec(viz.highlight, lambda: dict(image=image(), mask=masks()[0]),
                          {"image": "image", "mask": "mask"}, pairs=[("image", "mask")]),
    "viz.colourize_panoptic": Spec(viz.colourize_panoptic, lambda: dict(panoptic=panoptic_map()[0]),
                                   {"panoptic": "panoptic"}),
    # predictors and tracking
    "predictor.SmallSamPredictor.set_image": Spec(_set_image, lambda: dict(image=image()), {"image": "image"}),
    "predictor.SmallSamPredictor.predict": Spec(_predict, lambda: dict(point_coords=torch.tensor([[4.0, 5.0]]),
                                                                       point_labels=torch.tensor([1])),
                                                {"point_coords": "points", "point_labels": "tensor"}),
    "predictor.select_best_mask": Spec(select_best_mask, lambda: dict(masks=torch.randn(2, 3, S, S),
                                                                      iou_predictions=torch.rand(2, 3)),
                                       {"masks": "tensor", "iou_predictions": "tensor"}),
    "tracking.track_memory": Spec(_track, lambda: dict(frames=torch.rand(2, 3, 3, S, S), first_masks=masks()),
                                  {"frames": "tensor", "first_masks": "masks"}, pairs=[("frames", "first_masks")]),
    "predictor.SmallSamPredictor.predict_boxes": Spec(_predict_boxes, lambda: dict(boxes=boxes()), {"boxes": "boxes"}),
    "mask_generator.generate_masks": Spec(lambda image: generate_masks(_predictor().model, image, points_per_side=2),
                                          lambda: dict(image=torch.rand(3, 32, 32)), {"image": "image"}),
    # the labs' measurements
    "labs.losses.imbalance_metrics": Spec(losses_lab.imbalance_metrics,
                                          lambda: dict(pred=labels().clamp(max=1), target=labels().clamp(max=1)),
                                          {"pred": "tensor", "target": "tensor"}, pairs=[("pred", "target")]),
    "labs.losses.foreground_fraction": Spec(losses_lab.foreground_fraction, lambda: dict(labels=labels()),
                                            {"labels": "tensor"}),
    "labs.upsampling.band_energy_ratio": Spec(upsampling_lab.band_energy_ratio,
                                              lambda: dict(reconstructions=images(), images=images()),
                                              {"reconstructions": "features", "images": "features"},
                                              pairs=[("reconstructions", "images")]),
    "losses.mask_losses": Spec(sam_lab.mask_losses, lambda: dict(logits=torch.randn(2, 3, S, S), targets=masks()),
                                 {"logits": "tensor", "targets": "masks"}),
    "viz.show_image": Spec(viz.show_image, lambda: dict(image=image()), {"image": "image"}),
    "viz.show_label_map": Spec(viz.show_label_map, lambda: dict(labels=labels(1)[0]), {"labels": "any_labels"}),
    "viz.show_points": Spec(viz.show_points, lambda: dict(points=torch.tensor([[4.0, 5.0]]),
                                                          point_labels=torch.tensor([1])),
                            {"points": "points", "point_labels": "tensor"}),
    "viz.show_predictions": Spec(viz.show_predictions, lambda: dict(images=images(), targets=labels()),
                                 {"images": "images", "targets": "any_labels"}, pairs=[("images", "targets")]),
    "labs.losses.per_image_dice": Spec(losses_lab.per_image_dice, lambda: dict(pred=labels(), target=labels()),
                                       {"pred": "any_labels", "target": "any_labels"}, pairs=[("pred", "target")]),
    "labs.losses.circle_probabilities": Spec(lambda images: losses_lab.circle_probabilities(_small_unet(), images),
                                             lambda: dict(images=images()), {"images": "images"}),
    "metrics.quarter_gap": Spec(quarter_gap, lambda: dict(x=torch.rand(12), y=torch.rand(12), resamples=20),
                                {"x": "tensor", "y": "tensor"}, pairs=[("x", "y")]),
    "labs.fcn.sliding_window_scores": Spec(
        lambda image: fcn_lab.sliding_window_scores(PatchClassifier(num_classes=C, patch_size=32,
                                                                    widths=(4, 4, 4, 4, 4)), image, stride=16),
        lambda: dict(image=torch.rand(3, 48, 48)), {"image": "image"}),
    "labs.mask_rcnn.predict": Spec(lambda images: mask_rcnn_lab.predict(_maskrcnn(), images),
                                   lambda: dict(images=torch.rand(1, 3, 32, 32)), {"images": "images"}),
    "labs.sam.simulate_user": Spec(lambda image, target: sam_lab.simulate_user(_predictor(), image, target, clicks=2),
                                   lambda: dict(image=image(), target=masks()[0]),
                                   {"image": "image", "target": "mask"}, pairs=[("image", "target")]),
    "metrics.fill_stuff": Spec(panoptic.fill_stuff, lambda: dict(semantic=labels(1)[0], stuff_ids=[0]),
                               {"semantic": "any_labels"}),
    "metrics.panoptic_from_instances": Spec(
        panoptic.panoptic_from_instances,
        lambda: dict(masks=masks(), labels=torch.tensor([1, 2]), scores=torch.tensor([0.9, 0.8]),
                     stuff=torch.zeros(S, S, dtype=torch.long)),
        {"masks": "masks", "labels": "tensor", "scores": "tensor", "stuff": "any_labels"},
        pairs=[("masks", "stuff")]),
    "data.real.trimap_to_labels": Spec(real.trimap_to_labels, lambda: dict(trimap=torch.randint(1, 4, (S, S))),
                                       {"trimap": "tensor"}),
    "ops.roi.sampling_points": Spec(roi.sampling_points, lambda: dict(box=torch.tensor([1.0, 1.0, 6.0, 6.0]),
                                                                      output_size=2),
                                    {"box": "box"}),
    "widgets.PromptSession": Spec(lambda image: PromptSession(_predictor(), image), lambda: dict(image=image()),
                                  {"image": "image"}),
    "models.SmallSam.encode": Spec(lambda images: _predictor().model.encode(images),
                                   lambda: dict(images=torch.rand(2, 3, 32, 32)), {"images": "net_input"}),
    "models.ConvAutoencoder.forward": Spec(lambda x: ConvAutoencoder()(x), lambda: dict(x=images()),
                                           {"x": "net_input"}),
    "models.SuperResolver.forward": Spec(lambda x: SuperResolver("nearest", width=4)(x), lambda: dict(x=images()),
                                         {"x": "net_input"}),
    # models, as students call them
    "models.UNet.forward": Spec(_unet_forward, lambda: dict(x=images()), {"x": "net_input"}),
    "models.FCN.forward": Spec(_fcn_forward, lambda: dict(x=torch.rand(2, 3, 32, 32)), {"x": "net_input"}),
    "models.DeepLab.forward": Spec(_deeplab_forward, lambda: dict(x=images()), {"x": "net_input"}),
}


def _resize(value: torch.Tensor) -> torch.Tensor:
    """The same tensor with its last dimension one shorter (a size mismatch)."""
    return value[..., :-1]


def bad_inputs(spec: Spec) -> list[tuple[str, str, object, type]]:
    """``(argument, mistake, bad value, expected error)`` for every mistake that applies to ``spec``."""
    valid = spec.args()
    cases = []
    for name, role in spec.roles.items():
        cases.append((name, "not a tensor", "oops", TypeError))
        for mistake, make, error in MISTAKES[role]:
            cases.append((name, mistake, make(valid[name]), error))
    for first, second in spec.pairs:
        cases.append((second, f"{second} of another size than {first}", _resize(valid[second]), ValueError))
    for name in spec.empty:
        value = valid[name]
        empty = value[:0] if isinstance(value, torch.Tensor) else []
        cases.append((name, "an empty instance list", empty, ValueError))
    return cases


CASES = [(key, *case) for key, spec in SPECS.items() for case in bad_inputs(spec)]


@pytest.mark.parametrize("key", SPECS)
def test_the_valid_call_works(key):
    spec = SPECS[key]
    spec.fn(**spec.args())


@pytest.mark.parametrize(("key", "argument", "mistake", "value", "error"), CASES,
                         ids=[f"{case[0]}-{case[1]}-{case[2]}" for case in CASES])
def test_a_mistake_gets_a_clear_error(key, argument, mistake, value, error):
    spec = SPECS[key]
    arguments = spec.args()
    arguments[argument] = value
    with pytest.raises((TypeError, ValueError)) as raised:
        spec.fn(**arguments)
    assert isinstance(raised.value, error), f"{mistake}: expected {error.__name__}, got {raised.value!r}"
    message = str(raised.value)
    named = [argument] + [other for pair in spec.pairs if argument in pair for other in pair]
    assert any(name in message for name in named), f"{mistake}: the message does not name {argument}: {message}"


@pytest.mark.parametrize("name", [name for name in checks.__all__ if name.startswith("check_")])
def test_a_check_given_no_function_says_so(name):
    check = getattr(checks, name)
    parameter = next(iter(inspect.signature(check).parameters))
    with pytest.raises(TypeError, match=parameter):
        check("not a function")


def test_the_walk_covers_the_listed_callables():
    # Reported in the closing note: callables walked and bad calls tried.
    assert len(SPECS) >= 60 and len(CASES) >= 250


def test_overlap_losses_never_score_a_diverged_model_as_perfect():
    target = labels()
    nan = torch.full((2, C, S, S), float("nan"))
    for loss in (soft_dice_loss, tversky_loss):
        with pytest.raises(ValueError, match="logits must be finite"):
            loss(nan, target)
        with pytest.raises(ValueError, match="logits must hold at least one image"):
            loss(logits()[:0], target[:0])
    # On a GPU the values are not read (no host wait in a training step): the loss is NaN, not 0.
    from seglib.losses.functional import _overlap_loss
    assert torch.isnan(_overlap_loss(torch.tensor([float("nan")]), torch.zeros(1), torch.zeros(1), 0.5, 0.5, 1.0))


def test_two_class_id_maps_are_not_taken_for_panoptic_maps():
    semantic_map = labels(1)
    with pytest.raises(ValueError, match="pred looks like a map of class ids"):
        panoptic.panoptic_quality(semantic_map, semantic_map, things=[1, 2], stuffs=[0])


def test_coco_ap_refuses_masks_of_another_size_than_the_targets():
    prediction = {"masks": masks()[:, :-2], "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 1]),
                  "boxes": boxes()}
    target = {"masks": masks(), "labels": torch.tensor([1, 1]), "boxes": boxes()}
    with pytest.raises(ValueError, match="predictions\\[0\\].*masks.*size"):
        instance.coco_mask_ap([prediction], [target])


def test_class_ids_outside_the_classes_are_refused():
    pred = target = labels().clamp(max=1)
    for bad in (-1, 2, 9):
        with pytest.raises(ValueError, match="class_id must be an int in \\[0, 1\\]"):
            losses_lab.imbalance_metrics(pred, target, num_classes=2, class_id=bad)


def test_boundary_f1_time_does_not_grow_with_num_classes():
    import time

    start = time.perf_counter()
    score = semantic.boundary_f1(labels(), labels(), num_classes=100_000)
    assert time.perf_counter() - start < 2.0
    assert score == semantic.boundary_f1(labels(), labels(), num_classes=C)
