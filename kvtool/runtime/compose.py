"""Composing artifacts layer by layer: one artifact decides which tokens each head keeps (e.g. DuoAttention's
streaming heads), another how the kept tokens are encoded (any quantizer), each through its own registered plan.

For every pair of groups (one per plan) that share KV heads, the shared heads form a group with
  retention: the larger `sink` and the tighter `recent` of the two groups;
  codecs:    per kind (keys, values), the later plan's codec unless it is plain fp16 storage, else the earlier one's.
So `[duo, kivi]` and `[kivi, duo]` both give KIVI-coded retrieval heads and KIVI-coded streaming windows.
"""

from __future__ import annotations

import torch

from kvtool.errors import KvtoolError
from kvtool.runtime.codec import Fp16Codec, HeadGroup, Packed, TensorCodec


class HeadSubset(TensorCodec):
    """A codec made for a group of `group_heads` heads, applied to some of them (their `positions` in the group).

    Codecs may hold per-head parameters (codebooks, scales), so inputs are placed at their positions in a zero-filled
    tensor of the whole group; packed tensors keep only the selected heads (packed tensors are [B, H, n, ...]), so
    memory held is that of the selected heads alone.
    """

    def __init__(self, codec: TensorCodec, positions: list[int], group_heads: int) -> None:
        self.codec, self.positions, self.group_heads = codec, positions, group_heads
        self.unit, self.encode_on_side_stream = codec.unit, codec.encode_on_side_stream

    def _widen(self, x: torch.Tensor) -> torch.Tensor:
        full = x.new_zeros(x.shape[0], self.group_heads, *x.shape[2:])
        full[:, self.positions] = x
        return full

    def _widen_packed(self, packed: Packed) -> Packed:
        return {name: self._widen(tensor) for name, tensor in packed.items()}

    def compressed_count(self, visible: torch.Tensor) -> torch.Tensor:
        return self.codec.compressed_count(visible)

    def encode(self, x: torch.Tensor, start: int) -> Packed:
        packed = self.codec.encode(self._widen(x), start)
        return {name: tensor[:, self.positions] for name, tensor in packed.items()}

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        return self.codec.decode(self._widen_packed(packed), start)[:, self.positions]

    def scores(self, query: torch.Tensor, packed: Packed, start: int) -> torch.Tensor:
        return self.codec.scores(self._widen(query), self._widen_packed(packed), start)[:, self.positions]

    def weighted_sum(self, weights: torch.Tensor, packed: Packed, start: int) -> torch.Tensor:
        return self.codec.weighted_sum(self._widen(weights), self._widen_packed(packed), start)[:, self.positions]


def select_heads(codec: TensorCodec, group: HeadGroup, heads: list[int]) -> TensorCodec:
    """`codec` of `group` restricted to `heads` (a subset of group.heads)."""
    if heads == group.heads or isinstance(codec, Fp16Codec):  # fp16 storage has no per-head parameters
        return codec
    positions = [group.heads.index(h) for h in heads]
    subset = codec.for_heads(positions)
    if subset is not None:
        return subset
    if codec.encodes_after_attention or codec.keeps_host_copy:  # its state spans the group: a subset would share it
        raise KvtoolError(f"{type(codec).__name__} decides from the attention of its whole head group, which another "
                          "artifact splits here: calibrate it per KV head (e.g. QAQ's level=head)")
    return HeadSubset(codec, positions, len(group.heads))


def _tighter(first: int | None, second: int | None) -> int | None:
    return second if first is None else first if second is None else min(first, second)


def compose_groups(earlier: list[HeadGroup], later: list[HeadGroup]) -> list[HeadGroup]:
    """One group per non-empty intersection of a group of `earlier` with a group of `later` (see module doc)."""
    composed = []
    for first in earlier:
        for second in later:
            heads = [h for h in first.heads if h in second.heads]
            if not heads:
                continue
            keys = second if not isinstance(second.keys, Fp16Codec) else first
            values = second if not isinstance(second.values, Fp16Codec) else first
            composed.append(HeadGroup(
                heads,
                select_heads(keys.keys, keys, heads),
                select_heads(values.values, values, heads),
                sink=max(first.sink, second.sink),
                recent=_tighter(first.recent, second.recent),
            ))
    return composed
