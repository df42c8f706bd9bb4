"""How fast one decode step's ADC lookups can go: sum over sub-vectors of table[s, code[t, s], rows] for every
position t of 8 KV heads (a MILLION-2 key path at 128K, batch 1: 32 sub-vectors of 8-bit codes, 4 query rows),
(a) as the committed kernel reads it, pointer gathers served by L1, and (b) by tl.gather, which Triton lowers
through shared memory: a slice of G sub-vectors' tables loaded per tile and gathered from. Checked against torch.
Usage: python3 gather_probe.py [positions] [variant names, comma-separated; default: all] (TRITON_INTERPRET=1 on CPU
tensors checks the kernels alone; on the GPU the 2-d tl.gather variants "smem ..." take minutes: call 1)."""
import sys

import torch
import triton
import triton.language as tl

SUBS, CODES, ROWS = 32, 256, 4


@triton.jit
def l1_kernel(table, codes, out, n, split_tokens, SUBS: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr):
    h = tl.program_id(0)
    split = tl.program_id(1)
    rows = tl.arange(0, ROWS)
    sub = tl.arange(0, SUBS)[None, :]
    acc = tl.zeros([BLOCK_N, ROWS], tl.float32)
    head_table = table + h * SUBS * 256 * ROWS
    for start in range(split * split_tokens, split * split_tokens + split_tokens, BLOCK_N):
        pos = start + tl.arange(0, BLOCK_N)
        code = tl.load(codes + (h * n + pos)[:, None] * SUBS + sub).to(tl.int32)
        picked = tl.load(head_table + ((sub << 8) + code)[:, :, None] * ROWS + rows[None, None, :])
        acc += tl.sum(picked.to(tl.float32), 1)
    tl.store(out + ((h * tl.num_programs(1) + split) * BLOCK_N + tl.arange(0, BLOCK_N))[:, None] * ROWS + rows[None, :],
             acc)


