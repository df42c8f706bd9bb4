"""Aten ops a KVQuant decode step dispatches to encode its new key and value token (one layer, bench's kvquant3:
Llama-3-8B shape, nuq3, 1% outliers): the codecs' PyTorch encode against the quantize-on-append kernel's wrapper
(kernels/quantize.py: nuq_encode; its launch replaced by a no-op while counting, since Triton's interpreter
dispatches aten ops of its own; on CUDA every aten op is a host dispatch and most a launch, the kernel one launch).
Counted through a TorchDispatchMode; the tensors of both (the kernel run by the interpreter) are compared too.
  TRITON_INTERPRET=1 OMP_NUM_THREADS=1 PYTHONPATH=.:docs/gpu_runs python docs/gpu_runs/2026-12-02/nuq_encode_ops.py
"""
import torch
from host_ops import CountOps, NoLaunch

from kvtool import bench
from kvtool.runtime.kernels import quantize
from kvtool.runtime.kernels.quantize import nuq_encode
from kvtool.runtime.kvquant import index_dtype
from kvtool.runtime.rope import rope_from


(group,) = bench.kvquant_groups(3)
keys, values = group.keys, group.values
x = torch.randn(1, bench.KV_HEADS, 1, bench.HEAD_DIM).half()
channels = index_dtype(bench.KV_HEADS * bench.HEAD_DIM)
paths = {
    "PyTorch encode (the codecs' path off CUDA)": lambda: (keys.encode(x, 4096), values.encode(x, 4096)),
    "nuq_encode kernel wrapper": lambda: (
        nuq_encode(x, 3, keys.codebook.boundaries, keys.slots, channels, rope_from(keys.model, 4096, 1, x.device),
                   keys.midpoint, keys.half_range),
        nuq_encode(x, 3, values.codebook.boundaries, values.slots, channels)),
}


results = {name: run() for name, run in paths.items()}
quantize._nuq_encode = NoLaunch()  # counting the host side only
for name, run in paths.items():
    with CountOps() as count:
        run()
    print(f"{name}: {sum(count.ops.values())} aten ops for one key and one value token "
          f"(slots {keys.slots} and {values.slots})")
(want_keys, want_values), (got_keys, got_values) = results.values()
same = all(torch.equal(got[n], want[n]) for got, want in ((got_keys, want_keys), (got_values, want_values))
           for n in want)
print("same tensors:", same)
