"""The mask decoder: a light two-way transformer and four mask outputs.

The decoder receives the image embedding ``(B, D, h, w)`` (plus the dense
prompt and the positional encoding) and the prompt tokens ``(B, N, D)``.
It prepends learned *output tokens* to the prompt tokens: one IoU token and
four mask tokens (one for an unambiguous prompt, three for the
part / object / whole answers of an ambiguous one). Then a *two-way*
transformer lets information flow both ways, in each block:

1. self-attention among the tokens;
2. cross-attention from the tokens to the image (tokens read the image);
3. an MLP on the tokens;
4. cross-attention from the image to the tokens (the image reads the prompt).

Finally the embedding is upsampled 4x (transposed convolutions, adding the
encoder's high-resolution features as SAM 2 does), each mask token passes
through its own small MLP (a *hypernetwork*) to become the weights of a
dot product with every upsampled pixel, which gives that token's mask
logits; the IoU token's MLP predicts how good each mask is. With
``scored_iou=True`` (the small SAM's default) that MLP also reads each mask:
SAM's token-only head, trained from scratch on our budget, learned only the
average quality and could not rank the three answers of a click.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seglib.models.common import LayerNorm2d


class MLP(nn.Module):
    """``layers`` linear layers with ReLU in between: ``(..., in_dim)`` to ``(..., out_dim)``."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Attention(nn.Module):
    """Multi-head attention whose queries, keys and values may come from different sequences.

    ``downsample_rate`` shrinks the internal width (SAM uses 2 for the
    cross-attentions, which are the costly ones).
    """

    def __init__(self, dim: int, heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        inner = dim // downsample_rate
        if inner % heads:
            raise ValueError(f"dim / downsample_rate = {inner} must be divisible by heads = {heads}")
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, inner), nn.Linear(dim, inner), nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``q`` ``(B, Nq, dim)``, ``k`` and ``v`` ``(B, Nk, dim)`` to ``(B, Nq, dim)``."""
        out = F.scaled_dot_product_attention(self._split(self.q_proj(q)), self._split(self.k_proj(k)),
                                             self._split(self.v_proj(v)))
        return self.out_proj(out.transpose(1, 2).flatten(2))


class TwoWayAttentionBlock(nn.Module):
    """One block of the two-way transformer (steps 1-4 of the module docstring)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.cross_token_to_image = Attention(dim, heads, downsample_rate=2)
        self.cross_image_to_token = Attention(dim, heads, downsample_rate=2)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(4))
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(B, N, D)`` and image ``(B, h*w, D)`` in and out; ``*_pe`` are added to q and k."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norms[0](queries)
        queries = self.norms[1](queries + self.cross_token_to_image(queries + query_pe, keys + key_pe, keys))
        queries = self.norms[2](queries + self.mlp(queries))
        keys = self.norms[3](keys + self.cross_image_to_token(keys + key_pe, queries + query_pe, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks and a final token-to-image attention.

    Forward: image ``(B, D, h, w)``, its positional encoding ``(1 or B, D, h, w)``
    and tokens ``(B, N, D)`` to updated tokens ``(B, N, D)`` and image tokens
    ``(B, h*w, D)``.
    """

    def __init__(self, depth: int, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(dim, heads, mlp_dim, skip_first_layer_pe=(i == 0)) for i in range(depth)
        )
        self.final_attn = Attention(dim, heads, downsample_rate=2)
        self.norm_final = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor,
                tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keys = image.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2).expand_as(keys)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        queries = self.norm_final(queries + self.final_attn(queries + tokens, keys + key_pe, keys))
        return queries, keys


class MaskDecoder(nn.Module):
    """Image embedding and prompt embeddings to 4 mask logits and 4 IoU predictions.

    Args:
        embed_dim: D, width of the embedding and of the tokens.
        high_res_channels: channels of the encoder's stride-2 and stride-1 maps.
        num_multimask_outputs: masks for an ambiguous prompt (SAM: 3).
        depth, heads, mlp_dim: size of the two-way transformer.
        iou_hidden: width of the IoU prediction head.
        scored_iou: predict each mask's IoU from the IoU token *and* what the
            mask covers (its token, the decoder features averaged under it,
            its area and stability), as Mask Scoring R-CNN scores masks;
            ``False`` is SAM's head, which reads the IoU token only.
    """

    def __init__(self, embed_dim: int = 64, high_res_channels: tuple[int, int] = (32, 16),
                 num_multimask_outputs: int = 3, depth: int = 2, heads: int = 4, mlp_dim: int = 128,
                 iou_hidden: int = 64, scored_iou: bool = False) -> None:
        super().__init__()
        if embed_dim % 8:
            raise ValueError(f"embed_dim must be a multiple of 8 (the upsampler divides it by 8), got {embed_dim}")
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, embed_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, embed_dim)
        self.transformer = TwoWayTransformer(depth, embed_dim, heads, mlp_dim)
        d4, d8 = embed_dim // 4, embed_dim // 8
        self.upscale1 = nn.ConvTranspose2d(embed_dim, d4, 2, stride=2)
        self.upscale_norm = LayerNorm2d(d4)
        self.upscale2 = nn.ConvTranspose2d(d4, d8, 2, stride=2)
        self.high_res_proj = nn.ModuleList([nn.Conv2d(high_res_channels[0], d4, 1),
                                            nn.Conv2d(high_res_channels[1], d8, 1)])
        self.hypernetworks = nn.ModuleList(MLP(embed_dim, embed_dim, d8, 3) for _ in range(self.num_mask_tokens))
        self.scored_iou = scored_iou
        if scored_iou:  # per mask: IoU token, mask token, pooled features (d8), area, stability
            self.iou_head = MLP(2 * embed_dim + d8 + 2, iou_hidden, 1, 3)
        else:
            self.iou_head = MLP(embed_dim, iou_hidden, self.num_mask_tokens, 3)

    def forward(self, image_embedding: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor, high_res: tuple[torch.Tensor, torch.Tensor], return_tokens: bool = False
                ) -> tuple[torch.Tensor, ...]:
        """Decode all four masks.

        Args:
            image_embedding: float ``(B, D, h, w)``.
            image_pe: float ``(1, D, h, w)`` positional encoding of the grid.
            sparse: float ``(B, N, D)`` prompt tokens.
            dense: float ``(B, D, h, w)`` dense prompt embedding.
            high_res: ``(B, C1, 2h, 2w)`` and ``(B, C0, 4h, 4w)`` encoder features.
            return_tokens: also return every token after the transformer.

        Returns:
            ``(masks, iou)``: mask logits float ``(B, 4, 4h, 4w)`` (index 0 for
            an unambiguous prompt, 1-3 for the ambiguous answers) and predicted
            IoU float ``(B, 4)``; with ``return_tokens`` also the tokens float
            ``(B, 5 + N, D)`` (IoU token, 4 mask tokens, then the N prompt tokens:
            SAM 2 reads its object pointer and object score from them).
        """
        b = sparse.shape[0]
        if image_embedding.shape[0] != b:
            raise ValueError(f"image_embedding holds {image_embedding.shape[0]} images but there are {b} "
                             "prompt sets; expand the features with ImageFeatures.expand first")
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)
        src = image_embedding + dense
        h, w = src.shape[-2:]
        tokens, image_tokens = self.transformer(src, image_pe, tokens)
        iou_out, mask_out = tokens[:, 0], tokens[:, 1:1 + self.num_mask_tokens]

        src = image_tokens.transpose(1, 2).reshape(b, -1, h, w)
        up = F.gelu(self.upscale_norm(self.upscale1(src) + self.high_res_proj[0](high_res[0])))
        up = F.gelu(self.upscale2(up) + self.high_res_proj[1](high_res[1]))
        weights = torch.stack([net(mask_out[:, i]) for i, net in enumerate(self.hypernetworks)], dim=1)
        masks = (weights @ up.flatten(2)).view(b, self.num_mask_tokens, *up.shape[-2:])
        if not self.scored_iou:
            iou = self.iou_head(iou_out)
        else:
            iou = self.iou_head(self._mask_scores(iou_out, mask_out, masks.detach(), up.detach())).squeeze(-1)
        return (masks, iou, tokens) if return_tokens else (masks, iou)

    @staticmethod
    def _mask_scores(iou_out: torch.Tensor, mask_out: torch.Tensor, masks: torch.Tensor,
                     features: torch.Tensor) -> torch.Tensor:
        """Inputs of the scored IoU head: float ``(B, K, 2D + d8 + 2)`` for ``K`` masks.

        ``iou_out`` ``(B, D)``, ``mask_out`` ``(B, K, D)``, ``masks`` logits
        ``(B, K, H, W)``, ``features`` ``(B, d8, H, W)``. Stability is SAM's:
        the area above logit +1 over the area above logit -1.
        """
        probs = torch.sigmoid(masks).flatten(2)                                    # (B, K, HW)
        area = probs.sum(-1, keepdim=True)
        pooled = probs @ features.flatten(2).transpose(1, 2) / (area + 1)           # (B, K, d8)
        stability = ((masks > 1).flatten(2).sum(-1) / ((masks > -1).flatten(2).sum(-1) + 1))[..., None]
        return torch.cat([iou_out[:, None].expand_as(mask_out), mask_out, pooled,
                          area / probs.shape[-1], stability.to(pooled.dtype)], dim=-1)
