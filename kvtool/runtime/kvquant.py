"""KVQuant (arXiv 2401.18079): non-uniform (nuq) b-bit codes from a calibrated per-layer codebook, dense-and-sparse.

Keys are quantized per channel before RoPE: each channel is normalized by its calibrated outlier thresholds, and
RoPE is applied again after dequantization at each token's position. Values are quantized per token: the top and
bottom `outliers / 2` of each token's elements are its outliers, and the rest are normalized by their own range.
Outliers stay fp16 in a sparse structure of a fixed number of (index, value) slots per token, so that every packed
tensor keeps the token axis at dim 2 (docs/methods/kvquant.md):
  values: exactly ceil(outliers / 2 * C) slots per side per token, C = KV heads x head_dim (as the reference does);
  keys:   the ceil(key_outlier_budget * outliers * C) elements of largest normalized magnitude per token; elements
          beyond the thresholds that do not fit are clamped to the codebook's range (the reference's cap_outliers).
With `value_vector=head` / `key_vector=head` (options), C = head_dim and the slots are per token and head.
The sparse index is the element's offset in the token's flattened [heads x head_dim] vector (the k/v_proj output).
"""

from __future__ import annotations

import copy
import math

import torch

from kvtool.artifacts import Artifact
from kvtool.models import Layout
from kvtool.runtime import kernels
from kvtool.runtime.codec import HeadGroup, Packed, PackedLayout, TensorCodec, register_method
from kvtool.runtime.packing import pack_bits, trimmed_range, unpack_bits
from kvtool.runtime.rope import apply_rope, fixed_frequencies, rope_from, unapply_rope

MIN_HALF_RANGE = 1e-6  # a constant channel or token still normalizes to finite values


class Codebook:
    """A sorted 1-D nuq codebook: nearest-signpost codes, and Q-Norm-corrected levels to read them back."""

    def __init__(self, signposts: torch.Tensor, norm_scale: float = 1.0, norm_offset: float = 0.0) -> None:
        self.signposts = signposts.float()
        self.boundaries = (self.signposts[1:] + self.signposts[:-1]) / 2  # nearest signpost = bucket between midpoints
        self.levels = self.signposts * norm_scale + norm_offset

    def encode(self, normalized: torch.Tensor) -> torch.Tensor:
        return torch.bucketize(normalized.contiguous(), self.boundaries.to(normalized.device)).to(torch.uint8)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.levels.to(codes.device)[codes.long()]


def index_dtype(channels: int) -> torch.dtype:
    """The smallest integer type that holds an offset into a token's flattened vector."""
    return torch.uint8 if channels <= 256 else torch.int16 if channels <= 32768 else torch.int32


def per_token(x: torch.Tensor) -> torch.Tensor:
    """[B, H, n, D] -> [B, n, H * D]: each token's vector as the k/v projection wrote it."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def per_head(flat: torch.Tensor, heads: int) -> torch.Tensor:
    """Inverse of per_token."""
    b, n, c = flat.shape
    return flat.reshape(b, n, heads, c // heads).transpose(1, 2)


def value_outliers(flat: torch.Tensor, per_side: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per token [..., C]: the offsets of its `per_side` largest and smallest elements, and the midpoint and half
    range of the others (the reference's median-recentred min/max, which is the min/max of the non-outliers). Equal
    elements go lowest offset first, as the encode kernel takes them; slots run in ascending order of value."""
    offsets, lo, hi = trimmed_range(flat, per_side, per_side)
    return offsets, (hi + lo) / 2, ((hi - lo) / 2).clamp_min(MIN_HALF_RANGE)


