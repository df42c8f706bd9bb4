"""KIVI (arXiv 2402.02750): keys per channel over groups of G tokens, values per token over groups of G channels,
asymmetric min-max round-to-nearest, and the R most recent tokens in full precision.

Windows as in the reference code (models/llama_kivi.py): keys gather in an fp16 buffer that is quantized R tokens at a
time once full, after the attention of the token that fills it; values keep a sliding window of the last R tokens
plus the newest one.
"""

from __future__ import annotations

import torch

from kvtool.artifacts import Artifact
from kvtool.models import Layout
from kvtool.runtime import kernels
from kvtool.runtime.codec import HeadGroup, Packed, PackedLayout, TensorCodec, nonnegative, register_method
from kvtool.runtime.packing import minmax_dequantize, minmax_quantize, pack_planes, unpack_planes


class KiviKeys(TensorCodec):
    graph_encodable = True

    def __init__(self, bits: int, group_size: int, residual: int) -> None:
        self.bits, self.group_size, self.residual = bits, group_size, residual
        self.unit = residual or group_size
        self.layout = PackedLayout("channel_groups", bits, group_size)

    def compressed_count(self, visible: int | torch.Tensor) -> int | torch.Tensor:
        if not self.residual:  # no window: every complete group is quantized
            return visible - visible % self.unit
        before = nonnegative(visible - 1)  # the buffer is flushed after the attention that fills it
        return before - before % self.unit

    def encode(self, x: torch.Tensor, start: int | torch.Tensor) -> Packed:
        if kernels.quantizable(x, self.bits, self.group_size):  # one launch instead of ~30 small ones
            from kvtool.runtime.kernels.quantize import quantize_channel_groups

            return quantize_channel_groups(x, self.bits, self.group_size)
        b, h, n, d = x.shape
        groups = x.reshape(b, h, n // self.group_size, self.group_size, d)
        codes, scale, lo = minmax_quantize(groups, self.bits, dim=3)
        return {
            "codes": pack_planes(codes.reshape(b, h, n, d), self.bits),
            "scale": scale.squeeze(3),
            "min": lo.squeeze(3),
        }

    def for_heads(self, positions: list[int]) -> KiviKeys:
        return self  # no per-head parameters (so a Duo split keeps the fused kernel's layout)

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        codes = unpack_planes(packed["codes"], self.bits)
        b, h, n, d = codes.shape
        groups = codes.reshape(b, h, n // self.group_size, self.group_size, d)
        x = minmax_dequantize(groups, packed["scale"].unsqueeze(3), packed["min"].unsqueeze(3))
        return x.reshape(b, h, n, d)


class KiviValues(TensorCodec):
    graph_encodable = True

    def __init__(self, bits: int, group_size: int, residual: int) -> None:
        self.bits, self.group_size, self.residual = bits, group_size, residual
        self.layout = PackedLayout("token_groups", bits, group_size)  # groups wider than head_dim hold one per token

    def compressed_count(self, visible: int | torch.Tensor) -> int | torch.Tensor:
        return nonnegative(visible - 1 - self.residual)  # the newest token plus R before it stay fp16

    def encode(self, x: torch.Tensor, start: int | torch.Tensor) -> Packed:
        b, h, n, d = x.shape
        group = min(self.group_size, d)
        if kernels.quantizable(x, self.bits, group):  # one launch per decode step instead of ~30 small ones
            from kvtool.runtime.kernels.quantize import quantize_token_groups

            return quantize_token_groups(x, self.bits, group)
        codes, scale, lo = minmax_quantize(x.reshape(b, h, n, d // group, group), self.bits, dim=4)
        return {"codes": pack_planes(codes.reshape(b, h, n, d), self.bits), "scale": scale[..., 0], "min": lo[..., 0]}

    def for_heads(self, positions: list[int]) -> KiviValues:
        return self  # no per-head parameters

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        codes = unpack_planes(packed["codes"], self.bits)
        b, h, n, d = codes.shape
        groups = codes.reshape(b, h, n, packed["scale"].shape[-1], -1)
        return minmax_dequantize(groups, packed["scale"][..., None], packed["min"][..., None]).reshape(b, h, n, d)


@register_method("kivi")
def kivi_plan(artifact: Artifact, layer_idx: int, model: torch.nn.Module) -> list[HeadGroup]:
    p = artifact.params
    heads = list(range(Layout.of(model).num_kv_heads))
    return [HeadGroup(heads, KiviKeys(p["bits"], p["group_size"], p["residual"]),
                      KiviValues(p["bits"], p["group_size"], p["residual"]))]
