"""Device-only: where a batch-1 QAQ decode step's time goes (QAQ steps eagerly: its values wait for attention), a
random-weight Llama-3-8B with a qaq4 cache filled to the context as `kvtool bench` fills it: 4 untimed steps, 3
timed, then 2 under torch.profiler (host ops by total and self time, device kernels by time).
  python3 docs/gpu_runs/2026-12-02e/qaq_step_profile.py 8192"""
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from kvtool import bench
from kvtool.runtime.generate import decoder

context = int(sys.argv[1])
torch.backends.cuda.enable_cudnn_sdp(False)
model = bench.llama3_8b_random()
cache = bench.make_cache(model, "qaq4", 1, context, 16)
step = decoder(model, cache, graphs=True)
ids = torch.randint(0, model.config.vocab_size, (1, 1), device="cuda")
with torch.no_grad():
    for _ in range(4):
        ids = step(ids).argmax(-1, keepdim=True)
    for _ in range(3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        ids = step(ids).argmax(-1, keepdim=True)
        torch.cuda.synchronize()
        print(f"step: {(time.perf_counter() - start) * 1e3:.1f} ms", flush=True)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(2):
            ids = step(ids).argmax(-1, keepdim=True)
        torch.cuda.synchronize()
averages = prof.key_averages()
print(averages.table(sort_by="cpu_time_total", row_limit=30, max_name_column_width=60))
print(averages.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60))
print(averages.table(sort_by="self_cuda_time_total", row_limit=12, max_name_column_width=60))
