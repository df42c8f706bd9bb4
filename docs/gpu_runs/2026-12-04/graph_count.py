"""Device-only: replays of a process's fourth CUDA graph onwards take ~0.6 ms more per batch-1 step (call 6). One
format's 1,100 steps (graphs captured at steps 2, 258, 514, 770, 1026), each timed on its own, median replay per
graph, with the captures changed as VARIANT says:
  plain    as runtime/graphs.py captures (a new CUDAGraph and memory pool each time; the old graph dropped)
  collect  synchronize, gc.collect() and torch.cuda.empty_cache() before each capture
  pool     every capture in one memory pool (torch.cuda.graph_pool_handle())
  reuse    one CUDAGraph object, reset and captured again
  keep     every graph kept alive (none destroyed)
  burn3    three one-kernel graphs captured and replayed first
  python3 docs/gpu_runs/2026-12-04/graph_count.py fp16-kernel 8192 plain,pool"""
import functools
import gc
import statistics
import sys
import time

import torch

from kvtool import bench
from kvtool.runtime import graphs

name, context, variant = sys.argv[1], int(sys.argv[2]), sys.argv[3]
STEPS = 1100
kept = []
if variant == "collect":
    capture = graphs.GraphedDecoder._capture

    def collected(self, *args):
        torch.cuda.synchronize()
        gc.collect()
        torch.cuda.empty_cache()
        return capture(self, *args)

    graphs.GraphedDecoder._capture = collected
elif variant == "pool":
    torch.cuda.graph = functools.partial(torch.cuda.graph, pool=torch.cuda.graph_pool_handle())
elif variant == "reuse":
    shared = torch.cuda.CUDAGraph()

    def one_graph():
        shared.reset()
        return shared

    torch.cuda.CUDAGraph = one_graph
elif variant == "keep":
    call = graphs.GraphedDecoder.__call__

    def keeping(self, ids):
        if self.graph is not None and self.graph not in kept:
            kept.append(self.graph)
        return call(self, ids)

    graphs.GraphedDecoder.__call__ = keeping
elif variant == "burn3":
    x = torch.zeros(16, device="cuda")
    for _ in range(3):
        tiny = torch.cuda.CUDAGraph()
        with torch.cuda.graph(tiny):
            x.add_(1)
        tiny.replay()
    torch.cuda.synchronize()
model = bench.llama3_8b_random()
cache = bench.make_cache(model, name, 1, context, STEPS + 2)
step = graphs.GraphedDecoder(model, cache)
ids = torch.randint(0, model.config.vocab_size, (1, 1), device="cuda")
per_graph, captures = [], 0
with torch.no_grad():
    for index in range(STEPS):
        replay = step.graph is not None and step.first < cache.get_seq_length() < step.end
        torch.cuda.synchronize()
        start = time.perf_counter()
        ids = step(ids).argmax(-1, keepdim=True)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - start) * 1e3
        if replay:
            per_graph[-1].append(ms)
        elif step.graph is not None:
            per_graph.append([])
print(f"{name} at {context}, {variant}: median replay per graph "
      + " ".join(f"{statistics.median(times):.2f}" for times in per_graph if times), flush=True)
