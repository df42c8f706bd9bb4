"""Device-only: one append longer than CUDA's 65,535 cap on a grid's second axis, through the quantize-on-append
kernels. `kvtool bench`'s check (fused encode and attention against the reference path on twin caches) with the
whole context appended at once: 70,000 tokens for each format, 1,100,000 for kivi2 (its value kernel takes 16 tokens
per program). Then the encodes of a 4,096-token chunk, CUDA-event medians. Each with quantize.py as it is and, if
given, with an older quantize.py's encode functions in their place (by path).
  PYTHONPATH=.:docs/gpu_runs python3 docs/gpu_runs/2026-12-04b/long_appends.py [OLD_QUANTIZE_PY]"""
import importlib.util
import sys

import torch
from event_times import median_us

from kvtool import bench
from kvtool.runtime.kernels import quantize

ENCODES = ("quantize_token_groups", "quantize_channel_groups", "nuq_encode", "codebook_encode")
CHECKS = ((("kivi2", "kvquant3", "kvquant3-head", "million2", "cq2", "qaq4"), 70_000), (("kivi2",), 1_100_000))
versions = {"now": {name: getattr(quantize, name) for name in ENCODES}}
if len(sys.argv) > 1:
    spec = importlib.util.spec_from_file_location("old_quantize", sys.argv[1])
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    versions["old"] = {name: getattr(old, name) for name in ENCODES}
bench.FILL_CHUNK = 1 << 30  # the whole context in one append


for version, functions in versions.items():
    for name, function in functions.items():
        setattr(quantize, name, function)
    for formats, tokens in CHECKS:
        for name in formats:
            try:
                error = bench.check_against_reference([name], shapes=((1, tokens),))
                print(f"{version}: {name}, {tokens:,} tokens in one append: max relative error "
                      f"{max(error.values()):.2e}", flush=True)
            except Exception as err:  # noqa: BLE001 - the launch error is what this measures
                print(f"{version}: {name}, {tokens:,} tokens in one append: {type(err).__name__}: "
                      f"{str(err).splitlines()[0]}", flush=True)
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
    for name in ("kivi2", "kvquant3", "million2"):
        (group,) = bench.make_layer(name, "cuda").groups
        for batch in (1, 16):
            x = torch.randn(batch, bench.KV_HEADS, 4096, bench.HEAD_DIM, device="cuda").half()
            codecs = (group.keys.codec, group.values.codec)
            times = [median_us(lambda: codec.encode(x, 0), reps=50) for codec in codecs]
            print(f"{version}: {name} encode of {batch} x 4,096 tokens: keys {times[0]:.1f} us, values "
                  f"{times[1]:.1f} us", flush=True)
