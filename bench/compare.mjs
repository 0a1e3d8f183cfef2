// Prints the side-by-side table of two `toron bench --json` reports: toron-server and the
// reference. Usage: node compare.mjs SCENARIO toron.json reference.json
import { readFileSync } from "node:fs";
const [scenario, a, b] = process.argv.slice(2);
const t = JSON.parse(readFileSync(a, "utf8"));
const r = JSON.parse(readFileSync(b, "utf8"));
const pct = (x) => (x == null ? "—" : `${(x * 100).toFixed(1)} %`);
const ms = (x) => (x == null ? "—" : `${x.toFixed(1)} ms`);
const num = (x, unit = "") => (x == null ? "—" : `${x.toFixed(0)}${unit}`);
const ratio = (x, y) => (x && y ? `${(y / x).toFixed(1)}×` : "—");
if (scenario === "storm") {
  const rows = [
    ["reconnected", `${t.reconnected} / ${t.clients}`, `${r.reconnected} / ${r.clients}`, ""],
    ["back in sync", `${t.back_in_sync} / ${t.clients}`, `${r.back_in_sync} / ${r.clients}`, ""],
    ["all connected after", ms(t.all_connected_ms), ms(r.all_connected_ms), ratio(t.all_connected_ms, r.all_connected_ms)],
    ["in sync, p50", ms(t.in_sync_ms_p50), ms(r.in_sync_ms_p50), ratio(t.in_sync_ms_p50, r.in_sync_ms_p50)],
    ["in sync, p95", ms(t.in_sync_ms_p95), ms(r.in_sync_ms_p95), ratio(t.in_sync_ms_p95, r.in_sync_ms_p95)],
    ["in sync, p99", ms(t.in_sync_ms_p99), ms(r.in_sync_ms_p99), ratio(t.in_sync_ms_p99, r.in_sync_ms_p99)],
    ["in sync, max (everyone)", ms(t.in_sync_ms_max), ms(r.in_sync_ms_max), ratio(t.in_sync_ms_max, r.in_sync_ms_max)],
    ["server CPU", num(t.server_cpu_percent, " %"), num(r.server_cpu_percent, " %"), ratio(t.server_cpu_percent, r.server_cpu_percent)],
    ["server peak RSS", num(t.server_peak_rss_mib, " MiB"), num(r.server_peak_rss_mib, " MiB"), ratio(t.server_peak_rss_mib, r.server_peak_rss_mib)],
    ["errors", String(t.errors), String(r.errors), ""],
  ];
  console.log(`### storm: ${t.clients} clients × ${t.per_client} open documents (of ${t.docs}) reconnect after a restart; ${t.offline_editors} of them edited while it was away\n`);
  console.log("| | toron-server | reference (automerge-repo 2.5.6) | reference ÷ toron |");
  console.log("|---|---|---|---|");
  for (const [k, x, y, z] of rows) console.log(`| ${k} | ${x} | ${y} | ${z} |`);
  for (const [who, x] of [["toron-server", t], ["reference", r]])
    for (const e of x.first_errors || []) console.log(`\n${who} error: ${e}`);
  process.exit(0);
}
const rows = [
  ["delivered", pct(t.delivered_share), pct(r.delivered_share), ""],
  ["edits fully delivered", pct(t.edits_fully_delivered_share), pct(r.edits_fully_delivered_share), ""],
  ["p50", ms(t.latency_ms_p50), ms(r.latency_ms_p50), ratio(t.latency_ms_p50, r.latency_ms_p50)],
  ["p95", ms(t.latency_ms_p95), ms(r.latency_ms_p95), ratio(t.latency_ms_p95, r.latency_ms_p95)],
  ["p99", ms(t.latency_ms_p99), ms(r.latency_ms_p99), ratio(t.latency_ms_p99, r.latency_ms_p99)],
  ["max", ms(t.latency_ms_max), ms(r.latency_ms_max), ratio(t.latency_ms_max, r.latency_ms_max)],
  ["p99, last minute", ms(t.latency_ms_p99_last_minute), ms(r.latency_ms_p99_last_minute), ratio(t.latency_ms_p99_last_minute, r.latency_ms_p99_last_minute)],
  ["server CPU", num(t.server_cpu_percent, " %"), num(r.server_cpu_percent, " %"), ratio(t.server_cpu_percent, r.server_cpu_percent)],
  ["server peak RSS", num(t.server_peak_rss_mib, " MiB"), num(r.server_peak_rss_mib, " MiB"), ratio(t.server_peak_rss_mib, r.server_peak_rss_mib)],
  ["errors", String(t.errors), String(r.errors), ""],
];
console.log(`### ${scenario}: ${t.clients} clients × ${t.docs} documents × 1 edit every ${t.interval_ms} ms, ${t.duration_s} s\n`);
console.log("| | toron-server | reference (automerge-repo 2.5.6) | reference ÷ toron |");
console.log("|---|---|---|---|");
for (const [k, x, y, z] of rows) console.log(`| ${k} | ${x} | ${y} | ${z} |`);
