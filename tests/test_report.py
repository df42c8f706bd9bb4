"""`kvtool report` on tiny settings: one method, one short sequence, a short passkey, no peers."""

from __future__ import annotations

import json

from kvtool.peers import QuantizedCachePeer, held_bytes
from kvtool.report import ReportSettings, run_report


def test_report_writes_table_json_and_plots(tmp_path):
    out = tmp_path / "report"
    settings = ReportSettings(out_dir=out, sequences=1, seq_len=256, lengths=[256], depths=[0.5], methods=["kivi"],
                              peers=False)
    rows = run_report(settings, log=lambda line: None)
    names = [row.name for row in rows]
    assert names == ["fp16", "kivi(bits=4)", "kivi(bits=2)"]
    fp16, kivi4, kivi2 = rows
    assert fp16.ppl_change == 0 and fp16.bits_per_element == 16
    assert all(row.perplexity and row.perplexity < 100 and not row.note for row in rows)
    assert kivi2.bits_per_element < kivi4.bits_per_element < 16  # both keep a 128-token fp16 window of 256
    assert kivi2.ppl_change > kivi4.ppl_change
    assert set(kivi2.accuracy) == {"256@0.5"} and kivi2.cache_tokens == 256
    table = (out / "report.md").read_text()
    assert "| kivi(bits=2) | kvtool |" in table and "passkey 256@0.5" in table
    assert [row["name"] for row in json.loads((out / "report.json").read_text())["rows"]] == names
    for png in ("bits-vs-ppl.png", "passkey.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "artifacts").is_dir()


def test_quantized_cache_peer_measures_what_it_holds(model):
    """transformers' QuantizedCache (quanto, 2 bits): the bytes counted are its packed codes, scales and residual."""
    import torch

    from kvtool.runtime.generate import forward

    peer = QuantizedCachePeer("quanto", 2, 0)
    cache = peer.make_cache(model)
    with torch.no_grad():
        for lo in range(0, 256, peer.residual_length):
            forward(model, torch.arange(lo, lo + peer.residual_length)[None], cache)
    layer = cache.layers[0]
    assert layer.keys.numel() == 0  # the residual was flushed at 256 tokens
    # 2-bit codes plus one fp16 scale and shift per 64 elements: 2 + 32 / 64 = 2.5 bits per element
    assert abs(cache.compressed_bits_per_element() - 2.5) < 1e-6
    assert cache.nbytes() == held_bytes([[lay._quantized_keys, lay._quantized_values] for lay in cache.layers])
    assert cache.host_nbytes() == 0  # nothing beside the cache: kvtool eval reports 0 host bytes for it
