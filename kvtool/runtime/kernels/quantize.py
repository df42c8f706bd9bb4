"""Quantize-on-append: the codecs' encodes of new tokens in a launch or three instead of tens of small PyTorch ops
(a decode step appends one value token per layer, and keys flush R at a time), with the same results bit for bit.

KIVI: min-max quantization and bit packing (runtime/packing.py's `minmax_quantize` + `pack_planes`): the range is
rounded to fp16 outward (min down, scale up) and codes round half to even, as torch.round does. KVQuant: nuq codes
and sparse outliers (`nuq_encode`). QAQ: mixed-width bit planes with sparse outliers (`bitplane_quantize`). MILLION
and CQ: nearest centroids (`codebook_encode`; near-equidistant centroids may swap, their sums rounding otherwise).

Every grid numbers the tokens on axis 0: CUDA caps axes 1 and 2 at 65,535 programs, and one append (a whole prompt
through HF's generate) may hold more tokens than that.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kvtool.runtime.kernels import cdiv, next_power_of_2


@triton.jit
def _fp16_outward(x, DOWN: tl.constexpr):
    """x (float32) rounded to the nearest fp16, then one fp16 step down (up) if that landed above (below) x."""
    h = x.to(tl.float16)
    bits = h.to(tl.int16, bitcast=True)
    if DOWN:
        wrong = h.to(tl.float32) > x
        step = tl.where(h > 0, bits - 1, tl.where(h < 0, bits + 1, -32767))  # -32767 is 0x8001: the -0 side's tiniest
    else:
        wrong = h.to(tl.float32) < x
        step = tl.where(h > 0, bits + 1, tl.where(h < 0, bits - 1, 1))
    return tl.where(wrong, step.to(tl.int16).to(tl.float16, bitcast=True), h)


@triton.jit
def _codes(x, lo, scale, LEVELS: tl.constexpr):
    """round((x - lo) / scale) clamped to 0..LEVELS, ties to even."""
    y = tl.div_rn(x - lo, scale)
    r = tl.floor(y + 0.5)
    r = tl.where((r - y == 0.5) & (r % 2 == 1), r - 1, r)
    return tl.minimum(tl.maximum(r, 0.0), LEVELS).to(tl.uint8)


@triton.jit
def _pack_planes(codes, ROWS: tl.constexpr, D: tl.constexpr, BITS: tl.constexpr):
    """uint8 codes [ROWS, D] -> plane-major bytes [ROWS, D * BITS / 8] (runtime/packing.py's pack_planes)."""
    PER: tl.constexpr = 8 // BITS
    planes = tl.reshape(codes.to(tl.int32), (ROWS, PER, D // PER))  # plane i: channels i*D/PER .. (i+1)*D/PER - 1
    shifts = (tl.arange(0, PER) * BITS)[None, :, None]
    return tl.sum(planes << shifts, 1).to(tl.uint8)


@triton.jit(do_not_specialize=["x_sb", "x_sh", "tokens"])  # vary per append: no recompiles during generation
def _quantize_token_groups(x_ptr, x_sb, x_sh, x_sn, codes_ptr, scale_ptr, min_ptr, heads, tokens,
                           D: tl.constexpr, GROUP: tl.constexpr, BITS: tl.constexpr, BLOCK_T: tl.constexpr):
    """Per token, each GROUP channels share a scale and min (KIVI values). Program: BLOCK_T tokens of one head."""
    bh = tl.program_id(1)
    b, h = bh // heads, bh % heads
    NG: tl.constexpr = D // GROUP
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    ok = t < tokens
    x = tl.load(x_ptr + b.to(tl.int64) * x_sb + h * x_sh + t[:, None] * x_sn + tl.arange(0, D)[None, :],
                mask=ok[:, None], other=0.0).to(tl.float32)
    x = tl.reshape(x, (BLOCK_T, NG, GROUP))
    lo = _fp16_outward(tl.min(x, 2), True)  # [T, NG]
    hi = tl.max(x, 2)
    scale = _fp16_outward(tl.maximum(tl.div_rn(hi - lo.to(tl.float32), (1 << BITS) - 1), 1e-6), False)
    codes = _codes(x, lo.to(tl.float32)[:, :, None], scale.to(tl.float32)[:, :, None], (1 << BITS) - 1)
    packed = _pack_planes(tl.reshape(codes, (BLOCK_T, D)), BLOCK_T, D, BITS)
    row = (bh * tokens + t).to(tl.int64)
    tl.store(codes_ptr + row[:, None] * (D * BITS // 8) + tl.arange(0, D * BITS // 8)[None, :], packed,
             mask=ok[:, None])
    group_at = row[:, None] * NG + tl.arange(0, NG)[None, :]
    tl.store(scale_ptr + group_at, scale, mask=ok[:, None])
    tl.store(min_ptr + group_at, lo, mask=ok[:, None])


@triton.jit(do_not_specialize=["x_sb", "x_sh", "groups"])
def _quantize_channel_groups(x_ptr, x_sb, x_sh, x_sn, codes_ptr, scale_ptr, min_ptr, heads, groups,
                             D: tl.constexpr, GROUP: tl.constexpr, BITS: tl.constexpr):
    """Per channel, each GROUP consecutive tokens share a scale and min (KIVI keys). Program: one group, one head."""
    bh = tl.program_id(1)
    grp = tl.program_id(0)
    b, h = bh // heads, bh % heads
    t = grp * GROUP + tl.arange(0, GROUP)
    dims = tl.arange(0, D)
    x = tl.load(x_ptr + b.to(tl.int64) * x_sb + h * x_sh + t[:, None] * x_sn + dims[None, :]).to(tl.float32)
    lo = _fp16_outward(tl.min(x, 0), True)  # [D]
    hi = tl.max(x, 0)
    scale = _fp16_outward(tl.maximum(tl.div_rn(hi - lo.to(tl.float32), (1 << BITS) - 1), 1e-6), False)
    codes = _codes(x, lo.to(tl.float32)[None], scale.to(tl.float32)[None], (1 << BITS) - 1)
    packed = _pack_planes(codes, GROUP, D, BITS)  # [GROUP, D * BITS / 8]
    rows = (bh * groups * GROUP + t[:, None]).to(tl.int64)
    tl.store(codes_ptr + rows * (D * BITS // 8) + tl.arange(0, D * BITS // 8)[None, :], packed)
    channels = (bh * groups + grp).to(tl.int64) * D + dims
    tl.store(scale_ptr + channels, scale)
    tl.store(min_ptr + channels, lo)


def _outputs(x: torch.Tensor, bits: int, scale_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    batch, heads, tokens, dim = x.shape
    return {
        "codes": torch.empty(batch, heads, tokens, dim * bits // 8, dtype=torch.uint8, device=x.device),
        "scale": torch.empty(scale_shape, dtype=torch.float16, device=x.device),
        "min": torch.empty(scale_shape, dtype=torch.float16, device=x.device),
    }


def quantize_token_groups(x: torch.Tensor, bits: int, group: int) -> dict[str, torch.Tensor]:
    """x [B, H, n, D] -> codes [B, H, n, D*bits/8], scale and min [B, H, n, D/group] (fp16)."""
    batch, heads, tokens, dim = x.shape
    out = _outputs(x, bits, (batch, heads, tokens, dim // group))
    block = min(16, next_power_of_2(tokens))
    x = x if x.stride(-1) == 1 else x.contiguous()
    _quantize_token_groups[(cdiv(tokens, block), batch * heads)](
        x, x.stride(0), x.stride(1), x.stride(2), out["codes"], out["scale"], out["min"], heads, tokens,
        D=dim, GROUP=group, BITS=bits, BLOCK_T=block,
    )
    return out


def quantize_channel_groups(x: torch.Tensor, bits: int, group: int) -> dict[str, torch.Tensor]:
    """x [B, H, n, D] (n a multiple of group) -> codes [B, H, n, D*bits/8], scale and min [B, H, n/group, D]."""
    batch, heads, tokens, dim = x.shape
    out = _outputs(x, bits, (batch, heads, tokens // group, dim))
    x = x if x.stride(-1) == 1 else x.contiguous()
    _quantize_channel_groups[(tokens // group, batch * heads)](
        x, x.stride(0), x.stride(1), x.stride(2), out["codes"], out["scale"], out["min"], heads, tokens // group,
        D=dim, GROUP=group, BITS=bits,
    )
    return out


@triton.jit
def _larger(a, a_at, a_x, b, b_at, b_x):
    """_take_outliers' reduction: the larger entry (ties to the lower offset), its offset and value carried along."""
    take_a = (a > b) | ((a == b) & (a_at < b_at))
    return tl.where(take_a, a, b), tl.where(take_a, a_at, b_at), tl.where(take_a, a_x, b_x)


@triton.jit
def _take_outliers(work, flat, x, index_at, value_at, row_stride, VECTORS: tl.constexpr,
                   FIRST: tl.constexpr, COUNT: tl.constexpr, LARGEST: tl.constexpr, DESCENDING_SLOTS: tl.constexpr):
    """COUNT times per row of `work` [V, L] (one value vector per row): its largest (smallest) entry becomes an
    outlier, its offset `flat` and value `x` stored in the row's slots FIRST + i (FIRST + COUNT - 1 - i with
    DESCENDING_SLOTS, so that slots run in ascending order of value; a row's slots start `row_stride` after the
    previous row's), and leaves `work`. Ties go to the lowest offset (offsets are distinct within a row). One
    reduction per outlier finds entry, offset and value together: a reduction across warps waits on shared memory and
    a barrier, and a token's encode is a chain of them (three per outlier before: 1.3x slower, docs/gpu-log.md)."""
    rows = tl.arange(0, work.shape[0])
    for i in tl.static_range(COUNT):
        _, at, value = tl.reduce((work if LARGEST else -work, flat, x), 1, _larger)
        slot = rows * row_stride + FIRST + (COUNT - 1 - i if DESCENDING_SLOTS else i)
        tl.store(index_at + slot, at.to(index_at.dtype.element_ty), mask=rows < VECTORS)
        tl.store(value_at + slot, value.to(value_at.dtype.element_ty), mask=rows < VECTORS)
        work = tl.where(flat == at[:, None], float("-inf") if LARGEST else float("inf"), work)
    return work


@triton.jit(do_not_specialize=["x_sb", "x_sh", "tokens"])
def _nuq_encode(x_ptr, x_sb, x_sh, x_sn, cos_ptr, sin_ptr, mid_ptr, half_ptr, bounds_ptr, codes_ptr, index_ptr,
                value_ptr, range_ptr, tokens, HEADS: tl.constexpr, HP: tl.constexpr, D: tl.constexpr,
                BITS: tl.constexpr, BYTES: tl.constexpr, SLOTS: tl.constexpr, KEYS: tl.constexpr,
                PER_HEAD: tl.constexpr):
    """KVQuant's encode of one token (runtime/kvquant.py, same results): keys are un-rotated (cos/sin [n, D] of
    their positions), normalised per channel (mid, half [heads, D]), and the SLOTS largest normalised magnitudes of
    each vector become outliers; values are normalised per vector by the fp16 midpoint and half range of what is
    left once its SLOTS / 2 smallest and largest elements are taken out as outliers. A vector: the token, or each
    head with PER_HEAD. Codes count the boundaries below each normalised element (torch.bucketize) and are packed as
    runtime/packing.py's pack_bits. Program: one token of one sequence; heads padded to HP, a power of two."""
    t = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    h = tl.arange(0, HP)[:, None]
    d = tl.arange(0, D)[None, :]
    ok = h < HEADS
    row = x_ptr + b * x_sb + h * x_sh + t * x_sn
    x = tl.load(row + d, mask=ok, other=0.0).to(tl.float32)  # [HP, D]
    flat = h * D + d  # offsets in the token's [heads x head_dim] vector, as the sparse index counts them
    CHANNELS: tl.constexpr = HP * D
    V: tl.constexpr = HP if PER_HEAD else 1  # rows of a token's vectors (padded heads included)
    VECTORS: tl.constexpr = HEADS if PER_HEAD else 1
    offsets = tl.reshape(flat, (V, CHANNELS // V))
    token_slots = index_ptr + (b * tokens + t) * SLOTS * VECTORS
    token_values = value_ptr + (b * tokens + t) * SLOTS * VECTORS
    if KEYS:
        partner = tl.load(row + (d + D // 2) % D, mask=ok, other=0.0).to(tl.float32)
        rotated = tl.where(d < D // 2, -partner, partner)  # rotate_half
        cos = tl.load(cos_ptr + t * D + d)
        sin = tl.load(sin_ptr + t * D + d)
        x = (x * cos - rotated * sin) / (cos * cos + sin * sin)  # before RoPE: what is stored
        mid = tl.load(mid_ptr + h * D + d, mask=ok, other=0.0)
        half = tl.load(half_ptr + h * D + d, mask=ok, other=1.0)
        normalized = (x - mid) / half
        magnitude = tl.reshape(tl.where(ok, tl.abs(normalized), float("-inf")), (V, CHANNELS // V))
        _take_outliers(magnitude, offsets, tl.reshape(x, (V, CHANNELS // V)), token_slots, token_values, SLOTS,
                       VECTORS, 0, SLOTS, True, False)
    else:
        vectors = tl.reshape(x, (V, CHANNELS // V))
        valid = tl.reshape(ok & (d >= 0), (V, CHANNELS // V))
        per_side: tl.constexpr = SLOTS // 2
        low = _take_outliers(tl.where(valid, vectors, float("inf")), offsets, vectors, token_slots, token_values,
                             SLOTS, VECTORS, 0, per_side, False, False)
        high = _take_outliers(tl.where(valid, vectors, float("-inf")), offsets, vectors, token_slots,
                              token_values, SLOTS, VECTORS, per_side, per_side, True, True)
        v = tl.arange(0, V)
        lo = tl.where(v < VECTORS, tl.min(low, 1), 0.0)  # padding rows: 0, not inf - inf
        hi = tl.where(v < VECTORS, tl.max(high, 1), 0.0)
        mid = ((hi + lo) / 2).to(tl.float16)  # normalised by what decode will read
        half = tl.maximum((hi - lo) / 2, 1e-6).to(tl.float16)
        stored = range_ptr + ((b * VECTORS + v) * tokens + t) * 2
        tl.store(stored, mid, mask=v < VECTORS)
        tl.store(stored + 1, half, mask=v < VECTORS)
        normalized = (vectors - mid.to(tl.float32)[:, None]) / half.to(tl.float32)[:, None]
        normalized = tl.reshape(normalized, (HP, D))
    code = tl.zeros([HP, D], tl.int64)
    for i in range((1 << BITS) - 1):
        code += (normalized > tl.load(bounds_ptr + i)).to(tl.int64)
    # pack_bits: 8 codes make BITS bytes of the little-endian stream
    eight = tl.reshape(code, (HP, D // 8, 8))
    words = tl.sum(eight << (tl.arange(0, 8) * BITS).to(tl.int64)[None, None, :], 2)  # [HP, D / 8]
    k = tl.arange(0, BYTES)[None, None, :]  # BYTES: BITS rounded up to a power of two
    packed = ((words[:, :, None] >> (8 * k).to(tl.int64)) & 255).to(tl.uint8)
    group = tl.arange(0, D // 8)[None, :, None]
    head = tl.arange(0, HP)[:, None, None]
    tl.store(codes_ptr + ((b * HEADS + head) * tokens + t) * (D * BITS // 8) + group * BITS + k, packed,
             mask=(head < HEADS) & (k < BITS))


def nuq_encode(x: torch.Tensor, bits: int, boundaries: torch.Tensor, slots: int, index_dtype: torch.dtype,
               rope: tuple[torch.Tensor, torch.Tensor] | None = None, midpoint: torch.Tensor | None = None,
               half_range: torch.Tensor | None = None, per_head_vectors: bool = False) -> dict[str, torch.Tensor]:
    """KVQuant's packed tensors of x [B, H, n, D] in one launch: keys with `rope` (cos, sin [n, D]) and the
    per-channel `midpoint`, `half_range` [H, D]; values without (then "range" [B, vectors, n, 2] as well). `slots`:
    outliers per token, or per head with `per_head_vectors` (values: their range too)."""
    batch, heads, tokens, dim = x.shape
    keys = rope is not None
    x = x if x.stride(-1) == 1 else x.contiguous()
    total_slots = slots * heads if per_head_vectors else slots
    out = {"codes": torch.empty(batch, heads, tokens, dim * bits // 8, dtype=torch.uint8, device=x.device)}
    if slots:
        out["outlier_index"] = torch.empty(batch, 1, tokens, total_slots, dtype=index_dtype, device=x.device)
        out["outlier_value"] = torch.empty(batch, 1, tokens, total_slots, dtype=torch.float16, device=x.device)
    if not keys:
        vectors = heads if per_head_vectors else 1
        out["range"] = torch.empty(batch, vectors, tokens, 2, dtype=torch.float16, device=x.device)
    unused = out["codes"]  # in the place of tensors this call does not read or write
    cos, sin = (r.float().contiguous() for r in rope) if keys else (unused, unused)
    mid, half = (t.float().reshape(heads, dim).contiguous() for t in (midpoint, half_range)) if keys else (unused,
                                                                                                          unused)
    _nuq_encode[(tokens, batch)](
        x, x.stride(0), x.stride(1), x.stride(2), cos, sin, mid, half, boundaries.float().contiguous(), out["codes"],
        out.get("outlier_index", unused), out.get("outlier_value", unused), out.get("range", unused), tokens,
        HEADS=heads, HP=next_power_of_2(heads), D=dim, BITS=bits, BYTES=next_power_of_2(bits), SLOTS=slots, KEYS=keys,
        PER_HEAD=per_head_vectors,
    )
    return out


@triton.jit
def _token_vectors(x_ptr, x_sb, x_sh, x_sn, HEADS: tl.constexpr, HP: tl.constexpr, D: tl.constexpr,
                   VECTORS: tl.constexpr):
    """QAQ's coded vectors of the program's (token, sequence) as float32 [V, L]: one row of all heads (VECTORS = 1)
    or one per head, heads padded to HP (a power of two) with zeros after the real ones; element e of row r is
    channel r * L + e of the token's flattened [heads x D]."""
    h = tl.arange(0, HP)[:, None]
    d = tl.arange(0, D)[None, :]
    row = x_ptr + tl.program_id(1).to(tl.int64) * x_sb + h * x_sh + tl.program_id(0) * x_sn
    x = tl.load(row + d, mask=h < HEADS, other=0.0).to(tl.float32)
    V: tl.constexpr = 1 if VECTORS == 1 else HP
    return tl.reshape(x, (V, HP * D // V))


@triton.jit(do_not_specialize=["x_sb", "x_sh", "tokens"])
def _bitplane_ranges(x_ptr, x_sb, x_sh, x_sn, lo_ptr, hi_ptr, index_ptr, value_ptr, tokens, HEADS: tl.constexpr,
                     HP: tl.constexpr, D: tl.constexpr, VECTORS: tl.constexpr, LOW: tl.constexpr,
                     HIGH: tl.constexpr):
    """QAQ's range of each vector of one token (runtime/qaq.py: QaqCodec.quantize): its LOW smallest and HIGH largest
    elements become outliers (ties lowest offset first), the rest's minimum and maximum its fp16 lo and hi.
    Program: one (token, sequence); heads padded to HP, a power of two; one vector (VECTORS = 1) or one per head."""
    t = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    vectors = _token_vectors(x_ptr, x_sb, x_sh, x_sn, HEADS, HP, D, VECTORS)
    V: tl.constexpr = vectors.shape[0]
    L: tl.constexpr = vectors.shape[1]
    v = tl.arange(0, V)
    channel = v[:, None] * L + tl.arange(0, L)[None, :]  # in the token's [heads x D]
    valid = channel < HEADS * D
    within = channel % L  # offset in the vector, as the outlier index counts
    at = (b * VECTORS + v) * tokens + t  # [B, vectors, n]
    slots_at = (b * VECTORS * tokens + t) * (LOW + HIGH)  # vector v's slots: tokens * (LOW + HIGH) further on
    low = _take_outliers(tl.where(valid, vectors, float("inf")), within, vectors, index_ptr + slots_at,
                         value_ptr + slots_at, tokens * (LOW + HIGH), VECTORS, 0, LOW, False, False)
    high = _take_outliers(tl.where(valid, vectors, float("-inf")), within, vectors, index_ptr + slots_at,
                          value_ptr + slots_at, tokens * (LOW + HIGH), VECTORS, LOW, HIGH, True, True)
    tl.store(lo_ptr + at, tl.min(low, 1).to(tl.float16), mask=v < VECTORS)
    tl.store(hi_ptr + at, tl.max(high, 1).to(tl.float16), mask=v < VECTORS)


@triton.jit(do_not_specialize=["batch", "tokens"])
def _bitplane_widths(lo_ptr, hi_ptr, spread_bound_ptr, widths_ptr, first_ptr, batch, tokens, VECTORS: tl.constexpr,
                     V: tl.constexpr, BLOCK_T: tl.constexpr, MIN_BITS: tl.constexpr, MAX_BITS: tl.constexpr):
    """QAQ's widths (runtime/qaq.py: bit_widths, from the range's spread over the batch and the spread a width of 0
    bits allows, `spread_bound` = 2√3 σ [n, vectors] float64) and each vector's first row: the widths before it in
    (token, vector) order, summed; first_ptr[n * vectors] is every vector's rows. One program, BLOCK_T tokens a step."""
    v = tl.arange(0, V)[None, :]
    done = tl.program_id(0).to(tl.int64) * 0  # rows of the tokens before the block
    for start in range(0, tokens, BLOCK_T):
        t = start + tl.arange(0, BLOCK_T)[:, None]
        ok = (t < tokens) & (v < VECTORS)
        spread = tl.zeros([BLOCK_T, V], tl.float32)
        for b in range(batch):
            at = (b * VECTORS + v) * tokens + t
            lo = tl.load(lo_ptr + at, mask=ok, other=0.0).to(tl.float32)
            spread = tl.maximum(spread, tl.load(hi_ptr + at, mask=ok, other=0.0).to(tl.float32) - lo)
        ratio = spread.to(tl.float64) / tl.load(spread_bound_ptr + t * VECTORS + v, mask=ok, other=1.0)
        width = tl.zeros([BLOCK_T, V], tl.int32) + MIN_BITS
        for k in tl.static_range(MIN_BITS, MAX_BITS):  # the least width whose 2^width segments reach the ratio
            width += (ratio > (1 << k)).to(tl.int32)
        width = tl.where(ok, width, 0)
        for b in range(batch):
            tl.store(widths_ptr + (b * VECTORS + v) * tokens + t, width.to(tl.uint8), mask=ok)
        flat = tl.reshape(width, (BLOCK_T * V,)).to(tl.int64)
        rows = done + tl.cumsum(flat, 0) - flat
        tl.store(first_ptr + tl.reshape(t * VECTORS + v, (BLOCK_T * V,)), rows, mask=tl.reshape(ok, (BLOCK_T * V,)))
        done += tl.sum(flat)
    tl.store(first_ptr + tokens * VECTORS, done)


@triton.jit(do_not_specialize=["x_sb", "x_sh", "tokens"])
def _bitplane_codes(x_ptr, x_sb, x_sh, x_sn, lo_ptr, hi_ptr, widths_ptr, first_ptr, codes_ptr, tokens,
                    HEADS: tl.constexpr, HP: tl.constexpr, D: tl.constexpr, VECTORS: tl.constexpr,
                    MAX_BITS: tl.constexpr):
    """QAQ's codes of one token: each element's segment of its vector's [lo, hi] at the vector's width, bit k of
    every code in the vector's row first + k (k < width), the rows of the bits beyond the width after all kept rows,
    in the same (token, vector, bit) order (a 1-bit stream as pack_bits packs it). Program: one (token, sequence)."""
    t = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    vectors = _token_vectors(x_ptr, x_sb, x_sh, x_sn, HEADS, HP, D, VECTORS)
    V: tl.constexpr = vectors.shape[0]
    L: tl.constexpr = vectors.shape[1]
    SIZE: tl.constexpr = HEADS * D // VECTORS  # a vector's elements; the padding's come after them
    v = tl.arange(0, V)
    real = v < VECTORS
    at = (b * VECTORS + v) * tokens + t
    lo = tl.load(lo_ptr + at, mask=real, other=0.0).to(tl.float32)[:, None]
    hi = tl.load(hi_ptr + at, mask=real, other=1.0).to(tl.float32)[:, None]
    width = tl.load(widths_ptr + at, mask=real, other=0).to(tl.int32)
    segments = (1 << width).to(tl.float32)[:, None]
    step = tl.div_rn(tl.maximum(hi - lo, 1e-8), segments)
    codes = tl.floor(tl.div_rn(vectors - lo, step))
    codes = tl.minimum(tl.maximum(codes, 0.0), segments - 1).to(tl.int32)
    eight = tl.reshape(codes, (V, L // 8, 8))
    first = tl.load(first_ptr + t * VECTORS + v, mask=real, other=0)
    kept = tl.load(first_ptr + tokens * VECTORS)
    beyond = kept + (t * VECTORS + v) * MAX_BITS - first  # rows beyond the widths of the vectors before this one
    column = tl.arange(0, L // 8)[None, :]
    for k in tl.static_range(MAX_BITS):
        byte = tl.sum(((eight >> k) & 1) << tl.arange(0, 8)[None, None, :], 2).to(tl.uint8)  # [V, L / 8]
        row = tl.where(k < width, first + k, beyond + k - width)
        tl.store(codes_ptr + (b * tokens * VECTORS * MAX_BITS + row[:, None]) * (SIZE // 8)
                 + column, byte, mask=real[:, None] & (column < SIZE // 8))


def bitplane_quantize(x: torch.Tensor, spread_bound: torch.Tensor, vectors: int, min_bits: int, max_bits: int,
                      low: int, high: int) -> dict[str, torch.Tensor]:
    """QAQ's packed tensors of x [B, H, n, D] (runtime/qaq.py: QaqCodec.quantize, same results) in three launches
    instead of some ninety small ops: ranges and outliers, widths and first rows, codes. `spread_bound` [n, vectors]
    float64: 2√3 σ; `low`, `high`: outliers per vector below and above its range."""
    batch, heads, tokens, dim = x.shape
    x = x if x.stride(-1) == 1 else x.contiguous()
    size = heads * dim // vectors
    per_vector = dict(device=x.device, dtype=torch.float16)
    out = {"widths": torch.empty(batch, vectors, tokens, dtype=torch.uint8, device=x.device),
           "lo": torch.empty(batch, vectors, tokens, **per_vector),
           "hi": torch.empty(batch, vectors, tokens, **per_vector),
           "codes": torch.empty(batch, 1, tokens * vectors * max_bits, size // 8, dtype=torch.uint8, device=x.device)}
    if low + high:
        index_dtype = torch.uint8 if size <= 256 else torch.int16
        out["outlier_index"] = torch.empty(batch, vectors, tokens, low + high, dtype=index_dtype, device=x.device)
        out["outlier_value"] = torch.empty(batch, vectors, tokens, low + high, **per_vector)
    first = torch.empty(tokens * vectors + 1, dtype=torch.int64, device=x.device)
    padded = dict(HEADS=heads, HP=next_power_of_2(heads), D=dim, VECTORS=vectors)
    strides = (x.stride(0), x.stride(1), x.stride(2))
    _bitplane_ranges[(tokens, batch)](x, *strides, out["lo"], out["hi"], out.get("outlier_index", out["lo"]),
                                      out.get("outlier_value", out["lo"]), tokens, LOW=low, HIGH=high, **padded)
    _bitplane_widths[(1,)](out["lo"], out["hi"], spread_bound.contiguous(), out["widths"], first, batch, tokens,
                           VECTORS=vectors, V=next_power_of_2(vectors), BLOCK_T=64, MIN_BITS=min_bits,
                           MAX_BITS=max_bits)
    _bitplane_codes[(tokens, batch)](x, *strides, out["lo"], out["hi"], out["widths"], first, out["codes"], tokens,
                                     MAX_BITS=max_bits, **padded)
    return out


CODEBOOK_TOKENS = 16  # tokens per codebook_encode program: a [16, 256] distance tile fits the registers


@triton.jit(do_not_specialize=["x_sb", "x_sh", "tokens"])
def _codebook_encode(x_ptr, x_sb, x_sh, x_sn, book_ptr, book_sh, norm_ptr, norm_sh, index_ptr, heads, tokens,
                     SUBS: tl.constexpr, SIZE: tl.constexpr, WIDTH: tl.constexpr, BLOCK_T: tl.constexpr):
    """Nearest centroid per sub-vector (CodebookCodec.encode): index = argmin_k ||c_k||² - 2 x·c_k over the
    sub-space's SIZE centroids, the first of equal ones. Program: BLOCK_T tokens of one head in one sub-space (a
    128-token flush of 8 heads is thousands of programs, not 64)."""
    s = tl.program_id(0) % SUBS
    bh = tl.program_id(1)
    b, h = bh // heads, bh % heads
    t = (tl.program_id(0) // SUBS) * BLOCK_T + tl.arange(0, BLOCK_T)
    ok = t < tokens
    k = tl.arange(0, SIZE)
    x_row = x_ptr + b.to(tl.int64) * x_sb + h * x_sh + t * x_sn + s * WIDTH
    dot = tl.zeros([BLOCK_T, SIZE], tl.float32)
    for c in tl.static_range(WIDTH):  # channel by channel: a [T, SIZE, WIDTH] product would take the registers
        x = tl.load(x_row + c, mask=ok, other=0.0).to(tl.float32)
        centroid = tl.load(book_ptr + h * book_sh + (s * SIZE + k) * WIDTH + c)
        dot += x[:, None] * centroid[None, :]
    distance = tl.load(norm_ptr + h * norm_sh + s * SIZE + k)[None, :] - 2 * dot
    row = (bh * tokens + t).to(tl.int64)
    tl.store(index_ptr + row * SUBS + s, tl.argmin(distance, 1).to(tl.uint8), mask=ok)


def codebook_encode(x: torch.Tensor, codebooks: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """Centroid indices uint8 [B, H, n, S] of x [B, H, n, S*c] in one launch: codebooks float32 [H, S, K, c] (K up to
    256; heads may share one, stride 0), norms [H, S, K] their squared norms."""
    batch, heads, tokens, _ = x.shape
    subspaces, size, width = codebooks.shape[1:]
    x = x if x.stride(-1) == 1 else x.contiguous()
    books = codebooks if codebooks.stride()[1:] == (size * width, width, 1) else codebooks.contiguous()
    norms = norms if norms.stride()[1:] == (size, 1) else norms.contiguous()
    index = torch.empty(batch, heads, tokens, subspaces, dtype=torch.uint8, device=x.device)
    block = min(CODEBOOK_TOKENS, next_power_of_2(tokens))
    _codebook_encode[(cdiv(tokens, block) * subspaces, batch * heads)](
        x, x.stride(0), x.stride(1), x.stride(2), books, books.stride(0), norms, norms.stride(0), index, heads,
        tokens, SUBS=subspaces, SIZE=size, WIDTH=width, BLOCK_T=block,
    )
    return index
