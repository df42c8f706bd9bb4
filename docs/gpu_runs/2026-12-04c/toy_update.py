"""Device-only: does a graph executable made among a process's first three stay fast when updated in place with a
later capture (cuGraphExecUpdate), where a graph instantiated fourth replays slow? After 1,700 eager in-place adds,
graph 1 adds 1 to x 1,700 times (kept), graphs 2 and 3 likewise (dropped), graph 4 adds 1 to y instead (kept, its
cudaGraph_t too); then graph 1's executable is updated with graph 4's graph and replayed. Median of 200 replays
(synchronised, host clock), ms, and what each replay wrote (y must grow by 1,700 per replay after the update).
Its timer and capture moved to ../toy_graph_times.py after call 3 (put docs/gpu_runs on PYTHONPATH).
  python3 docs/gpu_runs/2026-12-04c/toy_update.py"""
import ctypes

import torch
from toy_graph_times import capture_adds, median_replay_ms

x = torch.zeros(16, device="cuda")
y = torch.zeros(16, device="cuda")
for _ in range(1700):
    x.add_(1)
torch.cuda.synchronize()


first = capture_adds(x)
print(f"graph 1 (x): {median_replay_ms(first):.3f}")
for number in (2, 3):
    print(f"graph {number} (x): {median_replay_ms(capture_adds(x)):.3f}")
fourth = capture_adds(y, keep_graph=True)
print(f"graph 4 (y): {median_replay_ms(fourth):.3f}")


class UpdateInfo(ctypes.Structure):
    _fields_ = [("result", ctypes.c_int), ("error_node", ctypes.c_void_p), ("error_from_node", ctypes.c_void_p)]


libcuda = ctypes.CDLL("libcuda.so.1")
info = UpdateInfo()
status = libcuda.cuGraphExecUpdate_v2(ctypes.c_void_p(first.raw_cuda_graph_exec()),
                                      ctypes.c_void_p(fourth.raw_cuda_graph()), ctypes.byref(info))
print(f"cuGraphExecUpdate_v2: status {status}, result {info.result}")
x_before, y_before = x[0].item(), y[0].item()
first.replay()
torch.cuda.synchronize()
print(f"one replay of graph 1 after the update: x +{x[0].item() - x_before:.0f}, y +{y[0].item() - y_before:.0f}")
print(f"graph 1 updated with graph 4's: {median_replay_ms(first):.3f}")
print(f"graph 4 again: {median_replay_ms(fourth):.3f}")
print(f"graph 5 (x): {median_replay_ms(capture_adds(x)):.3f}")
