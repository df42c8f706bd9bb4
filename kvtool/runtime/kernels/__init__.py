"""Triton kernels of the runtime: fused decode attention over packed streams (decode.py), quantize-on-append
(quantize.py: KIVI's, KVQuant's, QAQ's and the codebooks' of MILLION and CQ, called by their codecs on CUDA).

The cache asks `can_fuse` once per layer; on CUDA, decode steps of layers whose codecs all declare a readable
`PackedLayout` go to `attend_decode`, everything else to the reference PyTorch path. Triton is imported only here,
and only when a kernel is about to run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math

import torch

from kvtool.runtime.codec import PackedLayout
from kvtool.runtime.graphs import GraphStep

# in the order the decode kernel numbers them (its K_KIND / V_KIND)
LAYOUT_KINDS = (
    "fp16", "token_groups", "channel_groups", "codebook", "nuq_keys", "nuq_values", "codebook_prerope", "bitplanes")
_encode_kernels = True  # off inside `pytorch_encode`


def cdiv(a: int, b: int) -> int:
    """Ceiling division of host integers (triton.cdiv is a jit function: calling it from Python costs ~4 µs)."""
    return -(-a // b)


def next_power_of_2(n: int) -> int:
    """The smallest power of two >= n >= 1, for host integers (triton's is a constexpr function, as slow to call)."""
    return 1 << (n - 1).bit_length()


def layout_supported(layout: PackedLayout | None, head_dim: int) -> bool:
    """Whether the decode kernel reads this packed layout at this head size."""
    if layout is None or layout.kind not in LAYOUT_KINDS or head_dim < 16 or head_dim & (head_dim - 1):
        return False
    if layout.kind == "fp16":
        return True
    if layout.kind.startswith("nuq"):  # codes of any width up to a byte, in whole bytes per head
        return 1 <= layout.bits <= 8 and head_dim * layout.bits % 8 == 0
    if layout.kind == "bitplanes":  # rows of 1 bit per element: any width up to a byte
        return 1 <= layout.bits <= 8
    pow2 = not layout.group & (layout.group - 1)
    if layout.kind.startswith("codebook"):  # sub-vectors of `group` channels; indices 1, 2, 4 to a byte or a byte each
        return layout.bits in (1, 2, 4, 8) and pow2 and head_dim // layout.group * layout.bits >= 8
    return layout.bits in (1, 2, 4, 8) and pow2


def available(x: torch.Tensor) -> bool:
    """Whether kernels run for tensors like `x`: on CUDA, with Triton installed."""
    return x.is_cuda and importlib.util.find_spec("triton") is not None


@contextlib.contextmanager
def pytorch_encode():
    """Within the block codecs encode with their PyTorch ops on CUDA too (`kvtool bench --part check`'s reference
    twin, so that the check covers the quantize-on-append kernels as well)."""
    global _encode_kernels
    saved, _encode_kernels = _encode_kernels, False
    try:
        yield
    finally:
        _encode_kernels = saved


def quantizable(x: torch.Tensor, bits: int, group: int) -> bool:
    """Whether quantize.py packs `x` [B, H, n, D] at this width and group size (powers of two, whole bytes)."""
    pow2 = lambda n: n > 0 and not n & (n - 1)  # noqa: E731
    return (_encode_kernels and available(x) and bits in (1, 2, 4, 8) and pow2(group) and pow2(x.shape[-1])
            and group * bits >= 8)


def token_encodable(x: torch.Tensor) -> bool:
    """Whether quantize.py's per-token encodes (KVQuant's nuq_encode, QAQ's bitplane_quantize) take `x` [B, H, n,
    D]: head_dim a power of two, at least 8."""
    dim = x.shape[-1]
    return _encode_kernels and available(x) and dim >= 8 and not dim & (dim - 1)


def codebook_encodable(x: torch.Tensor, bits: int, width: int) -> bool:
    """Whether quantize.py's codebook_encode takes `x` [B, H, n, D] for indices of `bits` (up to a byte) over
    sub-vectors of `width` channels (a power of two)."""
    return _encode_kernels and available(x) and bits <= 8 and width > 0 and not width & (width - 1)


def can_fuse(groups, head_dim: int) -> bool:
    """Whether every head group of a layer can be served by the fused decode kernel (and Triton is installed)."""
    return importlib.util.find_spec("triton") is not None and all(
        layout_supported(g.keys.codec.layout, head_dim) and layout_supported(g.values.codec.layout, head_dim)
        for g in groups
    )


def attend_decode(layer, query: torch.Tensor, mask: torch.Tensor | None, scaling: float,
                  softcap: float | None, observe: bool = True) -> torch.Tensor:
    """One query token per sequence: query [B, Hq, 1, D] -> [B, 1, Hq, D], each group by its split-K launches.
    `observe=False`: the kernels alone, codecs that encode after attention not shown the step's weights (their
    bookkeeping waits on the host, which `kvtool bench`'s CUDA-graph timing cannot hold)."""
    from kvtool.runtime.kernels.decode import decode_attention

    batch, q_heads, _, dim = query.shape
    per_kv = q_heads // sum(len(state.heads) for state in layer.groups)
    out = torch.empty(batch, 1, q_heads, dim, dtype=query.dtype, device=query.device)
    mask_row = None if mask is None else mask[:, 0, -1]
    for state in layer.groups:
        observes = observe and (state.keys.codec.encodes_after_attention or state.values.codec.encodes_after_attention)
        lse = torch.empty(batch, q_heads, dtype=torch.float32, device=query.device) if observes else None
        decode_attention(state.keys, state.values, state.head_tensor(query.device), per_kv, query, out, mask_row,
                         scaling, softcap, state.recent, lse, layer.graph)
        if observes:
            observe_key_tail(state, query, lse, mask_row, scaling, softcap, per_kv, layer.graph)
        state.settle()
    return out


def observe_key_tail(state, query: torch.Tensor, lse: torch.Tensor, mask_row: torch.Tensor | None, scaling: float,
                     softcap: float | None, per_kv: int, graph: GraphStep | None = None) -> None:
    """Show a group's codecs the softmax weights of this step's query over the fp16 tail of its keys, rebuilt from
    the kernel's log-sum-exp. The tail holds the positions a codec that encodes after attention still waits on
    (QAQ's values: the window of recent queries, which the key tail spans). In a captured step (`graph`) the tail's
    rows and positions move on by one per replayed step."""
    keys = state.keys
    count = keys.length - keys.tail_start
    offsets = torch.arange(count, device=query.device)
    if graph is None:
        positions, tail = offsets + keys.tail_start, keys.tail
    else:
        positions = graph.position(keys.tail_start, 1) + offsets
        tail = keys.tail_buffer.data.index_select(2, graph.position(keys.tail_buffer.begin, 1) + offsets)
    heads = state.head_tensor(query.device)
    rows_query = query[:, :, 0].unflatten(1, (-1, per_kv)).index_select(1, heads).float()  # [B, heads, per_kv, D]
    logits = rows_query @ tail.float().transpose(-1, -2) * scaling
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    row_lse = lse.unflatten(1, (-1, per_kv)).index_select(1, heads)[..., None] * math.log(2)  # base 2 -> e
    weights = torch.exp(logits - row_lse)
    if mask_row is not None:
        weights = weights * mask_row.index_select(1, positions)[:, None, None]
    rows = positions[-1:].expand(per_kv)  # the step's query: the newest position
    keys.observe(weights, rows, positions, keys.length - 1)
    state.values.observe(weights, rows, positions, keys.length - 1)
