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

import numbers
import os
import socket
import urllib.error
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from seglib import common
from seglib.data.shapes import IGNORE_INDEX
from seglib.validation import check_bool, check_choice, check_int

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
PET_CLASSES = ("background", "pet")
#: trimap value -> label: pet, background, border (ignored).
TRIMAP_LABELS = {1: 1, 2: 0, 3: IGNORE_INDEX}


def data_root() -> Path:
    """Folder of downloaded datasets: ``$SEGLIB_DATA`` if set, else ``<torch hub dir>/datasets``."""
    override = os.environ.get(DATA_VARIABLE)
    return Path(override) if override else Path(torch.hub.get_dir()) / "datasets"


def _check_root(root: object) -> Path:
    """``root`` as a Path (:func:`data_root` when None); ``TypeError`` unless it is a path or None."""
    if root is None:
        return data_root()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path (str or pathlib.Path) or None, got {type(root).__name__}")
    return Path(root)


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
        size: side of the square output, an int ``>= 8``.
        download: download the archives (about 800 MB) if the folder is missing.

    Raises:
        TypeError: ``root`` is not a path, ``size`` not an int, ``download`` not a bool.
        ValueError: another ``split``, or ``size < 8``.
        RuntimeError: the dataset is not in ``root`` and ``download`` is False
            (torchvision's message).
    """

    classes = PET_CLASSES

    def __init__(self, root: str | Path | None = None, split: str = "trainval", size: int = 128,
                 download: bool = False) -> None:
        from torchvision.datasets import OxfordIIITPet

        check_choice("split", split, ("trainval", "test"))
        self.size = check_int("size", size, 8)
        self.root = _check_root(root)
        check_bool("download", download)
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

    Raises:
        TypeError, ValueError: bad arguments, as :class:`OxfordPetSegmentation`.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(common.DOWNLOAD_TIMEOUT_S)
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

    Args:
        dataset: a map-style dataset of ``(image (3, S, S), labels (S, S))`` pairs.
        limit: how many pairs to keep (an int >= 1), or None for all.
        num_workers: DataLoader worker processes (an int >= 0).
        batch_size: pairs read at a time (an int >= 1).

    Returns:
        ``images (N, 3, S, S)`` float and ``labels (N, S, S)`` int64.

    Raises:
        TypeError: ``dataset`` has no length, or an int argument is not an int.
        ValueError: an int argument out of range, or an empty dataset.
    """
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"dataset must be a map-style dataset (with a length), got {type(dataset).__name__}")
    if limit is not None:
        check_int("limit", limit, 1)
    check_int("num_workers", num_workers, 0)
    check_int("batch_size", batch_size, 1)
    if limit is not None and limit < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(limit))
    images, labels = [], []
    for batch_images, batch_labels in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        images.append(batch_images)
        labels.append(batch_labels)
    if not images:
        raise ValueError(f"dataset must hold at least one pair, got an empty {type(dataset).__name__}")
    return torch.cat(images), torch.cat(labels)


# -- Penn-Fudan pedestrians (instance segmentation) ------------------------------------------------

PENNFUDAN_URL = "https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip"
PENNFUDAN_CLASSES = ("background", "person")
PENNFUDAN_TEST_IMAGES = 50