class NuqCodec(TensorCodec):
    """Dense nuq codes per head plus sparse fp16 outliers per token; subclasses say how tokens are normalized.
    `per_head_vectors`: a token's `slots` outliers are taken per head (head h's in slots h * slots ..), not over all
    the group's heads, so that a head's decode compares its own slots only."""

    graph_encodable = True

    def __init__(self, bits: int, codebook: Codebook, slots: int, per_head_vectors: bool = False) -> None:
        self.bits, self.codebook, self.slots, self.per_head_vectors = bits, codebook, slots, per_head_vectors

    def pack(self, x: torch.Tensor, normalized: torch.Tensor, offsets: torch.Tensor | None) -> Packed:
        """Codes of `normalized` [B, H, n, D]; the elements of x at per-token `offsets` [B, n, S] kept in fp16."""
        packed = {"codes": pack_bits(self.codebook.encode(normalized), self.bits)}
        if offsets is not None:
            packed["outlier_index"] = offsets.to(index_dtype(x.shape[1] * x.shape[3]))[:, None]
            packed["outlier_value"] = per_token(x).gather(-1, offsets).to(torch.float16)[:, None]
        return packed

    def encode_by_kernel(self, x: torch.Tensor, **kind: object) -> Packed:
        """The same packed tensors in one Triton launch (kernels/quantize.py) instead of some forty small ops;
        `kind`: what keys pass besides (rope, midpoint, half_range)."""
        from kvtool.runtime.kernels.quantize import nuq_encode

        return nuq_encode(x, self.bits, self.codebook.boundaries.to(x.device), self.slots,
                          index_dtype(x.shape[1] * x.shape[3]), per_head_vectors=self.per_head_vectors, **kind)

    def unpack(self, packed: Packed) -> torch.Tensor:
        """Normalized levels [B, H, n, D] of the dense codes."""
        return self.codebook.decode(unpack_bits(packed["codes"], self.bits))

    @staticmethod
    def restore_outliers(x: torch.Tensor, packed: Packed) -> torch.Tensor:
        """x [B, H, n, D] with the stored outliers written back exactly."""
        if "outlier_index" not in packed:
            return x
        flat = per_token(x).scatter(-1, packed["outlier_index"][:, 0].long(), packed["outlier_value"][:, 0].float())
        return per_head(flat, x.shape[1])


class NuqKeys(NuqCodec):
    """Per-channel nuq on pre-RoPE keys, with calibrated per-channel thresholds [H, D]; RoPE re-applied on decode."""

    def __init__(self, bits: int, codebook: Codebook, lower: torch.Tensor, upper: torch.Tensor, slots: int,
                 model: torch.nn.Module, per_head_vectors: bool = False) -> None:
        super().__init__(bits, codebook, slots, per_head_vectors)
        self.model = model
        if fixed_frequencies(model):  # else the reference path rotates them
            self.layout = PackedLayout("nuq_keys", bits)
        self.midpoint = ((upper + lower) / 2).float()[:, None]  # [H, 1, D] against [B, H, n, D]
        self.half_range = ((upper - lower) / 2).float().clamp_min(MIN_HALF_RANGE)[:, None]

    def for_heads(self, positions: list[int]) -> NuqKeys:
        """Per-token outlier slots span the group, so a subset of heads is its own group: thresholds sliced."""
        subset = copy.copy(self)
        subset.midpoint, subset.half_range = self.midpoint[positions], self.half_range[positions]
        return subset

    def encode(self, x: torch.Tensor, start: int | torch.Tensor) -> Packed:
        rope = rope_from(self.model, start, x.shape[2], x.device)
        if kernels.token_encodable(x):
            return self.encode_by_kernel(x, rope=rope, midpoint=self.midpoint.to(x.device),
                                      half_range=self.half_range.to(x.device))
        return self.quantize(unapply_rope(x.float(), *rope))

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        pre_rope = self.dequantize(packed)
        return apply_rope(pre_rope, *rope_from(self.model, start, pre_rope.shape[2], pre_rope.device))

    def quantize(self, pre_rope: torch.Tensor) -> Packed:
        normalized = (pre_rope - self.midpoint.to(pre_rope.device)) / self.half_range.to(pre_rope.device)
        offsets = None
        if self.slots:  # the largest magnitudes, equal ones lowest offset first (as the encode kernel takes them)
            vectors = token_vectors(normalized, self.per_head_vectors)  # [B, n, V, L]
            offsets = vectors.abs().sort(dim=-1, descending=True, stable=True).indices[..., : self.slots]
            offsets = flat_offsets(offsets, vectors.shape[3])
        return self.pack(pre_rope, normalized, offsets)

    def dequantize(self, packed: Packed) -> torch.Tensor:
        """Pre-RoPE float32 keys [B, H, n, D]."""
        levels = self.unpack(packed)
        x = levels * self.half_range.to(levels.device) + self.midpoint.to(levels.device)
        return self.restore_outliers(x, packed)


