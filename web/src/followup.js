// The work after the session, in the hall client: the organizers promote the accepted
// annotations into a finding of the series' report (or merge them into one already there);
// a department's reviewers record its response to each finding addressed to it. Each is an
// attributed change of its document, as the CLI's `toron promote` and `toron respond` make.

import { t } from "./i18n.js";
import { values } from "./vocab.js";
import { confirmSaved, nowKst } from "./compose.js";
import { departmentName, docOf, gather, handle, openOrStart, person } from "./documents.js";
import { gist } from "./hall.js";
import { esc, state } from "./state.js";
import { announce, tabs } from "./views.js";

export const FINDING_TYPES = values("FindingType");
export const STANCES = values("Stance");
const PRIORITIES = values("Priority");

const option = (v, label, cur) => `<option value="${esc(v)}"${v === cur ? " selected" : ""}>${esc(label)}</option>`;

/// Whether this participant has follow-up work in the session: the report to write, or a
/// department's responses to read or write.
export function hasFollowup(s) {
  return !!s.report?.writable || (s.responses || []).length > 0;
}

export async function viewFollowup(s) {
  let html = "";
  if (s.report?.writable) html += await promotePart(s);
  for (const r of s.responses || []) html += await responsePart(s, r);
  return `<h1>${esc(s.title || s.key)}</h1>${tabs(s, "followup")}
    <p class="muted">${esc(t("followupHint"))} <span id="saving" aria-live="polite"></span></p>${html || `<p class="muted">—</p>`}`;
}

/// The session's findings in the report, and the accepted annotations not in one yet with
/// the form that promotes them.
async function promotePart(s) {
  const report = (await docOf(s.report.doc)) || {};
  const all = await gather(s);
  // Sources name annotations by id (a ref is content until the server's export checks it):
  // a ref is looked up only where exactly one annotation claims it and no id equals it.
  const byRef = new Map(all.map((a) => [a.id, a]));
  const claims = new Map();
  for (const a of all) if (a.ref) claims.set(a.ref, claims.has(a.ref) ? null : a);
  for (const [r, a] of claims) if (a && !byRef.has(r)) byRef.set(r, a);
  const refs = new Set(byRef.keys());
  const mine = Object.values(report.findings || {}).filter((f) => findingOfSession(s, f, refs));
  const waiting = all.filter((a) => !a.parent && a.status === "accepted" && !a.finding);
  const findings = mine
    .map((f) => {
      const from = (f.sources || []).filter((x) => x.kind === "annotation").map((x) => byRef.get(x.ref));
      return `<li class="card finding" data-finding="${esc(f.key)}"><strong>${esc(f.key)}</strong> <span class="kind">${esc(t(`finding_${f.type}`))}</span>
        ${esc(f.title)} <span class="meta">${esc(t("departmentsShort"))}: ${esc((f.departments || []).map((d) => departmentName(s, d)).join(", "))}</span>
        ${from.length ? `<ul class="sources">${from.map((a) => `<li>${a ? `${esc(t(a.kind))} · ${esc(gist(a))}` : "—"}</li>`).join("")}</ul>` : ""}</li>`;
    })
    .join("");
  const depts = s.departments || [];
  const form = waiting.length
    ? `<form class="promote card" aria-label="${esc(t("promote"))}">
      <fieldset><legend>${esc(t("promoteFrom"))}</legend>${waiting
        .map(
          (a) => `<label class="source"><input type="checkbox" name="from" value="${esc(a.id)}"> ${esc(t(a.kind))} · ${person(s, a.author)} — ${esc(gist(a))}</label>`,
        )
        .join("")}</fieldset>
      <label>${esc(t("promoteInto"))} <select name="into">${option("", t("newFinding"), "")}${mine
        .map((f) => option(f.key, `${f.key} ${f.title}`, ""))
        .join("")}</select></label>
      <fieldset class="new-finding"><legend>${esc(t("newFinding"))}</legend>
      <label>${esc(t("findingType"))} <select name="type">${FINDING_TYPES.map((k) => option(k, t(`finding_${k}`), "gap")).join("")}</select></label>
      <label>${esc(t("findingTitle"))} <input name="title" autocomplete="off"></label>
      <label>${esc(t("findingText"))} <textarea name="text" rows="2"></textarea></label>
      <label>${esc(t("findingRecommendation"))} <textarea name="recommendation" rows="2"></textarea></label>
      <label>${esc(t("leadDepartment"))} <select name="lead">${option("", "—", "")}${depts.map((d) => option(d.key, departmentName(s, d.key), "")).join("")}</select></label>
      <fieldset><legend>${esc(t("assistDepartments"))}</legend>${depts
        .map((d) => `<label><input type="checkbox" name="assist" value="${esc(d.key)}"> ${esc(departmentName(s, d.key))}</label>`)
        .join(" ")}</fieldset>
      <label>${esc(t("priority"))} <select name="priority">${PRIORITIES.map((k) => option(k, t(`priority_${k}`), "medium")).join("")}</select></label>
      ${
        (s.pledges || []).length
          ? `<fieldset><legend>${esc(t("pledges"))}</legend>${s.pledges
              .map((p) => `<label><input type="checkbox" name="pledge" value="${esc(p.key)}"> ${esc(p.title_ko || p.key)}</label>`)
              .join(" ")}</fieldset>`
          : ""
      }</fieldset>
      <p><button class="primary" type="submit">${esc(t("promote"))}</button></p></form>`
    : `<p class="muted">${esc(t("nothingToPromote"))}</p>`;
  return `<h2>${esc(t("findingsOfSession"))} (${mine.length})</h2><ol class="findings">${findings}</ol>
    <h2>${esc(t("promote"))}</h2>${form}`;
}

