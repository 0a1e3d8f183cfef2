// One participant in the debate hall through the official JavaScript automerge-repo client,
// which writes every string as collaborative text. Run by tests/tests/suite/three_clients.rs against
// a live session of the example series:
//
//   TORON_URL=ws://127.0.0.1:PORT TOKEN=… NOTES_DOC=<id> EVAL_DOC=<id> ME=P-PARK \
//   SESSION=S-LIB QUESTION=<id of another's question> IDS=<question>,<gap>,<reply> node hall-client.mjs
//
// In this order, each change its own: a question of ours, a gap routed to a department, a
// reply to the other's question, agreement with it, the evaluation reopened and submitted
// again. Waits until a second connection reads all of it back from the server (so it is
// stored), prints `hall client: ok`, and exits non-zero on the first failure. Every wait is
// bounded.

import assert from "node:assert/strict";
import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { until, withTimeout } from "./waiting.mjs";

const { TORON_URL, TOKEN, NOTES_DOC, EVAL_DOC, ME, SESSION, QUESTION, IDS } = process.env;
const [questionId, gapId, replyId] = IDS.split(",");

function repo(name) {
  const url = `${TORON_URL}/sync?token=${encodeURIComponent(TOKEN)}`;
  return new Repo({ network: [new WebSocketClientAdapter(url)], peerId: `${name}-${process.pid}` });
}

/// The time as the web client writes it (KST, seconds).
function nowKst() {
  return new Date(Date.now() + 9 * 3600 * 1000).toISOString().slice(0, 19) + "+09:00";
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

const me = repo("hall-js");
const reader = repo("hall-js-check");
try {
  const notes = await withTimeout(me.find(`automerge:${NOTES_DOC}`), "find my notes");
  const evaluation = await withTimeout(me.find(`automerge:${EVAL_DOC}`), "find my evaluation");
  const base = { session: SESSION, author: ME, author_role: "evaluator", visibility: "session", capture: "live" };
  const target = { type: "document", doc: "case:C-LIB-HB" };
  const steps = [
    [notes, (d) => (d.annotations[questionId] = { ...base, id: questionId, kind: "question", body: "순회 사서의 인건비는 누가 부담합니까?", target, created_at: nowKst() })],
    [notes, (d) => (d.annotations[gapId] = { ...base, id: gapId, kind: "gap", body: "평일 저녁 운영 계획이 없다", departments: ["DEP-CULT"], severity: "high", target, created_at: nowKst() })],
    [notes, (d) => (d.annotations[replyId] = { ...base, id: replyId, kind: "reply", parent: QUESTION, root: QUESTION, body: "저도 같은 점이 궁금합니다", created_at: nowKst() })],
    [notes, (d) => {
      if (!d.reactions) d.reactions = {};
      d.reactions[QUESTION] = { kind: "agree", at: nowKst() };
    }],
    [evaluation, (d) => (d.status = "draft")],
    [evaluation, (d) => (d.status = "submitted")],
  ];
  // Each change reaches the server before the next is made, as a person's acts do (the
  // client would otherwise send two documents' changes in whichever order its sync timers
  // fire): a second connection reads it back first.
  const mirrors = new Map([
    [notes, await withTimeout(reader.find(`automerge:${NOTES_DOC}`), "find my notes again")],
    [evaluation, await withTimeout(reader.find(`automerge:${EVAL_DOC}`), "find my evaluation again")],
  ]);
  for (const [i, [h, f]] of steps.entries()) {
    h.change(f);
    const want = h.heads();
    await until(mirrors.get(h), () => want.every((x) => mirrors.get(h).heads().includes(x)), `step ${i + 1} stored`);
  }
  const notes2 = mirrors.get(notes);
  const seen = await until(
    notes2,
    (d) => d.annotations?.[replyId] && d.annotations?.[gapId] && d.annotations?.[questionId] && d.reactions?.[QUESTION],
    "the server has every annotation",
  );
  assert.equal(String(seen.annotations[gapId].kind), "gap");
  assert.equal(typeof seen.annotations[gapId].kind, "string", "strings read as strings");
  const eval2 = mirrors.get(evaluation);
  // (The submission depends on the reopening: the server has both once it has it.)
  await until(eval2, (d) => String(d.status) === "submitted", "submitted again");
  console.log("hall client: ok");
} finally {
  await pause(200);
  me.shutdown();
  reader.shutdown();
}
process.exit(0);
