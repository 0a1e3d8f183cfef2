// Interop check: the official JavaScript automerge-repo client (2.5.x, pinned by
// package-lock.json) against a real toron-server.
//
//   TORON_SERVER_BIN=target/debug/toron-server [TORON_BIN=target/debug/toron] \
//   [TORON_INTEROP_MODE=token|open] node interop.mjs
//
// In `token` mode (the default) the server runs secured and the clients pass the organizer's
// token in the URL (`?token=`), as browsers must; in `open` mode it runs with `--open`.
// Starts the server on a free port over a temporary data directory, then: creates a document,
// finds it from a second repo, edits it, merges two concurrent edits, and checks that an
// unknown document is reported unavailable quickly, and (secured) that another participant
// joining with a connected client's peer id is refused without disturbing it. Exits non-zero
// on the first failure.

import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import assert from "node:assert/strict";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { until, withTimeout } from "./waiting.mjs";

const serverBin = process.env.TORON_SERVER_BIN;
if (!serverBin) {
  console.error("set TORON_SERVER_BIN to the toron-server binary");
  process.exit(2);
}

const mode = process.env.TORON_INTEROP_MODE || "token";
const token = mode === "token" ? `toron_node_${randomBytes(24).toString("hex")}` : null;
const dataDir = mkdtempSync(join(tmpdir(), "toron-node-"));
const serverArgs = ["--listen", "127.0.0.1:0", "--data", dataDir];
if (mode === "open") serverArgs.unshift("--open");
const server = spawn(serverBin, serverArgs, {
  stdio: ["ignore", "pipe", "inherit"],
  env: { ...process.env, RUST_LOG: process.env.TORON_INTEROP_LOG || "warn", ...(token ? { TORON_ADMIN_TOKEN: token } : {}) },
});

