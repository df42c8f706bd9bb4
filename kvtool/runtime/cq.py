"""Coupled Quantization (arXiv 2405.03917): per layer, every group of c contiguous channels of the keys (and of the
values) is one code into that group's 2**b learned centroids; optionally the most recent tokens stay fp16.

The window slides: a query reads its `residual` most recent tokens (itself included) in fp16, every older one from
its codes. Keys are coded before RoPE, which measured closer attention logits than coding them after
(docs/methods/cq.md); a table of query·centroid would then differ per key position, so keys are decoded and rotated
(the decode kernel does both in its tiles).
"""

from __future__ import annotations

import torch

from kvtool.artifacts import Artifact
from kvtool.models import Layout
from kvtool.runtime.codebook import CodebookCodec, layer_codebooks
from kvtool.runtime.codec import HeadGroup, Packed, PackedLayout, nonnegative, register_method
from kvtool.runtime.rope import apply_rope, fixed_frequencies, rope_from, unapply_rope


class CoupledCodec(CodebookCodec):
    graph_encodable = True

    def __init__(self, codebooks: torch.Tensor, bits: int, residual: int) -> None:
        super().__init__(codebooks, bits)
        self.residual = residual

    def compressed_count(self, visible: int | torch.Tensor) -> int | torch.Tensor:
        return nonnegative(visible - self.residual)


class PreRopeKeys(CoupledCodec):
    """Keys arrive rotated: the rotation is undone before coding and redone after decoding."""

    def __init__(self, codebooks: torch.Tensor, bits: int, residual: int, model: torch.nn.Module) -> None:
        super().__init__(codebooks, bits, residual)
        self.model = model
        # a score needs the key's own rotation, not a per-step table: the kernel decodes and rotates each key
        readable = self.layout is not None and fixed_frequencies(model)  # indices of up to 8 bits, a fixed RoPE
        self.layout = PackedLayout("codebook_prerope", bits, self.width) if readable else None

    def encode(self, x: torch.Tensor, start: int | torch.Tensor) -> Packed:
        return super().encode(unapply_rope(x.float(), *rope_from(self.model, start, x.shape[2], x.device)), start)

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        keys = super().decode(packed, start)
        return apply_rope(keys, *rope_from(self.model, start, keys.shape[2], keys.device))

    def scores(self, query: torch.Tensor, packed: Packed, start: int) -> torch.Tensor:
        return query @ self.decode(packed, start).transpose(-1, -2)


@register_method("cq")
def cq_plan(artifact: Artifact, layer_idx: int, model: torch.nn.Module) -> list[HeadGroup]:
    heads = Layout.of(model).num_kv_heads
    bits, residual = artifact.params["bits"], artifact.params["residual"]
    keys, values = (layer_codebooks(artifact, name, layer_idx, heads) for name in ("key_codebooks", "value_codebooks"))
    return [HeadGroup(list(range(heads)), PreRopeKeys(keys, bits, residual, model), CoupledCodec(values, bits, residual))]
