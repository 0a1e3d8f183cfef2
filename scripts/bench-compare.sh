#!/usr/bin/env bash
# Runs one scenario against toron-server and against the automerge-repo reference server
# (bench/reference-server.mjs) in the same run, with the same load generator (`toron bench`),
# and prints both results and their ratios as Markdown. The load generator shares the machine.
#   scripts/bench-compare.sh room|hall|bighall|typing [DURATION_S]   (typing: 600 s by default)
#   scripts/bench-compare.sh storm   (the server is restarted once its clients are ready)
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?room, hall, bighall, typing or storm}; duration=${2:-60}
extra=()
case "$scenario" in
  room) clients=50; docs=1; interval=1000 ;;
  hall) clients=200; docs=20; interval=500 ;;
  bighall) clients=1000; docs=100; interval=2000 ;;
  # 12 writers typing 5 characters/s into their own text, each followed by 20 readers.
  typing) clients=252; docs=12; interval=200; duration=${2:-600}; extra=(--writers-per-doc 1 --text) ;;
  # 1,000 clients with 10 open documents each (of 100) reconnect at once after a restart.
  storm) clients=1000; docs=100 ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
cargo build --release -q --bin toron-server --bin toron
[ -d bench/node_modules/@automerge/automerge-repo-storage-nodefs ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
# Stops a server: SIGTERM, then SIGKILL after 10 s (a swamped reference may not get to its handler).
stop() { kill "$1" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; kill -9 "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_url() { for _ in $(seq 200); do grep -q listening "$1" 2>/dev/null && break; sleep 0.1; done; awk '/listening/ {print $NF}' "$1"; }

# storm: start SERVER_CMD..., wait until the clients hold their documents, restart the server
# on the same port, and let `toron storm` measure how the clients come back.
storm_one() { # name token-args... -- server command with PORT for the port
  local name=$1; shift
  local args=(); while [ "$1" != -- ]; do args+=("$1"); shift; done; shift
  local cmd=("$@")
  "${cmd[@]//PORT/0}" >"$work/$name.1.out" 2>/dev/null &
  local pid=$!
  local url; url=$(wait_url "$work/$name.1.out")
  local port=${url##*:}
  echo "$pid" >"$work/$name.pid"
  ./target/release/toron --server "$url" "${args[@]}" storm --clients "$clients" --docs "$docs" \
    --offline-editors "${OFFLINE:-100}" --server-pid-file "$work/$name.pid" --json >"$work/$name.json" 2>"$work/$name.err" &
  local bench=$!
  for _ in $(seq 3000); do grep -q ready "$work/$name.err" 2>/dev/null && break; sleep 0.1; done
  sleep 3 # the reference saves its documents in the background
  stop "$pid"
  "${cmd[@]//PORT/$port}" >"$work/$name.2.out" 2>/dev/null &
  pid=$!
  echo "$pid" >"$work/$name.pid"
  wait "$bench" || { cat "$work/$name.err" >&2; }
  stop "$pid"
}
if [ "$scenario" = storm ]; then
  token="toron_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export TORON_ADMIN_TOKEN="$token"
  storm_one toron --token "$token" -- ./target/release/toron-server --max-connections-per-token 100000 --max-changes-per-sec-per-token 1000000 --listen 127.0.0.1:PORT --data "$work/toron"
  [ -n "${TORON_ONLY:-}" ] && { cat "$work/toron.json"; exit 0; }
  storm_one reference -- node bench/reference-server.mjs "$work/reference" PORT
  node bench/compare.mjs storm "$work/toron.json" "$work/reference.json"
  mkdir -p bench/results
  cp "$work/toron.json" bench/results/storm-toron.json
  cp "$work/reference.json" bench/results/storm-reference.json
  exit 0
fi


token="toron_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TORON_ADMIN_TOKEN="$token" ./target/release/toron-server --max-connections-per-token 100000 --max-changes-per-sec-per-token 1000000 --listen 127.0.0.1:0 --data "$work/toron" >"$work/t.out" 2>/dev/null &
pid=$!
url=$(wait_url "$work/t.out")
./target/release/toron --server "$url" --token "$token" bench --clients "$clients" --docs "$docs" \
  --interval-ms "$interval" --duration-secs "$duration" --server-pid "$pid" "${extra[@]}" --json >"$work/toron.json" 2>/dev/null
stop "$pid"

node bench/reference-server.mjs "$work/reference" 0 >"$work/r.out" 2>/dev/null &
pid=$!
url=$(wait_url "$work/r.out")
./target/release/toron --server "$url" bench --clients "$clients" --docs "$docs" \
  --interval-ms "$interval" --duration-secs "$duration" --server-pid "$pid" "${extra[@]}" --json >"$work/reference.json" 2>/dev/null
stop "$pid"

node bench/compare.mjs "$scenario" "$work/toron.json" "$work/reference.json"
mkdir -p bench/results
cp "$work/toron.json" "bench/results/$scenario-toron.json"
cp "$work/reference.json" "bench/results/$scenario-reference.json"
