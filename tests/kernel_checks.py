"""Kernel checks run by tests/test_kernels.py in a subprocess with TRITON_INTERPRET=1 (Triton's CPU interpreter).

The quantize checks compare the quantize-on-append kernels' packed tensors with the codecs' PyTorch encode (KIVI,
KVQuant, QAQ). Each decode check builds the same cache twice from the same random tokens, attends one through the fused
kernel and one through the reference PyTorch path, and reports the largest relative error; scalar codes take the
mma path, codebook layouts the adc path, keys stored before RoPE (KVQuant, CQ) and mixed widths (QAQ) the generic
tiles. The graph checks emulate the replays of a captured decode step (runtime/graphs.py) against eager fused
steps. Run directly (optionally naming PARTS to run): prints JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import torch

from kvtool.bench import llama3_rotary
from kvtool.runtime import kernels
from kvtool.runtime.cache import CompressedCache, CompressedLayer
from kvtool.runtime.codec import Fp16Codec, HeadGroup
from kvtool.runtime.cq import CoupledCodec, PreRopeKeys
from kvtool.runtime.graphs import GraphStep, advance, counter_fields, moves_since, replayable_steps, window_fields
from kvtool.runtime.kernels import decode, quantize
from kvtool.runtime.kivi import KiviKeys, KiviValues
from kvtool.runtime.kvquant import Codebook, NuqKeys, NuqValues
from kvtool.runtime.million import MillionCodec
from kvtool.runtime.packing import pack_bits
from kvtool.runtime.qaq import QaqKeys, QaqValues
from kvtool.runtime.rope import rope_from

HEAD_DIM = 64


def kivi_group(heads, bits=2, group=32, residual=32, sink=0, recent=None) -> HeadGroup:
    return HeadGroup(heads, KiviKeys(bits, group, residual), KiviValues(bits, group, residual), sink, recent)


def random_books(heads, width, bits, seed) -> torch.Tensor:
    """Random per-head codebooks (fp16 values, as an artifact stores them), the same in both twin caches."""
    shape = (len(heads), HEAD_DIM // width, 1 << bits, width)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).half().float()


def million_group(heads, width=2, bits=8, residual=32, sink=0, recent=None) -> HeadGroup:
    return HeadGroup(heads, MillionCodec(random_books(heads, width, bits, 0), bits, residual),
                     MillionCodec(random_books(heads, width, bits, 1), bits, residual), sink, recent)


def cq_group(heads, width=2, bits=8, residual=32) -> HeadGroup:
    """CQ: keys coded before RoPE, values after."""
    return HeadGroup(heads, PreRopeKeys(random_books(heads, width, bits, 0), bits, residual, rotary_model()),
                     CoupledCodec(random_books(heads, width, bits, 1), bits, residual))


def rotary_model():
    """A Llama rotary embedding at this head size (SmolLM2's theta; llama3 scaling, so inv_freq is not the plain
    one)."""
    return llama3_rotary(HEAD_DIM, theta=100000.0, original_context=128)


def kvquant_codecs(bits, key_slots, value_slots, heads=2, per_head_vectors=False) -> tuple[NuqKeys, NuqValues]:
    """KVQuant codecs with random sorted signposts and thresholds; `per_head_vectors`: outliers (and the values'
    ranges) per head."""
    gen = torch.Generator().manual_seed(bits)
    signposts = lambda: torch.randn(1 << bits, generator=gen).sort().values  # noqa: E731
    lower = -1 - torch.rand(heads, HEAD_DIM, generator=gen)
    keys = NuqKeys(bits, Codebook(signposts(), 1.1, 0.05), lower, lower + 2.5, key_slots, rotary_model(),
                   per_head_vectors)
    return keys, NuqValues(bits, Codebook(signposts(), 0.9, -0.02), value_slots, per_head_vectors)


CASES = {
    "kivi2": lambda: [kivi_group([0, 1], bits=2)],
    "kivi4_group64_no_window": lambda: [kivi_group([0, 1], bits=4, group=64, residual=0)],
    "kivi8_group16_values4":  # several key groups per tile, several value groups per code plane
        lambda: [HeadGroup([0, 1], KiviKeys(8, 16, 32), KiviValues(4, 16, 32))],
    "kivi2_sinks_recent": lambda: [kivi_group([0, 1], bits=2, residual=32, sink=4, recent=150)],
    "fp16": lambda: [HeadGroup([0, 1], Fp16Codec(), Fp16Codec())],
    "duo_streaming_and_kivi": lambda: [kivi_group([1], bits=2), HeadGroup([0], Fp16Codec(), Fp16Codec(), 4, 40)],
}
PRE_ROPE_CASES = {  # keys stored before RoPE (generic tiles). KVQuant: nuq codes, sparse outliers; CQ: centroids
    "kvquant3_outliers_sinks": lambda: [HeadGroup([0, 1], *kvquant_codecs(3, 2, 4), sink=4)],
    "kvquant2_value_per_head_no_key_outliers":
        lambda: [HeadGroup([0, 1], *kvquant_codecs(2, 0, 2, per_head_vectors=True))],
    "kvquant3_outliers_per_head":  # a head compares its own slots only
        lambda: [HeadGroup([0, 1], *kvquant_codecs(3, 2, 2, per_head_vectors=True), sink=4)],
    "kvquant4_duo_split":  # a subset of the heads: thresholds sliced, outlier offsets within the subset
        lambda: [HeadGroup([1], *(c.for_heads([1]) for c in kvquant_codecs(4, 1, 2))),
                 HeadGroup([0], Fp16Codec(), Fp16Codec(), 4, 40)],
    "kvquant6_wide_codes": lambda: [HeadGroup([0, 1], *kvquant_codecs(6, 1, 1))],  # octets of 48 bits
    "kvquant3_sinks_window": lambda: [HeadGroup([0, 1], *kvquant_codecs(3, 2, 4), sink=4, recent=64)],
    "cq_2dims_8bits_window": lambda: [cq_group([0, 1])],
    "cq_4dims_4bits_no_window": lambda: [cq_group([0, 1], width=4, bits=4, residual=0)],
}


def qaq_group(heads, tolerance=(0.005, 0.05), min_bits=1, outliers=0.01, per_head=False, max_bits=8) -> HeadGroup:
    """QAQ: mixed widths, fp16 outliers, values encoded after the attention of their window; `per_head`: a range
    and width per head and token (the default level), else one for the group's heads."""
    settings = dict(heads=len(heads), window=5, min_bits=min_bits, max_bits=max_bits, outliers=outliers,
                    per_head=per_head)
    query_norm = [3.0, 1.0][: len(heads)] if per_head else 3.0
    return HeadGroup(heads, QaqKeys(tolerance[0], query_norm, **settings), QaqValues(tolerance[1], **settings))


