"""SAM 2's memory, small: a promptable model that carries an object through a video.

SAM 2 treats an image as a one-frame video. The user prompts a frame; every
other frame is segmented from what the model remembers:

* the **memory encoder** fuses a frame's image embedding with the mask the
  model predicted there into a memory map ``(B, D, h, w)``;
* the **memory bank** keeps the memories of the prompted frames for good and
  those of the last ``capacity`` frames, plus one **object pointer** per
  frame (the mask decoder's output token of the object, projected);
* **memory attention** lets each cell of the current frame's embedding
  attend (self-attention, then cross-attention to every memory cell and
  pointer, then an MLP) before the embedding goes to the mask decoder, which
  then needs no prompt;
* an **occlusion head** reads a learned *object-score token* that passes
  through the decoder with the prompt tokens, together with three numbers
  of the decoder's mask (:func:`presence_features`: its peak logit, its soft
  area and its predicted IoU), and says whether the object is visible at
  all; when it says "hidden" the mask is empty and the memory stores a "no
  object" embedding instead of a mask. The head reads the token detached: its
  loss trains the head alone and leaves the decoder to the masks.

:class:`VideoSam` wraps a trained :class:`~seglib.models.promptable.SmallSam`
(the weights of the image encoder and prompt encoder stay fixed in training,
the image encoder's batch-norm statistics follow the clips; the mask
decoder is fine-tuned with the new parts). Shapes for 64 x 64 frames, D = 64:

==================  ================================================
memory map          float ``(B, D, 16, 16)`` per stored frame
object pointer      float ``(B, D)`` per stored frame
memory tokens       float ``(B, M, D)``, ``M = frames * 64 + frames`` (maps pooled 2x)
mask logits         float ``(B, 64, 64)`` (output 0 of the decoder)
object score        float ``(B,)`` logit: > 0 means visible
==================  ================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from seglib.models.common import LayerNorm2d
from seglib.models.promptable.image_encoder import ImageFeatures
from seglib.models.promptable.mask_decoder import MLP, Attention
from seglib.models.promptable.model import SmallSam, build_small_sam

HIDDEN_LOGIT = -20.0
"""Mask logit of every pixel of a frame the occlusion head calls hidden (SAM 2 uses -1024)."""


PRESENCE_FEATURES = 3
"""Numbers of :func:`presence_features` that the occlusion head reads besides the object-score token."""


def presence_features(raw_logits: torch.Tensor, predicted_iou: torch.Tensor) -> torch.Tensor:
    """What the decoder's own mask says about the object's presence, detached: float ``(B, 3)``.

    The peak logit / 10, ``log(1 + soft area in pixels)`` / 5 and the predicted
    IoU, from ``raw_logits`` ``(B, H, W)`` and ``predicted_iou`` ``(B,)``. A mask
    that is weak everywhere hints that the object is gone; the head learns how
    much to trust the hint (the gradient of its loss does not reach the mask).
    """
    raw = raw_logits.detach().flatten(1)
    soft_area = torch.sigmoid(raw).sum(dim=1)
    return torch.stack([raw.max(dim=1).values / 10, torch.log1p(soft_area) / 5, predicted_iou.detach()], dim=1)


class MemoryEncoder(nn.Module):
    """A frame's embedding ``(B, D, h, w)`` and mask probabilities ``(B, 1, 4h, 4w)`` to a memory map ``(B, D, h, w)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mask_down = nn.Sequential(nn.Conv2d(1, dim // 4, 3, stride=2, padding=1), LayerNorm2d(dim // 4),
                                       nn.GELU(), nn.Conv2d(dim // 4, dim, 3, stride=2, padding=1))
        self.fuse = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), LayerNorm2d(dim), nn.GELU(),
                                  nn.Conv2d(dim, dim, 1))

    def forward(self, embedding: torch.Tensor, mask_probs: torch.Tensor) -> torch.Tensor:
        return self.fuse(embedding + self.mask_down(mask_probs))


class MemoryAttentionLayer(nn.Module):
    """Self-attention of the frame's cells, cross-attention to the memory, an MLP (pre-norm, as SAM 2)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.cross_attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        for last in (self.self_attn.out_proj, self.cross_attn.out_proj, self.mlp[2]):
            nn.init.zeros_(last.weight)  # the layer starts as the identity: the decoder sees the plain embedding
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor, pe: torch.Tensor, memory: torch.Tensor, memory_pe: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, hw, D)`` with ``pe`` ``(1, hw, D)``; ``memory`` and ``memory_pe`` ``(B, M, D)``."""
        q = self.norms[0](x)
        x = x + self.self_attn(q + pe, q + pe, q)
        q = self.norms[1](x)
        x = x + self.cross_attn(q + pe, memory + memory_pe, memory)
        return x + self.mlp(self.norms[2](x))


