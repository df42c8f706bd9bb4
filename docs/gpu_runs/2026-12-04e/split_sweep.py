"""Device-only: decode attention of one layer with launch fields changed (median of CUDA-graph replays, as `kvtool
bench --part attention`), on the same filled caches; errors against the reference path first.
  python3 split_sweep.py VARIANT[,VARIANT...] FORMAT[,FORMAT...] BxT[,BxT...]
A variant is "auto" (decode.LAUNCH as it is) or PATH.FIELD=N[+PATH.FIELD=N...], e.g.
generic.min_split_tiles=8+bitplanes.min_split_tiles=8. The check and timing loops, inline when it ran (call 5), are
../variant_times.py's since."""
import contextlib
import dataclasses
import sys

from kvtool.runtime.kernels import decode
from variant_times import check_variants, time_variants  # docs/gpu_runs (the setup's PYTHONPATH)

VARIANTS, FORMATS = sys.argv[1].split(","), sys.argv[2].split(",")
CASES = [tuple(int(x) for x in case.split("x")) for case in sys.argv[3].split(",")]


@contextlib.contextmanager
def variant(name):
    saved = dict(decode.LAUNCH)
    for change in name.split("+") if name != "auto" else []:
        target, value = change.split("=")
        path, field = target.split(".")
        decode.LAUNCH[path] = dataclasses.replace(decode.LAUNCH[path], **{field: int(value)})
    try:
        yield
    finally:
        decode.LAUNCH.update(saved)


check_variants(VARIANTS, variant, FORMATS, ((1, 3000), (2, 5000)))
time_variants(VARIANTS, variant, FORMATS, CASES)
