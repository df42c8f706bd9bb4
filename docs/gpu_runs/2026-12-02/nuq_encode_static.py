"""KVQuant's encode kernel (kernels/quantize.py: _nuq_encode) compiled for sm_90 without a GPU (../sm90.py), keys and
values at the bench's Llama-3-8B shape (nuq3, 21 key and 12 value slots) and at SmolLM2's (3 heads, padded to 4):
that it compiles for the GPU, and its registers, stack and shared memory.
  PYTHONPATH=<triton 3.6>:.:docs/gpu_runs python docs/gpu_runs/2026-12-02/nuq_encode_static.py"""
from sm90 import resources

from kvtool.runtime.kernels import quantize

TYPES = {"x_ptr": "*fp16", "x_sb": "i32", "x_sh": "i32", "x_sn": "i32", "cos_ptr": "*fp32", "sin_ptr": "*fp32",
         "mid_ptr": "*fp32", "half_ptr": "*fp32", "bounds_ptr": "*fp32", "codes_ptr": "*u8", "index_ptr": "*i16",
         "value_ptr": "*fp16", "range_ptr": "*fp16", "tokens": "i32"}
for heads, dim, bits, slots, keys, per_head in ((8, 128, 3, 21, True, False), (8, 128, 3, 12, False, False),
                                                (3, 64, 4, 4, True, False), (3, 64, 2, 2, False, True)):
    constants = dict(HEADS=heads, HP=1 << (heads - 1).bit_length(), D=dim, BITS=bits,
                     BYTES=1 << (bits - 1).bit_length(), SLOTS=slots, KEYS=keys, PER_HEAD=per_head)
    registers, stack, shared = resources(quantize._nuq_encode, TYPES, constants)
    print(f"{'keys' if keys else 'values'}, {heads} heads x {dim}, {bits} bits, {slots} slots"
          f"{', per-head vectors' if per_head else ''}: {registers} registers, {stack} B stack, {shared} B shared",
          flush=True)
