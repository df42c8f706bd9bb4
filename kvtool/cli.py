"""The `kvtool` command line. Every command works for every method through the registries: no method branches here."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from kvtool.errors import KvtoolError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="KV-cache compression: calibrate a method offline into an artifact, then serve a model with a compressed cache.",
)

MODEL_HELP = "Local HF model folder or GGUF file (default: the embedded SmolLM2-135M-Instruct GGUF)."
DATA_HELP = "Plain-text or JSONL (field 'text') file (default: Python's pydoc topics, a fixed disjoint split)."

# Named method options; each is passed to the method's schema only when given, which refuses those it lacks.
METHOD_OPTIONS = ("bits", "group_size", "residual", "outliers", "channels_per_group", "streaming_fraction")


def _parse_param(text: str) -> tuple[str, object]:
    """`key=value` with value read as JSON where it parses (numbers, true/false), else as a string."""
    if "=" not in text:
        raise KvtoolError(f"--param expects key=value, got '{text}'")
    key, raw = text.split("=", 1)
    try:
        return key.strip().replace("-", "_"), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip().replace("-", "_"), raw


@app.command()
def calibrate(
    method: str = typer.Option(..., "--method", "-m", help="Method name; `kvtool methods` lists them."),
    out: Path = typer.Option(..., "--out", "-o", help="Artifact to write (.safetensors); written atomically."),
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP + " Used whole as calibration text."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Calibration sequences (default: the method's)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", min=2, help="Tokens per calibration sequence."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for sequence sampling and k-means."),
    bits: Optional[int] = typer.Option(None, "--bits", help="Bits per element (methods with a bit width)."),
    group_size: Optional[int] = typer.Option(None, "--group-size", help="Quantization group size (KIVI)."),
    residual: Optional[int] = typer.Option(None, "--residual", help="Full-precision recent tokens (KIVI)."),
    outliers: Optional[float] = typer.Option(None, "--outliers", help="Fraction of outliers kept exact (KVQuant)."),
    channels_per_group: Optional[int] = typer.Option(None, "--channels-per-group", help="Coupled channels (CQ)."),
    streaming_fraction: Optional[float] = typer.Option(None, "--streaming-fraction", help="Streaming heads (Duo)."),
    param: list[str] = typer.Option([], "--param", help="Any other method parameter as key=value (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, or auto (CUDA when there is a GPU)."),
    device_map: Optional[str] = typer.Option(
        None, "--device-map", help="'auto': spread a model too large for one GPU over the GPUs (and CPU memory)."),
) -> None:
    """Run a model over calibration text and write the method's artifact.

    Under `torchrun --nproc-per-node N` the calibration sequences are split over N ranks (gloo on the CPU, NCCL on
    GPUs) and rank 0 writes the artifact that one process would have written."""
    from kvtool.artifacts import schema_for
    from kvtool.calibrate import calibrate as run_calibration
    from kvtool.calibrate import dist, launch
    from kvtool.data import load_text
    from kvtool.models import load_model

    given = locals()
    params = {name: given[name] for name in METHOD_OPTIONS if given[name] is not None}
    params.update(_parse_param(p) for p in param)
    with launch.ranks(device) as rank_device:
        schema_for(method).resolve_params(params)  # refuse bad options before loading anything
        if out.is_dir() or not out.parent.is_dir():
            raise KvtoolError(f"cannot write {out}: its folder does not exist or it is a folder")
        if device_map not in (None, "auto") or (device_map and rank_device == "cpu"):
            raise KvtoolError("--device-map takes 'auto' only, and needs CUDA GPUs")
        text = load_text(data, "calibration")
        max_memory = launch.rank_max_memory() if device_map else None
        hf_model, tokenizer = load_model(model, rank_device, device_map=device_map, max_memory=max_memory)
        started = time.perf_counter()
        artifact = run_calibration(method, hf_model, tokenizer, text, params, samples, seq_len, seed,
                                   progress=not quiet)
        launch.wait_for_all_ranks()
        if dist.is_main():
            artifact.save(out)
            typer.echo(f"wrote {out} ({method}, {out.stat().st_size:,} bytes) in {time.perf_counter() - started:.1f} s")


@app.command()
def methods() -> None:
    """List the methods and their parameters."""
    from kvtool.artifacts import SCHEMAS, schema_for

    schema_for("fp16")  # loads the schema registry
    for name, schema in sorted(SCHEMAS.items()):
        typer.echo(f"{name:12s} {schema.summary}")
        for pname, spec in schema.params.items():
            allowed = f" one of {list(spec.choices)}" if spec.choices else ""
            typer.echo(f"{'':14s}{pname} = {spec.default!r}{allowed}  {spec.help}")


@app.command()
def inspect(
    artifact: Path = typer.Argument(..., help="Artifact (.safetensors) to describe."),
    head_map: Optional[Path] = typer.Option(None, "--head-map", metavar="PNG",
                                            help="Also save the per-layer/per-head map as a PNG heatmap (DuoAttention)."),
    check_model: bool = typer.Option(False, "--check-model", help="Also check the artifact against the model's "
                                     "fingerprint (the embedded model unless --model names one)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP + " Implies --check-model."),
) -> None:
    """Print an artifact's metadata, tensors and sizes, and verify its checksum and shapes."""
    from kvtool.artifacts import load_artifact
    from kvtool.plots import format_head_map, save_head_map

    loaded = load_artifact(artifact)
    if head_map is not None and "head_map" not in loaded.tensors:
        raise KvtoolError(f"a {loaded.method} artifact has no head map to plot")
    check_model = check_model or model is not None
    if check_model:
        from kvtool.models import fingerprint, load_model

        loaded.check_model(fingerprint(load_model(model)[0]))
    typer.echo(f"artifact     {artifact}")
    typer.echo(f"method       {loaded.method}: {loaded.schema.summary}")
    typer.echo(f"params       {json.dumps(loaded.params)}")
    fp = loaded.fingerprint
    typer.echo(
        f"model        {fp.get('architecture')} layers={fp.get('num_layers')} heads={fp.get('num_heads')} "
        f"kv_heads={fp.get('num_kv_heads')} head_dim={fp.get('head_dim')} kv_weights={str(fp.get('kv_weights_sha256'))[:16]}"
    )
    typer.echo(f"calibration  {json.dumps(loaded.calibration)}")
    typer.echo(f"created      {loaded.created} by kvtool {loaded.tool_version}")
    typer.echo(f"tensors      {len(loaded.tensors)}, {loaded.nbytes():,} bytes")
    for name, tensor in sorted(loaded.tensors.items()):
        typer.echo(f"  {name:28s} {str(tensor.dtype).replace('torch.', ''):8s} {tuple(tensor.shape)}")
    for line in loaded.schema.describe(loaded) if loaded.schema.describe else []:
        typer.echo(line)
    if "head_map" in loaded.tensors:
        typer.echo(format_head_map(loaded))
    typer.echo("checksum     ok (format version, checksum, tensor shapes and values verified)")
    if check_model:
        typer.echo("model        matches (fingerprint checked against the model)")
    if head_map is not None:
        typer.echo(f"head map     {save_head_map(loaded, head_map)}")


