"""Calibration wall time and peak GPU memory for a Llama-3-8B-shaped model with random weights (nothing downloaded).

    python -m kvtool.calibrate.bench_gpu --tokenizer DIR --text FILE \\
        --run kvquant:bits=3,samples=16,seq_len=2048 --run million --run cq:bits=2 --run duo:steps=50

`--config DIR` takes another shape from a saved config.json (e.g. the embedded SmolLM2-135M's), and `--device cpu`
times the same command on the CPU, so one setting can be timed on both.

Each run calls `calibrate()` as `kvtool calibrate` does, on one model kept on the GPU between runs, and prints one
line: wall time and torch.cuda.max_memory_allocated over the run (the fp16 weights, 15 GiB, included). Any
tokenizer will do (its ids must be below the model's vocabulary); the SmolLM2 one turns the pydoc text into tokens.

`--device-map-check RUN` (repeatable) also calibrates a 4-layer model of the same shape twice, once whole on the
GPU and once loaded with `device_map="auto"` and a GPU budget that offloads some layers to the CPU, and compares
the artifacts: the capture hooks must see the same keys, values and gradients through accelerate's offloading.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from kvtool.calibrate import calibrate
from kvtool.cli import _parse_param
from kvtool.data import read_text_file
from kvtool.models import load_model

GIB = 1 << 30


def llama3_8b_config(layers: int = 32) -> LlamaConfig:
    """Llama-3-8B's shape (GQA 32/8 heads of 128, 128K vocabulary, RoPE θ 500000)."""
    return LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=layers, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0,
                       rms_norm_eps=1e-5, tie_word_embeddings=False)


def random_model(config: LlamaConfig, device: str, dtype: torch.dtype) -> LlamaForCausalLM:
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype)
    return model.eval().requires_grad_(False)


def parse_run(spec: str) -> tuple[str, dict, dict]:
    """'method:key=value,...' -> (method, method params, {samples, seq_len} where given)."""
    method, _, rest = spec.partition(":")
    params = dict(_parse_param(item) for item in rest.split(",") if item)
    sizes = {name: params.pop(name) for name in ("samples", "seq_len") if name in params}
    return method, params, sizes


def calibrate_spec(model, tokenizer, text: str, spec: str, progress: bool = False):
    method, params, sizes = parse_run(spec)
    return calibrate(method, model, tokenizer, text, params, sizes.get("samples"), sizes.get("seq_len"), seed=0,
                     progress=progress)


def timed_calibration(model, tokenizer, text: str, spec: str, out: Path | None) -> dict:
    on_cuda = next(model.parameters()).is_cuda
    if on_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    artifact = calibrate_spec(model, tokenizer, text, spec, progress=True)
    if on_cuda:
        torch.cuda.synchronize()
    method = artifact.method
    row = {"run": spec, "method": method, "params": artifact.params, "samples": artifact.calibration.get("samples"),
           "seq_len": artifact.calibration.get("seq_len"), "seconds": round(time.perf_counter() - started, 1),
           "peak_gib": round(torch.cuda.max_memory_allocated() / GIB, 2) if on_cuda else None}
    if out:
        artifact.save(out / f"{method}.safetensors")
    return row


def device_map_check(tokenizer, text: str, specs: list[str], gpu_budget: str) -> list[dict]:
    """Each calibration of a 4-layer model whole on the GPU and through accelerate's offloading; max differences."""
    whole = random_model(llama3_8b_config(layers=4), "cuda", torch.float16)
    references = [calibrate_spec(whole, tokenizer, text, spec) for spec in specs]
    with tempfile.TemporaryDirectory() as folder:
        whole.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        del whole
        torch.cuda.empty_cache()
        mapped, _ = load_model(folder, device_map="auto", max_memory={0: gpu_budget, "cpu": "64GiB"})
        placement = sorted({str(device) for device in mapped.hf_device_map.values()})
        offloaded = sum(device == "cpu" for device in mapped.hf_device_map.values())
        results = [calibrate_spec(mapped, tokenizer, text, spec) for spec in specs]
    rows = []
    for spec, reference, result in zip(specs, references, results):
        difference = max((result.tensors[name].float() - tensor.float()).abs().max().item()
                         for name, tensor in reference.tensors.items())
        scale = max(tensor.float().abs().max().item() for tensor in reference.tensors.values())
        rows.append({"check": "device_map", "run": spec, "devices": placement, "modules_on_cpu": offloaded,
                     "same_fingerprint": result.fingerprint == reference.fingerprint,
                     "max_abs_difference": difference, "max_abs_value": scale})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, help="tokenizer folder (ids must fit the 128256 vocabulary)")
    parser.add_argument("--text", required=True, help="calibration text file")
    parser.add_argument("--run", action="append", default=[], help="method:key=value,... (repeatable)")
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--config", help="folder with a config.json to use instead of Llama-3-8B's shape (--layers ignored)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=("float16", "bfloat16", "float32"),
                        help="weights' dtype (default: float16 on CUDA, float32 on the CPU)")
    parser.add_argument("--out", type=Path, help="folder for the artifacts and results.jsonl")
    parser.add_argument("--device-map-check", metavar="RUN", action="append", default=[],
                        help="method:key=value,... to compare with and without offloading (repeatable)")
    parser.add_argument("--gpu-budget", default="2GiB", help="GPU memory accelerate may fill in the offload check")
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    text = read_text_file(args.text)
    rows = []
    if args.device_map_check:
        for row in device_map_check(tokenizer, text, args.device_map_check, args.gpu_budget):
            rows.append(row)
            print(json.dumps(row), flush=True)
    on_cuda = args.device.startswith("cuda")
    dtype = getattr(torch, args.dtype) if args.dtype else torch.float16 if on_cuda else torch.float32
    config = AutoConfig.from_pretrained(args.config) if args.config else llama3_8b_config(args.layers)
    model = random_model(config, args.device, dtype)
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / GIB
    shape = f"{args.config}'s shape" if args.config else "Llama-3-8B shape"
    print(f"model: {shape}, {config.num_hidden_layers} layers, random {dtype} weights {weights:.2f} GiB on "
          f"{torch.cuda.get_device_name() if on_cuda else 'cpu'} (torch {torch.__version__})", flush=True)
    for spec in args.run:
        rows.append(timed_calibration(model, tokenizer, text, spec, args.out))
        print(json.dumps(rows[-1]), flush=True)
        if args.out:
            (args.out / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"{'run':48s} {'tokens':>11s} {'seconds':>8s} {'peak GiB':>9s}")
    for row in rows:
        if "seconds" in row:
            tokens = f"{row['samples']} x {row['seq_len']}" if row["samples"] else "-"
            print(f"{row['run'][:48]:48s} {tokens:>11s} {row['seconds']:8.1f} {row['peak_gib'] or 0:9.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
