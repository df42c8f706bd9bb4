"""Quantize-on-append: min-max quantization and bit packing of new tokens in one launch (runtime/packing.py's math).

`minmax_quantize` + `pack_planes` in PyTorch take some thirty small kernels per call; a decode step appends one value
token per layer (and keys flush R at a time), so on the GPU the codecs call these instead. Same results: the range is
rounded to fp16 outward (min down, scale up) and codes round half to even, as torch.round does.
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
    bh = tl.program_id(0)
    b, h = bh // heads, bh % heads
    NG: tl.constexpr = D // GROUP
    t = tl.program_id(1) * BLOCK_T + tl.arange(0, BLOCK_T)
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
    bh = tl.program_id(0)
    grp = tl.program_id(1)
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
    _quantize_token_groups[(batch * heads, cdiv(tokens, block))](
        x, x.stride(0), x.stride(1), x.stride(2), out["codes"], out["scale"], out["min"], heads, tokens,
        D=dim, GROUP=group, BITS=bits, BLOCK_T=block,
    )
    return out


def quantize_channel_groups(x: torch.Tensor, bits: int, group: int) -> dict[str, torch.Tensor]:
    """x [B, H, n, D] (n a multiple of group) -> codes [B, H, n, D*bits/8], scale and min [B, H, n/group, D]."""
    batch, heads, tokens, dim = x.shape
    out = _outputs(x, bits, (batch, heads, tokens // group, dim))
    x = x if x.stride(-1) == 1 else x.contiguous()
    _quantize_channel_groups[(batch * heads, tokens // group)](
        x, x.stride(0), x.stride(1), x.stride(2), out["codes"], out["scale"], out["min"], heads, tokens // group,
        D=dim, GROUP=group, BITS=bits,
    )
    return out
