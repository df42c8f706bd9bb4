"""Device-only: batch-1 decode steps timed one by one (synchronised) with a captured step's replays running across
the flushes of held tokens ("across", the working tree) and with every flush ending the replays ("ends", as before
5fa70d0), by kind: eager steps, captures, replays with a flush encoded before them, other replays. A random-weight
Llama-3-8B, each format's cache filled as `kvtool bench` fills it, 258 greedy steps (or STEPS, the figures of the
last 256 when more, as the bench times them); MODES: ends,across (default) or one of them. Steps over twice the
median replay are listed, and the median replay per 32 steps.
  PYTHONPATH=.:docs/gpu_runs python3 docs/gpu_runs/2026-12-04/flush_step_times.py million2,kivi2 8192 [STEPS] \
    [MODES]"""
import statistics
import sys

import torch
from flush_modes import across, ends_at_flush
from replays import timed_step, warmed_decoder

from kvtool import bench
from kvtool.runtime import graphs

formats, context = sys.argv[1].split(","), int(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 258
modes = sys.argv[4].split(",") if len(sys.argv) > 4 else ["ends", "across"]
timed = 256 if steps > 258 else steps  # the last ones

model = bench.llama3_8b_random()
for name in formats:
    for mode in modes:
        graphs.replayable_steps = {"ends": ends_at_flush, "across": across}[mode]
        cache, step, ids = warmed_decoder(model, name, context, 0, steps + 2)
        times, order = [], []
        for _ in range(steps):
            ids, kind, ms = timed_step(step, ids)
            times.append((kind, ms))
            order.append(kind[0] if kind != "replay after a flush" else "F")
        by_kind = {}
        for kind, ms in times[-timed:]:
            by_kind.setdefault(kind, []).append(ms)
        total = sum(ms for _, ms in times[-timed:])
        print(f"{name} at {context}, {mode}, last {timed} steps: {total / timed:.2f} ms per step; " + "; ".join(
            f"{kind} {len(v)}, median {statistics.median(v):.2f} ms, {sum(v) / total:.1%}"
            for kind, v in by_kind.items()), flush=True)
        print("  steps: " + "".join(order), flush=True)
        buckets = [[ms for kind, ms in times[lo: lo + 32] if kind == "replay"] for lo in range(0, steps, 32)]
        print("  replays per 32 steps: " + " ".join(f"{statistics.median(b):.2f}" if b else "-" for b in buckets))
        slow = 2 * statistics.median(by_kind["replay"])
        print("  slow: " + ", ".join(f"{i} {kind} {ms:.1f}" for i, (kind, ms) in enumerate(times) if ms > slow))
        del cache, step
        torch.cuda.empty_cache()
