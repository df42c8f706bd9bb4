"""The joined codes of 16 x 16 words converted to fp16 and multiplied by tl.dot, against torch (seventh session of
2026-12-02, miscompile_bisect.log)."""
import torch, triton, triton.language as tl
from kvtool.runtime.kernels.decode import _interleave8, _plane_bits8

@triton.jit
def k(words, q, out, N: tl.constexpr, M: tl.constexpr, HOW: tl.constexpr):
    D: tl.constexpr = M * 8
    w = tl.load(words + tl.arange(0, N)[:, None] * M + tl.arange(0, M)[None, :])
    if HOW == 0:
        code = _interleave8(*_plane_bits8(w, 0x01010101, 0x01020408, 24, 0xF))
    else:
        bit = tl.arange(0, 8)[None, None, :]
        code = tl.reshape(((((w[:, :, None] >> bit) & 0x01010101) * 0x01020408) >> 24) & 0xF, (N, D))
    x = (code.to(tl.float32) + 0.5).to(tl.float16)
    qq = tl.load(q + tl.arange(0, 16)[:, None] * D + tl.arange(0, D)[None, :])
    s = tl.dot(qq, tl.trans(x))
    tl.store(out + tl.arange(0, 16)[:, None] * N + tl.arange(0, N)[None, :], s)

dev = "cuda" if torch.cuda.is_available() else "cpu"
N, M = 16, 16
words = torch.randint(0, 2**31, (N, M), dtype=torch.int32, device=dev)
q = torch.randn(16, M * 8, device=dev).half()
wl = words.long().cpu() & 0xFFFFFFFF
ref = torch.zeros(N, M * 8, dtype=torch.int64)
for i in range(8):
    for kk in range(4):
        ref[:, i::8] |= ((wl >> (8 * kk + i)) & 1) << kk
want = q.float().cpu() @ (ref.float() + 0.5).T
for how in (0, 1):
    for warps in (1, 4):
        o = torch.zeros(16, N, device=dev)
        k[(1,)](words, q, o, N, M, how, num_warps=warps)
        print("how", how, "warps", warps, ((o.cpu() - want).abs().max() / want.abs().max()).item())
