"""MILLION's calibration (arXiv 2504.03661; reference ZongwuWang/MILLION, main_pq.py and pq_utils.train_pq):
sample post-RoPE keys and values, 256 * 2**nbits vectors per codebook, and learn product-quantization codebooks with
faiss (IndexPQ's training: an independent k-means per sub-space, 25 iterations, random seeding).

The reference trains one key and one value codebook shared by every layer and head ("merged training"); kvtool also
learns them per layer or per layer and head (`codebooks`). Each codebook's samples are drawn evenly over the
sequences, layers and heads it serves.
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

from kvtool.artifacts.schemas import MILLION_SCOPES
from kvtool.calibrate import CalibrationContext, Calibrator, dist, register_calibrator
from kvtool.calibrate.capture import capture, sample_rows
from kvtool.calibrate.codebook import SampleBank, learn_product_codebooks
from kvtool.models import Layout


def calibrate_million(context: CalibrationContext, params: dict) -> dict[str, torch.Tensor]:
    layout = Layout.of(context.model)
    per_layer, per_head = MILLION_SCOPES[params["codebooks"]]
    layers = layout.num_layers if per_layer else 1
    heads = layout.num_kv_heads if per_head else 1
    wanted = params["samples_per_centroid"] << params["bits"]  # vectors per codebook
    # each (sequence, layer) contributes the same number of tokens; a token gives one vector per head it serves
    serves = len(context.sequences) * (layout.num_layers // layers) * (layout.num_kv_heads // heads)
    tokens = math.ceil(wanted / serves)
    bank = SampleBank()
    captured = capture(context.model, context.sequences)
    for sequence_index, captured_layers in tqdm(captured, total=len(dist.shard(len(context.sequences))),
                                                desc="MILLION sampling", disable=not context.progress):
        for index, layer in enumerate(captured_layers):
            seed = context.seed * 7919 + index  # different tokens per layer, the same on every rank
            for kind, x in (("key", layer.keys), ("value", layer.values)):
                rows = sample_rows(x, tokens, seed, sequence_index)  # [t, H, D]
                for head in range(heads):
                    part = rows[:, head] if per_head else rows.flatten(0, 1)
                    bank.add(f"{kind}{index if per_layer else 0}.{head}", sequence_index, part)
    tensors = {}
    for kind in ("key", "value"):
        books = [[learn_product_codebooks(bank.gathered(f"{kind}{index}.{head}"), params["channels_per_group"],
                                          params["bits"], params["iterations"], context.seed)
                  for head in range(heads)]
                 for index in tqdm(range(layers), desc=f"MILLION {kind} codebooks", disable=not context.progress)]
        tensors[f"{kind}_codebooks"] = torch.stack([torch.stack(row) for row in books]).half()
    return tensors


# the reference samples from its evaluation text; kvtool calibrates on the disjoint calibration split
register_calibrator(Calibrator("million", run=calibrate_million, samples=8, seq_len=512))
