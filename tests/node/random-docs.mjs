// The property of issue 30, point 2: whatever the server's gate accepts from the official
// JavaScript client — which stores strings as collaborative text and numbers as JavaScript
// gives them — every reader takes: the export (nothing left out), the report in every format,
// the timeline, the W3C export. Random documents of every kind people write in a session,
// from a seed: notes (every annotation kind, passages at a section's first character, replies,
// 공감, Hangul decomposed or not, times in UTC or KST), the chair's triage (with and without a
// history), the evaluators' forms (scores, N/A with a reason, texts, submitted and reopened),
// a department's answers. Run by tests/tests/suite/js_properties.rs.
//
// Env: TORON_URL (http://…), PLAN (a JSON file), SEED, COUNT, ORGANIZER. Prints
// `random documents: ok`.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { getAs, Person, seeded, wholeTimeline } from "./acting.mjs";

const URL = process.env.TORON_URL;
const plan = JSON.parse(readFileSync(process.env.PLAN, "utf8"));
const COUNT = Number(process.env.COUNT || 60);
const SEED = Number(process.env.SEED || 1);
const { random, pick } = seeded(SEED);
const int = (n) => Math.floor(random() * n);

/// Text as people type it: Hangul (sometimes decomposed, as some keyboards send it), emoji,
/// line breaks, what a spreadsheet would take for a formula, long or short.
function text() {
  const parts = ["주민 의견", "저녁 운영", "😀", "\n", "=HYPERLINK(\"x\")", "예산 60%", "é", "한빛구", "  "];
  let s = Array.from({ length: 1 + int(12) }, () => pick(parts)).join(" ");
  if (random() < 0.3) s = s.normalize("NFD");
  return s.slice(0, 1 + int(400));
}

/// A time as clients write it: KST to the second, or `Date.toISOString()` (UTC, with ms).
function when() {
  const t = Date.now() - int(3600_000);
  return random() < 0.5
    ? new Date(t).toISOString()
    : new Date(t + 9 * 3600 * 1000).toISOString().slice(0, 19) + "+09:00";
}

const people = plan.people.map((p, i) => new Person(p, i, URL));
const by = (role) => people.filter((p) => p.role === role);
const written = [];

function target() {
  const c = pick(plan.cases);
  const name = pick(Object.keys(c.sections));
  const cps = Array.from(c.sections[name]);
  const start = random() < 0.4 ? 0 : int(Math.max(1, cps.length - 4));
  const end = Math.min(cps.length, start + 1 + int(10));
  return {
    case: c.key,
    target: {
      type: "text_range", doc: `case:${c.key}`, path: ["sections", name],
      quote: { exact: cps.slice(start, end).join(""), prefix: cps.slice(Math.max(0, start - 5), start).join(""), suffix: cps.slice(end, end + 5).join("") },
      position: { start, end },
    },
  };
}

async function note(p) {
  const id = crypto.randomUUID();
  const base = { id, session: plan.session, author: p.participant, author_role: p.role, created_at: when(), visibility: "session", source: { kind: "live" }, capture: "live_app" };
  let a;
  const r = random();
  if (r < 0.25 && written.length) {
    const parent = pick(written);
    a = { ...base, kind: p.role === "presenter" ? "answer" : "reply", parent, root: parent, body: text() };
  } else if (r < 0.35) {
    const t = target();
    a = { ...base, kind: "score", subject_cases: [t.case], target: { type: "document", doc: t.target.doc }, criterion: pick(plan.criteria), value: 1 + int(5), body: text() };
  } else {
    const t = target();
    const kind = pick(["comment", "question", "highlight", "strength", "gap", "lesson"]);
    a = { ...base, kind, subject_cases: [t.case], target: t.target };
    if (kind !== "highlight" || random() < 0.5) a.body = text();
    if (kind === "gap" || kind === "lesson") a.departments = [pick(plan.departments)];
  }
  written.push(id);
  await p.act(p.notes, { kind: "annotation", id, akind: a.kind }, (d) => {
    if (!d.annotations) d.annotations = {};
    d.annotations[id] = a;
  });
  if (random() < 0.3 && written.length > 1) {
    const other = pick(written);
    await p.act(p.notes, { kind: "agree", annotation: other }, (d) => {
      if (!d.reactions) d.reactions = {};
      if (!d.reactions[other]) d.reactions[other] = { kind: "agree", at: when() };
    });
  }
}

async function triage(p) {
  if (!written.length) return;
  const id = pick(written);
  const status = pick(["open", "answered", "accepted", "noted", "deferred", "withdrawn"]);
  const withHistory = random() < 0.5;
  await p.act(plan.triage, { kind: "triage", annotation: id, status }, (d) => {
    if (!d.items) d.items = {};
    if (!d.items[id]) d.items[id] = {};
    const item = d.items[id];
    const at = when();
    item.status = status;
    item.by = p.participant;
    item.at = at;
    if (random() < 0.5) item.note = text();
    if (withHistory) {
      if (!item.history) item.history = [];
      item.history.push({ status, by: p.participant, at });
    }
  });
}