MIXED_WIDTH_CASES = {  # QAQ bit planes (generic tiles): widths 2 to 8 (4) on these tokens, 0 and 1 in the narrow ones
    "qaq_layer_group": lambda: [qaq_group([0, 1])],
    "qaq_per_head_vectors": lambda: [qaq_group([1, 0], per_head=True, max_bits=4)],  # planes in a 32-bit word
    "qaq_head_groups_narrow_no_outliers":
        lambda: [qaq_group([0], (0.5, 5.0), min_bits=0, outliers=0.0), qaq_group([1], (0.5, 5.0), min_bits=0)],
}
ADC_CASES = {  # every key and value from codebooks: the adc path
    "million_2dims_8bits_window": lambda: [million_group([0, 1])],
    "million_4dims_4bits_sinks_recent": lambda: [million_group([0, 1], width=4, bits=4, sink=4, recent=150)],
}


def decode_error(case: str, padded: bool = False, softcap: float | None = None, prompt: int = 190,
                 steps: int = 5, offset: int = 0) -> float:
    """Largest |fused - reference| / max|reference| over decode steps after a chunked prompt; `offset` tokens
    appended before it (not attended: far positions for windowed groups)."""
    torch.manual_seed(hash(case) % 1000)
    batch, kv_heads, q_heads = 2, 2, 8
    total = prompt + steps
    q = torch.randn(batch, q_heads, total, HEAD_DIM)
    k, v = torch.randn(batch, kv_heads, total, HEAD_DIM), torch.randn(batch, kv_heads, total, HEAD_DIM) * 2 + 0.5
    mask = torch.ones(batch, 1, 1, total, dtype=torch.bool)
    if padded:
        mask[1, ..., :7] = False  # left padding of the second sequence
    cases = {**CASES, **ADC_CASES, **PRE_ROPE_CASES, **MIXED_WIDTH_CASES}
    fused, reference = (CompressedLayer(cases[case](), kv_heads) for _ in range(2))
    reference.fusable = False  # the reference path on CUDA too (the GPU runs these checks at HEAD_DIM 128)
    for lo in range(0, offset, 8192):
        far = torch.randn(2, batch, kv_heads, min(8192, offset - lo), HEAD_DIM).half()
        for layer in (fused, reference):
            layer.update(far[0], far[1])
    for layer in (fused, reference):
        for lo in range(0, prompt, 64):
            hi = min(lo + 64, prompt)
            layer.update(k[:, :, lo:hi].half(), v[:, :, lo:hi].half())
            layer.attend(q[:, :, lo:hi], None, 0.125)
    worst = 0.0
    for t in range(prompt, total):
        step_mask = mask[..., : t + 1] if padded else None
        for layer in (fused, reference):
            layer.update(k[:, :, t : t + 1].half(), v[:, :, t : t + 1].half())
        got = kernels.attend_decode(fused, q[:, :, t : t + 1].half(), step_mask, 0.125, softcap).float()
        want = reference.attend(q[:, :, t : t + 1].half(), step_mask, 0.125, softcap).float()
        worst = max(worst, ((got - want).abs().max() / want.abs().max()).item())
    return worst