@triton.jit
def smem_kernel(table, codes, out, n, split_tokens, SUBS: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr,
                G: tl.constexpr):
    h = tl.program_id(0)
    split = tl.program_id(1)
    rows = tl.arange(0, ROWS)
    local = tl.arange(0, G)[None, :]
    acc = tl.zeros([BLOCK_N, ROWS], tl.float32)
    head_table = table + h * SUBS * 256 * ROWS
    for start in range(split * split_tokens, split * split_tokens + split_tokens, BLOCK_N):
        pos = start + tl.arange(0, BLOCK_N)
        for g in tl.static_range(SUBS // G):
            src = tl.load(head_table + (g * G * 256 + tl.arange(0, G * 256))[:, None] * ROWS + rows[None, :])
            code = tl.load(codes + (h * n + pos)[:, None] * SUBS + g * G + local).to(tl.int32)  # [BLOCK_N, G]
            idx = tl.reshape((local << 8) + code, (BLOCK_N * G, 1)) + tl.zeros([1, ROWS], tl.int32)
            picked = tl.gather(src, idx, 0)  # [BLOCK_N * G, ROWS]
            acc += tl.sum(tl.reshape(picked.to(tl.float32), (BLOCK_N, G, ROWS)), 1)
    tl.store(out + ((h * tl.num_programs(1) + split) * BLOCK_N + tl.arange(0, BLOCK_N))[:, None] * ROWS + rows[None, :],
             acc)


@triton.jit
def smem1d_kernel(table, codes, out, n, split_tokens, SUBS: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr,
                  G: tl.constexpr):
    """tl.gather on 1-d tensors (Triton's thread-locality pass leaves rank-1 gathers alone: through shared memory)."""
    h = tl.program_id(0)
    split = tl.program_id(1)
    rows = tl.arange(0, ROWS)
    local = tl.arange(0, G)[None, :]
    acc = tl.zeros([BLOCK_N, ROWS], tl.float32)
    head_table = table + h * SUBS * 256 * ROWS
    for start in range(split * split_tokens, split * split_tokens + split_tokens, BLOCK_N):
        pos = start + tl.arange(0, BLOCK_N)
        for g in tl.static_range(SUBS // G):
            src = tl.load(head_table + g * G * 256 * ROWS + tl.arange(0, G * 256 * ROWS))
            code = tl.load(codes + (h * n + pos)[:, None] * SUBS + g * G + local).to(tl.int32)  # [BLOCK_N, G]
            idx = (((local << 8) + code) * ROWS)[:, :, None] + rows[None, None, :]
            picked = tl.gather(src, tl.reshape(idx, (BLOCK_N * G * ROWS,)), 0)
            acc += tl.sum(tl.reshape(picked.to(tl.float32), (BLOCK_N, G, ROWS)), 1)
    tl.store(out + ((h * tl.num_programs(1) + split) * BLOCK_N + tl.arange(0, BLOCK_N))[:, None] * ROWS + rows[None, :],
             acc)


@triton.jit
def smem64_kernel(table, codes, out, n, split_tokens, SUBS: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr,
                  G: tl.constexpr):
    """As smem1d_kernel, an entry's 4 rows gathered as one int64."""
    h = tl.program_id(0)
    split = tl.program_id(1)
    rows = tl.arange(0, ROWS)
    local = tl.arange(0, G)[None, :]
    acc = tl.zeros([BLOCK_N, ROWS], tl.float32)
    head_table = table.to(tl.pointer_type(tl.int64)) + h * SUBS * 256
    for start in range(split * split_tokens, split * split_tokens + split_tokens, BLOCK_N):
        pos = start + tl.arange(0, BLOCK_N)
        for g in tl.static_range(SUBS // G):
            src = tl.load(head_table + g * G * 256 + tl.arange(0, G * 256))
            code = tl.load(codes + (h * n + pos)[:, None] * SUBS + g * G + local).to(tl.int32)  # [BLOCK_N, G]
            picked = tl.gather(src, tl.reshape((local << 8) + code, (BLOCK_N * G,)), 0)
            halves = (tl.reshape(picked, (BLOCK_N, G))[:, :, None] >> (rows * 16).to(tl.int64)[None, None, :])
            entries = halves.to(tl.int16).to(tl.float16, bitcast=True)
            acc += tl.sum(entries.to(tl.float32), 1)
    tl.store(out + ((h * tl.num_programs(1) + split) * BLOCK_N + tl.arange(0, BLOCK_N))[:, None] * ROWS + rows[None, :],
             acc)


def reference(table, codes, splits, block):
    heads, n = codes.shape[:2]
    entry = torch.arange(SUBS, device=codes.device) * 256 + codes.long()  # [heads, n, SUBS]
    picked = torch.gather(table.view(heads, SUBS * 256, ROWS).float(), 1,
                          entry.view(heads, n * SUBS, 1).expand(-1, -1, ROWS)).view(heads, n, SUBS, ROWS).sum(2)
    return picked.view(heads, splits, -1, block, ROWS).sum(2)


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 131072
    heads = 8
    torch.manual_seed(0)
    table = torch.randn(heads, SUBS, 256, ROWS, device=device).half()
    codes = torch.randint(0, 256, (heads, n, SUBS), device=device, dtype=torch.uint8)
    variants = [("l1", l1_kernel, 16, {}, 2)] + [
        (f"smem G{g} N{bn} w{w}", smem_kernel, bn, {"G": g}, w)
        for g in (4, 8) for bn in (64, 128, 256) for w in (4, 8)] + [
        (f"{kind} G{g} N{bn} w{w}", kernel, bn, {"G": g}, w)
        for kind, kernel in (("smem1d", smem1d_kernel), ("smem64", smem64_kernel))
        for g in (2, 4, 8) for bn in (32, 64, 128) for w in (2, 4, 8)]
    if len(sys.argv) > 2:
        variants = [variant for variant in variants if variant[0] in sys.argv[2].split(",")]
    for name, kernel, block, extra, warps in variants:
        splits = max(1, min(n // block, 132 * 8 // heads))
        while n % (splits * block):
            splits -= 1
        out = torch.empty(heads, splits, block, ROWS, device=device)
        launch = lambda: kernel[(heads, splits)](table, codes, out, n, n // splits, SUBS=SUBS, ROWS=ROWS, BLOCK_N=block,
                                                 num_warps=warps, **extra)
        launch()
        err = (out - reference(table, codes, splits, block)).abs().max().item()
        ms = triton.testing.do_bench(launch) if device == "cuda" else float("nan")
        lookups = heads * n * SUBS / (ms * 1e-3) if device == "cuda" else float("nan")
        print(f"{name:22s} splits {splits:4d} err {err:.2e}  {ms * 1e3:9.2f} us  {lookups / 1e9:7.1f} G lookups/s",
              flush=True)


if __name__ == "__main__":
    main()
