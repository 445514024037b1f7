"""Segmentation models: ``nn.Module``s and their builders only, one model per file.

Data, training, evaluation and figures live elsewhere (``seglib.data``,
``seglib.train``, ``seglib.metrics``, ``seglib.viz``, the labs); a module
here imports nothing of those but the shared constants of ``seglib.data``.
:mod:`~seglib.models.registry` names the builders for the model zoo.
"""

from seglib.models.autoencoder import ConvAutoencoder  # noqa: F401
from seglib.models.fcn import FCN, PatchClassifier, build_fcn, convolutionalize  # noqa: F401
from seglib.models.maskrcnn import build_maskrcnn  # noqa: F401
from seglib.models.promptable import SmallSam, build_small_sam  # noqa: F401
from seglib.models.registry import BUILDERS, build  # noqa: F401
