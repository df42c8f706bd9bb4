"""`kvtool report`: every method at its published operating points beside fp16 and the peers, in one table.

Rows: fp16; each operating point of each registered schema (calibrated here, or reused from `<out>/artifacts` when an
artifact for this model and calibration text is already there); transformers' QuantizedCache (quanto, HQQ); kvpress
presses (their own venv, run in parallel as a subprocess). Every row gets perplexity and its change vs fp16, passkey
accuracy per length@depth, bits per element held, cache bytes at the longest length and calibration time. Writes
`report.json`, `report.md` and PNG plots (matplotlib imported only here).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from kvtool import runtime
from kvtool.artifacts import SCHEMAS, Artifact, load_artifact, schema_for
from kvtool.data import evaluation_sequences, load_text, text_hash
from kvtool.errors import KvtoolError
from kvtool.eval import fp16_baseline, passkey, perplexity
from kvtool.models import ModelSource, fingerprint, load_model
from kvtool.runtime import fp16_bytes_per_token

KVTOOL_PROTOCOL = "chunked; every read compressed except the method's fp16 window (token-by-token exact)"


@dataclass
class Row:
    """One line of the report; `None` figures were not measured (the note says why)."""

    name: str
    source: str  # "kvtool" or the peer's package
    protocol: str
    perplexity: float | None = None
    ppl_change: float | None = None  # percent, against the fp16 perplexity measured under the same protocol
    bits_per_element: float | None = None  # everything the cache holds after a perplexity sequence, vs fp16
    accuracy: dict[str, float] = field(default_factory=dict)  # "length@depth" -> passkey accuracy
    cache_bytes: int | None = None  # after the longest passkey prompt (or the last perplexity sequence)
    cache_tokens: int | None = None
    calibration_seconds: float | None = None
    note: str = ""
    head_map: str = ""  # PNG of the artifact's head map, where it has one


@dataclass
class ReportSettings:
    model: str | None = None
    data: Path | None = None  # evaluation text (default: the evaluation split)
    calib_data: Path | None = None  # calibration text (default: the calibration split)
    out_dir: Path = Path("report")
    sequences: int = 4
    seq_len: int = 1024
    lengths: list[int] = field(default_factory=lambda: [2048, 4096])
    depths: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    trials: int = 1
    methods: list[str] | None = None  # None: every registered method with operating points
    peers: bool = True
    press_bits: list[float] = field(default_factory=lambda: [2.0])
    calib_samples: int | None = None
    calib_seq_len: int | None = None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def operating_points(methods: list[str] | None) -> list[tuple[str, dict]]:
    """(method, params) for every operating point of every registered schema (optionally only `methods`)."""
    schema_for("fp16")  # fills the registry
    if methods is not None:
        for name in methods:
            schema_for(name)  # unknown names: one-line error listing the known ones
    chosen = sorted(SCHEMAS) if methods is None else methods
    return [(name, dict(point)) for name in chosen for point in SCHEMAS[name].operating_points]


def artifact_for(method: str, params: dict, model, tokenizer, calib_text: str, settings: ReportSettings,
                 log: Callable[[str], None]) -> Artifact:
    """The method's artifact: reused from `<out>/artifacts` if it was made for this model and text, else calibrated."""
    from kvtool.calibrate import calibrate

    resolved = schema_for(method).resolve_params(params)
    path = settings.out_dir / "artifacts" / f"{slug(method + '-' + json.dumps(resolved, sort_keys=True))}.safetensors"
    if path.is_file():
        try:
            artifact = load_artifact(path, fingerprint(model))
            if artifact.calibration.get("data_sha256") in (None, text_hash(calib_text)):
                log(f"reusing {path}")
                return artifact
        except KvtoolError as err:
            log(f"not reusing {path}: {err}")
    artifact = calibrate(method, model, tokenizer, calib_text, params, settings.calib_samples, settings.calib_seq_len,
                         progress=False)
    artifact.save(path)
    return artifact


