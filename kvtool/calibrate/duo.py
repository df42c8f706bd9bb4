"""DuoAttention (arXiv 2410.10819): learn which KV heads need the whole context (retrieval heads) and which can keep
attention sinks plus a recent window (streaming heads).

As in the reference code (mit-han-lab/duo-attention, duo_attn/train.py): a gate α per KV head, initialised to 1 and
clamped to [0, 1], mixes each head's attention output (before the output projection) as
α · full attention + (1 − α) · streaming attention (sinks + recent window). The model is frozen. On synthetic
multi-passkey prompts, the loss is the mean squared difference of the final hidden states of the full-attention and
the mixed model over the question-and-answer tail, plus reg · mean |α|; AdamW with the reference's warm-up/decay.
The gates are then binarized: the lowest-gated heads become streaming heads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from kvtool.calibrate import CalibrationContext, Calibrator, dist, register_calibrator
from kvtool.calibrate.capture import input_device
from kvtool.errors import KvtoolError
from kvtool.models import Layout
from kvtool.runtime.duo import binarize

TRAINING_ATTENTION = "kvtool_duo_gates"

# The reference's synthetic task (duo_attn/data.py): passkeys of random NATO-alphabet words hidden in a long text.
NATO_WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa quebec "
    "romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
).split()
NEEDLE = "Remember this sequence of words, it's the {ordinal} passkey to the vault: "
QUESTION = "Based on the content of the book, what is the {ordinal} passkey to the vault?\nPasskey: "
BOOK_OPEN = "This is a very long story book: <book> "
BOOK_CLOSE = " </book>.\n\n"
SEPARATOR = "\n\n"
DEPTH_RANGE = (0.05, 0.95)  # needle depths, as in scripts/train.sh
DEPTH_INTERVALS = 1000
LENGTH_INTERVALS = 50  # context lengths spread evenly over [min_context, seq_len]


@dataclass
class PasskeySample:
    input_ids: torch.Tensor  # [T]
    supervised: torch.Tensor  # [T] bool: the question-and-answer tail


def passkey_sample(tokenizer, filler: torch.Tensor, length: int, params: dict, rng: random.Random) -> PasskeySample:
    """One multi-passkey prompt of about `length` tokens: filler with needles at sorted random depths, then every
    question followed by its answer. Supervised positions are the question-and-answer tail (the reference's labels)."""

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids

    count = params["num_passkeys"]
    keys = [encode(" ".join(rng.choice(NATO_WORDS) for _ in range(params["passkey_words"]))) for _ in range(count)]
    needles = [encode(NEEDLE.format(ordinal=ORDINALS[i])) + keys[i] for i in range(count)]
    tail = [token for i in range(count) for token in encode(QUESTION.format(ordinal=ORDINALS[i])) + keys[i]
            + encode(SEPARATOR)]
    separator, opening, closing = encode(SEPARATOR), encode(BOOK_OPEN), encode(BOOK_CLOSE)
    fixed = len(opening) + len(closing) + len(tail) + sum(len(n) + 2 * len(separator) for n in needles)
    if fixed + 64 > length:
        raise KvtoolError(f"{count} passkeys of {params['passkey_words']} words need more than {length} tokens; "
                          "raise --seq-len/min_context or lower num_passkeys/passkey_words")
    haystack = filler[: length - fixed].tolist()
    grid = torch.linspace(*DEPTH_RANGE, DEPTH_INTERVALS).tolist()
    depths = sorted(rng.sample(grid, count))
    context, last = list(opening), 0
    for depth, needle in zip(depths, needles):
        cut = int(len(haystack) * depth)
        context += haystack[last:cut] + separator + needle + separator
        last = cut
    context += haystack[last:] + closing
    ids = torch.tensor(context + tail)
    supervised = torch.zeros(len(ids), dtype=torch.bool)
    supervised[len(context):] = True
    return PasskeySample(ids, supervised)


def streaming_visibility(length: int, sink: int, recent: int, device) -> torch.Tensor:
    """[T, T] bool: query t sees key j iff j <= t and (j < sink or j > t - recent)."""
    rows = torch.arange(length, device=device)[:, None]
    cols = torch.arange(length, device=device)[None, :]
    return (cols <= rows) & ((cols < sink) | (cols > rows - recent))


class GatedAttention:
    """Training-time attention: per KV head, gate · full attention + (1 − gate) · streaming attention.

    With `mixing` off it is plain SDPA attention: the frozen full-attention reference pass.
    """

    def __init__(self, gates: torch.Tensor, sink: int, recent: int) -> None:
        self.gates, self.sink, self.recent = gates, sink, recent
        self.mixing = True

    def __call__(self, module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        full, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
        if not self.mixing:
            return full, None
        per_kv = query.shape[1] // key.shape[1]
        visible = streaming_visibility(query.shape[2], self.sink, self.recent, query.device)
        streaming = F.scaled_dot_product_attention(
            query, key.repeat_interleave(per_kv, 1), value.repeat_interleave(per_kv, 1), attn_mask=visible,
            scale=scaling,
        ).transpose(1, 2)
        gate = self.gates[module.layer_idx].clamp(0, 1).to(full).repeat_interleave(per_kv)[None, None, :, None]
        return gate * full + (1 - gate) * streaming, None


def warmup_decay(steps: int):
    """The reference's LR multiplier: linear warm-up over the first fifth of the steps, linear decay over the last
    fifth, never below 0.1."""
    ramp = max(steps // 5, 1)
    return lambda step: min(1.0, max((step + 1) / ramp, 0.1), max((steps - step) / ramp, 0.1))


def final_hidden(model, ids: torch.Tensor) -> torch.Tensor:
    """The decoder's final (normed) hidden states [1, T, hidden], without the LM head."""
    return model.base_model(input_ids=ids, use_cache=False).last_hidden_state


def gate_loss(model, attention: GatedAttention, sample: PasskeySample, reg_weight: float):
    """(distillation + reg · mean |α|, distillation) for one sample; the reference pass runs without gradients."""
    ids = sample.input_ids[None].to(input_device(model))
    with torch.no_grad():
        attention.mixing = False
        reference = final_hidden(model, ids)[0, sample.supervised]
    attention.mixing = True
    mixed = final_hidden(model, ids)[0, sample.supervised]
    distill = (reference.float() - mixed.float()).pow(2).mean(-1).mean()
    return distill + reg_weight * attention.gates.abs().mean(), distill


def optimize_gates(context: CalibrationContext, params: dict) -> torch.Tensor:
    """Train one gate per (layer, KV head) with the model frozen; returns float32 gates [layers, kv_heads] in [0, 1].

    Each step trains on `batch` prompts. Under torchrun the ranks share a step's prompts out and sum their gate
    gradients (data parallel, as the reference trains on 8 GPUs), so N ranks take the steps one process takes."""
    model, layout = context.model, Layout.of(context.model)
    if context.tokenizer is None:
        raise KvtoolError("duo calibration needs the model's tokenizer")
    device = input_device(model)
    gates = torch.ones(layout.num_layers, layout.num_kv_heads, device=device, requires_grad=True)
    attention = GatedAttention(gates, params["train_sink"], params["train_recent"])
    optimizer = torch.optim.AdamW([gates], lr=params["lr"], weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_decay(params["steps"]))
    max_len = max(len(s) for s in context.sequences)
    lengths = torch.linspace(min(params["min_context"], max_len), max_len, LENGTH_INTERVALS).int().tolist()
    AttentionInterface.register(TRAINING_ATTENTION, attention)
    AttentionMaskInterface.register(TRAINING_ATTENTION, sdpa_mask)
    previous = model.config._attn_implementation
    model.set_attn_implementation(TRAINING_ATTENTION)
    bar = tqdm(range(params["steps"]), desc="duo gates", disable=not context.progress)
    try:
        for step in bar:
            with torch.no_grad():
                gates.clamp_(0, 1)
            prompts = [step * params["batch"] + i for i in dist.shard(params["batch"])]  # this rank's share
            for index in prompts:
                rng = random.Random(f"{context.seed}:{index}")
                filler = context.sequences[index % len(context.sequences)]
                sample = passkey_sample(context.tokenizer, filler, rng.choice(lengths), params, rng)
                loss, distill = gate_loss(model, attention, sample, params["reg_weight"])
                (loss / params["batch"]).backward()
            if gates.grad is None:  # more ranks than prompts: none for this rank this step
                gates.grad = torch.zeros_like(gates)
            gates.grad = dist.reduce(gates.grad, "sum")
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if prompts:
                bar.set_postfix(len=len(sample.input_ids), distill=f"{distill.item():.4f}",
                                mean_gate=f"{gates.detach().clamp(0, 1).mean().item():.3f}")
    finally:
        model.set_attn_implementation(previous)
    return gates.detach().clamp(0, 1).float().cpu()


def baseline_gates(layout: Layout, kind: str, seed: int) -> torch.Tensor:
    """Scores that rank heads for the comparison masks: uniform random, or earlier layers first."""
    if kind == "random":
        return torch.rand(layout.num_layers, layout.num_kv_heads, generator=torch.Generator().manual_seed(seed))
    depth = 1 - torch.arange(layout.num_layers, dtype=torch.float32) / layout.num_layers
    return depth[:, None].expand(layout.num_layers, layout.num_kv_heads).contiguous()


def run(context: CalibrationContext, params: dict) -> dict[str, torch.Tensor]:
    if params["mask"] == "learned":
        gates = optimize_gates(context, params)
    else:
        gates = baseline_gates(Layout.of(context.model), params["mask"], context.seed)
    return {"head_map": gates, "retrieval": binarize(gates, params)}


# 16 filler windows of 1280 tokens: the prompts' haystacks (the reference: BookSum, prompts of 1K-32K tokens)
register_calibrator(Calibrator("duo", run=run, samples=16, seq_len=1280))
