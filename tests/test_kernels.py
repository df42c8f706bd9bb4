"""Triton kernels against the reference PyTorch path, on the CPU through Triton's interpreter (TRITON_INTERPRET=1).

The interpreter must be chosen before Triton is first imported, so the checks (tests/kernel_checks.py) run once in
a subprocess and report one number per check; the GPU runs the same comparison at real shapes (`kvtool bench`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest

pytest.importorskip("triton")

CHECKS = Path(__file__).with_name("kernel_checks.py")
# two subprocesses at once, with about half of the interpreter's time each (a CI machine has two cores)
HALVES = (("quantize", "decode", "mixed", "other_graph"), ("prerope", "adc", "scalar_graph"))


class Launch(NamedTuple):
    """A kernel launch or compile as a LaunchRecorder saw it."""

    kernel: str
    grid: tuple | None  # None: compiled ahead (`warmup`), not launched
    options: frozenset


class LaunchRecorder:
    """Stands in for a Triton kernel: `kernel[grid](...)` and `kernel.warmup(...)` are recorded, nothing runs."""

    def __init__(self, name: str, recorded: list[Launch]) -> None:
        self.name, self.recorded = name, recorded

    def __getitem__(self, grid: tuple):
        return lambda *args, **kwargs: self.recorded.append(Launch(self.name, grid, frozenset(kwargs.items())))

    def warmup(self, *args, grid, **kwargs) -> None:
        self.recorded.append(Launch(self.name, None, frozenset(kwargs.items())))


@pytest.fixture(scope="module")
def results() -> dict[str, float]:
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    runs = []
    for parts in HALVES:  # output to files: a full pipe would stall the second run until the first is read
        out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        runs.append((subprocess.Popen([sys.executable, str(CHECKS), *parts], env=env, stdout=out, stderr=err,
                                      text=True), out, err))
    merged = {}
    for run, out, err in runs:
        run.wait(timeout=600)
        out.seek(0), err.seek(0)
        assert run.returncode == 0, err.read()[-3000:]
        merged.update(json.loads(out.read().strip().splitlines()[-1]))
    return merged


def test_quantize_on_append_matches_packing_exactly(results):
    """KIVI's min-max kernels (2, 4, 8 bits), KVQuant's nuq encode (1-8 bits, outliers, 3 heads padded to 4,
    per-head value vectors) and QAQ's bit planes (widths 0-8, ranges and outliers per token or per head, ties): the
    codecs' packed tensors, bit for bit."""
    quantize = {name: value for name, value in results.items() if name.startswith("quantize/")}
    assert len(quantize) == 15 and all(value == 0.0 for value in quantize.values()), quantize


def test_fused_decode_matches_reference(results):
    """Scalar codes (the mma path): errors near 1e-3 of the output's scale (fp16 operands or fp16 inputs); a wrong
    token or scale is far above."""
    decode = {name: value for name, value in results.items() if name.startswith("decode/mma/")}
    assert len(decode) == 12 and all(value < 5e-3 for value in decode.values()), decode


def test_fused_adc_decode_matches_reference(results):
    """Codebook layouts (MILLION) through the adc path: fp16 score tables keep errors near 1e-3 as well."""
    adc = {name: value for name, value in results.items() if name.startswith("decode/adc/")}
    assert len(adc) == 3 and all(value < 5e-3 for value in adc.values()), adc


def test_fused_decode_of_keys_stored_before_rope_matches_reference(results):
    """KVQuant's nuq codes and fp16 outliers, CQ's centroids, both rotated in the kernel: errors near 1e-3 as well."""
    rotated = {name: value for name, value in results.items() if name.startswith("decode/prerope/")}
    assert len(rotated) == 10 and all(value < 5e-3 for value in rotated.values()), rotated


def test_fused_decode_of_mixed_widths_matches_reference(results):
    """QAQ's bit planes (widths 0 to 8 per token, outliers) on generic tiles; the values' widths follow the weights
    the fused path rebuilds from the kernel's log-sum-exp: errors near 1e-3 as well."""
    mixed = {name: value for name, value in results.items() if name.startswith("decode/bitplanes/")}
    assert len(mixed) == 4 and all(value < 5e-3 for value in mixed.values()), mixed