def measure(row: Row, model, tokenizer, kv, sequences, settings: ReportSettings, chunk: int | None = None) -> Row:
    """Perplexity and passkey of any cache maker (kvtool's CompressedKV or a peer adapter) into `row`."""
    ppl = perplexity(model, sequences, kv, progress=False, **({"chunk": chunk} if chunk else {}))
    row.perplexity, row.bits_per_element = ppl.perplexity, ppl.bits_per_element
    row.cache_bytes, row.cache_tokens = ppl.cache_bytes, ppl.cache_tokens
    if settings.lengths:
        result = passkey(model, tokenizer, kv, settings.lengths, settings.depths, settings.trials, progress=False)
        row.accuracy = result.accuracy
        longest = max(settings.lengths)
        row.cache_bytes, row.cache_tokens = result.cache_bytes[str(longest)], longest
    return row


def kvpress_rows(result: dict) -> list[Row]:
    """Rows from the kvpress runner's JSON; the change is against its own fp16 run under the press protocol."""
    protocol = "one-pass prefill of 3/4 then pressed; last 1/4 scored (ppl); question after the press (passkey)"
    if "error" in result:
        return [Row("kvpress presses", "kvpress", protocol, note=result["error"])]
    reference = result["reference"]
    rows = [Row(reference["name"], "kvpress", protocol, perplexity=reference["perplexity"], ppl_change=0.0,
                bits_per_element=reference["bits_per_element"], accuracy=reference.get("accuracy", {}))]
    for peer in result["rows"]:
        row = Row(peer["name"], "kvpress", protocol, perplexity=peer["perplexity"],
                  ppl_change=100 * (peer["perplexity"] / reference["perplexity"] - 1),
                  bits_per_element=peer["bits_per_element"], accuracy=peer.get("accuracy", {}),
                  note=f"kvpress {result['versions']['kvpress']}, transformers {result['versions']['transformers']}")
        rows.append(row)
    for row, source in zip(rows, [reference, *result["rows"]]):
        if source.get("cache_bytes"):
            longest = max(source["cache_bytes"], key=int)
            row.cache_bytes, row.cache_tokens = source["cache_bytes"][longest], int(longest)
    return rows