def _penn_fudan_files(base: Path) -> list[tuple[Path, Path]]:
    """The matched ``(photo, mask)`` paths of the copy in ``base`` (``.../PennFudanPed``), in name order.

    Raises:
        RuntimeError: no copy, or an incomplete one; the message names the
            folder and what is missing.
    """
    if not base.is_dir():
        raise RuntimeError(f"Penn-Fudan not found: no folder {base}")
    images_dir, masks_dir = base / "PNGImages", base / "PedMasks"
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise RuntimeError(f"Penn-Fudan in {base} is incomplete: the folder {folder.name} is missing")
    images = sorted(images_dir.glob("*.png"))
    masks = sorted(masks_dir.glob("*_mask.png"))
    if not images:
        raise RuntimeError(f"Penn-Fudan in {base} is incomplete: {images_dir.name} holds no .png photo")
    if not masks:
        raise RuntimeError(f"Penn-Fudan in {base} is incomplete: {masks_dir.name} holds no *_mask.png mask")
    photos, masked = {path.stem for path in images}, {path.name[: -len("_mask.png")] for path in masks}
    problems = []
    if photos - masked:
        names = sorted(photos - masked)
        problems.append(f"{len(names)} of {len(photos)} photos have no mask in {masks_dir.name} "
                        f"(e.g. {names[0]}_mask.png)")
    if masked - photos:
        names = sorted(masked - photos)
        problems.append(f"{len(names)} mask(s) have no photo in {images_dir.name} (e.g. {names[0]}.png)")
    if problems:
        raise RuntimeError(f"Penn-Fudan in {base} is incomplete: " + " and ".join(problems))
    return [(path, masks_dir / f"{path.stem}_mask.png") for path in images]


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
            an int ``>= 8``, or ``None`` to keep them as they are.

    Raises:
        TypeError: ``root`` is not a path, ``max_side`` not an int or None.
        ValueError: another ``split``, or ``max_side < 8``.
        RuntimeError: no copy in ``root``, or an incomplete one (a folder
            missing or empty, photos and masks that do not match, or too few
            photos for ``split="train"``); the message names the folder and
            what is missing.
    """

    classes = PENNFUDAN_CLASSES

    def __init__(self, root: str | Path | None = None, split: str = "train", max_side: int | None = None) -> None:
        check_choice("split", split, ("train", "test", "all"))
        self.max_side = None if max_side is None else check_int("max_side", max_side, 8)
        base = _check_root(root) / "PennFudanPed"
        files = _penn_fudan_files(base)
        split_at = max(len(files) - PENNFUDAN_TEST_IMAGES, 0)
        chosen = {"train": slice(0, split_at), "test": slice(split_at, None), "all": slice(None)}[split]
        self.files = files[chosen]
        if not self.files:
            raise RuntimeError(f"Penn-Fudan in {base} is incomplete: it holds {len(files)} photos, all of them in "
                               f"the test split (the last {PENNFUDAN_TEST_IMAGES}), so split='train' is empty; "
                               "the full copy has 170")
        self.root = base.parent

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        import numpy as np
        from PIL import Image
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
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

    With ``download``, a missing or incomplete copy in ``root`` is unpacked
    (again) from the archive, which is fetched first unless it is already in
    ``root``.

    Returns:
        ``(dataset, message)`` on success; ``(None, reason)`` when the data is
        neither in ``root`` nor downloadable (offline, server down, bad zip),
        or the copy is incomplete; the reason names the folder and what is
        missing.

    Raises:
        TypeError, ValueError: bad arguments (as :class:`PennFudanPed`; also
            ``download`` not a bool, ``url`` not a string), checked before any
            download.
    """
    import zipfile

    from seglib.pretrained import DownloadError
    from seglib.pretrained import download as fetch

    check_choice("split", split, ("train", "test", "all"))
    if max_side is not None:
        check_int("max_side", max_side, 8)
    root = _check_root(root)
    check_bool("download", download)
    if not isinstance(url, str):
        raise TypeError(f"url must be a str such as https://... or file://..., got {type(url).__name__}")
    try:
        _penn_fudan_files(root / "PennFudanPed")
        problem = None
    except RuntimeError as exc:
        problem = str(exc)
    if download and problem is not None:
        try:
            archive = fetch(url, directory=root, filename="PennFudanPed.zip")
            with zipfile.ZipFile(archive) as handle:
                handle.extractall(root)
        except (DownloadError, zipfile.BadZipFile, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if (root / "PennFudanPed").is_dir():
                return None, f"{problem}, and the archive could not be had ({reason}); skipping the real-data section."
            return None, f"Penn-Fudan not available ({reason}); skipping the real-data section."
    try:
        dataset = PennFudanPed(root, split, max_side)
    except RuntimeError as exc:
        return None, f"{exc}; skipping the real-data section."
    return dataset, f"Penn-Fudan {split}: {len(dataset)} photos from {dataset.root}"
