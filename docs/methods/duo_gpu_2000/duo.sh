# 2000-step gates (the paper's count) for three data seeds side by side, their mean, then passkey/ppl evals
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
python3 mean_gates.py $A/duoE50.safetensors $A/duoC50_s0.safetensors $A/duoC50_s1.safetensors $A/duoC50_s2.safetensors
python3 derive.py $A/duoE50.safetensors
for f in C50_s0 C50_s1 C50_s2 E50; do $K inspect $A/duo$f.safetensors > $O/inspect_$f.txt; done
cp $A/duoC50_s*.safetensors $A/duoE*.safetensors $O/
DEPTHS=$(python3 -c "print(','.join(f'{0.05 + 0.025 * i:g}' for i in range(37)))")
P="$K eval --model $M --task passkey --lengths 2048,4096,8192 --depths $DEPTHS --trials 1 --json"
run() { name=$1; shift; "$@" > $O/$name.json 2> $O/$name.err & }
run pk1 $P -a $A/duoC50_s0.safetensors -c $A/duoC50_s1.safetensors
run pk2 $P -a $A/duoC50_s2.safetensors -c $A/duoE50.safetensors
run pk3 $P -a $A/duoB50.safetensors -c $A/random50_s0.safetensors
run pk4 $P -a $A/random50_s1.safetensors -c $A/random50_s2.safetensors
run pk5 $P -a $A/random50_s3.safetensors -c $A/first50.safetensors
run pk6 $P -a $A/duoE25.safetensors -c $A/duoE75.safetensors
run pk7 $P -a $A/random25_s0.safetensors -c $A/random75_s0.safetensors
run pk8 $P -a $A/duoE50.safetensors -a $A/kivi2.safetensors -c $A/kivi2.safetensors
run ppl1 $K eval --model $M --sequences 8 --json -a $A/duoC50_s0.safetensors -c $A/duoC50_s1.safetensors \
  -c $A/duoC50_s2.safetensors -c $A/duoE50.safetensors -c $A/duoE25.safetensors -c $A/duoE75.safetensors
run ppl2 $K eval --model $M --sequences 8 --json -a $A/duoE50.safetensors -a $A/kivi2.safetensors
wait
date -u +%T
