"""MILLION's outlier immunity, an ablation (docs/methods/million.md, "Outlier immunity: an ablation").

Real post-RoPE keys and queries of the embedded SmolLM2-135M (kvtool.calibrate.capture), a few layers: codebooks are
learned on the calibration split, errors are measured on the disjoint evaluation split. Then the same with channel
outliers injected: in every (layer, KV head), 2 of the 64 key channels (random, seeded) are multiplied by a factor
and the matching query channels divided by it, so q·k, the attention the model computes, is unchanged; any change in
the logit error is the quantizer's reaction to the outliers alone.

Quantizers, all through kvtool's own code: MILLION's product codebooks (learn_product_codebooks: faiss k-means per
sub-space, 25 iterations; CodebookCodec encode/decode), one codebook set per layer and KV head (`codebooks=head`);
KIVI's per-channel keys (KiviKeys, groups of 32 tokens); naive per-token (KiviValues with one group of 64 channels:
min-max over each head vector). No window anywhere: every token is quantized.

    OMP_NUM_THREADS=1 .venv/bin/python docs/methods/million_outlier_ablation.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from kvtool.calibrate.capture import capture  # noqa: E402
from kvtool.calibrate.codebook import learn_product_codebooks  # noqa: E402
from kvtool.data import calibration_sequences, default_text, evaluation_sequences  # noqa: E402
from kvtool.models import load_model  # noqa: E402
from kvtool.runtime.codebook import CodebookCodec  # noqa: E402
from kvtool.runtime.kivi import KiviKeys, KiviValues  # noqa: E402

LAYERS = (0, 10, 20, 29)
CALIBRATION, EVALUATION, SEQ_LEN = 16, 4, 512  # 8,192 calibration vectors per head: 32 per centroid
FACTORS = (1, 8, 32)  # 1: the keys as they are
OUTLIER_CHANNELS = 2


def captured(model, sequences, layers):
    """Per layer: keys [N, T, H, D] and queries [N, T, Hq, D] after RoPE over the sequences."""
    keys, queries = {i: [] for i in layers}, {i: [] for i in layers}
    for _, per_layer in capture(model, sequences, queries=True):
        for i in layers:
            keys[i].append(per_layer[i].keys)
            queries[i].append(per_layer[i].queries)
    return {i: torch.stack(keys[i]) for i in layers}, {i: torch.stack(queries[i]) for i in layers}


def outlier_scale(layer: int, heads: int, dim: int, factor: float) -> torch.Tensor:
    """[H, D]: `factor` on OUTLIER_CHANNELS random channels of each head (seeded per layer), 1 elsewhere."""
    scale = torch.ones(heads, dim)
    generator = torch.Generator().manual_seed(1000 + layer)
    for head in range(heads):
        scale[head, torch.randperm(dim, generator=generator)[:OUTLIER_CHANNELS]] = factor
    return scale


def product_codec(calibration_keys: torch.Tensor, width: int, bits: int) -> CodebookCodec:
    """MILLION's codebooks per head from calibration keys [N, T, H, D], stored fp16 as in an artifact."""
    flat = calibration_keys.flatten(0, 1)  # [N*T, H, D]
    books = torch.stack([learn_product_codebooks(flat[:, h], width, bits, 25, seed=h) for h in range(flat.shape[1])])
    return CodebookCodec(books.half().float(), bits)


def errors(keys: torch.Tensor, queries: torch.Tensor, approx: torch.Tensor) -> tuple[float, float, float, float]:
    """Sums for pooled relative errors: ||k - k^||², ||k||², Σ causal (q·k - q·k^)², Σ causal (q·k)².
    keys/approx [N, H, T, D], queries [N, Hq, T, D] (GQA: query head j reads KV head j // (Hq / H))."""
    group = queries.shape[1] // keys.shape[1]
    k, k_hat = keys.repeat_interleave(group, 1), approx.repeat_interleave(group, 1)
    logits, logits_hat = queries @ k.transpose(-1, -2), queries @ k_hat.transpose(-1, -2)
    causal = torch.ones(keys.shape[2], keys.shape[2], dtype=torch.bool).tril()
    return ((keys - approx).square().sum().item(), keys.square().sum().item(),
            (logits - logits_hat)[..., causal].square().sum().item(), logits[..., causal].square().sum().item())


def main() -> None:
    start = time.time()
    torch.manual_seed(0)
    model, tokenizer = load_model(device="cpu")
    cal_k, _ = captured(model, calibration_sequences(tokenizer, default_text("calibration"), CALIBRATION, SEQ_LEN, 0),
                        LAYERS)
    eval_k, eval_q = captured(model, evaluation_sequences(tokenizer, default_text("evaluation"), SEQ_LEN, EVALUATION),
                              LAYERS)
    heads, dim = cal_k[LAYERS[0]].shape[2:]
    # name, bits per element in codes, with fp16 scales/minimums, quantizer (calibration keys -> codec)
    quantizers = [
        ("MILLION PQ 2 dims x 8 bits", 4, 4.0, lambda cal: product_codec(cal, 2, 8)),
        ("KIVI per-channel 4 bits, G32", 4, 5.0, lambda cal: KiviKeys(4, 32, 0)),
        ("per-token 4 bits", 4, 4.5, lambda cal: KiviValues(4, 64, 0)),
        ("MILLION PQ 4 dims x 8 bits", 2, 2.0, lambda cal: product_codec(cal, 4, 8)),
        ("KIVI per-channel 2 bits, G32", 2, 3.0, lambda cal: KiviKeys(2, 32, 0)),
        ("per-token 2 bits", 2, 2.5, lambda cal: KiviValues(2, 64, 0)),
    ]
    results = {}  # (quantizer, factor) -> [4 sums]
    for layer in LAYERS:
        for factor in FACTORS:
            scale = outlier_scale(layer, heads, dim, factor)
            cal = cal_k[layer] * scale
            keys = (eval_k[layer] * scale).transpose(1, 2)  # [N, H, T, D]
            queries = (eval_q[layer] / scale.repeat_interleave(eval_q[layer].shape[2] // heads, 0)).transpose(1, 2)
            for name, _, _, make in quantizers:
                codec = make(cal)
                sums = errors(keys, queries, codec.decode(codec.encode(keys, 0), 0))
                results[name, factor] = [a + b for a, b in zip(results.get((name, factor), [0] * 4), sums)]
        print(f"layer {layer} done, {time.time() - start:.0f} s", flush=True)

    print(f"\nSmolLM2-135M layers {list(LAYERS)}, keys after RoPE; codebooks from {CALIBRATION} x {SEQ_LEN} calibration"
          f" tokens, errors on {EVALUATION} x {SEQ_LEN} evaluation tokens; outliers: {OUTLIER_CHANNELS} of {dim}"
          " channels per head x factor (queries / factor)\n")
    header = "| quantizer | bits (codes / with scales) | " + " | ".join(
        f"key err x{f}" for f in FACTORS) + " | " + " | ".join(f"logit err x{f}" for f in FACTORS) + " |"
    print(header + "\n|" + "---|" * (2 + 2 * len(FACTORS)))
    for name, code_bits, held_bits, _ in quantizers:
        key = [results[name, f][0] / results[name, f][1] for f in FACTORS]
        logit = [results[name, f][2] / results[name, f][3] for f in FACTORS]
        print(f"| {name} | {code_bits} / {held_bits:g} | " + " | ".join(f"{e:.4f}" for e in key) + " | "
              + " | ".join(f"{e:.4f}" for e in logit) + " |")
    print(f"\nwall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
