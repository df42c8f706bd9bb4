"""Artifact round trip and every validation error, on artifacts made for the real embedded model."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save as save_safetensors

from kvtool.artifacts import FORMAT_VERSION, Artifact, load_artifact, tensor_checksum
from kvtool.errors import KvtoolError
from kvtool.models import fingerprint


@pytest.fixture()
def naive_artifact(model_fingerprint) -> Artifact:
    layers = model_fingerprint["num_layers"]
    ranges = torch.stack([-torch.arange(1.0, layers + 1), torch.arange(1.0, layers + 1)], dim=1)
    return Artifact.build("pertensor", {"bits": 3}, model_fingerprint,
                          {"key_range": ranges, "value_range": ranges * 2})


def write_raw(path, tensors: dict, metadata: dict) -> None:
    """Write a safetensors file bypassing Artifact's checks, to build damaged artifacts."""
    path.write_bytes(save_safetensors(tensors, metadata=metadata))


def test_round_trip_keeps_everything(naive_artifact, model_fingerprint, tmp_path):
    path = naive_artifact.save(tmp_path / "a.safetensors")
    loaded = load_artifact(path, model_fingerprint)
    assert loaded.method == "pertensor" and loaded.params == {"bits": 3}
    assert loaded.fingerprint == model_fingerprint
    for name, tensor in naive_artifact.tensors.items():
        assert torch.equal(loaded.tensors[name], tensor)
    assert not list(tmp_path.glob(".*tmp")), "no temporary file is left behind"


def test_parameters_are_defaulted_and_checked(model_fingerprint):
    assert Artifact.build("kivi", {}, model_fingerprint).params == {"bits": 2, "group_size": 32, "residual": 128}
    with pytest.raises(KvtoolError, match="must be one of"):
        Artifact.build("kivi", {"bits": 9}, model_fingerprint)
    with pytest.raises(KvtoolError, match="multiple of group_size"):
        Artifact.build("kivi", {"residual": 100}, model_fingerprint)
    with pytest.raises(KvtoolError, match="no parameter"):
        Artifact.build("kivi", {"outliers": 0.01}, model_fingerprint)
    with pytest.raises(KvtoolError, match="unknown method"):
        Artifact.build("nope", {}, model_fingerprint)


def damaged(naive_artifact, tmp_path, tensors=None, **metadata_changes):
    path = tmp_path / "bad.safetensors"
    tensors = dict(naive_artifact.tensors) if tensors is None else tensors
    metadata = naive_artifact.metadata()
    metadata["kvtool.checksum"] = tensor_checksum(tensors)
    metadata.update({"kvtool." + k: v for k, v in metadata_changes.items()})
    write_raw(path, tensors, metadata)
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format_version": str(FORMAT_VERSION + 1)}, "format version"),
        ({"method": "nope"}, "unknown method"),
        ({"params": json.dumps({"bits": 11})}, "must be one of"),
        ({"params": "{not json"}, "not valid JSON"),
        ({"checksum": "0" * 64}, "checksum"),
    ],
)
def test_metadata_damage_is_refused(naive_artifact, tmp_path, change, message):
    with pytest.raises(KvtoolError, match=message):
        load_artifact(damaged(naive_artifact, tmp_path, **change))


def test_parameters_added_later_take_their_default_and_others_stay_required(uncalibrated_kvquant, tmp_path):
    """A KVQuant file written before value_vector existed means value_vector=token; one without bits is incomplete."""
    current = uncalibrated_kvquant()
    older = {name: value for name, value in current.params.items() if name != "value_vector"}
    loaded = load_artifact(damaged(current, tmp_path, params=json.dumps(older)))
    assert loaded.params == current.params and loaded.params["value_vector"] == "token"
    incomplete = {name: value for name, value in current.params.items() if name != "bits"}
    with pytest.raises(KvtoolError, match="incomplete"):
        load_artifact(damaged(current, tmp_path, params=json.dumps(incomplete)))


def test_tensor_damage_is_refused(naive_artifact, tmp_path):
    good = naive_artifact.tensors
    cases = {
        "missing tensor": {"key_range": good["key_range"]},
        "has shape": {**good, "key_range": good["key_range"][:-1]},
        "NaN or inf": {**good, "value_range": good["value_range"].clone().fill_(float("nan"))},
        "unexpected tensor": {**good, "extra": torch.zeros(2)},
        "dtype": {**good, "key_range": good["key_range"].double()},
    }
    for message, tensors in cases.items():
        with pytest.raises(KvtoolError, match=message):
            load_artifact(damaged(naive_artifact, tmp_path, tensors=tensors))


