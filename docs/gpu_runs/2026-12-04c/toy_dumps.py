"""Device-only: what differs between a graph captured among a process's first three and one captured later? After 16
eager adds, five graphs of 4 in-place adds are captured in debug mode and each is written out by
cudaGraphDebugDotPrint (torch's debug_dump) into $OUT/graphN.dot; then graph 1's dump is diffed against graph 4's,
with every hex address and id made 0x*, and graph 2's against graph 3's as a control.
  python3 docs/gpu_runs/2026-12-04c/toy_dumps.py"""
import difflib
import os
import re

import torch

x = torch.zeros(16, device="cuda")
for _ in range(16):
    x.add_(1)
torch.cuda.synchronize()
out = os.environ.get("OUT", ".")
texts = {}
for number in range(1, 6):
    graph = torch.cuda.CUDAGraph(keep_graph=True)
    graph.enable_debug_mode()
    with torch.cuda.graph(graph):
        for _ in range(4):
            x.add_(1)
    graph.instantiate()
    graph.replay()
    path = f"{out}/graph{number}.dot"
    graph.debug_dump(path)
    texts[number] = re.sub(r"0x[0-9a-fA-F]+", "0x*", open(path).read()).splitlines()
for a, b in ((1, 4), (2, 3), (3, 4)):
    diff = list(difflib.unified_diff(texts[a], texts[b], f"graph{a}", f"graph{b}", lineterm="", n=0))
    print(f"--- graph {a} against graph {b}: {len(diff)} diff lines")
    print("\n".join(diff[:80]))
