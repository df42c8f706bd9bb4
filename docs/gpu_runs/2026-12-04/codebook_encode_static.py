"""The codebooks' encode kernel (kernels/quantize.py: _codebook_encode) compiled for sm_90 without a GPU (../sm90.py):
MILLION's and CQ's bench shapes (Llama-3-8B: head_dim 128; 8-bit indices over 2 or 4 channels) and 8 channels: its
registers, stack (spills) and shared memory per program of 4 warps.
  PYTHONPATH=.:docs/gpu_runs python docs/gpu_runs/2026-12-04/codebook_encode_static.py"""
import triton
from sm90 import resources

from kvtool.runtime.kernels import quantize

TYPES = {"x_ptr": "*fp16", "x_sb": "i32", "x_sh": "i32", "x_sn": "i32", "book_ptr": "*fp32", "book_sh": "i32",
         "norm_ptr": "*fp32", "norm_sh": "i32", "index_ptr": "*u8", "heads": "i32", "tokens": "i32"}
print(f"triton {triton.__version__}")
for width, bits, block in ((2, 8, 16), (4, 8, 16), (8, 8, 16), (4, 8, 1)):
    constants = dict(SUBS=128 // width, SIZE=1 << bits, WIDTH=width, BLOCK_T=block)
    registers, stack, shared = resources(quantize._codebook_encode, TYPES, constants)
    print(f"{width} channels, {bits}-bit indices, {block} tokens per program: {registers} registers, {stack} B stack,"
          f" {shared} B shared", flush=True)
