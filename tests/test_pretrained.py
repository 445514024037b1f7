"""The download path of pretrained weights, exercised offline with file:// fixtures."""

import hashlib

import pytest
import torch
from torch import nn

from seglib import pretrained


def tiny():
    return nn.Conv2d(3, 2, 1)


@pytest.fixture
def fixture_file(tmp_path):
    torch.manual_seed(0)
    source = tmp_path / "source"
    source.mkdir()
    plain = source / "tiny.pth"
    torch.save(tiny().state_dict(), plain)
    digest = hashlib.sha256(plain.read_bytes()).hexdigest()
    named = source / f"tiny-{digest[:8]}.pth"
    named.write_bytes(plain.read_bytes())
    return plain, named, digest


def test_try_load_from_file_url(fixture_file, tmp_path):
    plain, _, digest = fixture_file
    model, message = pretrained.try_load(tiny, plain.as_uri(), sha256=digest, directory=tmp_path / "cache")
    assert model is not None and not model.training
    assert torch.equal(model.weight, torch.load(plain, weights_only=True)["weight"])
    assert "loaded" in message
    assert (tmp_path / "cache" / "tiny.pth").exists()


def test_hash_prefix_in_name_is_checked(fixture_file, tmp_path):
    _, named, _ = fixture_file
    state = pretrained.state_dict_from_url(named.as_uri(), directory=tmp_path / "cache")
    assert set(state) == {"weight", "bias"}
    bad = named.with_name("tiny-00000000.pth")
    bad.write_bytes(named.read_bytes())
    with pytest.raises(pretrained.DownloadError, match="hash prefix"):
        pretrained.state_dict_from_url(bad.as_uri(), directory=tmp_path / "cache2")


def test_wrong_checksum_removes_file(fixture_file, tmp_path):
    plain, _, _ = fixture_file
    model, message = pretrained.try_load(tiny, plain.as_uri(), sha256="0" * 64, directory=tmp_path / "c")
    assert model is None and "sha256" in message
    assert not (tmp_path / "c" / "tiny.pth").exists()


def test_unreachable_url_gives_reason_not_exception(tmp_path):
    model, message = pretrained.try_load(tiny, (tmp_path / "absent.pth").as_uri(), directory=tmp_path / "c")
    assert model is None
    assert message.startswith("pretrained weights not available") and "continuing" in message


def test_try_torchvision_with_fixture(tmp_path):
    from torchvision.models import get_model

    torch.manual_seed(0)
    reference = get_model("lraspp_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=21)
    path = tmp_path / "lraspp.pth"
    torch.save(reference.state_dict(), path)
    model, message = pretrained.try_torchvision("lraspp_mobilenet_v3_large",
                                                "LRASPP_MobileNet_V3_Large_Weights.DEFAULT",
                                                url=path.as_uri(), directory=tmp_path / "cache")
    assert model is not None, message
    assert torch.equal(model.state_dict()["classifier.low_classifier.weight"],
                       reference.state_dict()["classifier.low_classifier.weight"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="absolute URL"):
        pretrained.download("weights.pth")
    with pytest.raises(ValueError, match="unknown torchvision weights"):
        pretrained.torchvision_weights("NoSuch_Weights.DEFAULT")
