"""A small Segment Anything: image encoder, prompt encoder, mask decoder.

The split of responsibilities is SAM's: ``encode`` runs the heavy image
encoder once per image; ``decode`` runs the light prompt encoder and mask
decoder for each prompt set, and is cheap enough to follow a user's clicks.

Shapes for 64 x 64 images and the default ``embed_dim`` D = 64:

=====================  ====================================================
image                  float ``(B, 3, 64, 64)`` in [0, 1]
image embedding        float ``(B, D, 16, 16)`` (+ high-res ``(B, 32, 32, 32)``, ``(B, 16, 64, 64)``)
sparse prompt tokens   float ``(B, N, D)`` (one per point, two per box)
dense prompt           float ``(B, D, 16, 16)`` (mask prompt or "no mask")
mask logits            float ``(B, 4, 64, 64)``: token 0 for unambiguous
                       prompts, tokens 1-3 for the answers of an ambiguous one
IoU predictions        float ``(B, 4)``
=====================  ====================================================
"""

from __future__ import annotations

import torch
from torch import nn

from seglib.models.promptable.image_encoder import ImageEncoder, ImageFeatures
from seglib.models.promptable.mask_decoder import MaskDecoder
from seglib.models.promptable.prompt_encoder import PromptEncoder


class SmallSam(nn.Module):
    """The three parts of a promptable segmentation model, SAM's way.

    Args:
        image_encoder: images to :class:`ImageFeatures`.
        prompt_encoder: prompts to sparse tokens and a dense embedding.
        mask_decoder: both to 4 mask logits and 4 predicted IoUs.
    """

    def __init__(self, image_encoder: ImageEncoder, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder

    @property
    def image_size(self) -> int:
        """Side of the square images the model takes."""
        return self.image_encoder.image_size

    def encode(self, images: torch.Tensor) -> ImageFeatures:
        """The heavy part: images float ``(B, 3, H, W)`` in [0, 1] to :class:`ImageFeatures`."""
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise TypeError(f"images must be a float tensor (B,3,H,W) in [0,1], got "
                            f"{images.dtype if isinstance(images, torch.Tensor) else type(images).__name__}")
        return self.image_encoder(images)

    def decode_all(self, features: ImageFeatures, points: torch.Tensor | None = None,
                   labels: torch.Tensor | None = None, boxes: torch.Tensor | None = None,
                   mask_inputs: torch.Tensor | None = None, mask_valid: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """The light part, all four outputs: one prompt set per row of ``features``.

        Args:
            features: :class:`ImageFeatures` with batch B (use ``features.expand``
                for several prompt sets per image).
            points: float ``(B, N, 2)`` ``(x, y)`` pixels; labels int64 ``(B, N)``
                1 foreground, 0 background, -1 padding.
            boxes: float ``(B, 4)`` xyxy pixels.
            mask_inputs: float ``(B, 1, H, W)`` logits of an earlier prediction.
            mask_valid: bool ``(B,)`` rows of ``mask_inputs`` to use.

        Returns:
            Mask logits float ``(B, 4, H, W)`` and predicted IoU float ``(B, 4)``.
        """
        sparse, dense = self.prompt_encoder(points, labels, boxes, mask_inputs, mask_valid)
        return self.mask_decoder(features.embedding, self.prompt_encoder.get_dense_pe(), sparse, dense,
                                 features.high_res)

    def decode(self, features: ImageFeatures, points: torch.Tensor | None = None, labels: torch.Tensor | None = None,
               boxes: torch.Tensor | None = None, mask_inputs: torch.Tensor | None = None,
               multimask_output: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`decode_all`, keeping SAM's outputs: 3 masks if ``multimask_output`` else 1.

        Returns:
            Mask logits float ``(B, C, H, W)`` and predicted IoU float ``(B, C)``
            with ``C = 3`` or ``1``.
        """
        masks, iou = self.decode_all(features, points, labels, boxes, mask_inputs)
        keep = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, keep], iou[:, keep]

    def forward(self, images: torch.Tensor, points: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                boxes: torch.Tensor | None = None, mask_inputs: torch.Tensor | None = None,
                multimask_output: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and decode in one call, one prompt set per image (see :meth:`decode`)."""
        return self.decode(self.encode(images), points, labels, boxes, mask_inputs, multimask_output)


@torch.no_grad()
def encode_images(model: SmallSam, images: torch.Tensor, batch_size: int = 256) -> ImageFeatures:
    """The :class:`ImageFeatures` of images float ``(N, 3, H, W)``, ``batch_size`` at a time, on the model's device.

    Evaluations encode each image once and ``take`` its features for every prompt on it.
    """
    device = next(model.parameters()).device
    return ImageFeatures.cat([model.encode(images[start:start + batch_size].to(device))
                              for start in range(0, len(images), batch_size)])


def build_small_sam(image_size: int = 64, embed_dim: int = 64, widths: tuple[int, int, int] = (16, 32, 64),
                    encoder_depth: int = 2, decoder_depth: int = 2, heads: int = 4, mlp_dim: int = 128,
                    dense_points: bool = True, scored_iou: bool = True) -> SmallSam:
    """A :class:`SmallSam` for square images of side ``image_size`` (a multiple of 4).

    The zoo entry ``promptable`` is built with this function. ``dense_points``
    and ``scored_iou`` are this model's two deviations from SAM (see
    :class:`~seglib.models.promptable.prompt_encoder.PromptEncoder` and
    :class:`~seglib.models.promptable.mask_decoder.MaskDecoder`); ``False``
    for both gives SAM's design.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8 or image_size % 4:
        raise ValueError(f"image_size must be an int multiple of 4, at least 8, got {image_size!r}")
    widths = tuple(widths)
    return SmallSam(
        ImageEncoder(embed_dim, widths, encoder_depth, heads, image_size),
        PromptEncoder(embed_dim, image_size, image_size // 4, dense_points=dense_points),
        MaskDecoder(embed_dim, (widths[1], widths[0]), depth=decoder_depth, heads=heads, mlp_dim=mlp_dim,
                    scored_iou=scored_iou),
    )


