"""The toy graphs' timer and capture (the first-three-graphs runs of 2026-12-04b and 2026-12-04c; put this folder on
PYTHONPATH). Moved here from toy_graphs.py, toy_warmups.py and toy_update.py after their device calls, unchanged."""
import statistics
import time

import torch


def median_replay_ms(graph: torch.cuda.CUDAGraph, stream: torch.cuda.Stream | None = None) -> float:
    """Median of 200 replays of `graph` (on `stream`, else the current one), each synchronised, host clock, ms."""
    times = []
    for _ in range(200):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.cuda.stream(stream or torch.cuda.current_stream()):
            graph.replay()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def capture_adds(target: torch.Tensor, keep_graph: bool = False) -> torch.cuda.CUDAGraph:
    """A graph of 1,700 in-place adds of 1 to `target`; keep_graph: its cudaGraph_t kept, instantiated here."""
    graph = torch.cuda.CUDAGraph(keep_graph=keep_graph)
    with torch.cuda.graph(graph):
        for _ in range(1700):
            target.add_(1)
    if keep_graph:
        graph.instantiate()
    return graph
