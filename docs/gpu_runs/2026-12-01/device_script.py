"""Device-only: MILLION's reference path timed beside its adc kernel; one decode call for ncu."""
import sys, torch, triton.testing
from kvtool import bench
from kvtool.runtime import kernels
q = lambda b: torch.randn(b, bench.Q_HEADS, 1, bench.HEAD_DIM, device="cuda", dtype=torch.float16)
s = bench.HEAD_DIM ** -0.5
if sys.argv[1] == "million":
    for b, n in ((1, 32768), (1, 131072), (16, 32768)):
        for name in ("million2", "million4"):
            layer = bench.make_layer(name, "cuda"); bench.fill_layer(layer, b, n, "cuda"); query = q(b)
            kern = triton.testing.do_bench(lambda: kernels.attend_decode(layer, query, None, s, None), rep=200, return_mode="median") * 1e3
            layer.fusable = False
            ref = triton.testing.do_bench(lambda: layer.attend(query, None, s), rep=200, return_mode="median") * 1e3
            print(name, "batch", b, "context", n, "adc kernel us", round(kern, 1), "reference path us", round(ref, 1), flush=True)
            del layer; torch.cuda.empty_cache()
else:
    layer = bench.make_layer(sys.argv[1], "cuda"); bench.fill_layer(layer, 1, 131072, "cuda"); query = q(1)
    for _ in range(3):
        kernels.attend_decode(layer, query, None, s, None)
    torch.cuda.synchronize()