class FrameOutput(NamedTuple):
    """One frame of :meth:`VideoSam.step` for B clips.

    ``mask_logits`` ``(B, H, W)`` (:data:`HIDDEN_LOGIT` where the object is
    called hidden), ``object_score`` ``(B,)`` logit, ``raw_logits`` ``(B, H, W)``
    (the decoder's mask before the occlusion head's decision), ``memory``
    ``(B, D, h, w)`` and ``pointer`` ``(B, D)``: what the bank stores of this frame.
    """

    mask_logits: torch.Tensor
    object_score: torch.Tensor
    raw_logits: torch.Tensor
    memory: torch.Tensor
    pointer: torch.Tensor


@dataclass
class MemoryBank:
    """The memories of B clips: prompted frames (kept) and the last ``capacity`` frames.

    Entries are ``(memory (B, D, h, w), pointer (B, D), age)``; ``age`` is
    how many frames ago the entry was stored, up to the model's
    ``max_age`` (it selects the temporal encoding).
    """

    capacity: int = 4
    prompted: list = field(default_factory=list)
    recent: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompted) + len(self.recent)

    def add(self, output: FrameOutput, prompted: bool) -> None:
        """Store a frame (age 0); earlier entries age by one frame."""
        self.prompted = [(m, p, age + 1) for m, p, age in self.prompted]
        self.recent = [(m, p, age + 1) for m, p, age in self.recent]
        entry = (output.memory, output.pointer, 0)
        if prompted:
            self.prompted.append(entry)
        else:
            self.recent = (self.recent + [entry])[-self.capacity:] if self.capacity else []


