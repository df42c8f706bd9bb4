"""Bit packing of integer codes and asymmetric min-max quantization, shared by the scalar codecs.

Layout (docs/artifact-format.md, and what the Triton kernels read): the last axis of N codes of b bits is one
little-endian bit stream; code i holds stream bits i*b .. i*b+b-1, stream bit s sits in byte s // 8 at bit s % 8.
For b = 2 and 4 this is "code i in byte i // (8/b) at bit (i % (8/b)) * b".
"""

from __future__ import annotations

import torch

_BIT = torch.arange(8, dtype=torch.uint8)


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 codes [..., N] with values < 2**bits -> packed uint8 [..., N * bits / 8] (N * bits divisible by 8)."""
    n = codes.shape[-1]
    if (n * bits) % 8:
        raise ValueError(f"{n} codes of {bits} bits do not fill whole bytes")
    if bits == 8:
        return codes.to(torch.uint8).contiguous()
    bit = _BIT[:bits].to(codes.device)
    stream = (codes.to(torch.uint8).unsqueeze(-1) >> bit) & 1  # [..., N, bits]
    stream = stream.reshape(*codes.shape[:-1], n * bits // 8, 8)
    return (stream << _BIT.to(codes.device)).sum(-1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of pack_bits: packed uint8 [..., M] -> codes uint8 [..., M * 8 / bits]."""
    if bits == 8:
        return packed
    stream = (packed.unsqueeze(-1) >> _BIT.to(packed.device)) & 1  # [..., M, 8]
    stream = stream.reshape(*packed.shape[:-1], packed.shape[-1] * 8 // bits, bits)
    return (stream << _BIT[:bits].to(packed.device)).sum(-1, dtype=torch.uint8)


def minmax_quantize(x: torch.Tensor, bits: int, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric round-to-nearest over `dim`: codes uint8, and fp16 scale and minimum (x ~ code * scale + min).

    The range is taken from the fp16-rounded minimum and scale so that the error bound holds for what is stored.
    """
    levels = (1 << bits) - 1
    x = x.float()
    true_lo, hi = x.amin(dim, keepdim=True), x.amax(dim, keepdim=True)
    lo = _round_fp16(true_lo, down=True)
    scale = _round_fp16(((hi - lo.float()) / levels).clamp_min(1e-6), down=False)
    codes = ((x - lo.float()) / scale.float()).round().clamp(0, levels).to(torch.uint8)
    return codes, scale, lo


def _round_fp16(x: torch.Tensor, down: bool) -> torch.Tensor:
    """fp16 rounding in a chosen direction, so that stored ranges still cover the data."""
    rounded = x.to(torch.float16)
    wrong = rounded.float() > x if down else rounded.float() < x
    target = torch.full_like(rounded, float("-inf") if down else float("inf"))
    return torch.where(wrong, torch.nextafter(rounded, target), rounded)


def minmax_dequantize(codes: torch.Tensor, scale: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    return codes.float() * scale.float() + lo.float()
