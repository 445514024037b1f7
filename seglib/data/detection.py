"""Detection data: torchvision Mask R-CNN targets and batches.

* :func:`scene_targets`: ``{"boxes", "labels", "masks"}`` per generated scene;
* :func:`detection_class_names`: the detector's class names for a :class:`~seglib.data.SceneConfig`;
* :func:`detection_batches`: endless ``(images, targets)`` lists of generated scenes;
* :func:`dataset_batches` and :func:`collate`: the same from a dataset of ``(image, target)`` pairs.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

from seglib.data.shapes import SceneBatch, SceneConfig, scene_stream
from seglib.validation import check_int


def detection_class_names(config: SceneConfig) -> tuple[str, ...]:
    """Names of the model's classes for scenes of ``config``: ``("background", *shapes)``."""
    if not isinstance(config, SceneConfig):
        raise TypeError(f"config must be a SceneConfig, got {type(config).__name__}")
    return ("background",) + config.shapes



def scene_targets(scenes: SceneBatch) -> list[dict[str, torch.Tensor]]:
    """torchvision training targets of generated scenes, one dict per scene.

    Args:
        scenes: a :class:`~seglib.data.SceneBatch` of ``B`` scenes.

    Returns:
        ``B`` dicts with ``boxes`` float32 ``(n, 4)`` xyxy, ``labels`` int64
        ``(n,)`` in ``1..K`` (thing class id minus the number of stuff classes,
        plus 1) and ``masks`` bool ``(n, H, W)``, on the scenes' device.
    """
    if not isinstance(scenes, SceneBatch):
        raise TypeError(f"scenes must be a SceneBatch, got {type(scenes).__name__}")
    shift = label_shift(scenes.config)
    return [dict(t, labels=t["labels"] - shift) for t in scenes.detection_targets()]


def label_shift(config: SceneConfig) -> int:
    """What a detection label (``1..K``) lacks of its class id in the semantic maps of ``config``.

    ``label + label_shift(config)`` is the class id, and so the palette colour, that the
    shape has in the label maps (e.g. the circle: detection label 1, class id 2).
    """
    if not isinstance(config, SceneConfig):
        raise TypeError(f"config must be a SceneConfig, got {type(config).__name__}")
    return len(config.stuff_names) - 1



def collate(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """``DataLoader`` collate for detection: images and targets stay lists (sizes may differ)."""
    if not isinstance(batch, (list, tuple)) or not batch:
        raise ValueError(f"batch must be a non-empty list of (image, target) pairs, got {batch!r:.60}")
    images, targets = zip(*batch)
    return list(images), list(targets)



def detection_batches(config: SceneConfig, batch_size: int = 4, seed: int = 0,
                      device: torch.device | str = "cpu") -> Iterator[tuple[tuple[list, list], None]]:
    """Endless training batches for :func:`seglib.train.train` with :func:`seglib.labs.mask_rcnn.detection_forward`.

    Each item is ``((images, targets), None)``: ``images`` a list of ``B``
    float ``(3, H, W)`` tensors and ``targets`` the :func:`scene_targets` of
    freshly generated scenes (on ``device``). The model needs the targets as
    input in train mode, so they travel with the inputs.
    """
    for scenes in scene_stream(batch_size, config, seed=seed, device=device):
        yield (list(scenes.images), scene_targets(scenes)), None



def dataset_batches(dataset, batch_size: int = 2, seed: int = 0,
                    device: torch.device | str = "cpu") -> Iterator[tuple[tuple[list, list], None]]:
    """Endless shuffled training batches from a detection ``Dataset`` of ``(image, target)`` pairs.

    Same format as :func:`detection_batches`; each epoch visits every item
    once in a new seeded order, and the batch is moved to ``device``.
    """
    check_int("batch_size", batch_size)
    if len(dataset) < batch_size:
        raise ValueError(f"batch_size {batch_size} exceeds the {len(dataset)} items of the dataset")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(dataset), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            images, targets = collate([dataset[i] for i in order[start:start + batch_size]])
            yield ([image.to(device) for image in images],
                   [{k: v.to(device) for k, v in target.items()} for target in targets]), None
