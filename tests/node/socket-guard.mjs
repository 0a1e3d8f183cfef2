// The hall client's socket guard (web/src/socket.js, issue 30): the official automerge-repo
// 2.5.6 WebSocket adapter throws when asked to send on a socket that is not open, and a socket
// closed mid-sync froze a client for good. Here a reader's socket is closed twenty times in the
// middle of a writer's stream of changes, each time with a change of the reader's own made
// while the socket is closing; the reader must still receive everything, the writer must get
// every one of the reader's changes, and nothing may throw out of the repo.
//
// Env: TORON_URL (ws://…, an open-mode server), GUARD (1: the hall's guarded adapter, as the
// web client uses it; 0: the adapter as released). Prints `socket guard: ok`.

import assert from "node:assert/strict";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { guarded } from "../../web/src/socket.js";
import { until, withTimeout } from "./waiting.mjs";

const url = `${process.env.TORON_URL}/sync`;
const guard = process.env.GUARD !== "0";
const escaped = [];
process.on("uncaughtException", (e) => escaped.push(String(e?.message || e)));
process.on("unhandledRejection", (e) => escaped.push(String(e?.message || e)));
// What the repo caught and logged of a send that threw (automerge-repo logs "sync with peers
// threw an exception" and the adapter's "Websocket not ready"): none may happen when guarded.
let threw = 0;
for (const level of ["error", "warn", "log"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    if (/threw an exception|not ready/i.test(args.map(String).join(" "))) threw += 1;
    else original(...args);
  };
}
// Bounded as a whole, whatever escapes.
const WAIT_S = Number(process.env.WAIT_S || 60);
setTimeout(() => {
  console.log(`socket guard: ${guard ? "guarded" : "as released"}: still waiting after ${WAIT_S} s (frozen); escaped: ${escaped.slice(0, 2).join(" | ")} (${escaped.length})`);
  process.exit(1);
}, WAIT_S * 1000).unref();
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

const Adapter = guard ? guarded(WebSocketClientAdapter) : WebSocketClientAdapter;
const writerAdapter = new WebSocketClientAdapter(url, 200);
const readerAdapter = new Adapter(url, 200);
const writer = new Repo({ network: [writerAdapter], peerId: `guard-writer-${process.pid}` });
const reader = new Repo({ network: [readerAdapter], peerId: `guard-reader-${process.pid}` });

const handle = writer.create({ n: 0 });
await until(handle, (d) => d.n === 0, "the writer's document");
let stop = false;
const stream = (async () => {
  for (let i = 1; !stop && i < 100_000; i++) {
    handle.change((d) => (d.n = i));
    await pause(15);
  }
})();
// The reader opens it once the server has it (the writer's first sync).
let mine = null;
for (let i = 0; i < 20 && !mine; i++) {
  await pause(250);
  mine = await withTimeout(reader.find(handle.url), "the reader opens the document").catch(() => null);
}
assert.ok(mine, "the reader opens the writer's document");
await until(mine, (d) => d.n > 0, "the reader receives");
const CLOSES = 20;
for (let i = 0; i < CLOSES; i++) {
  await pause(60 + ((i * 37) % 140));
  const socket = readerAdapter.socket;
  if (socket && socket.readyState === 1) {
    socket.close();
    // The reader writes while its socket is closing: the adapter is asked to send now.
    mine.change((d) => (d[`r${i}`] = i));
  }
  await pause(20);
}
stop = true;
await stream;
const last = handle.doc().n;
handle.change((d) => (d.done = true));
try {
  await until(mine, (d) => d.done === true && d.n === last, "the reader still receives after the closes");
  await until(handle, (d) => Array.from({ length: CLOSES }, (_, i) => `r${i}`).filter((k) => k in d).length > 0, "the writer has the reader's changes");
  const got = Object.keys(handle.doc()).filter((k) => k.startsWith("r")).length;
  const made = Object.keys(mine.doc()).filter((k) => k.startsWith("r")).length;
  await until(handle, (d) => Object.keys(d).filter((k) => k.startsWith("r")).length === made, `all ${made} of the reader's changes reach the writer (${got} so far)`);
  console.log(`socket guard: ${guard ? "guarded" : "as released"}; ${CLOSES} closes mid-sync; the reader has n=${mine.doc().n}, the writer all ${made} of its changes; sends that threw: ${threw}`);
  assert.deepEqual(escaped, [], "nothing threw out of the repo");
  assert.equal(threw, 0, "no send threw inside the repo either");
  console.log("socket guard: ok");
} catch (e) {
  console.log(`socket guard: ${guard ? "guarded" : "as released"}: ${e.message}; escaped: ${escaped.slice(0, 3).join(" | ")} (${escaped.length})`);
  process.exitCode = 1;
} finally {
  writer.shutdown();
  reader.shutdown();
  setTimeout(() => process.exit(process.exitCode || 0), 200);
}
