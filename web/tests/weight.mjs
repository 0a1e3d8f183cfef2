// The web client's weight on a venue's Wi-Fi (issue 17), measured in headless Chromium with
// the network throttled through the browser's debugging protocol (1.6 Mbps down, 0.75 Mbps
// up, 150 ms round trip) and the CPU four times slower. Bytes are what the browser received:
// every HTTP answer with its headers (`encodedDataLength`, so 304s and compression count as
// sent) and every WebSocket frame's payload.
//
// Budgets asserted: a first load shows the sessions within 5 s transferring ≤ 700 KB; a reload
// transfers ≤ 20 KB; a replay move over the session's fifty-odd notes layers answers within 1 s.
// Also printed, not asserted: the first case opened (it brings the Automerge WASM) and a
// reload on a case page.
//
// Env: TORON_URL, TOKEN (a participant of S-LIB), CHROMIUM. Run by tests/tests/web_e2e.rs, or
// by hand against any server: TORON_URL=http://127.0.0.1:8080 TOKEN=… node tests/weight.mjs

import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const URL = process.env.TORON_URL;
const TOKEN = process.env.TOKEN;
const LIMIT = 30_000;
const QUIET_MS = 1500;
const KB = 1000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const errors = [];
const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "ko-KR" });
const page = await ctx.newPage();
page.on("pageerror", (e) => errors.push(e.message));
const cdp = await ctx.newCDPSession(page);
await cdp.send("Network.enable");
await cdp.send("Network.emulateNetworkConditions", {
  offline: false,
  latency: 150,
  downloadThroughput: (1.6e6 / 8) | 0,
  uploadThroughput: (0.75e6 / 8) | 0,
});
await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });

// What arrives, by kind, since the last `reset()`.
let got = { http: 0, ws: 0, requests: [] };
let lastActivity = Date.now();
const reset = () => {
  got = { http: 0, ws: 0, requests: [] };
};
const urls = new Map();
const encodings = new Map();
cdp.on("Network.requestWillBeSent", (e) => {
  urls.set(e.requestId, e.request.url.replace(URL, ""));
  lastActivity = Date.now();
});
cdp.on("Network.responseReceived", (e) => {
  encodings.set(e.requestId, `${e.response.status} ${e.response.headers["content-encoding"] || e.response.headers["Content-Encoding"] || "-"}`);
});
cdp.on("Network.loadingFinished", (e) => {
  got.http += e.encodedDataLength;
  got.requests.push(`${urls.get(e.requestId)} ${encodings.get(e.requestId) || ""} ${e.encodedDataLength} B`);
  lastActivity = Date.now();
});
const frame = (e) => {
  const p = e.response.payloadData || "";
  // Binary frames (opcode 2) come base64-encoded.
  got.ws += e.response.opcode === 2 ? Math.floor((p.length * 3) / 4) : p.length;
  lastActivity = Date.now();
};
cdp.on("Network.webSocketFrameReceived", frame);

/// Waits until nothing has arrived for QUIET_MS (bounded).
async function quiet() {
  const until = Date.now() + LIMIT;
  while (Date.now() < until && Date.now() - lastActivity < QUIET_MS) await page.waitForTimeout(100);
}

const figures = [];
const report = (what, ms, bytes) => {
  const line = `${what}: ${ms === null ? "" : `${ms} ms, `}${(bytes / KB).toFixed(1)} KB`;
  figures.push(line);
  console.log(line);
};

try {
  // 1. First load: the join link, an empty cache, until the session list shows.
  reset();
  let t0 = Date.now();
  await page.goto(`${URL}/#/join/${TOKEN}`);
  await page.locator("a.card").first().waitFor({ timeout: LIMIT });
  const shown = Date.now() - t0;
  await quiet();
  const first = got.http + got.ws;
  console.log(got.requests.join("\n"));
  report("first load (sessions shown)", shown, first);
  assert.ok(shown <= 5000, `the sessions show within 5 s (${shown} ms)`);
  assert.ok(first <= 700 * KB, `the first load transfers ≤ 700 KB (${first} B)`);

  // 2. A reload of the same page.
  reset();
  t0 = Date.now();
  await page.reload();
  await page.locator("a.card").first().waitFor({ timeout: LIMIT });
  const reshown = Date.now() - t0;
  await quiet();
  const reload = got.http + got.ws;
  console.log(got.requests.join("\n"));
  report("reload (sessions shown)", reshown, reload);
  assert.ok(reload <= 20 * KB, `a reload transfers ≤ 20 KB (${reload} B)`);

  // 3. The first case: the WASM comes now (printed, not budgeted: it is the client's bulk).
  reset();
  t0 = Date.now();
  await page.goto(`${URL}/#/s/S-LIB/c/C-LIB-HB`);
  await page.waitForSelector(".section-text[data-path='sections.results']", { timeout: LIMIT });
  const caseShown = Date.now() - t0;
  await quiet();
  console.log(got.requests.join("\n"));
  report(`first case opened (WASM included; ${got.ws} B of it WebSocket)`, caseShown, got.http + got.ws);

  // 4. A reload on the case page: documents come from the browser's storage, the sync only
  //    confirms them.
  reset();
  t0 = Date.now();
  await page.reload();
  await page.waitForSelector(".section-text[data-path='sections.results']", { timeout: LIMIT });
  const caseReshown = Date.now() - t0;
  await quiet();
  report(`case page reloaded (${got.ws} B of it WebSocket)`, caseReshown, got.http + got.ws);

  // 5. Replay moves over every layer of the session: one request each, timed from the key
  //    press to the moment shown with its annotations.
  await page.goto(`${URL}/#/s/S-LIB/replay`);
  const slider = page.locator("#slider");
  await slider.waitFor({ timeout: LIMIT });
  const layers = await page.evaluate(() => window.toron.sessions.find((s) => s.key === "S-LIB").layers.length);
  assert.ok(layers >= 50, `${layers} notes layers`);
  const moves = [];
  let bytes = 0;
  await slider.focus();
  for (let i = 0; i < 8; i++) {
    const before = await page.locator("#when").innerText();
    reset();
    const t = Date.now();
    await page.keyboard.press(i % 2 ? "PageUp" : "PageDown");
    await page.waitForFunction((b) => document.querySelector("#when")?.textContent !== b, before, { timeout: LIMIT });
    moves.push(Date.now() - t);
    await quiet();
    bytes = Math.max(bytes, got.http);
    await page.locator("#slider").focus();
  }
  moves.sort((a, b) => a - b);
  const p50 = moves[Math.floor(moves.length / 2)];
  // Of which the request itself (sent to last byte: the link's round trip, the server, the transfer).
  const requests = (
    await page.evaluate(() =>
      performance
        .getEntriesByType("resource")
        .filter((e) => e.name.includes("/state?"))
        .map((e) => Math.round(e.responseEnd - e.requestStart)),
    )
  ).sort((a, b) => a - b);
  console.log(`replay requests (sent to last byte): p50 ${requests[Math.floor(requests.length / 2)]} ms, max ${requests[requests.length - 1]} ms`);
  report(`replay move over ${layers} layers (p50; max ${moves[moves.length - 1]} ms; largest answer)`, p50, bytes);
  assert.ok(moves[moves.length - 1] <= 1000, `every replay move answers within 1 s (${moves.join(", ")} ms)`);

  assert.deepEqual(errors, [], "no page errors");
  console.log("weight: ok");
} finally {
  await browser.close();
}
