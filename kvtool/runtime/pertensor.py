"""The naive baseline: every key (and every value) of a layer quantized with one calibrated range, no window."""

from __future__ import annotations

import torch

from kvtool.artifacts import Artifact
from kvtool.models import Layout
from kvtool.runtime.codec import HeadGroup, Packed, TensorCodec, register_method
from kvtool.runtime.packing import pack_bits, unpack_bits


class PerTensorCodec(TensorCodec):
    def __init__(self, bits: int, lo: float, hi: float) -> None:
        self.bits, self.lo = bits, lo
        self.scale = max(hi - lo, 1e-8) / ((1 << bits) - 1)

    def compressed_count(self, visible: torch.Tensor) -> torch.Tensor:
        return visible

    def encode(self, x: torch.Tensor, start: int) -> Packed:
        codes = ((x.float() - self.lo) / self.scale).round().clamp(0, (1 << self.bits) - 1).to(torch.uint8)
        return {"codes": pack_bits(codes, self.bits)}

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        return unpack_bits(packed["codes"], self.bits).float() * self.scale + self.lo


@register_method("pertensor")
def pertensor_plan(artifact: Artifact, layer_idx: int, model: torch.nn.Module) -> list[HeadGroup]:
    bits = artifact.params["bits"]
    key_lo, key_hi = artifact.tensors["key_range"][layer_idx].tolist()
    value_lo, value_hi = artifact.tensors["value_range"][layer_idx].tolist()
    heads = list(range(Layout.of(model).num_kv_heads))
    return [HeadGroup(heads, PerTensorCodec(bits, key_lo, key_hi), PerTensorCodec(bits, value_lo, value_hi))]