def run_report(settings: ReportSettings, log: Callable[[str], None] = print) -> list[Row]:
    """Measure every row, write report.json, report.md and the plots into `settings.out_dir`; returns the rows."""
    from kvtool import peers

    points = operating_points(settings.methods)  # refuse unknown names before loading anything
    eval_text = load_text(settings.data, "evaluation")
    calib_text = load_text(settings.calib_data, "calibration")
    if text_hash(eval_text) == text_hash(calib_text):
        raise KvtoolError("the evaluation and calibration texts are the same: pass a disjoint --calib-data")
    if not settings.out_dir.parent.is_dir():
        raise KvtoolError(f"cannot write into {settings.out_dir}: its parent folder does not exist")
    model, tokenizer = load_model(settings.model)
    context = model.config.get_text_config().max_position_embeddings
    if max([settings.seq_len, *settings.lengths]) > context:
        raise KvtoolError(f"--seq-len and --lengths must not exceed the model's {context}-token context")
    sequences = evaluation_sequences(tokenizer, eval_text, settings.seq_len, settings.sequences)
    (settings.out_dir / "artifacts").mkdir(parents=True, exist_ok=True)

    kvpress_job = None
    if settings.peers:
        kvpress_json = settings.out_dir / "kvpress.json"
        try:
            kvpress_job = peers.start_kvpress(
                ModelSource.resolve(settings.model).hf_folder(), settings.data, kvpress_json, settings.seq_len,
                settings.sequences, settings.lengths, settings.depths, settings.trials, settings.press_bits)
            log("kvpress presses started in .venv-kvpress (in parallel)")
        except KvtoolError as err:
            kvpress_job = err

    def timed(row: Row, work: Callable[[], Row]) -> Row:
        started = time.perf_counter()
        try:
            work()
        except Exception as err:  # one failing row is reported as such; the others still get measured
            row.note = f"failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        log(f"{row.name}: ppl {row.perplexity}, {row.bits_per_element} bits/elem, {row.note or 'ok'} "
            f"({time.perf_counter() - started:.0f} s)")
        return row

    fp16 = Row("fp16", "kvtool", KVTOOL_PROTOCOL)
    rows = [timed(fp16, lambda: measure(fp16, model, tokenizer, fp16_baseline(model), sequences, settings))]
    for method, params in points:
        row = Row(f"{method}({','.join(f'{k}={v}' for k, v in params.items())})", "kvtool", KVTOOL_PROTOCOL)

        def work(row=row, method=method, params=params) -> Row:
            artifact = artifact_for(method, params, model, tokenizer, calib_text, settings, log)
            row.calibration_seconds = artifact.calibration.get("seconds")
            if "head_map" in artifact.tensors:
                from kvtool.plots import save_head_map

                row.head_map = save_head_map(artifact, settings.out_dir / f"headmap-{slug(row.name)}.png").name
            return measure(row, model, tokenizer, runtime.load(artifact, model), sequences, settings)

        rows.append(timed(row, work))
    if settings.peers:
        for peer in peers.quantized_cache_peers():
            row = Row(peer.name, "transformers QuantizedCache",
                      f"chunks of {peer.residual_length} (= token-by-token reads; first chunk reads itself fp16)")
            if peer.unavailable():
                row.note = peer.unavailable()
                rows.append(row)
                continue
            rows.append(timed(row, lambda row=row, peer=peer: measure(
                row, model, tokenizer, peer, sequences, settings, chunk=peer.residual_length)))
        if isinstance(kvpress_job, KvtoolError):
            rows.append(Row("kvpress presses", "kvpress", "", note=str(kvpress_job)))
        elif kvpress_job is not None:
            log("waiting for the kvpress presses")
            rows += kvpress_rows(peers.finish_kvpress(kvpress_job, settings.out_dir / "kvpress.json"))

    base = rows[0].perplexity
    for row in rows:
        if row.source != "kvpress" and row.perplexity is not None and base:
            row.ppl_change = 100 * (row.perplexity / base - 1)
    write_outputs(rows, settings, fp16_bytes_per_token(model))
    return rows


