#!/bin/bash
# Device call 6 of the eighth session of 2026-12-02: outlier slots sorted by index (KVQuant, QAQ), a tile selecting
# only its head's run of them: the generic tiles timed against the kernel of be6059a (.g4/base.py, which reads the
# same sorted slots by comparing every one), then the check over every format. The change is sorted_slots.patch (on
# be6059a; not kept); base made by `git show be6059a:kvtool/runtime/kernels/decode.py > .g4/base.py`.
set -x
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD
python3 docs/gpu_runs/2026-12-02d/generic_sweep.py auto kvquant3,kvquant2,qaq4 1x32768,1x131072,16x32768 2>&1 \
  | tee $OUT/generic_sweep.log
python3 -c 'import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()' bench --part check \
  --out $OUT/check 2>&1 | tee $OUT/check_all.log
