"""The SAM exercise checks accept the reference and explain typical mistakes."""

import math

import pytest
import torch

from seglib.checks import CheckFailed
from seglib.checks.sam import check_disambiguating_click, check_fourier_encoding, fourier_encoding_reference


def test_fourier_reference_passes(capsys):
    check_fourier_encoding(fourier_encoding_reference)
    assert "fourier_encoding" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda p, g, s: torch.cat([torch.cos(2 * math.pi * ((2 * p / s - 1) @ g)),
                                torch.sin(2 * math.pi * ((2 * p / s - 1) @ g))], -1), "sine first"),
    (lambda p, g, s: torch.cat([torch.sin(2 * math.pi * ((p / s) @ g)),
                                torch.cos(2 * math.pi * ((p / s) @ g))], -1), "2p - 1"),
    (lambda p, g, s: fourier_encoding_reference(p * s, g, s), "divide the pixel coordinates"),
])
def test_fourier_mistakes_get_hints(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        check_fourier_encoding(wrong)


def test_fourier_stub_and_wrong_shape():
    def stub(points, gaussian, image_size):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="not implemented yet"):
        check_fourier_encoding(stub)
    with pytest.raises(CheckFailed, match="expected shape"):
        check_fourier_encoding(lambda p, g, s: fourier_encoding_reference(p, g, s)[:, :1])


def disambiguating_click(part, whole, want):
    ys, xs = (whole & ~part).nonzero(as_tuple=True)
    return int(xs[-1]), int(ys[-1]), int(want == "whole")


def test_disambiguating_click_reference_passes(capsys):
    check_disambiguating_click(disambiguating_click)
    assert "4 cases resolved" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda part, whole, want: disambiguating_click(part, whole, want)[1::-1] + (int(want == "whole"),),
     "x and y are swapped"),
    (lambda part, whole, want: (int(part.nonzero()[0, 1]), int(part.nonzero()[0, 0]), int(want == "whole")),
     "inside the spot lies in both readings"),
    (lambda part, whole, want: disambiguating_click(part, whole, want)[:2] + (1,), "must be negative"),
    (lambda part, whole, want: (0, 0, 1), "on the background says nothing"),
    (lambda part, whole, want: "x=3, y=4", "return \\(x, y, label\\)"),
])
def test_disambiguating_click_mistakes_get_hints(wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        check_disambiguating_click(wrong)
