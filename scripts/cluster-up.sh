#!/usr/bin/env bash
# A Toron cluster on this machine: three nats-server processes (one NATS cluster on loopback,
# JetStream on, each its own data folder), three Toron nodes whose log is the JetStream stream
# (each node's sled a replica of it), and an HAProxy front that health-checks each node's
# /healthz — clients are given the front's one address. Ctrl-C stops everything.
#
#   scripts/cluster-up.sh              # front on 127.0.0.1:7878, data in ./toron-cluster
#   TORON_CLUSTER_DIR=/srv/toron TORON_FRONT=0.0.0.0:7878 scripts/cluster-up.sh
#
# Needs Debian's nats-server and haproxy (apt-get install -y nats-server haproxy).
# The organizer token is TORON_ADMIN_TOKEN, or one made on the first run and kept in
# $TORON_CLUSTER_DIR/admin-token (every node must bootstrap with the same token).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${TORON_CLUSTER_DIR:-./toron-cluster}
front=${TORON_FRONT:-127.0.0.1:7878}
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
haproxy_bin=$(command -v haproxy || echo /usr/sbin/haproxy)
for b in "$nats_bin" "$haproxy_bin"; do
  [ -x "$b" ] || { echo "cluster-up: $b is missing (apt-get install -y nats-server haproxy)" >&2; exit 1; }
done
mkdir -p "$dir" && chmod 700 "$dir"
if [ -z "${TORON_ADMIN_TOKEN:-}" ]; then
  [ -s "$dir/admin-token" ] || { echo "toron_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$dir/admin-token"; chmod 600 "$dir/admin-token"; }
  TORON_ADMIN_TOKEN=$(cat "$dir/admin-token")
fi
export TORON_ADMIN_TOKEN
# The nodes' NATS user (nothing else may connect: the log holds every note) and the cluster's
# key (every entry a node publishes is signed with it; nodes apply only what verifies). Both
# made on the first run and kept in $dir (0600); given to the nodes in their environment,
# which `ps` does not show.
secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -s "$dir/nats-password" ] || { secret >"$dir/nats-password"; chmod 600 "$dir/nats-password"; }
[ -s "$dir/cluster-key" ] || { secret >"$dir/cluster-key"; chmod 600 "$dir/cluster-key"; }
nats_password=$(cat "$dir/nats-password")
export TORON_CLUSTER_KEY=$(cat "$dir/cluster-key")

echo "cluster-up: building toron-server (release)"
cargo build --release -q --locked -p toron-server
server=./target/release/toron-server

pids=()
stop() {
  trap - INT TERM EXIT
  echo "cluster-up: stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# NATS: client ports 4221–4223, routes 6221–6223.
urls=()
for i in 1 2 3; do
  mkdir -p "$dir/nats$i"
  routes=""
  for j in 1 2 3; do
    [ "$j" = "$i" ] || routes="${routes:+$routes, }\"nats-route://127.0.0.1:622$j\""
  done
  cat >"$dir/nats$i.conf" <<EOF
server_name: nats$i
listen: 127.0.0.1:422$i
max_payload: 8MB
# Only the Toron nodes, as user toron, and only on the subjects a node uses.
authorization {
  users: [ { user: toron, password: "$nats_password",
             permissions: { publish: ["toron.>", "\$JS.API.>", "\$JS.ACK.>", "_INBOX.>"],
                            subscribe: ["toron.>", "_INBOX.>"] } } ]
}
jetstream { store_dir: "$dir/nats$i", max_memory_store: 256MB, max_file_store: 20GB }
cluster { name: toron, listen: 127.0.0.1:622$i, routes: [$routes] }
EOF
  chmod 600 "$dir/nats$i.conf"
  "$nats_bin" -c "$dir/nats$i.conf" -l "$dir/nats$i.log" &
  pids+=($!)
  urls+=("nats://toron:$nats_password@127.0.0.1:422$i")
done
export TORON_CLUSTER=$(IFS=,; echo "${urls[*]}")
# What a script needs to start a node again (bench-cluster.sh restarts them).
printf 'export TORON_CLUSTER=%q\nexport TORON_CLUSTER_KEY=%q\n' "$TORON_CLUSTER" "$TORON_CLUSTER_KEY" >"$dir/cluster.env"
chmod 600 "$dir/cluster.env"

# Toron nodes on 7881–7883, each with its own replica.
for i in 1 2 3; do
  "$server" --listen "127.0.0.1:788$i" --data "$dir/node$i" --node "node$i" \
    >"$dir/node$i.out" 2>"$dir/node$i.log" &
  pids+=($!)
done
for i in 1 2 3; do
  # A node waits for the NATS cluster to elect its JetStream leader (seconds) and catches up.
  for _ in $(seq 1500); do grep -q listening "$dir/node$i.out" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$dir/node$i.out" || { echo "cluster-up: node$i did not start; see $dir/node$i.log" >&2; tail -5 "$dir/node$i.log" >&2; exit 1; }
done

# The front: WebSockets and HTTP to a node that answers /healthz; a node that stops
# answering is taken out within a second and its sockets are closed, so clients reconnect
# through the front to another node.
# Each proxied connection takes two descriptors: stay within this shell's limit.
maxconn=$(( ($(ulimit -n) - 64) / 2 )); [ "$maxconn" -gt 20000 ] && maxconn=20000
cat >"$dir/haproxy.cfg" <<EOF
global
  maxconn $maxconn
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  timeout http-request 10s
frontend toron
  bind $front
  default_backend nodes
backend nodes
  balance leastconn
  # A connection refused by a node that just died is tried on another node at once.
  retries 3
  option redispatch 1
  option httpchk GET /healthz
  http-check expect status 200
  default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
  server node1 127.0.0.1:7881 check
  server node2 127.0.0.1:7882 check
  server node3 127.0.0.1:7883 check
EOF
"$haproxy_bin" -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://$front/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
kill -0 "${pids[-1]}" 2>/dev/null || { echo "cluster-up: haproxy did not start:" >&2; cat "$dir/haproxy.log" >&2; exit 1; }

echo "cluster-up: three NATS servers (127.0.0.1:4221–4223, user toron), three Toron nodes (127.0.0.1:7881–7883)"
echo "toron-server listening on ws://$front (the front)"
echo "cluster-up: organizer token in TORON_ADMIN_TOKEN or $dir/admin-token; logs in $dir; Ctrl-C stops all"
# Until Ctrl-C: a process that ends (a node killed to try failover) leaves the others running.
wait
