#!/usr/bin/env bash
# History benchmark of issue 4 (rebuild, state at a point, timeline projection and replay);
# prints a Markdown table. See BENCHMARKS.md.
#   scripts/bench-history.sh [CHANGES]     (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p toron-tests --bin bench-history -- "${1:-100000}"
