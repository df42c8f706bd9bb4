"""Device-only: decode attention of one layer under variants of the split policy, on the same filled caches
(median of CUDA-graph replays, as `kvtool bench --part attention`); errors against the reference path first.
  python3 short_sweep.py VARIANT[,VARIANT...] FORMAT[,FORMAT...] BxT[,BxT...]
Variants: old (fast tiles only when they fill the GPU's programs), min64 / min32 (decode.FAST_MIN_TILES),
two (any split at least two tiles), generic (no fast tiles: codebooks decoded into fp16 tiles, not ADC), each
optionally with @SPEC, a bench.using_launch spec (e.g. generic@adc:16/4/1/8).
Ran (call 3) on a working tree where the minimum was the module constant decode.FAST_MIN_TILES, for every path;
committed as `Launch.fast_min_tiles`, for "mma" alone (split_sweep.py sets such fields). The check and timing loops,
inline when it ran, are ../variant_times.py's since."""
import contextlib
import sys

from kvtool import bench
from kvtool.runtime.kernels import decode
from variant_times import check_variants, time_variants  # docs/gpu_runs (the setup's PYTHONPATH)

VARIANTS, FORMATS = sys.argv[1].split(","), sys.argv[2].split(",")
CASES = [tuple(int(x) for x in case.split("x")) for case in sys.argv[3].split(",")]
splits, fast_range = decode._splits, decode._fast_range


@contextlib.contextmanager
def variant(name):
    policy, _, spec = name.partition("@")
    saved = decode.FAST_MIN_TILES
    decode.FAST_MIN_TILES = {"old": 10**9, "min32": 32}.get(policy, 64)
    if policy == "two":
        decode._splits = lambda tiles, target, block: splits(tiles, max(1, min(target, tiles // 2)), block)
    if policy == "generic":
        decode._fast_range = lambda keys, values, first, block, fast: fast_range(keys, values, first, block, False)
    try:
        with bench.using_launch(spec or "auto"):
            yield
    finally:
        decode.FAST_MIN_TILES, decode._splits, decode._fast_range = saved, splits, fast_range


check_variants(VARIANTS, variant, FORMATS, ((1, 1500), (1, 3000), (4, 8192)))
time_variants(VARIANTS, variant, FORMATS, CASES)
