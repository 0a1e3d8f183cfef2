// Prints the side-by-side table of two `toron bench --json` reports: toron-server and the
// reference. Usage: node compare.mjs SCENARIO toron.json reference.json
import { readFileSync } from "node:fs";
const [scenario, a, b] = process.argv.slice(2);
const t = JSON.parse(readFileSync(a, "utf8"));
const r = JSON.parse(readFileSync(b, "utf8"));
const pct = (x) => (x == null ? "—" : `${(x * 100).toFixed(1)} %`);
const ms = (x) => (x == null ? "—" : `${x.toFixed(1)} ms`);
const mib = (x) => (x == null ? "—" : `${x.toFixed(0)} MiB`);
const cpu = (x) => (x == null ? "—" : `${x.toFixed(0)} %`);
const ratio = (x, y) => (x && y ? `${(y / x).toFixed(1)}×` : "—");
const outOfClients = (key) => (x) => `${x[key]} / ${x.clients}`;

// A row: its label, how to show one report's value, and whether the ratio is meaningful.
// `show` takes the field's value, or (for `whole`) the whole report.
const row = (label, key, show, withRatio = true) => ({ label, key, show, withRatio });
const shared = [
  row("server CPU", "server_cpu_percent", cpu),
  row("server peak RSS", "server_peak_rss_mib", mib),
  row("errors", "errors", String, false),
];
const storm = [
  { label: "reconnected", whole: outOfClients("reconnected") },
  { label: "back in sync", whole: outOfClients("back_in_sync") },
  row("all connected after", "all_connected_ms", ms),
  ...["p50", "p95", "p99"].map((p) => row(`in sync, ${p}`, `in_sync_ms_${p}`, ms)),
  row("in sync, max (everyone)", "in_sync_ms_max", ms),
  ...shared,
];
const room = [
  row("delivered", "delivered_share", pct, false),
  row("edits fully delivered", "edits_fully_delivered_share", pct, false),
  ...["p50", "p95", "p99", "max"].map((p) => row(p, `latency_ms_${p}`, ms)),
  row("p99, last minute", "latency_ms_p99_last_minute", ms),
  ...shared,
];

if (scenario === "storm") {
  console.log(`### storm: ${t.clients} clients × ${t.per_client} open documents (of ${t.docs}) reconnect after a restart; ${t.offline_editors} of them edited while it was away\n`);
} else {
  console.log(`### ${scenario}: ${t.clients} clients × ${t.docs} documents × 1 edit every ${t.interval_ms} ms, ${t.duration_s} s\n`);
}
console.log("| | toron-server | reference (automerge-repo 2.5.6) | reference ÷ toron |");
console.log("|---|---|---|---|");
for (const { label, key, show, whole, withRatio } of scenario === "storm" ? storm : room) {
  const [x, y] = whole ? [whole(t), whole(r)] : [show(t[key]), show(r[key])];
  console.log(`| ${label} | ${x} | ${y} | ${withRatio ? ratio(t[key], r[key]) : ""} |`);
}
if (scenario === "storm")
  for (const [who, x] of [["toron-server", t], ["reference", r]])
    for (const e of x.first_errors || []) console.log(`\n${who} error: ${e}`);
