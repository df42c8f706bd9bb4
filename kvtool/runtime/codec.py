"""The codec interface every method implements, and the registry that maps a method name to its layer plan.

A codec compresses one kind of tensor (keys or values) for a group of KV heads of one layer. Packed tensors carry
the token axis at dim 2, so the cache appends and evicts them without knowing their meaning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from kvtool.artifacts import Artifact
from kvtool.runtime.buffer import Buffer

if TYPE_CHECKING:
    from kvtool.runtime.graphs import GraphStep

Packed = dict[str, torch.Tensor]


@dataclass(frozen=True)
class PackedLayout:
    """How a codec's packed tensors look, for the fused GPU kernels (runtime/kernels) that read them directly.

    kind "fp16": {"x"} fp16 tokens. "token_groups": {"codes", "scale", "min"}, each token's channels in groups of
    `group` sharing an fp16 scale and min. "channel_groups": the same, `group` consecutive tokens sharing them per
    channel. Codes are `bits` wide, packed plane-major (runtime/packing.py: pack_planes), and x ~ code * scale + min.
    "codebook": {"codes"}, per token the `bits`-wide centroid index of each sub-vector of `group` channels
    (runtime/codebook.py: pack_bits order), read from the codec's `codebooks` [heads, D / group, 2**bits, group];
    "codebook_prerope": the same for keys coded before RoPE (CQ), which the kernel rotates at their positions.
    "nuq_keys", "nuq_values" (runtime/kvquant.py): {"codes"} `bits`-wide indices into the codec's levels (pack_bits
    order), keys before RoPE scaled per channel, values per token ({"range"}), and a fixed number of sparse fp16
    outliers per token ({"outlier_index", "outlier_value"}).
    "bitplanes" (runtime/qaq.py): {"codes", "widths", "lo", "hi"} and the sparse outliers; per token and coded vector
    (one per KV head, or the group's heads x head_dim) a width up to `bits` and that many rows of `codes`, bit k of
    every code in row k, 1 bit per element; x = lo + (code + 0.5) (hi - lo) / 2^width.
    """

    kind: str
    bits: int = 16
    group: int = 1


def nonnegative(count: int | torch.Tensor) -> int | torch.Tensor:
    """max(count, 0) of a Python int (one query: the decode step stays off torch) or of each element of a tensor."""
    return count.clamp_min(0) if isinstance(count, torch.Tensor) else max(count, 0)


class TensorCodec(ABC):
    """Encodes tokens [B, H, n, D] into packed tensors and reads them back."""

    unit: int = 1  # tokens encoded together; the cache only encodes whole units
    # values only: a token is encoded once observe_attention has seen the weights of the queries before the first
    # that reads it compressed (then the chunk's, before its values are read)
    encodes_after_attention: bool = False
    keeps_host_copy: bool = False  # stored tokens change form as queries arrive: re-encoded from an fp16 host copy
    encode_on_side_stream: bool = False  # on CUDA, encode on a side stream until the codes are read (side_stream.py)
    # encode takes `start` as a 0-d device tensor too, and waits on nothing: a CUDA graph replays it (graphs.py)
    graph_encodable: bool = False
    layout: PackedLayout | None = None  # set where a fused GPU kernel can read the packed form; else reference path

    def compressed_count(self, visible: int | torch.Tensor) -> int | torch.Tensor:
        """Of the `visible` tokens a query sees (itself included), how many it reads compressed; the rest are fp16.
        `visible` is a Python int (one query) or a tensor (one count per query row).

        The default keeps no full-precision window: every token is read compressed, the query's own too.
        """
        return visible - visible % self.unit

    @abstractmethod
    def encode(self, x: torch.Tensor, start: int | torch.Tensor) -> Packed:
        """Compress tokens at absolute positions start .. start + n - 1 (n a multiple of `unit`); `start` is a 0-d
        device tensor in a step captured for CUDA graphs, for codecs that are `graph_encodable`."""

    @abstractmethod
    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        """float32 [B, H, n, D] reconstruction of packed tokens starting at absolute position `start`."""

    def append_packed(self, buffers: dict[str, Buffer], packed: Packed, tokens: int, reserved: int,
                      graph: GraphStep | None) -> None:
        """Append what `encode` returned for `tokens` tokens to a stream's buffers (made at the first append), with
        room for `reserved` tokens in all (`TokenStream.reserve`); `graph`: the step is being captured."""
        for name, tensor in packed.items():
            rows = -(-reserved * tensor.shape[2] // tokens)  # packed rows per token may be < 1
            buffers.setdefault(name, Buffer()).append(tensor, rows, graph)

    def scores(self, query: torch.Tensor, packed: Packed, start: int) -> torch.Tensor:
        """query [B, H, T, D] (float32) · keys -> [B, H, T, n]; codebook codecs override this with table lookups."""
        return query @ self.decode(packed, start).transpose(-1, -2)

    def weighted_sum(self, weights: torch.Tensor, packed: Packed, start: int) -> torch.Tensor:
        """weights [B, H, T, n] · values -> [B, H, T, D]."""
        return weights @ self.decode(packed, start)

    def for_heads(self, positions: list[int]) -> TensorCodec | None:
        """This codec for the heads at `positions` of its group alone, or None: then compose.HeadSubset places them in
        a zero-filled group, which suits codecs whose packed tensors are all per head."""
        return None

    def observe_attention(self, weights: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor,
                          last_row: int) -> None:
        """Softmax weights [B, H, R, F] of query rows at positions `rows` [R] over tokens at `positions` [F];
        `last_row` is the largest of `rows`, as a Python int (so that no one waits on the device to learn it).

        Called after every attention, before the values are read; codecs whose encoding depends on the attention
        tokens receive override it (with `encodes_after_attention`, so that tokens are encoded after it).
        """

    def reencode(self, packed: Packed, host: torch.Tensor, start: int, query_position: int) -> Packed:
        """With `keeps_host_copy`: tokens start .. start + n - 1 packed as the query at `query_position` reads them.

        `host` is their fp16 copy [B, H, n, D] in host memory; `packed` what the store holds now (its first tokens,
        or nothing). The cache calls this before every query position's attention, one position at a time.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no host copy")


class Fp16Codec(TensorCodec):
    """No compression: tokens stored as fp16 (the baseline, and DuoAttention's streaming heads)."""

    layout = PackedLayout("fp16")
    graph_encodable = True

    def encode(self, x: torch.Tensor, start: int | torch.Tensor) -> Packed:
        return {"x": x.to(torch.float16)}

    def decode(self, packed: Packed, start: int) -> torch.Tensor:
        return packed["x"].float()


@dataclass
class HeadGroup:
    """KV heads of one layer that share codecs and a retention policy."""

    heads: list[int]  # KV head indices in this group
    keys: TensorCodec
    values: TensorCodec
    sink: int = 0  # first tokens kept in fp16 forever (attention sinks)
    recent: int | None = None  # if set, only the last `recent` tokens (plus sinks) stay visible: older ones are dropped


# method name -> plan(artifact, layer_idx, model) -> head groups covering every KV head of that layer once
LayerPlan = Callable[[Artifact, int, torch.nn.Module], list[HeadGroup]]
RUNTIME_METHODS: dict[str, LayerPlan] = {}


def register_method(name: str) -> Callable[[LayerPlan], LayerPlan]:
    def add(plan: LayerPlan) -> LayerPlan:
        RUNTIME_METHODS[name] = plan
        return plan

    return add


@register_method("fp16")
def fp16_plan(artifact: Artifact, layer_idx: int, model: torch.nn.Module) -> list[HeadGroup]:
    from kvtool.models import Layout

    return [HeadGroup(list(range(Layout.of(model).num_kv_heads)), Fp16Codec(), Fp16Codec())]
