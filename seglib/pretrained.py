"""Pretrained weights from the internet, when it can be reached.

The notebooks show real models (torchvision's FCN, DeepLabv3 and Mask R-CNN,
the Segment Anything checkpoints) next to the small ones trained on
generated scenes. Downloads go through ``torch.hub``'s cache with a checksum;
when the network is unreachable, :func:`try_load` returns ``None`` and a
one-line reason instead of raising, so a notebook prints the reason and
continues. The same code accepts ``file://`` URLs, which is how the tests
exercise it offline.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

import torch
from torch import nn

DOWNLOAD_TIMEOUT_S = 20.0


class DownloadError(RuntimeError):
    """A file could not be fetched or failed its checksum."""


def cache_dir() -> Path:
    """Where downloads are kept: torch.hub's checkpoint folder (``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def download(url: str, sha256: str | None = None, directory: Path | None = None,
             filename: str | None = None) -> Path:
    """Fetch ``url`` into the cache (once) and verify its SHA-256 if given.

    Args:
        url: ``https://...`` or ``file://...``.
        sha256: the full hex digest the file must have; ``None`` skips the check.
        directory: cache folder (default :func:`cache_dir`).
        filename: name in the cache (default: the URL's last path component).

    Returns:
        Path of the verified file.

    Raises:
        DownloadError: unreachable URL, interrupted download or wrong checksum.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"url must be an absolute URL such as https://... or file://..., got {url!r}")
    directory = Path(directory) if directory is not None else cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (filename or os.path.basename(urllib.parse.urlparse(url).path))
    if not path.exists():
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            torch.hub.download_url_to_file(url, str(path), progress=False)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DownloadError(f"could not download {url}: {getattr(exc, 'reason', exc)}") from exc
        finally:
            socket.setdefaulttimeout(previous)
    if sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256.lower():
            path.unlink()
            raise DownloadError(f"{path.name} has sha256 {digest[:12]}..., expected {sha256[:12]}...; "
                                "the corrupt file was removed, run again to download it anew")
    return path


def state_dict_from_url(url: str, sha256: str | None = None, directory: Path | None = None) -> dict:
    """A state dict downloaded (and checked) with :func:`download`, loaded with ``weights_only=True``.

    torchvision's file names end in the first hex digits of their SHA-256
    (``name-1167a1af.pth``); when ``sha256`` is not given, that prefix is checked.
    """
    path = download(url, sha256, directory)
    if sha256 is None:
        stem = path.stem.rsplit("-", 1)
        if len(stem) == 2 and all(c in "0123456789abcdef" for c in stem[1]) and len(stem[1]) >= 6:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if not digest.startswith(stem[1]):
                path.unlink()
                raise DownloadError(f"{path.name} does not match the hash prefix in its name; removed it")
    return torch.load(path, map_location="cpu", weights_only=True)


def torchvision_weights(weights: str):
    """The torchvision weights enum value named ``weights`` (e.g. ``"FCN_ResNet50_Weights.DEFAULT"``)."""
    from torchvision.models import get_weight

    try:
        return get_weight(weights)
    except (ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"unknown torchvision weights {weights!r}: {exc}") from None


def try_load(build: Callable[[], nn.Module], url: str, sha256: str | None = None,
             directory: Path | None = None, what: str = "pretrained weights") -> tuple[nn.Module | None, str]:
    """Build a model and load weights from ``url``, or explain in one line why not.

    Args:
        build: returns the model without weights.
        url, sha256, directory: as for :func:`download`.
        what: name used in the message.

    Returns:
        ``(model in eval mode, message)`` on success, ``(None, reason)`` when the
        weights cannot be had (offline, corrupt download).
    """
    try:
        state = state_dict_from_url(url, sha256, directory)
    except DownloadError as exc:
        return None, f"{what} not available ({exc}); continuing without them."
    model = build()
    model.load_state_dict(state)
    return model.eval(), f"loaded {what} from {url}"


def try_torchvision(builder: str, weights: str, url: str | None = None, directory: Path | None = None,
                    **kwargs) -> tuple[nn.Module | None, str]:
    """A torchvision model with its pretrained ``weights``, or ``None`` and the reason.

    Args:
        builder: name for ``torchvision.models.get_model`` (e.g. ``"fcn_resnet50"``).
        weights: weights enum name (e.g. ``"FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"``).
        url: override of the download URL (tests point it at a ``file://`` fixture).
        kwargs: extra builder arguments (e.g. ``aux_loss=True``).
    """
    from torchvision.models import get_model

    enum = torchvision_weights(weights)
    categories = enum.meta.get("categories")
    options = {"weights": None, "weights_backbone": None, **kwargs}
    if categories is not None:
        options.setdefault("num_classes", len(categories))
    return try_load(lambda: get_model(builder, **options), url or enum.url, None, directory,
                    what=f"torchvision {weights}")
