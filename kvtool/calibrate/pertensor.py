"""The naive baseline's calibration: the min and max of every key and every value of each layer."""

from __future__ import annotations

import torch
from tqdm import tqdm

from kvtool.calibrate import CalibrationContext, Calibrator, dist, register_calibrator
from kvtool.calibrate.capture import capture
from kvtool.models import Layout


def calibrate_pertensor(context: CalibrationContext, params: dict) -> dict[str, torch.Tensor]:
    layers = Layout.of(context.model).num_layers
    key_range = torch.tensor([[float("inf"), float("-inf")]] * layers)
    value_range = key_range.clone()
    captured = capture(context.model, context.sequences)
    for _, sequence in tqdm(captured, total=len(dist.shard(len(context.sequences))),
                            desc="per-tensor ranges", disable=not context.progress):
        for index, layer in enumerate(sequence):
            for ranges, x in ((key_range, layer.keys), (value_range, layer.values)):
                ranges[index, 0] = min(ranges[index, 0], x.min())
                ranges[index, 1] = max(ranges[index, 1], x.max())
    for ranges in (key_range, value_range):
        ranges[:, 0], ranges[:, 1] = dist.reduce(ranges[:, 0], "min"), dist.reduce(ranges[:, 1], "max")
    return {"key_range": key_range, "value_range": value_range}


register_calibrator(Calibrator("pertensor", run=calibrate_pertensor, samples=8, seq_len=512))
