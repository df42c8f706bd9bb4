"""Registers and stack per thread of the merge kernel at a few tile shapes, compiled for sm_90 without a GPU
(../sm90.py). The kernel file is an argument, so the version before the merge change can be compiled too:
  git show 3dbdd05:kvtool/runtime/kernels/decode.py > /tmp/old_decode.py
  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs python merge_static_resources.py /tmp/old_decode.py 128,256,512 128
  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs python merge_static_resources.py kvtool/runtime/kernels/decode.py \
      256,512,1024 32
(arguments: kernel file, BLOCK_PARTS values, BLOCK_D; D = 128, 4 query heads per KV head, 4 warps)"""
import importlib.util
import sys

from sm90 import resources

spec = importlib.util.spec_from_file_location("kvtool.runtime.kernels.decode", sys.argv[1])
decode = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = decode
spec.loader.exec_module(decode)
TYPES = {"part_o_ptr": "*fp32", "part_ml_ptr": "*fp32", "head_index_ptr": "*i32", "out_ptr": "*fp16", "out_sb": "i32",
         "out_sh": "i32", "lse_ptr": "*fp32", "lse_sb": "i32", "num_parts": "i32"}
for block in map(int, sys.argv[2].split(",")):
    constants = {"HEADS": 4, "PER_KV": 4, "BLOCK_PARTS": block, "D": 128, "BLOCK_D": int(sys.argv[3]), "HAS_LSE": False}
    registers, stack, _ = resources(decode._merge_partials_kernel, TYPES, constants)
    width = constants["BLOCK_D"] if "BLOCK_D" in decode._merge_partials_kernel.arg_names else 128
    print(f"{sys.argv[1]}: tile [{block}, {width}]: {registers} registers, {stack} B stack per thread", flush=True)