def _load_for_model(artifacts: list[Path], model: Optional[str]):
    """Validate the artifact files (before paying for the model), load the model, bind the artifacts to it."""
    from kvtool import runtime
    from kvtool.artifacts import load_artifact
    from kvtool.models import load_model

    for path in artifacts:
        load_artifact(path)
    hf_model, tokenizer = load_model(model)
    return runtime.load(artifacts if len(artifacts) > 1 else artifacts[0], hf_model), hf_model, tokenizer


@app.command()
def run(
    artifact: list[Path] = typer.Option(..., "--artifact", "-a", help="Artifact to serve (repeat to compose)."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="Prompt text."),
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, help="Tokens to generate."),
    chat: bool = typer.Option(True, "--chat/--raw", help="Wrap the prompt in the model's chat template if it has one."),
) -> None:
    """Generate from a prompt through the compressed cache; streams tokens, then prints cache memory vs fp16."""
    from kvtool.runtime import fp16_bytes_per_token
    from kvtool.runtime.generate import greedy

    kv, hf_model, tokenizer = _load_for_model(artifact, model)
    if chat and tokenizer.chat_template:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
    else:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
    context = hf_model.config.get_text_config().max_position_embeddings
    if ids.shape[1] + max_new_tokens > context:
        raise KvtoolError(f"prompt ({ids.shape[1]} tokens) plus --max-new-tokens exceeds the model's {context}-token context")
    cache = kv.make_cache(hf_model, check_model=False)
    produced: list[int] = []
    printed = ""
    started = time.perf_counter()
    for token in greedy(hf_model, ids, cache, max_new_tokens, tokenizer.eos_token_id):
        produced.append(token)
        text = tokenizer.decode(produced, skip_special_tokens=True)
        sys.stdout.write(text[len(printed):])
        sys.stdout.flush()
        printed = text
    seconds = time.perf_counter() - started
    tokens = cache.get_seq_length()
    fp16 = tokens * fp16_bytes_per_token(hf_model)
    typer.echo(
        f"\n[{kv.name}] {len(produced)} tokens in {seconds:.1f} s; cache holds {cache.nbytes():,} bytes for "
        f"{tokens} tokens vs fp16 {fp16:,} ({cache.nbytes() / fp16:.3f}x)"
        + (f", plus {cache.host_nbytes():,} bytes in host memory" if cache.host_nbytes() else "")
    )


