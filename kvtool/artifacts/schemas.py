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
