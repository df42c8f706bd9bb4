"""The command line: bad input gives one line on stderr, a non-zero exit and no output file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from kvtool.artifacts import Artifact


def kvtool(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvtool.cli", *args], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert words.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture()
def kivi_file(model_fingerprint, tmp_path):
    return str(Artifact.build("kivi", {"bits": 4}, model_fingerprint).save(tmp_path / "kivi4.safetensors"))


def test_bad_command_lines(tmp_path, kivi_file):
    out = tmp_path / "out.safetensors"
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not an artifact")
    cases = [
        (["calibrate", "--method", "nope", "--out", str(out)], "unknown method"),
        (["calibrate", "--method", "kivi", "--bits", "9", "--out", str(out)], "must be one of"),
        (["calibrate", "--method", "kivi", "--samples", "-1", "--out", str(out)], "--samples"),
        (["calibrate", "--method", "kivi", "--seq-len", "0", "--out", str(out)], "--seq-len"),
        (["calibrate", "--method", "kivi", "--out", str(out), "--model", "/no/such/model"], "model not found"),
        (["calibrate", "--method", "kivi", "--out", str(out), "--model", "some-org/some-hub-name"], "never a hub"),
        (["calibrate", "--method", "pertensor", "--out", str(out), "--data", "/no/such.txt"], "data file not found"),
        (["calibrate", "--method", "pertensor", "--out", str(out), "--data", str(empty)], "is empty"),
        (["calibrate", "--method", "kivi", "--out", str(tmp_path / "no" / "a.safetensors")], "folder does not exist"),
        (["calibrate", "--method", "kivi", "--residual", "100", "--out", str(out)], "multiple of group_size"),
        (["calibrate", "--method", "qaq", "--param", "host_copy=yes", "--out", str(out)], "must be of type bool"),
        (["run", "--artifact", str(tmp_path / "missing.safetensors"), "--prompt", "hi"], "artifact not found"),
        (["inspect", str(garbage)], "not a kvtool artifact"),
        (["eval", "--artifact", kivi_file, "--task", "bogus"], "--task"),
        (["eval", "--artifact", kivi_file, "--task", "passkey", "--depths", "2"], "--depths"),
        (["calibrate", "--method", "kivi"], "missing option"),
    ]
    with ThreadPoolExecutor(2) as pool:  # two command lines at a time: each spends seconds importing torch
        results = list(pool.map(lambda case: kvtool(*case[0]), cases))
    for (_, words), result in zip(cases, results):
        assert_one_line_error(result, words)
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_prompt_longer_than_the_context_is_refused(kivi_file):
    result = kvtool("run", "--artifact", kivi_file, "--prompt", "word " * 9000, "--max-new-tokens", "4")
    assert_one_line_error(result, "context")


def test_calibrate_inspect_run(tmp_path):
    path = tmp_path / "kivi2.safetensors"
    made = kvtool("calibrate", "--method", "kivi", "--bits", "2", "--out", str(path))
    assert made.returncode == 0 and path.is_file(), made.stderr
    described = kvtool("inspect", str(path))
    assert described.returncode == 0 and '"bits": 2' in described.stdout and "checksum     ok" in described.stdout
    ran = kvtool("run", "--artifact", str(path), "--prompt", "What is the capital of France?", "--max-new-tokens", "8")
    assert ran.returncode == 0, ran.stderr
    assert "Paris" in ran.stdout and "cache holds" in ran.stdout


def test_eval_shows_host_memory_in_its_own_column(tmp_path, model_fingerprint):
    layers, heads = model_fingerprint["num_layers"], model_fingerprint["num_kv_heads"]
    tensors = {"tolerance": torch.tensor([0.05, 0.5]), "query_norm": torch.ones(layers, heads)}
    path = Artifact.build("qaq", {"host_copy": True}, model_fingerprint, tensors).save(tmp_path / "qaq.safetensors")
    result = kvtool("eval", "--artifact", str(path), "--sequences", "1", "--seq-len", "32")
    assert result.returncode == 0, result.stderr
    header, fp16, qaq = result.stdout.splitlines()[:3]
    fp16_per_token = 2 * 2 * layers * heads * model_fingerprint["head_dim"]  # the host copy holds every K/V in fp16
    assert header.split()[-1] == "host/token" and fp16.split()[-1] == "-"
    assert qaq.split()[-1] == f"{fp16_per_token:,}" and qaq.split()[-2] != f"{fp16_per_token:,}"


def test_runtime_runs_without_calibration_dependencies():
    """An inference host installs kvtool without scikit-learn and faiss: hide them as Python does for absent modules
    (None in sys.modules: find_spec says absent, import fails), then serve a cache through the runtime and the CLI
    module."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules.update(sklearn=None, faiss=None)
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM
        import kvtool.cli
        from kvtool import runtime
        from kvtool.artifacts import Artifact
        from kvtool.models import fingerprint
        from kvtool.runtime.generate import forward
        model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=64,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)).eval()
        cache = runtime.load(Artifact.build("kivi", {"bits": 2, "group_size": 16, "residual": 16},
                                            fingerprint(model))).make_cache(model)
        with torch.no_grad():
            forward(model, torch.randint(0, 64, (1, 40)), cache)
        assert cache.nbytes() > 0
        assert not any(m.split(".")[0] in ("sklearn", "faiss") for m, module in sys.modules.items() if module)
        try:
            import sklearn  # the hiding must really refuse, or this test proves nothing
        except ImportError:
            print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr


def test_inspect_describes_head_maps_and_codebooks_and_checks_the_model(tmp_path, model_fingerprint):
    layers, heads = model_fingerprint["num_layers"], model_fingerprint["num_kv_heads"]
    gates = torch.rand(layers, heads)
    duo = Artifact.build("duo", {}, model_fingerprint, {"head_map": gates, "retrieval": gates > 0.5})
    duo_file = duo.save(tmp_path / "duo.safetensors")
    png = tmp_path / "map.png"
    shown = kvtool("inspect", str(duo_file), "--head-map", str(png))
    assert shown.returncode == 0, shown.stderr
    assert "(* = retrieval head)" in shown.stdout and len(shown.stdout.splitlines()) > layers and png.stat().st_size > 0

    shape = (1, 1, model_fingerprint["head_dim"] // 2, 256, 2)
    books = {name: torch.randn(shape).half() for name in ("key_codebooks", "value_codebooks")}
    million = Artifact.build("million", {}, model_fingerprint, books).save(tmp_path / "million.safetensors")
    shown = kvtool("inspect", str(million))
    assert shown.returncode == 0 and "bits per element over a 4096-token context" in shown.stdout, shown.stderr
    assert_one_line_error(kvtool("inspect", str(million), "--head-map", str(tmp_path / "no.png")), "no head map")

    other = Artifact.build("kivi", {"bits": 4}, {**model_fingerprint, "num_kv_heads": heads + 1})
    other_file = other.save(tmp_path / "other.safetensors")
    assert_one_line_error(kvtool("inspect", str(other_file), "--check-model"), "another model")
    matched = kvtool("inspect", str(duo_file), "--check-model")
    assert matched.returncode == 0 and "model        matches" in matched.stdout, matched.stderr
