#!/bin/bash
# Device call 7 of the eighth session of 2026-12-02: the session's final code (sorted slots reverted), the check over
# every format.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 -c 'import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()' bench --part check \
  --out $OUT/check 2>&1 | tee $OUT/check_all.log