function cleanup() {
  server.kill("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
}
// Whatever happens, never leave the server running behind us.
process.on("exit", () => server.kill("SIGKILL"));
process.on("uncaughtException", (e) => {
  console.error(`not ok - uncaught: ${e.stack || e}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
});

/// Shuts down a repo whose adapter reconnects every 100 ms (the attacker refused over and over):
/// its socket may be mid-handshake at that instant, and `ws` then reports the abort as an
/// error event that the adapter (which removes its own listener first) leaves unhandled. That
/// abort is this test's own doing, not the server's.
async function shutdownReconnecting(repo, adapter) {
  adapter.socket?.on?.("error", () => {});
  await repo.shutdown();
}

function newRepo(url, peerId) {
  return new Repo({ network: [new WebSocketClientAdapter(url)], peerId });
}

/** find() may reject while the handshake is still running (1 s readiness fallback): retry once. */
async function find(repo, docUrl) {
  try {
    return await withTimeout(repo.find(docUrl), `find ${docUrl}`);
  } catch (e) {
    await new Promise((r) => setTimeout(r, 500));
    return await withTimeout(repo.find(docUrl), `find ${docUrl} (retry)`);
  }
}

const results = [];
async function check(name, fn) {
  const started = Date.now();
  await fn();
  results.push(name);
  console.log(`ok - ${name} (${Date.now() - started} ms)`);
}

async function main() {
  const lines = createInterface({ input: server.stdout });
  const url = await withTimeout(
    new Promise((resolve) => lines.once("line", (l) => resolve(l.split(" ").pop()))),
    "server start",
  );
  assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  const clientUrl = token ? `${url}/sync?token=${encodeURIComponent(token)}` : url;

  const alice = newRepo(clientUrl, "js-alice");
  const bob = newRepo(clientUrl, "js-bob");
  const carol = newRepo(clientUrl, "js-carol");
  let created;
  let bobHandle;

  await check("create a document and find it from another repo", async () => {
    created = alice.create({ title: "도서관 사례", count: 0, notes: [] });
    // Wait until the server has it: a fresh repo can then find it.
    await withTimeout(alice.networkSubsystem.whenReady(), "alice network ready");
    bobHandle = await find(bob, created.url);
    const doc = await until(bobHandle, (d) => d.title === "도서관 사례", "bob sees the title");
    assert.equal(doc.count, 0);
  });

  await check("an edit reaches the other client", async () => {
    created.change((d) => {
      d.count = 1;
      d.notes.push("first");
    });
    await until(bobHandle, (d) => d.count === 1 && d.notes.length === 1, "bob sees alice's edit");
  });

  await check("two concurrent edits merge", async () => {
    created.change((d) => {
      d.alice = "a";
    });
    bobHandle.change((d) => {
      d.bob = "b";
    });
    const pred = (d) => d.alice === "a" && d.bob === "b";
    await until(created, pred, "alice has both");
    await until(bobHandle, pred, "bob has both");
  });

  await check("an unknown document is unavailable quickly", async () => {
    await withTimeout(carol.networkSubsystem.whenReady(), "carol network ready");
    const started = Date.now();
    await assert.rejects(
      withTimeout(carol.find("automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu"), "unavailable answer", 5000),
      /unavailable/,
    );
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  });

  if (process.env.TORON_BIN) {
    await check("the toron CLI reads what JavaScript wrote", async () => {
      const tokenArgs = token ? ["--token", token] : [];
      const out = execFileSync(process.env.TORON_BIN, ["--server", url, ...tokenArgs, "get", created.url], { encoding: "utf8" });
      const doc = JSON.parse(out);
      assert.equal(doc.title, "도서관 사례");
      assert.equal(doc.alice, "a");
      assert.equal(doc.bob, "b");
    });
  }

  if (token && process.env.TORON_BIN) {
    await check("another participant cannot take over a peer id", async () => {
      // Peer ids are public (the history API shows them). An observer joins with alice's,
      // reconnecting as fast as the official adapter lets it, while alice keeps editing.
      const out = execFileSync(
        process.env.TORON_BIN,
        ["--server", url, "--token", token, "admin", "participant", "add", "P-OBS", "--name", "관찰자", "--kind", "resident"],
        { encoding: "utf8" },
      );
      const observerToken = JSON.parse(out).token;
      assert.ok(observerToken, out);
      const aliceAdapter = alice.networkSubsystem.adapters[0];
      let aliceDropped = 0;
      const onDrop = () => aliceDropped++;
      aliceAdapter.on("peer-disconnected", onDrop);
      const attackerAdapter = new WebSocketClientAdapter(
        `${url}/sync?token=${encodeURIComponent(observerToken)}`,
        100,
      );
      let attackerPeered = 0;
      attackerAdapter.on("peer-candidate", () => attackerPeered++);
      const attacker = new Repo({ network: [attackerAdapter], peerId: "js-alice" });
      for (let i = 1; i <= 10; i++) {
        created.change((d) => {
          d.count = 100 + i;
        });
        await new Promise((r) => setTimeout(r, 300));
      }
      await until(bobHandle, (d) => d.count === 110, "bob sees all of alice's edits");
      await shutdownReconnecting(attacker, attackerAdapter);
      aliceAdapter.off("peer-disconnected", onDrop);
      assert.equal(aliceDropped, 0, "alice was never disconnected");
      assert.equal(attackerPeered, 0, "the server never accepted the stolen peer id");

      // Issue 29: the chair's phone drops; while it is away, the observer tries her peer id
      // over and over; she comes back as herself and gets what changed meanwhile.
      const chair = newRepo(clientUrl, "js-chair-phone");
      const chairHandle = await find(chair, created.url);
      await until(chairHandle, (d) => d.count === 110, "the chair has the document");
      await chair.shutdown();
      const squatAdapter = new WebSocketClientAdapter(`${url}/sync?token=${encodeURIComponent(observerToken)}`, 100);
      let squatPeered = 0;
      squatAdapter.on("peer-candidate", () => squatPeered++);
      const squatter = new Repo({ network: [squatAdapter], peerId: "js-chair-phone" });
      created.change((d) => {
        d.count = 111;
      });
      await new Promise((r) => setTimeout(r, 2000));
      await shutdownReconnecting(squatter, squatAdapter);
      assert.equal(squatPeered, 0, "nobody took the dropped chair's peer id");
      const back = newRepo(clientUrl, "js-chair-phone");
      const backHandle = await find(back, created.url);
      await until(backHandle, (d) => d.count === 111, "the chair is back and has the edit made while she was away");
      await back.shutdown();
    });
  }

  if (token && process.env.TORON_BIN) {
    await check("a refused change is told once and not resent in a loop", async () => {
      // An activist's own notes layer in a live session; she writes an annotation kind
      // outside the vocabulary (refused), then keeps editing for 3 s with an adapter that
      // would reconnect every 100 ms if the server closed it.
      const as = (who, ...args) =>
        execFileSync(process.env.TORON_BIN, ["--server", url, "--token", who, ...args], { encoding: "utf8" });
      const cli = (...args) => as(token, ...args);
      cli("admin", "session", "add", "S-JS", "--series", "JS", "--phase", "live");
      const activistToken = JSON.parse(
        cli("admin", "participant", "add", "P-ACT", "--name", "활동가", "--kind", "activist"),
      ).token;
      cli("admin", "grant", "P-ACT", "activist", "--session", "S-JS");
      const notesUrl = JSON.parse(cli("admin", "doc", "register", "notes:S-JS:P-ACT")).url;
      as(activistToken, "set", "--create", notesUrl, "annotations", "{}"); // she opens her layer
      const adapter = new WebSocketClientAdapter(
        `${url}/sync?token=${encodeURIComponent(activistToken)}`,
        100,
      );
      let dropped = 0;
      adapter.on("peer-disconnected", () => dropped++);
      const errors = [];
      const receive = adapter.receiveMessage.bind(adapter);
      adapter.receiveMessage = (bytes) => {
        const text = Buffer.from(bytes).toString("utf8");
        // The protocol's `error` (which this client only logs); the ephemeral notice below
        // carries the word too.
        if (text.includes("refused") && !text.includes("ephemeral")) errors.push(text);
        return receive(bytes);
      };
      const activist = new Repo({ network: [adapter], peerId: "js-activist" });
      const notes = await find(activist, notesUrl);
      // The application hears of the refusal: an ephemeral notice on the document's handle.
      const notices = [];
      notes.on("ephemeral-message", (e) => notices.push(e.message));
      const metric = async () => {
        const m = await (await fetch(`${url.replace("ws:", "http:")}/metrics`)).text();
        return Number((m.match(/changes_rejected_total (\d+)/) || [0, 0])[1]);
      };
      const before = await metric();
      notes.change((d) => {
        d.annotations = { "a-1": { kind: "nonsense", body: "어휘 밖의 종류" } };
      });
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 300));
        notes.change((d) => {
          d.annotations["a-1"].body = `고쳐 쓴 의견 ${i}`;
        });
      }
      const refusedChanges = (await metric()) - before;
      const droppedWhileEditing = dropped; // shutdown() itself disconnects
      await shutdownReconnecting(activist, adapter);
      assert.equal(droppedWhileEditing, 0, "the activist's client was never disconnected");
      assert.equal(errors.length, 1, `told once: ${errors.length} error messages`);
      assert.equal(notices.length, 1, `the application told once: ${JSON.stringify(notices)}`);
      assert.equal(notices[0].toron, "refused");
      assert.equal(notices[0].kind, "value", JSON.stringify(notices[0]));
      assert.match(notices[0].reason, /nonsense/);
      assert.ok(refusedChanges >= 1 && refusedChanges <= 2, `${refusedChanges} changes refused in 3 s`);
    });
  }

  await Promise.all([alice.shutdown(), bob.shutdown(), carol.shutdown()]);
}

main()
  .then(() => {
    console.log(`mode: ${mode}`);
    console.log(`${results.length} passed, 0 failed`);
    cleanup();
    process.exit(0);
  })
  .catch((e) => {
    console.error(`not ok - ${e.stack || e}`);
    console.log(`${results.length} passed, 1 failed`);
    cleanup();
    process.exit(1);
  });
