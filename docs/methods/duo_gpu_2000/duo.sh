# 2000-step gates (the paper's count) for three data seeds side by side (the part of duo.sh that ran)
set -x
export PYTHONPATH=/tmp/site:/tmp/w PYTHONUNBUFFERED=1
K="python3 -m kvtool.cli"; M=/tmp/g/SmolLM2-135M-Instruct.Q4_1.gguf; A=/tmp/w/a; O=/tmp/w/out
cd /tmp/w
date -u +%T
for s in 0 1 2; do
  $K calibrate --model $M --method duo --seq-len 8192 --param min_context=1024 --param steps=2000 \
     --streaming-fraction 0.5 --seed $s --out $A/duoC50_s$s.safetensors > $O/trainC_s$s.err 2>&1 &
done
wait
date -u +%T
# ...followed by what is now after.sh: this script was stopped while waiting (restart.sh) and after.sh ran it
