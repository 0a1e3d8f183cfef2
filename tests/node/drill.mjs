// The hall drill (issue 30): many participants through the official automerge-repo
// JavaScript client acting at once for a while — questions, comments, gaps for a department,
// replies and answers, 공감, the chair's triage, the evaluators' forms — some reloading their
// page midway, everyone offline while the server is SIGKILLed and started again (by the test
// that runs this: tests/tests/suite/drill.rs). Then every act the server acknowledged must be
// in the session's timeline exactly once and in the report: the counts by kind, each
// question's final status, the times in KST, the authors as they consented to be shown.
//
// Env: TORON_URL (http://…), PEOPLE (a JSON file: [{participant, token, role, notes, attribution,
// name}] plus the chair's triage document and the evaluators' forms), SECONDS (how long they
// act), ORGANIZER (a token that reads the report), OUT (where to write what was acknowledged).
// Prints `drill: ok` and a summary line; exits non-zero on the first failure. Every wait is
// bounded.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { decodeHeads } from "@automerge/automerge-repo";
import { getAs, nowKst, pause, Person, seeded, wholeTimeline } from "./acting.mjs";

const URL = process.env.TORON_URL;
const plan = JSON.parse(readFileSync(process.env.PEOPLE, "utf8"));
const SECONDS = Number(process.env.SECONDS || 20);
const organizer = { headers: { Authorization: `Bearer ${process.env.ORGANIZER}` } };
const { random, pick } = seeded(Number(process.env.SEED || 30));

const get = (path, token) => getAs(URL, path, token);

const people = plan.people.map((p, i) => new Person(p, i, URL));
const chair = people.find((p) => p.role === "facilitator");
const evaluators = people.filter((p) => p.role === "evaluator");
const writers = people.filter((p) => p.notes);
const cases = plan.cases; // [{key, doc, sections: {name: text}}]
const forbidden = [];

/// Every annotation id anybody has written (acknowledged or not): what others reply to.
const written = [];
const questions = [];

function annotation(p, kind) {
  const c = pick(cases);
  const names = Object.keys(c.sections);
  const name = pick(names);
  const text = c.sections[name];
  const cps = Array.from(text);
  // A passage at a section's first character one time in four (stored as the JS client
  // stores 0), else somewhere inside.
  const start = random() < 0.25 ? 0 : Math.floor(random() * Math.max(1, cps.length - 8));
  const end = Math.min(cps.length, start + 4 + Math.floor(random() * 6));
  const id = crypto.randomUUID();
  const a = {
    id, session: plan.session, kind, author: p.participant, author_role: p.role,
    created_at: nowKst(), capture: "live_app", visibility: "session", source: { kind: "live" },
    subject_cases: [c.key],
    body: `${p.participant}의 ${kind} ${written.length + 1}`,
    target: { type: "text_range", doc: `case:${c.key}`, path: ["sections", name], quote: { exact: cps.slice(start, end).join(""), prefix: cps.slice(Math.max(0, start - 8), start).join(""), suffix: cps.slice(end, end + 8).join("") }, position: { start, end } },
  };
  if (kind === "gap") a.departments = [pick(plan.departments)];
  return a;
}

async function oneAct(p) {
  const r = random();
  if (p === chair) {
    const q = questions.filter((x) => x.author !== p.participant);
    if (!q.length) return;
    const target = pick(q);
    const status = pick(["answered", "accepted", "noted", "deferred"]);
    await p.act(plan.triage, { kind: "triage", annotation: target.id, status }, (d) => {
      if (!d.items) d.items = {};
      if (!d.items[target.id]) d.items[target.id] = { history: [] };
      d.items[target.id].status = status;
      d.items[target.id].by = p.participant;
      d.items[target.id].at = nowKst();
    });
    return;
  }
  if (evaluators.includes(p) && r < 0.15) {
    const form = pick(p.forms);
    const h = await p.handle(form);
    const submitted = String(h.doc()?.status) === "submitted";
    if (submitted) await p.act(form, { kind: "reopen" }, (d) => (d.status = "draft"));
    await p.act(form, { kind: "submit" }, (d) => {
      if (!d.criteria) d.criteria = {};
      for (const c of plan.criteria) d.criteria[c] = { score: 1 + Math.floor(random() * 5), text: `${c} 의견` };
      d.overall = `${p.participant} 총평 ${Date.now()}`;
      d.status = "submitted";
      d.submitted_at = new Date().toISOString();
    });
    return;
  }
  if (!p.notes) return;
  if (r < 0.35 || !written.length) {
    const kind = pick(["question", "question", "comment", "gap", "strength", "lesson"]);
    const a = annotation(p, kind);
    written.push(a);
    if (kind === "question") questions.push(a);
    await p.act(p.notes, { kind: "annotation", id: a.id, akind: kind }, (d) => {
      if (!d.annotations) d.annotations = {};
      // A copy: Automerge takes the object over, and `written` keeps its own.
      d.annotations[a.id] = structuredClone(a);
    });
  } else if (r < 0.65) {
    const parent = pick(written);
    const id = crypto.randomUUID();
    const kind = p.role === "presenter" ? "answer" : "reply";
    written.push({ id, author: p.participant });
    await p.act(p.notes, { kind: "annotation", id, akind: kind, parent: parent.id }, (d) => {
      if (!d.annotations) d.annotations = {};
      d.annotations[id] = { id, session: plan.session, kind, author: p.participant, author_role: p.role, parent: parent.id, root: parent.id, body: `${p.participant}의 ${kind}`, created_at: nowKst(), capture: "live_app", visibility: "session", source: { kind: "live" } };
    });
  } else {
    const target = pick(written.filter((x) => x.author !== p.participant).length ? written.filter((x) => x.author !== p.participant) : written);
    const h = await p.handle(p.notes);
    if (h.doc()?.reactions?.[target.id]) return;
    await p.act(p.notes, { kind: "agree", annotation: target.id }, (d) => {
      if (!d.reactions) d.reactions = {};
      d.reactions[target.id] = { kind: "agree", at: nowKst() };
    });
  }
}

