"""Per-kernel GPU time of one layer's decode attention (kvtool's fused launches), by torch's profiler:
python3 kernel_times.py FORMAT[,FORMAT...] CONTEXT [BATCH]."""
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from kvtool import bench
from kvtool.runtime import kernels

names, context = sys.argv[1].split(","), int(sys.argv[2])
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 1
query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
for name in names:
    layer = bench.make_layer(name, "cuda")
    bench.fill_layer(layer, batch, context, "cuda")
    run = lambda: kernels.attend_decode(layer, query, None, bench.HEAD_DIM**-0.5, None, observe=False)  # noqa: E731
    for _ in range(5):
        run()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            run()
        torch.cuda.synchronize()
    print(f"== {name}, {batch} x {context}: 20 calls")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=8, max_name_column_width=60))
