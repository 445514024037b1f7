"""Builders by stable name: what the model zoo's manifest stores instead of an import path.

``build("fcn", variant="8s", num_classes=5)`` is ``build_fcn(variant="8s", num_classes=5)``.
A name, once used by a zoo entry, keeps its meaning: add new names, never rename one.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from seglib.models.autoencoder import ConvAutoencoder
from seglib.models.deeplab import DeepLab
from seglib.models.fcn import PatchClassifier, build_fcn
from seglib.models.maskrcnn import build_maskrcnn
from seglib.models.promptable.memory import build_video_sam
from seglib.models.promptable.model import build_small_sam
from seglib.models.segnet import SegNet
from seglib.models.unet import UNet
from seglib.models.upsamplers import SuperResolver

BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "fcn": build_fcn,
    "unet": UNet,
    "deeplab": DeepLab,
    "maskrcnn": build_maskrcnn,
    "small_sam": build_small_sam,
    "video_sam": build_video_sam,
    "super_resolver": SuperResolver,
    "patch_classifier": PatchClassifier,
    "conv_autoencoder": ConvAutoencoder,
    "segnet": SegNet,
}
"""Builder name -> the function or class that builds the model from keyword arguments."""


def build(name: str, **kwargs) -> nn.Module:
    """A freshly initialised model of builder ``name`` (one of :data:`BUILDERS`) with ``kwargs``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str naming a builder, got {type(name).__name__}")
    if name not in BUILDERS:
        raise ValueError(f"name must be one of {tuple(BUILDERS)}, got {name!r}")
    return BUILDERS[name](**kwargs)