/// A participant's own life: an act every second or two; every tenth reloads its page once.
async function live(p, until) {
  let reloaded = false;
  while (Date.now() < until) {
    try {
      await oneAct(p);
    } catch (e) {
      // A document not open yet while the server is down: tried again at the next act.
      if (!/timed out|unavailable/.test(String(e?.message))) throw e;
      p.unopened = (p.unopened || 0) + 1;
    }
    if (p.n % 10 === 3 && !reloaded && Date.now() > until - (SECONDS * 1000) / 3) {
      reloaded = true;
      await p.reload();
    }
    await p.check();
    await pause(700 + random() * 900);
  }
}

const t0 = Date.now();
const until = t0 + SECONDS * 1000;
// Forbidden acts, once each: nothing of them may land.
async function refused() {
  const activist = writers.find((p) => p.role === "activist");
  const other = writers.find((p) => p !== activist && p.role === "activist");
  const attempts = [
    ["an activist writes the triage", activist, plan.triage, (d) => (d.items = { x: { status: "accepted" } })],
    ["an activist writes another's layer", activist, other.notes, (d) => {
      if (!d.annotations) d.annotations = {};
      d.annotations.forged = { kind: "comment", body: "위조" };
    }],
    ["an activist writes an evaluation form", activist, evaluators[0].forms[0], (d) => (d.overall = "위조")],
  ];
  for (const [what, p, doc, f] of attempts) {
    const h = await p.handle(doc).catch(() => null);
    if (!h) continue;
    h.change(f);
    forbidden.push({ what, doc, heads: decodeHeads(h.heads()), token: p.token });
  }
}
console.log(`drill: ${people.length} participants act for ${SECONDS} s`);
await Promise.all([...people.map((p) => live(p, until)), refused()]);
console.log(`drill: acting over; ${people.reduce((n, p) => n + p.pending.length, 0)} acts not yet acknowledged`);
await Promise.all(people.map((p) => p.flush(30_000)));
console.log(`drill: ${people.reduce((n, p) => n + p.pending.length, 0)} acts never acknowledged; verifying`);
const acked = people.flatMap((p) => p.acked.map((a) => ({ ...a, participant: p.participant })));
const lost = people.flatMap((p) => p.pending.map((a) => ({ ...a, participant: p.participant })));
if (process.env.OUT) writeFileSync(process.env.OUT, JSON.stringify({ acked, lost }));

// ---- verification ---------------------------------------------------------------------------
// Forbidden acts: none of their changes is in the log.
for (const f of forbidden) {
  const events = (await get(`/api/v1/documents/${f.doc}/events?limit=100000`, process.env.ORGANIZER)).events.map((e) => e.hash);
  assert.ok(!f.heads.some((h) => events.includes(h)), `refused: ${f.what}`);
}
const timeline = await wholeTimeline(URL, plan.session, process.env.ORGANIZER);
const created = new Map();
for (const e of timeline.filter((e) => e.kind === "annotation.created" || e.kind === "reply.created")) {
  const id = e.detail?.annotation;
  created.set(id, [...(created.get(id) || []), e]);
}
const acts = { annotation: 0, agree: 0, triage: 0, submit: 0, reopen: 0 };
for (const a of acked) {
  acts[a.kind] += 1;
  if (a.kind === "annotation") {
    const es = created.get(a.id) || [];
    assert.equal(es.length, 1, `${a.akind} ${a.id} of ${a.participant} is in the timeline once (${es.length})`);
    assert.equal(es[0].participant, a.participant, `${a.id} is its writer's`);
  } else if (a.kind === "agree") {
    assert.ok(timeline.some((e) => e.kind === "reaction.added" && e.participant === a.participant && e.detail?.annotation === a.annotation), `공감 of ${a.participant} on ${a.annotation}`);
  } else if (a.kind === "triage") {
    assert.ok(timeline.some((e) => e.kind === "triage.status_set" && e.detail?.annotation === a.annotation && e.detail?.status === a.status), `triage ${a.annotation} → ${a.status}`);
  } else if (a.kind === "submit") {
    assert.ok(timeline.some((e) => e.kind === "evaluation.submitted" && e.participant === a.participant), `a submission of ${a.participant}`);
  }
}

