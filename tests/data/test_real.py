"""The Oxford-IIIT Pet loader on a tiny fake dataset in torchvision's folder layout (no download)."""

import numpy as np
import pytest
import torch
from PIL import Image

from seglib.data.batches import random_batches
from seglib.data import real

NAMES = {"trainval": ["Abyssinian_1", "beagle_2", "Bengal_3"], "test": ["pug_4"]}


@pytest.fixture
def pets_root(tmp_path):
    """``root/oxford-iiit-pet/{images, annotations/trimaps, annotations/<split>.txt}`` with 4 photos."""
    base = tmp_path / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, names in NAMES.items():
        lines = []
        for k, name in enumerate(names):
            height, width = 40 + 10 * k, 60 - 5 * k
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
                base / "images" / f"{name}.jpg")
            trimap = np.full((height, width), 2, dtype=np.uint8)  # background
            trimap[10:30, 15:45] = 3  # border ring
            trimap[13:27, 18:42] = 1  # pet
            Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{name}.png")
            species = 1 if name[0].isupper() else 2  # cats have capitalised names
            lines.append(f"{name} {k + 1} {species} 1")
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_trimap_to_labels():
    trimap = torch.tensor([[1, 2], [3, 2]], dtype=torch.uint8)
    assert real.trimap_to_labels(trimap).tolist() == [[1, 0], [255, 0]]
    assert real.trimap_to_labels(trimap).dtype == torch.int64
    with pytest.raises(ValueError, match="1, 2, 3"):
        real.trimap_to_labels(torch.tensor([[0, 1]]))
    with pytest.raises(TypeError, match="integer tensor"):
        real.trimap_to_labels(torch.ones(2, 2))


def test_fake_dataset_loads_without_download(pets_root):
    dataset = real.OxfordPetSegmentation(pets_root, "trainval", size=32, download=False)
    assert len(dataset) == 3
    image, labels = dataset[1]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    assert labels.shape == (32, 32) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) == {0, 1, 255}
    assert len(real.OxfordPetSegmentation(pets_root, "test", size=16)) == 1


def test_load_and_stack(pets_root):
    dataset, message = real.load_oxford_pets("trainval", size=24, root=pets_root, download=False)
    assert dataset is not None and "3 images at 24 x 24" in message
    images, labels = real.stack_dataset(dataset, limit=2, batch_size=1)
    assert images.shape == (2, 3, 24, 24) and labels.shape == (2, 24, 24)
    batches = random_batches(images, labels, batch_size=2, seed=0)
    for _ in range(3):
        batch_images, batch_labels = next(batches)
        assert batch_images.shape == (2, 3, 24, 24) and batch_labels.shape == (2, 24, 24)
        # a pair is flipped together: the labels still describe the image
        for image, label in zip(batch_images, batch_labels):
            match = [torch.equal(image, images[i]) and torch.equal(label, labels[i]) or
                     torch.equal(image, images[i].flip(-1)) and torch.equal(label, labels[i].flip(-1))
                     for i in range(2)]
            assert any(match)


def test_missing_dataset_is_a_one_line_reason(tmp_path):
    dataset, message = real.load_oxford_pets(root=tmp_path, download=False)
    assert dataset is None
    assert message.startswith("Oxford-IIIT Pet not available") and "\n" not in message


def test_bad_arguments(pets_root):
    with pytest.raises(ValueError, match="split"):
        real.OxfordPetSegmentation(pets_root, "train")
    with pytest.raises(ValueError, match="size"):
        real.OxfordPetSegmentation(pets_root, size=4)
    with pytest.raises(ValueError, match="batch_size"):
        next(random_batches(torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long), batch_size=3))


def test_data_root_override(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLIB_DATA", str(tmp_path))
    assert real.data_root() == tmp_path


def test_bad_argument_types_and_values(pets_root):
    with pytest.raises(TypeError, match=r"size must be an int, got str"):
        real.OxfordPetSegmentation(pets_root, size="32")
    with pytest.raises(ValueError, match=r"size must be an int >= 8, got 4"):
        real.load_oxford_pets(size=4, root=pets_root, download=False)
    with pytest.raises(TypeError, match=r"download must be True or False, got int"):
        real.OxfordPetSegmentation(pets_root, download=1)
    with pytest.raises(TypeError, match=r"root must be a folder path"):
        real.OxfordPetSegmentation(3.5)
    with pytest.raises(ValueError, match=r"split must be one of \('trainval', 'test'\), got 'train'"):
        real.load_oxford_pets("train", root=pets_root, download=False)


def test_stack_dataset_checks_arguments(pets_root):
    dataset = real.OxfordPetSegmentation(pets_root, "trainval", size=16)
    with pytest.raises(ValueError, match=r"limit must be a positive int, got 0"):
        real.stack_dataset(dataset, limit=0)
    with pytest.raises(TypeError, match=r"limit must be an int, got float"):
        real.stack_dataset(dataset, limit=1.5)
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        real.stack_dataset(dataset, batch_size=0)
    with pytest.raises(ValueError, match=r"num_workers must be an int >= 0, got -1"):
        real.stack_dataset(dataset, num_workers=-1)
    with pytest.raises(TypeError, match=r"dataset must be a map-style dataset"):
        real.stack_dataset(5)
    with pytest.raises(ValueError, match=r"dataset must hold at least one pair, got an empty list"):
        real.stack_dataset([])


def test_one_shared_download_timeout():
    assert not hasattr(real, "DOWNLOAD_TIMEOUT_S")  # seglib.common.DOWNLOAD_TIMEOUT_S is the one constant
