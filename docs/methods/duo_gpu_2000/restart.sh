# s0 and s2 lost a race on the GGUF conversion cache: start them again, then after.sh in the background
pkill -f "bash /tmp/w/duo.sh" || true
cp .g3/after.sh .g3/wait.sh /tmp/w/
export PYTHONPATH=/tmp/site:/tmp/w PYTHONUNBUFFERED=1
K="python3 -m kvtool.cli"; M=/tmp/g/SmolLM2-135M-Instruct.Q4_1.gguf; A=/tmp/w/a; O=/tmp/w/out
cd /tmp/w
for s in 0 2; do
  setsid nohup $K calibrate --model $M --method duo --seq-len 8192 --param min_context=1024 --param steps=2000 \
     --streaming-fraction 0.5 --seed $s --out $A/duoC50_s$s.safetensors > $O/trainC_s$s.err 2>&1 < /dev/null &
done
sleep 2
setsid nohup bash /tmp/w/after.sh > /tmp/w/out/after.log 2>&1 < /dev/null &
bash /tmp/w/wait.sh "${WAIT:-540}"
