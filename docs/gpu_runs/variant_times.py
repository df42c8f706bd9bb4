"""Shared by device sweep scripts (docs/gpu_runs/2026-12-04e): one layer's decode attention under named variants of
the kernels' settings, each variant a context manager factory; errors against the reference path, then times on the
same filled caches against fp16 SDPA (median of CUDA-graph replays, as `kvtool bench --part attention`)."""
import torch

from kvtool import bench
from kvtool.runtime import kernels


def check_variants(variants, variant, formats, shapes):
    for name in variants:
        with variant(name):
            errors = bench.check_against_reference(formats, shapes=shapes)
        print(f"{name} errors vs reference:", {k: f"{v:.1e}" for k, v in errors.items()}, flush=True)


def time_variants(variants, variant, formats, cases):
    scaling = bench.HEAD_DIM ** -0.5
    for batch, context in cases:
        query = torch.randn(batch, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
        keys = torch.randn(batch, bench.KV_HEADS, context, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
        values = torch.randn_like(keys)
        sdpa = bench._time_us(lambda: torch.nn.functional.scaled_dot_product_attention(
            query, keys, values, scale=scaling, enable_gqa=True))
        print(f"batch {batch} context {context}: fp16 SDPA {sdpa:.2f} us", flush=True)
        del keys, values
        for fmt in formats:
            layer = bench.make_layer(fmt, "cuda")
            bench.fill_layer(layer, batch, context, "cuda")
            run = lambda: kernels.attend_decode(layer, query, None, scaling, None, observe=False)  # noqa: E731
            for name in variants:
                with variant(name):
                    us = bench._time_us(run)
                print(f"  {fmt:14} {name:60} {us:9.2f} us  {sdpa / us:5.2f}x SDPA", flush=True)
            del layer
            torch.cuda.empty_cache()
