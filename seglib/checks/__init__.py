"""Exercise checks.

Each exercise in a notebook is followed by a cell such as::

    seglib.checks.check_conv_matrix(my_conv_matrix)

A check calls the student's function on fixed and random inputs, compares with
seglib's reference and either prints one line saying what passed or raises
:class:`CheckFailed` whose message says what was wrong (the first mismatch,
the formula that gives the right answer...). A stub that still raises
``NotImplementedError`` gives a short reminder instead of a traceback wall.

Checks live in one module per notebook, named after its lab (``seglib/checks/<topic>.py``) and are
re-exported here, so notebooks only ever write ``seglib.checks.check_...``.
"""

from seglib.checks.core import CheckFailed, assert_close, call_student, matching_hint, passed  # noqa: F401
from seglib.checks.fcn import check_confusion_matrix, check_linear_to_conv, check_upsampler_padding  # noqa: F401
from seglib.checks.losses import check_class_weights, check_soft_dice_loss, check_weighted_ce_detector  # noqa: F401
from seglib.checks.overview import check_largest_shift, check_things_per_class  # noqa: F401
from seglib.checks.mask_rcnn import (  # noqa: F401
    check_bilinear,
    check_mask_iou,
    check_match_predictions,
    check_roi_align_box,
)
from seglib.checks.sam import check_disambiguating_click, check_fourier_encoding  # noqa: F401
from seglib.checks.unet import check_decoder_block, check_reached_offsets  # noqa: F401
from seglib.checks.upsampling import (  # noqa: F401
    OUTPUT_SIZE_QUESTIONS,
    check_conv_matrix,
    check_output_sizes,
    check_taps_per_phase,
)

__all__ = [
    "CheckFailed",
    "OUTPUT_SIZE_QUESTIONS",
    "assert_close",
    "call_student",
    "check_bilinear",
    "check_class_weights",
    "check_confusion_matrix",
    "check_conv_matrix",
    "check_decoder_block",
    "check_disambiguating_click",
    "check_fourier_encoding",
    "check_largest_shift",
    "check_linear_to_conv",
    "check_mask_iou",
    "check_match_predictions",
    "check_output_sizes",
    "check_reached_offsets",
    "check_roi_align_box",
    "check_soft_dice_loss",
    "check_taps_per_phase",
    "check_things_per_class",
    "check_upsampler_padding",
    "check_weighted_ce_detector",
    "matching_hint",
    "passed",
]
