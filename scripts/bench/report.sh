# report.sh - the bench's table, its bar and its JSON, sourced by run.sh.
#
# Results come in run.sh's associative array R (scenario.metric.target ->
# value); build_rows turns them into the table's rows, build_bar judges the
# bar, and print_table, print_bar and write_json show the same rows on
# stdout and in build/bench/results.json.
# shellcheck shell=bash disable=SC2154 # R, ERRORS, RATE... are run.sh's

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0 || a == "-" || b == "-")
    print "-"; else printf "%.2f", a / b}'
}

minus() {
  awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a - b}'
}

# ROWS: label|unit|direct|nginx|tollgate|with ratios (1/0)
ROWS=()
add_row() {
  ROWS+=("$1|$2|$3|$4|$5|$6")
}

build_rows() {
  local m
  add_row "(1) throughput" "req/s" "${R[s1.rps.direct]}" "${R[s1.rps.nginx]}" "${R[s1.rps.tollgate]}" 1
  add_row "(1) latency p50 at full load" "ms" "${R[s1.p50.direct]}" "${R[s1.p50.nginx]}" "${R[s1.p50.tollgate]}" 1
  add_row "(1) latency p99 at full load" "ms" "${R[s1.p99.direct]}" "${R[s1.p99.nginx]}" "${R[s1.p99.tollgate]}" 1
  add_row "(2) latency p50 at $RATE req/s" "ms" "${R[s2.p50.direct]}" "${R[s2.p50.nginx]}" "${R[s2.p50.tollgate]}" 1
  add_row "(2) latency p99 at $RATE req/s" "ms" "${R[s2.p99.direct]}" "${R[s2.p99.nginx]}" "${R[s2.p99.tollgate]}" 1
  for m in p50 p99; do
    add_row "(2) added $m over direct" "ms" "0.000" \
      "$(minus "${R[s2.$m.nginx]}" "${R[s2.$m.direct]}")" \
      "$(minus "${R[s2.$m.tollgate]}" "${R[s2.$m.direct]}")" 0
  done
  add_row "(3) time to first token p50" "ms" "${R[s3.ttft50.direct]}" "${R[s3.ttft50.nginx]}" "${R[s3.ttft50.tollgate]}" 1
  add_row "(3) time to first token p99" "ms" "${R[s3.ttft99.direct]}" "${R[s3.ttft99.nginx]}" "${R[s3.ttft99.tollgate]}" 1
  add_row "(3) added TTFT p50 over direct" "ms" "0.000" \
    "$(minus "${R[s3.ttft50.nginx]}" "${R[s3.ttft50.direct]}")" \
    "$(minus "${R[s3.ttft50.tollgate]}" "${R[s3.ttft50.direct]}")" 0
  add_row "(3) stream total time p50" "ms" "${R[s3.total50.direct]}" "${R[s3.total50.nginx]}" "${R[s3.total50.tollgate]}" 1
  add_row "(3) stream total time p99" "ms" "${R[s3.total99.direct]}" "${R[s3.total99.nginx]}" "${R[s3.total99.tollgate]}" 1
  add_row "(3) added total p50 over direct" "ms" "0.000" \
    "$(minus "${R[s3.total50.nginx]}" "${R[s3.total50.direct]}")" \
    "$(minus "${R[s3.total50.tollgate]}" "${R[s3.total50.direct]}")" 0
  add_row "(4) memory per open stream" "KiB" "${R[s4.kib.direct]}" "${R[s4.kib.nginx]}" "${R[s4.kib.tollgate]}" 1
  add_row "(5) refusals (429)" "req/s" "${R[s5.rps.direct]}" "${R[s5.rps.nginx]}" "${R[s5.rps.tollgate]}" 1
}

print_table() {
  local row label unit d n t with
  printf '\n%-34s %-5s %11s %11s %11s %9s %9s\n' metric unit direct nginx \
    tollgate tg/direct tg/nginx
  printf '%.0s-' {1..96}
  echo
  for row in "${ROWS[@]}"; do
    IFS='|' read -r label unit d n t with <<<"$row"
    if ((with)); then
      printf '%-34s %-5s %11s %11s %11s %9s %9s\n' "$label" "$unit" "$d" \
        "$n" "$t" "$(ratio "$t" "$d")" "$(ratio "$t" "$n")"
    else
      printf '%-34s %-5s %11s %11s %11s %9s %9s\n' "$label" "$unit" "$d" \
        "$n" "$t" - -
    fi
  done
}

# BAR: point|value|limit|pass (1/0)
BAR=()
judge() {
  local pass
  pass=$(awk -v v="$2" -v l="$3" -v op="$4" 'BEGIN {
    print (op == ">=" ? v >= l : op == "<" ? v < l : v <= l) ? 1 : 0}')
  BAR+=("$1|$2|$4 $3|$pass")
}

build_bar() {
  judge "throughput tollgate/nginx" "$(ratio "${R[s1.rps.tollgate]}" "${R[s1.rps.nginx]}")" 0.8 ">="
  judge "added p99 at half peak (ms)" "$(minus "${R[s2.p99.tollgate]}" "${R[s2.p99.direct]}")" 1 "<"
  judge "added TTFT p50 (ms)" "$(minus "${R[s3.ttft50.tollgate]}" "${R[s3.ttft50.direct]}")" 0.5 "<="
  judge "memory per open stream (KiB)" "${R[s4.kib.tollgate]}" 20 "<"
  judge "errors" "${#ERRORS[@]}" 0 "<="
}

print_bar() {
  local row point value limit pass
  echo
  echo "The bar:"
  for row in "${BAR[@]}"; do
    IFS='|' read -r point value limit pass <<<"$row"
    printf '  %-32s %10s  (%s)  %s\n' "$point" "$value" "$limit" \
      "$( ((pass)) && echo PASS || echo FAIL)"
  done
}

