"""Device-only: the first-three-graphs effect without kvtool? Six CUDA graphs of 1,700 small kernels each, captured
one after another in one process, the previous one dropped; per graph the median of 200 replays (synchronised, host
clock), ms. KINDS (comma-separated): add (x.add_(1) on 16 floats, in place), alloc (y = y + 1: a new tensor from
the graph's pool each time), triton (a one-program Triton kernel adding 1), mixed (triton and alloc in turn).
STREAMS: plain (torch.cuda.graph's own capture stream), new (a torch.cuda.Stream made before each capture, unused),
capture (each graph captured on a new stream), warm (call 8's form: before each capture one kernel on a new stream,
ordered by events with the current one both ways), work (that kernel, no events), waits (the events, no kernel).
Triton is imported only for kinds that launch its kernel, or with TOY_IMPORT_TRITON=1. TOY_NO_WARMUP=1: no eager
run of the 1,700 kernels before the first capture (call 8's form had none); TOY_WARMUP_STREAM=side: that run on a
side stream. The script grew over calls 8-14; call 8's form was `TOY_NO_WARMUP=1 ... add warm`, and call 9's
imported Triton always. Its replay timer moved to ../toy_graph_times.py afterwards (put docs/gpu_runs on PYTHONPATH).
  python3 docs/gpu_runs/2026-12-04b/toy_graphs.py add,alloc,triton,mixed [plain|new|capture|warm|work|waits]"""
import os
import sys

import torch
from toy_graph_times import median_replay_ms

if {"triton", "mixed"} & set(sys.argv[1].split(",")) or os.environ.get("TOY_IMPORT_TRITON") == "1":
    import triton
    import triton.language as tl

    @triton.jit
    def _add_one(x_ptr, N: tl.constexpr):
        offsets = tl.arange(0, N)
        tl.store(x_ptr + offsets, tl.load(x_ptr + offsets) + 1)


def body(kind: str, x: torch.Tensor) -> None:
    y = x
    for i in range(1700):
        if kind == "add":
            x.add_(1)
        elif kind == "alloc" or (kind == "mixed" and i % 2):
            y = y + 1
        else:
            _add_one[(1,)](x, N=16)


streams = sys.argv[2] if len(sys.argv) > 2 else "plain"
x = torch.zeros(16, device="cuda")
for kind in sys.argv[1].split(","):
    if os.environ.get("TOY_NO_WARMUP") != "1":
        side = torch.cuda.Stream() if os.environ.get("TOY_WARMUP_STREAM") == "side" else torch.cuda.current_stream()
        with torch.cuda.stream(side):
            body(kind, x)  # warm-up (and Triton's compile) outside capture
        torch.cuda.synchronize()
    torch.cuda.synchronize()
    medians = []
    for _ in range(6):
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream() if streams != "plain" else None
        if streams in ("warm", "waits"):
            stream.wait_stream(torch.cuda.current_stream())
        if streams in ("warm", "work"):
            with torch.cuda.stream(stream):
                x.add_(1)
        if streams in ("warm", "waits"):
            torch.cuda.current_stream().wait_stream(stream)
        with torch.cuda.graph(graph, stream=stream if streams == "capture" else None):
            body(kind, x)
        medians.append(median_replay_ms(graph))
        del graph
    print(f"toy graphs of 1,700 kernels ({kind}, {streams}, triton {'triton' in sys.modules}), median replay per "
          "graph: " + " ".join(f"{ms:.3f}" for ms in medians), flush=True)
