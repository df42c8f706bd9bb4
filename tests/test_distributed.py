"""Calibration at scale: 2 gloo ranks on the CPU write the single-process artifact, a rank that fails ends every
rank with one error line and no artifact, and weights offloaded as by a device map calibrate like resident ones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import accelerate
import pytest
import torch

from kvtool.artifacts import load_artifact
from kvtool.calibrate import calibrate
from kvtool.data import default_text
from kvtool.models import fingerprint, load_model

RANKS = 2
# Each method at settings small enough for the CPU; samples >= ranks, so every rank has sequences to reduce.
CHEAP_SETTINGS = {
    "pertensor": dict(params={"bits": 4}, samples=4, seq_len=128),
}


def rank_environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}  # two ranks share the 2-core machine


def torchrun_calibrate(method: str, settings: dict, out: Path) -> subprocess.CompletedProcess:
    params = [f"--param={name}={value}" for name, value in settings["params"].items()]
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={RANKS}", "-m", "kvtool.cli",
               "calibrate", "--method", method, "--samples", str(settings["samples"]),
               "--seq-len", str(settings["seq_len"]), "--seed", "3", "--out", str(out), "--quiet", *params]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=rank_environment())


@pytest.mark.parametrize("method", sorted(CHEAP_SETTINGS))
def test_two_ranks_write_the_single_process_artifact(method, model, tokenizer, model_fingerprint, tmp_path):
    settings = CHEAP_SETTINGS[method]
    out = tmp_path / f"{method}.safetensors"
    result = torchrun_calibrate(method, settings, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{RANKS} ranks (gloo)" in result.stderr and result.stdout.count("wrote ") == 1
    ranked = load_artifact(out, model_fingerprint)
    single = calibrate(method, model, tokenizer, default_text("calibration"), settings["params"],
                       settings["samples"], settings["seq_len"], seed=3, progress=False)
    assert ranked.params == single.params and ranked.tensors.keys() == single.tensors.keys()
    assert {k: v for k, v in ranked.calibration.items() if k != "seconds"} == \
        {k: v for k, v in single.calibration.items() if k != "seconds"}
    for name, tensor in single.tensors.items():
        assert ranked.tensors[name].dtype == tensor.dtype, name
        assert torch.allclose(ranked.tensors[name].float(), tensor.float(), rtol=1e-4, atol=1e-6), name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_rank_that_fails_ends_every_rank_with_one_error_and_no_artifact(tmp_path):
    """The same command line on two "nodes" (working folders); the relative --data file exists on rank 0's only.
    The ranks are started by hand, as a cluster launcher would, so that no torchrun agent cleans up after them."""
    folders = [tmp_path / f"node{rank}" for rank in range(RANKS)]
    for folder in folders:
        folder.mkdir()
    (folders[0] / "calibration.txt").write_text(default_text("calibration")[:200_000])
    command = [sys.executable, "-m", "kvtool.cli", "calibrate", "--method", "pertensor", "--data", "calibration.txt",
               "--samples", "2", "--seq-len", "128", "--out", "out.safetensors", "--quiet"]
    port = str(free_port())
    ranks = [
        subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=rank_environment(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(RANKS),
                                              LOCAL_WORLD_SIZE=str(RANKS), MASTER_ADDR="127.0.0.1", MASTER_PORT=port))
        for rank, folder in enumerate(folders)
    ]
    outputs = [rank.communicate(timeout=300) for rank in ranks]
    assert all(rank.returncode != 0 for rank in ranks), outputs
    errors = [line for _, stderr in outputs for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: rank 1: data file not found: calibration.txt"], outputs
    assert not any("Traceback" in stderr for _, stderr in outputs), outputs
    assert not [path for folder in folders for path in folder.iterdir() if "safetensors" in path.name]


def test_offloaded_weights_calibrate_like_resident_ones(model, tokenizer, model_fingerprint):
    """accelerate's offloading (what `--device-map auto` does past the GPUs' memory) keeps weights on the meta device
    until a layer runs: the fingerprint and the captured keys, values and gradients must not notice."""
    offloaded, _ = load_model(device="cpu")
    accelerate.cpu_offload(offloaded, execution_device=torch.device("cpu"))
    assert any(parameter.device.type == "meta" for parameter in offloaded.parameters())
    assert fingerprint(offloaded) == model_fingerprint
    text = default_text("calibration")
    resident = calibrate("kvquant", model, tokenizer, text, {"bits": 3}, 2, 128, seed=1, progress=False)
    moved = calibrate("kvquant", offloaded, tokenizer, text, {"bits": 3}, 2, 128, seed=1, progress=False)
    for name, tensor in resident.tensors.items():
        assert torch.allclose(moved.tensors[name], tensor, rtol=1e-5, atol=1e-6), name