// Presence: the server's SIGKILL logged nobody's departure, and everybody came back after
// it; the start logs the departures the crash left open, so nobody has joined twice without
// having left between.
const presence = new Map();
for (const e of timeline.filter((e) => e.kind === "participant.joined" || e.kind === "participant.left")) {
  const seq = presence.get(e.participant) || [];
  seq.push(e.kind === "participant.joined");
  presence.set(e.participant, seq);
}
let rejoined = 0;
for (const [who, seq] of presence) {
  for (let i = 1; i < seq.length; i++) {
    assert.ok(!(seq[i] && seq[i - 1]), `${who} joined twice without leaving: ${seq.map((j) => (j ? "joined" : "left")).join(" ")}`);
    if (seq[i] && !seq[i - 1]) rejoined += 1;
  }
}
assert.ok(rejoined > 0, "people came back after the restart, after having left");

// The report: its counts by kind are the timeline's, every question's status is the chair's
// last decision, every time is the log's in KST, every author as consented.
const md = await (await fetch(`${URL}/api/v1/reports/${plan.session}?lang=ko&format=md`, organizer)).text();
const kindWords = { comment: "의견", question: "질의", answer: "답변", reply: "댓글", strength: "강점", gap: "부족한 점", lesson: "배울 점" };
const kindOf = new Map();
for (const [id, es] of created) kindOf.set(id, es[0].detail?.annotation_kind);
const counted = {};
for (const [, k] of kindOf) counted[k] = (counted[k] || 0) + 1;
const summary = md.match(/- 주석: (\d+) \(([^)]*)\)/);
assert.ok(summary, "the report counts the annotations");
assert.equal(Number(summary[1]), created.size, `the report counts every annotation of the timeline: ${summary[0]} vs ${created.size}`);
for (const [k, n] of Object.entries(counted)) {
  assert.ok(summary[2].includes(`${kindWords[k] || k} ${n}`), `${kindWords[k] || k} ${n} in "${summary[2]}"`);
}
const exported = await get(`/api/v1/export/${plan.session}`, process.env.ORGANIZER);
const exportedAt = new Map(exported.sessions.flatMap((x) => x.annotations).map((a) => [a.id, a.created_at]));
const appendix = md.split("## 부록. 주석 목록")[1] || "";
const rows = appendix.split("\n").filter((l) => l.startsWith("| ["));
const lastStatus = new Map();
for (const e of timeline.filter((e) => e.kind === "triage.status_set")) lastStatus.set(e.detail.annotation, e.detail.status);
const statusWords = { open: "미처리", answered: "답변됨", accepted: "반영", noted: "참고", deferred: "추후검토", withdrawn: "철회" };
const byPrefix = new Map([...created.keys()].map((id) => [id.slice(0, 8), id]));
let questionsChecked = 0;
for (const row of rows) {
  const id = byPrefix.get((row.match(/annotations\/([0-9a-f]{8})/) || [])[1]);
  assert.ok(id, `a row of the report names an annotation of the timeline: ${row.slice(0, 120)}`);
  const cells = row.split(" | ");
  const e = created.get(id)[0];
  // The time: the note's own (written offline while the server was down, it is earlier than
  // its arrival), within the drill's span and never after its arrival — in KST.
  const own = Date.parse(exportedAt.get(id));
  assert.ok(own <= e.time_ms + 60_000 && own >= e.time_ms - (SECONDS + 60) * 1000, `${id}: its time ${exportedAt.get(id)} within the drill, arrived ${new Date(e.time_ms).toISOString()}`);
  const kst = new Date(own + 9 * 3600 * 1000).toISOString();
  assert.ok(cells[3].includes(kst.slice(11, 16)), `${id} at ${kst.slice(11, 16)} KST: ${cells[3]}`);
  if (kindOf.get(id) === "question") {
    const want = statusWords[lastStatus.get(id) || "open"];
    assert.ok(cells[4].startsWith(want), `question ${id}: the chair's last decision ${want}, the report says ${cells[4]}`);
    questionsChecked += 1;
  }
}
const roots = [...kindOf.entries()].filter(([id]) => !created.get(id)[0].detail?.parent).length;
assert.equal(rows.length, roots, `every root annotation is listed (${rows.length} of ${roots})`);
for (const p of people.filter((p) => p.attribution === "role_only")) {
  assert.ok(!md.includes(p.name), `${p.participant} asked to be shown by role only: their name is not in the report`);
}
console.log(
  `drill summary: ${people.length} participants, ${SECONDS} s; acknowledged ${acked.length} acts (${Object.entries(acts).map(([k, n]) => `${k} ${n}`).join(", ")}), ` +
    `not acknowledged ${lost.length}; timeline ${created.size} annotations, ${questionsChecked} questions' statuses checked; ${forbidden.length} forbidden acts refused; ${rejoined} returns after a departure`,
);
for (const p of people) p.repo.shutdown();
console.log("drill: ok");
process.exit(0);
