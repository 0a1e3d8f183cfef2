#!/usr/bin/env bash
# The edit rate each server sustains: the *hall* layout (200 clients, 20 documents, 10 clients
# on each) at rising edit rates, against toron-server and the automerge-repo reference, 60 s
# per point. Prints one Markdown row per server and rate; the highest rate whose p99 stays
# within the bound (100 ms, and 250 ms) with 100 % delivered is each server's sustainable rate.
#   scripts/bench-rate.sh [SECONDS] ["toron intervals"] ["reference intervals"]
# Layout via CLIENTS=… DOCS=…; WRITERS=N lets only N clients of each document edit and LIGHT=1
# makes the others light followers (`toron bench --light-followers`). The *room* sweep of
# BENCHMARKS.md: CLIENTS=50 DOCS=1 WRITERS=5 LIGHT=1 scripts/bench-rate.sh 60 "25 12 8 6" "1000 700 500"
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60}
toron_intervals=${2:-"500 250 125 80"}
reference_intervals=${3:-"8000 4000 2000 1000"}
clients=${CLIENTS:-200}; docs=${DOCS:-20}
extra=()
[ -n "${WRITERS:-}" ] && extra+=(--writers-per-doc "$WRITERS")
[ "${LIGHT:-0}" = 1 ] && extra+=(--light-followers)
cargo build --release -q --bin toron-server --bin toron
[ -d bench/node_modules/@automerge/automerge-repo-storage-nodefs ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
# Stops a server: SIGTERM, then SIGKILL after 10 s (a swamped reference may not get to its handler).
stop() { kill "$1" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; kill -9 "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_url() { for _ in $(seq 200); do grep -q listening "$1" 2>/dev/null && break; sleep 0.1; done; awk '/listening/ {print $NF}' "$1"; }
row() { # server interval report.json
  node -e '
    const [who, iv, file] = process.argv.slice(1);
    const r = JSON.parse(require("fs").readFileSync(file, "utf8"));
    const rate = r.edits_per_sec;
    const f = (x) => x.toFixed(1);
    console.log(`| ${who} | ${rate < 20 ? rate.toFixed(1) : rate.toFixed(0)} | ${(r.delivered_share * 100).toFixed(1)} % | ${f(r.latency_ms_p50)} ms | ${f(r.latency_ms_p95)} ms | ${f(r.latency_ms_p99)} ms | ${f(r.latency_ms_max)} ms | ${(r.server_cpu_percent ?? 0).toFixed(0)} % | ${(r.bench_cpu_percent ?? 0).toFixed(0)} % |`);
  ' "$1" "$2" "$3"
}
echo "| server | edits/s | delivered | p50 | p95 | p99 | max | server CPU | load generator CPU |"
echo "|---|---|---|---|---|---|---|---|---|"
for iv in $toron_intervals; do
  [ "$iv" = - ] && continue
  token="toron_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  TORON_ADMIN_TOKEN="$token" ./target/release/toron-server --max-connections-per-token 100000 --max-changes-per-sec-per-token 1000000 --listen 127.0.0.1:0 --data "$work/toron-$iv" >"$work/t.out" 2>/dev/null &
  pid=$!
  url=$(wait_url "$work/t.out")
  ./target/release/toron --server "$url" --token "$token" bench --clients $clients --docs $docs \
    --interval-ms "$iv" --duration-secs "$duration" --server-pid "$pid" "${extra[@]}" --json >"$work/t.json" 2>/dev/null
  stop "$pid"
  row toron-server "$iv" "$work/t.json"
done
for iv in $reference_intervals; do
  [ "$iv" = - ] && continue
  node bench/reference-server.mjs "$work/reference-$iv" 0 >"$work/r.out" 2>/dev/null &
  pid=$!
  url=$(wait_url "$work/r.out")
  ./target/release/toron --server "$url" bench --clients $clients --docs $docs \
    --interval-ms "$iv" --duration-secs "$duration" --server-pid "$pid" "${extra[@]}" --json >"$work/r.json" 2>/dev/null
  stop "$pid"
  row reference "$iv" "$work/r.json"
done
