#!/usr/bin/env bash
# `make bench` (after `make build`): checks the tools, then runs bench/run.ts with a hard time bound.
# Knobs (environment): BENCH_ONLY=throughput,latency,revocation,memory,workers  BENCH_SECONDS=6
# BENCH_LATENCY_SECONDS=5  BENCH_HIT_RATE=5000  BENCH_MISS_RATE=2000  BENCH_TRIALS=200
# BENCH_SOAK_SECONDS=60 (600 for the full 10-minute soak)  BENCH_AGENTS=100000
# BENCH_SERVER_CPU=0 / BENCH_LOAD_CPU=1 (BENCH_SERVER_CPU=none disables pinning)
# BENCH_ISOLATE=0 (leave other threads on the server core)  BENCH_KEEP_AWAKE=0 (let idle cores halt)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v h2load >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "h2load missing: installing Debian's nghttp2-client"
    apt-get install -y nghttp2-client >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y nghttp2-client >/dev/null; }
  else
    echo "bench needs h2load: sudo apt-get install -y nghttp2-client" >&2
    exit 1
  fi
fi
for tool in redis-server redis-cli taskset; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (Debian: redis-server, util-linux)" >&2; exit 1; }
done
bash bench/openloop/build.sh
[ -f dist/src/cli/main.js ] || { echo "run 'make build' first (make bench does)" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
  echo "warning: fewer than 2 cores; server and load generator will share one" >&2
fi

limit=$(( ${BENCH_SOAK_SECONDS:-60} + 900 ))
# The harness itself stays off the server's core (it starts the servers pinned there).
pin=()
[ "${BENCH_SERVER_CPU:-0}" != none ] && pin=(taskset -c "${BENCH_LOAD_CPU:-1}")
# bench/lib/isolate.ts moves other threads off the server core and puts them back; if the harness
# is killed before it can, the affinities it saved are restored here.
affinity="${TMPDIR:-/tmp}/agent-authz-bench-affinity.txt"
rm -f "$affinity"
status=0
"${pin[@]}" timeout --kill-after=10 "$limit" node --import tsx bench/run.ts || status=$?
if [ -s "$affinity" ]; then
  while read -r tid cpus; do taskset -pc "$cpus" "$tid" >/dev/null 2>&1 || true; done < "$affinity"
  rm -f "$affinity"
fi
exit "$status"