def _cells(rows: list[Row]) -> list[str]:
    """Every length@depth passkey cell measured by any row, in order of appearance."""
    return list(dict.fromkeys(cell for row in rows for cell in row.accuracy))


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown_table(rows: list[Row]) -> str:
    cells = _cells(rows)
    header = ["cache", "source", "ppl", "vs fp16", "bits/elem", *[f"passkey {c}" for c in cells],
              "cache MiB @ tokens", "calib s", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        held = f"{row.cache_bytes / 2**20:.2f} @ {row.cache_tokens}" if row.cache_bytes else "-"
        change = "-" if row.ppl_change is None else f"{row.ppl_change:+.1f}%"
        accuracy = [_number(row.accuracy.get(c), ".2f") for c in cells]
        lines.append("| " + " | ".join([row.name, row.source, _number(row.perplexity, ".3f"), change,
                                        _number(row.bits_per_element, ".2f"), *accuracy, held,
                                        _number(row.calibration_seconds, ".1f"), row.note]) + " |")
    return "\n".join(lines)


def write_outputs(rows: list[Row], settings: ReportSettings, fp16_bytes_per_token: int) -> None:
    """report.json, report.md and the PNGs."""
    out = settings.out_dir
    plots = [plot_bits_vs_ppl(rows, out / "bits-vs-ppl.png")]
    if any(row.accuracy for row in rows):
        plots.append(plot_passkey(rows, out / "passkey.png"))
    plots += [out / row.head_map for row in rows if row.head_map]
    protocols = dict.fromkeys(f"- {row.source}: {row.protocol}" for row in rows if row.protocol)
    text = "\n".join([
        "# kvtool report",
        "",
        f"Model: {settings.model or 'embedded SmolLM2-135M-Instruct'}; evaluation text: "
        f"{settings.data or 'default evaluation split'}; perplexity over {settings.sequences} x {settings.seq_len} "
        f"tokens; passkey at lengths {settings.lengths} x depths {settings.depths}, {settings.trials} trial(s); "
        f"fp16 cache: {fp16_bytes_per_token:,} bytes per token.",
        "",
        markdown_table(rows),
        "",
        "Protocols (perplexity change is against fp16 measured under the same protocol):",
        *protocols,
        "",
        "Plots: " + ", ".join(f"[{p.name}]({p.name})" for p in plots),
        "",
    ])
    (out / "report.md").write_text(text)
    (out / "report.json").write_text(json.dumps({"settings": {k: str(v) for k, v in asdict(settings).items()},
                                                 "rows": [asdict(row) for row in rows]}, indent=1))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    return plt


MARKERS = {"kvtool": "o", "transformers QuantizedCache": "X", "kvpress": "^"}


def plot_bits_vs_ppl(rows: list[Row], path: Path) -> Path:
    """Bits per element held against perplexity change, one point per row; peers with their own markers."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(11, 7))
    for source, marker in MARKERS.items():
        points = [r for r in rows if r.source == source and r.bits_per_element is not None and r.ppl_change is not None]
        if not points:
            continue
        axes.scatter([r.bits_per_element for r in points], [r.ppl_change for r in points], marker=marker, s=70,
                     label=source, alpha=0.8)
        for index, r in enumerate(points):  # kvtool labels above, peers' below in two rows: fewer overlaps
            offset = 4 if source == "kvtool" else -10 - 9 * (index % 2)
            short = re.sub(r"\w+=", "", r.name)  # "cq(channels_per_group=4,bits=8)" -> "cq(4,8)": the table has the names
            axes.annotate(short, (r.bits_per_element, r.ppl_change), fontsize=7, textcoords="offset points",
                          xytext=(5, offset))
    axes.set_yscale("symlog", linthresh=1.0)
    axes.set_xlabel("bits per element held (everything the cache holds, vs 16 for fp16)")
    axes.set_ylabel("perplexity change vs fp16 (%, symlog)")
    axes.set_title("Quality against memory (lower left is better)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_passkey(rows: list[Row], path: Path) -> Path:
    """One heatmap per row: passkey accuracy by prompt length (down) and needle depth (across)."""
    plt = _pyplot()
    measured = [row for row in rows if row.accuracy]
    columns = min(4, len(measured))
    lines = -(-len(measured) // columns)
    figure, grid = plt.subplots(lines, columns, figsize=(3.2 * columns, 2.4 * lines), squeeze=False)
    for axes in grid.flat[len(measured):]:
        axes.axis("off")
    for axes, row in zip(grid.flat, measured):
        lengths = sorted({int(cell.split("@")[0]) for cell in row.accuracy})
        depths = sorted({float(cell.split("@")[1]) for cell in row.accuracy})
        values = [[row.accuracy.get(f"{n}@{d:g}", float("nan")) for d in depths] for n in lengths]
        axes.imshow(values, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
        for i, line in enumerate(values):
            for j, value in enumerate(line):
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8)
        axes.set_xticks(range(len(depths)), [f"{d:g}" for d in depths], fontsize=7)
        axes.set_yticks(range(len(lengths)), [str(n) for n in lengths], fontsize=7)
        axes.set_title(row.name, fontsize=8)
        axes.set_xlabel("needle depth", fontsize=7)
        axes.set_ylabel("tokens", fontsize=7)
    figure.suptitle("Passkey retrieval accuracy (green = retrieved)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
