"""The convolutional autoencoder of notebook 01 and the frequency measure of its blur."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seglib.data import SceneConfig
from seglib.models.autoencoder import ConvAutoencoder
from seglib.labs.upsampling import band_energy_ratio
from seglib.data.batches import reconstruction_batches
from seglib.models.upsamplers import UPSAMPLING_KINDS
from seglib.train import train


@pytest.mark.parametrize("upsampling", UPSAMPLING_KINDS)
def test_shapes_of_code_and_reconstruction(upsampling):
    model = ConvAutoencoder(widths=(4, 8), latent_channels=3, upsampling=upsampling).eval()
    x = torch.rand(2, 3, 16, 24)
    code = model.encode(x)
    assert code.shape == (2, 3, 4, 6) and model.stride == 4
    assert model.code_size(16, 24) == 3 * 4 * 6
    out = model(x)
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1


def test_decoder_uses_the_chosen_upsampling_layer():
    transposed = ConvAutoencoder(widths=(4, 8, 8))
    kernels = [m.kernel_size for m in transposed.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert kernels == [(4, 4)] * 3  # kernel divisible by the stride
    resized = ConvAutoencoder(widths=(4, 8, 8), upsampling="nearest")
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in resized.modules())
    assert sum(isinstance(m, torch.nn.Upsample) for m in resized.modules()) == 3


@pytest.mark.parametrize("kwargs, error", [
    (dict(widths=()), ValueError),
    (dict(widths=(4, 0)), ValueError),
    (dict(widths=(4, 2.5)), TypeError),
    (dict(latent_channels=0), ValueError),
    (dict(upsampling="cubic"), ValueError),
])
def test_constructor_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        ConvAutoencoder(**kwargs)


def test_inputs_are_checked():
    model = ConvAutoencoder(widths=(4, 8), latent_channels=2)
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.rand(1, 3, 10, 12))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(TypeError, match="x must be a float tensor.*int64"):
        model(torch.zeros(1, 3, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="2 channels"):
        model.decode(torch.rand(1, 5, 2, 2))


def test_short_training_lowers_the_reconstruction_error():
    config = SceneConfig(size=16, noise=0.0)
    batches = reconstruction_batches(8, config, seed=0)
    images, targets = next(batches)
    assert images.shape == (8, 3, 16, 16) and images is targets
    torch.manual_seed(0)
    model = ConvAutoencoder(widths=(8, 16), latent_channels=4)
    history = train(model, batches, F.mse_loss, steps=40, lr=1e-2, log_every=10, progress=False)
    assert history.loss[-1] < 0.5 * history.loss[0]


def test_band_energy_ratio_of_exact_and_scaled_copies():
    images = torch.rand(3, 3, 16, 16)
    centres, ratio = band_energy_ratio(images, images, bands=4)
    assert torch.allclose(centres, torch.tensor([0.0625, 0.1875, 0.3125, 0.4375]))
    assert torch.allclose(ratio, torch.ones(4))
    _, half = band_energy_ratio(0.5 * images + 0.2, images, bands=4)  # the mean does not count
    assert torch.allclose(half, torch.full((4,), 0.25))


def test_band_energy_ratio_sees_blur_as_lost_high_frequencies():
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    blurred = F.interpolate(F.avg_pool2d(images, 4), scale_factor=4, mode="bilinear")
    _, ratio = band_energy_ratio(blurred, images, bands=8)
    assert ratio[0] > 0.5 and ratio[-1] < 0.05 and ratio[-1] < ratio[0]


def test_band_energy_ratio_validates():
    images = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="shape of images"):
        band_energy_ratio(torch.rand(1, 3, 8, 4), images)
    with pytest.raises(ValueError, match="reconstructions"):
        band_energy_ratio(images[0], images)
    with pytest.raises(ValueError, match="bands"):
        band_energy_ratio(images, images, bands=0)
