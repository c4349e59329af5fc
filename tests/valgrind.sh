#!/usr/bin/env bash
# Runs tollgate under valgrind (one worker), sends a mix of requests (plain,
# streamed, refused, malformed, falling back from a provider nobody listens
# for, then skipping it while it cools down), stops it, and fails if any
# process leaked or made a memory error. A leak per request shows up as
# "definitely lost".
set -euo pipefail
bin=$(realpath "${TG_BIN:-build/tollgate}")
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18931)
# A port nothing listens on: the provider that is always down.
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18932)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

sed -e 's/^workers: .*/workers: 1/' \
    -e "s#^state_file: .*#state_file: $dir/state#" \
    -e "s/\"127.0.0.1:8000\"/\"127.0.0.1:$port\"/" \
    -e "s#^usage_log: .*#usage_log: $dir/usage.log#" \
    -e "s#^  local: .*#  local: { type: openai, base_url: http://127.0.0.1:$dead_port/v1 }#" \
    -e 's/^models:$/models:\n  vg-dead: { provider: local, model: dead }/' \
    -e 's/^model_groups:$/model_groups:\n  VgGroup: { primary: vg-dead, fallbacks: [mock-echo] }/' \
    config/tollgate.yaml > "$dir/tollgate.yaml"
valgrind --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
  --log-file="$dir/vg.%p.log" "$bin" -c "$dir/tollgate.yaml" > "$dir/out.log" 2>&1 &
pid=$!
url=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -sf -o /dev/null "$url/healthz" && break; sleep 0.1; done

key='Authorization: Bearer tg-demo-key'
for _ in $(seq 1 25); do
  curl -s -o /dev/null "$url/v1/chat/completions" -H "$key" \
    -d '{"messages":[{"role":"user","content":"hello world"}]}'
  curl -s -o /dev/null -N "$url/v1/chat/completions" -H "$key" \
    -d '{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c"}]}'
  curl -s -o /dev/null "$url/v1/chat/completions" -H 'Authorization: Bearer nope' -d '{}'
  curl -s -o /dev/null "$url/v1/chat/completions" -H "$key" -d '{"messages":[{"role":"bad"}]}'
  curl -s -o /dev/null "$url/v1/chat/completions" -H "$key" -d '{"messages":'
  curl -s -o /dev/null "$url/v1/models" -H "$key"
  curl -s -o /dev/null "$url/nowhere"
  curl -s -o /dev/null "$url/v1/chat/completions" -H "$key" \
    -d '{"model":"VgGroup","messages":[{"role":"user","content":"fall back"}]}'
  curl -s -o /dev/null "$url/v1/chat/completions" -H "$key" \
    -d '{"model":"vg-dead","messages":[{"role":"user","content":"503"}]}'
  curl -s -o /dev/null "$url/healthz" -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' y)"
done
grep -q '"upstream_model":"dead"' "$dir/usage.log" ||
  { echo "valgrind: the failed attempts are not in the usage log"; exit 1; }
kill -TERM "$pid"
wait "$pid" || true
pid=

status=0
for log in "$dir"/vg.*.log; do
  if grep -qE 'definitely lost: [1-9]|indirectly lost: [1-9]|ERROR SUMMARY: [1-9]' "$log"; then
    cat "$log"; status=1
  fi
done
n=$(ls "$dir"/vg.*.log | wc -l)
if [ "$n" -lt 2 ]; then echo "valgrind: expected logs of master and worker, got $n"; status=1; fi
[ $status = 0 ] && echo "valgrind: $n processes, no leaks, no errors"
exit $status