/// Whether finding `f` belongs to session `s`: promoted from its annotations (`refs`, the
/// refs or ids of the session's annotations), about one of its cases, or of its field.
function findingOfSession(s, f, refs) {
  if ((f.sources || []).some((x) => x.kind === "annotation" && refs.has(x.ref))) return true;
  if (f.case && s.cases.some((c) => c.key === f.case)) return true;
  return !!s.field && (f.fields || []).includes(s.field);
}

/// The next free key for a finding of the session (`F-S-LIB-03`), past every key the report has.
function nextKey(report, session) {
  for (let n = 1; n < 1000; n++) {
    const k = `F-${session}-${String(n).padStart(2, "0")}`;
    if (!report.findings?.[k]) return k;
  }
  throw new Error("no free finding key");
}

/// Promotes the ticked annotations: a new finding, or more sources of one already there; then
/// each annotation's triage records which finding took it in — after the server has the
/// finding (it refuses a link to a finding it does not know).
export async function promote(s, form) {
  const all = await gather(s);
  const picked = Array.from(form.querySelectorAll("input[name=from]:checked"), (x) => all.find((a) => a.id === x.value)).filter(Boolean);
  if (!picked.length) throw new Error(t("pickAnnotations"));
  const into = form.into.value;
  const lead = form.lead.value;
  const title = form.title.value.trim().normalize("NFC");
  if (!into && !title) throw new Error(t("needTitle"));
  if (!into && !lead) throw new Error(t("needLead"));
  const h = await openOrStart(s.report.doc, (d) => {
    d.schema = "report/1";
    d.status = "drafting";
  });
  const sources = picked.map((a) => ({ kind: "annotation", ref: a.id }));
  let key = into;
  if (into) {
    h.change((d) => {
      const f = d.findings?.[into];
      if (!f) throw new Error(`${t("notFound")}: ${into}`);
      if (!f.sources) f.sources = [];
      for (const x of sources) if (!f.sources.some((y) => y.ref === x.ref)) f.sources.push(x);
    });
  } else {
    key = nextKey(h.doc(), s.key);
    const assist = Array.from(form.querySelectorAll("input[name=assist]:checked"), (x) => x.value).filter((d) => d !== lead);
    const finding = {
      key,
      type: form.type.value,
      title,
      text: form.text.value.trim().normalize("NFC"),
      departments: [lead, ...assist],
      priority: form.priority.value,
      pledges: Array.from(form.querySelectorAll("input[name=pledge]:checked"), (x) => x.value),
      sources,
      promoted_by: state.me,
      promoted_at: nowKst(),
    };
    const recommendation = form.recommendation.value.trim().normalize("NFC");
    if (recommendation) finding.recommendation = recommendation;
    if (s.field) finding.fields = [s.field];
    const cases = picked.flatMap((a) => a.subject_cases || (String(a.target?.doc || "").startsWith("case:") ? [a.target.doc.slice(5)] : []));
    if (cases.length) finding.case = cases[0];
    h.change((d) => {
      if (!d.findings) d.findings = {};
      d.findings[key] = finding;
    });
  }
  if (!(await confirmSaved(s.report.doc, h))) return;
  const triage = await handle(s.triage.doc);
  const at = nowKst();
  triage.change((d) => {
    if (!d.schema) d.schema = "triage/1";
    if (!d.items) d.items = {};
    for (const a of picked) {
      if (!d.items[a.id]) d.items[a.id] = { history: [] };
      const item = d.items[a.id];
      const entry = { status: "accepted", by: state.me, at, finding: key };
      Object.assign(item, entry);
      if (!item.history) item.history = [];
      item.history.push(entry);
    }
  });
  await confirmSaved(s.triage.doc, triage);
  announce(`${t("promoted")}: ${key}`);
}

