"""Calibration at scale: 2 gloo ranks on the CPU write the single-process artifact, a rank that fails ends every
rank with one error line and no artifact, and weights offloaded as by a device map calibrate like resident ones."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import accelerate
import torch

from kvtool.artifacts import Artifact, load_artifact
from kvtool.calibrate import calibrate
from kvtool.data import default_text
from kvtool.models import fingerprint, load_model

RANKS = 2
SEED = 3
# Each method at settings small enough for the CPU; samples >= ranks, so that every rank has sequences to reduce.
CLI_SETTINGS = dict(params={"bits": 4}, samples=4, seq_len=128)  # pertensor, through `kvtool calibrate`
METHOD_SETTINGS = {  # through one torchrun launch of distributed_calibrations.py
    "kvquant": dict(params={"bits": 3}, samples=2, seq_len=128),
    "qaq": dict(params={}, samples=2, seq_len=128),
    "million": dict(params={"bits": 4}, samples=2, seq_len=128),
    "cq": dict(params={"bits": 4, "channels_per_group": 16}, samples=2, seq_len=128),
    # 2 prompts per gate step, one per rank; short prompts with one short passkey
    "duo": dict(params={"steps": 2, "batch": 2, "min_context": 200, "train_sink": 16, "train_recent": 64,
                        "num_passkeys": 1, "passkey_words": 4}, samples=2, seq_len=256),
}


def rank_environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}  # two ranks share the 2-core machine


def torchrun(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={RANKS}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=rank_environment())


def assert_same_artifact(ranked: Artifact, single: Artifact) -> None:
    """Equal up to float reduction order: the same parameters, data and tensors (allclose)."""
    assert ranked.params == single.params and ranked.tensors.keys() == single.tensors.keys()
    assert {k: v for k, v in ranked.calibration.items() if k != "seconds"} == \
        {k: v for k, v in single.calibration.items() if k != "seconds"}
    for name, tensor in single.tensors.items():
        assert ranked.tensors[name].dtype == tensor.dtype, name
        assert torch.allclose(ranked.tensors[name].float(), tensor.float(), rtol=1e-4, atol=1e-5), name


def single_process(method: str, settings: dict, model, tokenizer) -> Artifact:
    return calibrate(method, model, tokenizer, default_text("calibration"), settings["params"], settings["samples"],
                     settings["seq_len"], SEED, progress=False)


def test_two_ranks_of_the_cli_write_the_single_process_artifact(model, tokenizer, model_fingerprint, tmp_path):
    out = tmp_path / "pertensor.safetensors"
    result = torchrun("-m", "kvtool.cli", "calibrate", "--method", "pertensor", "--bits", "4",
                      "--samples", str(CLI_SETTINGS["samples"]), "--seq-len", str(CLI_SETTINGS["seq_len"]),
                      "--seed", str(SEED), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{RANKS} ranks (gloo)" in result.stderr and result.stdout.count("wrote ") == 1
    assert result.stderr.count("per-tensor ranges:   0%") == 1  # one progress bar: rank 0's
    assert_same_artifact(load_artifact(out, model_fingerprint),
                         single_process("pertensor", CLI_SETTINGS, model, tokenizer))


def test_two_ranks_give_every_method_its_single_process_artifact(model, tokenizer, model_fingerprint, tmp_path):
    driver = Path(__file__).with_name("distributed_calibrations.py")
    result = torchrun(str(driver), str(tmp_path), json.dumps(METHOD_SETTINGS), str(SEED))
    assert result.returncode == 0, result.stderr[-3000:]
    for method, settings in METHOD_SETTINGS.items():
        assert_same_artifact(load_artifact(tmp_path / f"{method}.safetensors", model_fingerprint),
                             single_process(method, settings, model, tokenizer))


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
