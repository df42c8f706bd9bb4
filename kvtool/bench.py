"""`kvtool bench`: decode speed of the compressed cache on a CUDA GPU, side by side with fp16 in the same run.

Three parts (and `check`: the fused kernels, attention and encode, against the reference path), all on a
Llama-3-8B-shaped problem (32 query heads, 8 KV heads, head_dim 128; no download):
  attention  one layer's decode attention alone: each format's fused kernel vs fp16 `scaled_dot_product_attention`,
             time per step, ratio, bytes read and achieved bandwidth (CUDA-graph replays, median).
  e2e        a random-weight Llama-3-8B decoding through HF: throughput at the largest batch that fits per format,
             and `latency`;
  latency    the same model at batch 1: time per token over 256 steps against HF DynamicCache / StaticCache /
             QuantizedCache (quanto); kvtool's caches replay CUDA graphs (runtime/graphs.py), captures included
             (formats whose steps no graph replays, QAQ's, over 16 steps);
  longest    the same model: the longest context each format decodes at batch 1.
Contexts are filled with random keys and values through the caches' own append paths (decode speed does not
depend on the values), so no prefill of 32K x batch tokens is needed. `launches` times (and checks) launch shapes
of the decode kernel's fast paths side by side on the same filled caches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from kvtool.errors import KvtoolError
from kvtool.runtime import kernels
from kvtool.runtime.cache import CompressedCache, CompressedLayer
from kvtool.runtime.codec import Fp16Codec, HeadGroup
from kvtool.runtime.cq import CoupledCodec, PreRopeKeys
from kvtool.runtime.kivi import KiviKeys, KiviValues
from kvtool.runtime.kvquant import Codebook, NuqKeys, NuqValues, key_slots, value_slots
from kvtool.runtime.million import MillionCodec
from kvtool.runtime.qaq import QaqKeys, QaqValues

Q_HEADS, KV_HEADS, HEAD_DIM, LAYERS = 32, 8, 128, 32
FILL_CHUNK = 4096  # tokens appended at a time while filling a context
SDPA = "fp16 SDPA"  # the attention rows' yardstick


@dataclass(frozen=True)
class Format:
    """A cache format the bench measures: a head-group plan for one layer of KV_HEADS heads."""

    name: str
    groups: Callable[[], list[HeadGroup]]


def kivi_groups(bits: int, streaming: int = 0, sink: int = 64, recent: int = 1024) -> list[HeadGroup]:
    """KIVI (G=32, R=128) on every head; the last `streaming` heads keep only sinks and a recent window (Duo)."""
    codecs = lambda: (KiviKeys(bits, 32, 128), KiviValues(bits, 32, 128))  # noqa: E731
    retrieval = list(range(KV_HEADS - streaming))
    groups = [HeadGroup(retrieval, *codecs())] if retrieval else []
    if streaming:
        groups.append(HeadGroup(list(range(KV_HEADS - streaming, KV_HEADS)), *codecs(), sink=sink, recent=recent))
    return groups


def million_groups(width: int, bits: int = 8, residual: int = 128) -> list[HeadGroup]:
    """MILLION on every head: sub-vectors of `width` channels, `bits`-bit indices, a `residual`-token fp16 window;
    random codebooks (speed does not depend on them), one per kind shared by all heads as the paper trains them, on
    the default device (make_layer's)."""
    shape = (1, HEAD_DIM // width, 1 << bits, width)
    books = lambda: torch.randn(shape).half().float().expand(KV_HEADS, -1, -1, -1)  # noqa: E731
    codecs = MillionCodec(books(), bits, residual), MillionCodec(books(), bits, residual)
    return [HeadGroup(list(range(KV_HEADS)), *codecs)]


def llama3_rotary(head_dim: int = HEAD_DIM, theta: float = 500000.0, original_context: int = 8192) -> object:
    """What codecs of keys stored before RoPE read of a model: a Llama rotary embedding with llama3 frequency scaling
    (by default Llama-3-8B's), made on the default device (make_layer's)."""
    from types import SimpleNamespace

    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    config = LlamaConfig(hidden_size=Q_HEADS * head_dim, num_attention_heads=Q_HEADS, rope_theta=theta,
                         max_position_embeddings=131072,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": original_context})
    return SimpleNamespace(model=SimpleNamespace(rotary_emb=LlamaRotaryEmbedding(config)))


def kvquant_groups(bits: int, outliers: float = 0.01, per_head: bool = False) -> list[HeadGroup]:
    """KVQuant nuq-`bits` with `outliers` sparse per token (the paper's 1%, key budget 2x as calibrated by default) on
    every head: random sorted signposts and thresholds. `per_head`: outliers (and values' ranges) per token and head
    (key_vector=head, value_vector=head)."""
    params = {"outliers": outliers, "key_outlier_budget": 2.0}
    channels = HEAD_DIM if per_head else KV_HEADS * HEAD_DIM  # what the slots are a share of
    signposts = lambda: torch.randn(1 << bits).sort().values  # noqa: E731
    lower = -1 - torch.rand(KV_HEADS, HEAD_DIM)
    keys = NuqKeys(bits, Codebook(signposts()), lower, lower + 2, key_slots(params, channels), llama3_rotary(),
                   per_head)
    values = NuqValues(bits, Codebook(signposts()), value_slots(params, channels), per_head)
    return [HeadGroup(list(range(KV_HEADS)), keys, values)]


def cq_groups(width: int, bits: int = 8, residual: int = 128) -> list[HeadGroup]:
    """CQ on every head: `width` coupled channels per `bits`-bit code, keys coded before RoPE, a `residual`-token fp16
    window; random per-layer codebooks."""
    shape = (1, HEAD_DIM // width, 1 << bits, width)
    books = lambda: torch.randn(shape).half().float().expand(KV_HEADS, -1, -1, -1)  # noqa: E731
    keys = PreRopeKeys(books(), bits, residual, llama3_rotary())
    return [HeadGroup(list(range(KV_HEADS)), keys, CoupledCodec(books(), bits, residual))]


def qaq_groups(max_bits: int = 4) -> list[HeadGroup]:
    """QAQ on every head, a range and width per head (the default level), window 5, 1% outliers; widths up to
    `max_bits`, which random tokens take: keys by a tolerance too tight to narrow them at these contexts, values
    because no attention narrows them while filling (fill_layer encodes them as if none was seen)."""
    settings = dict(heads=KV_HEADS, window=5, min_bits=1, max_bits=max_bits, outliers=0.01, per_head=True)
    return [HeadGroup(list(range(KV_HEADS)), QaqKeys(1e-7, 1.0, **settings), QaqValues(1e-7, **settings))]


FORMATS = {
    "fp16-kernel": Format("fp16-kernel", lambda: [HeadGroup(list(range(KV_HEADS)), Fp16Codec(), Fp16Codec())]),
    "kivi4": Format("kivi4", lambda: kivi_groups(4)),
    "kivi2": Format("kivi2", lambda: kivi_groups(2)),
    "duo50+kivi2": Format("duo50+kivi2", lambda: kivi_groups(2, streaming=KV_HEADS // 2)),
    "million4": Format("million4", lambda: million_groups(2)),  # 4 bits per element: 2 channels per 8-bit index
    "million2": Format("million2", lambda: million_groups(4)),
    "kvquant3": Format("kvquant3", lambda: kvquant_groups(3)),  # nuq3, 1% outliers
    "kvquant2": Format("kvquant2", lambda: kvquant_groups(2)),
    "kvquant3-head": Format("kvquant3-head", lambda: kvquant_groups(3, per_head=True)),  # outliers per head
    "cq4": Format("cq4", lambda: cq_groups(2)),  # CQ-2c8b: 4 bits per element
    "cq2": Format("cq2", lambda: cq_groups(4)),  # CQ-4c8b
    "qaq4": Format("qaq4", lambda: qaq_groups(4)),  # QAQ's mixed-width bit planes, every token at 4 bits here
}


def make_layer(name: str, device: str | torch.device) -> CompressedLayer:
    """One layer of format `name`, its codecs' tensors (codebooks) made on `device`."""
    with torch.device(device):
        return CompressedLayer(FORMATS[name].groups(), KV_HEADS)


def fill_layer(layer: CompressedLayer, batch: int, context: int, device: str) -> None:
    """Append `context` random tokens through the cache's own encode path, as a chunked prefill would."""
    for lo in range(0, context, FILL_CHUNK):
        n = min(FILL_CHUNK, context - lo)
        keys = torch.randn(batch, KV_HEADS, n, HEAD_DIM, device=device, dtype=torch.float16)
        append_without_attention(layer, keys, torch.randn_like(keys))


def append_without_attention(layer: CompressedLayer, keys: torch.Tensor, values: torch.Tensor) -> None:
    """Append tokens and store them as the next decode step reads them, no attention run: codecs that encode after
    attention (QAQ's values) encode as if they had seen none."""
    layer.update(keys, values)
    for state in layer.groups:
        for stream in (state.keys, state.values):
            if stream.codec.encodes_after_attention:
                stream.encode_through(stream.length)
        state.settle()


@contextlib.contextmanager
def using_launch(spec: str):
    """The decode kernel with one launch shape while in the block: "auto" (decode.LAUNCH as it is), or a fast path
    (mma: scalar codes, mma_batched: scalar codes with many heads x sequences x positions, adc: codebook codes,
    bitplanes: QAQ's mixed widths, generic: the other layouts without a fast path) with launch fields in
    decode.Launch's order, the rest as they are: "mma:32/2/2/16" = block_n/num_warps/num_stages/programs_per_sm. A
    format or shape that takes another path runs as under "auto"."""
    from kvtool.runtime.kernels import decode

    path, _, shape = spec.partition(":")
    fields = [field.name for field in dataclasses.fields(decode.Launch)]
    numbers = shape.split("/") if shape else []
    if (spec != "auto" and (path not in decode.LAUNCH or not numbers)) or len(numbers) > len(fields) or not all(
            n.isdigit() and int(n) > 0 for n in numbers):
        raise KvtoolError(f"unknown launch '{spec}'; choose auto or PATH:{'/'.join(fields)} with PATH one of "
                          f"{', '.join(decode.LAUNCH)} (whole numbers, leading fields only)")
    saved = dict(decode.LAUNCH)
    if numbers:
        decode.LAUNCH[path] = dataclasses.replace(decode.LAUNCH[path], **{f: int(n) for f, n in zip(fields, numbers)})
    try:
        yield
    finally:
        decode.LAUNCH.update(saved)


def _label(name: str, spec: str) -> str:
    return name if spec == "auto" else f"{name} {spec}"


def _time_us(fn: Callable[[], object]) -> float:
    """Median microseconds per call, replayed from a CUDA graph (launch gaps out of the number)."""
    import triton.testing

    return triton.testing.do_bench_cudagraph(fn, rep=200, return_mode="median") * 1e3


def attention_bench(contexts: list[int], batches: list[int], formats: list[str], device: str = "cuda",
                    launches: tuple[str, ...] = ("auto",)) -> list[dict]:
    """Decode attention alone, one layer: each format's fused kernels (with each launch) against fp16 SDPA on the
    same shapes; for codecs that encode after attention (QAQ's values) without handing them the step's weights."""
    from torch.nn.functional import scaled_dot_product_attention

    rows, printed = [], 0
    scaling = HEAD_DIM**-0.5
    for batch in batches:
        for context in contexts:
            query = torch.randn(batch, Q_HEADS, 1, HEAD_DIM, device=device, dtype=torch.float16)
            try:
                keys = torch.randn(batch, KV_HEADS, context, HEAD_DIM, device=device, dtype=torch.float16)
                values = torch.randn_like(keys)
            except torch.OutOfMemoryError:
                break
            fp16_bytes = 2 * keys.numel() * keys.element_size()
            sdpa_us = _time_us(lambda: scaled_dot_product_attention(query, keys, values, scale=scaling,
                                                                      enable_gqa=True))
            rows.append(_row(SDPA, batch, context, sdpa_us, fp16_bytes, sdpa_us))
            del keys, values
            for name in formats:
                layer = make_layer(name, device)
                try:
                    fill_layer(layer, batch, context, device)
                except torch.OutOfMemoryError:
                    continue
                run = lambda: kernels.attend_decode(layer, query, None, scaling, None, observe=False)  # noqa: E731
                for spec in launches:
                    with using_launch(spec):
                        us = _time_us(run)
                    rows.append(_row(_label(name, spec), batch, context, us, layer.nbytes(), sdpa_us))
                del layer
            torch.cuda.empty_cache()
            printed = _print_rows(rows, printed)
    return rows


def _row(name: str, batch: int, context: int, us: float, nbytes: int, sdpa_us: float) -> dict:
    return {"format": name, "batch": batch, "context": context, "us": round(us, 2), "MB": round(nbytes / 1e6, 1),
            "TB/s": round(nbytes / us / 1e6, 2), "speedup_vs_sdpa": round(sdpa_us / us, 2)}


def _print_rows(rows: list[dict], printed: int) -> int:
    """Print the rows not printed yet (a header first); returns how many are printed now."""
    if rows and not printed:
        print(" | ".join(f"{k:>15}" for k in rows[0]), flush=True)
    for row in rows[printed:]:
        print(" | ".join(f"{str(v):>15}" for v in row.values()), flush=True)
    return len(rows)


# (batch, context): fast tiles fewer than the GPU's programs (decode.Launch.fast_min_tiles), more, and enough
# positions for decode.LAUNCH["mma_batched"]
CHECK_SHAPES = ((1, 3000), (2, 5000), (16, 16384))


def check_against_reference(formats: list[str], device: str = "cuda",
                            shapes: tuple[tuple[int, int], ...] = CHECK_SHAPES, launches: tuple[str, ...] = ("auto",)
                            ) -> dict:
    """At real shapes: the fused kernels (decode attention with each launch, quantize-on-append) vs the reference
    PyTorch path (attention and encode) on twin caches (max error / max |reference|), labelled "format [launch]
    batch x context"."""
    errors = {}
    for batch, context in shapes:
        for name in formats:
            twins = []
            for encode in (contextlib.nullcontext, kernels.pytorch_encode):
                torch.manual_seed(0)  # the same codebooks and tokens in both
                twins.append(make_layer(name, device))
                with encode():
                    fill_layer(twins[-1], batch, context, device)
            twins[1].fusable = False  # read by the reference path
            for spec in launches:
                worst = 0.0
                for _ in range(3):  # a few decode steps: appends, windows slide
                    keys = torch.randn(batch, KV_HEADS, 1, HEAD_DIM, device=device, dtype=torch.float16)
                    values = torch.randn_like(keys)
                    query = torch.randn(batch, Q_HEADS, 1, HEAD_DIM, device=device).half()
                    with using_launch(spec):
                        fused = twins[0].update(keys, values)[0].attend(query, None, HEAD_DIM**-0.5)
                    with kernels.pytorch_encode():
                        reference = twins[1].update(keys, values)[0].attend(query, None, HEAD_DIM**-0.5)
                    error = (fused.float() - reference.float()).abs().max() / reference.float().abs().max()
                    worst = max(worst, error.item())
                errors[f"{_label(name, spec)} {batch}x{context}"] = worst
            del twins
    return errors


def llama3_8b_random(device: str = "cuda"):
    """A Llama-3-8B-shaped model with random fp16 weights (no download); kvtool attention is switched on per cache."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=LAYERS,
                         num_attention_heads=Q_HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=1 << 23,
                         rope_theta=500000.0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=torch.float16)
    return model.eval().requires_grad_(False)


def _chunks(batch: int, context: int):
    """Fill chunks: smaller at large batch, so encode temporaries stay small next to a nearly full GPU."""
    chunk = max(256, FILL_CHUNK * 4 // max(batch, 1) // 256 * 256) if batch > 4 else FILL_CHUNK * 4
    for lo in range(0, context, chunk):
        yield min(chunk, context - lo)


def make_cache(model, kind: str, batch: int, context: int, steps: int):
    """A filled cache of `kind` (an HF cache name or a kvtool format) holding `context` random tokens per sequence."""
    from transformers import DynamicCache, QuantizedCache, StaticCache

    from kvtool.runtime.cache import use_kvtool_attention

    device = model.device
    if kind in FORMATS:
        use_kvtool_attention(model)
        cache = CompressedCache([make_layer(kind, device) for _ in range(LAYERS)])
        cache.reserve(context + steps)
    else:
        model.set_attn_implementation("sdpa")
        cache = {
            "HF DynamicCache": lambda: DynamicCache(config=model.config),
            "HF StaticCache": lambda: StaticCache(config=model.config, max_cache_len=context + steps),
            "HF quanto int4": lambda: QuantizedCache("quanto", model.config, nbits=4),
            "HF quanto int2": lambda: QuantizedCache("quanto", model.config, nbits=2),
        }[kind]()
    for n in _chunks(batch, context):
        for index in range(LAYERS):
            keys = torch.randn(batch, KV_HEADS, n, HEAD_DIM, device=device, dtype=torch.float16)
            if kind in FORMATS:
                append_without_attention(cache.layers[index], keys, torch.randn_like(keys))
            else:
                cache.update(keys, torch.randn_like(keys), index)
    return cache


def cache_bytes(cache) -> int:
    """Bytes a cache holds: kvtool's own count, or every tensor of every HF cache layer (quanto's unpacked too)."""
    if hasattr(cache, "nbytes"):
        return cache.nbytes()
    return sum(_tensor_bytes(value) for layer in cache.layers for value in vars(layer).values())


def _tensor_bytes(value) -> int:
    if type(value) is torch.Tensor:
        return value.numel() * value.element_size()
    if isinstance(value, torch.Tensor) and hasattr(value, "__tensor_flatten__"):  # quanto's packed tensor subclasses
        return sum(_tensor_bytes(getattr(value, name)) for name in value.__tensor_flatten__()[0])
    return 0


@torch.no_grad()
def decode_seconds(model, cache, batch: int, steps: int) -> float:
    """Seconds per decode step (greedy, batch of sequences), after as many untimed steps, so that the kernels the
    timed steps launch (key flushes, window drops, graph captures) are compiled before the clock starts (JIT compiles
    inside the timed steps had doubled duo50+kivi2's latency at 8K; the decode kernels now compile ahead the fast
    launch a growing context takes later). At batch 1 kvtool's caches replay CUDA graphs; larger batches step eagerly
    (GPU-bound, and a graph's room for its tails would take memory the batch needs)."""
    from kvtool.runtime.generate import decoder

    step = decoder(model, cache, graphs=batch == 1)
    ids = torch.randint(0, model.config.vocab_size, (batch, 1), device=model.device)
    for _ in range(steps):
        ids = step(ids).argmax(-1, keepdim=True)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        ids = step(ids).argmax(-1, keepdim=True)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def sequence_bytes(model, kind: str) -> Callable[[int], float]:
    """Cache bytes of one sequence as a function of its context, fitted on 4096 and 8192 tokens (windows, sinks and
    streaming heads make it affine, not proportional)."""
    held = []
    for tokens in (4096, 8192):
        cache = make_cache(model, kind, 1, tokens, 0)
        held.append(cache_bytes(cache))
        del cache
    per_token = (held[1] - held[0]) / 4096
    return lambda context: held[0] + per_token * (context - 4096)


def _out_of_memory(err: Exception) -> bool:
    """PyTorch's allocator, or the driver (a Triton launch loading its module), ran out of GPU memory."""
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err)


def _free_bytes(margin: float = 6 * 2**30) -> float:
    torch.cuda.empty_cache()
    return torch.cuda.mem_get_info()[0] - margin


HF_LATENCY = ["HF DynamicCache", "HF StaticCache", "HF quanto int4", "HF quanto int2"]
LONGEST_STEPS = 4  # the first untimed step runs eagerly, the second captures a graph: their compiles not timed
LATENCY_STEPS = 256  # two KIVI key flushes, so that eager steps and graph captures count as often as in generation
FAST_GRAPHS = 3  # CUDA graphs per process that replay faster than later ones (H200: docs/gpu-log.md)


def graphs_past_the_fast_ones() -> None:
    """Capture and replay FAST_GRAPHS one-kernel CUDA graphs, so that every latency row replays graphs made after
    them: on the H200 a process's first three graphs replayed batch-1 steps ~8% faster than any graph made later
    (one-kernel graphs count too), which favoured whichever kvtool format was timed first; a generation of more than
    ~770 steps replays such later graphs anyway."""
    counter = torch.zeros(1, device="cuda")
    for _ in range(FAST_GRAPHS):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            counter.add_(1)
        graph.replay()
    torch.cuda.synchronize()


def e2e_bench(contexts: list[int], formats: list[str], steps: int = 8, parts: tuple[str, ...] = ("e2e", "longest")
              ) -> dict:
    """"e2e": throughput at the largest batch per format, and "latency": batch-1 time per token vs HF caches;
    "longest": the longest context each format decodes at batch 1. fp16-kernel (fp16 through kvtool's cache) is
    timed for latency only: HF's StaticCache is the fp16 baseline of the others."""
    # cuDNN's SDPA failed on the H100 at batch 1, 32K with a boolean mask ("mha_graph.execute ... is_good()")
    torch.backends.cuda.enable_cudnn_sdp(False)
    model = llama3_8b_random()
    kinds = ["HF StaticCache", *(f for f in formats if f != "fp16-kernel")]
    if {"e2e", "longest"} & set(parts):
        seq_bytes = {kind: sequence_bytes(model, kind) for kind in kinds}
        print("cache bytes per token at 32K:", {k: round(f(32768) / 32768) for k, f in seq_bytes.items()}, flush=True)
    throughput, latency, longest = [], [], []
    for context in contexts if "e2e" in parts else []:
        for kind in kinds:
            batch = max(1, int(_free_bytes() / seq_bytes[kind](context + 2 * steps)))
            while True:
                row = _measure(model, kind, batch, context, steps)
                if "error" not in row or not row.pop("oom", False) or batch == 1:
                    break
                print("retrying smaller:", row, flush=True)  # what ran out of memory, for the record
                batch = int(batch * 0.9)
            throughput.append(row)
            print(row, flush=True)
    if "e2e" in parts or "latency" in parts:
        graphs_past_the_fast_ones()
    for context in contexts if "e2e" in parts or "latency" in parts else []:
        for kind in [*HF_LATENCY, *formats]:
            row = _measure(model, kind, 1, context, LATENCY_STEPS)
            row.pop("oom", None)
            latency.append(row)
            print(row, flush=True)
    for kind in kinds if "longest" in parts else []:
        tokens = int(_free_bytes(4 * 2**30) / seq_bytes[kind](1 << 20) * (1 << 20)) // 4096 * 4096
        while tokens > 0:
            row = _measure(model, kind, 1, tokens, LONGEST_STEPS)
            if "error" not in row:
                break
            print("retrying shorter:", row, flush=True)
            tokens = int(tokens * 0.95) // 4096 * 4096
        longest.append({"format": kind, "longest context decoded": tokens, **row})
        print(longest[-1], flush=True)
    return {"throughput": throughput, "latency": latency, "longest": longest}


def _measure(model, kind: str, batch: int, context: int, steps: int) -> dict:
    """Fill a cache and time decode steps; a failure (memory, a missing package) becomes the row's error."""
    row = {"format": kind, "context": context, "batch": batch}
    torch.cuda.empty_cache()  # cached blocks are invisible to the driver, which Triton's module loads draw on
    try:
        cache = make_cache(model, kind, batch, context, 2 * steps)
        seconds = decode_seconds(model, cache, batch, steps)
        row.update({"ms/step": round(seconds * 1e3, 2), "tokens/s": round(batch / seconds, 1),
                    "cache GiB": round(cache_bytes(cache) / 2**30, 3)})
    except Exception as err:  # noqa: BLE001  (reported in the table: OOM, quanto missing, backend failures)
        row.update({"error": f"{type(err).__name__}: {str(err).splitlines()[0][:120]}", "oom": _out_of_memory(err)})
    cache = None
    torch.cuda.empty_cache()
    return row


def plot(results: dict, path: Path) -> bool:
    """bench.png, a panel per part measured: attention time per step against context (one per batch), e2e
    throughput, batch-1 latency, the longest context. False, and nothing written, where no part has rows to draw
    (the check part alone)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attention, e2e = results.get("attention", []), results.get("e2e", {})
    batches = sorted({row["batch"] for row in attention})
    panels = [functools.partial(_attention_panel, attention, batch) for batch in batches]  # draw(ax) each
    widths = [7.0] * len(panels)  # room for the legend beside each
    for key, value, ylabel, title in [
            ("throughput", "tokens/s", "tokens/s (summed over the batch)", "end to end, largest batch that fits"),
            ("latency", "ms/step", "ms per token", "batch-1 latency"),
            ("longest", "longest context decoded", "tokens (log)", "longest context, batch 1")]:
        rows = [row for row in e2e.get(key, []) if value in row]  # rows that failed (out of memory say) left out
        if rows:
            panels.append(functools.partial(_bar_panel, rows, value, ylabel, title, log=key == "longest"))
            widths.append(max(5.5, 0.4 * len(rows)))  # room for a label per bar
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths), 4), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, draw in zip(axes[0], panels):
        draw(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _attention_panel(rows: list[dict], batch: int, ax) -> None:
    import matplotlib

    tab20 = matplotlib.colormaps["tab20"].colors
    colors = tab20[0::2] + tab20[1::2]  # the ten strong colours, then their light ones: 20 before one repeats
    for i, name in enumerate(dict.fromkeys(row["format"] for row in rows)):
        mine = [row for row in rows if row["format"] == name and row["batch"] == batch]
        style = (dict(color="black", linestyle="--", linewidth=2) if name == SDPA
                 else dict(color=colors[i % len(colors)], marker="os^vD<>p"[i % 8]))
        ax.plot([r["context"] for r in mine], [r["us"] for r in mine], label=name, **style)
    ax.set(xscale="log", yscale="log", xlabel="context (tokens)", ylabel="µs per decode step (one layer)",
           title=f"decode attention, batch {batch}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the panel: the lines stay visible


def _bar_panel(rows: list[dict], value: str, ylabel: str, title: str, ax, log: bool = False) -> None:
    labels = [f"{r['format']}\n{r['context'] // 1024}K, b={r['batch']}" for r in rows]
    ax.bar(range(len(rows)), [r[value] for r in rows],
           color=["gray" if r["format"] in HF_LATENCY else "tab:blue" for r in rows])  # HF's caches in gray
    ax.set_xticks(range(len(rows)), labels, fontsize=6, rotation=60)
    ax.set(ylabel=ylabel, title=title, yscale="log" if log else "linear")


def run_bench(out_dir: str | Path, contexts: list[int] | None = None, batches: list[int] | None = None,
              formats: list[str] | None = None, parts: tuple[str, ...] = ("attention", "e2e", "longest"),
              as_json: bool = False, e2e_contexts: tuple[int, ...] = (8192, 32768),
              launches: tuple[str, ...] = ("auto",)) -> dict:
    """Run the chosen parts, print tables, write bench.json and bench.png under `out_dir`; returns the results."""
    formats = formats or list(FORMATS)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise KvtoolError(f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    for spec in launches:  # a bad spec stops the run before any cache is filled
        with using_launch(spec):
            pass
    if not torch.cuda.is_available():
        raise KvtoolError("kvtool bench needs a CUDA GPU (the kernels it measures run only there)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    if "check" in parts:
        results["check"] = check_against_reference(formats, launches=launches)
        print("fused vs reference (max relative error):", results["check"], flush=True)
    if "attention" in parts:
        results["attention"] = attention_bench(contexts or [4096 << i for i in range(6)], batches or [1, 16], formats,
                                               launches=launches)
    if {"e2e", "latency", "longest"} & set(parts):
        results["e2e"] = e2e_bench(list(e2e_contexts), formats, parts=parts)
    (out / "bench.json").write_text(json.dumps(results, indent=1))
    plotted = plot(results, out / "bench.png")
    print(f"wrote {out / 'bench.json'}" + (f" and {out / 'bench.png'}" if plotted else ""), flush=True)
    if as_json:
        print(json.dumps(results))
    return results
