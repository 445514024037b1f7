"""Segmentation models, one per file (see each module's docstring for shapes)."""

from seglib.models.fcn import FCN, PatchClassifier, build_fcn, convolutionalize  # noqa: F401
from seglib.models.autoencoder import ConvAutoencoder  # noqa: F401
from seglib.models.maskrcnn import build_maskrcnn  # noqa: F401
from seglib.models.promptable import SmallSam, build_small_sam  # noqa: F401
