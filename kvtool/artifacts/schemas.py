"""One schema per method: its parameters, defaults, and the tensors a valid artifact of it holds."""

from __future__ import annotations

import torch

from kvtool.artifacts.schema import Param, Schema, register_schema
from kvtool.errors import KvtoolError

BITS = (1, 2, 3, 4, 5, 6, 7, 8)


def _window_divides(params: dict) -> None:
    if params["residual"] % params["group_size"]:
        raise KvtoolError(f"residual {params['residual']} must be a multiple of group_size {params['group_size']}")


register_schema(
    Schema(
        method="fp16",
        summary="uncompressed fp16 cache (the baseline), served by the same runtime",
        params={},
    )
)

register_schema(
    Schema(
        method="kivi",
        summary="KIVI: asymmetric round-to-nearest, keys per channel and values per token (arXiv 2402.02750)",
        params={
            "bits": Param(int, 2, choices=BITS, help="bits per key and value element"),
            "group_size": Param(int, 32, min=1, max=4096, help="G: tokens per key group, channels per value group"),
            "residual": Param(int, 128, min=0, max=1 << 20, help="R: most recent tokens kept in full precision"),
        },
        check=_window_divides,
        operating_points=({"bits": 4}, {"bits": 2}),
    )
)

register_schema(
    Schema(
        method="pertensor",
        summary="naive baseline: one calibrated min/max per layer for all keys (and one for values), no window",
        params={"bits": Param(int, 2, choices=BITS, help="bits per key and value element")},
        tensors=lambda fp, params: {
            "key_range": ((fp["num_layers"], 2), torch.float32),
            "value_range": ((fp["num_layers"], 2), torch.float32),
        },
        operating_points=({"bits": 2},),
    )
)


def _kvquant_tensors(fp: dict, params: dict) -> dict:
    layers, signposts, channels = fp["num_layers"], 1 << params["bits"], (fp["num_kv_heads"], fp["head_dim"])
    return {
        "key_signposts": ((layers, signposts), torch.float32),  # per layer, sorted, in normalized units
        "value_signposts": ((layers, signposts), torch.float32),
        "key_lower": ((layers, *channels), torch.float32),  # per-channel pre-RoPE outlier thresholds = key ranges
        "key_upper": ((layers, *channels), torch.float32),
        "qnorm": ((layers, 2, 2), torch.float32),  # [layer, keys|values, scale|offset]; identity without Q-Norm
    }


register_schema(
    Schema(
        method="kvquant",
        summary="KVQuant: Fisher-weighted nuq codebooks, pre-RoPE per-channel keys, dense-and-sparse outliers (arXiv 2401.18079)",
        params={
            "bits": Param(int, 3, choices=(2, 3, 4), help="bits per dense key and value code (nuq2/3/4)"),
            "outliers": Param(float, 0.01, min=0.0, max=0.2, help="share of elements kept exact in fp16 (0: none)"),
            "fisher": Param(bool, True, help="weight the k-means with Fisher information (off: plain k-means)"),
            "qnorm": Param(str, "auto", choices=("auto", "on", "off"), help="Q-Norm of the signposts (auto: at 2 bits)"),
            "sink": Param(int, 1, min=0, max=1 << 20, help="first tokens kept in fp16 (attention sink)"),
            "key_outlier_budget": Param(float, 2.0, min=1.0, max=100.0,
                                        help="per-token key outlier slots, as a multiple of outliers x channels"),
            "value_vector": Param(str, "token", choices=("token", "head"), added_later=True,
                                  help="unit of a value's range and outliers: token (all KV heads, the paper) or head"),
            "key_vector": Param(str, "token", choices=("token", "head"), added_later=True,
                                help="unit of a key's outlier slots: token (all KV heads, the paper) or head (each "
                                     "head's own share: its decode compares those alone)"),
        },
        tensors=_kvquant_tensors,
        operating_points=({"bits": 4}, {"bits": 3}, {"bits": 2}),
    )
)


def _duo_params(params: dict) -> None:
    if params["min_context"] > 0 and params["train_sink"] + params["train_recent"] >= params["min_context"]:
        raise KvtoolError("train_sink + train_recent must be shorter than min_context, or streaming equals full")


