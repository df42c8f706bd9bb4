"""Bit packing of integer codes and asymmetric min-max quantization, shared by the scalar codecs.

Two layouts of the last axis of N codes of b bits:
  pack_bits    (any b; docs/artifact-format.md): one little-endian bit stream; code i holds stream bits
               i*b .. i*b+b-1, stream bit s sits in byte s // 8 at bit s % 8.
  pack_planes  (b = 1, 2, 4, 8; KIVI's stores, what the Triton kernels read): plane-major. With P = 8/b codes per
               byte and M = N/P bytes, byte j holds codes j, j + M, j + 2M, ... at bits 0, b, 2b, ...; so
               (byte >> i*b) & (2**b - 1) over all bytes is codes i*M .. i*M + M - 1 in order, a plain tile that
               needs no interleaving to unpack.
"""

from __future__ import annotations

import torch


def _bits(count: int, device: torch.device) -> torch.Tensor:
    """Bit positions 0 .. count - 1, made on the device: copying them from the host would wait for its queue."""
    return torch.arange(count, dtype=torch.uint8, device=device)


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 codes [..., N] with values < 2**bits -> packed uint8 [..., N * bits / 8] (N * bits divisible by 8)."""
    n = codes.shape[-1]
    if (n * bits) % 8:
        raise ValueError(f"{n} codes of {bits} bits do not fill whole bytes")
    if bits == 8:
        return codes.to(torch.uint8).contiguous()
    bit = _bits(bits, codes.device)
    stream = (codes.to(torch.uint8).unsqueeze(-1) >> bit) & 1  # [..., N, bits]
    stream = stream.reshape(*codes.shape[:-1], n * bits // 8, 8)
    return (stream << _bits(8, codes.device)).sum(-1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of pack_bits: packed uint8 [..., M] -> codes uint8 [..., M * 8 / bits]."""
    if bits == 8:
        return packed
    stream = (packed.unsqueeze(-1) >> _bits(8, packed.device)) & 1  # [..., M, 8]
    stream = stream.reshape(*packed.shape[:-1], packed.shape[-1] * 8 // bits, bits)
    return (stream << _bits(bits, packed.device)).sum(-1, dtype=torch.uint8)


def pack_planes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 codes [..., N] with values < 2**bits -> plane-major packed uint8 [..., N * bits / 8] (bits 1, 2, 4, 8)."""
    per = 8 // bits
    n = codes.shape[-1]
    if n % per:
        raise ValueError(f"{n} codes of {bits} bits do not fill whole bytes")
    planes = codes.to(torch.uint8).reshape(*codes.shape[:-1], per, n // per)
    shifts = (torch.arange(per, dtype=torch.uint8, device=codes.device) * bits)[:, None]
    return (planes << shifts).sum(-2, dtype=torch.uint8)


def unpack_planes(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of pack_planes: packed uint8 [..., M] -> codes uint8 [..., M * 8 / bits]."""
    per = 8 // bits
    shifts = (torch.arange(per, dtype=torch.uint8, device=packed.device) * bits)[:, None]
    planes = (packed.unsqueeze(-2) >> shifts) & ((1 << bits) - 1)  # [..., per, M]
    return planes.reshape(*packed.shape[:-1], packed.shape[-1] * per)


def minmax_quantize(x: torch.Tensor, bits: int, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric round-to-nearest over `dim`: codes uint8, and fp16 scale and minimum (x ~ code * scale + min).

    The range is taken from the fp16-rounded minimum and scale so that the error bound holds for what is stored.
    """
    levels = (1 << bits) - 1
    x = x.float()
    true_lo, hi = x.amin(dim, keepdim=True), x.amax(dim, keepdim=True)
    lo = _round_fp16(true_lo, down=True)
    # divided by a tensor: CUDA turns `/ levels` into a multiply by 1/levels, which rounds differently from the CPU's
    # and the quantize kernels' exact division (1 fp16 step in ~5% of 4-bit scales)
    scale = _round_fp16(((hi - lo.float()) / torch.full_like(hi, levels)).clamp_min(1e-6), down=False)
    codes = ((x - lo.float()) / scale.float()).round().clamp(0, levels).to(torch.uint8)
    return codes, scale, lo


def trimmed_range(flat: torch.Tensor, low: int, high: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per vector [..., C]: the offsets of its `low` smallest and `high` largest elements (outliers: equal elements
    lowest offset first, as the encode kernels take them; in ascending order of value), and the minimum and maximum
    of the others."""
    ordered, order = flat.sort(dim=-1, stable=True)
    largest = flat.sort(dim=-1, descending=True, stable=True).indices[..., :high].flip(-1)
    offsets = torch.cat([order[..., :low], largest], dim=-1)
    return offsets, ordered[..., low], ordered[..., flat.shape[-1] - 1 - high]


def _round_fp16(x: torch.Tensor, down: bool) -> torch.Tensor:
    """fp16 rounding in a chosen direction, so that stored ranges still cover the data."""
    rounded = x.to(torch.float16)
    wrong = rounded.float() > x if down else rounded.float() < x
    target = torch.full_like(rounded, float("-inf") if down else float("inf"))
    return torch.where(wrong, torch.nextafter(rounded, target), rounded)


def minmax_dequantize(codes: torch.Tensor, scale: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    return codes.float() * scale.float() + lo.float()
