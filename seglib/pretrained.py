"""Pretrained weights from the internet, when it can be reached.

The notebooks show real models (torchvision's FCN, DeepLabv3 and Mask R-CNN,
the Segment Anything checkpoints) next to the small ones trained on
generated scenes. Downloads go through ``torch.hub``'s cache with a checksum;
when the weights cannot be had (offline, a cache folder that cannot be
created, a corrupt download, an HTML page instead of weights, weights of
another model), :func:`try_load` and :func:`try_torchvision` return ``None``
and a one-line reason instead of raising, so a notebook prints the reason and
continues. Mistakes in the call itself (a misspelt model name, weights of
another model family) still raise. The same code accepts ``file://`` URLs,
which is how the tests exercise it offline.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pickle
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from seglib import common

#: First bytes of a file written by ``torch.save``: a zip archive (PyTorch >= 1.6) or the legacy pickle.
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80\x02\x8a\x0a")


class DownloadError(RuntimeError):
    """A file could not be fetched, failed its checksum, or is not the checkpoint that was expected."""


class OfflineError(DownloadError):
    """The file's host could not be reached: no network connection (a name that does not resolve, a refused
    or timed-out connection)."""


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
        ValueError: ``url`` is not an absolute URL, or names no file and
            ``filename`` is not given.
        DownloadError: unreachable URL, interrupted download, wrong checksum,
            or a cache folder that cannot be created.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"url must be an absolute URL such as https://... or file://..., got {url!r}")
    name = filename or os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise ValueError(f"url must end in a file name (or give filename=...), got {url!r}")
    directory = Path(directory) if directory is not None else cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the cache folder {directory} ({exc.strerror or exc})") from exc
    path = directory / name
    if not path.exists():
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(common.DOWNLOAD_TIMEOUT_S)
        try:
            torch.hub.download_url_to_file(url, str(path), progress=False)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            kind = OfflineError if isinstance(reason, (socket.gaierror, ConnectionError, TimeoutError)) \
                else DownloadError
            raise kind(f"could not download {url}: {reason}") from exc
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

    Raises:
        DownloadError: as :func:`download`; also a file that is not a PyTorch
            checkpoint (an HTML page from a proxy or a login wall), cannot be
            loaded, or holds no state dict. Such a file is removed from the cache.
    """
    path = download(url, sha256, directory)
    if sha256 is None:
        stem = path.stem.rsplit("-", 1)
        if len(stem) == 2 and all(c in "0123456789abcdef" for c in stem[1]) and len(stem[1]) >= 6:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if not digest.startswith(stem[1]):
                path.unlink()
                raise DownloadError(f"{path.name} does not match the hash prefix in its name; removed it")
    return _load_state_dict(path, url)