register_schema(
    Schema(
        method="duo",
        summary="DuoAttention: learned retrieval heads keep the full cache, streaming heads sinks + recent (arXiv 2410.10819)",
        params={
            "streaming_fraction": Param(float, 0.5, min=0.0, max=1.0, help="share of KV heads made streaming heads"),
            "binarize": Param(str, "fraction", choices=("fraction", "threshold"),
                              help="streaming heads: the lowest-gated fraction, or gates below threshold"),
            "threshold": Param(float, 0.5, min=0.0, max=1.0, help="gate below which a head streams (binarize=threshold)"),
            "sink": Param(int, 64, min=0, max=1 << 20, help="deployed attention-sink tokens of a streaming head"),
            "recent": Param(int, 256, min=1, max=1 << 20, help="deployed recent-window tokens of a streaming head"),
            "mask": Param(str, "learned", choices=("learned", "random", "first-layers"),
                          help="learned gates, or a baseline ranking: random, or earlier layers kept full"),
            "steps": Param(int, 32, min=1, max=100_000, help="gate-optimization steps (reference: 2000)"),
            "batch": Param(int, 1, min=1, max=4096, help="prompts per step, shared out over torchrun ranks (reference: 8)"),
            "lr": Param(float, 0.02, min=0.0, max=10.0, help="AdamW learning rate"),
            "reg_weight": Param(float, 0.05, min=0.0, max=100.0, help="weight of mean |gate| in the loss"),
            "train_sink": Param(int, 128, min=0, max=1 << 20, help="sink tokens of streaming attention in training"),
            "train_recent": Param(int, 256, min=1, max=1 << 20, help="recent tokens of streaming attention in training"),
            "min_context": Param(int, 768, min=0, max=1 << 20, help="shortest training prompt; the longest is --seq-len"),
            "num_passkeys": Param(int, 4, min=1, max=20, help="passkeys per training prompt (reference: 10)"),
            "passkey_words": Param(int, 8, min=1, max=256, help="NATO words per passkey (reference: 32)"),
        },
        tensors=lambda fp, params: {
            "head_map": ((fp["num_layers"], fp["num_kv_heads"]), torch.float32),
            "retrieval": ((fp["num_layers"], fp["num_kv_heads"]), torch.bool),
        },
        check=_duo_params,
        operating_points=({"streaming_fraction": 0.25}, {"streaming_fraction": 0.5}, {"streaming_fraction": 0.75}),
    )
)


def _qaq_params(params: dict) -> None:
    if params["min_bits"] > params["max_bits"]:
        raise KvtoolError(f"min_bits {params['min_bits']} exceeds max_bits {params['max_bits']}")
    for name in ("key_bits", "value_bits"):
        if not params["min_bits"] <= params[name] <= params["max_bits"]:
            raise KvtoolError(f"{name}={params[name]} must lie within [min_bits, max_bits]")


register_schema(
    Schema(
        method="qaq",
        summary="QAQ: per-token key/value bit widths from attention-aware error bounds, 1% fp16 outliers (arXiv 2403.04643)",
        params={
            "key_bits": Param(float, 2.0, min=0.0, max=8.0, help="target mean key code width on the calibration data"),
            "value_bits": Param(float, 1.0, min=0.0, max=8.0, help="target mean value code width on the calibration data"),
            "window": Param(int, 5, min=1, max=1024, help="attention window: queries seen before a token is quantized"),
            "outliers": Param(float, 0.01, min=0.0, max=0.5, help="share of each token's values kept in fp16"),
            "min_bits": Param(int, 1, min=0, max=8, help="n_min: narrowest code width"),
            "max_bits": Param(int, 8, min=1, max=8, help="n_max: widest code width"),
            "level": Param(str, "head", choices=("head", "layer"),
                           help="one range and width per token and KV head (the paper's notation), or per layer"),
            "query_quantile": Param(float, 0.9, min=0.0, max=1.0, help="quantile of ‖q‖²/D the key bound uses"),
            "host_copy": Param(bool, False, added_later=True,
                               help="keep every token's fp16 K/V in host memory and re-encode a token "
                               "from it whenever its width changes (paper §4.2); reported apart from the cache"),
        },
        tensors=lambda fp, params: {
            "tolerance": ((2,), torch.float32),
            "query_norm": ((fp["num_layers"], 1 if params["level"] == "layer" else fp["num_kv_heads"]), torch.float32),
        },
        check=_qaq_params,
        # the paper's "nearly 10x" (1.5-bit codes + 1% fp16 outliers), then wider settings this small model needs
        operating_points=({"key_bits": 2.0, "value_bits": 1.0}, {"key_bits": 3.0, "value_bits": 2.0},
                          {"key_bits": 4.0, "value_bits": 3.0}),
    )
)


CODEBOOK_BITS = tuple(range(1, 13))
CHANNELS_PER_GROUP = (1, 2, 4, 8, 16)
DESCRIBED_CONTEXTS = (4096, 32768)  # context lengths over which `describe` amortizes the codebooks


