"""The Duo tables of docs/methods/duo.md ("Third GPU run") from the kvtool eval --json files in this folder.

Each passkey file is one `kvtool eval --task passkey` process: fp16, then its -a row, then its -c row. The random
masks' seeds are not artifact parameters, so rows are named here by the command that made them (eval.sh).
"""
import json
from pathlib import Path

HERE = Path(__file__).parent
PASSKEY = {"pk1": ["A 50 %", "A 25 %"], "pk2": ["A 75 %", "random 75 % (seed 0)"], "pk3": ["B 50 %", "B 25 %"],
           "pk4": ["B 75 %", "first-layers 50 %"], "pk5": ["random 50 % (seed 0)", "random 50 % (seed 1)"],
           "pk6": ["random 50 % (seed 2)", "random 50 % (seed 3)"], "pk7": ["A 50 % + KIVI-2", "random 25 % (seed 0)"],
           "pk8": ["B 50 % + KIVI-2", "KIVI-2 alone"]}
PPL = {"ppl1": ["A 50 %", "A 25 %", "A 75 %", "B 50 %", "B 25 %", "B 75 %", "random 50 % (seed 0)",
                "random 50 % (seed 1)", "random 50 % (seed 2)", "random 50 % (seed 3)", "random 25 % (seed 0)",
                "random 75 % (seed 0)", "first-layers 50 %", "KIVI-2 alone", "CPU setting (64 steps) 50 %"],
       "ppl2": ["A 50 % + KIVI-2"], "ppl3": ["B 50 % + KIVI-2"]}
LENGTHS = ("2048", "4096", "8192")
ORDER = ["fp16", "A 25 %", "B 25 %", "random 25 % (seed 0)", "A 50 %", "B 50 %", "random 50 % (seed 0)",
         "random 50 % (seed 1)", "random 50 % (seed 2)", "random 50 % (seed 3)", "first-layers 50 %", "A 75 %", "B 75 %",
         "random 75 % (seed 0)", "A 50 % + KIVI-2", "B 50 % + KIVI-2", "KIVI-2 alone"]


def rows(files: dict) -> dict:
    named = {}
    for stem, labels in files.items():
        fp16, *rest = json.loads((HERE / f"{stem}.json").read_text())["rows"]
        named.setdefault("fp16", fp16)
        named.update(zip(labels, rest, strict=True))
    return named


passkey, ppl = rows(PASSKEY), rows(PPL)
fp16_bytes = passkey["fp16"]["cache_bytes"]["8192"]
print("| row | ppl (8 × 1024) | passkey 2K | 4K | 8K | mean (60) | bytes at 8K | vs fp16 |")
print("|---|---|---|---|---|---|---|---|")
for name in ORDER:
    row = passkey[name]
    acc = row["accuracy"]
    per_length = [sum(v for k, v in acc.items() if k.startswith(f"{n}@")) / sum(k.startswith(f"{n}@") for k in acc)
                  for n in LENGTHS]
    held = row["cache_bytes"]["8192"]
    print(f"| {name} | {ppl[name]['perplexity']:.3f} | " + " | ".join(f"{a:.2f}" for a in per_length)
          + f" | {sum(acc.values()) / len(acc):.3f} | {held:,} | {fp16_bytes / held:.2f}× |")
print(f"\nCPU-setting artifact (64 steps, prompts 1024-2048): ppl {ppl['CPU setting (64 steps) 50 %']['perplexity']:.3f}")