def test_every_bench_format_fills_and_attends_on_the_cpu():
    """`kvtool bench` runs only on a GPU; its formats are built here so that a change to a codec's constructor or to
    transformers' rotary embedding shows up in `make test`: each fills a small layer through its own append path,
    attends by the reference path, declares a layout the decode kernel reads, and holds fewer bytes than fp16."""
    import torch

    from kvtool import bench
    from kvtool.runtime import kernels

    query = torch.randn(1, bench.Q_HEADS, 1, bench.HEAD_DIM).half()
    fp16_bytes = 2 * 2 * bench.KV_HEADS * 300 * bench.HEAD_DIM
    for name in bench.FORMATS:
        layer = bench.make_layer(name, "cpu")
        bench.fill_layer(layer, 1, 300, "cpu")
        out = layer.attend(query, None, bench.HEAD_DIM**-0.5)
        assert out.shape == (1, 1, bench.Q_HEADS, bench.HEAD_DIM) and torch.isfinite(out).all(), name
        assert kernels.can_fuse(layer.groups, bench.HEAD_DIM), name
        assert layer.nbytes() <= fp16_bytes, name


def test_bench_check_runs_on_the_cpu():
    """`kvtool bench --part check` runs on a GPU, where one twin cache takes the kernels (attention and encode) and
    the other the PyTorch paths (`kernels.pytorch_encode`); here its code runs with both twins on the PyTorch paths,
    which must then agree exactly for every format."""
    from kvtool import bench

    errors = bench.check_against_reference(list(bench.FORMATS), device="cpu", shapes=((1, 300),))
    assert len(errors) == len(bench.FORMATS) and all(error == 0.0 for error in errors.values()), errors


def test_codebook_encode_picks_the_nearest_centroids(results):
    """MILLION's and CQ's encode kernel picks for every sub-vector the centroid their PyTorch path picks, or one as
    near (its sums round differently): codebooks shared by the heads and per head, 4- and 8-bit indices, sub-vectors
    of 2 to 8 channels, token counts off the kernel's block. Fails with the head's codebook or the norms left out."""
    found = {name: value for name, value in results.items() if name.startswith("codebook_encode/")}
    assert len(found) == 4 and all(value == 0.0 for value in found.values()), found


def test_host_integer_helpers_agree_with_tritons():
    """The wrappers' plain-Python cdiv and next_power_of_2 (triton's are slow to call from the host) give triton's
    values."""
    import triton

    from kvtool.runtime.kernels import cdiv, next_power_of_2

    assert all(next_power_of_2(n) == triton.next_power_of_2(n) for n in range(1, 5000))
    assert all(cdiv(a, b) == triton.cdiv(a, b) for a in range(0, 300) for b in range(1, 40))


def test_splits_cover_every_tile_once_with_at_least_the_tiles_asked():
    """The split kernel's splits of a context: consecutive, covering every tile and no split empty, never more than
    the target, and each at least `least` tiles long wherever the context holds that many (the generic launch's
    `min_split_tiles`)."""
    from kvtool.runtime.kernels.decode import _splits

    block = 16
    for tiles in range(1, 300, 7):
        for target in (1, 3, 8, 132, 1056):
            for least in (1, 2, 4, 32):
                splits, split_tokens = _splits(tiles, target, block, least)
                assert split_tokens % block == 0 and 1 <= splits <= target, (tiles, target, least)
                assert (splits - 1) * split_tokens < tiles * block <= splits * split_tokens, (tiles, target, least)
                assert split_tokens >= min(least, tiles) * block, (tiles, target, least)


