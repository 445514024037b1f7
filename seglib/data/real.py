"""Real datasets, loaded with torchvision when they can be downloaded.

Every notebook runs offline on generated scenes; these loaders add real
photos when the network is reachable. A failed download never raises in a
notebook: the ``load_...`` functions return ``None`` and a one-line reason.

Oxford-IIIT Pet (Parkhi et al., 2012): 7,349 photos of cats and dogs (3,680
``trainval``, 3,669 ``test``), each with a *trimap*: 1 = pet, 2 = background,
3 = the uncertain border around the pet. :class:`OxfordPetSegmentation`
resizes photo and trimap to a square and turns the trimap into a label map
with classes ``0 = background``, ``1 = pet`` and the border as
``IGNORE_INDEX`` (255), so losses and metrics skip it.

Penn-Fudan pedestrians (Wang, Shi, Song and Shen, 2007): 170 street photos
with 345 people, each person's mask stored as an instance-id PNG (0 =
background, ``k`` = the k-th person). :class:`PennFudanPed` yields
torchvision detection targets (masks, boxes, label 1 = person).
"""

from __future__ import annotations

import os
import socket
import urllib.error
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from seglib.data.shapes import IGNORE_INDEX

__all__ = [
    "OxfordPetSegmentation",
    "PET_CLASSES",
    "data_root",
    "load_oxford_pets",
    "stack_dataset",
    "trimap_to_labels",
]
__all__ += ["PENNFUDAN_CLASSES", "PENNFUDAN_URL", "PennFudanPed", "load_penn_fudan"]

DATA_VARIABLE = "SEGLIB_DATA"
DOWNLOAD_TIMEOUT_S = 20.0
PET_CLASSES = ("background", "pet")
#: trimap value -> label: pet, background, border (ignored).
TRIMAP_LABELS = {1: 1, 2: 0, 3: IGNORE_INDEX}


def data_root() -> Path:
    """Folder of downloaded datasets: ``$SEGLIB_DATA`` if set, else ``<torch hub dir>/datasets``."""
    override = os.environ.get(DATA_VARIABLE)
    return Path(override) if override else Path(torch.hub.get_dir()) / "datasets"


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int, got {type(size).__name__}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    return size


def trimap_to_labels(trimap: torch.Tensor) -> torch.Tensor:
    """Oxford-IIIT Pet trimap ``(H, W)`` with values 1, 2, 3 -> int64 labels: 1 pet, 0 background, 255 border."""
    if not isinstance(trimap, torch.Tensor) or trimap.is_floating_point() or trimap.dim() != 2:
        got = (trimap.dtype, tuple(trimap.shape)) if isinstance(trimap, torch.Tensor) else type(trimap).__name__
        raise TypeError(f"trimap must be an integer tensor (H,W), got {got}")
    trimap = trimap.long()
    unknown = ~torch.isin(trimap, torch.tensor(list(TRIMAP_LABELS), device=trimap.device))
    if bool(unknown.any()):
        raise ValueError(f"trimap must hold only the values 1, 2, 3, got {sorted(set(trimap[unknown].tolist()))[:5]}")
    table = torch.full((4,), IGNORE_INDEX, dtype=torch.int64, device=trimap.device)
    for value, label in TRIMAP_LABELS.items():
        table[value] = label
    return table[trimap]


class OxfordPetSegmentation(Dataset):
    """Oxford-IIIT Pet as ``(image (3, size, size) float in [0,1], labels (size, size) int64)`` pairs.

    Photos are resized to ``size x size`` (bilinear with antialiasing; the
    aspect ratio is not kept), trimaps with nearest-neighbour interpolation,
    then mapped by :func:`trimap_to_labels`.

    Args:
        root: folder that holds (or will hold) ``oxford-iiit-pet/``; default :func:`data_root`.
        split: ``"trainval"`` or ``"test"``.
        size: side of the square output, ``>= 8``.
        download: download the archives (about 800 MB) if the folder is missing.

    Raises:
        RuntimeError: the dataset is not in ``root`` and ``download`` is False
            (torchvision's message).
    """

    classes = PET_CLASSES

    def __init__(self, root: str | Path | None = None, split: str = "trainval", size: int = 128,
                 download: bool = False) -> None:
        from torchvision.datasets import OxfordIIITPet

        if split not in ("trainval", "test"):
            raise ValueError(f"split must be 'trainval' or 'test', got {split!r}")
        self.size = _check_size(size)
        self.root = Path(root) if root is not None else data_root()
        self.pets = OxfordIIITPet(str(self.root), split=split, target_types="segmentation", download=download)

    def __len__(self) -> int:
        return len(self.pets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        photo, trimap = self.pets[index]
        size = [self.size, self.size]
        image = TF.resize(TF.pil_to_tensor(photo), size, antialias=True).float() / 255
        trimap = TF.resize(TF.pil_to_tensor(trimap), size, interpolation=InterpolationMode.NEAREST)[0]
        return image, trimap_to_labels(trimap)


def load_oxford_pets(split: str = "trainval", size: int = 128, root: str | Path | None = None,
                     download: bool = True) -> tuple[OxfordPetSegmentation | None, str]:
    """:class:`OxfordPetSegmentation`, or ``None`` and a one-line reason when it cannot be had.

    Returns:
        ``(dataset, message)`` on success; ``(None, reason)`` when the data is
        neither in ``root`` nor downloadable (offline, server down, bad archive).
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        dataset = OxfordPetSegmentation(root, split, size, download)
    except (RuntimeError, OSError, urllib.error.URLError) as exc:
        reason = str(getattr(exc, "reason", exc)).splitlines()[0]
        return None, f"Oxford-IIIT Pet not available ({reason}); skipping the real-data section."
    finally:
        socket.setdefaulttimeout(previous)
    return dataset, f"Oxford-IIIT Pet {split}: {len(dataset)} images at {size} x {size} from {dataset.root}"


def stack_dataset(dataset: Dataset, limit: int | None = None, num_workers: int = 0,
                  batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """All (or the first ``limit``) pairs of a dataset as two tensors, to train from memory.

    Returns:
        ``images (N, 3, S, S)`` float and ``labels (N, S, S)`` int64.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    if limit is not None and limit < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(limit))
    images, labels = [], []
    for batch_images, batch_labels in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        images.append(batch_images)
        labels.append(batch_labels)
    if not images:
        raise ValueError("dataset is empty")
    return torch.cat(images), torch.cat(labels)


