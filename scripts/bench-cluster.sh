#!/usr/bin/env bash
# The cluster's benchmarks (issue 20), everything on this machine: `scripts/cluster-up.sh`
# (three nats-servers, three Toron nodes, HAProxy), the load generator through the front.
#
#   scripts/bench-cluster.sh hall|bighall [DURATION_S]   # beside one node, same load
#   scripts/bench-cluster.sh failover [RUNS]             # SIGKILL a node under held documents
#
# hall: 200 clients × 20 documents, an edit every 500 ms; bighall: 1000 × 100, every 2 s.
# Prints the load generator's report for the cluster and for one node, with CPU (of one core)
# and peak RSS of every process. failover: `toron storm --failover` RUNS times, each killing
# another node (restarted afterwards): how long its clients take from the drop to back in sync.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?hall, bighall or failover}
case "$scenario" in
  hall) clients=200; docs=20; interval=500 ;;
  bighall) clients=1000; docs=100; interval=2000 ;;
  failover) ;;
  *) echo "bench-cluster: hall, bighall or failover" >&2; exit 2 ;;
esac
duration=${2:-30}
cargo build --release -q --locked -p toron-server -p toron-cli
work=$(mktemp -d)
token="toron_bench_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TORON_ADMIN_TOKEN=$token TORON_MAX_CONNECTIONS_PER_TOKEN=100000 \
  TORON_MAX_CHANGES_PER_SEC_PER_TOKEN=1000000 TORON_MAX_DOCS_PER_CONNECTION=100000
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# CPU ticks (user + system) of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
peak() { awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
hz=$(getconf CLK_TCK)

TORON_CLUSTER_DIR=$work/cluster scripts/cluster-up.sh >"$work/cluster.log" 2>&1 &
for _ in $(seq 600); do grep -q "the front" "$work/cluster.log" 2>/dev/null && break; sleep 0.5; done
grep -q "the front" "$work/cluster.log" || { cat "$work/cluster.log" >&2; exit 1; }
front=ws://127.0.0.1:7878
node_pid() { pgrep -f -- "--listen 127.0.0.1:788$1 " || true; }

if [ "$scenario" = failover ]; then
  runs=${2:-5}
  # The cluster's NATS addresses (with the nodes' user) and key, as cluster-up.sh made them.
  # shellcheck disable=SC1091
  . "$work/cluster/cluster.env"
  for r in $(seq "$runs"); do
    i=$(( (r - 1) % 3 + 1 ))
    ./target/release/toron --server "$front" --token "$token" storm --failover --clients 300 \
      --docs 30 --per-client 5 --offline-editors 60 --wait-secs 60 --limit-secs 30 --json \
      >"$work/storm$r.json" 2>"$work/storm$r.err" &
    storm=$!
    for _ in $(seq 600); do grep -q ready "$work/storm$r.err" 2>/dev/null && break; sleep 0.2; done
    kill -9 "$(node_pid "$i")"
    wait "$storm" || true
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      console.log(`run ${process.argv[2]} (node${process.argv[3]} killed): ${r.back_in_sync} of ${r.reconnected} reconnected clients back in sync (${r.stayed} stayed), from the drop: p50 ${r.in_sync_ms_p50} ms  p99 ${r.in_sync_ms_p99} ms  max ${r.in_sync_ms_max} ms; errors ${r.errors}`)
    ' "$work/storm$r.json" "$r" "$i"
    # The killed node comes back on its replica before the next run.
    ./target/release/toron-server --listen "127.0.0.1:788$i" --data "$work/cluster/node$i" \
      --node "node$i" >"$work/restart$r.out" 2>>"$work/cluster/node$i.log" &
    for _ in $(seq 600); do grep -q listening "$work/restart$r.out" 2>/dev/null && break; sleep 0.1; done
    sleep 2
  done
  exit 0
fi

measure() { # NAME URL PIDS...: the bench through URL, then each process's CPU and peak RSS
  name=$1; url=$2; shift 2
  declare -A before
  for p in "$@"; do before[$p]=$(ticks "$p"); done
  start=$(date +%s.%N)
  ./target/release/toron --server "$url" --token "$token" bench --clients "$clients" --docs "$docs" \
    --interval-ms "$interval" --duration-secs "$duration" 2>/dev/null | sed "s/^/$name: /"
  end=$(date +%s.%N)
  for p in "$@"; do
    cpu=$(awk -v a="${before[$p]}" -v b="$(ticks "$p")" -v s="$start" -v e="$end" -v hz="$hz" \
      'BEGIN { printf "%.0f", (b - a) / hz / (e - s) * 100 }')
    echo "$name:   $(tr '\0' ' ' <"/proc/$p/cmdline" | awk '{print $1, $2, $3}'): ${cpu} % CPU, peak RSS $(peak "$p")"
  done
}

pids=()
for i in 1 2 3; do pids+=("$(node_pid "$i")"); done
nats=($(pgrep -f "nats-server -c $work/cluster" || true))
measure "cluster (3 nodes via HAProxy)" "$front" "${pids[@]}" "${nats[@]}" "$(pgrep -f "haproxy -f $work" || true)"

./target/release/toron-server --listen 127.0.0.1:0 --data "$work/single" >"$work/single.out" 2>/dev/null &
single=$!
for _ in $(seq 200); do grep -q listening "$work/single.out" 2>/dev/null && break; sleep 0.1; done
measure "one node" "$(awk '/listening/ {print $NF}' "$work/single.out")" "$single"
