#!/usr/bin/env bash
# run.sh - `make bench`: tollgate measured side by side with the physical
# limit (calling the upstream directly) and with nginx as a plain reverse
# proxy, in one run, on 127.0.0.1. docs/BENCHMARKS.md says what each figure
# means.
#
# It builds the bench's upstream and load generator (scripts/bench/*.c),
# starts the upstream, nginx and tollgate pinned to the server CPUs, and
# drives each in turn from the client CPU with wrk (closed-loop throughput,
# refusals) and loadgen (fixed-rate latency, streams, held streams). Then it
# counts tollgate's instructions per request under callgrind. report.sh
# prints one table and writes the same as JSON to build/bench/results.json.
# Every process it starts is ended by pid when it exits, however it exits.
#
# Knobs (environment): BENCH_WORKERS (1), BENCH_DURATION (10 s per run),
# BENCH_WARMUP (2 s), BENCH_CONNS (64, wrk's connections),
# BENCH_CHUNKS (200), BENCH_CHUNK_DELAY_MS (1), BENCH_STREAM_RATE (50/s),
# BENCH_STREAMS (5000 held), BENCH_CG_REQUESTS (2000), BENCH_STRICT (0: 1
# makes a missed point of the bar fail the run), TG_BIN (build/tollgate).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

TG_BIN=${TG_BIN:-build/tollgate}
OUT=build/bench
WORKERS=${BENCH_WORKERS:-1}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNS:-64}
CHUNKS=${BENCH_CHUNKS:-200}
CHUNK_DELAY_MS=${BENCH_CHUNK_DELAY_MS:-1}
STREAM_RATE=${BENCH_STREAM_RATE:-50}
HOLD_STREAMS=${BENCH_STREAMS:-5000}
CG_REQUESTS=${BENCH_CG_REQUESTS:-2000}
STRICT=${BENCH_STRICT:-0}

KEY=tg-bench-key             # the bench team: quotas too large to refuse
LIMITED_KEY=tg-bench-limited # a team of 1 request a minute
UPSTREAM_KEY=sk-bench
TARGETS=(direct nginx tollgate)

PIDS=()           # every process started, ended by pid on exit
declare -A URL    # target -> the chat completions URL
declare -A R      # result name -> value
ERRORS=()         # one line per run that had errors

# ---- processes ----------------------------------------------------------

children_of() {
  cat "/proc/$1/task/$1/children" 2>/dev/null || true
}