def _parse_list(text: str, kind: type, what: str) -> list:
    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise KvtoolError(f"{what} must be a comma-separated list of {kind.__name__}s, got '{text}'") from None
    if not values:
        raise KvtoolError(f"{what} is empty")
    return values


@app.command(name="eval")
def evaluate(
    artifact: list[Path] = typer.Option(..., "--artifact", "-a", help="Artifact to evaluate (repeat to compose)."),
    compare: list[Path] = typer.Option([], "--compare", "-c", help="Another artifact, one more row (repeatable)."),
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP + " Used whole as evaluation text."),
    task: str = typer.Option("ppl", "--task", help="ppl (perplexity and memory) or passkey (retrieval accuracy)."),
    seq_len: int = typer.Option(1024, "--seq-len", min=2, help="ppl: tokens per evaluation sequence."),
    sequences: int = typer.Option(8, "--sequences", min=1, help="ppl: evaluation sequences (consecutive windows)."),
    lengths: str = typer.Option("4096", "--lengths", help="passkey: prompt lengths in tokens, comma-separated."),
    depths: str = typer.Option("0.1,0.5,0.9", "--depths", help="passkey: needle depths in [0, 1], comma-separated."),
    trials: int = typer.Option(1, "--trials", min=1, help="passkey: random keys per (length, depth)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (fp16 beside compressed) and nothing else."),
) -> None:
    """Perplexity or passkey accuracy of the compressed cache, side by side with fp16 in the same run."""
    from kvtool import runtime
    from kvtool.artifacts import load_artifact
    from kvtool.data import evaluation_sequences, load_text, text_hash
    from kvtool.eval import fp16_baseline, passkey, perplexity

    if task not in ("ppl", "passkey"):
        raise KvtoolError(f"--task must be ppl or passkey, got '{task}'")
    length_list = _parse_list(lengths, int, "--lengths")
    depth_list = _parse_list(depths, float, "--depths")
    if any(not 0 <= d <= 1 for d in depth_list) or any(n < 64 for n in length_list):
        raise KvtoolError("--depths must lie in [0, 1] and --lengths be at least 64 tokens")
    text = load_text(data, "evaluation") if task == "ppl" else ""
    kv, hf_model, tokenizer = _load_for_model(artifact, model)
    others = [runtime.load(path, hf_model) for path in compare]
    context = hf_model.config.get_text_config().max_position_embeddings
    if max(length_list) > context or seq_len > context:
        raise KvtoolError(f"lengths above the model's {context}-token context")
    for path in [*artifact, *compare]:
        if task == "ppl" and load_artifact(path).calibration.get("data_sha256") == text_hash(text):
            raise KvtoolError(f"the evaluation text is {path}'s calibration text: evaluate on disjoint text")
    progress = not as_json
    rows = []
    for candidate in (fp16_baseline(hf_model), kv, *others):
        if task == "ppl":
            seqs = evaluation_sequences(tokenizer, text, seq_len, sequences)
            rows.append(perplexity(hf_model, seqs, candidate, progress=progress).as_dict())
        else:
            rows.append(passkey(hf_model, tokenizer, candidate, length_list, depth_list, trials, progress=progress).as_dict())
    if as_json:
        typer.echo(json.dumps({"task": task, "model": model or "default", "rows": rows}, indent=1))
        return
    if task == "ppl":
        base = rows[0]["perplexity"]
        host = any(row["host_bytes"] for row in rows)  # a column only where some cache keeps a host copy
        typer.echo(f"{'cache':44s} {'ppl':>8s} {'change':>8s} {'bits/elem':>9s} {'quant.part':>10s} {'bytes/token':>11s}"
                   + (f" {'host/token':>10s}" if host else ""))
        for row in rows:
            quant = f"{row['compressed_bits']:.2f}" if row["compressed_bits"] else "-"
            host_per_token = f"{row['host_bytes'] / row['cache_tokens']:,.0f}" if row["host_bytes"] else "-"
            typer.echo(
                f"{row['name'][:44]:44s} {row['perplexity']:8.3f} {100 * (row['perplexity'] / base - 1):+7.2f}% "
                f"{row['bits_per_element']:9.2f} {quant:>10s} {row['cache_bytes'] / row['cache_tokens']:11,.0f}"
                + (f" {host_per_token:>10s}" if host else "")
            )
        typer.echo(f"({rows[0]['tokens']} predicted tokens; memory after {rows[0]['cache_tokens']} cached tokens"
                   + ("; host/token: bytes in host memory beside the cache)" if host else ")"))
    else:
        cells = list(rows[0]["accuracy"])
        typer.echo(f"{'cache':44s} " + " ".join(f"{c:>10s}" for c in cells) + f" {'mean':>6s}")
        for row in rows:
            typer.echo(f"{row['name'][:44]:44s} " + " ".join(f"{row['accuracy'][c]:10.2f}" for c in cells)
                       + f" {row['mean_accuracy']:6.2f}")


