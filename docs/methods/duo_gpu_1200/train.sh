export PYTHONPATH=/tmp/site:/tmp/src
K="python3 -m kvtool.cli"; M=/tmp/g/SmolLM2-135M-Instruct.Q4_1.gguf; A=/tmp/w/a
cd /tmp/w
date -u +%T
# the CPU's second run (docs/methods/duo.md), same command, alone on the GPU
$K calibrate --model $M --method duo --seq-len 2048 --param min_context=1024 --param steps=64 --streaming-fraction 0.5 --out $A/duo_cpuset.safetensors > cpuset.log 2>&1
date -u +%T; tail -c 300 cpuset.log
setsid nohup $K calibrate --model $M --method duo --seq-len 8192 --param min_context=2048 --param steps=1200 --param num_passkeys=10 --param passkey_words=32 --streaming-fraction 0.5 --out $A/duoA50.safetensors > trainA.log 2>&1 < /dev/null &
setsid nohup $K calibrate --model $M --method duo --seq-len 8192 --param min_context=1024 --param steps=1200 --streaming-fraction 0.5 --out $A/duoB50.safetensors > trainB.log 2>&1 < /dev/null &
sleep 60; tail -c 300 trainA.log; echo; tail -c 300 trainB.log
