"""Metrics, one module per kind; every name is re-exported here.

* :mod:`~seglib.metrics.semantic`: confusion matrix, pixel accuracy, IoU, Dice, boundary F1,
  IoU over thresholds and the pixel precision-recall curve;
* :mod:`~seglib.metrics.evaluation`: :class:`SegmentationMeter` and :func:`evaluate_segmentation`
  (a model over a data set, or over a split of generated scenes);
* :mod:`~seglib.metrics.masks`: IoU of masks and boxes (all pairs, or paired);
* :mod:`~seglib.metrics.instance`: instance matching and COCO AP;
* :mod:`~seglib.metrics.panoptic`: panoptic quality and panoptic maps from instances;
* :mod:`~seglib.metrics.video`: the J score of video object segmentation.
"""

from seglib.metrics.evaluation import scene_evaluator  # noqa: F401
from seglib.metrics.evaluation import SegmentationMeter, evaluate_segmentation
from seglib.metrics.instance import coco_mask_ap, match_instances  # noqa: F401
from seglib.metrics.masks import box_iou, mask_iou, paired_iou  # noqa: F401
from seglib.metrics.panoptic import (  # noqa: F401
    fill_stuff,
    panoptic_from_instances,
    panoptic_pairs,
    panoptic_quality,
    panoptic_summary,
)
from seglib.metrics.semantic import (  # noqa: F401
    boundary_f1,
    confusion_matrix,
    dice_per_class,
    iou_per_class,
    mean_dice,
    mean_iou,
    per_image_mean_iou,
    pixel_accuracy,
    pixel_precision_recall,
    threshold_iou,
)
from seglib.metrics.video import j_scores  # noqa: F401