class VideoSam(nn.Module):
    """A :class:`SmallSam` with SAM 2's memory: see the module docstring.

    Args:
        sam: the promptable model (its ``image_encoder`` and ``prompt_encoder``
            are used as they are, its ``mask_decoder`` is fine-tuned).
        layers: memory attention layers.
        heads, mlp_dim: of the memory attention.
        max_age: ages of memory entries told apart by the temporal encoding
            (older entries share the last one).
        memory_stride: memory maps are average-pooled by this factor before
            attention reads them (stride 2: 64 cells a frame instead of 256,
            4 times cheaper attention).
    """

    def __init__(self, sam: SmallSam, layers: int = 2, heads: int = 4, mlp_dim: int = 128, max_age: int = 8,
                 memory_stride: int = 2) -> None:
        super().__init__()
        self.sam = sam
        dim = sam.prompt_encoder.embed_dim
        self.memory_encoder = MemoryEncoder(dim)
        self.attention = nn.ModuleList(MemoryAttentionLayer(dim, heads, mlp_dim) for _ in range(layers))
        self.no_memory = nn.Parameter(torch.zeros(1, dim, 1, 1))       # added on a frame with an empty bank
        self.no_object = nn.Parameter(torch.zeros(1, dim, 1, 1))       # stored where the object is hidden
        self.prompted_code = nn.Parameter(torch.zeros(1, 1, dim))      # marks memories of prompted frames
        self.age_code = nn.Parameter(torch.zeros(max_age + 1, 1, dim))
        self.object_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.object_head = MLP(dim + PRESENCE_FEATURES, dim, 1, 3)
        self.pointer_proj = MLP(dim, dim, dim, 2)
        for p in (self.no_memory, self.no_object, self.prompted_code, self.age_code, self.object_token):
            nn.init.normal_(p, std=0.02)
        self.max_age = max_age
        self.memory_stride = memory_stride

    @property
    def image_size(self) -> int:
        return self.sam.image_size

    def encode(self, frames: torch.Tensor) -> ImageFeatures:
        """The image encoder (weights fixed in training): frames float ``(B, 3, H, W)`` to :class:`ImageFeatures`."""
        return self.sam.encode(frames)

    def _memory_tokens(self, bank: MemoryBank) -> tuple[torch.Tensor, torch.Tensor]:
        pool = self.memory_stride                                   # memories are read on a coarser grid
        pe = F.avg_pool2d(self.sam.prompt_encoder.get_dense_pe(), pool).flatten(2).transpose(1, 2)
        tokens, codes = [], []
        for entries, prompted in ((bank.prompted, True), (bank.recent, False)):
            for memory, pointer, age in entries:
                code = self.age_code[min(age, self.max_age)] + (self.prompted_code[0] if prompted else 0)
                tokens += [F.avg_pool2d(memory, pool).flatten(2).transpose(1, 2), pointer[:, None]]
                codes += [pe + code, code.expand(1, 1, -1)]
        batch = tokens[0].shape[0]
        return torch.cat(tokens, dim=1), torch.cat([c.expand(batch, -1, -1) for c in codes], dim=1)

    def condition(self, embedding: torch.Tensor, bank: MemoryBank) -> torch.Tensor:
        """The frame's embedding ``(B, D, h, w)`` after memory attention (plus a learned code if the bank is empty).

        The attention layers are residual and start as the identity, so the
        fine-tuned decoder first sees the embedding it was trained on.
        """
        if not len(bank):
            return embedding + self.no_memory
        b, d, h, w = embedding.shape
        x = embedding.flatten(2).transpose(1, 2)
        pe = self.sam.prompt_encoder.get_dense_pe().flatten(2).transpose(1, 2)
        memory, memory_pe = self._memory_tokens(bank)
        for layer in self.attention:
            x = layer(x, pe, memory, memory_pe)
        return x.transpose(1, 2).reshape(b, d, h, w)

    def step(self, features: ImageFeatures, bank: MemoryBank, points: torch.Tensor | None = None,
             labels: torch.Tensor | None = None) -> FrameOutput:
        """Segment one frame of B clips from the memory and, where given, clicks.

        Args:
            features: :class:`ImageFeatures` of the frame, batch B.
            bank: the clips' :class:`MemoryBank` (not changed here: call
                ``bank.add(output, prompted)`` to store the frame).
            points: float ``(B, N, 2)`` ``(x, y)`` pixels; ``labels`` int64
                ``(B, N)`` (1, 0, or -1 for padding); ``None`` on an unprompted frame.

        Returns:
            A :class:`FrameOutput`.
        """
        embedding = features.embedding
        batch = embedding.shape[0]
        if points is None:  # SAM 2 feeds an unprompted frame a single padding point
            points = torch.zeros(batch, 1, 2, device=embedding.device)
            labels = torch.full((batch, 1), -1, dtype=torch.int64, device=embedding.device)
        sparse, dense = self.sam.prompt_encoder(points, labels)
        sparse = torch.cat([sparse, self.object_token.expand(batch, -1, -1)], dim=1)
        conditioned = self.condition(embedding, bank)
        masks, iou, tokens = self.sam.mask_decoder(conditioned, self.sam.prompt_encoder.get_dense_pe(), sparse, dense,
                                                   features.high_res, return_tokens=True)
        raw = masks[:, 0]
        token = tokens[:, -1].detach()                           # the head's loss stays out of the decoder
        score = self.object_head(torch.cat([token, presence_features(raw, iou[:, 0])], dim=1)).squeeze(-1)
        visible = (score > 0).view(-1, 1, 1)
        logits = torch.where(visible, raw, torch.full_like(raw, HIDDEN_LOGIT))
        probs = torch.sigmoid(logits.detach())[:, None]
        memory = self.memory_encoder(embedding, probs) + (~visible).view(-1, 1, 1, 1) * self.no_object
        pointer = self.pointer_proj(tokens[:, 1])
        return FrameOutput(logits, score, raw, memory, pointer)


def build_video_sam(sam_kwargs: dict | None = None, layers: int = 2, heads: int = 4, mlp_dim: int = 128,
                    max_age: int = 8, memory_stride: int = 2) -> VideoSam:
    """A :class:`VideoSam` around a freshly built small SAM (``build_small_sam(**sam_kwargs)``).

    The zoo entry ``memory`` is built with this function and starts from the
    ``promptable`` entry's weights.
    """
    if sam_kwargs is not None and not isinstance(sam_kwargs, dict):
        raise TypeError(f"sam_kwargs must be a dict of build_small_sam arguments, got {type(sam_kwargs).__name__}")
    for name, value in (("layers", layers), ("heads", heads), ("mlp_dim", mlp_dim), ("max_age", max_age),
                        ("memory_stride", memory_stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return VideoSam(build_small_sam(**(sam_kwargs or {})), layers, heads, mlp_dim, max_age, memory_stride)
