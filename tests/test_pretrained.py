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


# --------------------------------------------------------------------------- fallbacks: (None, reason), not a traceback


def test_html_page_instead_of_weights_is_a_one_line_reason(tmp_path):
    page = tmp_path / "tiny.pth"
    page.write_text("<!DOCTYPE html>\n<html><body>Please log in</body></html>\n")
    model, message = pretrained.try_load(tiny, page.as_uri(), directory=tmp_path / "cache")
    assert model is None and "\n" not in message
    assert f"the file at {page.as_uri()} is not a PyTorch checkpoint (it starts with '<!DOCTYPE html" in message
    assert "weights_only" not in message and "continuing" in message
    assert not (tmp_path / "cache" / "tiny.pth").exists()  # the next run downloads it anew
    with pytest.raises(pretrained.DownloadError, match="not a PyTorch checkpoint"):
        pretrained.state_dict_from_url(page.as_uri(), directory=tmp_path / "cache")


class NotTensors:
    pass


def test_unreadable_or_unsafe_checkpoints_are_a_one_line_reason(fixture_file, tmp_path):
    plain, _, _ = fixture_file
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(plain.read_bytes()[:200])
    model, message = pretrained.try_load(tiny, truncated.as_uri(), directory=tmp_path / "c1")
    assert model is None and "is not a readable PyTorch checkpoint" in message and "\n" not in message
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"weight": NotTensors()}, unsafe)
    model, message = pretrained.try_load(tiny, unsafe.as_uri(), directory=tmp_path / "c2")
    assert model is None and "holds more than tensors" in message and "\n" not in message
    assert "weights_only=False" not in message  # never the unsafe advice
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.ones(2), tensor)
    model, message = pretrained.try_load(tiny, tensor.as_uri(), directory=tmp_path / "c3")
    assert model is None and "holds a Tensor, not a state dict" in message


def test_weights_of_another_model_are_a_one_line_reason(tmp_path):
    renamed = tmp_path / "renamed.pth"
    torch.save(nn.Sequential(tiny()).state_dict(), renamed)  # keys 0.weight, 0.bias
    model, message = pretrained.try_load(tiny, renamed.as_uri(), directory=tmp_path / "c1")
    assert model is None and "\n" not in message
    assert "weights of another model: 2 missing key(s): weight, bias; 2 unexpected key(s): 0.weight, 0.bias" in message
    resized = tmp_path / "resized.pth"
    torch.save(nn.Conv2d(3, 4, 1).state_dict(), resized)
    model, message = pretrained.try_load(tiny, resized.as_uri(), directory=tmp_path / "c2")
    assert model is None and "2 key(s) of another shape: weight, bias" in message
    assert "(4, 3, 1, 1) in the file, (2, 3, 1, 1) in the model" in message


def test_cache_folder_that_cannot_be_created_is_a_reason(fixture_file, tmp_path):
    plain, _, digest = fixture_file
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    model, message = pretrained.try_load(tiny, plain.as_uri(), sha256=digest, directory=blocker / "cache")
    assert model is None and "\n" not in message
    assert message.startswith("pretrained weights not available (cannot create the cache folder")
    with pytest.raises(pretrained.DownloadError, match="cannot create the cache folder"):
        pretrained.download(plain.as_uri(), directory=blocker)  # the folder is the file itself


def test_misspelt_torchvision_model_is_an_error_even_offline(tmp_path):
    offline = (tmp_path / "absent.pth").as_uri()
    with pytest.raises(ValueError, match=r"builder must be a torchvision model name, got unknown model "
                                         r"'fcn_resnet5O'; close matches: fcn_resnet50"):
        pretrained.try_torchvision("fcn_resnet5O", "FCN_ResNet50_Weights.DEFAULT", url=offline, directory=tmp_path)
    with pytest.raises(ValueError, match=r"weights must be weights of fcn_resnet50 \(FCN_ResNet50_Weights"):
        pretrained.try_torchvision("fcn_resnet50", "DeepLabV3_ResNet50_Weights.DEFAULT", url=offline,
                                   directory=tmp_path)
    with pytest.raises(TypeError, match="builder must be a torchvision model name"):
        pretrained.try_torchvision(None, "FCN_ResNet50_Weights.DEFAULT", url=offline, directory=tmp_path)
    model, message = pretrained.try_torchvision("fcn_resnet50", "FCN_ResNet50_Weights.DEFAULT", url=offline,
                                                directory=tmp_path / "cache")
    assert model is None and "not available" in message  # a correct name offline is still a reason


def test_download_uses_the_shared_timeout(fixture_file, tmp_path, monkeypatch):
    import socket

    from seglib import common

    assert not hasattr(pretrained, "DOWNLOAD_TIMEOUT_S")  # one constant, in seglib.common
    seen = []

    def fake_download(url, dst, progress=True):
        seen.append(socket.getdefaulttimeout())
        raise OSError("offline")

    monkeypatch.setattr(common, "DOWNLOAD_TIMEOUT_S", 3.5)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(pretrained.DownloadError, match="offline"):
        pretrained.download("https://example.invalid/w.pth", directory=tmp_path)
    assert seen == [3.5]


def test_offline_gives_one_clean_line_that_says_what_the_cell_would_show(tmp_path, monkeypatch):
    import socket
    import urllib.error

    def no_network(url, dst, progress=True):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(pretrained.OfflineError):
        pretrained.download("https://example.org/w.pth", directory=tmp_path)
    model, message = pretrained.try_load(tiny, "https://example.org/w.pth", directory=tmp_path, what="the tiny net",
                                         shows="segments a photo")
    assert model is None and "\n" not in message
    assert message == ("Skipped here, offline: the tiny net needs a download from example.org. "
                       "With a network connection, this cell segments a photo.")
    assert "Errno" not in message and "error" not in message.lower()