def replay_error(case: str, prompt: int = 200, span: int = 4) -> float:
    """A decode step captured as graphs.py captures it, its replays emulated: the same Python step run again with
    the host counters put back to the captured step's and the device-side step count set to the replay's (so it
    issues the captured ops), the counters then moved as a replay moves them; flushes due run ahead of their
    replays as GraphedDecoder runs them. Largest |replayed - eager| / max|eager| against fused eager steps of a twin
    cache; 1.0 where the twins' tails or stores differ after."""
    torch.manual_seed(hash(case) % 1000)
    batch, kv_heads, q_heads = 2, 2, 8
    total = prompt + span
    q = torch.randn(batch, q_heads, total, HEAD_DIM).half()
    k, v = (torch.randn(batch, kv_heads, total, HEAD_DIM).half() for _ in range(2))
    groups = {**CASES, **PRE_ROPE_CASES, **ADC_CASES, **MIXED_WIDTH_CASES}[case]
    eager, graphed = (CompressedCache([CompressedLayer(groups(), kv_heads)]) for _ in range(2))
    for cache in (eager, graphed):
        cache.layers[0].update(k[:, :, :prompt], v[:, :, :prompt])
        cache.layers[0].attend(q[:, :, :prompt], None, 0.125)
        cache.layers[0].fusable = True
    graphed.encode_ahead()  # as GraphedDecoder does before a capture
    replays = replayable_steps(graphed, span)
    if replays.steps < span:
        return 1.0
    for stream in graphed.streams():
        stream.make_room(span)
    fields = counter_fields(graphed)
    read = fields + window_fields(graphed)  # every host integer the captured step read
    captured = [getattr(obj, name) for obj, name in read]
    state, step, moves, worst = captured, GraphStep(q.device, span, replays.flushes), None, 0.0
    for t in range(prompt, total):
        for (obj, name), value in zip(read, state):  # a flush due runs ahead of the replay, on the host state
            setattr(obj, name, value)
        graphed.encode_ahead()
        state = [getattr(obj, name) for obj, name in read]
        for (obj, name), value in zip(read, captured):
            setattr(obj, name, value)
        step.move_to(t - prompt)
        with graphed.graph_step(step):
            graphed.layers[0].update(k[:, :, t : t + 1], v[:, :, t : t + 1])
            mask = (torch.arange(total) <= t).expand(batch, total)  # what the captured step computes on the device
            got = kernels.attend_decode(graphed.layers[0], q[:, :, t : t + 1], mask[:, None, None], 0.125, None)
        if moves is None:  # what the captured step moved, as GraphedDecoder._capture records it
            moves = moves_since(fields, captured)
        for (obj, name), value in zip(read, state):  # the host state a replay finds, moved as a replay moves it
            setattr(obj, name, value)
        advance(graphed, moves)
        state = [getattr(obj, name) for obj, name in read]
        eager.layers[0].update(k[:, :, t : t + 1], v[:, :, t : t + 1])
        want = kernels.attend_decode(eager.layers[0], q[:, :, t : t + 1], None, 0.125, None).float()
        worst = max(worst, ((got.float() - want).abs().max() / want.abs().max()).item())
    for one, other in zip(eager.streams(), graphed.streams()):
        held = lambda s: [s.tail, *s.packed().values()]  # noqa: E731
        if any(not torch.equal(a, b) for a, b in zip(held(one), held(other))):
            return 1.0
    return worst


