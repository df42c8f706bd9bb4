"""Which KV heads attend to the needle (docs/methods/duo.md): per KV head, the attention mass from the last token of
the evaluation's passkey prompt to the key's tokens (max over the head's query heads, mean over 10 depths), on the
CPU in float32 with eager attention; then how much of it each 50 % mask keeps on its retrieval heads, and how that
compares with 10,000 random 50 % masks.

    .venv/bin/python docs/methods/duo_gpu_1200/needle_heads.py 2048,4096
"""
import random
import sys

import torch

from kvtool.artifacts import load_artifact
from kvtool.calibrate.duo import baseline_gates
from kvtool.data import passkey_prompt, tokenize
from kvtool.models import Layout, load_model
from kvtool.runtime.duo import binarize

HERE = "docs/methods/duo_gpu_1200"
DEPTHS = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]

model, tokenizer = load_model()
model.set_attn_implementation("eager")  # the attention weights are returned, and hooked here
layout = Layout.of(model)
per_kv = layout.num_heads // layout.num_kv_heads
last_rows = {}
for i, layer in enumerate(model.model.layers):
    layer.self_attn.register_forward_hook(lambda module, args, out, i=i: last_rows.__setitem__(i, out[1][0, :, -1]))


def needle_mass(length: int, rng: random.Random) -> torch.Tensor:
    """[layers, kv heads] mean attention mass on the key's tokens, over DEPTHS."""
    total = torch.zeros(layout.num_layers, layout.num_kv_heads)
    for depth in DEPTHS:
        prompt = passkey_prompt(tokenizer, length, depth, rng)
        ids, key = prompt.input_ids[0].tolist(), tokenize(tokenizer, " " + prompt.key).tolist()
        where = [j + k for j in range(len(ids) - len(key)) if ids[j:j + len(key)] == key for k in range(len(key))]
        with torch.no_grad():
            model(prompt.input_ids)
        for i in range(layout.num_layers):
            total[i] += last_rows[i][:, where].sum(-1).reshape(layout.num_kv_heads, per_kv).amax(-1)
    return total / len(DEPTHS)


masks = {f"learned {name} 50%": load_artifact(f"{HERE}/duo{name}50.safetensors").tensors["retrieval"] for name in "AB"}
masks["learned E 50%"] = load_artifact("docs/methods/duo_gpu_2000/duoE50.safetensors").tensors["retrieval"]
DRAWS = 10000  # random 50 % masks for the distribution of the mass they keep
draws = torch.stack([binarize(baseline_gates(layout, "random", seed), {"binarize": "fraction", "streaming_fraction": 0.5})
                     for seed in range(DRAWS)])
masks.update({f"random s{seed} 50%": draws[seed] for seed in range(4)})  # the evaluated random masks
rng = random.Random(0)
for length in map(int, sys.argv[1].split(",")):
    mass = needle_mass(length, rng)
    top = mass.flatten().argsort(descending=True)[:10]
    heads = [divmod(int(j), layout.num_kv_heads) for j in top]
    print(f"\n{length}: top-10 needle heads (layer, kv head, mass):",
          [(*h, round(float(mass[h]), 3)) for h in heads])
    for name, retrieval in masks.items():
        streamed = [h for h in heads if not retrieval[h]]
        print(f"  {name:16s} needle mass on retrieval heads {mass[retrieval].sum() / mass.sum():.3f}; "
              f"top-10 heads made streaming: {streamed}")
    kept = (draws * mass).sum((1, 2)) / mass.sum()
    print(f"  {DRAWS} random 50% masks: mass kept median {kept.median():.3f}, 90th percentile {kept.quantile(0.9):.3f};"
          f" share keeping the top head {draws[:, heads[0][0], heads[0][1]].float().mean():.3f}")
    for name, retrieval in masks.items():
        share = (kept >= mass[retrieval].sum() / mass.sum()).float().mean()
        print(f"  share of the random masks keeping at least as much as {name}: {share:.4f}")