def _load_state_dict(path: Path, url: str) -> dict:
    """``torch.load`` of a cached file, with a one-line :class:`DownloadError` (and the file removed) on failure."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head.startswith(CHECKPOINT_MAGIC):
        path.unlink()
        start = head.split(b"\n", 1)[0][:24].decode("utf-8", "replace").strip()
        raise DownloadError(f"the file at {url} is not a PyTorch checkpoint (it starts with {start!r}); "
                            "removed it from the cache")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises weights_only=False: not for a downloaded file
        path.unlink()
        raise DownloadError(f"the file at {url} holds more than tensors, so it is not loaded safely "
                            "(weights_only=True); removed it from the cache") from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        path.unlink()
        reason = str(exc).split(". ", 1)[0].splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise DownloadError(f"the file at {url} is not a readable PyTorch checkpoint ({reason}); "
                            "removed it from the cache") from None
    if not isinstance(state, Mapping):
        path.unlink()
        raise DownloadError(f"the file at {url} holds a {type(state).__name__}, not a state dict; "
                            "removed it from the cache")
    return state


def _few(keys: list[str], count: int = 3) -> str:
    return ", ".join(keys[:count]) + (", ..." if len(keys) > count else "")


def _mismatch(model: nn.Module, state: Mapping) -> str | None:
    """Why ``state`` does not fit ``model`` (missing, unexpected or resized keys), briefly; None if it fits.

    ``model`` is loaded with ``strict=False`` on the way: discard it when a reason comes back.
    """
    expected = model.state_dict()
    resized = [key for key, value in expected.items() if key in state and hasattr(state[key], "shape")
               and tuple(state[key].shape) != tuple(value.shape)]
    if resized:
        first = resized[0]
        return (f"{len(resized)} key(s) of another shape: {_few(resized)} "
                f"(e.g. {first} {tuple(state[first].shape)} in the file, {tuple(expected[first].shape)} in the model)")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        return str(exc).strip().splitlines()[-1].strip()[:160]
    parts = [f"{len(keys)} {label} key(s): {_few(keys)}"
             for label, keys in (("missing", result.missing_keys), ("unexpected", result.unexpected_keys)) if keys]
    return "; ".join(parts) or None


def torchvision_weights(weights: str):
    """The torchvision weights enum value named ``weights`` (e.g. ``"FCN_ResNet50_Weights.DEFAULT"``).

    Raises:
        TypeError: ``weights`` is not a string.
        ValueError: no torchvision weights have that name.
    """
    from torchvision.models import get_weight

    if not isinstance(weights, str):
        raise TypeError(f"weights must be a torchvision weights name (str), got {type(weights).__name__}")
    try:
        return get_weight(weights)
    except (ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"unknown torchvision weights {weights!r}: {exc}") from None


def try_load(build: Callable[[], nn.Module], url: str, sha256: str | None = None,
             directory: Path | None = None, what: str = "pretrained weights",
             shows: str | None = None) -> tuple[nn.Module | None, str]:
    """Build a model and load weights from ``url``, or explain in one line why not.

    Args:
        build: returns the model without weights.
        url, sha256, directory: as for :func:`download`.
        what: name used in the message.
        shows: what the caller does with the model (``"segments a photo of a cat"``), for the
            one-line note shown without a network connection.

    Returns:
        ``(model in eval mode, message)`` on success, ``(None, reason)`` when the
        weights cannot be had: offline, a cache folder that cannot be created,
        a corrupt download, a file that is not a checkpoint (an HTML page), or
        weights of another model (missing, unexpected or resized keys).

    Raises:
        TypeError: ``build`` is not callable or does not return an ``nn.Module``.
        ValueError: ``url`` is not an absolute URL.
    """
    if not callable(build):
        raise TypeError(f"build must be a callable that returns the model, got {type(build).__name__}")
    try:
        state = state_dict_from_url(url, sha256, directory)
    except OfflineError:
        note = f" With a network connection, this cell {shows}." if shows else ""
        return None, (f"Skipped here, offline: {what} needs a download from "
                      f"{urllib.parse.urlparse(url).netloc}.{note}")
    except DownloadError as exc:
        return None, f"{what} not available ({exc}); continuing without them."
    model = build()
    if not isinstance(model, nn.Module):
        raise TypeError(f"build must return a torch.nn.Module, got {type(model).__name__}")
    problem = _mismatch(model, state)
    if problem is not None:
        return None, (f"{what} not available (the file at {url} holds weights of another model: {problem}); "
                      "continuing without them.")
    return model.eval(), f"loaded {what} from {url}"


def _check_builder(builder: object, enum) -> None:
    from torchvision.models import get_model_weights, list_models

    if not isinstance(builder, str):
        raise TypeError(f"builder must be a torchvision model name (str), got {type(builder).__name__}")
    names = list_models()
    if builder not in names:
        close = difflib.get_close_matches(builder, names, n=3)
        hint = f"close matches: {', '.join(close)}" if close else "see torchvision.models.list_models()"
        raise ValueError(f"builder must be a torchvision model name, got unknown model {builder!r}; {hint}")
    family = get_model_weights(builder)
    if not isinstance(enum, family):
        raise ValueError(f"weights must be weights of {builder} ({family.__name__}.*), "
                         f"got {type(enum).__name__}.{enum.name}")


def try_torchvision(builder: str, weights: str, url: str | None = None, directory: Path | None = None,
                    shows: str | None = None, **kwargs) -> tuple[nn.Module | None, str]:
    """A torchvision model with its pretrained ``weights``, or ``None`` and the reason.

    Args:
        builder: name for ``torchvision.models.get_model`` (e.g. ``"fcn_resnet50"``).
        weights: weights enum name (e.g. ``"FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"``).
        url: override of the download URL (tests point it at a ``file://`` fixture).
        shows: as for :func:`try_load`.
        kwargs: extra builder arguments (e.g. ``aux_loss=True``).

    Returns:
        As :func:`try_load`: ``(model in eval mode, message)`` or ``(None, reason)``.

    Raises:
        TypeError: ``builder`` or ``weights`` is not a string.
        ValueError: an unknown model name (the message lists close matches),
            unknown weights, or weights of another model family; checked
            before any download, so a typo is reported even offline.
    """
    from torchvision.models import get_model

    enum = torchvision_weights(weights)
    _check_builder(builder, enum)
    categories = enum.meta.get("categories")
    options = {"weights": None, "weights_backbone": None, **kwargs}
    if categories is not None:
        options.setdefault("num_classes", len(categories))
    return try_load(lambda: get_model(builder, **options), url or enum.url, None, directory,
                    what=f"torchvision's {builder} ({weights})", shows=shows)