# Ends one process: SIGTERM, up to 10 s, then SIGKILL; its children too.
stop_pid() {
  local pid=$1 kids i
  kill -0 "$pid" 2>/dev/null || return 0
  kids=$(children_of "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for i in $kids; do
    kill -KILL "$i" 2>/dev/null || true
  done
}

# Drops a pid that has been ended, so that cleanup never signals a reused one.
forget_pid() {
  local i
  for i in "${!PIDS[@]}"; do
    [[ ${PIDS[i]} == "$1" ]] && unset 'PIDS[i]'
  done
  PIDS=("${PIDS[@]}")
}

cleanup() {
  local i
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${PIDS[i]}"
  done
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

die() {
  echo "bench: $*" >&2
  exit 1
}

# ---- tools and build ------------------------------------------------------

ensure_tools() {
  local missing=() sudo=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
  command -v valgrind >/dev/null || missing+=(valgrind)
  command -v taskset >/dev/null || missing+=(util-linux)
  ((${#missing[@]} == 0)) && return 0
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
    sudo=(sudo)
  fi
  echo "bench: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The floor is built with tollgate's replacements for libevent functions
# (LIBEVENT_OVERRIDES), so that it stays the least evhttp costs as tollgate
# uses it.
LIBEVENT_OVERRIDES=(evbuffer_printf:evbuffer_add_printf
  evbuffer_read:evbuffer_read evutil_strcasecmp:evutil_ascii_strcasecmp)

build_tools() {
  local src bin flags libs objs deps o newer
  local sources=() exports=-Wl
  for o in "${LIBEVENT_OVERRIDES[@]}"; do
    sources+=("worker/${o%%:*}.c")
    exports+=",--export-dynamic-symbol=${o##*:}"
  done
  flags="-O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow"
  flags+=" -Wstrict-prototypes -Wmissing-prototypes -Iinclude"
  libs="$(pkg-config --cflags --libs libevent) -lm"
  for src in upstream loadgen floor; do
    bin=$OUT/bin/$src
    objs=()
    deps=("scripts/bench/$src.c")
    if [[ $src == floor ]]; then
      objs=("${sources[@]}" "$exports")
      deps+=("${sources[@]}")
    fi
    newer=$(find "${deps[@]}" -newer "$bin" 2>/dev/null || true)
    if [[ ! -x $bin || -n $newer ]]; then
      # shellcheck disable=SC2086 # flags and libs are word lists
      ${CC:-cc} $flags scripts/bench/$src.c "${objs[@]}" -o "$bin" $libs
    fi
  done
}

# ---- the machine and the pinning ----------------------------------------

NCPU=$(nproc)
if ((NCPU >= 2)); then
  CLIENT_CPUS=$((NCPU - 1))
  SERVER_CPUS=$([[ $NCPU -eq 2 ]] && echo 0 || echo "0-$((NCPU - 2))")
  CLIENT_PIN=(taskset -c "$CLIENT_CPUS")
  SERVER_PIN=(taskset -c "$SERVER_CPUS")
  PINNING="load generators (wrk, loadgen) on CPU $CLIENT_CPUS; the server"
  PINNING+=" under test and the upstream on CPU $SERVER_CPUS"
else
  CLIENT_PIN=()
  SERVER_PIN=()
  PINNING="not pinned: one CPU, load generator and servers share it"
fi
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
KERNEL=$(uname -r)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# A port nothing listens on, below the ephemeral range the clients use.
free_port() {
  local port hex
  while :; do
    port=$((20000 + RANDOM % 10000))
    printf -v hex '%04X' "$port"
    grep -q ":$hex 00000000:0000 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null ||
      break
  done
  echo "$port"
}

# Waits until GET PATH on PORT answers 200 (bash's /dev/tcp: no curl).
wait_http() {
  local port=$1 path=$2 secs=$3 pid=$4 line i
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    # In a subshell: a failed exec redirection ends the shell that runs it.
    line=$(exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$port" &&
      printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3 &&
      read -r -t 2 line <&3 && echo "$line") || line=
    [[ $line == *" 200 "* ]] && return 0
    sleep 0.1
  done
  return 1
}

# All CPU time and the part of it stolen by the hypervisor (given to other
# guests while this one wanted to run), in jiffies, from /proc/stat.
cpu_times() {
  awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9}' /proc/stat
}

# Runs a scenario and records in R[steal.NAME] the share of CPU time stolen
# meanwhile, in percent: on a shared virtual machine that is the noise no
# repetition removes, so it is printed with the figures.
with_steal() {
  local name=$1 t0 s0 t1 s1
  shift
  read -r t0 s0 < <(cpu_times)
  "$@"
  read -r t1 s1 < <(cpu_times)
  R[steal.$name]=$(awk -v t=$((t1 - t0)) -v s=$((s1 - s0)) \
    'BEGIN {printf "%.1f", (t > 0 ? 100 * s / t : 0)}')
  echo "  cpu steal meanwhile: ${R[steal.$name]}%"
}

# Resident memory of a process and its children, in KiB.
rss_kib() {
  local pid total=0 kib
  for pid in "$1" $(children_of "$1"); do
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}

# ---- the servers ----------------------------------------------------------

start_upstream() {
  local line i
  "${SERVER_PIN[@]}" "$OUT/bin/upstream" 0 >"$OUT/upstream.out" \
    2>"$OUT/upstream.err" &
  UPSTREAM_PID=$!
  PIDS+=("$UPSTREAM_PID")
  for ((i = 0; i < 50; i++)); do
    line=$(head -1 "$OUT/upstream.out")
    [[ $line == listening* ]] && break
    sleep 0.1
  done
  UPSTREAM_PORT=${line##*:}
  [[ $UPSTREAM_PORT =~ ^[0-9]+$ ]] || die "the upstream did not start"
  URL[direct]=http://127.0.0.1:$UPSTREAM_PORT/v1/chat/completions
}

# The evhttp floor (scripts/bench/floor.c): tollgate's answer from a bare evhttp
# server, on the server CPUs like the others.
start_floor() {
  local line i
  "${SERVER_PIN[@]}" "$OUT/bin/floor" 0 >"$OUT/floor.out" 2>"$OUT/floor.err" &
  FLOOR_PID=$!
  PIDS+=("$FLOOR_PID")
  for ((i = 0; i < 50; i++)); do
    line=$(head -1 "$OUT/floor.out")
    [[ $line == listening* ]] && break
    sleep 0.1
  done
  [[ ${line##*:} =~ ^[0-9]+$ ]] || die "the evhttp floor did not start"
  URL[floor]=http://127.0.0.1:${line##*:}/v1/chat/completions
}

# The models the bench calls, each an upstream id the bench upstream reads.
tollgate_config() {
  local dir=$1 port=$2 hash limited
  hash=$("$TG_BIN" hash-key "$KEY")
  limited=$("$TG_BIN" hash-key "$LIMITED_KEY")
  cat <<EOF
# generated by scripts/bench/run.sh
listen: ["127.0.0.1:$port"]
workers: $WORKERS
state_file: $dir/tollgate.state
usage_log: $dir/usage.log
access_log: ""
pid_file: $dir/tollgate.pid
shutdown_timeout_s: 5
limits:
  max_connections: 20000
  idle_timeout_s: 120
health: { allowed_fails: 1000, cooldown_s: 1 }
providers:
  up:
    type: openai
    base_url: http://127.0.0.1:$UPSTREAM_PORT/v1
    api_key: $UPSTREAM_KEY
    max_connections: 20000
models:
  bench: { provider: up, model: bench }
  bench-429: { provider: up, model: bench-429 }
  $STREAM_MODEL: { provider: up, model: $STREAM_MODEL }
  $HOLD_MODEL: { provider: up, model: $HOLD_MODEL }
teams:
  bench:
    keys: ["$hash"]
    rpm: 1000000000
    tpm: 1000000000000
    credits: 1000000000
  limited:
    keys: ["$limited"]
    rpm: 1
    tpm: 1000000000000
    credits: 1000000000
EOF
}

# Starts tollgate (optionally under a wrapper such as valgrind) on a free
# port; sets TG_PID and TG_PORT.
start_tollgate() {
  local dir=$1 secs=$2
  shift 2
  TG_PORT=$(free_port)
  rm -rf "$dir" && mkdir -p "$dir"
  tollgate_config "$dir" "$TG_PORT" >"$dir/tollgate.yaml"
  "${SERVER_PIN[@]}" "$@" "$TG_BIN" -c "$dir/tollgate.yaml" \
    >"$dir/tollgate.log" 2>&1 &
  TG_PID=$!
  PIDS+=("$TG_PID")
  wait_http "$TG_PORT" /healthz "$secs" "$TG_PID" ||
    die "tollgate did not start: $(tail -5 "$dir/tollgate.log")"
}

nginx_config() {
  local dir=$1 port=$2 user=""
  # Only a master started as root switches users; keep it the caller's.
  ((EUID == 0)) && user="user $(id -un) $(id -gn);"
  cat <<EOF
# generated by scripts/bench/run.sh: a plain reverse proxy, nothing else.
daemon off;
master_process on;
worker_processes $WORKERS;
worker_rlimit_nofile 40000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
$user
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  # The refusal scenario's team, as nginx would limit it: by key.
  map \$http_authorization \$limited_key {
    "Bearer $LIMITED_KEY" limited;
    default "";
  }
  limit_req_zone \$limited_key zone=bench:1m rate=1r/m;
  upstream bench {
    server 127.0.0.1:$UPSTREAM_PORT;
    keepalive 1024;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:$port backlog=4096;
    location = /nginx-health { return 200 "ok\n"; }
    location / {
      limit_req zone=bench;
      limit_req_status 429;
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
EOF
}

start_nginx() {
  local dir=$OUT/nginx port
  port=$(free_port)
  rm -rf "$dir" && mkdir -p "$dir/tmp"
  nginx_config "$ROOT/$dir" "$port" >"$dir/nginx.conf"
  "${SERVER_PIN[@]}" "$NGINX_BIN" \
    -p "$ROOT/$dir" -c "$ROOT/$dir/nginx.conf" -e "$ROOT/$dir/error.log" \
    >"$dir/nginx.out" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_http "$port" /nginx-health 10 "$NGINX_PID" ||
    die "nginx did not start: $(tail -5 "$dir/error.log" "$dir/nginx.out")"
  URL[nginx]=http://127.0.0.1:$port/v1/chat/completions
}

# ---- load -----------------------------------------------------------------

body() {
  local model=$1 extra=${2:-}
  printf '{"model":"%s","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16%s}' \
    "$model" "$extra"
}

# The value of KEY in a line of key=value pairs.
field() {
  awk -v k="$2" '{for (i = 1; i <= NF; i++) {
    n = index($i, "="); if (substr($i, 1, n - 1) == k) {print substr($i, n + 1); exit}}}' <<<"$1"
}

# Every server must outlive every run: one that died crashed, or the run
# was interrupted (Ctrl-C reaches the servers; bash defers its own trap
# while a client that handles SIGINT itself is running).
check_servers() {
  local pid
  for pid in "$UPSTREAM_PID" "$NGINX_PID" "$TOLLGATE_PID"; do
    kill -0 "$pid" 2>/dev/null ||
      die "a server (pid $pid) has stopped: interrupted, or it crashed"
  done
}

# Records a run's error count; a run with errors is reported loudly.
check_errors() {
  local what=$1 line=$2 n
  check_servers
  n=$(field "$line" errors)
  R[$what.errors]=${n:-1}
  if [[ ${n:-1} != 0 ]]; then
    ERRORS+=("$what: ${n:-unknown} errors ($line)")
    echo "bench: ERRORS in $what: $line" >&2
  fi
}

# wrk, closed loop: TARGET KEY BODY EXPECT SECONDS; prints the summary line.
run_wrk() {
  local target=$1 key=$2 body=$3 expect=$4 secs=$5 out
  out=$(BENCH_BODY=$body BENCH_KEY=$key BENCH_EXPECT=$expect \
    timeout --foreground -k 5 $((secs + 60)) "${CLIENT_PIN[@]}" \
    wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s -s scripts/bench/wrk.lua \
    "${URL[$target]}" 2>&1) || true
  grep '^ok=' <<<"$out" || echo "errors=1 wrk_failed=1 $(tr '\n' ' ' <<<"$out")"
}

# loadgen: TARGET KEY BODY ARGS...; prints its summary line.
run_loadgen() {
  local target=$1 key=$2 body=$3 out
  shift 3
  out=$(timeout --foreground -k 5 300 "${CLIENT_PIN[@]}" "$OUT/bin/loadgen" \
    --url "${URL[$target]}" --key "$key" --body "$body" "$@" 2>&1) || true
  grep '^mode=' <<<"$out" || echo "errors=1 loadgen_failed=1 $(tr '\n' ' ' <<<"$out")"
}

# The first line a tool prints about its version (wrk -v exits 1).
version() {
  { "$@" 2>&1 || true; } | head -1
}

ms() {
  awk -v us="$1" 'BEGIN {printf "%.3f", us / 1000}'
}

# Every target answers one request before anything is measured.
smoke() {
  local t line
  for t in "${TARGETS[@]}"; do
    line=$(run_loadgen "$t" "$KEY" "$(body bench)" --requests 10 --conns 1)
    [[ $(field "$line" errors) == 0 ]] || die "$t does not answer: $line"
  done
}

# (1) small completions at full load: requests/s, p50, p99.
scenario_throughput() {
  local t line
  echo "bench: (1) throughput, wrk -t1 -c$CONNS, ${DURATION}s each"
  for t in "${TARGETS[@]}"; do
    run_wrk "$t" "$KEY" "$(body bench)" 200 "$WARMUP" >/dev/null
    line=$(run_wrk "$t" "$KEY" "$(body bench)" 200 "$DURATION")
    check_errors "throughput.$t" "$line"
    R[s1.rps.$t]=$(field "$line" rps)
    R[s1.p50.$t]=$(ms "$(field "$line" lat_p50_us)")
    R[s1.p99.$t]=$(ms "$(field "$line" lat_p99_us)")
    echo "  $t: ${R[s1.rps.$t]} req/s, p50 ${R[s1.p50.$t]} ms, p99 ${R[s1.p99.$t]} ms"
  done
  # The floor alone on the server CPU: what evhttp costs by itself.
  start_floor
  run_wrk floor "$KEY" "$(body bench)" 200 "$WARMUP" >/dev/null
  line=$(run_wrk floor "$KEY" "$(body bench)" 200 "$DURATION")
  check_errors "throughput.floor" "$line"
  R[s1.rps.floor]=$(field "$line" rps)
  stop_pid "$FLOOR_PID"
  forget_pid "$FLOOR_PID"
  echo "  evhttp floor (the same answer, nothing behind it): ${R[s1.rps.floor]} req/s"
}

# (2) the same at half of tollgate's peak, at a fixed rate.
scenario_fixed_rate() {
  local t line
  RATE=$(awk -v r="${R[s1.rps.tollgate]}" 'BEGIN {printf "%d", r / 2}')
  ((RATE > 0)) || RATE=1000
  echo "bench: (2) fixed rate $RATE req/s, ${DURATION}s each"
  for t in "${TARGETS[@]}"; do
    line=$(run_loadgen "$t" "$KEY" "$(body bench)" --rate "$RATE" \
      --duration "$DURATION" --warmup "$WARMUP" --conns 64 --max-conns 1024)
    check_errors "fixed_rate.$t" "$line"
    R[s2.p50.$t]=$(ms "$(field "$line" lat_p50_us)")
    R[s2.p99.$t]=$(ms "$(field "$line" lat_p99_us)")
    R[s2.p999.$t]=$(ms "$(field "$line" lat_p999_us)")
    echo "  $t: p50 ${R[s2.p50.$t]} ms, p99 ${R[s2.p99.$t]} ms, p99.9 ${R[s2.p999.$t]} ms"
  done
}

# (3) streams of CHUNKS chunks: time to first token and to the end.
scenario_streams() {
  local t line
  echo "bench: (3) streams of $CHUNKS chunks ${CHUNK_DELAY_MS} ms apart," \
    "$STREAM_RATE/s, ${DURATION}s each"
  for t in "${TARGETS[@]}"; do
    line=$(run_loadgen "$t" "$KEY" "$(body "$STREAM_MODEL" ',"stream":true')" \
      --stream --tokens "$CHUNKS" --rate "$STREAM_RATE" \
      --duration "$DURATION" --warmup "$WARMUP" --conns 16 --max-conns 1024)
    check_errors "streams.$t" "$line"
    R[s3.ttft50.$t]=$(ms "$(field "$line" ttft_p50_us)")
    R[s3.ttft99.$t]=$(ms "$(field "$line" ttft_p99_us)")
    R[s3.total50.$t]=$(ms "$(field "$line" total_p50_us)")
    R[s3.total99.$t]=$(ms "$(field "$line" total_p99_us)")
    echo "  $t: TTFT p50 ${R[s3.ttft50.$t]} p99 ${R[s3.ttft99.$t]} ms;" \
      "total p50 ${R[s3.total50.$t]} p99 ${R[s3.total99.$t]} ms"
  done
}

# Holds HOLD_STREAMS streams open through TARGET; records the RSS growth of
# PID (and its children) per stream, in KiB.
# GET PATH on PORT with bash's /dev/tcp; prints the whole answer.
http_get() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3 &&
    timeout 5 cat <&3)
}

# What a shortfall of held streams leaves to look at: how long the run
# waited, the machine's sockets and, for tollgate, its metrics.
hold_diagnostics() {
  local t=$1 waited=$2 file=$OUT/hold.$1.diag
  {
    echo "waited $waited s for every stream to be held"
    ss -s
    [[ $t == tollgate ]] && http_get "$TG_PORT" /metrics
  } >"$file" 2>&1
  echo "bench: $t held too few streams; see $file" >&2
}

hold_streams() {
  local t=$1 pid=$2 before after line lg i out=$OUT/hold.$1.out
  local started=$SECONDS
  before=$(rss_kib "$pid")
  # Emptied here, not by the background job's redirection, which may come
  # after the first look below and let it read the last run's "held=".
  : >"$out"
  "${CLIENT_PIN[@]}" "$OUT/bin/loadgen" --url "${URL[$t]}" --key "$KEY" \
    --body "$(body "$HOLD_MODEL" ',"stream":true')" \
    --streams "$HOLD_STREAMS" --ramp 256 --hold-max 120 >"$out" 2>&1 &
  lg=$!
  PIDS+=("$lg")
  for ((i = 0; i < 1200; i++)); do
    grep -qs '^held=' "$out" && break
    kill -0 "$lg" 2>/dev/null || break
    sleep 0.1
  done
  sleep 1 # let every process settle with the streams open
  after=$(rss_kib "$pid")
  # Looked at while the streams are still open.
  [[ $(field "$(grep '^held=' "$out")" held) == "$HOLD_STREAMS" ]] ||
    hold_diagnostics "$t" $((SECONDS - started))
  stop_pid "$lg"
  forget_pid "$lg"
  line="$(grep '^held=' "$out" || true) $(grep '^mode=' "$out" || echo errors=1)"
  check_errors "open_streams.$t" "$line"
  [[ $(field "$line" held) == "$HOLD_STREAMS" ]] ||
    check_errors "open_streams.$t" "errors=1 held=$(field "$line" held)"
  R[s4.kib.$t]=$(awk -v a="$after" -v b="$before" -v n="$HOLD_STREAMS" \
    'BEGIN {printf "%.2f", (a - b) / n}')
  R[s4.before.$t]=$before
  R[s4.after.$t]=$after
  echo "  $t: RSS $before -> $after KiB: ${R[s4.kib.$t]} KiB per stream"
}

# (4) HOLD_STREAMS concurrent open streams: resident memory per stream.
scenario_open_streams() {
  echo "bench: (4) $HOLD_STREAMS open streams"
  hold_streams direct "$UPSTREAM_PID"
  hold_streams nginx "$NGINX_PID"
  hold_streams tollgate "$TOLLGATE_PID"
}

# (5) requests refused by the rate limiter: 429s per second. The limited
# team's one request a minute is spent first; the upstream itself answers
# 429 for the direct run.
scenario_refusals() {
  local t line secs=$((DURATION < 30 ? DURATION : 30))
  echo "bench: (5) refusals (429), wrk -t1 -c$CONNS, ${secs}s each"
  for t in "${TARGETS[@]}"; do
    if [[ $t != direct ]]; then
      line=$(run_loadgen "$t" "$LIMITED_KEY" "$(body bench)" --requests 1 \
        --conns 1)
      check_errors "refusals.$t.first" "$line"
    fi
    line=$(run_wrk "$t" "$LIMITED_KEY" "$(body bench-429)" 429 "$secs")
    check_errors "refusals.$t" "$line"
    R[s5.rps.$t]=$(field "$line" rps)
    echo "  $t: ${R[s5.rps.$t]} refusals/s"
  done
}

# ---- instructions per request (callgrind) -------------------------------

# Tollgate's worker under callgrind for N requests: sets CG_IR to its
# instruction count and CG_FILE to its profile (the worker only: the master
# does nothing per request).
callgrind_run() {
  local n=$1 dir=$OUT/callgrind/run-$1 master file line
  start_tollgate "$dir" 120 valgrind --tool=callgrind --dump-instr=no \
    "--callgrind-out-file=$ROOT/$dir/callgrind.out.%p"
  master=$TG_PID
  URL[cg]=http://127.0.0.1:$TG_PORT/v1/chat/completions
  line=$(run_loadgen cg "$KEY" "$(body bench)" --requests "$n" --conns 8)
  check_errors "callgrind.$n" "$line"
  stop_pid "$master"
  forget_pid "$master"
  CG_IR=0
  for file in "$dir"/callgrind.out.*; do
    [[ $file == */callgrind.out.$master ]] && continue
    CG_FILE=$file
    CG_IR=$(awk '/^totals:/ {print $2}' "$file")
  done
}

# The difference between two runs cancels start-up and shut-down.
measure_instructions() {
  local small=$((CG_REQUESTS / 4)) a
  echo "bench: instructions per request (callgrind, $small and" \
    "$CG_REQUESTS requests)"
  rm -rf "$OUT/callgrind"
  callgrind_run "$small"
  a=$CG_IR
  callgrind_run "$CG_REQUESTS"
  R[ipr]=$(awk -v a="$a" -v b="$CG_IR" -v n=$((CG_REQUESTS - small)) \
    'BEGIN {printf "%d", (b - a) / n}')
  callgrind_annotate --inclusive=no "$CG_FILE" >"$OUT/callgrind-top.txt" \
    2>/dev/null || true
  echo "  ${R[ipr]} instructions/request (profile: $OUT/callgrind-top.txt)"
}

# The table, the bar and the JSON.
# shellcheck source=scripts/bench/report.sh
source "$ROOT/scripts/bench/report.sh"

# ---- main -----------------------------------------------------------------

main() {
  local started=$SECONDS failed
  STREAM_MODEL=bench-c$CHUNKS-d$CHUNK_DELAY_MS
  HOLD_MODEL=bench-c1000000-d1000
  [[ -x $TG_BIN ]] || die "$TG_BIN is missing: run make first"
  ensure_tools
  NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
  mkdir -p "$OUT/bin"
  build_tools
  # Held streams need a descriptor each on both sides of every proxy.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

  echo "bench: $DATE, $NCPU CPUs ($CPU_MODEL), kernel $KERNEL"
  VERSIONS="$(version "$TG_BIN" --version), $(version "$NGINX_BIN" -v),"
  VERSIONS+=" $(version wrk -v | cut -d' ' -f1-2)"
  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "bench: $VERSIONS"
  echo "bench: load average before the run: $LOAD_BEFORE (other work on the" \
    "machine shows in the figures)"
  echo "bench: $WORKERS worker(s) for nginx and tollgate; $PINNING"
  start_upstream
  start_nginx
  start_tollgate "$OUT/tollgate" 20
  TOLLGATE_PID=$TG_PID
  URL[tollgate]=http://127.0.0.1:$TG_PORT/v1/chat/completions
  smoke

  with_steal s1 scenario_throughput
  with_steal s2 scenario_fixed_rate
  with_steal s3 scenario_streams
  with_steal s4 scenario_open_streams
  with_steal s5 scenario_refusals
  # The usage log was on: one line per call that reached the upstream.
  R[usage_lines]=$(wc -l <"$OUT/tollgate/usage.log")
  rm -f "$OUT/tollgate/usage.log"
  measure_instructions

  build_rows
  build_bar
  build_costs
  print_table
  print_costs
  echo
  echo "tollgate instructions per request (callgrind): ${R[ipr]}"
  echo "pinning: $PINNING; $WORKERS worker(s) each"
  echo "tollgate: auth (sha256 key), quotas (rpm/tpm buckets) and the usage" \
    "log on (${R[usage_lines]} lines written); nginx: access log off"
  print_steal
  print_bar
  write_json
  echo
  echo "results: $OUT/results.json ($((SECONDS - started)) s)"
  if ((${#ERRORS[@]} > 0)); then
    echo
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!!! bench: ${#ERRORS[@]} RUN(S) HAD ERRORS: the figures are not valid"
    printf '!!!   %s\n' "${ERRORS[@]}"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    exit 1
  fi
  failed=$(printf '%s\n' "${BAR[@]}" | grep -c '|0$' || true)
  if ((STRICT && failed > 0)); then
    echo "bench: $failed point(s) of the bar missed (BENCH_STRICT=1)"
    exit 1
  fi
}

main "$@"
