"""KVQuant calibration (arXiv 2401.18079; reference: SqueezeAILab/KVQuant quant/kvquant/simquant_module_quantizer.py).

Per layer, from pre-RoPE keys, values and their Fisher information (squared gradients of the causal-LM loss):
  keys:   per-channel outlier thresholds at the outliers/2 and 1 - outliers/2 percentiles (min/max without outliers);
          they normalize each channel to [-1, 1] and are the channel's quantization range;
  values: each token normalized by the range of its non-outlier elements (the runtime's own rule);
  then one 1-D nuq codebook of 2**bits signposts for keys and one for values: k-means over the normalized
  non-outlier elements with Fisher sample weights (scikit-learn KMeans, max_iter=50 as the reference), and
  Q-Norm terms that give the dequantized elements the mean and standard deviation of the originals.
Attention-sink tokens, which the runtime keeps in fp16, take no part.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from tqdm import tqdm

from kvtool.calibrate import CalibrationContext, Calibrator, dist, register_calibrator
from kvtool.calibrate.capture import capture
from kvtool.errors import KvtoolError
from kvtool.models import Layout
from kvtool.runtime.kvquant import Codebook, value_outliers, value_slots

HISTOGRAM_BINS = 1 << 16


def fit_signposts(normalized: torch.Tensor, weights: torch.Tensor | None, bits: int, seed: int) -> torch.Tensor:
    """Sorted 2**bits k-means centres of 1-D `normalized` elements in [-1, 1], each weighted by its Fisher information.

    The elements are first summed into a weighted histogram of HISTOGRAM_BINS bins: the same k-means objective up
    to moving each element by at most half a bin (1.5e-5), at a few hundredths of the cost on millions of elements.
    """
    weights = torch.ones_like(normalized) if weights is None else weights
    bins = ((normalized.clamp(-1, 1) + 1) * (HISTOGRAM_BINS - 1) / 2).round().long()
    mass = torch.bincount(bins, weights=weights.double(), minlength=HISTOGRAM_BINS)
    held = mass > 0
    centres = torch.linspace(-1, 1, HISTOGRAM_BINS, dtype=torch.float64)[held]
    kmeans = KMeans(n_clusters=1 << bits, random_state=seed, n_init="auto", max_iter=50)
    kmeans.fit(centres.numpy()[:, None], sample_weight=mass[held].numpy())
    return torch.from_numpy(kmeans.cluster_centers_[:, 0]).float().sort().values


def qnorm_terms(normalized: torch.Tensor, signposts: torch.Tensor) -> tuple[float, float]:
    """Q-Norm: scale and offset of the signposts that match the dequantized mean and std to the originals."""
    codebook = Codebook(signposts)
    dequantized = codebook.decode(codebook.encode(normalized))
    scale = (normalized.std(correction=0) / dequantized.std(correction=0).clamp_min(1e-12)).item()
    return scale, (normalized.mean() - dequantized.mean() * scale).item()


def codebook_for(normalized: torch.Tensor, fisher: torch.Tensor, inside: torch.Tensor, params: dict, seed: int):
    """Signposts and Q-Norm (scale, offset) from the non-outlier elements (`inside`)."""
    normalized, fisher = normalized[inside], fisher[inside]
    signposts = fit_signposts(normalized, fisher if params["fisher"] else None, params["bits"], seed)
    qnorm = params["qnorm"] == "on" or params["qnorm"] == "auto" and params["bits"] == 2
    return signposts, qnorm_terms(normalized, signposts) if qnorm else (1.0, 0.0)


def calibrate_kvquant(context: CalibrationContext, params: dict) -> dict[str, torch.Tensor]:
    layout = Layout.of(context.model)
    sink = params["sink"]
    # per layer {sequence index: [tokens, 4, channels]}: pre-RoPE key, key Fisher, value, value Fisher
    seen: list[dict[int, torch.Tensor]] = [{} for _ in range(layout.num_layers)]
    captured = capture(context.model, context.sequences, grads=True)
    for index, layers in tqdm(captured, total=len(dist.shard(len(context.sequences))),
                              desc="kvquant: keys, values, Fisher", disable=not context.progress):
        for layer, kv in enumerate(layers):
            parts = (kv.keys_pre_rope, kv.key_fisher, kv.values, kv.value_fisher)
            seen[layer][index] = torch.stack([p[sink:].flatten(1) for p in parts], dim=1)

    out = {name: [] for name in ("key_signposts", "value_signposts", "key_lower", "key_upper", "qnorm")}
    tail = params["outliers"] / 2
    for layer in tqdm(range(layout.num_layers), desc="kvquant: k-means", disable=not context.progress):
        keys, key_fisher, values, value_fisher = torch.cat(dist.gather_indexed(seen[layer])).unbind(1)
        seen[layer] = {}
        if keys.shape[0] == 0:
            raise KvtoolError(f"--seq-len must exceed sink={sink}: no calibration tokens after the attention sink")

        lower, upper = torch.from_numpy(np.percentile(keys.numpy(), [100 * tail, 100 * (1 - tail)], axis=0)).float()
        half = ((upper - lower) / 2).clamp_min(1e-6)
        normalized = (keys - (upper + lower) / 2) / half
        key_signposts, key_qnorm = codebook_for(normalized, key_fisher, normalized.abs() <= 1, params, context.seed)

        if params["value_vector"] == "head":  # one range and outlier set per token and head
            values, value_fisher = (t.reshape(-1, layout.head_dim) for t in (values, value_fisher))
        per_side = value_slots(params, values.shape[1]) // 2
        offsets, midpoint, half = value_outliers(values, per_side)
        normalized = (values - midpoint[:, None]) / half[:, None]
        inside = torch.ones_like(values, dtype=torch.bool).scatter(-1, offsets, False)
        value_signposts, value_qnorm = codebook_for(normalized, value_fisher, inside, params, context.seed)

        out["key_signposts"].append(key_signposts)
        out["value_signposts"].append(value_signposts)
        out["key_lower"].append(lower.reshape(layout.num_kv_heads, layout.head_dim))
        out["key_upper"].append(upper.reshape(layout.num_kv_heads, layout.head_dim))
        out["qnorm"].append(torch.tensor([key_qnorm, value_qnorm]))
    return {name: torch.stack(tensors).float() for name, tensors in out.items()}


# the paper calibrates on 16 x 2048 tokens; a 2-core CPU captures gradients of 8 x 512 in about a minute
register_calibrator(Calibrator("kvquant", run=calibrate_kvquant, samples=8, seq_len=512))
