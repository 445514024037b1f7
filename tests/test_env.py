import sys
import types

import pytest
import torch

import seglib
from seglib import env


def test_profile_follows_cuda_and_variable(monkeypatch):
    monkeypatch.delenv("SEGLIB_PROFILE", raising=False)
    assert env.profile() == ("gpu" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("SEGLIB_PROFILE", "GPU")
    assert env.profile() == "gpu"
    monkeypatch.setenv("SEGLIB_PROFILE", "cpu")
    assert env.profile() == "cpu"


def test_profile_rejects_unknown_value(monkeypatch):
    monkeypatch.setenv("SEGLIB_PROFILE", "tpu")
    with pytest.raises(ValueError, match="SEGLIB_PROFILE must be one of"):
        env.profile()


def test_seed_everything_is_deterministic():
    env.seed_everything(3)
    a = torch.rand(4)
    env.seed_everything(3)
    assert torch.equal(a, torch.rand(4))
    gen = env.seed_everything(5)
    assert torch.equal(torch.rand(2, generator=gen), torch.rand(2, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), ("1", TypeError), (True, TypeError)])
def test_seed_everything_rejects_bad_seed(bad, error):
    with pytest.raises(error, match="seed"):
        env.seed_everything(bad)


def test_device_matches_cuda():
    assert env.device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_on_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not env.on_colab()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert env.on_colab()


def test_setup_prints_banner(capsys, monkeypatch):
    monkeypatch.setenv("SEGLIB_PROFILE", "cpu")
    dev = seglib.setup(seed=1)
    out = capsys.readouterr().out
    assert isinstance(dev, torch.device)
    for word in ("seglib", "torch", "torchvision", "profile", "cpu"):
        assert word in out
    if not torch.cuda.is_available():
        assert "No GPU found" in out


def test_banner_on_colab_tells_how_to_get_a_gpu(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("the advice is only shown without a GPU")
    monkeypatch.delenv("SEGLIB_PROFILE", raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert "Change runtime type" in env.banner()


def test_by_profile(monkeypatch):
    monkeypatch.setenv("SEGLIB_PROFILE", "cpu")
    assert env.by_profile(cpu=1, gpu=2) == 1
    monkeypatch.setenv("SEGLIB_PROFILE", "gpu")
    assert env.by_profile(cpu=1, gpu=2) == 2


def test_banner_says_when_the_gpu_profile_is_forced_without_a_gpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("SEGLIB_PROFILE", "gpu")
    assert env.profile() == "gpu" and env.device().type == "cpu"
    seglib.setup(seed=0)
    out = capsys.readouterr().out
    assert "profile     gpu" in out
    assert "live for about a minute" not in out  # not the cpu profile's promise
    assert "SEGLIB_PROFILE=gpu forces the gpu profile" in out and "on the CPU" in out and "far longer" in out
    assert "unset SEGLIB_PROFILE or set SEGLIB_PROFILE=cpu" in out


def test_banner_without_a_gpu_in_the_cpu_profile(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    for value in (None, "cpu"):
        if value is None:
            monkeypatch.delenv("SEGLIB_PROFILE", raising=False)
        else:
            monkeypatch.setenv("SEGLIB_PROFILE", value)
        text = env.banner()
        assert "No GPU found: the notebooks that train do so live for about a minute" in text
        assert "forces the gpu profile" not in text


def test_setup_applies_the_course_figure_style(monkeypatch, capsys):
    import matplotlib
    import matplotlib.figure

    from seglib.style import COURSE_STYLE, DPI, MIN_FONT_POINTS

    monkeypatch.setenv("SEGLIB_PROFILE", "cpu")
    with matplotlib.rc_context({"figure.dpi": 72, "font.size": 6}):
        seglib.setup(seed=0, verbose=False)
        assert matplotlib.rcParams["figure.dpi"] == DPI and matplotlib.rcParams["font.size"] == COURSE_STYLE["font.size"]
        sizes = [v for k, v in COURSE_STYLE.items() if k.endswith("size")]
        assert min(sizes) >= MIN_FONT_POINTS and MIN_FONT_POINTS * DPI / 72 >= 12  # points -> px on screen
        figure = matplotlib.figure.Figure(figsize=(6, 3))
        assert figure.bbox.width >= 600  # a 6-inch figure is 600 px wide or more
