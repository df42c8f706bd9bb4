"""Shared by this folder's scripts: batch-1 greedy steps of a random-weight Llama-3-8B through runtime/graphs.py's
GraphedDecoder, each format's cache filled as `kvtool bench` fills it, and what each step was. Put together after the
calls, which ran the same steps inline (and told a step's kind by wrapping the decoder's methods); the scripts have
not run on the device in this form."""
import time

import torch

from kvtool import bench
from kvtool.runtime import graphs


def greedy(step, ids: torch.Tensor, count: int) -> torch.Tensor:
    for _ in range(count):
        ids = step(ids).argmax(-1, keepdim=True)
    return ids


def warmed_decoder(model, name: str, context: int, warm: int, room: int):
    """(cache, decoder, ids) after `warm` greedy steps from `context` tokens, with room for `room` steps."""
    cache = bench.make_cache(model, name, 1, context, room)
    step = graphs.GraphedDecoder(model, cache)
    ids = torch.randint(0, model.config.vocab_size, (1, 1), device="cuda")
    with torch.no_grad():
        ids = greedy(step, ids, warm)
    torch.cuda.synchronize()
    return cache, step, ids


@torch.no_grad()
def timed_step(step, ids: torch.Tensor) -> tuple[torch.Tensor, str, float]:
    """One greedy step, synchronised: (next ids, kind, ms); kind is "eager", "capture", "replay" or "replay after a
    flush" (one run ahead of it, between two replays)."""
    position = step.cache.get_seq_length()
    replay = step.graph is not None and step.first < position < step.end
    flush = replay and position - step.first in step.flush_steps
    before = step.graph
    torch.cuda.synchronize()
    start = time.perf_counter()
    ids = step(ids).argmax(-1, keepdim=True)
    torch.cuda.synchronize()
    ms = (time.perf_counter() - start) * 1e3
    kind = ("replay after a flush" if flush else "replay") if replay else (
        "capture" if step.graph is not None and step.graph is not before else "eager")
    return ids, kind, ms
