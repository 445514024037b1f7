"""A conditional random field that refines a segmentation, solved by mean-field iterations.

DeepLab v1 and v2 post-processed their blobby outputs with the fully connected
CRF of Krähenbühl and Koltun (2011): every pixel is a variable; its unary
energy comes from the network's scores; a Potts pairwise energy charges two
pixels for disagreeing, weighted by two Gaussian kernels,

* an appearance (bilateral) kernel ``w_bilateral * exp(-|p_i - p_j|^2 / 2 theta_xy^2 - |I_i - I_j|^2 / 2 theta_rgb^2)``:
  nearby pixels of similar colour should share a label, so label edges snap to colour edges;
* a smoothness kernel ``w_smooth * exp(-|p_i - p_j|^2 / 2 theta_smooth^2)``: removes isolated pixels.

Mean-field inference replaces the exact posterior by independent per-pixel
distributions ``Q`` and iterates

    Q <- softmax(logits + sum_m w_m sum_{j != i} k_m(i, j) Q_j)

(for the Potts model the message raises the score of the labels the
neighbours hold). Here ``j`` runs over a ``window x window`` neighbourhood
instead of the whole image, which keeps the sum a cheap ``unfold`` on small
images; with ``theta_xy`` well below the window's half width the kernel is
negligible outside it anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from seglib.validation import check_image, check_int, check_logits

__all__ = ["CRFParams", "crf_refine"]


@dataclass(frozen=True)
class CRFParams:
    """Weights and widths of the two kernels (pixels; colour in [0, 1] units)."""

    w_bilateral: float = 5.0
    theta_xy: float = 3.0
    theta_rgb: float = 0.1
    w_smooth: float = 3.0
    theta_smooth: float = 1.0
    iterations: int = 5
    window: int = 11

    def __post_init__(self) -> None:
        for name in ("w_bilateral", "theta_xy", "theta_rgb", "w_smooth", "theta_smooth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                    (name.startswith("theta") and value == 0):
                raise ValueError(f"{name} must be a number >= 0 (> 0 for a width), got {value!r}")
        check_int("iterations", self.iterations, 1)
        if check_int("window", self.window, 3) % 2 == 0:
            raise ValueError(f"window must be odd, got {self.window}")


def _kernel(images: torch.Tensor, params: CRFParams) -> torch.Tensor:
    """Pairwise weights ``(B, K*K, H*W)`` of every pixel's window, the centre set to 0."""
    size = params.window
    offsets = torch.arange(size, device=images.device, dtype=images.dtype) - size // 2
    distance2 = (offsets[:, None] ** 2 + offsets[None, :] ** 2).flatten()[None, :, None]   # (1, K*K, 1)
    batch, channels, height, width = images.shape
    patches = F.unfold(images, size, padding=size // 2).view(batch, channels, size * size, height * width)
    colour2 = (patches - images.flatten(2)[:, :, None]).pow(2).sum(dim=1)                  # (B, K*K, H*W)
    inside = F.unfold(torch.ones_like(images[:, :1]), size, padding=size // 2) > 0         # pixels in the image
    kernel = (params.w_bilateral * torch.exp(-distance2 / (2 * params.theta_xy ** 2) - colour2 / (2 * params.theta_rgb ** 2))
              + params.w_smooth * torch.exp(-distance2 / (2 * params.theta_smooth ** 2)))
    kernel = kernel * inside
    kernel[:, size * size // 2] = 0.0                                                    # no message to itself
    return kernel


def crf_refine(logits: torch.Tensor, images: torch.Tensor, params: CRFParams = CRFParams(),
               batch_size: int = 16) -> torch.Tensor:
    """Mean-field CRF refinement of a network's scores.

    Args:
        logits: float ``(B, C, H, W)`` scores (the unary energies are ``-logits``).
        images: float ``(B, 3, H, W)`` in [0, 1], the images the scores belong to.
        params: kernel weights, widths, iterations and window (:class:`CRFParams`).
        batch_size: images refined at once (memory grows with ``window**2``).

    Returns:
        float ``(B, C, H, W)`` refined log-probabilities (take the argmax for labels).
    """
    check_logits("logits", logits, ndim=4)
    check_image("images", images, batched=True)
    if images.shape[0] != logits.shape[0] or images.shape[2:] != logits.shape[2:]:
        raise ValueError(f"images must be (B, 3, H, W) = {(logits.shape[0], 3, *logits.shape[2:])} to match logits, "
                         f"got {tuple(images.shape)}")
    if not isinstance(params, CRFParams):
        raise TypeError(f"params must be CRFParams, got {type(params).__name__}")
    check_int("batch_size", batch_size, 1)
    out = []
    size = params.window
    for start in range(0, logits.shape[0], batch_size):
        unary = logits[start:start + batch_size].float()
        kernel = _kernel(images[start:start + batch_size].float(), params)                  # (b, K*K, H*W)
        batch, classes, height, width = unary.shape
        q = unary.softmax(dim=1)
        for _ in range(params.iterations):
            neighbours = F.unfold(q, size, padding=size // 2).view(batch, classes, size * size, height * width)
            message = (neighbours * kernel[:, None]).sum(dim=2).view(batch, classes, height, width)
            q = (unary + message).softmax(dim=1)
        out.append((unary + message).log_softmax(dim=1))
    return torch.cat(out)
