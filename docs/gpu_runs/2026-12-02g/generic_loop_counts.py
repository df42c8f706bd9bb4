"""SASS instructions of the decode kernel's loop over generic tiles inside both stores (the tiles of KVQuant, CQ and
QAQ but the last of a split), compiled for sm_90 on a machine without a GPU (docs/gpu_runs/sm90.py; not timed):
per tile and warp, and per position (x warps / positions per tile), for launch shapes BLOCK_N/WARPS, of one decode
step of a bench format at 2,000 tokens. The kernel is compiled from decode.py with its tail pass (tiles reaching
past a store) left out, since sm90.main_loop counts the longest loop and the tail pass's can be the longer.
  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs python docs/gpu_runs/2026-12-02g/generic_loop_counts.py qaq4 16/4 32/2"""
import importlib.util
import pathlib
import sys
import tempfile

from sm90 import compile_sm90, cuobjdump, decode_launches, main_loop

source = pathlib.Path("kvtool/runtime/kernels/decode.py").read_text()
assert "for tail_pass in tl.static_range(2):" in source
patched = pathlib.Path(tempfile.mkdtemp()) / "decode.py"
patched.write_text(source.replace("for tail_pass in tl.static_range(2):", "for tail_pass in tl.static_range(1):"))
spec = importlib.util.spec_from_file_location("kvtool.runtime.kernels.decode", patched)
decode = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(decode)

from kvtool import bench  # noqa: E402  (after the patched module took decode's name)

layer = bench.make_layer(sys.argv[1], "cpu")
bench.fill_layer(layer, 1, 2000, "cpu")
names = decode._decode_split_kernel.arg_names
for kwargs, (signature, constants, attrs, options) in decode_launches(decode, layer):
    if kwargs["FAST"]:
        continue
    for shape in sys.argv[2:]:
        block_n, warps = (int(n) for n in shape.split("/"))
        loop = main_loop(cuobjdump(compile_sm90(decode._decode_split_kernel, signature,
                                                {**constants, (names.index("BLOCK_N"),): block_n}, attrs,
                                                {**options, "num_warps": warps}), "-sass"))
        count = sum(loop.values())
        print(f"{sys.argv[1]} {shape}: {count} per tile and warp, {count * warps / block_n:.0f} per position; "
              f"{dict(loop.most_common(10))}", flush=True)
