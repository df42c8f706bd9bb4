"""Fused decode attention that reads a head group's compressed streams directly (flash-decoding).

One program takes one (sequence, KV head, split of the context): it reads its share of the packed keys and values
(code planes unpacked and scaled in registers, one matrix product per plane), the fp16 tail, and, in split 0, the
fp16 sinks; it scores the query heads of that KV head together (GQA rows of one matrix product) and leaves a partial
softmax (row max, row sum, unnormalised output). A second kernel merges the splits by their log-sum-exp. No fp16
copy of the cache exists.

What a program reads for position p of a stream: the store if p < store_end, else the fp16 tail. In decode (one
query, after the previous chunk settled) this is exactly what the reference path reads.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from kvtool.runtime.stream import TokenStream

LAYOUT_IDS = {"fp16": 0, "token_groups": 1, "channel_groups": 2}  # kernels.LAYOUT_KINDS, as the kernel numbers them
BLOCK_N = 32  # positions per tile (H100, 128K, batch 1: 32 beat 64 and 128 for KIVI-2; docs/gpu.md)
PROGRAMS_PER_SM = 8  # split the context until the GPU runs about this many programs per multiprocessor
NUM_WARPS = 4  # warps per decode program
NUM_STAGES = 3  # software-pipelined loads of the tile loop
LOG2E = 1.4426950408889634


@triton.jit
def _read_stored(pos, b, h, codes_ptr, c_sb, c_sh, c_sn, scale_ptr, min_ptr, g_sb, g_sh, g_sn, store_start,
                 in_store, D: tl.constexpr, BLOCK_N: tl.constexpr, KIND: tl.constexpr, BITS: tl.constexpr,
                 GROUP: tl.constexpr):
    """float16 [BLOCK_N, D] of the packed store at positions `pos` (rows outside `in_store` read as 0)."""
    idx = pos - store_start
    dims = tl.arange(0, D)
    if KIND == 0:  # fp16 tokens
        ptrs = codes_ptr + b * c_sb + h * c_sh + idx[:, None] * c_sn + dims[None, :]
        x = tl.load(ptrs, mask=in_store[:, None], other=0.0).to(tl.float16)
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
                 t_sh, t_sn, store_start, store_end, tail_start, length, D: tl.constexpr, BLOCK_N: tl.constexpr,
                 KIND: tl.constexpr, BITS: tl.constexpr, GROUP: tl.constexpr):
    """float16 [BLOCK_N, D] of one stream at positions start .. start + BLOCK_N - 1: store first, then the tail."""
    pos = start + tl.arange(0, BLOCK_N)
    dims = tl.arange(0, D)
    in_store = (pos >= store_start) & (pos < store_end)
    if start + BLOCK_N <= store_end:  # the common case reads codes only
        x = _read_stored(pos, b, h, codes_ptr, c_sb, c_sh, c_sn, scale_ptr, min_ptr, g_sb, g_sh, g_sn, store_start,
                         in_store, D, BLOCK_N, KIND, BITS, GROUP)
    else:
        in_tail = (pos >= store_end) & (pos >= tail_start) & (pos < length)
        tail = tl.load(tail_ptr + b * t_sb + h * t_sh + (pos - tail_start)[:, None] * t_sn + dims[None, :],
                       mask=in_tail[:, None], other=0.0).to(tl.float16)
        if start < store_end:
            stored = _read_stored(pos, b, h, codes_ptr, c_sb, c_sh, c_sn, scale_ptr, min_ptr, g_sb, g_sh, g_sn,
                                  store_start, in_store, D, BLOCK_N, KIND, BITS, GROUP)
            x = tl.where(in_store[:, None], stored, tail)
        else:
            x = tail
    return x


@triton.jit
def _plane_fp16(raw, PLANE: tl.constexpr, BITS: tl.constexpr):
    """Codes of one plane of plane-major bytes [N, M] as fp16 [N, M]: each code OR-ed into the mantissa of 1024.0,
    then 1024 subtracted (cheaper than int->float)."""
    codes = (raw.to(tl.int16) >> (PLANE * BITS)) & ((1 << BITS) - 1)
    return (codes | 0x6400).to(tl.float16, bitcast=True) - 1024.0


@triton.jit
def _query_block(q_rows, row_ok, q_scale, BLOCK: tl.constexpr, WIDTH: tl.constexpr):
    """The scaled query's channels BLOCK*WIDTH .. (BLOCK+1)*WIDTH - 1, float32 [BLOCK_M, WIDTH]."""
    channels = BLOCK * WIDTH + tl.arange(0, WIDTH)
    return tl.load(q_rows + channels[None, :], mask=row_ok[:, None], other=0.0).to(tl.float32) * q_scale


