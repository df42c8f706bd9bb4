#!/bin/bash
# Device call 5 of the sixth session of 2026-12-02: QAQ's tiles gathering a code's bits across planes with one
# multiply; attention and 32K latency.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 -c 'import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()' bench --part check \
  --part attention --formats qaq4 --contexts 32768,131072 --batches 1 --out $OUT/attention 2>&1 | tee $OUT/attention_qaq.log
python3 docs/gpu_runs/2026-12-02e/latency_rows.py "HF DynamicCache,qaq4" 32768 2>&1 | tee $OUT/latency_rows_qaq4_32k.log
