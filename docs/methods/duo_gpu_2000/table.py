"""The figures of docs/methods/duo.md "Fourth GPU run" from the files in this folder and duo_gpu_1200/."""
import json
from pathlib import Path

from kvtool.artifacts import load_artifact

HERE = Path(__file__).parent
MASKS = {"C seed 0": "duoC50_s0", "C seed 1": "duoC50_s1", "C seed 2": "duoC50_s2", "E (mean of C)": "duoE50",
         "B (1200 steps)": "../duo_gpu_1200/duoB50", "A (1200 steps)": "../duo_gpu_1200/duoA50",
         "random seed 0": "random50_s0"}
retrieval = {name: load_artifact(HERE / f"{stem}.safetensors").tensors["retrieval"] for name, stem in MASKS.items()}
print("| 50 % mask | " + " | ".join(retrieval) + " |")
print("|---" * (len(retrieval) + 1) + "|")
for name, mask in retrieval.items():
    print(f"| {name} | " + " | ".join(str(int((mask & other).sum())) for other in retrieval.values()) + " |")

print("\n| row | ppl (8 × 1024) |\n|---|---|")
ppl = json.loads((HERE / "ppl1.json").read_text())["rows"] + json.loads((HERE / "ppl2.json").read_text())["rows"][1:]
for label, row in zip(["fp16", "C seed 0", "C seed 1", "C seed 2", "E 50 %", "E 25 %", "E 75 %", "E 50 % + KIVI-2"], ppl,
                      strict=True):
    print(f"| {label} | {row['perplexity']:.3f} |")

print("\n| row (37 depths × 1 key per length) | 2K | 4K | 8K | all |\n|---|---|---|---|---|")
for label, row in zip(["fp16", "random 50 % (seed 3)", "first-layers 50 %"],
                      json.loads((HERE / "pk5.json").read_text())["rows"], strict=True):
    hits = {n: sum(v for k, v in row["accuracy"].items() if k.startswith(f"{n}@")) for n in (2048, 4096, 8192)}
    print(f"| {label} | " + " | ".join(f"{h:.0f}/37" for h in hits.values()) + f" | {sum(hits.values()):.0f}/111 |")
