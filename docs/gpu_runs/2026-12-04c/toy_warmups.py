"""Device-only: which eager work puts a process's later CUDA graphs in the slow mode (docs/gpu-log.md, "The first
three graphs in plain PyTorch")? Six graphs of 1,700 in-place adds on 16 floats, captured one after another, the
previous one dropped; per graph the median of 200 replays (synchronised, host clock), ms. Before the first capture
(WHERE=before) or after the second graph's replays (WHERE=between; the first two graphs are kept and replayed again
after it), N of the adds run eagerly, with a synchronize after every SYNC of them (0: one at the end). Call 2 added
TOY_REPLAY=side (every replay on one side stream made first), TOY_SLEEP=S (seconds slept after the eager adds) and
TOY_EAGER=kernels (the eager work: N different kernels, not N adds). Its timer and capture moved to
../toy_graph_times.py afterwards (put docs/gpu_runs on PYTHONPATH).
  python3 docs/gpu_runs/2026-12-04c/toy_warmups.py N SYNC before|between"""
import os
import sys
import time

import torch
from toy_graph_times import capture_adds, median_replay_ms

count, sync_every, where = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
x = torch.zeros(16, device="cuda")
replay_stream = torch.cuda.Stream() if os.environ.get("TOY_REPLAY") == "side" else None
eager_ops = [torch.Tensor.add_, torch.Tensor.mul_, torch.Tensor.sub_, torch.Tensor.div_]


def eager(n: int) -> None:
    for i in range(n):
        if os.environ.get("TOY_EAGER") == "kernels":
            eager_ops[i % 4](x, 1.0)
        else:
            x.add_(1)
        if sync_every and (i + 1) % sync_every == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    time.sleep(float(os.environ.get("TOY_SLEEP", "0")))


torch.cuda.synchronize()
if where == "before":
    eager(count)
medians, kept = [], []
for number in range(6):
    graph = capture_adds(x)
    medians.append(f"{median_replay_ms(graph, replay_stream):.3f}")
    if where == "between" and number < 2:
        kept.append(graph)
        if number == 1:
            eager(count)
            medians.append("| again " + " ".join(f"{median_replay_ms(g, replay_stream):.3f}" for g in kept) + " |")
print(f"N={count} sync={sync_every} {where}: " + " ".join(medians), flush=True)
