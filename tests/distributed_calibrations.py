"""Started by tests/test_distributed.py under torchrun: every method of a JSON list calibrated on the CPU ranks
with one model load; rank 0 saves each artifact as OUT/<method>.safetensors, as `kvtool calibrate` does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kvtool.calibrate import calibrate, dist, launch
from kvtool.data import default_text
from kvtool.models import load_model


def main(out: Path, runs: dict, seed: int) -> None:
    with launch.ranks("cpu"):
        model, tokenizer = load_model(device="cpu")
        text = default_text("calibration")
        for method, settings in runs.items():
            artifact = calibrate(method, model, tokenizer, text, settings["params"], settings["samples"],
                                 settings["seq_len"], seed, progress=False)
            launch.wait_for_all_ranks()
            if dist.is_main():
                artifact.save(out / f"{method}.safetensors")


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]))
