"""Encoding on a side CUDA stream (MILLION's non-blocking quantization), for codecs with `encode_on_side_stream`.

The encode is launched on the device's side stream as soon as the tokens are in the cache; the main stream waits for
it (on the GPU, the host never blocks) only when the codes are first read, so the model's own kernels between the two
overlap it. The kernels are the same as a synchronous encode's, so the codes are too.
"""

from __future__ import annotations

import torch

from kvtool.runtime.codec import Packed, TensorCodec

SIDE_STREAMS: dict[torch.device, torch.cuda.Stream] = {}  # one per GPU, made at first use


def side_stream(device: torch.device) -> torch.cuda.Stream:
    if device not in SIDE_STREAMS:
        SIDE_STREAMS[device] = torch.cuda.Stream(device)
    return SIDE_STREAMS[device]


class SideEncode:
    """`codec.encode(x, start)` running on the side stream of x's GPU; `result()` hands the codes to the main stream."""

    def __init__(self, codec: TensorCodec, x: torch.Tensor, start: int) -> None:
        self.device, self.tokens = x.device, x.shape[2]
        side = side_stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))  # x was written on the main stream
        with torch.cuda.stream(side):
            self.packed = codec.encode(x, start)
        x.record_stream(side)  # x's memory must not go to a new tensor before the side stream has read it
        self.done = torch.cuda.Event()
        self.done.record(side)

    def result(self) -> Packed:
        """The packed tokens, readable by kernels queued on the current stream from now on."""
        main = torch.cuda.current_stream(self.device)
        main.wait_event(self.done)
        for tensor in self.packed.values():
            tensor.record_stream(main)  # made on the side stream, read (and freed) on the main one
        return self.packed
