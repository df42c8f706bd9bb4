# Sourced by this folder's run scripts: 2026-12-02i's setup, then typer 0.29 and its dependencies from carried
# wheels (.g4/typer), since kvtool's CLI needs typer >= 0.28 (typer.exceptions) and the machine's may be older.
source docs/gpu_runs/2026-12-02i/setup.sh
pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .g4/typer/*.whl 2>&1 | tail -1
python3 -c "import torch, triton, transformers, typer; print(torch.__version__, triton.__version__, transformers.__version__, typer.__version__)"