def test_a_growing_context_compiles_no_launch_midway(monkeypatch):
    """Every launch a layer takes as its context grows was launched or compiled ahead at its first step: the fast
    launch, which a layer whose stores are too short for fast tiles takes once they hold enough; the one-warp launch
    and its merge, which scalar codes take once they hold many more positions (about 200K tokens at batch 1 with 8
    heads; here BATCHED_MIN_TOKENS is lowered so that 9,000 reach it); and the merge, whose block of partials stays
    while the launch does (on the H200 duo50+kivi2 first took fast tiles at 8,576 tokens, and its merge went from
    blocks of 512 partials to 256 at 8,448: JIT compiles inside the bench's timed steps). The kernels are recorded,
    not run."""
    import torch

    from kvtool import bench
    from kvtool.runtime import kernels
    from kvtool.runtime.kernels import decode

    recorded: list[Launch] = []
    monkeypatch.setattr(decode, "_decode_split_kernel", LaunchRecorder("split", recorded))
    monkeypatch.setattr(decode, "_merge_partials_kernel", LaunchRecorder("merge", recorded))
    monkeypatch.setattr(decode, "_target_programs", lambda device, launch: launch.programs_per_sm * 132)  # an H100
    monkeypatch.setattr(decode, "BATCHED_MIN_TOKENS", 16)  # 16 x 32 x 132 programs / 8 heads: 8,448 positions
    monkeypatch.setattr(decode, "_COMPILED_AHEAD", set())
    for name in ("kivi2", "million2"):  # the mma path (and its one-warp launch) and the adc path
        layer = bench.make_layer(name, "cpu")
        query = torch.randn(1, bench.Q_HEADS, 1, bench.HEAD_DIM, dtype=torch.float16)
        steps, fast_launched = [], []
        # to 1000 (generic tiles only), 2000 (kivi2's fast tiles: 32 or more), 7000 (million2's too), 9000 (one-warp)
        for tokens in (1000, 1000, 5000, 2000):
            bench.fill_layer(layer, 1, tokens, "cpu")
            recorded.clear()
            kernels.attend_decode(layer, query, None, 0.088, None)
            steps.append({(launch.kernel, launch.options) for launch in recorded})  # launched or compiled ahead
            fast_launched.append(any(launch.grid and ("FAST", True) in launch.options for launch in recorded))
        assert fast_launched == [False, name == "kivi2", True, True], (name, fast_launched)
        fast = {(kernel, options) for kernel, options in steps[2] if ("FAST", True) in options}
        assert fast and fast <= steps[0], (name, fast - steps[0])
        assert set().union(*steps[1:]) <= steps[0], (name, set().union(*steps[1:]) - steps[0])
        one_warp = {(kernel, options) for kernel, options in steps[3] if ("num_warps", 1) in options}
        assert bool(one_warp) == (name == "kivi2"), (name, steps[3])


def test_one_long_append_launches_within_cudas_grid_caps(monkeypatch):
    """CUDA caps a grid's second and third axes at 65,535 programs, so every encode kernel numbers the tokens on its
    first: one append of 1.1M tokens (a long prompt through HF's generate) launches each of them. With the tokens
    second, KVQuant's encode failed to launch at 70,000 tokens on the H200, KIVI's values at 1,100,000. The kernels
    are recorded, not run."""
    import torch

    from kvtool.runtime.kernels import quantize

    recorded: list[Launch] = []
    kernels = {"_quantize_token_groups", "_quantize_channel_groups", "_nuq_encode", "_bitplane_ranges",
               "_bitplane_widths", "_bitplane_codes", "_codebook_encode"}
    for name in kernels:
        monkeypatch.setattr(quantize, name, LaunchRecorder(name, recorded))
    tokens, dim = 1_100_000, 32
    x = torch.zeros(1, 1, tokens, dim, dtype=torch.float16)
    books = torch.zeros(1, dim // 4, 256, 4)
    quantize.quantize_token_groups(x, 2, 32)
    quantize.quantize_channel_groups(x, 2, 32)
    quantize.nuq_encode(x, 3, torch.zeros(7), 1, torch.uint8)
    quantize.bitplane_quantize(x, torch.ones(tokens, 1, dtype=torch.float64), 1, 1, 4, 1, 1)
    quantize.codebook_encode(x, books, books.square().sum(-1))
    assert {launch.kernel for launch in recorded} == kernels
    over = [(launch.kernel, launch.grid) for launch in recorded if max(launch.grid[1:], default=1) > 65_535]
    assert not over, over


def test_fused_decode_replayed_from_a_graph_matches_eager_steps(results):
    """A decode step captured for CUDA graphs (runtime/graphs.py), its replays emulated: KIVI (values encoded every
    step, key groups of 32 and 16), fp16 stores growing each step, windows whose start moves on (sinks and a recent
    window, also across a window's drop of a key group; Duo's streaming heads beside KIVI ones), keys stored before
    RoPE, encoded at the replay's position (KVQuant, CQ), MILLION's codebook codes (the adc path; its window is
    encoded outside the captured steps) and QAQ's mixed widths (code rows appended at a device-side count, values
    encoded after the attention of their window, which the replay observes), a step captured after KIVI's key flush or
    MILLION's window was encoded ahead of it, and replays with such a flush run between two of them (the store's end
    from the step count), read as the eager fused steps read them (split differently, and windows on generic tiles:
    float rounding apart; a window start left behind is off by ~0.16, a store end that misses a flush by 0.2-0.3, a
    drop or flush not redone 1.0), and the tails and stores written alike, bit for bit."""
    replayed = {name: value for name, value in results.items() if name.startswith("graph/")}
    assert len(replayed) == 13 and all(value < 5e-3 for value in replayed.values()), replayed
