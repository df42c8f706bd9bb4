# derive 25/75 % masks from the learned gates, then 9 evaluations side by side (each prints fp16 beside its rows)
export PYTHONPATH=/tmp/site:/tmp/src
K="python3 -m kvtool.cli"; M=/tmp/g/SmolLM2-135M-Instruct.Q4_1.gguf; A=/tmp/w/a; O=/tmp/w/out
cd /tmp/w
python3 derive.py $A/duoA50.safetensors && python3 derive.py $A/duoB50.safetensors
P="$K eval --model $M --task passkey --lengths 2048,4096,8192 --depths 0.05,0.15,0.25,0.35,0.45,0.55,0.65,0.75,0.85,0.95 --trials 2 --json"
date -u +%T > $O/eval_start
launch() { name=$1; shift; setsid nohup "$@" > $O/$name.json 2> $O/$name.err < /dev/null & }
launch pk1 $P -a $A/duoA50.safetensors -c $A/duoA25.safetensors
launch pk2 $P -a $A/duoA75.safetensors -c $A/random75_s0.safetensors
launch pk3 $P -a $A/duoB50.safetensors -c $A/duoB25.safetensors
launch pk4 $P -a $A/duoB75.safetensors -c $A/first50.safetensors
launch pk5 $P -a $A/random50_s0.safetensors -c $A/random50_s1.safetensors
launch pk6 $P -a $A/random50_s2.safetensors -c $A/random50_s3.safetensors
launch pk7 $P -a $A/duoA50.safetensors -a $A/kivi2.safetensors -c $A/random25_s0.safetensors
launch pk8 $P -a $A/duoB50.safetensors -a $A/kivi2.safetensors -c $A/kivi2.safetensors
launch ppl1 $K eval --model $M --sequences 8 --json -a $A/duoA50.safetensors -c $A/duoA25.safetensors -c $A/duoA75.safetensors -c $A/duoB50.safetensors -c $A/duoB25.safetensors -c $A/duoB75.safetensors -c $A/random50_s0.safetensors -c $A/random50_s1.safetensors -c $A/random50_s2.safetensors -c $A/random50_s3.safetensors -c $A/random25_s0.safetensors -c $A/random75_s0.safetensors -c $A/first50.safetensors -c $A/kivi2.safetensors -c $A/duo_cpuset.safetensors
launch ppl2 $K eval --model $M --sequences 8 --json -a $A/duoA50.safetensors -a $A/kivi2.safetensors
launch ppl3 $K eval --model $M --sequences 8 --json -a $A/duoB50.safetensors -a $A/kivi2.safetensors
sleep 5; ls $O
