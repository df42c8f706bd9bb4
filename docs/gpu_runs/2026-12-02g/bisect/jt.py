"""The join of eight code tensors (_interleave8) and the bit gather (_plane_bits8) alone, on the GPU or under the
interpreter: element order against the expected one (seventh session of 2026-12-02, miscompile_bisect.log)."""
import torch, triton, triton.language as tl
from kvtool.runtime.kernels.decode import _interleave8, _plane_bits8

@triton.jit
def k(out, N: tl.constexpr, M: tl.constexpr, HOW: tl.constexpr):
    a = tl.arange(0, N)[:, None] * 100 + tl.arange(0, M)[None, :] * 10
    if HOW == 0:
        r = _interleave8(a, a + 1, a + 2, a + 3, a + 4, a + 5, a + 6, a + 7)
    elif HOW == 1:
        x = tl.join(tl.join(tl.join(a, a + 4), tl.join(a + 2, a + 6)), tl.join(tl.join(a + 1, a + 5), tl.join(a + 3, a + 7)))
        r = tl.reshape(x, (N, M * 8))
    else:
        x = tl.join(a, a + 1)
        r = tl.reshape(x, (N, M * 2))
    W: tl.constexpr = M * 8 if HOW < 2 else M * 2
    tl.store(out + tl.arange(0, N)[:, None] * W + tl.arange(0, W)[None, :], r)

@triton.jit
def bits(words, out, N: tl.constexpr, M: tl.constexpr):
    w = tl.load(words + tl.arange(0, N)[:, None] * M + tl.arange(0, M)[None, :])
    r = _interleave8(*_plane_bits8(w, 0x01010101, 0x01020408, 24, 0xF))
    tl.store(out + tl.arange(0, N)[:, None] * M * 8 + tl.arange(0, M * 8)[None, :], r)

dev = "cuda" if torch.cuda.is_available() else "cpu"
for how in (0, 1, 2):
    for n, m in ((4, 2), (16, 16)):
        w = m * 8 if how < 2 else m * 2
        o = torch.zeros(n, w, dtype=torch.int32, device=dev)
        k[(1,)](o, n, m, how, num_warps=4)
        want = (torch.arange(n)[:, None] * 100 + (torch.arange(w)[None, :] // (8 if how < 2 else 2)) * 10 + torch.arange(w)[None, :] % (8 if how < 2 else 2)).to(dev)
        print("how", how, n, m, "ok" if torch.equal(o, want.int()) else f"WRONG\n{o[:2, :24].tolist()}")
words = torch.randint(0, 2**31, (16, 16), dtype=torch.int32, device=dev)
o = torch.zeros(16, 128, dtype=torch.int32, device=dev)
bits[(1,)](words, o, 16, 16)
wl = words.long().cpu() & 0xFFFFFFFF
ref = torch.zeros(16, 128, dtype=torch.int64)
for i in range(8):
    for kk in range(4):
        ref[:, i::8] |= ((wl >> (8 * kk + i)) & 1) << kk
print("bits", "ok" if torch.equal(o.cpu().long(), ref) else f"WRONG {o[0, :16].tolist()} {ref[0, :16].tolist()}")
