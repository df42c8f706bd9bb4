"""Summarize an Nsight Compute source page (`ncu --import R --page source --print-source sass --csv`, run3.sh):
the share of each stall reason over all samples, and the instructions with most samples of the leading reasons.
  python3 docs/gpu_runs/2026-12-03/stall_summary.py ncu_kvquant3_sass.csv"""
import csv
import sys

rows = list(csv.reader(open(sys.argv[1])))
header, data = rows[1], rows[2:]
column = {name: i for i, name in enumerate(header)}


def value(row, name):
    try:
        return float(row[column[name]].replace(",", ""))
    except ValueError:
        return 0.0


reasons = [name for name in header if name.startswith("stall_") and "Not Issued" not in name]
totals = {name: sum(value(row, name) for row in data) for name in reasons}
everything = sum(totals.values())
print(f"{len(data)} instructions, {everything:.0f} samples; share per reason:")
print({name[6:]: round(100 * n / everything, 1) for name, n in sorted(totals.items(), key=lambda kv: -kv[1])
       if n / everything > 0.01})
for name in sorted(totals, key=totals.get, reverse=True)[:4]:
    print(f"--- {name}: instructions with most samples")
    for row in sorted(data, key=lambda row: -value(row, name))[:6]:
        print(f"{value(row, name):8.0f}  {row[0][-5:]}  {row[1].strip()[:80]}")