def packed_mismatch(got: list[dict], want: list[dict]) -> float:
    """Fraction of the elements of packed tensors `want` that `got` differs in; 1.0 if their names or shapes do."""
    if any(one.keys() != other.keys() or any(one[n].shape != other[n].shape for n in other)
           for one, other in zip(got, want)):
        return 1.0
    wrong = sum((one[n] != other[n]).sum().item() for one, other in zip(got, want) for n in other)
    return wrong / sum(t.numel() for packed in want for t in packed.values())


def quantize_mismatch(bits: int, channel_groups: bool) -> float:
    """Fraction of codes, scales and minima where the quantize kernel differs from packing.py's reference."""
    torch.manual_seed(bits)
    x = (torch.randn(2, 3, 64, HEAD_DIM) * 3).half()
    x[0, 0, :32] = x[0, 0, 0]  # a constant group: zero range, the 1e-6 scale floor
    if channel_groups:
        got = quantize.quantize_channel_groups(x, bits, 32)
        want = KiviKeys(bits, 32, 0).encode(x, 0)
    else:
        got = quantize.quantize_token_groups(x, bits, 16)
        want = KiviValues(bits, 16, 0).encode(x, 0)
    return packed_mismatch([got], [want])


NUQ_ENCODE_CASES = {  # bits, key and value slots per vector, heads (3: padded to 4 in the kernel), per-head vectors
    "3bits_outliers": (3, 2, 4, 2, False),
    "2bits_no_key_outliers_value_per_head": (2, 0, 2, 2, True),
    "4bits_three_heads": (4, 1, 2, 3, False),
    "8bits_no_value_outliers": (8, 3, 0, 2, False),
    "1bit_three_heads_per_head": (1, 2, 2, 3, True),
}


def nuq_encode_mismatch(bits: int, key_slots: int, value_slots: int, heads: int, per_head: bool) -> float:
    """Fraction of packed elements (codes, outliers, ranges) where KVQuant's encode kernel (as the codecs call it on
    CUDA) differs from their PyTorch path, keys (at positions 10..16) and values together; every token has equal
    largest elements (ties)."""
    keys, values = kvquant_codecs(bits, key_slots, value_slots, heads, per_head)
    torch.manual_seed(bits)
    x = (torch.randn(2, heads, 7, HEAD_DIM) * 2).half()
    x[..., ::16] = x.abs().amax(-1, keepdim=True) * 1.5  # equal largest elements: ties go lowest offset first
    got = [keys.encode_by_kernel(x, rope=rope_from(keys.model, 10, 7, x.device), midpoint=keys.midpoint,
                                 half_range=keys.half_range),
           values.encode_by_kernel(x)]
    return packed_mismatch(got, [keys.encode(x, 10), values.encode(x, 10)])


BITPLANE_CASES = {  # heads (3: padded to 4 in the kernel), tokens, batch, a vector per head, outliers, min and max
    # bits, key tolerance
    "layer_vectors": (2, 5, 2, False, 0.05, 1, 8, 0.005),  # 4 outliers a side: the top 4 of a head tie
    "three_heads_70_tokens": (3, 70, 1, False, 0.01, 0, 4, 0.005),  # a second block of tokens for the row sums
    "three_heads_per_head": (3, 7, 2, True, 0.1, 1, 8, 0.005),
    "per_head_no_outliers_wide_tolerance": (2, 3, 3, True, 0.0, 0, 8, 0.5),  # widths 0 to 3
}


def bitplane_mismatch(heads: int, tokens: int, batch: int, per_head: bool, outliers: float, min_bits: int,
                      max_bits: int, tolerance: float) -> float:
    """Fraction of packed elements (widths, ranges, outliers, code rows) where QAQ's encode kernels differ from its
    PyTorch path; every token has equal largest elements (ties) and its own scale, so widths vary."""
    from kvtool.runtime.qaq import SQRT12, outlier_counts

    codec = QaqKeys(tolerance, [3.0] * heads if per_head else 3.0, heads=heads, window=2, min_bits=min_bits,
                    max_bits=max_bits, outliers=outliers, per_head=per_head)
    torch.manual_seed(tokens)
    x = (torch.randn(batch, heads, tokens, HEAD_DIM) * torch.rand(1, 1, tokens, 1) * 4).half()
    x[..., ::16] = x.abs().amax(-1, keepdim=True)
    sigma = codec.sigma(5, tokens)
    want = codec.quantize(x, sigma)
    size = heads * HEAD_DIM // codec.vectors
    got = quantize.bitplane_quantize(x, SQRT12 * sigma.double(), codec.vectors, min_bits, max_bits,
                                     *outlier_counts(size, outliers))
    return packed_mismatch([got], [want])


