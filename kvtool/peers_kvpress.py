"""NVIDIA kvpress presses on kvtool's model, text and passkey prompts; run by `kvtool report` in `.venv-kvpress`.

kvpress pins an older transformers than kvtool, so this script imports from kvtool only `kvtool.data` (torch and the
standard library) and writes its results as JSON. Presses prune tokens once, at the end of a one-pass prefill:
- passkey: the prompt without its question is prefilled and pressed, then the question and 8 greedy tokens are fed
  through the pressed cache (kvpress's own pipeline protocol);
- perplexity: the first 3/4 of each evaluation sequence is prefilled and pressed, the last 1/4 is scored through
  the pressed cache; the same protocol without a press gives the fp16 reference the change is measured against.
Memory is the bytes of the keys and values the cache holds after the press (fp16 width), against fp16 of every
token seen.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import time
from importlib import metadata
from pathlib import Path

import torch

from kvtool.data import PASSKEY_QUESTION, evaluation_sequences, load_text, passkey_prompt, tokenize

CONTEXT_SHARE = 0.75  # of each perplexity sequence prefilled and pressed; the rest is scored
SCORE_CHUNK = 256


def cache_bytes(cache) -> int:
    return sum(2 * (layer.keys.numel() + layer.values.numel()) for layer in cache.layers)


def fp16_bytes(model, tokens: int) -> int:
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * 2 * tokens


def pressed_prefill(model, ids: torch.Tensor, press):
    """One-pass prefill of `ids` [1, T] with `press` applied (None: no press); returns (cache, last logits)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    with press(model) if press is not None else contextlib.nullcontext():
        logits = model(input_ids=ids, past_key_values=cache, logits_to_keep=1).logits[:, -1]
    return cache, logits


def continue_from(model, cache, ids: torch.Tensor, position: int):
    """Feed `ids` [1, n] after a (possibly pressed) cache at true position `position`; logits [1, n, vocab]."""
    positions = torch.arange(position, position + ids.shape[1])[None]
    return model(input_ids=ids, past_key_values=cache, position_ids=positions).logits


@torch.no_grad()
def perplexity(model, sequences: list[torch.Tensor], press) -> dict:
    nll, count, bits = 0.0, 0, []
    for sequence in sequences:
        split = int(len(sequence) * CONTEXT_SHARE)
        cache, logits = pressed_prefill(model, sequence[None, :split], press)
        bits.append(16.0 * cache_bytes(cache) / fp16_bytes(model, split))
        predictions = [logits[:, None]]
        for lo in range(split, len(sequence) - 1, SCORE_CHUNK):
            piece = sequence[None, lo : min(lo + SCORE_CHUNK, len(sequence) - 1)]
            predictions.append(continue_from(model, cache, piece, lo))
        logits = torch.cat(predictions, dim=1)[0].float()
        targets = sequence[split:]
        nll += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        count += len(targets)
    return {"perplexity": math.exp(nll / count), "tokens": count, "bits_per_element": sum(bits) / len(bits)}


@torch.no_grad()
def passkey(model, tokenizer, press, lengths: list[int], depths: list[float], trials: int) -> dict:
    """The same prompts as kvtool.eval.passkey (same seeds); the question is fed after the press."""
    question_tokens = len(tokenize(tokenizer, PASSKEY_QUESTION))
    accuracy, held = {}, {}
    for length in lengths:
        for depth in depths:
            rng = random.Random(f"0:{length}:{depth}")
            hits = 0
            for _ in range(trials):
                prompt = passkey_prompt(tokenizer, length, depth, rng)
                context, question = prompt.input_ids[:, :-question_tokens], prompt.input_ids[:, -question_tokens:]
                cache, _ = pressed_prefill(model, context, press)
                logits = continue_from(model, cache, question, context.shape[1])[:, -1]
                held[str(length)] = cache_bytes(cache)
                produced, position = [], prompt.input_ids.shape[1]
                for _ in range(8):
                    token = logits.argmax(-1)
                    produced.append(int(token))
                    logits = continue_from(model, cache, token[None], position)[:, -1]
                    position += 1
                hits += prompt.key in tokenizer.decode(produced)
            accuracy[f"{length}@{depth:g}"] = hits / trials
    return {"accuracy": accuracy, "cache_bytes": held}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="HF model folder")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data", default=None)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--lengths", default="")
    parser.add_argument("--depths", default="0.1,0.5,0.9")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--press-bits", default="2", help="memory targets: keep bits/16 of the tokens")
    parser.add_argument("--presses", default="SnapKVPress,KnormPress,ExpectedAttentionPress")
    args = parser.parse_args()

    import kvpress
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.disable_progress_bar()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    sequences = evaluation_sequences(tokenizer, load_text(args.data, "evaluation"), args.seq_len, args.sequences)
    lengths = [int(n) for n in args.lengths.split(",") if n]
    depths = [float(d) for d in args.depths.split(",") if d]

    def measure(name: str, press) -> dict:
        started = time.perf_counter()
        row = {"name": name, **perplexity(model, sequences, press)}
        if lengths:
            row.update(passkey(model, tokenizer, press, lengths, depths, args.trials))
        row["seconds"] = round(time.perf_counter() - started, 1)
        print(f"{name}: ppl {row['perplexity']:.3f}, {row['bits_per_element']:.2f} bits/elem, "
              f"{row['seconds']} s", flush=True)
        return row

    reference = measure("fp16 (kvpress protocol)", None)
    rows = []
    for bits in [float(b) for b in args.press_bits.split(",") if b]:
        for press_name in args.presses.split(","):
            press = getattr(kvpress, press_name)(compression_ratio=1 - bits / 16)
            rows.append({**measure(f"kvpress {press_name} keep {bits:g}/16", press), "press": press_name,
                         "compression_ratio": 1 - bits / 16})
    versions = {"kvpress": metadata.version("kvpress"), "transformers": transformers.__version__}
    args.out.write_text(json.dumps({"versions": versions, "reference": reference, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