json_num() {
  [[ $1 == - || -z $1 ]] && echo null || echo "$1"
}

json_str() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "${s//$'\n'/ }"
}

write_json() {
  local row label unit d n t with point value limit pass first=1 e
  {
    echo "{"
    echo "  \"date\": $(json_str "$DATE"),"
    echo "  \"machine\": {\"nproc\": $NCPU, \"cpu\": $(json_str "$CPU_MODEL"), \"kernel\": $(json_str "$KERNEL")},"
    echo "  \"versions\": $(json_str "$VERSIONS"),"
    echo "  \"load_average_before\": $(json_str "$LOAD_BEFORE"),"
    echo "  \"setup\": {\"workers\": $WORKERS, \"pinning\": $(json_str "$PINNING"),"
    echo "    \"duration_s\": $DURATION, \"warmup_s\": $WARMUP, \"wrk_connections\": $CONNS,"
    echo "    \"fixed_rate\": $RATE, \"stream_chunks\": $CHUNKS, \"chunk_delay_ms\": $CHUNK_DELAY_MS,"
    echo "    \"stream_rate\": $STREAM_RATE, \"open_streams\": $HOLD_STREAMS,"
    echo "    \"usage_log_lines\": ${R[usage_lines]:-0}},"
    echo "  \"table\": ["
    for row in "${ROWS[@]}"; do
      IFS='|' read -r label unit d n t with <<<"$row"
      ((first)) || echo ","
      first=0
      printf '    {"metric": %s, "unit": %s, "direct": %s, "nginx": %s, "tollgate": %s, "tollgate_over_direct": %s, "tollgate_over_nginx": %s}' \
        "$(json_str "$label")" "$(json_str "$unit")" "$(json_num "$d")" \
        "$(json_num "$n")" "$(json_num "$t")" \
        "$(json_num "$( ((with)) && ratio "$t" "$d" || echo -)")" \
        "$(json_num "$( ((with)) && ratio "$t" "$n" || echo -)")"
    done
    echo
    echo "  ],"
    echo "  \"evhttp_floor_rps\": $(json_num "${R[s1.rps.floor]:-}"),"
    echo "  \"server_us_per_request\": {\"nginx\": $(json_num "$(cost_of 0)"), \"tollgate\": $(json_num "$(cost_of 1)"), \"bar\": $(json_num "$(cost_of 2)"), \"evhttp_floor\": $(json_num "$(cost_of 3)")},"
    echo "  \"instructions_per_request\": $(json_num "${R[ipr]:-}"),"
    echo "  \"cpu_steal_pct\": $(json_steal),"
    echo "  \"bar\": ["
    first=1
    for row in "${BAR[@]}"; do
      IFS='|' read -r point value limit pass <<<"$row"
      ((first)) || echo ","
      first=0
      printf '    {"point": %s, "value": %s, "limit": %s, "pass": %s}' \
        "$(json_str "$point")" "$(json_num "$value")" "$(json_str "$limit")" \
        "$( ((pass)) && echo true || echo false)"
    done
    echo
    echo "  ],"
    echo "  \"errors\": ["
    first=1
    for e in "${ERRORS[@]}"; do
      ((first)) || echo ","
      first=0
      printf '    %s' "$(json_str "$e")"
    done
    echo
    echo "  ]"
    echo "}"
  } >"$OUT/results.json"
}

# Microseconds of the server CPU per request in (1): 1 s / requests/s. For
# the proxies that CPU is saturated (it also runs the upstream), so this is
# the whole CPU cost of one proxied call; the floor has the CPU to itself.
us_per_request() {
  awk -v r="$1" -v f="${2:-1}" 'BEGIN {if (r > 0) printf "%.1f", 1e6 / (r * f);
    else print "-"}'
}

build_costs() {
  COSTS=(
    "nginx: proxy and upstream|$(us_per_request "${R[s1.rps.nginx]}")"
    "tollgate: gateway and upstream|$(us_per_request "${R[s1.rps.tollgate]}")"
    "the bar (0.8x nginx's req/s) allows|$(us_per_request "${R[s1.rps.nginx]}" 0.8)"
    "evhttp floor: the answer alone|$(us_per_request "${R[s1.rps.floor]}")"
  )
}

print_costs() {
  local row what us
  echo
  echo "Server CPU per request in (1), in µs (evhttp floor: ${R[s1.rps.floor]} req/s):"
  for row in "${COSTS[@]}"; do
    IFS='|' read -r what us <<<"$row"
    printf '  %-40s %8s\n' "$what" "$us"
  done
}

cost_of() {
  echo "${COSTS[$1]##*|}"
}

# Above this share of stolen CPU time a run's timings say more about the
# other guests of the host than about the servers.
STEAL_NOISY=5

print_steal() {
  local s line="" noisy=0
  for s in s1 s2 s3 s4 s5; do
    line+=" (${s#s}) ${R[steal.$s]:-?}%"
    awk -v v="${R[steal.$s]:-0}" -v m=$STEAL_NOISY 'BEGIN {exit !(v > m)}' &&
      noisy=1
  done
  echo "cpu steal (time the hypervisor gave this machine's CPUs to others):$line"
  ((noisy)) && echo "bench: CPU STEAL OVER ${STEAL_NOISY}% IN A SCENARIO: its" \
    "timings are the host's noise; compare ratios within the run, or run again"
  return 0
}

json_steal() {
  local s first=1
  printf '{'
  for s in s1 s2 s3 s4 s5; do
    ((first)) || printf ', '
    first=0
    printf '"%s": %s' "${s#s}" "$(json_num "${R[steal.$s]:-}")"
  done
  printf '}'
}
