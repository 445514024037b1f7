"""Segmentation losses: functions (:mod:`~seglib.losses.functional`) and modules (:mod:`~seglib.losses.modules`).

Every name is re-exported here: ``from seglib.losses import soft_dice_loss``.
"""

from seglib.losses.functional import (  # noqa: F401
    CLASS_WEIGHT_METHODS,
    class_weights,
    cross_entropy,
    focal_loss,
    mask_losses,
    soft_dice_loss,
    tversky_loss,
    unweighted_threshold,
)
from seglib.losses.modules import AuxLoss, CombinedLoss  # noqa: F401
