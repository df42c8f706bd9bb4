# Sourced by this folder's run scripts: the machine, then transformers 5.24 and quanto from the carried wheels (.g4/whl).
set -x
date -u
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD:$PWD/docs/gpu_runs  # docs/gpu_runs: shared helpers of run scripts
KVTOOL='import sys; from kvtool.cli import main; sys.argv=["kvtool", *sys.argv[1:]]; main()'
