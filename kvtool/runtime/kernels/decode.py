"""Fused decode attention that reads a head group's compressed streams directly (flash-decoding).

One program takes one (sequence, KV head, split of the context): it scores the query heads of that KV head together
(the GQA rows) against its share of the packed keys and values (code planes unpacked and scaled in registers) and
leaves a partial softmax (row max, row sum, unnormalised output). A second kernel merges the partials by their
log-sum-exp. No fp16 copy of the cache exists. Two launches of the split kernel share the context: one for the tiles
inside both packed stores (the fast tiles), one for the others (the fp16 sinks, the store edges, the fp16 tail), each
compiled with its kind of loop only, so the generic tiles' registers do not cap the fast loop's occupancy.

Tiles inside both packed stores take one of two fast paths, by the layout:
  mma  scalar codes (KIVI): one `tl.dot` per code plane on tensor cores (rows padded to 16);
  adc  codebook codes (MILLION's product quantization): scores summed from a per-step table of query·centroid
       (asymmetric distance computation), values gathered from their centroids into one `tl.dot` per tile.
The other tiles (edges, the fp16 tail) and every tile of the layouts without a fast path (KVQuant's nuq codes, CQ's
keys coded before RoPE, QAQ's mixed-width bit planes) are decoded to fp16 in registers (`_read_stored`, RoPE applied
where keys need it) and go to `tl.dot`; KVQuant's tiles inside both stores load their codes (and the values' ranges)
one tile ahead, their longest waits (`_nuq_loads`).

What a program reads for position p of a stream: the store if p < store_end, else the fp16 tail. In decode (one
query, after the previous chunk settled) this is exactly what the reference path reads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from kvtool.runtime.graphs import GraphStep
from kvtool.runtime.kernels import LAYOUT_KINDS, cdiv, next_power_of_2
from kvtool.runtime.rope import frequencies
from kvtool.runtime.stream import TokenStream

LAYOUT_IDS = {kind: number for number, kind in enumerate(LAYOUT_KINDS)}  # the kernel's KIND numbers
PRE_ROPE_KINDS = ("nuq_keys", "codebook_prerope")  # keys stored before RoPE: the kernel rotates them
OUTLIER_KINDS = ("nuq_keys", "nuq_values", "bitplanes")  # with sparse fp16 outliers per token
LOG2E = 1.4426950408889634


@dataclass(frozen=True)
class Launch:
    """Tile and launch shape of one fast path (what was swept: docs/gpu-log.md)."""

    block_n: int  # positions per tile
    num_warps: int
    num_stages: int  # software-pipelined loads of the tile loops
    programs_per_sm: int  # split the context until the GPU runs about this many programs per multiprocessor
    max_registers: int = 0  # per thread, to fit more programs per multiprocessor (ptxas .maxnreg); 0: ptxas chooses
    # fast tiles run once a head's range holds this many, even if fewer than its programs (0: only as many as those)
    fast_min_tiles: int = 0
    min_split_tiles: int = 1  # tiles per split at least: fewer, longer programs where a context is short


LAUNCH = {
    # best of the H100 sweeps; from 32 tiles on, short contexts at batch 1 read fast tiles (H200, docs/gpu-log.md)
    "mma": Launch(block_n=32, num_warps=4, num_stages=3, programs_per_sm=8, fast_min_tiles=32),
    "mma_batched": Launch(block_n=16, num_warps=1, num_stages=3, programs_per_sm=32),  # H200 sweeps (docs/gpu-log.md)
    "adc": Launch(block_n=16, num_warps=2, num_stages=1, programs_per_sm=16),  # H200 sweeps (docs/gpu-log.md)
    # layouts without a fast path (KVQuant, CQ; QAQ's below): decoded in registers; pipelined stages cost shared memory
    # H200 sweeps (docs/gpu-log.md); at least 4 tiles a split: 1.04-1.27x faster at 1K-4K, batch 1
    "generic": Launch(block_n=16, num_warps=4, num_stages=1, programs_per_sm=8, min_split_tiles=4),
    "bitplanes": Launch(block_n=32, num_warps=2, num_stages=1, programs_per_sm=8),  # QAQ: 32 or more (docs/gpu-log.md)
}
BATCHED_MIN_TOKENS = 384  # scalar codes take "mma_batched" when its programs get at least this many positions each
# the merge kernel's tile: partials weighed at a time x output channels per program ([512, 128] spilled registers)
MERGE_PARTS, MERGE_DIMS = 512, 32
MERGE_EDGE_PARTS = 16  # partials of generic tiles beside the fast ones the merge block leaves room for


@triton.jit
def _centroid_index(rows, sub, BITS: tl.constexpr, row_ok):
    """Centroid indices of sub-vectors `sub` of the codes at row pointers `rows`, int32 (runtime/packing.py's
    pack_bits: index s at stream bits s*BITS .. s*BITS+BITS-1, so within one byte for BITS 1, 2, 4, 8). Rows outside
    `row_ok` (None: all rows) give some index below 2^BITS: a centroid that exists, for the caller to discard."""
    raw = tl.load(rows + sub * BITS // 8, mask=row_ok)
    return (raw.to(tl.int32) >> (sub * BITS % 8)) & ((1 << BITS) - 1)


@triton.jit
def _centroids(book, rows, row_ok, SUBS: tl.constexpr, BITS: tl.constexpr, WIDTH: tl.constexpr):
    """float32 [N, SUBS * WIDTH] of the codes at row pointers `rows` [N, 1]: each sub-vector's centroid from one
    head's codebooks `book` [SUBS, 2^BITS, WIDTH] (gathered [N, SUBS, WIDTH], so a centroid is one vector load)."""
    sub = tl.arange(0, SUBS)[None, :]
    entry = (sub << BITS) + _centroid_index(rows, sub, BITS, row_ok)  # [N, SUBS]
    x = tl.load(book + entry[:, :, None] * WIDTH + tl.arange(0, WIDTH)[None, None, :])
    return tl.reshape(x, (x.shape[0], SUBS * WIDTH))