def test_byte_level_damage_is_refused(naive_artifact, tmp_path):
    path = naive_artifact.save(tmp_path / "a.safetensors")
    raw = path.read_bytes()
    bad = tmp_path / "bad.safetensors"
    for cut in (0, 5, 8, 40, len(raw) // 2, len(raw) - 1):
        bad.write_bytes(raw[:cut])
        with pytest.raises(KvtoolError):
            load_artifact(bad)
    flipped = bytearray(raw)
    flipped[-3] ^= 0xFF  # inside the tensor data
    bad.write_bytes(bytes(flipped))
    with pytest.raises(KvtoolError, match="checksum"):
        load_artifact(bad)
    flipped = bytearray(raw)
    flipped[12] ^= 0xFF  # inside the JSON header
    bad.write_bytes(bytes(flipped))
    with pytest.raises(KvtoolError):
        load_artifact(bad)
    bad.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(KvtoolError, match="oversized header"):
        load_artifact(bad)
    bad.write_bytes(b"this is not a safetensors file at all, just text")
    with pytest.raises(KvtoolError):
        load_artifact(bad)
    write_raw(bad, {"x": torch.zeros(2)}, {"something": "else"})
    with pytest.raises(KvtoolError, match="not a kvtool artifact"):
        load_artifact(bad)


def test_artifact_for_another_model_is_refused(naive_artifact, model_fingerprint, tmp_path):
    path = naive_artifact.save(tmp_path / "a.safetensors")
    other_heads = {**model_fingerprint, "num_kv_heads": 8}
    with pytest.raises(KvtoolError, match="num_kv_heads is 3, this model has 8"):
        load_artifact(path, other_heads)
    other_weights = {**model_fingerprint, "kv_weights_sha256": "0" * 64}
    with pytest.raises(KvtoolError, match="weights differ"):
        load_artifact(path, other_weights)


def test_save_refuses_a_missing_folder(naive_artifact, tmp_path):
    with pytest.raises(KvtoolError, match="does not exist"):
        naive_artifact.save(tmp_path / "no" / "such" / "a.safetensors")


def test_fingerprint_is_the_same_in_float32_and_float16():
    # artifacts calibrated on a GPU (float16) must load on a CPU host (float32) and back
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=100)
    model = LlamaForCausalLM(config).eval()
    single = fingerprint(model)
    assert fingerprint(model.half()) == single
    with torch.no_grad():
        model.model.layers[1].self_attn.v_proj.weight[0, 0] += 1
    assert fingerprint(model)["kv_weights_sha256"] != single["kv_weights_sha256"]


@pytest.fixture()
def tiny_gguf(tokenizer, tmp_path, monkeypatch):
    """A file named .gguf whose conversion loads a tiny Llama (the loaders are replaced), into a cache in tmp_path."""
    import transformers

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")  # never parsed
    monkeypatch.setenv("KVTOOL_CACHE", str(tmp_path / "cache"))
    tiny = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *args, **kwargs: tiny)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *args, **kwargs: tokenizer)
    return gguf


def test_gguf_conversion_that_loses_a_race_uses_the_winners_folder(tiny_gguf, monkeypatch):
    """Two processes converting one GGUF at once (e.g. calibrations side by side): the later rename fails on the
    earlier one's folder, which is then used instead of failing."""
    import os
    import shutil

    from kvtool.models import ModelSource

    rename = os.replace

    def the_other_process_finishes_first(source, destination):
        shutil.copytree(source, destination)
        rename(source, destination)

    monkeypatch.setattr(os, "replace", the_other_process_finishes_first)
    folder = ModelSource.resolve(tiny_gguf).hf_folder()
    assert (folder / "config.json").is_file()
    assert [entry.name for entry in folder.parent.iterdir()] == [folder.name]  # the staging folder is gone


def test_gguf_conversion_is_reused_by_its_transformers_version_only(tiny_gguf, monkeypatch):
    """A conversion cached by one transformers version is not served to another: their GGUF readers differ."""
    import transformers

    from kvtool.models import ModelSource

    source = ModelSource.resolve(tiny_gguf)
    first = source.hf_folder()
    (first / "converted-here").touch()
    assert source.hf_folder() == first
    monkeypatch.setattr(transformers, "__version__", transformers.__version__ + ".other")
    other = source.hf_folder()
    assert other != first and (other / "config.json").is_file() and not (other / "converted-here").exists()