@app.command()
def report(
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP + " Used whole as evaluation text."),
    calib_data: Optional[Path] = typer.Option(None, "--calib-data", help="Calibration text (default: its split)."),
    out_dir: Path = typer.Option(Path("report"), "--out-dir", help="Folder for report.md, report.json, PNGs."),
    sequences: int = typer.Option(4, "--sequences", min=1, help="ppl: evaluation sequences."),
    seq_len: int = typer.Option(1024, "--seq-len", min=16, help="ppl: tokens per evaluation sequence."),
    lengths: str = typer.Option("2048,4096", "--lengths", help="passkey lengths, comma-separated; 'none' to skip."),
    depths: str = typer.Option("0.1,0.5,0.9", "--depths", help="passkey needle depths in [0, 1]."),
    trials: int = typer.Option(1, "--trials", min=1, help="passkey: random keys per (length, depth)."),
    methods: Optional[str] = typer.Option(None, "--methods", help="Only these methods, comma-separated."),
    peers: bool = typer.Option(True, "--peers/--no-peers", help="Measure transformers' QuantizedCache and kvpress."),
    press_bits: str = typer.Option("2", "--press-bits", help="kvpress memory targets: keep bits/16 of the tokens."),
    calib_samples: Optional[int] = typer.Option(None, "--calib-samples", min=1, help="Calibration sequences."),
    calib_seq_len: Optional[int] = typer.Option(None, "--calib-seq-len", min=2, help="Calibration tokens each."),
) -> None:
    """Every method at its published operating points beside fp16 and the peers: report.md, JSON and plots."""
    from kvtool.report import ReportSettings, markdown_table, run_report

    length_list = [] if lengths.strip().lower() == "none" else _parse_list(lengths, int, "--lengths")
    depth_list = _parse_list(depths, float, "--depths")
    bits_list = _parse_list(press_bits, float, "--press-bits")
    if any(not 0 <= d <= 1 for d in depth_list) or any(n < 64 for n in length_list):
        raise KvtoolError("--depths must lie in [0, 1] and --lengths be at least 64 tokens")
    if any(not 0 < b < 16 for b in bits_list):
        raise KvtoolError("--press-bits must lie strictly between 0 and 16")
    settings = ReportSettings(model, data, calib_data, out_dir, sequences, seq_len, length_list, depth_list, trials,
                              _parse_list(methods, str, "--methods") if methods else None, peers, bits_list,
                              calib_samples, calib_seq_len)
    rows = run_report(settings, log=lambda line: typer.echo(line, err=True))
    typer.echo(markdown_table(rows))
    typer.echo(f"\nwrote {out_dir / 'report.md'}, {out_dir / 'report.json'} and plots in {out_dir}")

