"""MILLION (arXiv 2504.03661): product quantization of post-RoPE keys and of values, attention by ADC, and a
window of the most recent tokens kept fp16 and encoded as a whole once full, on CUDA on a side stream (the paper's
non-blocking quantization; runtime/side_stream.py).

As in the reference (ZongwuWang/MILLION, DynamicPQCache.decoding): the window holds up to `residual` tokens; the
token that arrives when it is full first flushes it to codes, so a query reads 1..residual newest tokens in fp16.
The cache's single softmax over codes and window is the reference's log-sum-exp merge of the two partial results.
"""

from __future__ import annotations

import torch

from kvtool.artifacts import Artifact
from kvtool.models import Layout
from kvtool.runtime.codebook import CodebookCodec, layer_codebooks
from kvtool.runtime.codec import HeadGroup, nonnegative, register_method


class MillionCodec(CodebookCodec):
    encode_on_side_stream = True  # the paper's non-blocking quantization of the full window

    def __init__(self, codebooks: torch.Tensor, bits: int, residual: int) -> None:
        super().__init__(codebooks, bits)
        self.residual = residual
        self.unit = residual or 1  # the window is encoded whole

    def compressed_count(self, visible: int | torch.Tensor) -> int | torch.Tensor:
        if not self.residual:
            return visible
        before = nonnegative(visible - 1)  # the full window is flushed when the next token arrives
        return before - before % self.unit


@register_method("million")
def million_plan(artifact: Artifact, layer_idx: int, model: torch.nn.Module) -> list[HeadGroup]:
    heads = Layout.of(model).num_kv_heads
    bits, residual = artifact.params["bits"], artifact.params["residual"]
    keys, values = (layer_codebooks(artifact, name, layer_idx, heads) for name in ("key_codebooks", "value_codebooks"))
    return [HeadGroup(list(range(heads)), MillionCodec(keys, bits, residual), MillionCodec(values, bits, residual))]