async function form(p) {
  const doc = pick(p.forms);
  const h = await p.handle(doc);
  if (String(h.doc()?.status) === "submitted") {
    await p.act(doc, { kind: "reopen" }, (d) => (d.status = "draft"));
  }
  const submit = random() < 0.6;
  await p.act(doc, { kind: submit ? "submit" : "draft" }, (d) => {
    if (!d.criteria) d.criteria = {};
    for (const c of plan.criteria) {
      if (!d.criteria[c]) d.criteria[c] = {};
      const na = random() < 0.15;
      d.criteria[c].score = na ? null : 1 + int(5);
      if (na) d.criteria[c].na_reason = text();
      d.criteria[c].text = text();
    }
    for (const f of ["strengths", "gaps", "lessons", "overall"]) if (random() < 0.8) d[f] = text();
    if (submit) {
      d.status = "submitted";
      d.submitted_at = when();
    }
  });
}

async function respond(p) {
  await p.act(p.response, { kind: "response" }, (d) => {
    if (!d.responses) d.responses = {};
    d.responses[plan.finding] = {
      stance: pick(["accepted", "partially_accepted", "not_accepted", "long_term_review"]),
      action_plan: text(),
      due: random() < 0.5 ? "2027-06-30" : "",
      progress: text(),
      responder: p.participant,
      at: when(),
    };
  });
}

for (let i = 0; i < COUNT; i++) {
  const r = random();
  if (r < 0.6) await note(pick([...by("activist"), ...by("presenter"), ...by("evaluator")]));
  else if (r < 0.75) await triage(by("facilitator")[0]);
  else if (r < 0.9) await form(pick(by("evaluator")));
  else await respond(by("department_reviewer")[0]);
}
await Promise.all(people.map((p) => p.flush(30_000)));
const acked = people.flatMap((p) => p.acked);
const lost = people.flatMap((p) => p.pending);
const refusals = people.flatMap((p) => p.refusals.map((r) => ({ participant: p.participant, ...r })));
if (lost.length) {
  // What the server counted (a refusal that closed the connection sends no notice).
  const metrics = await (await fetch(`${URL}/metrics`, { headers: { Authorization: `Bearer ${process.env.ORGANIZER}` } })).text();
  const counted = metrics.split("\n").filter((l) => /refus|reject|error|close|connection/.test(l) && !l.startsWith("#"));
  for (const p of people.filter((p) => p.pending.length)) {
    for (const doc of new Set(p.pending.map((a) => a.doc))) {
      const h = await p.handles.get(doc);
      const server = await getAs(URL, `/api/v1/documents/${doc}/events?limit=1000`, process.env.ORGANIZER);
      console.error(`lost: ${p.participant} (socket dropped ${p.drops}×) on ${doc}: handle ${h.state}, local heads ${JSON.stringify(h.heads())}, server has ${server.total} records, last ${JSON.stringify(server.events.slice(-2))}`);
    }
  }
  assert.fail(`every change of a valid document is taken: ${JSON.stringify(lost.slice(0, 3))}; refused: ${JSON.stringify(refusals.slice(0, 5))}; the server counted: ${counted.join("; ")}`);
}
assert.deepEqual(refusals, [], "the server refuses none of these valid changes");

// Every reader takes every one.
const admin = process.env.ORGANIZER;
const ex = await getAs(URL, `/api/v1/export/${plan.series}?session=${plan.session}`, admin);
const skipped = (ex.integrity || []).filter((p) => p.skipped);
assert.deepEqual(skipped, [], "the export leaves nothing out");
const exported = new Set(ex.sessions.flatMap((s) => s.annotations).map((a) => a.id));
const ids = acked.filter((a) => a.kind === "annotation").map((a) => a.id);
for (const id of ids) assert.ok(exported.has(id), `annotation ${id} is exported`);
const timeline = await wholeTimeline(URL, plan.session, admin);
for (const id of ids) {
  const n = timeline.filter((e) => (e.kind === "annotation.created" || e.kind === "reply.created") && e.detail?.annotation === id).length;
  assert.equal(n, 1, `annotation ${id} is in the timeline once`);
}
for (const format of ["md", "html", "csv", "xlsx", "hwpx", "pdf"]) {
  const r = await fetch(`${URL}/api/v1/reports/${plan.session}?lang=ko&format=${format}`, { headers: { Authorization: `Bearer ${admin}` } });
  assert.equal(r.status, 200, `the ${format} report: ${r.status}`);
  const body = Buffer.from(await r.arrayBuffer());
  assert.ok(body.length > 100, `the ${format} report has content`);
  if (format === "md") {
    const md = body.toString("utf8");
    const counted = Number((md.match(/- 주석: (\d+)/) || [])[1]);
    assert.equal(counted, exported.size, `the report counts every exported annotation`);
    // Text is NFC wherever it entered.
    assert.equal(md, md.normalize("NFC"), "the report's text is NFC");
  }
}
// (The W3C export is the CLI's, from the same export: tests/tests/suite/js_properties.rs
// reads it for these ids.)
if (process.env.OUT) writeFileSync(process.env.OUT, JSON.stringify(ids));
console.log(`random documents: seed ${SEED}, ${acked.length} acknowledged changes (${ids.length} annotations), every reader took them`);
for (const p of people) p.repo.shutdown();
console.log("random documents: ok");
process.exit(0);
