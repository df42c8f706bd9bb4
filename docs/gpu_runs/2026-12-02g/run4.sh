#!/bin/bash
# Device call 8 of the seventh session of 2026-12-02: every bench format's fused kernels against the reference path
# after the session's changes (QAQ's own launch; the other formats' code unchanged).
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 -c 'import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()' bench --part check \
  --out $OUT/check 2>&1 | tee $OUT/check_all.log
