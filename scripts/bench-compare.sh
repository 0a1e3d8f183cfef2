#!/usr/bin/env bash
# Runs one scenario against toron-server and against the automerge-repo reference server
# (bench/reference-server.mjs) in the same run, with the same load generator (`toron bench`),
# and prints both results and their ratios as Markdown. The load generator shares the machine.
#   scripts/bench-compare.sh room|hall|bighall|typing [DURATION_S]   (typing: 600 s by default)
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?room, hall, bighall or typing}; duration=${2:-60}
extra=()
case "$scenario" in
  room) clients=50; docs=1; interval=1000 ;;
  hall) clients=200; docs=20; interval=500 ;;
  bighall) clients=1000; docs=100; interval=2000 ;;
  # 12 writers typing 5 characters/s into their own text, each followed by 20 readers.
  typing) clients=252; docs=12; interval=200; duration=${2:-600}; extra=(--writers-per-doc 1 --text) ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
cargo build --release -q --bin toron-server --bin toron
[ -d bench/node_modules/@automerge/automerge-repo-storage-nodefs ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
wait_url() { for _ in $(seq 200); do grep -q listening "$1" 2>/dev/null && break; sleep 0.1; done; awk '/listening/ {print $NF}' "$1"; }

token="toron_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TORON_ADMIN_TOKEN="$token" ./target/release/toron-server --listen 127.0.0.1:0 --data "$work/toron" >"$work/t.out" 2>/dev/null &
pid=$!
url=$(wait_url "$work/t.out")
./target/release/toron --server "$url" --token "$token" bench --clients "$clients" --docs "$docs" \
  --interval-ms "$interval" --duration-secs "$duration" --server-pid "$pid" "${extra[@]}" --json >"$work/toron.json" 2>/dev/null
kill "$pid"; wait "$pid" 2>/dev/null || true

node bench/reference-server.mjs "$work/reference" 0 >"$work/r.out" 2>/dev/null &
pid=$!
url=$(wait_url "$work/r.out")
./target/release/toron --server "$url" bench --clients "$clients" --docs "$docs" \
  --interval-ms "$interval" --duration-secs "$duration" --server-pid "$pid" "${extra[@]}" --json >"$work/reference.json" 2>/dev/null
kill "$pid"; wait "$pid" 2>/dev/null || true

node bench/compare.mjs "$scenario" "$work/toron.json" "$work/reference.json"
mkdir -p bench/results
cp "$work/toron.json" "bench/results/$scenario-toron.json"
cp "$work/reference.json" "bench/results/$scenario-reference.json"