CODEBOOK_ENCODE_CASES = {  # sub-vector width, index bits, tokens, codebooks shared by the heads (stride 0)
    "2dims_8bits_shared": (2, 8, 37, True),
    "4dims_8bits": (4, 8, 16, False),
    "2dims_4bits": (2, 4, 5, False),
    "8dims_8bits_shared": (8, 8, 21, True),
}


def codebook_encode_wrong(width: int, bits: int, tokens: int, shared: bool) -> float:
    """Fraction of sub-vectors where the codebook encode kernel (as MILLION's and CQ's codecs call it on CUDA) picks
    another centroid than their PyTorch path and one farther from the sub-vector (float64 distances; the two
    formulas round differently, so near-equal centroids may swap)."""
    books = random_books([0] if shared else [0, 1, 2], width, bits, seed=width + bits)
    codec = MillionCodec(books.expand(3, -1, -1, -1), bits, residual=0)
    x = (torch.randn(2, 3, tokens, HEAD_DIM, generator=torch.Generator().manual_seed(tokens)) * 2).half()
    want = codec.indices(codec.encode(x, 0))
    got = codec.indices({"codes": pack_bits(quantize.codebook_encode(x, codec.codebooks, codec.norms), bits)})
    sub = x.double().unflatten(-1, (HEAD_DIM // width, width))[..., None, :]  # [B, H, n, S, 1, c]
    distance = (sub - codec.codebooks.double()[None, :, None]).square().sum(-1)  # [B, H, n, S, K]
    picked = lambda index: distance.gather(-1, index[..., None])[..., 0]  # noqa: E731
    farther = picked(got) > picked(want) * (1 + 1e-5) + 1e-9
    return farther.double().mean().item()


def decode_errors() -> dict[str, float]:
    """Every decode check of scalar codes (the mma path)."""
    results = {f"decode/mma/{case}": decode_error(case) for case in CASES}
    results["decode/mma/kivi4_softcap"] = decode_error("kivi4_group64_no_window", softcap=5.0)
    # longer prompts: masked fast tiles in both splits; a window that has dropped key groups, next to a fast tile
    results["decode/mma/kivi2_left_padding"] = decode_error("kivi2", padded=True, prompt=330)
    results["decode/mma/kivi2_sinks_recent_long"] = decode_error("kivi2_sinks_recent", prompt=330)
    saved = dict(decode.LAUNCH)
    for path in ("mma", "mma_batched"):  # a tile spans 4 key groups, whichever launch the case takes
        decode.LAUNCH[path] = dataclasses.replace(saved[path], block_n=64, num_warps=1)
    results["decode/mma/kivi8_group16_values4_one_warp"] = decode_error("kivi8_group16_values4")
    decode.LAUNCH.update(saved)
    threshold, decode.BATCHED_MIN_TOKENS = decode.BATCHED_MIN_TOKENS, 1  # these shapes are too small to take it
    results["decode/mma/kivi2_sinks_recent_batched_launch"] = decode_error("kivi2_sinks_recent", prompt=330)
    decode.BATCHED_MIN_TOKENS = threshold
    block, decode.MERGE_PARTS = decode.MERGE_PARTS, 2  # the merge loops over the partials, rescaling as it goes
    results["decode/mma/kivi2_left_padding_merged_two_at_a_time"] = decode_error("kivi2", padded=True, prompt=330)
    decode.MERGE_PARTS = block
    return results


def adc_errors() -> dict[str, float]:
    """Codebook layouts through the adc path: MILLION's window and two splits; sinks, a sliding window, masks."""
    results = {f"decode/adc/{case}": decode_error(case) for case in ADC_CASES}
    results["decode/adc/million_left_padding_softcap"] = decode_error("million_2dims_8bits_window", padded=True,
                                                                      softcap=5.0, prompt=330)
    return results


def pre_rope_errors() -> dict[str, float]:
    """Keys rotated in the kernel. KVQuant: 2-4 and 6 bits, key and value outliers, per-head value vectors, fp16
    sinks, a Duo split, a window at positions past 131,072; CQ: 2 and 4 channels per code, with and without the fp16
    window; left padding with softcap."""
    results = {f"decode/prerope/{case}": decode_error(case) for case in PRE_ROPE_CASES}
    results["decode/prerope/kvquant3_left_padding_softcap"] = decode_error("kvquant3_outliers_sinks", padded=True,
                                                                          softcap=5.0, prompt=330)
    # the kernel sums angles from a split's first tile; the reference rounds position x inv_freq (docs/gpu-log.md)
    results["decode/prerope/kvquant3_window_at_131072"] = decode_error("kvquant3_sinks_window", offset=131072)
    return results


def mixed_width_errors() -> dict[str, float]:
    """QAQ: a group of two heads (outlier offsets across heads), the same with a range and width per head (the
    heads in reverse order) and groups of one (width 0 allowed); left padding with softcap. The values' widths
    follow the weights the fused path rebuilds from the kernel's log-sum-exp."""
    results = {f"decode/bitplanes/{case}": decode_error(case) for case in MIXED_WIDTH_CASES}
    results["decode/bitplanes/qaq_left_padding_softcap"] = decode_error("qaq_layer_group", padded=True, softcap=5.0)
    return results


def quantize_mismatches() -> dict[str, float]:
    """The quantize-on-append kernels: KIVI's min-max codes, KVQuant's nuq encode, QAQ's bit planes, the codebooks'
    nearest centroids."""
    results = {f"quantize/{kind}{bits}": quantize_mismatch(bits, kind == "keys") for kind in ("keys", "values")
               for bits in (2, 4, 8)}
    results.update({f"quantize/nuq_{case}": nuq_encode_mismatch(*settings)
                    for case, settings in NUQ_ENCODE_CASES.items()})
    results.update({f"quantize/bitplanes_{case}": bitplane_mismatch(*settings)
                    for case, settings in BITPLANE_CASES.items()})
    results.update({f"codebook_encode/{case}": codebook_encode_wrong(*settings)
                    for case, settings in CODEBOOK_ENCODE_CASES.items()})
    return results


def scalar_replay_errors() -> dict[str, float]:
    """Captured decode steps replayed: KIVI and fp16 stores, windows, Duo's streaming heads."""
    results = {f"graph/{case}": replay_error(case) for case in (
        "kivi8_group16_values4", "fp16", "duo_streaming_and_kivi")}
    # replays of the steps after 223 (227 with 4 sinks), the key flush before 224 (228) run between two of them
    results.update({f"graph/{case}_across_key_flush": replay_error(case, prompt=prompt, span=3)
                    for case, prompt in (("kivi2", 223), ("kivi2_sinks_recent", 227))})
    # replays of the steps at 214 .. 217, across the keys' window drop at 216
    results["graph/kivi2_sinks_recent_window_drop"] = replay_error("kivi2_sinks_recent", prompt=214)
    results["graph/kivi2_key_flush_ahead"] = replay_error("kivi2", prompt=224)  # 32 keys encoded before the step
    return results


def other_replay_errors() -> dict[str, float]:
    """Captured decode steps replayed: keys stored before RoPE, codebook codes, mixed widths."""
    results = {f"graph/{case}": replay_error(case) for case in (
        "kvquant3_outliers_sinks", "cq_2dims_8bits_window", "million_4dims_4bits_sinks_recent",
        "qaq_per_head_vectors")}
    # the step at 224, whose query reads the window 192 .. 223 compressed, captured after encoding it; and replays
    # of the steps after 223 with that window encoded between two of them
    results["graph/million_window_ahead"] = replay_error("million_2dims_8bits_window", prompt=224)
    results["graph/million_across_window_flush"] = replay_error("million_2dims_8bits_window", prompt=223, span=3)
    return results


PARTS = {"quantize": quantize_mismatches, "decode": decode_errors, "adc": adc_errors, "prerope": pre_rope_errors,
         "mixed": mixed_width_errors, "scalar_graph": scalar_replay_errors, "other_graph": other_replay_errors}

if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET") != "1":
        sys.exit("run with TRITON_INTERPRET=1")
    results = {}
    for part in sys.argv[1:] or PARTS:  # parts named on the command line, else all
        results.update(PARTS[part]())
    print(json.dumps(results))
