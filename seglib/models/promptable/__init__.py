"""A small Segment Anything: promptable segmentation in SAM's three parts.

* :mod:`~seglib.models.promptable.image_encoder`: the heavy encoder, once per image;
* :mod:`~seglib.models.promptable.prompt_encoder`: points, boxes and masks to embeddings;
* :mod:`~seglib.models.promptable.mask_decoder`: two-way transformer, 4 masks and their IoU;
* :mod:`~seglib.models.promptable.model`: the three together (:class:`SmallSam`).

Outside this package: :mod:`seglib.predictor` (``set_image`` once, ``predict``
many times, for the small model and the real SAM), :mod:`seglib.tracking`
(SAM 2's memory for video) and :mod:`seglib.labs.sam` (training and evaluation).
"""

from seglib.models.promptable.image_encoder import ImageEncoder, ImageFeatures  # noqa: F401
from seglib.models.promptable.mask_decoder import MaskDecoder  # noqa: F401
from seglib.models.promptable.model import SmallSam, build_small_sam  # noqa: F401
from seglib.models.promptable.prompt_encoder import PromptEncoder, random_fourier_features  # noqa: F401
