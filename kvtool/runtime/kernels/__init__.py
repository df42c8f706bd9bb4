"""Triton kernels of the runtime: fused decode attention over packed streams (decode.py), quantize-on-append
(quantize.py, called by the codecs that use it).

The cache asks `can_fuse` once per layer; on CUDA, decode steps of layers whose codecs all declare a readable
`PackedLayout` go to `attend_decode`, everything else to the reference PyTorch path. Triton is imported only here,
and only when a kernel is about to run.
"""

from __future__ import annotations

import importlib.util

import torch

from kvtool.runtime.codec import PackedLayout

# in the order the decode kernel numbers them (its K_KIND / V_KIND)
LAYOUT_KINDS = (
    "fp16", "token_groups", "channel_groups", "codebook", "nuq_keys", "nuq_values", "codebook_prerope")


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
    pow2 = not layout.group & (layout.group - 1)
    if layout.kind.startswith("codebook"):  # sub-vectors of `group` channels; indices 1, 2, 4 to a byte or a byte each
        return layout.bits in (1, 2, 4, 8) and pow2 and head_dim // layout.group * layout.bits >= 8
    return layout.bits in (1, 2, 4, 8) and pow2


def available(x: torch.Tensor) -> bool:
    """Whether kernels run for tensors like `x`: on CUDA, with Triton installed."""
    return x.is_cuda and importlib.util.find_spec("triton") is not None


def quantizable(x: torch.Tensor, bits: int, group: int) -> bool:
    """Whether quantize.py packs `x` [B, H, n, D] at this width and group size (powers of two, whole bytes)."""
    pow2 = lambda n: n > 0 and not n & (n - 1)  # noqa: E731
    return available(x) and bits in (1, 2, 4, 8) and pow2(group) and pow2(x.shape[-1]) and group * bits >= 8


def can_fuse(groups, head_dim: int) -> bool:
    """Whether every head group of a layer can be served by the fused decode kernel (and Triton is installed)."""
    return importlib.util.find_spec("triton") is not None and all(
        layout_supported(g.keys.codec.layout, head_dim) and layout_supported(g.values.codec.layout, head_dim)
        for g in groups
    )


def attend_decode(layer, query: torch.Tensor, mask: torch.Tensor | None, scaling: float,
                  softcap: float | None) -> torch.Tensor:
    """One query token per sequence: query [B, Hq, 1, D] -> [B, 1, Hq, D], each group in one split-K launch."""
    from kvtool.runtime.kernels.decode import decode_attention

    batch, q_heads, _, dim = query.shape
    per_kv = q_heads // sum(len(state.heads) for state in layer.groups)
    out = torch.empty(batch, 1, q_heads, dim, dtype=query.dtype, device=query.device)
    mask_row = None if mask is None else mask[:, 0, -1]
    for state in layer.groups:
        decode_attention(state.keys, state.values, state.head_tensor(query.device), per_kv, query, out, mask_row,
                         scaling, softcap, state.recent)
        state.settle()
    return out
