#!/usr/bin/env bash
# Runs `toron bench` against a fresh release toron-server on this machine and prints the report.
#   scripts/bench-sync.sh CLIENTS DOCS INTERVAL_MS [DURATION_S]
# e.g. scripts/bench-sync.sh 50 1 1000      (50 clients, 1 document, 1 edit/s each, 20 s)
#      scripts/bench-sync.sh 200 20 500     (200 clients, 20 documents, 2 edits/s each, 20 s)
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:?clients}; docs=${2:?docs}; interval=${3:?interval_ms}; duration=${4:-20}
cargo build --release -q --bin toron-server --bin toron
data=$(mktemp -d); out=$(mktemp)
# Secured, as in production: every client authenticates and every message is checked by the
# permission policy (the clients are the organizer, so they may create documents).
token="toron_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# (All clients share the one token: its bounds on connections and changes per second are
# raised for the benchmark.)
TORON_ADMIN_TOKEN="$token" ./target/release/toron-server --max-connections-per-token 100000 --max-changes-per-sec-per-token 1000000 --listen 127.0.0.1:0 --data "$data" >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data" "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
url=$(awk '{print $NF}' "$out")
./target/release/toron --server "$url" --token "$token" bench --clients "$clients" --docs "$docs" \
  --interval-ms "$interval" --duration-secs "$duration" --server-pid "$pid" "${@:5}"
