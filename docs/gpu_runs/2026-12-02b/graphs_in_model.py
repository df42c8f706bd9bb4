"""Device-only: decode steps replayed from CUDA graphs (runtime/graphs.py) against eager steps, in a model: a
SmolLM2-shaped model with random float16 weights, twin KIVI-2 caches (R = 128, and R = 32 for more flushes; and
DuoAttention + KIVI-2 composed from artifacts: half the heads streaming, 64 sinks, a 256-token window; KVQuant-3,
keys encoded before RoPE at device-side positions, uncalibrated: uniform signposts), batch 2, a
300-token prompt, then 400 steps fed the eager twin's greedy tokens. Prints per artifact the largest logit
difference / largest logit, whether the greedy tokens agree, how many steps were replayed, and whether the twins'
caches hold the same tensors at the end.
  python3 docs/gpu_runs/2026-12-02b/graphs_in_model.py ["duo50+kivi2 window 256,..." (the artifacts to run)] [control]
(KVQuant-3 and `control` added on 2026-12-02, third session: docs/gpu_runs/2026-12-02c; QAQ, a range and width
per KV head, tolerances 0.05 / 0.5, query norms 1, in the sixth: docs/gpu_runs/2026-12-02f; so were MILLION, 2
channels per 8-bit code, one random codebook, R = 32, and CQ, 2 channels per 8-bit code, random per-layer and head
codebooks, no fp16 window.) With `control` the second
twin steps eagerly too, with the context split among twice the programs (launch mma:32/4/3/16): the differences
that another order of summing alone makes in this model, to hold the graphs' differences against."""
import contextlib
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from kvtool import runtime
from kvtool.artifacts import Artifact, schema_for
from kvtool.bench import using_launch
from kvtool.models import fingerprint
from kvtool.runtime import graphs
from kvtool.runtime.duo import binarize
from kvtool.runtime.generate import decoder, forward

torch.manual_seed(0)
config = AutoConfig.from_pretrained(".bench/smollm2")
model = AutoModelForCausalLM.from_config(config, dtype=torch.float16).cuda().eval()
ids = torch.randint(0, config.vocab_size, (2, 300), device="cuda")
replays = 0
replay = graphs.GraphedDecoder._replay


def counted_replay(self, *args):
    global replays
    replays += 1
    return replay(self, *args)


graphs.GraphedDecoder._replay = counted_replay
duo_params = schema_for("duo").resolve_params({"streaming_fraction": 0.5, "sink": 64, "recent": 256})
gates = torch.rand(config.num_hidden_layers, config.num_key_value_heads)
duo = Artifact.build("duo", duo_params, fingerprint(model),
                     {"head_map": gates, "retrieval": binarize(gates, duo_params)})
layers, heads, dim = config.num_hidden_layers, config.num_key_value_heads, config.head_dim
signposts = torch.linspace(-1, 1, 8).expand(layers, 8)
thresholds = 4 * torch.ones(layers, heads, dim)
kvquant = Artifact.build("kvquant", {"bits": 3}, fingerprint(model), {  # uniform signposts, identity Q-Norm
    "key_signposts": signposts.clone(), "value_signposts": signposts.clone(), "key_lower": -thresholds,
    "key_upper": thresholds, "qnorm": torch.tensor([1.0, 0.0]).expand(layers, 2, 2).clone()})
qaq = Artifact.build("qaq", {}, fingerprint(model), {"tolerance": torch.tensor([0.05, 0.5]),
                                                      "query_norm": torch.ones(layers, heads)})
def codebooks(layers: int, heads: int) -> dict:
    shape = (layers, heads, dim // 2, 256, 2)
    return {"key_codebooks": torch.randn(shape).half(), "value_codebooks": torch.randn(shape).half()}


million = Artifact.build("million", {"residual": 32}, fingerprint(model), codebooks(1, 1))
cq = Artifact.build("cq", {"channels_per_group": 2}, fingerprint(model), codebooks(layers, heads))
ARTIFACTS = {
    "kivi2 R=128": [Artifact.build("kivi", {"bits": 2}, fingerprint(model))],
    "kivi2 R=32": [Artifact.build("kivi", {"bits": 2, "residual": 32}, fingerprint(model))],
    "duo50+kivi2 window 256": [duo, Artifact.build("kivi", {"bits": 2}, fingerprint(model))],
    "kvquant3": [kvquant],
    "qaq": [qaq],
    "million2 R=32": [million],
    "cq4": [cq],
}
control = len(sys.argv) > 2 and sys.argv[2] == "control"
for name, artifacts in ARTIFACTS.items():
    if len(sys.argv) > 1 and name not in sys.argv[1].split(","):
        continue
    kv = runtime.load(artifacts, model)
    eager, graphed = kv.make_cache(model), kv.make_cache(model)
    replays, worst, agree = 0, 0.0, []
    with torch.no_grad():
        token = forward(model, ids, eager, logits_to_keep=1).logits[:, -1:].argmax(-1)
        forward(model, ids, graphed, logits_to_keep=1)
        eager_step, graphed_step = decoder(model, eager, graphs=False), decoder(model, graphed, graphs=not control)
        for _ in range(400):
            want = eager_step(token)
            with using_launch("mma:32/4/3/16") if control else contextlib.nullcontext():
                got = graphed_step(token)
            worst = max(worst, ((got.float() - want.float()).abs().max() / want.float().abs().max()).item())
            agree.append((got.argmax(-1) == want.argmax(-1)).float().mean().item())
            token = want.argmax(-1, keepdim=True)
    same = all(torch.equal(a, b) for one, other in zip(eager.streams(), graphed.streams())
               for a, b in zip([one.tail, *one.packed().values()], [other.tail, *other.packed().values()]))
    label = f"{name} (control: eager, twice the splits)" if control else name
    print(f"{label}: 400 steps, batch 2: replayed {replays}; largest logit difference / largest logit {worst:.2e}; "
          f"greedy tokens agree {sum(agree) / len(agree):.3f}; caches equal at the end: {same}", flush=True)