@triton.jit
def _rope(x, cos, sin, D: tl.constexpr):
    """Keys stored before RoPE [N, D] rotated as runtime/rope.py's apply_rope: halves (x1, x2) -> (x1 cos - x2 sin,
    x2 cos + x1 sin), with cos and sin [N, D / 2] of their positions (one angle per pair of channels)."""
    x1, x2 = tl.split(tl.permute(tl.reshape(x, (x.shape[0], 2, D // 2)), (0, 2, 1)))
    rotated = tl.join(x1 * cos - x2 * sin, x2 * cos + x1 * sin)  # [N, D/2, 2]
    return tl.reshape(tl.permute(rotated, (0, 2, 1)), (x.shape[0], D))


@triton.jit
def _turn(cos, sin, by_cos, by_sin):
    """cos and sin of the angles plus the angles of (by_cos, by_sin)."""
    return cos * by_cos - sin * by_sin, sin * by_cos + cos * by_sin


@triton.jit
def _rope_start(inv_freq, rope_scale, start, BLOCK_N: tl.constexpr, D: tl.constexpr):
    """What the generic loop rotates pre-RoPE keys with, tile after tile from `start` (the model's rotary embedding:
    angle position x inv_freq, cos and sin times its attention scaling): cos and sin at the first tile's start
    [D / 2], of the offsets in a tile [BLOCK_N, D / 2] and of one tile's advance [D / 2]. Summing angles so keeps
    sin and cos out of the loop (computed per element or per tile, their slow paths for large angles took most of
    kvquant3's instructions); it differs from the reference's float32 product by that product's rounding."""
    frequency = tl.load(inv_freq + tl.arange(0, D // 2))
    angle = start.to(tl.float32) * frequency
    offset = tl.arange(0, BLOCK_N).to(tl.float32)[:, None] * frequency[None, :]
    return (tl.cos(angle) * rope_scale, tl.sin(angle) * rope_scale, tl.cos(offset), tl.sin(offset),
            tl.cos(BLOCK_N * frequency), tl.sin(BLOCK_N * frequency))


@triton.jit
def _interleave8(c0, c1, c2, c3, c4, c5, c6, c7):
    """Eight [N, M] -> [N, 8M], element 8j + i from column j of c_i. Joined, not broadcast along a third axis: Triton
    gave that axis's tensor a layout where each thread held every position of the tile, so work per position ran
    once per element (QAQ's tiles issued 3.6x the instructions; docs/gpu-log.md). Triton 3.6 compiles it wrongly in
    the decode kernel's 16-position tiles (right under the interpreter and at 32; docs/gpu-log.md), hence the
    assert."""
    tl.static_assert(c0.shape[0] >= 32, "joined codes need tiles of 32 positions or more (a Triton 3.6 miscompile)")
    x = tl.join(tl.join(tl.join(c0, c4), tl.join(c2, c6)), tl.join(tl.join(c1, c5), tl.join(c3, c7)))
    return tl.reshape(x, (c0.shape[0], c0.shape[1] * 8))


@triton.jit
def _plane_bits8(word, ONES: tl.constexpr, MAGIC: tl.constexpr, TOP: tl.constexpr, LOW: tl.constexpr):
    """The codes of bits 0 .. 7 of each plane byte of `word` (plane k in byte k): bit i of every byte moved to bit
    TOP + k by one multiply by MAGIC, then read as an integer."""
    return (((((word >> 0) & ONES) * MAGIC) >> TOP) & LOW, ((((word >> 1) & ONES) * MAGIC) >> TOP) & LOW,
            ((((word >> 2) & ONES) * MAGIC) >> TOP) & LOW, ((((word >> 3) & ONES) * MAGIC) >> TOP) & LOW,
            ((((word >> 4) & ONES) * MAGIC) >> TOP) & LOW, ((((word >> 5) & ONES) * MAGIC) >> TOP) & LOW,
            ((((word >> 6) & ONES) * MAGIC) >> TOP) & LOW, ((((word >> 7) & ONES) * MAGIC) >> TOP) & LOW)


@triton.jit
def _nuq_loads(start, b, h, codes_ptr, c_sb, c_sh, c_sn, scale_ptr, min_ptr, g_sb, g_sh, g_sn, store_start,
               store_end, D: tl.constexpr, BLOCK_N: tl.constexpr, KIND: tl.constexpr, BITS: tl.constexpr):
    """What a tile of KVQuant's nuq codes at positions start .. start + BLOCK_N - 1 reads from memory first: its
    codes, 8 codes to BITS bytes (pack_bits order), byte k of every octet loaded as one [N, D / 8] tile and the octet's
    bytes made one word; values also each token's stored range (half range, midpoint). Apart from their decode, so
    that the generic loop can issue them a tile ahead."""
    pos = start + tl.arange(0, BLOCK_N)
    in_store = (pos >= store_start) & (pos < store_end)
    idx = pos - store_start
    octets = codes_ptr + b * c_sb + h * c_sh + idx[:, None] * c_sn + (tl.arange(0, D // 8) * BITS)[None, :]
    word = tl.zeros([BLOCK_N, D // 8], tl.int32 if BITS <= 4 else tl.int64)
    for k in tl.static_range(BITS):
        word |= tl.load(octets + k, mask=in_store[:, None], other=0).to(word.dtype) << (8 * k)
    if KIND == 4:  # keys: per-channel thresholds, read where they are used
        half_range, midpoint = 0.0, 0.0
    else:
        offs = b * g_sb + h * g_sh + idx * g_sn
        half_range = tl.load(scale_ptr + offs, mask=in_store, other=0.0).to(tl.float32)
        midpoint = tl.load(min_ptr + offs, mask=in_store, other=0.0).to(tl.float32)
    return word, half_range, midpoint


@triton.jit
def _read_nuq(loaded, idx, b, h, scale_ptr, min_ptr, g_sh, in_store, aux, D: tl.constexpr, KIND: tl.constexpr,
              BITS: tl.constexpr, SLOTS: tl.constexpr):
    """float32 [N, D] of KVQuant's stores (runtime/kvquant.py), keys before RoPE, from what _nuq_loads read: nuq codes
    cut from their octet words and read through the codebook's levels, scaled per channel (keys: scale/min = the
    thresholds' half range and midpoint [heads, D]) or per token (values: their stored range [B, vectors, n]), and
    the sparse fp16 outliers written back."""
    word, half_range, midpoint = loaded
    code = (word[:, :, None] >> (tl.arange(0, 8) * BITS)[None, None, :]) & ((1 << BITS) - 1)
    level = tl.load(aux[0] + tl.reshape(code, (idx.shape[0], D)))
    if KIND == 4:
        dims = tl.arange(0, D)
        x = level * tl.load(scale_ptr + h * g_sh + dims)[None, :] + tl.load(min_ptr + h * g_sh + dims)[None, :]
    else:
        x = level * half_range[:, None] + midpoint[:, None]
    return _outliers(x, idx, b, (h * D).to(tl.int32), h * aux[7], in_store, aux, SLOTS)  # aux[7]: slots per head


@triton.jit
def _outliers(x, idx, b, head_first, first_slot, in_store, aux, SLOTS: tl.constexpr):
    """x [N, D] with the sparse fp16 outliers of its tokens written back: SLOTS (index, value) pairs per token from
    `first_slot` on, the index counting in the coded vector, where x's columns start at `head_first` (int32: 64-bit
    compares cost twice the instructions)."""
    out_index, out_value, o_sb, o_sn = aux[1], aux[2], aux[3], aux[4]
    columns = tl.arange(0, x.shape[1])
    for slot in tl.static_range(SLOTS):
        o_offs = b * o_sb + idx * o_sn + first_slot + slot
        column = tl.load(out_index + o_offs, mask=in_store, other=-1).to(tl.int32) - head_first
        value = tl.load(out_value + o_offs, mask=in_store, other=0.0).to(tl.float32)
        x = tl.where(column[:, None] == columns[None, :], value[:, None], x)
    return x


@triton.jit
def _read_bitplanes(idx, b, h, codes_ptr, c_sb, c_sn, lo_ptr, hi_ptr, g_sb, g_sh, g_sn, in_store, aux,
                    D: tl.constexpr, BLOCK_N: tl.constexpr, MAX_BITS: tl.constexpr, SLOTS: tl.constexpr):
    """float32 [N, D] of QAQ's mixed-width stores (runtime/qaq.py): each token is coded as vectors of aux[5] heads
    each; vector v of token t has its bit planes in rows first .. first + width - 1 of the codes, 1 bit per element
    (pack_bits order), and its range lo, hi and SLOTS outliers in the vector's rows (v * g_sh, v * aux[7] on). A code
    reads as the midpoint of its segment of [lo, hi] cut in 2^width, and the sparse fp16 outliers are written back.
    aux[0]: the codec's row table [vectors, n, 2] (int32 first row, width; aux[6] apart)."""
    vector_heads = aux[5]
    v = h // vector_heads
    head_first = ((h % vector_heads) * D).to(tl.int32)  # head h's first element in its vector
    entry = aux[0] + v * aux[6] + idx * 2
    first = tl.load(entry, mask=in_store, other=0).to(tl.int64)
    width = tl.load(entry + 1, mask=in_store, other=0)
    # a plane's row is D / 8 bytes of the head: one load per byte, plane k's byte at byte k of a word; then bit j of
    # every plane gathered into element j's code by one multiply (the planes' bits land at TOP .. TOP + planes - 1,
    # every other product term below TOP or past the word)
    octets = codes_ptr + b * c_sb + (head_first // 8 + tl.arange(0, D // 8))[None, :]
    if MAX_BITS <= 4:
        word = tl.zeros([BLOCK_N, D // 8], tl.int32)
    else:
        word = tl.zeros([BLOCK_N, D // 8], tl.int64)
    for k in tl.static_range(MAX_BITS):
        raw = tl.load(octets + (first + k)[:, None] * c_sn, mask=(in_store & (width > k))[:, None], other=0)
        word |= raw.to(word.dtype) << (8 * k)
    if MAX_BITS <= 4:
        code = _interleave8(*_plane_bits8(word, 0x01010101, 0x01020408, 24, 0xF))
    else:
        code = _interleave8(*_plane_bits8(word, 0x0101010101010101, 0x0102040810204080, 56, 0xFF))
    offs = b * g_sb + v * g_sh + idx * g_sn
    lo = tl.load(lo_ptr + offs, mask=in_store, other=0.0).to(tl.float32)
    hi = tl.load(hi_ptr + offs, mask=in_store, other=0.0).to(tl.float32)
    step = tl.maximum(hi - lo, 1e-8) / tl.exp2(width.to(tl.float32))
    x = lo[:, None] + (code.to(tl.float32) + 0.5) * step[:, None]
    return _outliers(x, idx, b, head_first, v * aux[7], in_store, aux, SLOTS)


@triton.jit
def _read_stored(start, b, h, codes_ptr, c_sb, c_sh, c_sn, scale_ptr, min_ptr, g_sb, g_sh, g_sn, store_start,
                 store_end, in_store, aux, loaded, D: tl.constexpr, BLOCK_N: tl.constexpr, KIND: tl.constexpr,
                 BITS: tl.constexpr, GROUP: tl.constexpr):
    """float16 [BLOCK_N, D] of the packed store at positions start .. start + BLOCK_N - 1 (rows outside `in_store`
    read as 0). `aux`: what KVQuant's and QAQ's layouts read besides (levels or QAQ's row table, outlier index and
    value, their batch and token strides; GROUP = their slots; QAQ's heads per coded vector, and its row table's and
    outliers' vector strides) and, for keys stored before RoPE, the cos and sin [BLOCK_N, D / 2] of these
    positions. `loaded`: KVQuant's _nuq_loads of this tile if issued ahead, else None."""
    idx = start - store_start + tl.arange(0, BLOCK_N)
    dims = tl.arange(0, D)
    if KIND == 4 or KIND == 5:
        if loaded is None:
            loaded = _nuq_loads(start, b, h, codes_ptr, c_sb, c_sh, c_sn, scale_ptr, min_ptr, g_sb, g_sh, g_sn,
                                store_start, store_end, D, BLOCK_N, KIND, BITS)
        x = _read_nuq(loaded, idx, b, h, scale_ptr, min_ptr, g_sh, in_store, aux, D, KIND, BITS, GROUP)
        if KIND == 4:
            x = _rope(x, aux[8], aux[9], D)
        x = x.to(tl.float16)
    elif KIND == 7:
        x = _read_bitplanes(idx, b, h, codes_ptr, c_sb, c_sn, scale_ptr, min_ptr, g_sb, g_sh, g_sn, in_store, aux,
                            D, BLOCK_N, BITS, GROUP).to(tl.float16)
    elif KIND == 0:  # fp16 tokens
        ptrs = codes_ptr + b * c_sb + h * c_sh + idx[:, None] * c_sn + dims[None, :]
        x = tl.load(ptrs, mask=in_store[:, None], other=0.0).to(tl.float16)
    elif KIND == 3 or KIND == 6:  # centroids; scale_ptr holds the codebooks of every head (g_sh apart)
        rows = codes_ptr + b * c_sb + h * c_sh + idx[:, None] * c_sn
        x = _centroids(scale_ptr + h * g_sh, rows, in_store[:, None], D // GROUP, BITS, GROUP)
        if KIND == 6:  # CQ's keys, coded before RoPE
            x = _rope(x, aux[8], aux[9], D)
        x = x.to(tl.float16)
    else:
        PER: tl.constexpr = 8 // BITS
        raw = tl.load(codes_ptr + b * c_sb + h * c_sh + idx[:, None] * c_sn + tl.arange(0, D // PER)[None, :],
                      mask=in_store[:, None], other=0)
        shifts = (tl.arange(0, PER) * BITS).to(tl.uint8)
        planes = (raw[:, None, :] >> shifts[None, :, None]) & ((1 << BITS) - 1)  # plane i: channels i*D/PER + j
        codes = tl.reshape(planes, (BLOCK_N, D)).to(tl.float32)
        if KIND == 1:  # per token, GROUP channels share scale and min
            offs = b * g_sb + h * g_sh + idx[:, None] * g_sn + (dims // GROUP)[None, :]
        else:  # per channel, GROUP consecutive tokens share scale and min
            offs = b * g_sb + h * g_sh + (idx // GROUP)[:, None] * g_sn + dims[None, :]
        scale = tl.load(scale_ptr + offs, mask=in_store[:, None], other=0.0).to(tl.float32)
        lo = tl.load(min_ptr + offs, mask=in_store[:, None], other=0.0).to(tl.float32)
        x = (codes * scale + lo).to(tl.float16)
    return x


@triton.jit
def _read_tokens(start, b, h, codes_ptr, c_sb, c_sh, c_sn, scale_ptr, min_ptr, g_sb, g_sh, g_sn, tail_ptr, t_sb,
                 t_sh, t_sn, store_start, store_end, tail_start, length, aux, loaded, D: tl.constexpr,
                 BLOCK_N: tl.constexpr, KIND: tl.constexpr, BITS: tl.constexpr, GROUP: tl.constexpr,
                 TAIL: tl.constexpr):
    """float16 [BLOCK_N, D] of one stream at positions start .. start + BLOCK_N - 1: store first, then (TAIL: the
    tile reaches past the store) the fp16 tail. `loaded`: as _read_stored's."""
    pos = start + tl.arange(0, BLOCK_N)
    in_store = (pos >= store_start) & (pos < store_end)
    x = _read_stored(start, b, h, codes_ptr, c_sb, c_sh, c_sn, scale_ptr, min_ptr, g_sb, g_sh, g_sn, store_start,
                     store_end, in_store, aux, loaded, D, BLOCK_N, KIND, BITS, GROUP)
    if TAIL:
        in_tail = (pos >= store_end) & (pos >= tail_start) & (pos < length)
        rows = tail_ptr + b * t_sb + h * t_sh + (pos - tail_start)[:, None] * t_sn
        tail = tl.load(rows + tl.arange(0, D)[None, :], mask=in_tail[:, None], other=0.0).to(tl.float16)
        x = tl.where(in_store[:, None], x, tail)
    return x


@triton.jit
def _plane_fp16(raw, PLANE: tl.constexpr, BITS: tl.constexpr):
    """Codes of one plane of plane-major bytes [N, M] as fp16 [N, M]: each code OR-ed into the mantissa of 1024.0,
    then 1024 subtracted (cheaper than int->float)."""
    codes = (raw.to(tl.int16) >> (PLANE * BITS)) & ((1 << BITS) - 1)
    return (codes | 0x6400).to(tl.float16, bitcast=True) - 1024.0


@triton.jit
def _load_or_zero(ptrs, ok):
    """tl.load of `ptrs`, 0 where not `ok`; ok None: an unmasked load."""
    if ok is None:
        x = tl.load(ptrs)
    else:
        x = tl.load(ptrs, mask=ok, other=0.0)
    return x


@triton.jit
def _key_scales(scale_ptr, min_ptr, g_rows, ok, PLANE: tl.constexpr, WIDTH: tl.constexpr):
    """Scale and minimum of channel-grouped keys for the channels PLANE*WIDTH + j, at the offsets `g_rows` of their
    groups' rows; 0 where not `ok` (None: read all)."""
    channels = PLANE * WIDTH + tl.arange(0, WIDTH)
    return _load_or_zero(scale_ptr + g_rows + channels, ok), _load_or_zero(min_ptr + g_rows + channels, ok)


@triton.jit
def _value_scales(scale_ptr, min_ptr, g_rows, ok, PLANE: tl.constexpr, WIDTH: tl.constexpr, GROUP: tl.constexpr):
    """Scale and minimum of token-grouped values for the channels PLANE*WIDTH + j, at the offsets `g_rows` of the
    positions' rows: one per position when the plane lies in one channel group; 0 where not `ok` (None: read
    all)."""
    if WIDTH <= GROUP:
        offs = g_rows + PLANE * WIDTH // GROUP
    else:
        offs = g_rows + (PLANE * WIDTH + tl.arange(0, WIDTH)) // GROUP
    return _load_or_zero(scale_ptr + offs, ok), _load_or_zero(min_ptr + offs, ok)


@triton.jit
def _key_tile_scales(ks, km, kg_sn, k_store_start, start, f_hi, BLOCK_N: tl.constexpr, D: tl.constexpr,
                     K_KIND: tl.constexpr, K_GROUP: tl.constexpr, K_PLANES: tl.constexpr, AHEAD: tl.constexpr):
    """Scales and minima of the key code planes of the fast tile at `start`: (plane 0's scale, min, plane 1's, ...);
    planes past K_PLANES repeat plane 0, fp16 keys give 0.0. AHEAD: a prefetch, which may lie past f_hi (reads 0)."""
    KW: tl.constexpr = D // K_PLANES
    s0, m0, s1, m1, s2, m2, s3, m3 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    if K_KIND != 0:
        if BLOCK_N <= K_GROUP:  # the tile lies in one key group: one row of scales, broadcast over its tokens
            g_rows = (start - k_store_start) // K_GROUP * kg_sn
            ok = start + tl.zeros([KW], tl.int32) < f_hi if AHEAD else None
        else:
            pos = start + tl.arange(0, BLOCK_N)
            g_rows = ((pos - k_store_start) // K_GROUP * kg_sn)[:, None]
            ok = (pos < f_hi)[:, None] if AHEAD else None
        s0, m0 = _key_scales(ks, km, g_rows, ok, 0, KW)
        s1, m1, s2, m2, s3, m3 = s0, m0, s0, m0, s0, m0
        if K_PLANES > 1:
            s1, m1 = _key_scales(ks, km, g_rows, ok, 1, KW)
        if K_PLANES > 2:
            s2, m2 = _key_scales(ks, km, g_rows, ok, 2, KW)
            s3, m3 = _key_scales(ks, km, g_rows, ok, 3, KW)
    return s0, m0, s1, m1, s2, m2, s3, m3


@triton.jit
def _value_tile_scales(vs, vm, vg_sn, v_store_start, start, f_hi, BLOCK_N: tl.constexpr, D: tl.constexpr,
                       V_KIND: tl.constexpr, V_GROUP: tl.constexpr, V_PLANES: tl.constexpr, AHEAD: tl.constexpr):
    """Scales and minima of the value code planes of the fast tile at `start`, as _key_tile_scales gives keys'."""
    VW: tl.constexpr = D // V_PLANES
    s0, m0, s1, m1, s2, m2, s3, m3 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    if V_KIND != 0:
        pos = start + tl.arange(0, BLOCK_N)
        g_rows = (pos - v_store_start)[:, None] * vg_sn
        ok = (pos < f_hi)[:, None] if AHEAD else None
        s0, m0 = _value_scales(vs, vm, g_rows, ok, 0, VW, V_GROUP)
        s1, m1, s2, m2, s3, m3 = s0, m0, s0, m0, s0, m0
        if V_PLANES > 1:
            s1, m1 = _value_scales(vs, vm, g_rows, ok, 1, VW, V_GROUP)
        if V_PLANES > 2:
            s2, m2 = _value_scales(vs, vm, g_rows, ok, 2, VW, V_GROUP)
            s3, m3 = _value_scales(vs, vm, g_rows, ok, 3, VW, V_GROUP)
    return s0, m0, s1, m1, s2, m2, s3, m3


@triton.jit
def _query_block(q_rows, row_ok, q_scale, BLOCK: tl.constexpr, WIDTH: tl.constexpr):
    """The scaled query's channels BLOCK*WIDTH .. (BLOCK+1)*WIDTH - 1, float32 [rows, WIDTH] (q_rows [rows, 1])."""
    channels = BLOCK * WIDTH + tl.arange(0, WIDTH)
    return tl.load(q_rows + channels, mask=row_ok, other=0.0).to(tl.float32) * q_scale


@triton.jit
def _key_plane(q, raw, scale, low, PLANE: tl.constexpr, BITS: tl.constexpr):
    """Scores [BLOCK_M, BLOCK_N] from one plane of channel-grouped key codes, dequantized in registers with the
    plane's scale and min; q [BLOCK_M, D / planes] (fp32) is the query's slice of its channels."""
    k = _plane_fp16(raw, PLANE, BITS) * scale + low
    return tl.dot(q.to(tl.float16), tl.trans(k.to(tl.float16)))


@triton.jit
def _value_plane(p, raw, scale, low, PLANE: tl.constexpr, BITS: tl.constexpr):
    """p @ values [BLOCK_M, D / planes] for one plane of token-grouped value codes, dequantized in registers with
    the plane's scale and min."""
    v = _plane_fp16(raw, PLANE, BITS) * scale + low
    return tl.dot(p.to(tl.float16), v.to(tl.float16))


@triton.jit
def _planes(v, PLANES: tl.constexpr):
    """float16 [N, D] -> its PLANES column blocks [N, D / PLANES] (four results; the unused repeat the first)."""
    if PLANES == 1:
        v0 = v
        v1 = v
        v2 = v
        v3 = v
    else:
        blocks = tl.permute(tl.reshape(v, (v.shape[0], PLANES, v.shape[1] // PLANES)), (0, 2, 1))
        if PLANES == 2:
            v0, v1 = tl.split(blocks)
            v2 = v0
            v3 = v1
        else:
            even, odd = tl.split(tl.reshape(blocks, (v.shape[0], v.shape[1] // PLANES, 2, 2)))  # blocks 0, 2; 1, 3
            v0, v2 = tl.split(even)
            v1, v3 = tl.split(odd)
    return v0, v1, v2, v3


@triton.jit
def _add_planes(acc0, acc1, acc2, acc3, alpha, p, v, PLANES: tl.constexpr):
    """Accumulators of the output's column blocks += p @ v [N, D], after rescaling by alpha."""
    p16 = p.to(tl.float16)
    v0, v1, v2, v3 = _planes(v, PLANES)
    acc0 = acc0 * alpha[:, None] + tl.dot(p16, v0)
    if PLANES > 1:
        acc1 = acc1 * alpha[:, None] + tl.dot(p16, v1)
    if PLANES > 2:
        acc2 = acc2 * alpha[:, None] + tl.dot(p16, v2)
        acc3 = acc3 * alpha[:, None] + tl.dot(p16, v3)
    return acc0, acc1, acc2, acc3


@triton.jit
def _online_softmax(s, valid, m_i, l_i, softcap, SOFTCAP: tl.constexpr):
    """Scores of one tile [rows, N, ...] -> (weights p, rescale of what came before, new max, new sum), reduced over
    axis 1; base 2. `valid` broadcasts against s."""
    if SOFTCAP:
        s = softcap * (1.0 - 2.0 / (tl.exp(2.0 * s / softcap) + 1.0)) * 1.4426950408889634  # softcap * tanh(s / softcap)
    s = tl.where(valid, s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(s - tl.expand_dims(m_new, 1))
    return p, alpha, m_new, l_i * alpha + tl.sum(p, 1)


@triton.jit
def _mma_fast_tiles(q16, q_head, q_sh, q_scale, kc, kc_sn, ks, km, kg_sn, k_store_start, vc, vc_sn, vs, vm, vg_sn,
                    v_store_start, mask_row, softcap, f_lo, f_hi, hi, m_i, l_i, acc0, acc1, acc2, acc3,
                    PER_KV: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr,
                    K_KIND: tl.constexpr, K_BITS: tl.constexpr, K_GROUP: tl.constexpr, K_PLANES: tl.constexpr,
                    V_KIND: tl.constexpr, V_BITS: tl.constexpr, V_GROUP: tl.constexpr, V_PLANES: tl.constexpr,
                    HAS_MASK: tl.constexpr, SOFTCAP: tl.constexpr):
    """Fast tiles on tensor cores: each code plane (runtime/packing.py's pack_planes) is a plain [BLOCK_N, D / planes]
    tile of channels, dequantized in registers and multiplied without any interleaving (scores: a sum over key planes;
    output: one accumulator per value plane)."""
    KW: tl.constexpr = D // K_PLANES
    VW: tl.constexpr = D // V_PLANES
    rows = tl.arange(0, BLOCK_M)[:, None]
    q_rows = q_head + rows * q_sh
    qk0 = _query_block(q_rows, rows < PER_KV, q_scale, 0, KW)  # the query's channels of each key code plane
    qk1 = _query_block(q_rows, rows < PER_KV, q_scale, 1 % K_PLANES, KW)
    qk2 = _query_block(q_rows, rows < PER_KV, q_scale, 2 % K_PLANES, KW)
    qk3 = _query_block(q_rows, rows < PER_KV, q_scale, 3 % K_PLANES, KW)
    dims = tl.arange(0, D)
    # Load the next tile's scales while computing this one, where they are few: one per position and value plane
    # (2-bit). fp16 scalars are too narrow for the pipeliner's asynchronous copies, and waiting on them stalled the
    # loop; value planes wider than a group have a scale per element, which cost more carried over (docs/gpu-log.md).
    PREFETCH: tl.constexpr = V_KIND == 0 or VW <= V_GROUP
    if PREFETCH:
        k_ahead = _key_tile_scales(ks, km, kg_sn, k_store_start, f_lo, f_hi, BLOCK_N, D, K_KIND, K_GROUP, K_PLANES,
                                   True)
        v_ahead = _value_tile_scales(vs, vm, vg_sn, v_store_start, f_lo, f_hi, BLOCK_N, D, V_KIND, V_GROUP,
                                     V_PLANES, True)
    for start in range(f_lo, f_hi, BLOCK_N):  # inside both stores, aligned to key groups
        if PREFETCH:
            ksc = k_ahead
            vsc = v_ahead
        else:  # each where it is used, not carried over
            ksc = _key_tile_scales(ks, km, kg_sn, k_store_start, start, f_hi, BLOCK_N, D, K_KIND, K_GROUP, K_PLANES,
                                   False)
        pos = start + tl.arange(0, BLOCK_N)
        valid = pos < hi
        if HAS_MASK:
            valid &= tl.load(mask_row + pos, mask=valid, other=0) != 0
        k_rows = kc + (pos - k_store_start)[:, None] * kc_sn
        if K_KIND == 0:
            s = tl.dot(q16, tl.trans(tl.load(k_rows + dims[None, :])))
        else:
            raw = tl.load(k_rows + tl.arange(0, KW)[None, :])
            s = _key_plane(qk0, raw, ksc[0], ksc[1], 0, K_BITS)
            if K_PLANES > 1:
                s += _key_plane(qk1, raw, ksc[2], ksc[3], 1, K_BITS)
            if K_PLANES > 2:
                s += _key_plane(qk2, raw, ksc[4], ksc[5], 2, K_BITS)
                s += _key_plane(qk3, raw, ksc[6], ksc[7], 3, K_BITS)
        p, alpha, m_i, l_i = _online_softmax(s, valid[None, :], m_i, l_i, softcap, SOFTCAP)
        v_idx = (pos - v_store_start)[:, None]
        if V_KIND == 0:
            acc0, acc1, acc2, acc3 = _add_planes(acc0, acc1, acc2, acc3, alpha, p,
                                                 tl.load(vc + v_idx * vc_sn + dims[None, :]), V_PLANES)
        else:
            if not PREFETCH:
                vsc = _value_tile_scales(vs, vm, vg_sn, v_store_start, start, f_hi, BLOCK_N, D, V_KIND, V_GROUP,
                                         V_PLANES, False)
            raw = tl.load(vc + v_idx * vc_sn + tl.arange(0, VW)[None, :])
            acc0 = acc0 * alpha[:, None] + _value_plane(p, raw, vsc[0], vsc[1], 0, V_BITS)
            if V_PLANES > 1:
                acc1 = acc1 * alpha[:, None] + _value_plane(p, raw, vsc[2], vsc[3], 1, V_BITS)
            if V_PLANES > 2:
                acc2 = acc2 * alpha[:, None] + _value_plane(p, raw, vsc[4], vsc[5], 2, V_BITS)
                acc3 = acc3 * alpha[:, None] + _value_plane(p, raw, vsc[6], vsc[7], 3, V_BITS)
        if PREFETCH:
            k_ahead = _key_tile_scales(ks, km, kg_sn, k_store_start, start + BLOCK_N, f_hi, BLOCK_N, D, K_KIND,
                                       K_GROUP, K_PLANES, True)
            v_ahead = _value_tile_scales(vs, vm, vg_sn, v_store_start, start + BLOCK_N, f_hi, BLOCK_N, D, V_KIND,
                                         V_GROUP, V_PLANES, True)
    return m_i, l_i, acc0, acc1, acc2, acc3


@triton.jit
def _adc_fast_tiles(table, kc, kc_sn, k_store_start, vc, vc_sn, v_book, v_store_start, mask_row, softcap, f_lo, f_hi,
                    hi, ROWS: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr, K_BITS: tl.constexpr,
                    K_WIDTH: tl.constexpr, V_BITS: tl.constexpr, V_WIDTH: tl.constexpr, HAS_MASK: tl.constexpr,
                    SOFTCAP: tl.constexpr):
    """Fast tiles of codebook codes. Scores by ADC: `table` [subs, 2^K_BITS, ROWS] holds the scaled query rows'
    sub-vectors · every centroid (one step's table, built by decode_attention), so a key's score is the sum of its
    sub-vectors' entries, each entry one vector load of all rows. Values: each sub-vector's centroid gathered from
    `v_book` [subs, 2^V_BITS, V_WIDTH], the tile then multiplied by p in one `tl.dot` (p's rows repeated to the 16
    rows it needs). Returns the rows' state of these tiles alone: max, sum, output."""
    K_SUBS: tl.constexpr = D // K_WIDTH
    COPIES: tl.constexpr = (16 + ROWS - 1) // ROWS  # 16 / ROWS copies of p's rows, or 1 where ROWS is 16 or more
    rows = tl.arange(0, ROWS)
    sub = tl.arange(0, K_SUBS)[None, :]
    m_i = tl.full([ROWS], -1e30, tl.float32)
    l_i = tl.zeros([ROWS], tl.float32)
    acc = tl.zeros([COPIES * ROWS, D], tl.float32)
    for start in range(f_lo, f_hi, BLOCK_N):  # inside both stores
        pos = start + tl.arange(0, BLOCK_N)
        valid = pos < hi
        if HAS_MASK:
            valid &= tl.load(mask_row + pos, mask=valid, other=0) != 0
        entry = (sub << K_BITS) + _centroid_index(kc + (pos - k_store_start)[:, None] * kc_sn, sub, K_BITS, None)
        picked = tl.load(table + entry[:, :, None] * ROWS + rows[None, None, :])  # [BLOCK_N, subs, ROWS]
        s = tl.trans(tl.sum(picked.to(tl.float32), 1))
        p, alpha, m_i, l_i = _online_softmax(s, valid[None, :], m_i, l_i, softcap, SOFTCAP)
        v = _centroids(v_book, vc + (pos - v_store_start)[:, None] * vc_sn, None, D // V_WIDTH, V_BITS, V_WIDTH)
        p16 = tl.reshape(tl.broadcast_to(p[None, :, :], (COPIES, ROWS, BLOCK_N)), (COPIES * ROWS, BLOCK_N))
        alpha16 = tl.reshape(tl.broadcast_to(alpha[None, :], (COPIES, ROWS)), (COPIES * ROWS,))
        acc = acc * alpha16[:, None] + tl.dot(p16.to(tl.float16), v.to(tl.float16))
    return m_i, l_i, tl.max(tl.reshape(acc, (COPIES, ROWS, D)), 0)  # the copies are equal: any one of them


@triton.jit
def _store_partial(part_o_ptr, part_ml_ptr, part, row_ok, m_i, l_i, acc0, acc1, acc2, acc3, D: tl.constexpr,
                   V_PLANES: tl.constexpr):
    """One partial softmax (rows `part` of the partials [B * HEADS, parts, PER_KV, ...]): max, sum, output."""
    VW: tl.constexpr = D // V_PLANES
    out_rows = part_o_ptr + part[:, None] * D + tl.arange(0, VW)[None, :]
    tl.store(out_rows, acc0, mask=row_ok[:, None])
    if V_PLANES > 1:
        tl.store(out_rows + VW, acc1, mask=row_ok[:, None])
    if V_PLANES > 2:
        tl.store(out_rows + 2 * VW, acc2, mask=row_ok[:, None])
        tl.store(out_rows + 3 * VW, acc3, mask=row_ok[:, None])
    tl.store(part_ml_ptr + part * 2, m_i, mask=row_ok)
    tl.store(part_ml_ptr + part * 2 + 1, l_i, mask=row_ok)


# Integers that change from one decode step to the next: Triton would otherwise compile a variant for each pattern of
# "divisible by 16 / equal to 1" they show, i.e. recompile during generation.
_PER_STEP = ["kt_sb", "kt_sh", "k_store_start", "k_store_end", "k_tail_start", "vt_sb", "vt_sh", "v_store_start",
             "v_store_end", "v_tail_start", "sink_len", "mask_sb", "first", "anchor", "fast_lo", "fast_hi", "length",
             "split_tokens", "num_parts", "part_offset", "first_grows"]


@triton.jit(do_not_specialize=_PER_STEP)
def _decode_split_kernel(
    q_ptr, q_sb, q_sh, head_index_ptr, part_o_ptr, part_ml_ptr, table_ptr,
    kc_ptr, kc_sb, kc_sh, kc_sn, ks_ptr, km_ptr, kg_sb, kg_sh, kg_sn, kt_ptr, kt_sb, kt_sh, kt_sn,
    k_store_start, k_store_end, k_tail_start, k_levels, k_out_index, k_out_value, ko_sb, ko_sn, k_vector_heads,
    k_table_sv, ko_sv,
    vc_ptr, vc_sb, vc_sh, vc_sn, vs_ptr, vm_ptr, vg_sb, vg_sh, vg_sn, vt_ptr, vt_sb, vt_sh, vt_sn,
    v_store_start, v_store_end, v_tail_start, v_levels, v_out_index, v_out_value, vo_sb, vo_sn, v_vector_heads,
    v_table_sv, vo_sv, inv_freq, rope_scale,
    sk_ptr, sv_ptr, s_sb, s_sh, s_sn, sink_len,
    mask_ptr, mask_sb, q_scale, softcap, first, anchor, fast_lo, fast_hi, length, split_tokens, num_parts,
    part_offset, steps_ptr, k_end_ptr, v_end_ptr, first_grows,
    HEADS: tl.constexpr, PER_KV: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr,
    K_KIND: tl.constexpr, K_BITS: tl.constexpr, K_GROUP: tl.constexpr, K_PLANES: tl.constexpr,
    V_KIND: tl.constexpr, V_BITS: tl.constexpr, V_GROUP: tl.constexpr, V_PLANES: tl.constexpr,
    FAST: tl.constexpr, ADC: tl.constexpr, ADC_ROWS: tl.constexpr, HAS_MASK: tl.constexpr, SOFTCAP: tl.constexpr,
    GRAPHED: tl.constexpr,
):
    """Tiles of BLOCK_N positions on a grid anchored at the key store's start, in one of two launches (FAST: the
    compiled kernel holds one kind of loop only, so the generic tiles' registers and buffers do not lower the fast
    loop's occupancy). FAST: a split of the tiles inside both stores, by _mma_fast_tiles or _adc_fast_tiles (ADC_ROWS
    rows, not the 16 of a matrix product). Otherwise: split 0's fp16 sinks and the split's tiles outside the fast
    range (edges, the fp16 tail; every tile of layouts without a fast path), read as generic fp16 tiles and split
    into the value planes' column blocks."""
    pid = tl.program_id(0)
    split = tl.program_id(1)
    b = (pid // HEADS).to(tl.int64)
    h = (pid % HEADS).to(tl.int64)
    kv_head = tl.load(head_index_ptr + h)  # the model's KV head: its query heads are kv_head * PER_KV + r
    rows = tl.arange(0, BLOCK_M)
    dims = tl.arange(0, D)
    row_ok = rows < PER_KV
    q_head = q_ptr + b * q_sb + kv_head * PER_KV * q_sh
    q16 = (tl.load(q_head + rows[:, None] * q_sh + dims[None, :], mask=row_ok[:, None], other=0.0).to(tl.float32)
           * q_scale).to(tl.float16)
    m_i = tl.full([BLOCK_M], -1e30, tl.float32)  # finite: exp2(-inf - m) is 0 for rows that saw nothing, not NaN
    l_i = tl.zeros([BLOCK_M], tl.float32)
    VW: tl.constexpr = D // V_PLANES  # output channels per accumulator
    acc0 = tl.zeros([BLOCK_M, VW], tl.float32)
    acc1 = tl.zeros([BLOCK_M, VW], tl.float32)
    acc2 = tl.zeros([BLOCK_M, VW], tl.float32)
    acc3 = tl.zeros([BLOCK_M, VW], tl.float32)
    part = pid * num_parts + part_offset + split  # this program's partial: [B * HEADS, num_parts, PER_KV, ...]
    lo = anchor + split * split_tokens

    if FAST:  # a launch of fast tiles only: this split of [fast_lo, fast_hi), inside both stores
        hi = tl.minimum(lo + split_tokens, fast_hi)
        kc = kc_ptr + b * kc_sb + h * kc_sh
        ks, km = ks_ptr + b * kg_sb + h * kg_sh, km_ptr + b * kg_sb + h * kg_sh
        vc = vc_ptr + b * vc_sb + h * vc_sh
        vs, vm = vs_ptr + b * vg_sb + h * vg_sh, vm_ptr + b * vg_sb + h * vg_sh
        if ADC:  # this sequence's and head's table [subs, 2^K_BITS, ADC_ROWS]; vs: the head's value codebooks
            adc_rows = tl.arange(0, ADC_ROWS)
            table = table_ptr + (b * HEADS + h) * ((D // K_GROUP << K_BITS) * ADC_ROWS)
            m_f, l_f, o = _adc_fast_tiles(table, kc, kc_sn, k_store_start, vc, vc_sn, vs, v_store_start,
                                          mask_ptr + b * mask_sb, softcap, lo, hi, length, ADC_ROWS, BLOCK_N, D,
                                          K_BITS, K_GROUP, V_BITS, V_GROUP, HAS_MASK, SOFTCAP)
            # one accumulator (V_PLANES = 1): _store_partial stores the first alone
            _store_partial(part_o_ptr, part_ml_ptr, part * PER_KV + adc_rows, adc_rows < PER_KV, m_f, l_f, o, o, o,
                           o, D, V_PLANES)
        else:
            m_i, l_i, acc0, acc1, acc2, acc3 = _mma_fast_tiles(
                q16, q_head, q_sh, q_scale, kc, kc_sn, ks, km, kg_sn, k_store_start, vc, vc_sn, vs, vm, vg_sn,
                v_store_start, mask_ptr + b * mask_sb, softcap, lo, hi, length, m_i, l_i, acc0, acc1, acc2, acc3,
                PER_KV, BLOCK_M, BLOCK_N, D, K_KIND, K_BITS, K_GROUP, K_PLANES, V_KIND, V_BITS, V_GROUP, V_PLANES,
                HAS_MASK, SOFTCAP)
            _store_partial(part_o_ptr, part_ml_ptr, part * PER_KV + rows, row_ok, m_i, l_i, acc0, acc1, acc2, acc3,
                           D, V_PLANES)
    else:  # generic tiles: split 0's fp16 sinks, then the split's tiles, all outside [fast_lo, fast_hi)
        if GRAPHED:  # a CUDA-graph replay `steps` decode steps after its capture: the stores and length have grown
            steps = tl.load(steps_ptr)
            k_store_end = tl.load(k_end_ptr)
            v_store_end = tl.load(v_end_ptr)
            length += steps
            first += first_grows * steps
        lo += tl.where(lo >= fast_lo, fast_hi - fast_lo, 0)  # splits past the fast range start after it
        hi = tl.minimum(lo + split_tokens, length)
        sink_end = tl.where(split == 0, sink_len, 0)
        for start in range(0, sink_end, BLOCK_N):
            pos = start + tl.arange(0, BLOCK_N)
            valid = pos < sink_len
            offs = b * s_sb + h * s_sh + pos[:, None] * s_sn + dims[None, :]
            k = tl.load(sk_ptr + offs, mask=valid[:, None], other=0.0).to(tl.float16)
            v = tl.load(sv_ptr + offs, mask=valid[:, None], other=0.0).to(tl.float16)
            if HAS_MASK:
                valid &= tl.load(mask_ptr + b * mask_sb + pos, mask=valid, other=0) != 0
            p, alpha, m_i, l_i = _online_softmax(tl.dot(q16, tl.trans(k)), valid[None, :], m_i, l_i, softcap,
                                                 SOFTCAP)
            acc0, acc1, acc2, acc3 = _add_planes(acc0, acc1, acc2, acc3, alpha, p, v, V_PLANES)
        v_aux = (v_levels, v_out_index, v_out_value, vo_sb, vo_sn, v_vector_heads, v_table_sv, vo_sv)  # `aux`
        PRE_ROPE: tl.constexpr = K_KIND == 4 or K_KIND == 6
        if PRE_ROPE:
            tile_cos, tile_sin, offset_cos, offset_sin, turn_cos, turn_sin = _rope_start(inv_freq, rope_scale, lo,
                                                                                         BLOCK_N, D)
        # the edges, the fp16 tail (a split never reaches into the fast range): first the tiles inside both stores,
        # then those that reach past one, each loop compiled with what it reads (a branch per tile between the
        # two made Triton decode the store twice, in the layout of each use)
        whole = lo + tl.maximum(tl.minimum(tl.minimum(k_store_end, v_store_end), hi) - lo, 0) // BLOCK_N * BLOCK_N
        # KVQuant's codes and value ranges, the first pass's longest waits, are loaded a tile ahead (Nsight Compute:
        # docs/gpu-log.md); the pipeliner's stages took twice the time
        AHEAD: tl.constexpr = K_KIND == 4 and V_KIND == 5
        for tail_pass in tl.static_range(2):
            if tail_pass == 1:
                begin, end = whole, hi
            else:
                begin, end = lo, whole
            k_next, v_next = None, None
            if AHEAD and tail_pass == 0:
                k_next = _nuq_loads(begin, b, h, kc_ptr, kc_sb, kc_sh, kc_sn, ks_ptr, km_ptr, kg_sb, kg_sh, kg_sn,
                                    k_store_start, k_store_end, D, BLOCK_N, K_KIND, K_BITS)
                v_next = _nuq_loads(begin, b, h, vc_ptr, vc_sb, vc_sh, vc_sn, vs_ptr, vm_ptr, vg_sb, vg_sh, vg_sn,
                                    v_store_start, v_store_end, D, BLOCK_N, V_KIND, V_BITS)
            for start in range(begin, end, BLOCK_N):
                k_loaded, v_loaded = k_next, v_next
                if AHEAD and tail_pass == 0:
                    k_next = _nuq_loads(start + BLOCK_N, b, h, kc_ptr, kc_sb, kc_sh, kc_sn, ks_ptr, km_ptr, kg_sb,
                                        kg_sh, kg_sn, k_store_start, k_store_end, D, BLOCK_N, K_KIND, K_BITS)
                    v_next = _nuq_loads(start + BLOCK_N, b, h, vc_ptr, vc_sb, vc_sh, vc_sn, vs_ptr, vm_ptr, vg_sb,
                                        vg_sh, vg_sn, v_store_start, v_store_end, D, BLOCK_N, V_KIND, V_BITS)
                if PRE_ROPE:  # the keys' cos and sin at positions start + [0, BLOCK_N)
                    cos, sin = _turn(tile_cos[None, :], tile_sin[None, :], offset_cos, offset_sin)
                    k_aux = (k_levels, k_out_index, k_out_value, ko_sb, ko_sn, k_vector_heads, k_table_sv, ko_sv,
                             cos, sin)
                    tile_cos, tile_sin = _turn(tile_cos, tile_sin, turn_cos, turn_sin)
                else:
                    k_aux = (k_levels, k_out_index, k_out_value, ko_sb, ko_sn, k_vector_heads, k_table_sv, ko_sv)
                pos = start + tl.arange(0, BLOCK_N)
                valid = (pos < hi) & (pos >= first)
                k = _read_tokens(start, b, h, kc_ptr, kc_sb, kc_sh, kc_sn, ks_ptr, km_ptr, kg_sb, kg_sh, kg_sn,
                                 kt_ptr, kt_sb, kt_sh, kt_sn, k_store_start, k_store_end, k_tail_start, length, k_aux,
                                 k_loaded, D, BLOCK_N, K_KIND, K_BITS, K_GROUP, tail_pass == 1)
                v = _read_tokens(start, b, h, vc_ptr, vc_sb, vc_sh, vc_sn, vs_ptr, vm_ptr, vg_sb, vg_sh, vg_sn,
                                 vt_ptr, vt_sb, vt_sh, vt_sn, v_store_start, v_store_end, v_tail_start, length, v_aux,
                                 v_loaded, D, BLOCK_N, V_KIND, V_BITS, V_GROUP, tail_pass == 1)
                if HAS_MASK:
                    valid &= tl.load(mask_ptr + b * mask_sb + pos, mask=valid, other=0) != 0
                p, alpha, m_i, l_i = _online_softmax(tl.dot(q16, tl.trans(k)), valid[None, :], m_i, l_i, softcap,
                                                     SOFTCAP)
                acc0, acc1, acc2, acc3 = _add_planes(acc0, acc1, acc2, acc3, alpha, p, v, V_PLANES)
        _store_partial(part_o_ptr, part_ml_ptr, part * PER_KV + rows, row_ok, m_i, l_i, acc0, acc1, acc2, acc3, D,
                       V_PLANES)


@triton.jit(do_not_specialize=["num_parts"])
def _merge_partials_kernel(part_o_ptr, part_ml_ptr, head_index_ptr, out_ptr, out_sb, out_sh, lse_ptr, lse_sb,
                           num_parts, HEADS: tl.constexpr, PER_KV: tl.constexpr, BLOCK_PARTS: tl.constexpr,
                           D: tl.constexpr, BLOCK_D: tl.constexpr, HAS_LSE: tl.constexpr):
    """One program per (sequence, query head, BLOCK_D output channels): weight each partial softmax (a split's) by
    2^(its max - the max) and normalise, BLOCK_PARTS partials at a time (rescaled as the max grows; one block but
    for the longest splits); HAS_LSE: also store the row's log-sum-exp of its base-2 scores (+inf for a row that
    read nothing, so that weights rebuilt from it are 0)."""
    pid = tl.program_id(0)
    bh = pid // PER_KV
    r = pid % PER_KV
    b = bh // HEADS
    kv_head = tl.load(head_index_ptr + bh % HEADS)
    dims = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    m_max = tl.full([], float("-inf"), tl.float32)
    total = tl.zeros([], tl.float32)
    acc = tl.zeros([BLOCK_D], tl.float32)
    for first in range(0, num_parts, BLOCK_PARTS):
        parts = first + tl.arange(0, BLOCK_PARTS)
        ok = parts < num_parts
        part = (bh * num_parts + parts) * PER_KV + r
        m = tl.load(part_ml_ptr + part * 2, mask=ok, other=float("-inf"))
        l = tl.load(part_ml_ptr + part * 2 + 1, mask=ok, other=0.0)
        o = tl.load(part_o_ptr + part[:, None] * D + dims[None, :], mask=ok[:, None], other=0.0)
        m_new = tl.maximum(m_max, tl.max(m, 0))  # finite from the first block on: its part 0 exists
        alpha = tl.exp2(m_max - m_new)
        w = tl.where(ok, tl.exp2(m - m_new), 0.0)
        total = total * alpha + tl.sum(l * w, 0)
        acc = acc * alpha + tl.sum(o * w[:, None], 0)
        m_max = m_new
    merged = acc / tl.where(total > 0, total, 1.0)  # a fully masked row reads nothing: 0
    tl.store(out_ptr + b * out_sb + (kv_head * PER_KV + r) * out_sh + dims, merged.to(out_ptr.dtype.element_ty))
    if HAS_LSE and tl.program_id(1) == 0:
        tl.store(lse_ptr + b * lse_sb + kv_head * PER_KV + r, tl.where(total > 0, m_max + tl.log2(total), float("inf")))


@functools.cache
def _multiprocessors(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def _target_programs(device: torch.device, launch: Launch) -> int:
    if device.type != "cuda":  # Triton's interpreter (tests on the CPU): few programs keep it quick, two splits
        return 8
    return launch.programs_per_sm * _multiprocessors(device)


def _stream_args(stream: TokenStream, placeholder: torch.Tensor) -> tuple:
    """Kernel arguments of one stream: codes (or fp16 tokens), scale, min with their strides, tail, boundaries, and
    what KVQuant's layouts read besides: levels, sparse outliers and their strides. Codebook layouts pass their
    codebooks [heads, subs, 2^bits, width] in the scale's place (per head, not per sequence); nuq keys their
    thresholds' half range and midpoint [heads, D]; nuq values each token's stored range [B, vectors, n]; bit planes
    their lo and hi [B, vectors, n] and, in the levels' place, their row table [vectors, n, 2]; then QAQ's heads per
    coded vector, the row table's vector stride and the outliers' (1, 0, 0 for the others; KVQuant's outliers taken
    per head: their slots per head as the outliers' stride)."""
    layout = stream.codec.layout
    packed = stream.packed() if stream.store_end > stream.store_start else {}
    codes = packed.get("x" if layout.kind == "fp16" else "codes", placeholder)
    scale, low = packed.get("scale", placeholder), packed.get("min", placeholder)
    scale_strides = scale.stride()[:3]
    levels, out_index, out_value = placeholder, packed.get("outlier_index", placeholder), placeholder
    vector_heads, table_sv, outlier_sv = 1, 0, 0
    if layout.kind in OUTLIER_KINDS:
        out_value = packed.get("outlier_value", placeholder)
    if layout.kind.startswith("codebook"):
        scale = stream.codec.codebooks
        scale_strides = (0, scale.stride(0), 0)
        assert scale[0].is_contiguous(), "kernel reads a head's codebooks as one [subs, 2^bits, width] block"
    elif layout.kind == "nuq_keys":
        scale, low = (t.reshape(t.shape[0], -1) for t in (stream.codec.half_range, stream.codec.midpoint))
        scale_strides = (0, scale.stride(0), 0)
    elif layout.kind == "nuq_values" and "range" in packed:
        stored = packed["range"]  # [B, vectors, n, (midpoint, half range)]: one vector for all heads, or one each
        scale, low = stored[..., 1], stored[..., 0]
        scale_strides = (stored.stride(0), stored.stride(1) if stored.shape[1] > 1 else 0, stored.stride(2))
    elif layout.kind == "bitplanes" and packed:  # per vector and token fp16 lo, hi [B, vectors, n]
        scale, low = packed["lo"], packed["hi"]
        scale_strides = scale.stride()
        vector_heads = stream.codec.heads // stream.codec.vectors
        widths = stream.store["widths"]
        levels = stream.codec.row_table(widths.data[:, :, widths.begin :])  # to its capacity: a replay's tokens too
        table_sv, outlier_sv = levels.stride(0), out_index.stride(1)
    if layout.kind.startswith("nuq"):
        levels = stream.codec.codebook.levels.contiguous()
        outlier_sv = stream.codec.slots if stream.codec.per_head_vectors else 0  # head h's slots from h * slots on
    tail = stream.tail if stream.tail is not None and stream.tail.shape[2] else placeholder
    for tensor in (codes, tail, out_index, out_value) if layout.kind in OUTLIER_KINDS else (codes, scale, low, tail):
        assert tensor.stride(-1) == 1 or tensor is placeholder, "kernel reads rows with unit stride"
    return (codes, *codes.stride()[:3], scale, low, *scale_strides, tail, *tail.stride()[:3],
            stream.store_start, stream.store_end, stream.tail_start, levels, out_index, out_value,
            out_index.stride(0), out_index.stride(2), vector_heads, table_sv, outlier_sv)


def _rope_args(keys: TokenStream, placeholder: torch.Tensor) -> tuple:
    """inv_freq [D / 2] and attention scaling of the model's rotary embedding, for keys stored before RoPE."""
    if keys.codec.layout.kind not in PRE_ROPE_KINDS:
        return placeholder, 1.0
    return frequencies(keys.codec.model)


def _layout_args(stream: TokenStream, head_dim: int) -> tuple[int, int, int]:
    layout = stream.codec.layout
    group = layout.group
    if layout.kind == "token_groups" and "scale" in stream.store:  # groups as stored: codecs cap them at head_dim
        group = head_dim // stream.store["scale"].view().shape[-1]
    if layout.kind in OUTLIER_KINDS:  # the kernel's GROUP: outlier slots per token (QAQ: per coded vector), as stored
        group = stream.store["outlier_index"].view().shape[-1] if "outlier_index" in stream.store else 0
        if layout.kind.startswith("nuq") and stream.codec.per_head_vectors and group:
            group = stream.codec.slots  # slots per head: a head compares its own
    return LAYOUT_IDS[layout.kind], layout.bits, group


def _layouts(keys: TokenStream, values: TokenStream, dim: int) -> tuple[bool, dict]:
    """Whether scalar codes (or fp16) take the mma fast path, and the kernel's layout constants: kinds, widths,
    groups, code planes."""
    (k_kind, k_bits, k_group), (v_kind, v_bits, v_group) = _layout_args(keys, dim), _layout_args(values, dim)
    planes_fit = lambda bits: bits in (2, 4, 8) and dim * bits // 8 >= 16  # noqa: E731  (a plane feeds tl.dot)
    k_fast = k_kind == 0 or (k_kind == 2 and planes_fit(k_bits))
    v_fast = v_kind == 0 or (v_kind == 1 and planes_fit(v_bits))
    k_planes = 8 // k_bits if k_kind == 2 and k_fast else 1
    v_planes = 8 // v_bits if v_kind == 1 and v_fast else 1
    return k_fast and v_fast, dict(K_KIND=k_kind, K_BITS=k_bits, K_GROUP=k_group, K_PLANES=k_planes, V_KIND=v_kind,
                                   V_BITS=v_bits, V_GROUP=v_group, V_PLANES=v_planes)


def _fast_range(keys: TokenStream, values: TokenStream, first: int, block: int, fast: bool) -> tuple[int, int, int]:
    """The tile grid's anchor and the fast range on it: tiles inside both stores, aligned to key groups (empty
    without a fast path)."""
    anchor = keys.store_start if keys.store_end > keys.store_start else first
    stored = keys.store_end > keys.store_start and values.store_end > values.store_start
    if not (fast and stored):
        return anchor, anchor, anchor
    fast_lo = anchor + cdiv(max(first, keys.store_start, values.store_start) - anchor, block) * block
    fast_hi = max(fast_lo, anchor + (min(keys.store_end, values.store_end) - anchor) // block * block)
    return anchor, fast_lo, fast_hi


def _score_tables(codebooks: torch.Tensor, query: torch.Tensor, head_index: torch.Tensor, per_kv: int, rows: int,
                  scale: float) -> torch.Tensor:
    """ADC tables of one decode step, float16 [B, heads, subs, 2^bits, rows]: `scale` x query row r's sub-vector s
    · centroid k of s, for the group's heads (codebooks [heads, subs, 2^bits, width]); rows past per_kv are 0."""
    subs, width = codebooks.shape[1], codebooks.shape[3]
    grouped = query[:, :, 0].unflatten(1, (-1, per_kv)).index_select(1, head_index)  # [B, heads, per_kv, D]
    table = torch.einsum("bhrsc,hskc->bhskr", grouped.float().unflatten(-1, (subs, width)), codebooks) * scale
    return torch.nn.functional.pad(table, (0, rows - per_kv)).half().contiguous()


def _splits(tiles: int, target: int, block: int, least: int = 1) -> tuple[int, int]:
    """(splits, tokens per split) that share `tiles` tiles of `block` positions among about `target` programs, at
    least `least` tiles each."""
    splits = max(1, min(tiles // least, target))
    split_tokens = cdiv(tiles, splits) * block
    return cdiv(tiles * block, split_tokens), split_tokens


_COMPILED_AHEAD: set[tuple] = set()  # (kernel, device, constants) of the launches compiled ahead in this process


def _compile_ahead(kernel, device: torch.device, args: tuple, constants: dict) -> None:
    """Compile, once per process, a launch that a growing layer takes later (its fast tiles once its stores hold
    enough of them, the one-warp launch once they hold many more), so that its JIT compile (a second or more on a
    GPU) comes with the first steps rather than midway through a generation; nothing runs. Not while a CUDA graph is
    being captured."""
    key = (kernel, device, *sorted(constants.items()))
    if key in _COMPILED_AHEAD or (device.type == "cuda" and torch.cuda.is_current_stream_capturing()):
        return
    _COMPILED_AHEAD.add(key)
    kernel.warmup(*args, grid=(1,), **constants)


def _launch_options(launch: Launch) -> dict:
    return dict(BLOCK_N=launch.block_n, num_warps=launch.num_warps, num_stages=launch.num_stages,
                maxnreg=launch.max_registers or None)


def _merge_block(target: int) -> int:
    """Partials per merge iteration from the programs per head and sequence, not from a step's count: a growing
    context keeps one compiled merge (edges and tails add a few partials, or one more iteration)."""
    return min(MERGE_PARTS, next_power_of_2(target + MERGE_EDGE_PARTS))


def decode_attention(keys: TokenStream, values: TokenStream, head_index: torch.Tensor, per_kv: int,
                     query: torch.Tensor, out: torch.Tensor, mask_row: torch.Tensor | None, scaling: float,
                     softcap: float | None, recent: int | None, lse: torch.Tensor | None = None,
                     graph: GraphStep | None = None) -> None:
    """Attention of one query token per sequence to one head group, written into `out` [B, 1, Hq, D].

    query [B, Hq, 1, D] holds all query heads of the layer; `head_index` (int32) lists the group's KV heads, whose
    query heads are head * per_kv + r. mask_row [B, length] (bool) marks the positions each sequence may read.
    lse [B, Hq] (float32), if given, receives each of the group's query rows' log-sum-exp of its base-2 scores
    (log2(e) x the logits).
    graph: the step is being captured into a CUDA graph whose replays move it on by `graph.steps` (graphs.py): the
    generic launch covers the positions the last replay reaches and reads the grown stores' ends, the length and a
    window's start from the device (the mask row must span them).
    """
    batch, _, _, dim = query.shape
    heads = head_index.numel()
    length = keys.length
    first = keys.first_position()
    if recent is not None:  # streaming heads and sliding windows: only the last `recent` tokens besides sinks
        first = max(first, length - recent)
    adc = keys.codec.layout.kind == values.codec.layout.kind == "codebook"  # codebook codes both sides: adc tiles
    mma, constants = _layouts(keys, values, dim)
    bitplanes = "bitplanes" in (keys.codec.layout.kind, values.codec.layout.kind)
    path = "adc" if adc else "mma" if mma else "bitplanes" if bitplanes else "generic"
    batched_min = BATCHED_MIN_TOKENS * _target_programs(query.device, LAUNCH["mma_batched"])  # heads x positions
    if path == "mma" and batch * heads * (length - first) >= batched_min:
        path = "mma_batched"  # enough positions for one-warp programs with long splits (docs/gpu-log.md)
    launch = LAUNCH[path]
    block = launch.block_n
    anchor, fast_lo, fast_hi = _fast_range(keys, values, first, block, adc or mma)
    target = cdiv(_target_programs(query.device, launch), batch * heads)  # programs per head and sequence
    # a short fast range (a streaming window) is read by the generic launch alone, and so is a window whose start a
    # graph's replays move on (fast tiles do not check it)
    least = min(target, launch.fast_min_tiles or target)
    fast = (fast_hi - fast_lo) // block >= least and (graph is None or recent is None)
    start = anchor + max(first - anchor, 0) // block * block  # the first tile with a position to read
    reach = length if graph is None else length + graph.span - 1  # the length the last replay reaches
    if fast:  # fast tiles split over the GPU; generic tiles around them one per program (no serial tail)
        fast_splits, fast_split_tokens = _splits((fast_hi - fast_lo) // block, target, block, launch.min_split_tiles)
        generic_splits = max(1, (fast_lo - start) // block + cdiv(reach - fast_hi, block))
        generic_split_tokens = block
    else:
        fast_splits, fast_split_tokens, fast_lo, fast_hi = 0, block, start, start
        generic_splits, generic_split_tokens = _splits(cdiv(max(reach - start, 1), block), target, block,
                                                       launch.min_split_tiles)
    parts = fast_splits + generic_splits
    part_o = torch.empty(batch * heads * parts * per_kv * dim, dtype=torch.float32, device=query.device)
    part_ml = torch.empty(batch * heads * parts * per_kv * 2, dtype=torch.float32, device=query.device)
    placeholder = part_ml[None, None, None]  # any 4-d tensor: never dereferenced where a stream lacks a part
    sinks_k = keys.sinks if keys.sink_len else placeholder
    sinks_v = values.sinks if values.sink_len else placeholder
    assert sinks_k.stride() == sinks_v.stride() or not keys.sink_len
    mask = mask_row if mask_row is not None else placeholder
    scale = scaling if softcap else scaling * LOG2E
    table = placeholder
    adc_rows = next_power_of_2(per_kv)
    if fast and adc:
        table = _score_tables(keys.codec.codebooks, query, head_index, per_kv, adc_rows, scale)
    elif adc:  # an empty fp16 tensor in the tables' place: the fast launch compiled ahead takes their type
        table = torch.empty(0, dtype=torch.float16, device=query.device)
    args = (query, query.stride(0), query.stride(1), head_index, part_o, part_ml, table,
            *_stream_args(keys, placeholder), *_stream_args(values, placeholder), *_rope_args(keys, placeholder),
            sinks_k, sinks_v, *sinks_k.stride()[:3], keys.sink_len, mask, mask.stride(0), scale, softcap or 0.0,
            first)
    # a replay's step count, each stream's store end, a window's start moving on
    graph_args = (placeholder, placeholder, placeholder, 0) if graph is None else (
        graph.steps, graph.store_end(keys), graph.store_end(values), int(recent is not None))
    constants.update(HEADS=heads, PER_KV=per_kv, BLOCK_M=max(16, adc_rows), D=dim, ADC=adc, ADC_ROWS=adc_rows,
                     HAS_MASK=mask_row is not None, SOFTCAP=bool(softcap), GRAPHED=graph is not None)
    fast_args = (*args, fast_lo, fast_lo, fast_hi, length, fast_split_tokens, parts, 0, *graph_args)
    merge_dims = min(MERGE_DIMS, dim)
    merge_args = (part_o, part_ml, head_index, out, out.stride(0), out.stride(2), placeholder if lse is None else lse,
                  0 if lse is None else lse.stride(0), parts)
    merge_constants = dict(HEADS=heads, PER_KV=per_kv, D=dim, BLOCK_D=merge_dims, HAS_LSE=lse is not None,
                           num_warps=4)
    if fast:
        _decode_split_kernel[(batch * heads, fast_splits)](*fast_args, FAST=True, **constants,
                                                            **_launch_options(launch))
    elif adc or mma:  # the fast launch this layer takes once its stores hold enough tiles
        _compile_ahead(_decode_split_kernel, query.device, fast_args,
                       {**constants, **_launch_options(launch), "FAST": True})
    if path == "mma" and (recent is None or batch * heads * recent >= batched_min):
        # the one-warp launch these stores move to once they hold many more positions (~200K for 8 heads at batch 1)
        batched = LAUNCH["mma_batched"]
        for fast_tiles in (True, False):
            _compile_ahead(_decode_split_kernel, query.device, fast_args,
                           {**constants, **_launch_options(batched), "FAST": fast_tiles})
        batched_target = cdiv(_target_programs(query.device, batched), batch * heads)
        _compile_ahead(_merge_partials_kernel, query.device, merge_args,
                       {**merge_constants, "BLOCK_PARTS": _merge_block(batched_target)})
    _decode_split_kernel[(batch * heads, generic_splits)](
        *args, start, fast_lo, fast_hi, length, generic_split_tokens, parts, fast_splits, *graph_args, FAST=False,
        **constants, **_launch_options(launch))
    _merge_partials_kernel[(batch * heads * per_kv, dim // merge_dims)](
        *merge_args, BLOCK_PARTS=_merge_block(target), **merge_constants)
