"""Chunked prefill and greedy decoding through any cache, without materialising logits for the whole prompt; on
CUDA, decode steps through a compressed cache replay CUDA graphs where they can (graphs.py)."""

from __future__ import annotations

import functools
import inspect
from typing import Callable, Iterator

import torch

PREFILL_CHUNK = 1024  # prompt tokens per forward: bounds activations and score matrices on long prompts


def cache_keyword(model) -> str:
    """The keyword `model`'s forward and generate take a cache by: transformers renamed `past_key_values` to `cache`
    in 5.x (the old name warns, and goes in 5.40). Read from the class: accelerate's hooks wrap the instance's."""
    return _cache_keyword_of(type(model))


@functools.cache
def _cache_keyword_of(model_class: type) -> str:
    """cache_keyword once per class: reading a signature costs ~26 µs, and every forward asks."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def forward(model, ids: torch.Tensor, cache, logits_to_keep: int = 0, **inputs):
    """One forward through `cache`."""
    return model(input_ids=ids, use_cache=True, logits_to_keep=logits_to_keep, **{cache_keyword(model): cache},
                 **inputs)


def decoder(model, cache, graphs: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """Decode steps: token ids [B, 1] -> logits [B, vocab] of the next position; through a compressed cache on
    CUDA, replayed from CUDA graphs where they serve (unless `graphs` is False; sequences without padding)."""
    from kvtool.runtime.cache import CompressedCache
    from kvtool.runtime.graphs import GraphedDecoder

    if graphs and isinstance(cache, CompressedCache) and next(model.parameters()).is_cuda:
        return GraphedDecoder(model, cache)
    return lambda ids: forward(model, ids, cache, logits_to_keep=1).logits[:, -1]


@torch.no_grad()
def prefill(model, ids: torch.Tensor, cache, chunk: int = PREFILL_CHUNK) -> torch.Tensor:
    """Feed the prompt [1, T] in chunks; returns the logits of its last position [1, vocab]."""
    logits = None
    for lo in range(0, ids.shape[1], chunk):
        logits = forward(model, ids[:, lo : lo + chunk], cache, logits_to_keep=1).logits[:, -1]
    return logits


@torch.no_grad()
def greedy(model, ids: torch.Tensor, cache, max_new_tokens: int, eos_token_id: int | None = None) -> Iterator[int]:
    """Yield greedily decoded token ids one at a time (stops at EOS)."""
    device = next(model.parameters()).device
    logits = prefill(model, ids.to(device), cache)
    step = decoder(model, cache)
    for _ in range(max_new_tokens):
        token = int(logits.argmax(-1))
        yield token
        if token == eos_token_id:
            return
        logits = step(torch.tensor([[token]], device=device))
