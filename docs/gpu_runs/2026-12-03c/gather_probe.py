"""How fast one decode step's ADC lookups can go: sum over sub-vectors of table[s, code[t, s], rows] for every
position t of 8 KV heads (a MILLION-2 key path at 128K, batch 1: 32 sub-vectors of 8-bit codes, 4 query rows),
(a) as the committed kernel reads it, pointer gathers served by L1 ("l1"), and (b) by tl.gather from a slice of G
sub-vectors' tables loaded per tile: on 2-d tensors ("smem"; Triton makes them warp-local: shuffles), on 1-d fp16
tensors ("smem1d") or an entry's 4 rows as one int64 ("smem64"), both of which Triton serves from shared memory.
Checked against torch. (Calls 1 and 2 ran 22aacb5's copy, one kernel per kind with the same loops; compiled for
sm_90 the two copies differ by 4 instructions of the 2-d variant's 69,181, gather_counts.py.)
Usage: python3 gather_probe.py [positions] [variant names, comma-separated; default: all] (TRITON_INTERPRET=1 on CPU
tensors checks the kernels alone; on the GPU the "smem ..." variants take minutes: call 1)."""
import sys

import torch
import triton
import triton.language as tl

SUBS, ROWS = 32, 4
KINDS = {"l1": 0, "smem": 1, "smem1d": 2, "smem64": 3}


@triton.jit
def _l1_sum(head_table, code_rows, rows, SUBS: tl.constexpr, ROWS: tl.constexpr):
    sub = tl.arange(0, SUBS)[None, :]
    code = tl.load(code_rows + sub).to(tl.int32)
    picked = tl.load(head_table + ((sub << 8) + code)[:, :, None] * ROWS + rows[None, None, :])
    return tl.sum(picked.to(tl.float32), 1)


@triton.jit
def _gathered_sum(acc, head_table, code_rows, rows, SUBS: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr,
                  G: tl.constexpr, KIND: tl.constexpr):
    local = tl.arange(0, G)[None, :]
    for g in tl.static_range(SUBS // G):
        if KIND == 1:
            src = tl.load(head_table + (g * G * 256 + tl.arange(0, G * 256))[:, None] * ROWS + rows[None, :])
            code = tl.load(code_rows + g * G + local).to(tl.int32)  # [BLOCK_N, G]
            idx = tl.reshape((local << 8) + code, (BLOCK_N * G, 1)) + tl.zeros([1, ROWS], tl.int32)
            picked = tl.gather(src, idx, 0)  # [BLOCK_N * G, ROWS]
            acc += tl.sum(tl.reshape(picked.to(tl.float32), (BLOCK_N, G, ROWS)), 1)
        elif KIND == 2:
            src = tl.load(head_table + g * G * 256 * ROWS + tl.arange(0, G * 256 * ROWS))
            code = tl.load(code_rows + g * G + local).to(tl.int32)
            idx = (((local << 8) + code) * ROWS)[:, :, None] + rows[None, None, :]
            picked = tl.gather(src, tl.reshape(idx, (BLOCK_N * G * ROWS,)), 0)
            acc += tl.sum(tl.reshape(picked.to(tl.float32), (BLOCK_N, G, ROWS)), 1)
        else:
            src = tl.load((head_table + g * G * 256 * ROWS).to(tl.pointer_type(tl.int64)) + tl.arange(0, G * 256))
            code = tl.load(code_rows + g * G + local).to(tl.int32)
            picked = tl.gather(src, tl.reshape((local << 8) + code, (BLOCK_N * G,)), 0)
            halves = tl.reshape(picked, (BLOCK_N, G))[:, :, None] >> (rows * 16).to(tl.int64)[None, None, :]
            acc += tl.sum(halves.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32), 1)
    return acc


@triton.jit
def probe_kernel(table, codes, out, n, split_tokens, SUBS: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr,
                 G: tl.constexpr, KIND: tl.constexpr):
    h = tl.program_id(0)
    split = tl.program_id(1)
    rows = tl.arange(0, ROWS)
    acc = tl.zeros([BLOCK_N, ROWS], tl.float32)
    head_table = table + h * SUBS * 256 * ROWS
    for start in range(split * split_tokens, split * split_tokens + split_tokens, BLOCK_N):
        code_rows = codes + (h * n + start + tl.arange(0, BLOCK_N))[:, None] * SUBS
        if KIND == 0:
            acc += _l1_sum(head_table, code_rows, rows, SUBS, ROWS)
        else:
            acc = _gathered_sum(acc, head_table, code_rows, rows, SUBS, ROWS, BLOCK_N, G, KIND)
    tl.store(out + ((h * tl.num_programs(1) + split) * BLOCK_N + tl.arange(0, BLOCK_N))[:, None] * ROWS + rows[None, :],
             acc)


def reference(table, codes, splits, block):
    heads, n = codes.shape[:2]
    entry = torch.arange(SUBS, device=codes.device) * 256 + codes.long()  # [heads, n, SUBS]
    picked = torch.gather(table.view(heads, SUBS * 256, ROWS).float(), 1,
                          entry.view(heads, n * SUBS, 1).expand(-1, -1, ROWS)).view(heads, n, SUBS, ROWS).sum(2)
    return picked.view(heads, splits, -1, block, ROWS).sum(2)


def variants() -> list[tuple[str, int, int, int, int]]:
    """(name, KIND, BLOCK_N, G, warps) of every variant."""
    return [("l1", 0, 16, 1, 2)] + [
        (f"smem G{g} N{bn} w{w}", 1, bn, g, w) for g in (4, 8) for bn in (64, 128, 256) for w in (4, 8)] + [
        (f"{kind} G{g} N{bn} w{w}", KINDS[kind], bn, g, w)
        for kind in ("smem1d", "smem64") for g in (2, 4, 8) for bn in (32, 64, 128) for w in (2, 4, 8)]


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 131072
    heads = 8
    torch.manual_seed(0)
    table = torch.randn(heads, SUBS, 256, ROWS, device=device).half()
    codes = torch.randint(0, 256, (heads, n, SUBS), device=device, dtype=torch.uint8)
    chosen = [v for v in variants() if len(sys.argv) <= 2 or v[0] in sys.argv[2].split(",")]
    for name, kind, block, g, warps in chosen:
        splits = max(1, min(n // block, 132 * 8 // heads))
        while n % (splits * block):
            splits -= 1
        out = torch.empty(heads, splits, block, ROWS, device=device)
        launch = lambda: probe_kernel[(heads, splits)](table, codes, out, n, n // splits, SUBS=SUBS, ROWS=ROWS,  # noqa
                                                       BLOCK_N=block, G=g, KIND=kind, num_warps=warps)
        launch()
        err = (out - reference(table, codes, splits, block)).abs().max().item()
        ms = triton.testing.do_bench(launch) if device == "cuda" else float("nan")
        lookups = heads * n * SUBS / (ms * 1e-3) if device == "cuda" else float("nan")
        print(f"{name:22s} splits {splits:4d} err {err:.2e}  {ms * 1e3:9.2f} us  {lookups / 1e9:7.1f} G lookups/s",
              flush=True)


if __name__ == "__main__":
    main()
