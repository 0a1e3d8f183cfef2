#!/usr/bin/env bash
# Regenerates docs/report-example.png and the PDF's pages docs/report-pdf-*.png: a fresh
# server, the example bundle imported, its HTML report opened in headless Chromium, its PDF
# report's cover, first chart and first department table drawn by poppler's pdftoppm
# (Debian: apt-get install -y chromium fonts-noto-cjk poppler-utils).
set -euo pipefail
cd "$(dirname "$0")/.."
# A debug build: the pictures do not depend on speed, and a release build of the PDF
# typesetter takes minutes.
cargo build -q --bin toron-server --bin toron
data=$(mktemp -d); out=$(mktemp); profile=$(mktemp -d); html=$(mktemp --suffix=.html)
token="toron_screenshot_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TORON_ADMIN_TOKEN="$token" ./target/debug/toron-server --listen 127.0.0.1:0 --data "$data" >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data" "$out" "$profile" "$html"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
url=$(awk '{print $NF}' "$out")
./target/debug/toron --server "$url" --token "$token" import examples/debate-bundle.json >/dev/null
# The token goes in a header, never in a URL: the report is saved, then opened as a file.
./target/debug/toron --server "$url" --token "$token" report HB-BENCH-2012 --format html -o "$html"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1280,2000 \
  --screenshot="$PWD/docs/report-example.png" "file://$html" 2>/dev/null
echo "wrote docs/report-example.png"

pdf=$(mktemp --suffix=.pdf); trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data" "$out" "$profile" "$html" "$pdf"' EXIT
./target/debug/toron --server "$url" --token "$token" report HB-BENCH-2012 --format pdf -o "$pdf"
pages=$(pdfinfo "$pdf" | awk '/^Pages:/ {print $2}')
# page_with TEXT…: the first page whose text holds every TEXT.
page_with() {
  for p in $(seq "$pages"); do
    text=$(pdftotext -f "$p" -l "$p" "$pdf" - 2>/dev/null)
    all=1
    for t in "$@"; do grep -q "$t" <<<"$text" || all=0; done
    if [ "$all" = 1 ]; then echo "$p"; return; fi
  done
  echo "no page holds $*" >&2; exit 1
}
shot() { pdftoppm -f "$1" -l "$1" -r 60 -png -singlefile "$pdf" "docs/report-pdf-$2"; echo "wrote docs/report-pdf-$2.png (page $1)"; }
shot 1 cover
shot "$(page_with '그림 1')" chart
shot "$(page_with 'Ⅲ. 부서별 정리' '조치계획')" department
