// The lists of a hall (filters, order, what is new), a case with its annotations and
// evaluation forms, the question queue, the people.

import { locate } from "./anchor.js";
import { t, lang } from "./i18n.js";
import { Automerge as A } from "@automerge/automerge-repo/slim";
import { api } from "./api.js";
import { agree, annotate, confirmSaved, nowKst, reply } from "./compose.js";
import { departmentName, docOf, gather, handle, mayAnnotate, person } from "./documents.js";
import { render } from "./render.js";
import { $, KINDS, esc, state } from "./state.js";
import { announce, caseSections, highlighted, sectionPath, sectionTitle, tabs } from "./views.js";
import { values } from "./vocab.js";

// ---- the lists of a hall: filters, order, what is new ------------------------------------

/// The lists' filters and order, kept while the page is open (a hall's list runs long).
export const listView = { kind: "", status: "", dept: "", case: "", sort: "new", qsort: "agree" };
/// The statuses the chair gives (merging is the planning officer's, when findings are made).
export const STATUSES = values("TriageStatus").filter((s) => s !== "merged");

/// When this participant last looked at the session before this visit: what was written
/// after is marked new. A visit begins when a view of the session is entered.
export function markVisit() {
  const m = (location.hash || "").match(/^#\/s\/([^/?]+)/);
  if (!m || !state.me) {
    state.visiting = null;
    return;
  }
  const key = decodeURIComponent(m[1]);
  if (state.visiting === key) return;
  state.visiting = key;
  const slot = `toron.seen.${state.me}.${key}`;
  state.seenBefore = localStorage.getItem(slot) || "";
  localStorage.setItem(slot, nowKst());
}

export function isNew(a) {
  return !!state.seenBefore && a.author !== state.me && String(a.created_at || "") > state.seenBefore;
}

/// The filter bar over a list: `fields` among kind, status, dept, case; then the order.
export function filterBar(s, fields, sortKey = "sort") {
  const opt = (v, label, cur) => `<option value="${esc(v)}"${v === cur ? " selected" : ""}>${esc(label)}</option>`;
  const select = (name, label, all, options) =>
    `<label>${esc(label)} <select id="f-${name}" name="${name}">${opt("", all, listView[name])}${options
      .map(([v, l]) => opt(v, l, listView[name]))
      .join("")}</select></label>`;
  const parts = {
    kind: () => select("kind", t("kind"), t("allKinds"), KINDS.map((k) => [k, t(k)])),
    status: () => select("status", t("status"), t("allStatuses"), STATUSES.map((k) => [k, t(k)])),
    dept: () => select("dept", t("departmentsShort"), t("allDepartments"), (s.departments || []).map((d) => [d.key, departmentName(s, d.key)])),
    case: () => select("case", t("cases"), t("allCases"), s.cases.map((c) => [c.key, c.title])),
  };
  return `<form class="filters" aria-label="${esc(t("filters"))}">${fields.map((f) => parts[f]()).join("")}
    <label>${esc(t("sortBy"))} <select id="f-${sortKey}" name="${sortKey}">${opt("new", t("sortNew"), listView[sortKey])}${opt(
      "agree",
      t("sortAgree"),
      listView[sortKey],
    )}</select></label></form>`;
}

/// `anns` through the filters of `fields`, in the chosen order (newest or most agreed first).
export function filtered(s, anns, fields, sortKey = "sort") {
  const keep = anns.filter(
    (a) =>
      (!fields.includes("kind") || !listView.kind || a.kind === listView.kind) &&
      (!fields.includes("status") || !listView.status || a.status === listView.status) &&
      (!fields.includes("dept") || !listView.dept || (a.departments || []).includes(listView.dept)) &&
      (!fields.includes("case") || !listView.case || caseOf(s, a)?.key === listView.case),
  );
  const newest = (x, y) => String(y.created_at).localeCompare(String(x.created_at));
  // Among equally agreed, the older first: it has waited longer.
  const agreed = (x, y) => y.agree - x.agree || -newest(x, y);
  return keep.sort(listView[sortKey] === "agree" ? agreed : newest);
}

/// What a button acts on, for its accessible name: the start of the annotation's words.
export function gist(a) {
  const words = String(a.body || a.target?.quote?.exact || t(a.kind));
  return Array.from(words).length > 24 ? `${Array.from(words).slice(0, 24).join("")}…` : words;
}

/// "(기록: …)" after a remark a scribe recorded for its speaker.
function recorder(s, a) {
  return a.recorded_by ? ` <span class="recorded">(${esc(t("recordedBy"))}: ${person(s, a.recorded_by)})</span>` : "";
}

export function annotationCard(s, a, all, canWrite, canTriage) {
  // Imported replies name their parent by its short code (ref), live ones by id.
  const replies = all.filter((x) => x.parent && (x.parent === a.id || x.parent === a.ref));
  const q = a.target?.quote?.exact;
  const about = a.kind === "question" ? caseOf(s, a) : null;
  return `<article class="card ann ${esc(a.kind)}${a.id === state.focus ? " focus" : ""}" data-ann="${esc(a.id)}" data-status="${esc(a.status)}" aria-label="${esc(t(a.kind))}">
    <div><span class="kind">${esc(t(a.kind))}</span> <span class="meta">${person(s, a.author)}${recorder(s, a)} · ${esc(
      String(a.created_at || "").slice(11, 16),
    )}</span> ${a.status !== "open" ? `<span class="status">${esc(t(a.status))}</span>` : ""}
    ${isNew(a) ? `<span class="new-badge">${esc(t("newSince"))}</span>` : ""}
    ${a.answering ? `<span class="answering-badge">${esc(t("answeringNow"))}</span>` : ""}
    ${about ? `<span class="meta case-of">${esc(t("aboutCase"))}: ${esc(about.title)}</span>` : ""}
    ${a.orphaned ? `<span class="status" style="background:#fdecea;color:#b71c1c">${esc(t("orphaned"))}</span>` : ""}</div>
    ${q ? `<div class="quote">${esc(q)}</div>` : ""}
    ${a.body ? `<div class="body">${esc(a.body)}</div>` : ""}
    <div class="meta">${esc(t("agree"))} ${a.agree}${(a.departments || []).length ? ` · ${esc(a.departments.map((d) => departmentName(s, d)).join(", "))}` : ""}</div>
    ${replies
      .map((r) => `<div class="reply"><span class="kind">${esc(t(r.kind))}</span> <span class="meta">${person(s, r.author)}${recorder(s, r)}</span><span class="reply-body">${esc(r.body || "")}</span></div>`)
      .join("")}
    ${
      canWrite
        ? `<p><button type="button" data-act="agree" data-id="${esc(a.id)}" aria-pressed="${!!a.agreed}"
         aria-label="${esc(`${t("agree")}: ${gist(a)}`)}">${esc(t("agree"))}</button>
       <button type="button" data-act="reply" data-id="${esc(a.id)}" aria-label="${esc(`${t("replyAction")}: ${gist(a)}`)}">${esc(t("replyAction"))}</button></p>`
        : ""
    }
    ${
      canTriage && !a.parent
        ? `<p>${
            a.kind === "question" && a.status === "open"
              ? `<button type="button" data-act="answering" data-id="${a.answering ? "" : esc(a.id)}" aria-pressed="${!!a.answering}">${esc(t(a.answering ? "answeringDone" : "answeringStart"))}</button> `
              : ""
          }${["answered", "accepted", "noted", "deferred"]
            .map(
              (st) =>
                `<button type="button" data-act="status" data-status="${st}" data-id="${esc(a.id)}" aria-pressed="${a.status === st}"${a.status === st ? ' class="current"' : ""}>${esc(t(st))}</button>`,
            )
            .join(" ")}</p>`
        : ""
    }
  </article>`;
}

export const ASIDE_FILTERS = ["kind", "status", "dept"];

export async function viewCase(s, caseKey) {
  const c = s.cases.find((x) => x.key === caseKey);
  if (!c) return `<p class="error">${esc(t("notFound"))}</p>`;
  const doc = await docOf(c.doc);
  const all = await gather(s);
  // The case's annotations and those on its evaluation forms.
  const onThisCase = (a) => a.target?.doc === `case:${caseKey}` || String(a.target?.doc || "").startsWith(`eval:${caseKey}:`);
  const mine = all.filter((a) => onThisCase(a) || (!a.target && a.parent));
  const roots = all.filter((a) => onThisCase(a) && !a.parent);
  const canWrite = mayAnnotate(s);
  const canTriage = !!s.triage?.writable;
  let body = "";
  for (const [i, sec] of caseSections(doc).entries()) {
    const text = doc.sections[sec];
    const here = roots.filter((a) => (a.target.path || []).join(".") === `sections.${sec}`);
    for (const a of here) {
      a.range = locate(text, a.target.quote, a.target.position);
      a.orphaned = !a.range;
    }
    body += `<h2 id="sec-${i}">${esc(sectionTitle(sec))}</h2>
      <div class="section-text" data-case="${esc(caseKey)}" data-path="${esc(sectionPath(sec))}" tabindex="0"
        aria-label="${esc(sectionTitle(sec))}">${highlighted(text, here)}</div>`;
  }
  const evals = s.evaluations.filter((e) => e.case === caseKey);
  let evalHtml = "";
  for (const e of evals) {
    const d = await docOf(e.doc);
    if (!d) continue;
    evalHtml += evaluationPanel(s, e, d, roots);
  }
  const orphans = roots.filter((a) => a.orphaned);
  const listed = filtered(s, [...roots], ASIDE_FILTERS);
  const fresh = roots.filter(isNew).length;
  return `<h1>${esc(c.title)}</h1>${tabs(s, "cases")}
    <p class="muted">${esc(c.government || "")} · ${esc(caseKey)}</p>
    <div class="layout">
      <section aria-label="${esc(t("caseText"))}">
        ${canWrite ? `<p class="muted">${esc(t("selectHint"))} <button type="button" id="annotate-selection">${esc(t("annotateSelection"))}</button></p>` : `<p class="muted">${esc(t("readOnly"))}</p>`}
        <div id="composer"></div>
        ${body}
        <h2>${esc(t("evaluations"))}</h2>${evalHtml || `<p class="muted">—</p>`}
      </section>
      <aside aria-label="${esc(t("annotations"))}">
        <h2>${esc(t("annotations"))} (${listed.length}/${roots.length}) <span id="saving" aria-live="polite"></span></h2>
        ${fresh ? `<p class="new-count">${esc(t("newCount"))}: <strong>${fresh}</strong></p>` : ""}
        ${filterBar(s, ASIDE_FILTERS)}
        ${listed.map((a) => annotationCard(s, a, mine, canWrite, canTriage)).join("")}
        ${orphans.length ? `<p class="muted">${esc(t("orphanNote"))}</p>` : ""}
      </aside>
    </div>`;
}

/// One evaluation of a case: the template's criteria in order with their Korean names, weights,
/// scores and texts, then strengths, gaps, lessons and the overall view — the passages others
/// annotated highlighted — and, for its evaluator while the phase allows, the whole form: each
/// criterion's score with what it means (the template's rubric), N/A with its reason, its
/// comment; the four texts; save as a draft, submit, and reopen a submitted form.
export function evaluationPanel(s, e, d, roots) {
  const doc = `eval:${e.case}:${e.evaluator}`;
  const on = roots.filter((a) => a.target?.doc === doc);
  const marked = (path, text) => {
    const here = on.filter((a) => (a.target.path || []).join(".") === path);
    for (const a of here) {
      a.range = locate(text, a.target.quote, a.target.position);
      a.orphaned = !a.range;
    }
    return `<div class="section-text" data-eval="${esc(doc)}" data-path="${esc(path)}">${highlighted(text, here)}</div>`;
  };
  const criteria = criteriaOf(s, d);
  const status = String(d.status || "draft");
  const mayWrite = e.writable && ["scheduled", "live", "closed"].includes(s.phase);
  // A submitted form is read as submitted; its evaluator may reopen it (openly, logged).
  const editable = mayWrite && status !== "submitted";
  const str = (v) => (typeof v === "string" ? v : v == null ? "" : String(v));
  const rows = criteria
    .map((c) => {
      const v = d.criteria?.[c.key] || {};
      if (editable) return criterionField(c, v);
      const na = v.score == null ? `N/A${str(v.na_reason) ? ` — ${esc(str(v.na_reason))}` : ""}` : "";
      return `<li><span class="crit">${esc(criterionName(c))}</span> <span class="muted">(${esc(t("weight"))} ${esc(c.weight ?? "—")})</span>
        <strong class="score">${v.score != null ? `${esc(v.score)} <span class="muted">${esc(rubricWord(c, v.score))}</span>` : na}</strong>
        ${str(v.text) ? marked(`criteria.${c.key}.text`, str(v.text)) : ""}</li>`;
    })
    .join("");
  const texts = EVAL_TEXTS.map(([f, label]) => {
    if (editable) {
      return `<label class="eval-text">${esc(t(label))}<textarea name="${f}" rows="3" maxlength="5000">${esc(str(d[f]))}</textarea></label>`;
    }
    return str(d[f]) ? `<h4>${esc(t(label))}</h4>${marked(f, str(d[f]))}` : "";
  }).join("");
  const buttons = editable
    ? `<p class="eval-actions"><button type="button" data-act="eval-save" data-doc="${esc(e.doc)}">${esc(t("saveDraft"))}</button>
        <button class="primary" type="submit">${esc(t("submit"))}</button> <span class="muted">${esc(t("submitHint"))}</span></p>`
    : mayWrite && status === "submitted"
      ? `<p><button type="button" data-act="eval-reopen" data-doc="${esc(e.doc)}">${esc(t("reopen"))}</button> <span class="muted">${esc(t("reopenHint"))}</span></p>`
      : "";
  const inner = editable
    ? `<div class="criteria-form">${rows}</div>${texts}${buttons}`
    : `<ol class="criteria">${rows}</ol>${texts}${buttons}`;
  return `<details class="card evaluation" data-eval-doc="${esc(e.doc)}"${mayWrite || on.length ? " open" : ""}><summary>${esc(t("evaluation"))} — ${person(s, e.evaluator)}
    <span class="status">${esc(t(`eval_${status}`))}</span></summary>${
      editable ? `<form class="eval-form" data-doc="${esc(e.doc)}" data-case="${esc(e.case)}">${inner}</form>` : inner
    }</details>`;
}

/// The four texts of a form after its criteria, with their labels.
const EVAL_TEXTS = [
  ["strengths", "strengths"],
  ["gaps", "gaps"],
  ["lessons", "lessons"],
  ["overall", "overallField"],
];

/// The criteria a form is scored on: the series' template, else what the form itself holds.
function criteriaOf(s, d) {
  return s.template?.criteria?.length
    ? s.template.criteria
    : Object.keys(d.criteria || {}).map((key) => ({ key, name_ko: key }));
}

const criterionName = (c) => (lang() === "ko" ? c.name_ko : c.name_en || c.name_ko) || c.key;

/// What a score means for a criterion: the template's rubric if it says, else the scale's word.
export function rubricWord(c, n) {
  const r = c.rubric?.[String(n)];
  if (r && typeof r === "object") return String((lang() === "ko" ? r.ko : r.en || r.ko) || "");
  if (typeof r === "string") return r;
  return t(`scale${n}`);
}

/// One criterion of the form: 1–5 with what each means, or N/A with a reason; a comment.
function criterionField(c, v) {
  const k = esc(c.key);
  const score = v.score == null ? "" : String(v.score);
  const naReason = typeof v.na_reason === "string" ? v.na_reason : "";
  const na = score === "" && (naReason !== "" || v.score === null);
  const choice = (val, label, hint) =>
    `<label class="score-choice"><input type="radio" name="score-${k}" value="${val}"${(val === "na" ? na : score === val) ? " checked" : ""}>
      <strong>${esc(label)}</strong> <span class="muted">${esc(hint)}</span></label>`;
  return `<fieldset class="criterion" data-criterion="${k}">
    <legend>${esc(criterionName(c))} <span class="muted">(${esc(t("weight"))} ${esc(c.weight ?? "—")})</span></legend>
    <div class="scores" role="radiogroup" aria-label="${esc(criterionName(c))} ${esc(t("scoreLabel"))}">
      ${[1, 2, 3, 4, 5].map((n) => choice(String(n), String(n), rubricWord(c, n))).join("")}
      ${choice("na", "N/A", t("notApplicable"))}
    </div>
    <label class="na-reason">${esc(t("naReason"))} <input name="na-${k}" maxlength="500" value="${esc(naReason)}"></label>
    <label>${esc(t("criterionComment"))} <textarea name="text-${k}" rows="2" maxlength="5000">${esc(typeof v.text === "string" ? v.text : "")}</textarea></label>
  </fieldset>`;
}

/// What the form says now: each criterion's score (null for N/A), reason and comment, and the
/// four texts. `Err` (a message to show) when an N/A has no reason.
function formValues(s, form, d) {
  const out = { criteria: {}, texts: {} };
  for (const c of criteriaOf(s, d)) {
    const picked = form.querySelector(`input[name="score-${CSS.escape(c.key)}"]:checked`)?.value || "";
    const reason = (form[`na-${c.key}`]?.value || "").trim();
    const text = (form[`text-${c.key}`]?.value || "").trim();
    if (picked === "na" && !reason) throw new Error(`${criterionName(c)}: ${t("naNeedsReason")}`);
    out.criteria[c.key] = { score: picked === "" || picked === "na" ? null : Number(picked), na_reason: picked === "na" ? reason : "", text, picked };
  }
  for (const [f] of EVAL_TEXTS) out.texts[f] = (form[f]?.value || "").trim();
  return out;
}

/// Writes what changed in the form into the evaluator's document (only what changed: each
/// edit is one entry of the timeline), and submits it when `submit`.
export async function saveEvaluation(s, form, submit) {
  const h = await handle(form.dataset.doc);
  const before = h.doc() || {};
  const v = formValues(s, form, before);
  if (submit) {
    const missing = criteriaOf(s, before).filter((c) => v.criteria[c.key].picked === "");
    if (missing.length) throw new Error(`${t("scoreMissing")}: ${missing.map(criterionName).join(", ")}`);
  }
  const same = (a, b) => (a ?? "") === (b ?? "") || String(a ?? "") === String(b ?? "");
  h.change((d) => {
    if (!d.criteria) d.criteria = {};
    for (const [k, x] of Object.entries(v.criteria)) {
      if (!d.criteria[k]) d.criteria[k] = {};
      const c = d.criteria[k];
      // N/A is written as null (not scored yet is no score at all).
      if (x.picked !== "" && (c.score === undefined || c.score !== x.score)) c.score = x.score;
      if (!same(c.na_reason, x.na_reason)) c.na_reason = x.na_reason;
      if (!same(c.text, x.text)) c.text = x.text;
    }
    for (const [f, x] of Object.entries(v.texts)) if (!same(d[f], x)) d[f] = x;
    if (submit) {
      d.status = "submitted";
      // When: the report counts submitted forms, and an import warns of changes after it.
      d.submitted_at = new Date().toISOString();
    }
  });
  delete form.dataset.dirty;
  announce(t(submit ? "evaluationSubmitted" : "evaluationSaved"));
  return confirmSaved(form.dataset.doc, h);
}

/// Reopens a submitted form: a change of its own that sets it back to draft and nothing else
/// (the timeline's "evaluation reopened"; the report lists it).
export async function reopenEvaluation(docId) {
  const h = await handle(docId);
  if (h.doc()?.status !== "submitted") return;
  h.change((d) => {
    d.status = "draft";
  });
  announce(t("evaluationReopened"));
  return confirmSaved(docId, h);
}

/// The case a question asks about: the case document it is anchored in, or the first of its
/// subject cases.
export function caseOf(s, a) {
  const doc = a.target?.doc || "";
  const key = doc.startsWith("case:") ? doc.slice(5) : (a.subject_cases || [])[0];
  return s.cases.find((c) => c.key === key);
}

export async function viewQueue(s) {
  const all = await gather(s);
  // Most agreed first (the oldest first among equals), or the newest if the chair asks.
  const questions = filtered(
    s,
    all.filter((a) => a.kind === "question" && !a.parent && a.status !== "withdrawn"),
    ["case", "dept"],
    "qsort",
  );
  // The chair runs Q&A from the open ones; those already handled wait apart, below.
  const open = questions.filter((q) => q.status === "open");
  const handled = questions.filter((q) => q.status !== "open");
  const canTriage = !!s.triage?.writable;
  const list = (qs, id) =>
    qs.length
      ? `<ol class="queue" id="${id}">${qs.map((q) => `<li>${annotationCard(s, q, all, mayAnnotate(s), canTriage)}</li>`).join("")}</ol>`
      : `<p class="muted">—</p>`;
  return `<h1>${esc(s.title || s.key)}</h1>${tabs(s, "queue")}
    ${filterBar(s, ["case", "dept"], "qsort")}
    <h2>${esc(t("questionQueue"))} · ${esc(t("openQuestions"))} (${open.length})</h2>${list(open, "queue-open")}
    <h2>${esc(t("handledQuestions"))} (${handled.length})</h2>${list(handled, "queue-handled")}`;
}

export async function viewPeople(s) {
  // Being on this page is being in the session: its documents open (in the background), and
  // with them the server's pushes of who is here.
  gather(s).catch(() => {});
  let here = state.presence[s.key];
  if (!here) {
    try {
      const r = await api(`/api/v1/sessions/${encodeURIComponent(s.key)}/presence`);
      for (const p of r.here) state.shownAs[p.participant] = p;
      here = r.here.map((p) => p.participant);
    } catch (e) {
      return `<p class="error">${esc(e.message)}</p>`;
    }
  }
  const who = (k) => s.people?.[k] || state.shownAs[k] || { shown: k };
  return `<h1>${esc(s.title || s.key)}</h1>${tabs(s, "people")}
    <h2>${esc(t("hereNow"))} (${here.length})</h2>
    <ul class="presence">${here
      .map(who)
      .map((p) => `<li>${esc(p.shown || "")} <span class="muted">${esc((lang() === "en" ? p.role_en : p.role_ko) || "")}</span></li>`)
      .join("")}</ul>`;
}

/// Highlight ↔ card: a click on a highlighted passage brings its annotation's card into view,
/// a click on a card (not on its buttons) brings its passage into view; both are marked.
export async function focusAnnotation(id, show) {
  state.focus = id;
  await render();
  const el =
    show === "card"
      ? document.querySelector(`article.ann[data-ann="${CSS.escape(id)}"]`)
      : document.querySelector("mark.focus");
  el?.scrollIntoView({ block: "center" });
}
