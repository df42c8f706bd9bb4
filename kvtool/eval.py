"""Quality and memory of a compressed cache, always measured beside fp16 in the same run.

Perplexity follows the papers' protocol: every key/value that attention reads is the compressed one, except what
the method itself keeps in full precision. The cache makes chunked prefill read exactly what token-by-token decoding
would (see runtime/stream.py), so evaluation runs in chunks of `chunk` tokens without hiding quantization error.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field

import torch
from tqdm import tqdm

from kvtool.artifacts import Artifact
from kvtool.data import passkey_prompt
from kvtool.models import fingerprint
from kvtool.runtime import CompressedKV, fp16_bytes_per_token, load
from kvtool.runtime.generate import forward, greedy

EVAL_CHUNK = 256


def fp16_baseline(model) -> CompressedKV:
    """The uncompressed fp16 cache, served by the same runtime as every method."""
    return load(Artifact.build("fp16", {}, fingerprint(model)))


@dataclass
class PerplexityResult:
    name: str
    perplexity: float
    tokens: int
    cache_bytes: int  # held after the last sequence's last token
    cache_tokens: int
    fp16_bytes: int  # what an fp16 cache of the same tokens holds
    compressed_bits: float | None  # bits per element of the compressed part alone (fp16 window and sinks aside)
    host_bytes: int  # held in host memory beside the cache (QAQ's full-precision copy), when cache_bytes is taken

    @property
    def bits_per_element(self) -> float:
        return 16.0 * self.cache_bytes / self.fp16_bytes

    def as_dict(self) -> dict:
        return {**asdict(self), "bits_per_element": round(self.bits_per_element, 3)}


@torch.no_grad()
def perplexity(model, sequences: list[torch.Tensor], kv: CompressedKV, chunk: int = EVAL_CHUNK,
               progress: bool = True) -> PerplexityResult:
    """Mean next-token negative log-likelihood over `sequences`, each run through a fresh cache of `kv`."""
    device = next(model.parameters()).device
    nll, count, cache = 0.0, 0, None
    for ids in tqdm(sequences, desc=f"perplexity {kv.name}", disable=not progress, leave=False):
        ids = ids.to(device)[None]
        cache = kv.make_cache(model, check_model=False)
        for lo in range(0, ids.shape[1], chunk):
            piece = ids[:, lo : lo + chunk]
            logits = forward(model, piece, cache).logits.float()
            targets = ids[:, lo + 1 : lo + chunk + 1]
            logits = logits[:, : targets.shape[1]]
            nll += torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
            count += targets.numel()
    tokens = sequences[-1].numel()
    return PerplexityResult(kv.name, math.exp(nll / count), count, cache.nbytes(), tokens,
                            tokens * fp16_bytes_per_token(model), cache.compressed_bits_per_element(),
                            cache.host_nbytes())


@dataclass
class PasskeyResult:
    name: str
    accuracy: dict[str, float] = field(default_factory=dict)  # "length@depth" -> fraction of trials retrieved
    cache_bytes: dict[str, int] = field(default_factory=dict)  # length -> bytes held after the prompt
    host_bytes: dict[str, int] = field(default_factory=dict)  # length -> bytes held in host memory beside the cache

    @property
    def mean(self) -> float:
        return sum(self.accuracy.values()) / max(len(self.accuracy), 1)

    def as_dict(self) -> dict:
        return {**asdict(self), "mean_accuracy": round(self.mean, 4)}


def passkey(model, tokenizer, kv: CompressedKV, lengths: list[int], depths: list[float], trials: int = 1,
            seed: int = 0, progress: bool = True) -> PasskeyResult:
    """Retrieve a random 5-digit key hidden at each depth of filler text of each length (greedy, 8 new tokens)."""
    result = PasskeyResult(kv.name)
    cells = [(length, depth) for length in lengths for depth in depths]
    bar = tqdm(total=len(cells) * trials, desc=f"passkey {kv.name}", disable=not progress, leave=False)
    for length, depth in cells:
        rng = random.Random(f"{seed}:{length}:{depth}")  # the same keys and prompts for every method
        hits = 0
        for _ in range(trials):
            prompt = passkey_prompt(tokenizer, length, depth, rng)
            cache = kv.make_cache(model, check_model=False)
            answer = tokenizer.decode(list(greedy(model, prompt.input_ids, cache, max_new_tokens=8)))
            hits += prompt.key in answer
            result.cache_bytes[str(length)] = cache.nbytes()
            result.host_bytes[str(length)] = cache.host_nbytes()
            bar.update()
        result.accuracy[f"{length}@{depth:g}"] = hits / trials
    bar.close()
    return result
