"""QAQ's offline part: what the paper precomputes, and the tolerances that meet a target average bit width.

Per layer (and head group) the `query_quantile` quantile of the scaled squared query norm ‖q‖²/D (paper §4.1: "the
upper 10% quantile"), then σ_S (keys) and σ_X (values) found by bisection so that the runtime's own width rule,
replayed on the calibration tokens (windows, outliers and clamp included), averages `key_bits` and `value_bits`.
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

from kvtool.calibrate import CalibrationContext, Calibrator, dist, register_calibrator
from kvtool.calibrate.capture import capture
from kvtool.errors import KvtoolError
from kvtool.models import Layout
from kvtool.runtime.qaq import bit_widths, key_sigma, outlier_counts, value_sigma


def token_spread(x: torch.Tensor, groups: int, outliers: float) -> torch.Tensor:
    """max - min per token and head group once the outliers are set apart: x [T, heads, D] -> [T, groups]."""
    flat = x.reshape(x.shape[0], groups, -1)
    low, high = outlier_counts(flat.shape[-1], outliers)
    ordered = flat.sort(dim=-1).values
    return ordered[..., flat.shape[-1] - 1 - high] - ordered[..., low]


def window_attention(queries: torch.Tensor, keys: torch.Tensor, groups: int, window: int) -> torch.Tensor:
    """Largest attention each token t <= T - window receives from queries t .. t+window-1, per head group."""
    steps, q_heads, dim = queries.shape
    per_kv = q_heads // keys.shape[1]
    scores = queries.transpose(0, 1) @ keys.repeat_interleave(per_kv, dim=1).permute(1, 2, 0) / math.sqrt(dim)
    causal = torch.ones(steps, steps, dtype=torch.bool).tril()
    weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)  # [q_heads, T(query), T(key)]
    weights = weights.reshape(groups, q_heads // groups, steps, steps).amax(1)
    kept = steps - window + 1
    band = [torch.diagonal(weights, offset=-o, dim1=1, dim2=2)[:, :kept] for o in range(window)]
    return torch.stack(band).amax(0).transpose(0, 1)  # [kept, groups]


def solve_tolerance(widths_for, target: float, name: str) -> float:
    """Bisection on log σ: the mean width falls as the tolerance grows."""
    lo, hi = -80.0, 80.0
    if widths_for(math.exp(hi)).float().mean() > target or widths_for(math.exp(lo)).float().mean() < target:
        raise KvtoolError(f"{name}={target} cannot be reached within [min_bits, max_bits]")
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if widths_for(math.exp(mid)).float().mean() > target else (lo, mid)
    return math.exp(hi)  # the smallest tolerance found whose mean width is at most the target


def calibrate_qaq(context: CalibrationContext, params: dict) -> dict[str, torch.Tensor]:
    layout = Layout.of(context.model)
    groups = 1 if params["level"] == "layer" else layout.num_kv_heads
    window = params["window"]
    norms, stats = {}, {}
    captured = capture(context.model, context.sequences, queries=True)
    for index, layers in tqdm(captured, total=len(dist.shard(len(context.sequences))),
                              desc="qaq statistics", disable=not context.progress):
        if layers[0].keys.shape[0] <= window:
            raise KvtoolError(f"--seq-len must exceed the attention window of {window} tokens")
        per_layer_norms, per_layer_stats = [], []
        for layer in layers:
            q = layer.queries
            per_layer_norms.append((q.square().sum(-1) / q.shape[-1]).reshape(q.shape[0], groups, -1))
            attention = window_attention(q, layer.keys, groups, window)
            kept = attention.shape[0]
            key_spread = token_spread(layer.keys, groups, params["outliers"])[:kept]
            value_spread = token_spread(layer.values, groups, params["outliers"])[:kept]
            per_layer_stats.append(torch.stack([key_spread, value_spread, attention], dim=-1))
        norms[index] = torch.stack(per_layer_norms, dim=1)  # [T, layers, groups, queries per group]
        stats[index] = torch.stack(per_layer_stats, dim=1)  # [kept tokens, layers, groups, 3]
    norms = torch.cat(dist.gather_indexed(norms))
    query_norm = norms.permute(1, 2, 0, 3).flatten(2).quantile(params["query_quantile"], dim=-1)
    stats = dist.gather_indexed(stats)
    tokens = torch.cat([torch.arange(s.shape[0]) + window for s in stats]).double()[:, None, None]
    stats = torch.cat(stats).double()
    key_spread, value_spread, attention = stats.unbind(-1)
    clamp = params["min_bits"], params["max_bits"]

    def key_widths(tolerance: float) -> torch.Tensor:
        return bit_widths(key_spread, key_sigma(tokens, tolerance, query_norm.double()), *clamp)

    def value_widths(tolerance: float) -> torch.Tensor:
        return bit_widths(value_spread, value_sigma(tokens, tolerance, attention), *clamp)

    tolerance = torch.tensor([solve_tolerance(key_widths, params["key_bits"], "key_bits"),
                              solve_tolerance(value_widths, params["value_bits"], "value_bits")])
    return {"tolerance": tolerance.float(), "query_norm": query_norm.float()}


register_calibrator(Calibrator("qaq", run=calibrate_qaq, samples=4, seq_len=1024))