def token_vectors(x: torch.Tensor, per_head_vectors: bool) -> torch.Tensor:
    """[B, H, n, D] -> [B, n, V, L]: each token's vectors, one per head (V = H) or one for all heads (V = 1)."""
    return x.transpose(1, 2) if per_head_vectors else per_token(x)[:, :, None]


def flat_offsets(offsets: torch.Tensor, length: int) -> torch.Tensor:
    """Offsets [B, n, V, S] within each of a token's V vectors of `length` -> [B, n, V * S] into the token's flattened
    [heads x head_dim] vector, as the sparse part stores them (vector v's slots v * S ..)."""
    return (offsets + torch.arange(offsets.shape[2], device=offsets.device)[:, None] * length).flatten(2)


class NuqValues(NuqCodec):
    """Per-token nuq on values; each token's outliers and range computed online, over all the group's heads (the
    paper) or per head (`per_head_vectors`); `slots` is per vector."""

    def __init__(self, bits: int, codebook: Codebook, slots: int, per_head_vectors: bool = False) -> None:
        super().__init__(bits, codebook, slots, per_head_vectors)
        self.layout = PackedLayout("nuq_values", bits)

    def for_heads(self, positions: list[int]) -> NuqValues:
        return self  # no per-head parameters: a token's range and outliers then span the subset's heads

    def encode(self, x: torch.Tensor, start: int | torch.Tensor) -> Packed:
        if kernels.token_encodable(x):
            return self.encode_by_kernel(x)
        x = x.float()
        b, h, n, d = x.shape
        vectors = token_vectors(x, self.per_head_vectors)
        offsets, midpoint, half_range = value_outliers(vectors, self.slots // 2)
        stored = torch.stack([midpoint, half_range], dim=-1).to(torch.float16)  # normalize by what decode will read
        midpoint, half_range = stored.float().unbind(-1)
        normalized = per_head(((vectors - midpoint[..., None]) / half_range[..., None]).reshape(b, n, h * d), h)
        offsets = flat_offsets(offsets, vectors.shape[3])
        packed = self.pack(x, normalized, offsets if self.slots else None)
        packed["range"] = stored.transpose(1, 2)  # [B, V, n, 2]
        return packed

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        levels = self.unpack(packed)
        midpoint, half_range = packed["range"].float().unbind(-1)  # [B, V, n] each, V = 1 or heads
        x = levels * half_range[..., None] + midpoint[..., None]
        return self.restore_outliers(x, packed)


def key_slots(params: dict, channels: int) -> int:
    return math.ceil(params["key_outlier_budget"] * params["outliers"] * channels) if params["outliers"] else 0


def value_slots(params: dict, channels: int) -> int:
    return 2 * math.ceil(params["outliers"] / 2 * channels) if params["outliers"] else 0


@register_method("kvquant")
def kvquant_plan(artifact: Artifact, layer_idx: int, model: torch.nn.Module) -> list[HeadGroup]:
    p, t = artifact.params, artifact.tensors
    layout = Layout.of(model)
    channels = layout.num_kv_heads * layout.head_dim
    (key_scale, key_offset), (value_scale, value_offset) = t["qnorm"][layer_idx].tolist()
    keys_per_head, values_per_head = p["key_vector"] == "head", p["value_vector"] == "head"
    keys = NuqKeys(p["bits"], Codebook(t["key_signposts"][layer_idx], key_scale, key_offset),
                   t["key_lower"][layer_idx], t["key_upper"][layer_idx],
                   key_slots(p, layout.head_dim if keys_per_head else channels), model, keys_per_head)
    values = NuqValues(p["bits"], Codebook(t["value_signposts"][layer_idx], value_scale, value_offset),
                       value_slots(p, layout.head_dim if values_per_head else channels), values_per_head)
    return [HeadGroup(list(range(layout.num_kv_heads)), keys, values, sink=p["sink"])]
