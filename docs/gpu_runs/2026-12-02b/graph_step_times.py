"""Device-only: where batch-1 decode time goes with CUDA graphs (runtime/graphs.py): a random-weight Llama-3-8B,
each format's cache filled to the context as `kvtool bench` fills it, 256 greedy steps, each timed on its own
(synchronised), by kind: replays, captures (the step run while capturing, then its replay), eager steps.
  python3 docs/gpu_runs/2026-12-02b/graph_step_times.py fp16-kernel,kivi2 32768"""
import statistics
import sys
import time

import torch

from kvtool import bench
from kvtool.runtime import graphs

formats, context = sys.argv[1].split(","), int(sys.argv[2])
kinds = []
for method in ("_replay", "_capture", "_forward"):
    original = getattr(graphs.GraphedDecoder, method)

    def tagged(self, *args, _original=original, _kind=method.strip("_")):
        kinds.append(_kind)
        return _original(self, *args)

    setattr(graphs.GraphedDecoder, method, tagged)
model = bench.llama3_8b_random()
for name in formats:
    cache = bench.make_cache(model, name, 1, context, 260)
    step = graphs.GraphedDecoder(model, cache)
    ids = torch.randint(0, model.config.vocab_size, (1, 1), device="cuda")
    times = {}
    with torch.no_grad():
        for _ in range(258):
            kinds.clear()
            torch.cuda.synchronize()
            start = time.perf_counter()
            ids = step(ids).argmax(-1, keepdim=True)
            torch.cuda.synchronize()
            kind = "replay" if "replay" in kinds else "capture" if "capture" in kinds else "eager"
            times.setdefault(kind, []).append((time.perf_counter() - start) * 1e3)
    total = sum(sum(v) for v in times.values())
    print(f"{name} at {context}: {total / 258:.2f} ms per step over 258 steps; " + "; ".join(
        f"{kind} {len(v)} steps, median {statistics.median(v):.2f} ms, {sum(v) / total:.1%} of the time"
        for kind, v in times.items()), flush=True)
    del cache, step
    torch.cuda.empty_cache()