/// A department's findings with its response to each, and for its reviewers the form.
async function responsePart(s, r) {
  const doc = (await docOf(r.doc)) || {};
  const items = (r.findings || [])
    .map((f) => {
      const given = doc.responses?.[f.key] || {};
      const role = (f.departments || [])[0] === r.department ? t("lead") : t("assist");
      const said = given.stance
        ? `<p class="response-now"><span class="status">${esc(t(`stance_${given.stance}`))}</span> ${esc(given.action_plan || "")}
          ${given.due ? `<span class="meta">${esc(t("due"))} ${esc(given.due)}</span>` : ""} ${given.progress ? `<span class="meta">${esc(t("progress"))}: ${esc(given.progress)}</span>` : ""}</p>`
        : `<p class="muted">${esc(t("noResponseYet"))}</p>`;
      // The form folds away once the department has answered: the answer is what is read.
      const form = r.writable
        ? `<details${given.stance ? "" : " open"}><summary>${esc(t(given.stance ? "editResponse" : "writeResponse"))}</summary><form class="respond" data-doc="${esc(r.doc)}" data-department="${esc(r.department)}" data-finding="${esc(f.key)}" aria-label="${esc(`${t("respond")}: ${f.key}`)}">
          <label>${esc(t("stance"))} <select name="stance">${STANCES.map((k) => option(k, t(`stance_${k}`), given.stance || "accepted")).join("")}</select></label>
          <label>${esc(t("actionPlan"))} <textarea name="plan" rows="2">${esc(given.action_plan || "")}</textarea></label>
          <label>${esc(t("due"))} <input name="due" value="${esc(given.due || "")}" placeholder="${esc(t("dueHint"))}" autocomplete="off"></label>
          <label>${esc(t("progress"))} <input name="progress" value="${esc(given.progress || "")}" autocomplete="off"></label>
          <button class="primary" type="submit">${esc(t("respond"))}</button></form></details>`
        : "";
      return `<li class="card finding" data-finding="${esc(f.key)}"><strong>${esc(f.key)}</strong> <span class="kind">${esc(t(`finding_${f.type}`))}</span>
        <span class="meta">${esc(role)}</span> ${esc(f.title || "")}
        ${f.recommendation || f.text ? `<div class="body">${esc(f.recommendation || f.text)}</div>` : ""}${said}${form}</li>`;
    })
    .join("");
  return `<h2>${esc(t("responsesOf"))}: ${esc(departmentName(s, r.department))}</h2>${items ? `<ol class="findings">${items}</ol>` : `<p class="muted">${esc(t("noFindingsForDept"))}</p>`}`;
}

/// Records the department's response to a finding (its whole entry, now, by this reviewer).
export async function respond(s, form) {
  const { doc, department, finding } = form.dataset;
  const h = await openOrStart(doc, (d) => {
    d.schema = "response/1";
    d.department = department;
  });
  const response = { finding, department, stance: form.stance.value, responder: state.me, at: nowKst() };
  for (const [k, v] of [
    ["action_plan", form.plan.value],
    ["due", form.due.value],
    ["progress", form.progress.value],
  ]) {
    if (v.trim()) response[k] = v.trim().normalize("NFC");
  }
  h.change((d) => {
    if (!d.responses) d.responses = {};
    d.responses[finding] = response;
  });
  await confirmSaved(doc, h);
  announce(`${t("responded")}: ${finding}`);
}
