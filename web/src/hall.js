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

// ---- the lists of a hall: filters, order, what is new ------------------------------------

/// The lists' filters and order, kept while the page is open (a hall's list runs long).
export const listView = { kind: "", status: "", dept: "", case: "", sort: "new", qsort: "agree" };
export const STATUSES = ["open", "answered", "accepted", "noted", "deferred", "withdrawn"];

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
       <button type="button" data-act="reply" data-id="${esc(a.id)}" aria-label="${esc(`${t("reply")}: ${gist(a)}`)}">${esc(t("reply"))}</button></p>`
        : ""
    }
    ${
      canTriage && !a.parent
        ? `<p>${["answered", "accepted", "noted", "deferred"]
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
/// annotated highlighted — and, for its evaluator while the phase allows, the form to score and
/// submit it.
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
  const criteria = s.template?.criteria?.length
    ? s.template.criteria
    : Object.keys(d.criteria || {}).map((key) => ({ key, name_ko: key }));
  const name = (c) => (lang() === "ko" ? c.name_ko : c.name_en || c.name_ko) || c.key;
  const editable = e.writable && ["scheduled", "live", "closed"].includes(s.phase);
  const rows = criteria
    .map((c) => {
      const v = d.criteria?.[c.key] || {};
      const score = editable
        ? `<select name="score-${esc(c.key)}" aria-label="${esc(name(c))} ${esc(t("scoreLabel"))}">${["", 1, 2, 3, 4, 5]
            .map((n) => `<option value="${n}"${String(v.score ?? "") === String(n) ? " selected" : ""}>${n === "" ? "N/A" : n}</option>`)
            .join("")}</select>`
        : `<strong>${esc(v.score ?? "N/A")}</strong>`;
      return `<li><span class="crit">${esc(name(c))}</span> <span class="muted">(${esc(t("weight"))} ${esc(c.weight ?? "—")})</span> ${score}
        ${typeof v.text === "string" && v.text ? marked(`criteria.${c.key}.text`, v.text) : ""}</li>`;
    })
    .join("");
  const texts = [
    ["strengths", "strengths"],
    ["gaps", "gaps"],
    ["lessons", "lessons"],
    ["overall", "overallField"],
  ]
    .filter(([f]) => typeof d[f] === "string" && d[f])
    .map(([f, label]) => `<h4>${esc(t(label))}</h4>${marked(f, d[f])}`)
    .join("");
  const status = String(d.status || "draft");
  const form = editable
    ? `<p><button class="primary" type="submit">${esc(t(status === "submitted" ? "resubmit" : "submit"))}</button></p>`
    : "";
  const inner = `<ol class="criteria">${rows}</ol>${texts}${form}`;
  return `<details class="card evaluation"${editable || on.length ? " open" : ""}><summary>${esc(t("evaluation"))} — ${person(s, e.evaluator)}
    <span class="status">${esc(t(status))}</span></summary>${
      editable ? `<form class="eval-form" data-doc="${esc(e.doc)}" data-case="${esc(e.case)}">${inner}</form>` : inner
    }</details>`;
}

/// Writes the evaluator's scores and submits the form.
export async function submitEvaluation(s, form) {
  const h = await handle(form.dataset.doc);
  const keys = Array.from(form.querySelectorAll("select[name^=score-]"), (x) => x.name.slice(6));
  // A submitted form is changed only after it is reopened, openly: a change of its own (the
  // timeline's "evaluation reopened"; the report lists it).
  if (h.doc()?.status === "submitted") {
    h.change((d) => {
      d.status = "draft";
    });
  }
  h.change((d) => {
    if (!d.criteria) d.criteria = {};
    for (const k of keys) {
      const v = form[`score-${k}`].value;
      if (!d.criteria[k]) d.criteria[k] = {};
      d.criteria[k].score = v === "" ? null : Number(v);
    }
    d.status = "submitted";
    // When: the report counts submitted forms, and an import warns of changes after it.
    d.submitted_at = new Date().toISOString();
  });
  announce(t("evaluationSubmitted"));
  confirmSaved(form.dataset.doc, h);
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
