// The official JavaScript client in a Toron cluster (issue 20), driven by
// tests/tests/suite/cluster_interop.rs: alice writes through node 1, bob reads through node 3, and
// alice then sees an edit that samod made through node 3.
//
//   NODE1_URL=ws://…/sync?token=… NODE3_URL=ws://…/sync?token=… node cluster.mjs
//
// Prints `url <automerge url>` once bob (node 3) holds alice's document, then waits for
// samod's edit (`samod: "노드 3에서"`) to reach alice (node 1) and prints `ok`.

import assert from "node:assert/strict";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { until, withTimeout } from "./waiting.mjs";

const { NODE1_URL, NODE3_URL } = process.env;
if (!NODE1_URL || !NODE3_URL) {
  console.error("set NODE1_URL and NODE3_URL");
  process.exit(2);
}
const repo = (url, peerId) => new Repo({ network: [new WebSocketClientAdapter(url)], peerId });

async function find(r, url) {
  // Node 3 may not have applied the document yet when bob first asks: ask again.
  for (let i = 0; i < 20; i++) {
    try {
      return await withTimeout(r.find(url), `find ${url}`, 3000);
    } catch (e) {
      await new Promise((res) => setTimeout(res, 250));
    }
  }
  throw new Error(`node 3 never served ${url}`);
}

const alice = repo(NODE1_URL, "js-alice-node1");
const bob = repo(NODE3_URL, "js-bob-node3");
try {
  const created = alice.create({ title: "도서관 사례", notes: ["첫 메모"], count: 1 });
  await withTimeout(alice.networkSubsystem.whenReady(), "alice's network");
  const handle = await find(bob, created.url);
  const doc = await until(handle, (d) => String(d.title) === "도서관 사례", "bob (node 3) sees alice's title");
  assert.equal(doc.count, 1);
  console.log(`url ${created.url}`);
  await withTimeout(
    until(created, (d) => String(d.samod ?? "") === "노드 3에서", "alice (node 1) sees samod's edit"),
    "samod's edit",
    30_000,
  );
  console.log("ok");
  await alice.shutdown();
  await bob.shutdown();
  process.exit(0);
} catch (e) {
  console.error(`not ok - ${e.stack || e}`);
  process.exit(1);
}