@app.command()
def bench(
    out: Path = typer.Option(Path("out/bench"), "--out", "-o", help="Folder for bench.json and bench.png."),
    part: list[str] = typer.Option(["attention", "e2e", "longest"], "--part",
                                   help="attention, e2e (throughput and latency), latency, longest or check "
                                   "(repeatable)."),
    formats: str = typer.Option("", "--formats", help="Comma-separated formats (default: all): fp16-kernel, kivi4, "
                                "kivi2, duo50+kivi2, million4, million2, kvquant3, kvquant2, kvquant3-head, cq4, "
                                "cq2, qaq4."),
    contexts: str = typer.Option("", "--contexts", help="Attention contexts in tokens, comma-separated."),
    batches: str = typer.Option("", "--batches", help="Attention batch sizes, comma-separated."),
    launches: str = typer.Option("auto", "--launches", help="Decode kernel launch shapes that check and attention "
                                 "time side by side, comma-separated: auto (the defaults), or a fast path with its "
                                 "shape, e.g. mma:32/2/2/16 (scalar codes), mma_batched:16/1/3/32 (scalar codes, "
                                 "many heads x sequences), adc:16/2/1/8 (codebook codes) or generic:32/4/1/8 "
                                 "(layouts without a fast path: KVQuant, CQ, QAQ) = "
                                 "block_n/num_warps/num_stages/programs_per_sm."),
    as_json: bool = typer.Option(False, "--json", help="Also print all results as one JSON line."),
) -> None:
    """Decode speed on a CUDA GPU, Llama-3-8B shape: fused kernels vs fp16 SDPA, and end to end vs HF caches."""
    from kvtool.bench import run_bench

    def numbers(text: str, what: str) -> list[int] | None:
        try:
            return [int(item) for item in text.split(",")] if text else None
        except ValueError:
            raise KvtoolError(f"{what} takes comma-separated whole numbers, got '{text}'") from None

    run_bench(out, numbers(contexts, "--contexts"), numbers(batches, "--batches"),
              formats.split(",") if formats else None, tuple(part), as_json, launches=tuple(launches.split(",")))


def main() -> None:
    """Entry point: user errors print one line and exit non-zero, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except KvtoolError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(130)
    except typer.exceptions.TyperException as err:  # typer >= 0.28 raises its own, click-free usage errors
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank parsed the same command line
            typer.echo(f"error: {' '.join(err.format_message().split())}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
