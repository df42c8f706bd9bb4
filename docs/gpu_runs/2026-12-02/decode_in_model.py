"""Device-only: a SmolLM2-shaped model with random weights (float32, on CUDA) decoding through twin caches of the
same artifact, one read by the fused kernels and one by the reference path (`fusable = False`): per decode step the
largest logit difference and whether the greedy tokens agree. Artifacts are built, not calibrated (no faiss, no
weights on the device): QAQ with given tolerances, KIVI-2 for comparison.
  python3 docs/gpu_runs/2026-12-02/decode_in_model.py"""
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from kvtool import runtime
from kvtool.artifacts import Artifact
from kvtool.models import Layout, fingerprint
from kvtool.runtime.cache import use_kvtool_attention

torch.manual_seed(0)
model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(".bench/smollm2")).cuda().eval()
use_kvtool_attention(model)
layout = Layout.of(model)
ids = torch.randint(0, model.config.vocab_size, (2, 400), device="cuda")
ARTIFACTS = {
    "qaq (layer groups)": Artifact.build("qaq", {"level": "layer"}, fingerprint(model), {
        "tolerance": torch.tensor([0.002, 0.005]), "query_norm": torch.ones(layout.num_layers, 1)}),
    "qaq (head groups)": Artifact.build("qaq", {}, fingerprint(model), {
        "tolerance": torch.tensor([0.002, 0.005]), "query_norm": torch.ones(layout.num_layers, layout.num_kv_heads)}),
    "kivi2": Artifact.build("kivi", {"bits": 2, "residual": 32}, fingerprint(model)),
}
for name, artifact in ARTIFACTS.items():
    kv = runtime.load(artifact, model)
    fused, reference = kv.make_cache(model), kv.make_cache(model)
    for layer in reference.layers:
        layer.fusable = False
    worst, agree = 0.0, []
    with torch.no_grad():
        for cache in (fused, reference):
            model(ids[:, :300], past_key_values=cache)
        for t in range(300, 400):
            got, want = (model(ids[:, t : t + 1], past_key_values=cache).logits[:, -1] for cache in (fused, reference))
            worst = max(worst, ((got - want).abs().max() / want.abs().max()).item())
            agree.append((got.argmax(-1) == want.argmax(-1)).float().mean().item())
    print(f"{name}: 100 decode steps, batch 2: fused layers {sum(bool(l.fusable) for l in fused.layers)}/"
          f"{len(fused.layers)}; largest logit difference / largest logit {worst:.2e}; greedy tokens agree "
          f"{sum(agree) / len(agree):.3f}", flush=True)
    if name.startswith("qaq"):
        for kind in ("keys", "values"):
            widths = [torch.cat([getattr(g, kind).packed()["widths"][0, 0] for l in cache.layers for g in l.groups])
                      for cache in (fused, reference)]
            print(f"   {kind}: mean width {widths[0].float().mean():.3f}, widths equal in "
                  f"{(widths[0] == widths[1]).float().mean():.4f} of {widths[0].numel()} tokens x groups")
