"""docs/gpu_runs/2026-12-02e/qaq_host_ops.py with the codecs taking their encode kernels, as on CUDA (the kernel
launches, like the decode kernels there, not run: counted are the PyTorch ops around them).
  OMP_NUM_THREADS=1 python docs/gpu_runs/2026-12-02h/qaq_host_ops_kernels.py qaq4"""
import runpy
import sys

from kvtool.runtime import kernels
from kvtool.runtime.kernels import quantize

kernels.available = lambda x: True
noop = type("K", (), {"__getitem__": lambda self, grid: (lambda *a, **k: None)})()
quantize._bitplane_ranges = quantize._bitplane_widths = quantize._bitplane_codes = noop
sys.argv = [sys.argv[0], *sys.argv[1:]]
runpy.run_path("docs/gpu_runs/2026-12-02e/qaq_host_ops.py", run_name="__main__")