# -- Penn-Fudan pedestrians (instance segmentation) ------------------------------------------------

PENNFUDAN_URL = "https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip"
PENNFUDAN_CLASSES = ("background", "person")
PENNFUDAN_TEST_IMAGES = 50


class PennFudanPed(Dataset):
    """Penn-Fudan as ``(image (3, H, W) float in [0,1], target dict)`` pairs.

    The target holds ``masks`` bool ``(n, H, W)``, ``boxes`` float32
    ``(n, 4)`` xyxy (pixel edges) and ``labels`` int64 ``(n,)`` (all 1,
    person), the format of torchvision's detection models and of
    :func:`seglib.metrics.instance.coco_mask_ap`.

    Args:
        root: folder holding ``PennFudanPed/PNGImages`` and ``PennFudanPed/PedMasks``;
            default :func:`data_root`.
        split: ``"train"`` (all but the last 50 photos in name order),
            ``"test"`` (the last 50) or ``"all"``.
        max_side: photos (about 300-550 pixels wide) whose longer side
            exceeds this are shrunk to it, masks with nearest neighbours;
            ``None`` keeps them as they are.
    """

    classes = PENNFUDAN_CLASSES

    def __init__(self, root: str | Path | None = None, split: str = "train", max_side: int | None = None) -> None:
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        self.max_side = None if max_side is None else _check_size(max_side)
        base = (Path(root) if root is not None else data_root()) / "PennFudanPed"
        images = sorted((base / "PNGImages").glob("*.png"))
        if not images:
            raise RuntimeError(f"Penn-Fudan not found: no PNG images in {base / 'PNGImages'}")
        masks = [base / "PedMasks" / f"{path.stem}_mask.png" for path in images]
        missing = [m.name for m in masks if not m.exists()]
        if missing:
            raise RuntimeError(f"Penn-Fudan is incomplete: {len(missing)} masks missing, e.g. {missing[0]}")
        split_at = max(len(images) - PENNFUDAN_TEST_IMAGES, 0)
        chosen = {"train": slice(0, split_at), "test": slice(split_at, None), "all": slice(None)}[split]
        self.files = list(zip(images, masks))[chosen]
        self.root = base.parent

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        import numpy as np
        from PIL import Image
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        image_path, mask_path = self.files[index]
        image = TF.pil_to_tensor(Image.open(image_path).convert("RGB"))
        ids = torch.from_numpy(np.array(Image.open(mask_path), dtype=np.int64))[None]
        if self.max_side is not None and max(image.shape[-2:]) > self.max_side:
            scale = self.max_side / max(image.shape[-2:])
            size = [max(1, round(side * scale)) for side in image.shape[-2:]]
            image = TF.resize(image, size, antialias=True)
            ids = TF.resize(ids, size, interpolation=InterpolationMode.NEAREST)
        ids = ids[0]
        people = ids.unique()
        masks = ids[None] == people[people > 0].view(-1, 1, 1)
        return image.float() / 255, {"masks": masks, "boxes": _mask_boxes(masks),
                                     "labels": torch.ones(len(masks), dtype=torch.int64)}


def _mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """xyxy boxes (pixel edges) of non-empty bool masks ``(n, H, W)``."""
    if masks.shape[0] == 0:
        return torch.zeros(0, 4)
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    first = lambda hits: hits.float().argmax(dim=1)  # noqa: E731
    last = lambda hits: hits.shape[1] - hits.flip(1).float().argmax(dim=1)  # noqa: E731
    return torch.stack([first(cols), first(rows), last(cols), last(rows)], dim=1).float()


def load_penn_fudan(split: str = "train", root: str | Path | None = None, download: bool = True,
                    max_side: int | None = None, url: str = PENNFUDAN_URL) -> tuple[PennFudanPed | None, str]:
    """:class:`PennFudanPed`, downloading and unpacking the archive (53 MB) when needed.

    Returns:
        ``(dataset, message)`` on success; ``(None, reason)`` when the data is
        neither in ``root`` nor downloadable (offline, server down, bad zip).
    """
    import zipfile

    from seglib.pretrained import DownloadError
    from seglib.pretrained import download as fetch

    root = Path(root) if root is not None else data_root()
    if download and not (root / "PennFudanPed" / "PNGImages").is_dir():
        try:
            archive = fetch(url, directory=root, filename="PennFudanPed.zip")
            with zipfile.ZipFile(archive) as handle:
                handle.extractall(root)
        except (DownloadError, zipfile.BadZipFile, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return None, f"Penn-Fudan not available ({reason}); skipping the real-data section."
    try:
        dataset = PennFudanPed(root, split, max_side)
    except RuntimeError as exc:
        return None, f"{exc}; skipping the real-data section."
    return dataset, f"Penn-Fudan {split}: {len(dataset)} photos from {dataset.root}"