@triton.jit
def _key_plane(q, raw, scale_row, min_row, g_sn, PLANE: tl.constexpr, BITS: tl.constexpr, WIDTH: tl.constexpr,
               BLOCK_N: tl.constexpr, GROUP: tl.constexpr):
    """Scores [BLOCK_M, BLOCK_N] from one plane of channel-grouped key codes (channels PLANE*WIDTH + j), dequantized
    in registers; q [BLOCK_M, WIDTH] (fp32) is the query's slice of those channels."""
    channels = (PLANE * WIDTH + tl.arange(0, WIDTH))[None, :]
    if BLOCK_N <= GROUP:  # the tile lies in one key group: one row of scales, broadcast over its tokens
        offs = channels
    else:
        offs = (tl.arange(0, BLOCK_N) // GROUP)[:, None] * g_sn + channels
    k = _plane_fp16(raw, PLANE, BITS) * tl.load(scale_row + offs) + tl.load(min_row + offs)
    return tl.dot(q.to(tl.float16), tl.trans(k.to(tl.float16)))


@triton.jit
def _value_plane(p, raw, scale_rows, min_rows, PLANE: tl.constexpr, BITS: tl.constexpr, WIDTH: tl.constexpr,
                 GROUP: tl.constexpr):
    """p @ values [BLOCK_M, WIDTH] for one plane of token-grouped value codes (channels PLANE*WIDTH + j), dequantized
    in registers."""
    if WIDTH <= GROUP:  # the plane lies in one channel group: one scale per token
        offs = tl.zeros([1, 1], tl.int32) + PLANE * WIDTH // GROUP
    else:
        offs = ((PLANE * WIDTH + tl.arange(0, WIDTH)) // GROUP)[None, :]
    v = _plane_fp16(raw, PLANE, BITS) * tl.load(scale_rows[:, None] + offs) + tl.load(min_rows[:, None] + offs)
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
    """Scores of one tile -> (weights p, rescale of what came before, new max, new sum); base 2."""
    if SOFTCAP:
        s = softcap * (1.0 - 2.0 / (tl.exp(2.0 * s / softcap) + 1.0)) * 1.4426950408889634  # softcap * tanh(s / softcap)
    s = tl.where(valid[None, :], s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(s - m_new[:, None])
    return p, alpha, m_new, l_i * alpha + tl.sum(p, 1)


# Integers that change from one decode step to the next: Triton would otherwise compile a variant for each pattern of
# "divisible by 16 / equal to 1" they show, i.e. recompile during generation.
_PER_STEP = ["kt_sb", "kt_sh", "k_store_start", "k_store_end", "k_tail_start", "vt_sb", "vt_sh", "v_store_start",
             "v_store_end", "v_tail_start", "sink_len", "mask_sb", "first", "anchor", "fast_lo", "fast_hi", "length",
             "split_tokens", "num_splits"]


@triton.jit(do_not_specialize=_PER_STEP)
def _decode_split_kernel(
    q_ptr, q_sb, q_sh, head_index_ptr, part_o_ptr, part_ml_ptr,
    kc_ptr, kc_sb, kc_sh, kc_sn, ks_ptr, km_ptr, kg_sb, kg_sh, kg_sn, kt_ptr, kt_sb, kt_sh, kt_sn,
    k_store_start, k_store_end, k_tail_start,
    vc_ptr, vc_sb, vc_sh, vc_sn, vs_ptr, vm_ptr, vg_sb, vg_sh, vg_sn, vt_ptr, vt_sb, vt_sh, vt_sn,
    v_store_start, v_store_end, v_tail_start,
    sk_ptr, sv_ptr, s_sb, s_sh, s_sn, sink_len,
    mask_ptr, mask_sb, q_scale, softcap, first, anchor, fast_lo, fast_hi, length, split_tokens, num_splits,
    HEADS: tl.constexpr, PER_KV: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr,
    K_KIND: tl.constexpr, K_BITS: tl.constexpr, K_GROUP: tl.constexpr, K_PLANES: tl.constexpr,
    V_KIND: tl.constexpr, V_BITS: tl.constexpr, V_GROUP: tl.constexpr, V_PLANES: tl.constexpr,
    FAST: tl.constexpr, HAS_MASK: tl.constexpr, SOFTCAP: tl.constexpr,
):
    """Tiles of BLOCK_N positions on a grid anchored at the key store's start. Tiles inside both stores take the
    fast path: each code plane (runtime/packing.py's pack_planes) is a plain [BLOCK_N, D / planes] tile of channels,
    dequantized in registers and multiplied without any interleaving (scores: a sum over key planes; output: one
    accumulator per value plane). Tiles at the edges (tail, window, sinks) read generic fp16 tiles, split into the
    same column blocks."""
    pid = tl.program_id(0)
    split = tl.program_id(1)
    b = (pid // HEADS).to(tl.int64)
    h = (pid % HEADS).to(tl.int64)
    kv_head = tl.load(head_index_ptr + h)  # the model's KV head: its query heads are kv_head * PER_KV + r
    rows = tl.arange(0, BLOCK_M)
    dims = tl.arange(0, D)
    row_ok = rows < PER_KV
    q_rows = q_ptr + b * q_sb + (kv_head * PER_KV + rows)[:, None] * q_sh
    q16 = (tl.load(q_rows + dims[None, :], mask=row_ok[:, None], other=0.0).to(tl.float32) * q_scale).to(tl.float16)
    m_i = tl.full([BLOCK_M], -1e30, tl.float32)  # finite: exp2(-inf - m) is 0 for rows that saw nothing, not NaN
    l_i = tl.zeros([BLOCK_M], tl.float32)
    VW: tl.constexpr = D // V_PLANES  # output channels per accumulator
    acc0 = tl.zeros([BLOCK_M, VW], tl.float32)
    acc1 = tl.zeros([BLOCK_M, VW], tl.float32)
    acc2 = tl.zeros([BLOCK_M, VW], tl.float32)
    acc3 = tl.zeros([BLOCK_M, VW], tl.float32)

    sink_end = tl.where(split == 0, sink_len, 0)  # split 0 also reads the fp16 sinks
    for start in range(0, sink_end, BLOCK_N):
        pos = start + tl.arange(0, BLOCK_N)
        valid = pos < sink_len
        offs = b * s_sb + h * s_sh + pos[:, None] * s_sn + dims[None, :]
        k = tl.load(sk_ptr + offs, mask=valid[:, None], other=0.0).to(tl.float16)
        v = tl.load(sv_ptr + offs, mask=valid[:, None], other=0.0).to(tl.float16)
        if HAS_MASK:
            valid &= tl.load(mask_ptr + b * mask_sb + pos, mask=valid, other=0) != 0
        p, alpha, m_i, l_i = _online_softmax(tl.dot(q16, tl.trans(k)), valid, m_i, l_i, softcap, SOFTCAP)
        acc0, acc1, acc2, acc3 = _add_planes(acc0, acc1, acc2, acc3, alpha, p, v, V_PLANES)

    lo = anchor + split * split_tokens
    hi = tl.minimum(lo + split_tokens, length)
    f_lo = tl.minimum(tl.maximum(fast_lo, lo), hi)
    f_hi = tl.maximum(tl.minimum(fast_hi, hi), f_lo)
    if FAST:  # compiled only for layouts with a fast path
        KW: tl.constexpr = D // K_PLANES
        qk0 = _query_block(q_rows, row_ok, q_scale, 0, KW)  # the query's channels of each key code plane
        qk1 = _query_block(q_rows, row_ok, q_scale, 1 % K_PLANES, KW)
        qk2 = _query_block(q_rows, row_ok, q_scale, 2 % K_PLANES, KW)
        qk3 = _query_block(q_rows, row_ok, q_scale, 3 % K_PLANES, KW)
        for start in range(f_lo, f_hi, BLOCK_N):  # inside both stores, aligned to key groups
            pos = start + tl.arange(0, BLOCK_N)
            valid = pos < hi
            if HAS_MASK:
                valid &= tl.load(mask_ptr + b * mask_sb + pos, mask=valid, other=0) != 0
            k_rows = kc_ptr + b * kc_sb + h * kc_sh + (start - k_store_start + tl.arange(0, BLOCK_N))[:, None] * kc_sn
            if K_KIND == 0:
                s = tl.dot(q16, tl.trans(tl.load(k_rows + dims[None, :])))
            else:
                raw = tl.load(k_rows + tl.arange(0, KW)[None, :])
                group_row = b * kg_sb + h * kg_sh + (start - k_store_start) // K_GROUP * kg_sn
                ks_row, km_row = ks_ptr + group_row, km_ptr + group_row
                s = _key_plane(qk0, raw, ks_row, km_row, kg_sn, 0, K_BITS, KW, BLOCK_N, K_GROUP)
                if K_PLANES > 1:
                    s += _key_plane(qk1, raw, ks_row, km_row, kg_sn, 1, K_BITS, KW, BLOCK_N, K_GROUP)
                if K_PLANES > 2:
                    s += _key_plane(qk2, raw, ks_row, km_row, kg_sn, 2, K_BITS, KW, BLOCK_N, K_GROUP)
                    s += _key_plane(qk3, raw, ks_row, km_row, kg_sn, 3, K_BITS, KW, BLOCK_N, K_GROUP)
            p, alpha, m_i, l_i = _online_softmax(s, valid, m_i, l_i, softcap, SOFTCAP)
            v_idx = start - v_store_start + tl.arange(0, BLOCK_N)
            v_rows = vc_ptr + b * vc_sb + h * vc_sh + v_idx[:, None] * vc_sn
            if V_KIND == 0:
                acc0, acc1, acc2, acc3 = _add_planes(acc0, acc1, acc2, acc3, alpha, p, tl.load(v_rows + dims[None, :]),
                                                     V_PLANES)
            else:
                raw = tl.load(v_rows + tl.arange(0, VW)[None, :])
                scales = vs_ptr + b * vg_sb + h * vg_sh + v_idx * vg_sn
                mins = vm_ptr + b * vg_sb + h * vg_sh + v_idx * vg_sn
                acc0 = acc0 * alpha[:, None] + _value_plane(p, raw, scales, mins, 0, V_BITS, VW, V_GROUP)
                if V_PLANES > 1:
                    acc1 = acc1 * alpha[:, None] + _value_plane(p, raw, scales, mins, 1, V_BITS, VW, V_GROUP)
                if V_PLANES > 2:
                    acc2 = acc2 * alpha[:, None] + _value_plane(p, raw, scales, mins, 2, V_BITS, VW, V_GROUP)
                    acc3 = acc3 * alpha[:, None] + _value_plane(p, raw, scales, mins, 3, V_BITS, VW, V_GROUP)

    for start in range(lo, hi, BLOCK_N):  # the rest of the split: edges of the stores, the fp16 tail
        if (start < f_lo) | (start >= f_hi):
            pos = start + tl.arange(0, BLOCK_N)
            valid = (pos < hi) & (pos >= first)
            k = _read_tokens(start, b, h, kc_ptr, kc_sb, kc_sh, kc_sn, ks_ptr, km_ptr, kg_sb, kg_sh, kg_sn, kt_ptr,
                             kt_sb, kt_sh, kt_sn, k_store_start, k_store_end, k_tail_start, length, D, BLOCK_N,
                             K_KIND, K_BITS, K_GROUP)
            v = _read_tokens(start, b, h, vc_ptr, vc_sb, vc_sh, vc_sn, vs_ptr, vm_ptr, vg_sb, vg_sh, vg_sn, vt_ptr,
                             vt_sb, vt_sh, vt_sn, v_store_start, v_store_end, v_tail_start, length, D, BLOCK_N,
                             V_KIND, V_BITS, V_GROUP)
            if HAS_MASK:
                valid &= tl.load(mask_ptr + b * mask_sb + pos, mask=valid, other=0) != 0
            p, alpha, m_i, l_i = _online_softmax(tl.dot(q16, tl.trans(k)), valid, m_i, l_i, softcap, SOFTCAP)
            acc0, acc1, acc2, acc3 = _add_planes(acc0, acc1, acc2, acc3, alpha, p, v, V_PLANES)

    part = (pid * num_splits + split) * PER_KV + rows  # partials [B * HEADS, splits, PER_KV, ...]
    out_rows = part_o_ptr + part[:, None] * D + tl.arange(0, VW)[None, :]
    tl.store(out_rows, acc0, mask=row_ok[:, None])
    if V_PLANES > 1:
        tl.store(out_rows + VW, acc1, mask=row_ok[:, None])
    if V_PLANES > 2:
        tl.store(out_rows + 2 * VW, acc2, mask=row_ok[:, None])
        tl.store(out_rows + 3 * VW, acc3, mask=row_ok[:, None])
    tl.store(part_ml_ptr + part * 2, m_i, mask=row_ok)
    tl.store(part_ml_ptr + part * 2 + 1, l_i, mask=row_ok)


@triton.jit(do_not_specialize=["num_splits"])
def _merge_splits_kernel(part_o_ptr, part_ml_ptr, head_index_ptr, out_ptr, out_sb, out_sh, num_splits,
                         HEADS: tl.constexpr, PER_KV: tl.constexpr, SPLITS: tl.constexpr, D: tl.constexpr):
    """One program per (sequence, query head): weight each split by 2^(its max - the max) and normalise."""
    pid = tl.program_id(0)
    bh = pid // PER_KV
    r = pid % PER_KV
    b = bh // HEADS
    kv_head = tl.load(head_index_ptr + bh % HEADS)
    splits = tl.arange(0, SPLITS)
    ok = splits < num_splits
    part = (bh * num_splits + splits) * PER_KV + r
    m = tl.load(part_ml_ptr + part * 2, mask=ok, other=float("-inf"))
    l = tl.load(part_ml_ptr + part * 2 + 1, mask=ok, other=0.0)
    m_max = tl.max(m, 0)
    w = tl.where(ok, tl.exp2(m - m_max), 0.0)
    total = tl.sum(l * w, 0)
    dims = tl.arange(0, D)
    o = tl.load(part_o_ptr + part[:, None] * D + dims[None, :], mask=ok[:, None], other=0.0)
    merged = tl.sum(o * w[:, None], 0) / tl.where(total > 0, total, 1.0)  # a fully masked row reads nothing: 0
    tl.store(out_ptr + b * out_sb + (kv_head * PER_KV + r) * out_sh + dims, merged.to(out_ptr.dtype.element_ty))


@functools.cache
def _target_programs(device: torch.device) -> int:
    if device.type != "cuda":  # Triton's interpreter (tests on the CPU): few programs keep it quick
        return 4
    return PROGRAMS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count


def _stream_args(stream: TokenStream, placeholder: torch.Tensor) -> tuple:
    """Kernel arguments of one stream: codes (or fp16 tokens), scale, min with their strides, tail, boundaries."""
    layout = stream.codec.layout
    packed = stream.packed() if stream.store_end > stream.store_start else {}
    codes = packed.get("x" if layout.kind == "fp16" else "codes", placeholder)
    scale, low = packed.get("scale", placeholder), packed.get("min", placeholder)
    tail = stream.tail if stream.tail is not None and stream.tail.shape[2] else placeholder
    for tensor in (codes, scale, low, tail):
        assert tensor.stride(-1) == 1 or tensor is placeholder, "kernel reads rows with unit stride"
    return (codes, *codes.stride()[:3], scale, low, *scale.stride()[:3], tail, *tail.stride()[:3],
            stream.store_start, stream.store_end, stream.tail_start)


def _layout_args(stream: TokenStream, head_dim: int) -> tuple[int, int, int]:
    layout = stream.codec.layout
    group = layout.group
    if layout.kind == "token_groups" and "scale" in stream.store:  # groups as stored: codecs cap them at head_dim
        group = head_dim // stream.store["scale"].view().shape[-1]
    return LAYOUT_IDS[layout.kind], layout.bits, group


def _plan(keys: TokenStream, values: TokenStream, dim: int, first: int) -> dict:
    """Tile size, code planes and the fast range: tiles inside both stores, aligned to key groups."""
    (k_kind, k_bits, k_group), (v_kind, v_bits, v_group) = _layout_args(keys, dim), _layout_args(values, dim)
    planes_fit = lambda bits: bits in (2, 4, 8) and dim * bits // 8 >= 16  # noqa: E731  (a plane feeds tl.dot)
    k_fast = k_kind == 0 or (k_kind == 2 and planes_fit(k_bits))
    v_fast = v_kind == 0 or (v_kind == 1 and planes_fit(v_bits))
    k_planes = 8 // k_bits if k_kind == 2 and k_fast else 1
    v_planes = 8 // v_bits if v_kind == 1 and v_fast else 1
    block = BLOCK_N
    stored = keys.store_end > keys.store_start and values.store_end > values.store_start
    anchor = keys.store_start if keys.store_end > keys.store_start else first
    fast_lo = fast_hi = anchor
    if k_fast and v_fast and stored:
        fast_lo = anchor + triton.cdiv(max(first, keys.store_start, values.store_start) - anchor, block) * block
        fast_hi = max(fast_lo, anchor + (min(keys.store_end, values.store_end) - anchor) // block * block)
    return dict(anchor=anchor, fast_lo=fast_lo, fast_hi=fast_hi, BLOCK_N=block, FAST=k_fast and v_fast,
                K_KIND=k_kind, K_BITS=k_bits, K_GROUP=k_group, K_PLANES=k_planes, V_KIND=v_kind, V_BITS=v_bits,
                V_GROUP=v_group, V_PLANES=v_planes)


def decode_attention(keys: TokenStream, values: TokenStream, head_index: torch.Tensor, per_kv: int,
                     query: torch.Tensor, out: torch.Tensor, mask_row: torch.Tensor | None, scaling: float,
                     softcap: float | None, recent: int | None) -> None:
    """Attention of one query token per sequence to one head group, written into `out` [B, 1, Hq, D].

    query [B, Hq, 1, D] holds all query heads of the layer; `head_index` (int32) lists the group's KV heads, whose
    query heads are head * per_kv + r. mask_row [B, length] (bool) marks the positions each sequence may read.
    """
    batch, _, _, dim = query.shape
    heads = head_index.numel()
    length = keys.length
    first = keys.first_position()
    if recent is not None:  # streaming heads and sliding windows: only the last `recent` tokens besides sinks
        first = max(first, length - recent)
    plan = _plan(keys, values, dim, first)
    block, anchor = plan["BLOCK_N"], plan.pop("anchor")
    tiles = triton.cdiv(max(length - anchor, 1), block)
    splits = max(1, min(tiles, triton.cdiv(_target_programs(query.device), batch * heads)))
    split_tokens = triton.cdiv(tiles, splits) * block
    splits = triton.cdiv(tiles * block, split_tokens)
    part_o = torch.empty(batch * heads * splits * per_kv * dim, dtype=torch.float32, device=query.device)
    part_ml = torch.empty(batch * heads * splits * per_kv * 2, dtype=torch.float32, device=query.device)
    placeholder = part_ml[None, None, None]  # any 4-d tensor: never dereferenced where a stream lacks a part
    sinks_k = keys.sinks if keys.sink_len else placeholder
    sinks_v = values.sinks if values.sink_len else placeholder
    assert sinks_k.stride() == sinks_v.stride() or not keys.sink_len
    mask = mask_row if mask_row is not None else placeholder
    scale = scaling if softcap else scaling * LOG2E
    _decode_split_kernel[(batch * heads, splits)](
        query, query.stride(0), query.stride(1), head_index, part_o, part_ml,
        *_stream_args(keys, placeholder), *_stream_args(values, placeholder),
        sinks_k, sinks_v, *sinks_k.stride()[:3], keys.sink_len,
        mask, mask.stride(0), scale, softcap or 0.0, first, anchor, plan.pop("fast_lo"), plan.pop("fast_hi"), length,
        split_tokens, splits, HEADS=heads, PER_KV=per_kv, BLOCK_M=max(16, triton.next_power_of_2(per_kv)), D=dim,
        HAS_MASK=mask_row is not None, SOFTCAP=bool(softcap), num_warps=NUM_WARPS, num_stages=NUM_STAGES, **plan,
    )
    _merge_splits_kernel[(batch * heads * per_kv,)](
        part_o, part_ml, head_index, out, out.stride(0), out.stride(2), splits,
        HEADS=heads, PER_KV=per_kv, SPLITS=triton.next_power_of_2(splits), D=dim, num_warps=4,
    )
