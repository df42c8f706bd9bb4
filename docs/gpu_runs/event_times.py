"""Timing a piece of host code on CUDA by events around each call, launch costs included (unlike the bench's graph
replays); used by the encode scripts of the runs in this folder (put this folder on PYTHONPATH). Moved here from
2026-12-04b's codebook_encode_times.py and long_appends.py after their device calls, unchanged."""
import statistics

import torch


def median_us(fn, reps: int = 100) -> float:
    """Median microseconds of `reps` calls of fn after one untimed call, each between two CUDA events."""
    fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000)
    return statistics.median(times)
