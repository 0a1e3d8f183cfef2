#!/usr/bin/env bash
# Regenerates docs/report-example.png: a fresh server, the example bundle imported, its HTML
# report opened in headless Chromium (Debian: apt-get install -y chromium fonts-noto-cjk).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --bin toron-server --bin toron
data=$(mktemp -d); out=$(mktemp); profile=$(mktemp -d); html=$(mktemp --suffix=.html)
token="toron_screenshot_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TORON_ADMIN_TOKEN="$token" ./target/release/toron-server --listen 127.0.0.1:0 --data "$data" >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data" "$out" "$profile" "$html"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
url=$(awk '{print $NF}' "$out")
./target/release/toron --server "$url" --token "$token" import examples/debate-bundle.json >/dev/null
# The token goes in a header, never in a URL: the report is saved, then opened as a file.
./target/release/toron --server "$url" --token "$token" report HB-BENCH-2012 --format html -o "$html"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1280,2000 \
  --screenshot="$PWD/docs/report-example.png" "file://$html" 2>/dev/null
echo "wrote docs/report-example.png"
