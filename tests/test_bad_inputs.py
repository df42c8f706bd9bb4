"""Bad input and faults, through the real `kvtool` entry point: damaged or mismatched artifacts, bad command lines,
an interrupted calibration, and 8K tokens through every method's cache without NaN or inf.

Artifact damage is checked in-process through `kvtool.cli.main` (the same code path as the console script, without
paying the torch import 60 times); a few cases also go through a real subprocess.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors

from kvtool.artifacts import SCHEMAS, Artifact, schema_for, tensor_checksum

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "kvtool-test-executed-from-file"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run `kvtool ARGS` in this process; returns (exit code, stdout, stderr)."""
    from kvtool.cli import main

    saved = sys.argv
    sys.argv = ["kvtool", *args]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = saved
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(code: int, err: str, words: tuple[str, ...], what: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code not in (0, None), f"{what}: exit code {code}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{what}: {err!r}"
    assert any(word.lower() in lines[0].lower() for word in words), f"{what}: {lines[0]}"


def synthetic_tensors(method: str, params: dict, fingerprint: dict) -> dict[str, torch.Tensor]:
    """Finite tensors of exactly the shapes and dtypes the method's schema asks for."""
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for name, (shape, dtype) in schema_for(method).tensors(fingerprint, params).items():
        if dtype.is_floating_point:
            tensors[name] = torch.rand(shape, generator=generator).to(dtype) + 0.5
        else:
            tensors[name] = torch.zeros(shape, dtype=dtype)
    return tensors


def codebook_method() -> tuple[str, dict, str]:
    """A registered method whose artifact holds a codebook (else the naive baseline's ranges: its tiny codebook)."""
    schema_for("fp16")
    probe = {"num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "head_dim": 64}
    for name, schema in sorted(SCHEMAS.items()):
        params = schema.resolve_params(dict(schema.operating_points[0]) if schema.operating_points else {})
        for tensor in schema.tensors(probe, params):
            if "codebook" in tensor:
                return name, params, tensor
    return "pertensor", {"bits": 2}, "key_range"


def raw_artifact(artifact: Artifact, tensors: dict | None = None, **metadata_changes: str) -> bytes:
    """The artifact's bytes with tensors or metadata replaced (the checksum follows the tensors unless replaced)."""
    tensors = dict(artifact.tensors) if tensors is None else tensors
    metadata = {**artifact.metadata(), "kvtool.checksum": tensor_checksum(tensors)}
    metadata.update({"kvtool." + key: value for key, value in metadata_changes.items()})
    metadata = {key: value for key, value in metadata.items() if value is not None}
    return save_safetensors(tensors, metadata=metadata)


class Payload:
    """Unpickling this creates MARKER: proof that something was executed from the file."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def flip(raw: bytes, offset: int) -> bytes:
    damaged = bytearray(raw)
    damaged[offset] ^= 0xFF
    return bytes(damaged)


@pytest.fixture(scope="module")
def damaged_artifacts(model_fingerprint, tmp_path_factory) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """name -> (file, words the one-line error must contain): at least 20 kinds of damage and mismatch."""
    folder = tmp_path_factory.mktemp("damaged")
    layers = model_fingerprint["num_layers"]
    ranges = torch.stack([-torch.arange(1.0, layers + 1), torch.arange(1.0, layers + 1)], dim=1)
    tensors = {"key_range": ranges, "value_range": 2 * ranges}
    base = Artifact.build("pertensor", {"bits": 2}, model_fingerprint, tensors)
    good = raw_artifact(base)
    header_len = struct.unpack("<Q", good[:8])[0]
    checksum_at = good.index(base.metadata()["kvtool.checksum"].encode())
    book_method, book_params, book_tensor = codebook_method()
    book = Artifact.build(book_method, book_params, model_fingerprint,
                          synthetic_tensors(book_method, book_params, model_fingerprint))
    nan_book, inf_book = dict(book.tensors), dict(book.tensors)
    nan_book[book_tensor] = nan_book[book_tensor].clone().flatten().index_fill(0, torch.tensor([3]), float("nan"))
    inf_book[book_tensor] = inf_book[book_tensor].clone().flatten().index_fill(0, torch.tensor([5]), float("inf"))
    nan_book[book_tensor] = nan_book[book_tensor].reshape(book.tensors[book_tensor].shape)
    inf_book[book_tensor] = inf_book[book_tensor].reshape(book.tensors[book_tensor].shape)
    other_heads = Artifact.build("pertensor", {"bits": 2}, {**model_fingerprint, "num_kv_heads": 8}, tensors)
    other_weights = Artifact.build("pertensor", {"bits": 2}, {**model_fingerprint, "kv_weights_sha256": "ab" * 32},
                                   tensors)
    cases = {
        "truncated-empty": (good[:0], ("truncated",)),
        "truncated-in-length": (good[:5], ("truncated",)),
        "truncated-in-header": (good[: 8 + header_len // 2], ("truncated",)),
        "truncated-in-data": (good[: 8 + header_len + 40], ("corrupt", "truncated")),
        "truncated-last-byte": (good[:-1], ("corrupt", "truncated")),
        "header-structure-flipped": (flip(good, 8), ("corrupt header",)),
        "header-checksum-flipped": (flip(good, checksum_at + 10), ("checksum",)),
        "data-flipped": (flip(good, len(good) - 6), ("checksum",)),
        "format-version": (raw_artifact(base, format_version="99"), ("format version 99",)),
        "no-format-version": (raw_artifact(base, format_version=None), ("not a kvtool artifact",)),
        "unknown-method": (raw_artifact(base, method="zstd-magic"), ("unknown method 'zstd-magic'",)),
        "other-method": (raw_artifact(base, method="kivi", params=json.dumps({"bits": 2, "group_size": 32,
                                                                            "residual": 128})),
                         ("unexpected tensor",)),
        "params-out-of-range": (raw_artifact(base, params=json.dumps({"bits": 11})), ("bits=11",)),
        "params-not-json": (raw_artifact(base, params="{bits: 2"), ("not valid JSON",)),
        "missing-tensor": (raw_artifact(base, {"key_range": ranges}), ("missing tensor value_range",)),
        "misshapen-tensor": (raw_artifact(base, {"key_range": ranges[:-1], "value_range": 2 * ranges}),
                             ("key_range has shape",)),
        "wrong-dtype": (raw_artifact(base, {"key_range": ranges.double(), "value_range": 2 * ranges}), ("dtype",)),
        "nan-in-codebook": (raw_artifact(book, nan_book), ("NaN or inf",)),
        "inf-in-codebook": (raw_artifact(book, inf_book), ("NaN or inf",)),
        "oversized-header": (struct.pack("<Q", 1 << 40) + b'{"__metadata__": {}}', ("oversized header",)),
        "plain-safetensors": (save_safetensors({"weight": torch.zeros(4)}), ("not a kvtool artifact",)),
        "pickle-payload": (pickle.dumps(Payload()), ("oversized header", "truncated", "not a kvtool", "corrupt")),
        "text-file": (b"this is a README, not an artifact\n" * 4, ("oversized header", "truncated", "corrupt")),
        "other-model-heads": (raw_artifact(other_heads), ("another model: num_kv_heads is 8",)),
        "other-model-weights": (raw_artifact(other_weights), ("another model: its K/V projection weights",)),
    }
    files = {}
    for name, (raw, words) in cases.items():
        path = folder / f"{name}.safetensors"
        path.write_bytes(raw)
        files[name] = (path, words)
    return files


def test_at_least_twenty_kinds_of_damage(damaged_artifacts):
    assert len(damaged_artifacts) >= 20


def test_inspect_refuses_every_damaged_artifact(damaged_artifacts, capsys):
    for name, (path, words) in damaged_artifacts.items():
        if name.startswith("other-model"):
            continue  # self-consistent files; `inspect` has no model to compare with (run and eval refuse them)
        code, out, err = cli(capsys, "inspect", str(path))
        assert_refused(code, err, words, f"inspect {name}")
        assert out == "", f"inspect {name} printed before refusing: {out!r}"


@pytest.mark.parametrize("command", ["run", "eval"])
def test_run_and_eval_refuse_every_damaged_artifact(damaged_artifacts, capsys, command):
    extra = ["--prompt", "hi", "--max-new-tokens", "2"] if command == "run" else ["--sequences", "1", "--seq-len", "64"]
    for name, (path, words) in damaged_artifacts.items():
        code, out, err = cli(capsys, command, "--artifact", str(path), *extra)
        assert_refused(code, err, words, f"{command} {name}")
        assert out == "", f"{command} {name} printed before refusing: {out!r}"
    assert not MARKER.exists(), "a file's content was executed"


def test_subprocess_refusals_are_one_line(damaged_artifacts):
    """The console entry point itself: one line on stderr, exit 1, no traceback."""
    for name in ("truncated-in-header", "pickle-payload", "nan-in-codebook"):
        path, words = damaged_artifacts[name]
        result = subprocess.run([sys.executable, "-m", "kvtool.cli", "inspect", str(path)], capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert_refused(result.returncode, result.stderr, words, f"subprocess inspect {name}")
    assert not MARKER.exists()


def test_bad_command_lines(tmp_path, capsys, model_fingerprint):
    """Each: one line, non-zero exit, nothing written (test_cli.py covers calibrate's and run's own)."""
    kivi = str(Artifact.build("kivi", {"bits": 4}, model_fingerprint).save(tmp_path / "kivi4.safetensors"))
    out = tmp_path / "out"
    empty, binary, text = tmp_path / "empty.txt", tmp_path / "binary.txt", tmp_path / "text.txt"
    empty.write_text("\n \n")
    binary.write_bytes(bytes(range(128, 256)) * 8)
    text.write_text("Some evaluation text. " * 50)
    report = ["report", "--out-dir", str(out), "--no-peers"]
    cases = [
        ([*report, "--methods", "nope"], "unknown method 'nope'"),
        ([*report, "--press-bits", "20"], "--press-bits"),
        ([*report, "--sequences", "-1"], "--sequences"),
        ([*report, "--seq-len", "0"], "--seq-len"),
        ([*report, "--lengths", "10"], "--lengths"),
        ([*report, "--depths", "0.5,1.5"], "--depths"),
        ([*report, "--model", "/no/such/model"], "model not found"),
        ([*report, "--data", str(tmp_path / "missing.txt")], "data file not found"),
        ([*report, "--data", str(empty)], "is empty"),
        ([*report, "--data", str(binary)], "cannot read data file"),
        ([*report, "--data", str(text), "--calib-data", str(text)], "the same"),
        (["report", "--out-dir", str(tmp_path / "no" / "such" / "dir")], "does not exist"),
        (["eval", "--artifact", kivi, "--seq-len", "-5"], "--seq-len"),
        (["eval", "--artifact", kivi, "--data", str(binary)], "cannot read data file"),
        (["eval", "--artifact", kivi, "--model", "/no/such/model.gguf"], "model not found"),
        (["eval", "--artifact", kivi, "--task", "passkey", "--lengths", "100000"], "context"),
        (["run", "--artifact", kivi, "--prompt", "hi", "--max-new-tokens", "0"], "--max-new-tokens"),
        (["calibrate", "--method", "kivi", "--bits", "0", "--out", str(out / "a.safetensors")], "must be one of"),
        (["bench", "--out", str(out), "--formats", "kivi3"], "unknown format kivi3"),
        (["bench", "--out", str(out), "--launches", "fma"], "unknown launch 'fma'"),
        (["bench", "--out", str(out), "--launches", "mma:32/x"], "unknown launch 'mma:32/x'"),
    ]
    for args, words in cases:
        code, stdout, err = cli(capsys, *args)
        assert_refused(code, err, (words,), " ".join(args))
        assert stdout == "", f"{args}: printed {stdout!r}"
        assert not out.exists(), f"{args} left {out}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["binary.txt", "empty.txt", "kivi4.safetensors", "text.txt"]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_calibration_leaves_nothing(tmp_path, how):
    out = tmp_path / "naive.safetensors"
    process = subprocess.Popen(
        [sys.executable, "-m", "kvtool.cli", "calibrate", "--method", "pertensor", "--samples", "16", "--seq-len",
         "2048", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell's background jobs inherit SIGINT ignored: give the child Ctrl-C's default, as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(15)  # the model is loaded and calibration under way (it takes over a minute on this CPU)
    assert process.poll() is None, "calibration finished before it could be interrupted"
    process.send_signal(how)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "Traceback" not in err
    if how == signal.SIGINT:
        assert process.returncode == 130  # Ctrl-C: typer's interrupted exit status, no traceback
    assert list(tmp_path.iterdir()) == [], f"left behind: {list(tmp_path.iterdir())}"


def test_8k_tokens_through_every_cache_stay_finite(tokenizer):
    """A one-layer random-weight Llama with the real tokenizer (8K positions): each registered method at its first
    operating point, calibrated on 2 x 1024 tokens, prefills 8176 tokens and decodes 16 more with finite logits."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from kvtool import runtime
    from kvtool.calibrate import calibrate
    from kvtool.data import default_text
    from kvtool.runtime.generate import forward, prefill

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=64, max_position_embeddings=8448)).eval()
    ids = torch.randint(0, len(tokenizer), (1, 8176))
    text = default_text("calibration")
    schema_for("fp16")
    failures = []
    for method, schema in sorted(SCHEMAS.items()):
        started = time.perf_counter()
        params = dict(schema.operating_points[0]) if schema.operating_points else {}
        artifact = calibrate(method, model, tokenizer, text, params, samples=2, seq_len=1024, progress=False)
        cache = runtime.load(artifact, model).make_cache(model)
        with torch.no_grad():
            logits = [prefill(model, ids[:, lo : lo + 1024], cache) for lo in range(0, ids.shape[1], 1024)]
            token = logits[-1].argmax(-1, keepdim=True)
            for _ in range(16):
                logits.append(forward(model, token, cache, logits_to_keep=1).logits[:, -1])
                token = logits[-1].argmax(-1, keepdim=True)
        assert cache.get_seq_length() == 8192
        if not all(torch.isfinite(step).all() for step in logits):
            failures.append(method)
        print(f"{method}: 8192 tokens in {time.perf_counter() - started:.0f} s")
    assert not failures, f"NaN or inf in the logits through: {failures}"
