"""Draw call 1's measured attention rows (bench.json) with the current `kvtool.bench.plot` into docs/ (the run's own
bench.png has the colours of before: a format shared its colour with another)."""

import json
from pathlib import Path

from kvtool.bench import plot

here = Path(__file__).parent
plot(json.loads((here / "call1/attention/bench.json").read_text()), here.parents[1] / "gpu_attention_h200.png")
