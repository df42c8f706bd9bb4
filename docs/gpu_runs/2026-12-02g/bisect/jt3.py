"""Bit planes loaded as the decode kernel loads them (masked rows by width), joined, then tl.dot: codes and products
against torch, joined and broadcast (seventh session of 2026-12-02, miscompile_bisect.log)."""
import torch, triton, triton.language as tl
from kvtool.runtime.kernels.decode import _interleave8, _plane_bits8

@triton.jit
def k(codes, first_ptr, width_ptr, q, out, codes_out, N: tl.constexpr, D: tl.constexpr, HOW: tl.constexpr, DOT: tl.constexpr):
    idx = tl.arange(0, N)
    first = tl.load(first_ptr + idx).to(tl.int64)
    width = tl.load(width_ptr + idx)
    octets = codes + tl.arange(0, D // 8)[None, :]
    word = tl.zeros([N, D // 8], tl.int32)
    for kk in tl.static_range(4):
        raw = tl.load(octets + (first + kk)[:, None] * (D // 8), mask=(width > kk)[:, None], other=0)
        word |= raw.to(tl.int32) << (8 * kk)
    if HOW == 0:
        code = _interleave8(*_plane_bits8(word, 0x01010101, 0x01020408, 24, 0xF))
    else:
        bit = tl.arange(0, 8)[None, None, :]
        code = tl.reshape(((((word[:, :, None] >> bit) & 0x01010101) * 0x01020408) >> 24) & 0xF, (N, D))
    if DOT:
        x = (code.to(tl.float32) + 0.5).to(tl.float16)
        qq = tl.load(q + tl.arange(0, 16)[:, None] * D + tl.arange(0, D)[None, :])
        s = tl.dot(qq, tl.trans(x))
        tl.store(out + tl.arange(0, 16)[:, None] * N + tl.arange(0, N)[None, :], s)
    else:
        tl.store(codes_out + idx[:, None] * D + tl.arange(0, D)[None, :], code)

dev = "cuda" if torch.cuda.is_available() else "cpu"
N, D = 16, 128
width = torch.randint(1, 5, (N,), dtype=torch.int32)
first = (width.cumsum(0) - width).int()
rows = int(width.sum())
planes = torch.randint(0, 256, (rows, D // 8), dtype=torch.uint8)
ref = torch.zeros(N, D, dtype=torch.int64)
for t in range(N):
    for kk in range(int(width[t])):
        byte = planes[first[t] + kk].long()
        for i in range(8):
            ref[t, i::8] |= ((byte >> i) & 1) << kk
q = torch.randn(16, D).half()
want = q.float() @ (ref.float() + 0.5).T
for how in (0, 1):
    for warps in (1, 4):
        o = torch.zeros(16, N, device=dev); c = torch.zeros(N, D, dtype=torch.int32, device=dev)
        k[(1,)](planes.to(dev), first.to(dev), width.to(dev), q.to(dev), o, c, N, D, how, True, num_warps=warps)
        k[(1,)](planes.to(dev), first.to(dev), width.to(dev), q.to(dev), o, c, N, D, how, False, num_warps=warps)
        print("how", how, "warps", warps, "dot err", ((o.cpu() - want).abs().max() / want.abs().max()).item(),
              "codes equal", torch.equal(c.cpu().long(), ref), flush=True)
