"""KIVI quantizer properties: bit-exact packing, the per-group error bound, and the exact full-precision window."""

from __future__ import annotations

import pytest
import torch

from kvtool.runtime.kivi import KiviKeys, KiviValues
from kvtool.runtime.packing import minmax_dequantize, minmax_quantize, pack_bits, pack_planes, unpack_bits, unpack_planes
from kvtool.runtime.stream import TokenStream


@pytest.mark.parametrize("bits", range(1, 9))
def test_packing_round_trip_is_bit_exact(bits):
    codes = torch.randint(0, 1 << bits, (2, 3, 5, 64), dtype=torch.uint8)
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8 and packed.shape[-1] == 64 * bits // 8
    assert torch.equal(unpack_bits(packed, bits), codes)


def test_packing_layout_is_little_endian_within_bytes():
    codes = torch.tensor([[1, 2, 3, 0]], dtype=torch.uint8)
    assert pack_bits(codes, 2).item() == 1 | 2 << 2 | 3 << 4
    assert pack_bits(torch.tensor([[0xA, 0x5]], dtype=torch.uint8), 4).item() == 0x5A


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_plane_packing_round_trip_and_layout(bits):
    codes = torch.randint(0, 1 << bits, (2, 3, 5, 64), dtype=torch.uint8)
    packed = pack_planes(codes, bits)
    assert packed.shape[-1] == 64 * bits // 8 and torch.equal(unpack_planes(packed, bits), codes)
    width = packed.shape[-1]
    for plane in range(8 // bits):  # plane i of every byte is codes i*width .. (i+1)*width - 1
        got = (packed >> plane * bits) & ((1 << bits) - 1)
        assert torch.equal(got, codes[..., plane * width : (plane + 1) * width])


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_minmax_error_is_at_most_half_a_step(bits):
    x = torch.randn(7, 33, 64) * torch.logspace(-2, 2, 64)
    codes, scale, lo = minmax_quantize(x, bits, dim=1)
    error = (minmax_dequantize(codes, scale, lo) - x).abs()
    assert (error <= scale.float() / 2 * (1 + 1e-5) + 1e-6).all()
    assert codes.max() <= (1 << bits) - 1


@pytest.mark.parametrize("bits", [2, 4])
def test_kivi_keys_per_channel_and_values_per_token_error_bounds(bits):
    x = torch.randn(1, 3, 128, 64) * 3
    keys, values = KiviKeys(bits, 32, 128), KiviValues(bits, 32, 128)
    packed = keys.encode(x, 0)
    assert packed["codes"].dtype == torch.uint8 and packed["scale"].shape == (1, 3, 4, 64)
    groups = x.reshape(1, 3, 4, 32, 64)
    step = (groups.amax(3) - groups.amin(3)) / ((1 << bits) - 1)  # per channel per 32-token group
    error = (keys.decode(packed, 0) - x).reshape(1, 3, 4, 32, 64).abs()
    assert (error <= step[:, :, :, None] / 2 * 1.01 + 1e-3).all()
    packed = values.encode(x, 0)
    assert packed["scale"].shape == (1, 3, 128, 2)
    groups = x.reshape(1, 3, 128, 2, 32)
    step = (groups.amax(4) - groups.amin(4)) / ((1 << bits) - 1)  # per token per 32-channel group
    error = (values.decode(packed, 0) - x).reshape(1, 3, 128, 2, 32).abs()
    assert (error <= step[..., None] / 2 * 1.01 + 1e-3).all()


def test_packed_2bit_store_is_under_a_fifth_of_fp16():
    keys, values = KiviKeys(2, 32, 128), KiviValues(2, 32, 128)
    x = torch.randn(1, 3, 1024, 64)
    for codec in (keys, values):
        held = sum(t.numel() * t.element_size() for t in codec.encode(x, 0).values())
        assert held <= 0.2 * x.numel() * 2


def test_residual_window_is_exact_fp16():
    """Keys: the last R tokens since the last flush stay fp16; values: the newest R + 1 tokens do."""
    stream_k = TokenStream(KiviKeys(2, 32, 128))
    stream_v = TokenStream(KiviValues(2, 32, 128))
    x = torch.randn(1, 3, 300, 64)
    for t in range(300):
        stream_k.append(x[:, :, t : t + 1])
        stream_v.append(x[:, :, t : t + 1])
        stream_k.settle()
        stream_v.settle()
    assert stream_k.store_end == 256 and stream_k.tail.shape[2] == 44  # flushed at 128 and 256 tokens
    assert stream_v.store_end == 300 - 129 and stream_v.tail.shape[2] == 129
    assert torch.equal(stream_k.tail, x[:, :, 256:].half())
    assert torch.equal(stream_v.tail, x[:, :, 171:].half())