def _codebook_shapes(layers: int, heads: int, fp: dict, params: dict) -> dict:
    """key/value codebooks [layers, heads, sub-vectors per head, 2**bits, channels per sub-vector], fp16."""
    width, bits = params["channels_per_group"], params["bits"]
    if fp["head_dim"] % width:
        raise KvtoolError(f"channels_per_group {width} does not divide head_dim {fp['head_dim']}")
    subspaces = fp["head_dim"] // width
    if subspaces * min(bits, 8) % 8 or subspaces * max(bits - 8, 0) % 8:
        raise KvtoolError(f"{subspaces} sub-vectors of {bits}-bit codes do not pack into whole bytes")
    shape = (layers, heads, subspaces, 1 << bits, width)
    return {"key_codebooks": (shape, torch.float16), "value_codebooks": (shape, torch.float16)}


def describe_codebooks(artifact) -> list[str]:
    """Bits per cached element: the codes, and the codes plus the codebooks amortized over a stated context."""
    fp, params = artifact.fingerprint, artifact.params
    code_bits = params["bits"] / params["channels_per_group"]
    codebook_bits = 16 * sum(artifact.tensors[name].numel() for name in ("key_codebooks", "value_codebooks"))
    elements_per_token = 2 * fp["num_layers"] * fp["num_kv_heads"] * fp["head_dim"]
    lines = [f"codes        {code_bits:g} bits per element ({params['bits']} bits per {params['channels_per_group']} channels)"]
    for context in DESCRIBED_CONTEXTS:
        total = code_bits + codebook_bits / (context * elements_per_token)
        lines.append(f"with codebooks {total:.3f} bits per element over a {context}-token context (batch 1)")
    return lines


register_schema(
    Schema(
        method="cq",
        summary="Coupled Quantization: learned centroids for groups of c contiguous channels, per layer (arXiv 2405.03917)",
        params={
            "channels_per_group": Param(int, 4, choices=CHANNELS_PER_GROUP, help="c: channels coded jointly"),
            "bits": Param(int, 8, choices=CODEBOOK_BITS, help="b: bits per code (2**b centroids per channel group)"),
            "fisher": Param(bool, True, help="Fisher-guided centroids: weight each sub-vector by its squared gradient"),
            "residual": Param(int, 0, min=0, max=1 << 20, help="most recent tokens kept in full precision (sliding)"),
            "iterations": Param(int, 25, min=1, max=1000, help="k-means iterations per channel group"),
        },
        tensors=lambda fp, params: _codebook_shapes(fp["num_layers"], fp["num_kv_heads"], fp, params),
        describe=describe_codebooks,
        operating_points=(
            {"channels_per_group": 2, "bits": 8}, {"channels_per_group": 4, "bits": 8},
            {"channels_per_group": 8, "bits": 8}, {"channels_per_group": 8, "bits": 10},
        ),
    )
)

MILLION_SCOPES = {"shared": (False, False), "layer": (True, False), "head": (True, True)}  # per layer?, per head?


def _million_shapes(fp: dict, params: dict) -> dict:
    per_layer, per_head = MILLION_SCOPES[params["codebooks"]]
    return _codebook_shapes(fp["num_layers"] if per_layer else 1, fp["num_kv_heads"] if per_head else 1, fp, params)


register_schema(
    Schema(
        method="million",
        summary="MILLION: product-quantized post-RoPE keys and values, attention by lookup tables (arXiv 2504.03661)",
        params={
            "channels_per_group": Param(int, 2, choices=CHANNELS_PER_GROUP, help="dimensions per PQ sub-vector (d / M)"),
            "bits": Param(int, 8, choices=CODEBOOK_BITS, help="nbits: bits per sub-vector code"),
            "codebooks": Param(str, "shared", choices=tuple(MILLION_SCOPES),
                               help="one key and one value codebook for all layers (the reference), per layer, per head"),
            "residual": Param(int, 128, min=0, max=1 << 20, help="recent tokens kept fp16, encoded whole once full"),
            "iterations": Param(int, 25, min=1, max=1000, help="k-means iterations (reference: 25)"),
            "samples_per_centroid": Param(int, 256, min=1, max=4096,
                                          help="sampled vectors per centroid for each codebook (reference: 256)"),
        },
        tensors=_million_shapes,
        describe=describe_codebooks,
        operating_points=({"channels_per_group": 2, "bits": 8}, {"channels_per_group": 4, "bits": 8}),
    )
)
