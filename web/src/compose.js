// Writing: annotations, replies, agreement and triage, each a change to a document the
// participant may write — never a side channel.

import { cpLength, cpSlice } from "./anchor.js";
import { t } from "./i18n.js";
import { Automerge as A } from "@automerge/automerge-repo/slim";
import { api } from "./api.js";
import { departmentName, handle, mayAnnotate, myRole, openOrStart, session } from "./documents.js";
import { refreshSessions, scheduleRender, start } from "./render.js";
import { $, KINDS, esc, state } from "./state.js";
import { announce, sessionBar } from "./views.js";

// ---- writing -------------------------------------------------------------------------------

export function nowKst() {
  const d = new Date(Date.now() + 9 * 3600 * 1000);
  return d.toISOString().replace(/\.\d+Z$/, "+09:00");
}

export function uuid() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

export async function myLayer(s) {
  const l = s.layers.find((x) => x.participant === state.me && x.writable);
  if (!l) throw new Error(t("cannotAnnotate"));
  // Registered for me but perhaps never written: started as every tab of mine starts it.
  return { l, h: await openOrStart(l.doc, (d) => ensureLayer(d, s)) };
}

export function ensureLayer(d, s) {
  if (!d.schema) {
    d.schema = "notes/1";
    d.session = s.key;
    d.owner = state.me;
  }
  if (!d.annotations) d.annotations = {};
  if (!d.reactions) d.reactions = {};
}

/// A notice from the server about document `id`: a change of ours it refused, with why. The
/// connection stays up for everything else; this copy's changes are no longer taken.
export function notice(id, e) {
  const m = e?.message;
  // Only from the server itself (the one peer this page connects to), never relayed from
  // another participant.
  if (!m || !state.repo?.peers?.includes(e.senderId)) return;
  if (m.toron === "presence" && typeof m.session === "string" && Array.isArray(m.here)) {
    state.presence[m.session] = m.here.map(String);
    if (location.hash.includes("/people")) scheduleRender();
    return;
  }
  if (m.toron === "session" && typeof m.session === "string") {
    // The chair moved the session (its phase, the item under way): shown at once, and what
    // this page may do asked again — a form being written is kept, and told if it can no
    // longer be sent.
    sessionMoved(m.session, String(m.phase || ""), m.item == null ? null : String(m.item));
    return;
  }
  if (m.toron !== "refused") return;
  // What was written and refused is shown back to its writer: never silently lost.
  const text = state.unsent?.doc === id ? state.unsent.text : "";
  state.refused = { doc: id, kind: String(m.kind || "value"), reason: String(m.reason || ""), text };
  if (state.saving?.doc === id) state.saving.status = "refused";
  renderSaving();
  renderRefused();
}

/// Notices of a session's move, at most once per session and move.
const seenMoves = new Map();

async function sessionMoved(key, phase, item) {
  const s = session(key);
  if (!s) return;
  const was = seenMoves.get(key);
  const now = `${phase}|${item}`;
  if (was === now && s.phase === phase && s.item === item) return;
  seenMoves.set(key, now);
  s.phase = phase || s.phase;
  s.item = item;
  // The bar at once, even under an open form.
  const bar = $("#session-bar");
  if (bar) bar.outerHTML = sessionBar(s);
  await refreshSessions();
  const fresh = session(key);
  if (fresh && !mayAnnotate(fresh)) {
    // A form being written stays, with its text; it says why it cannot be sent now.
    for (const f of document.querySelectorAll("form.annotate, form.reply-form, form.agenda-note")) {
      if (f.querySelector(".closed-note")) continue;
      f.insertAdjacentHTML("afterbegin", `<p class="error closed-note" role="alert">${esc(t("phaseClosedKeep"))} (${esc(t(fresh.phase))})</p>`);
      for (const b of f.querySelectorAll("button[type=submit]")) b.disabled = true;
    }
  }
  announce(`${t("sessionNow")}: ${t(fresh?.phase || phase)}`);
  scheduleRender();
}

export function renderRefused() {
  const el = $("#refused");
  if (!el) return;
  const r = state.refused;
  el.hidden = !r;
  if (!r) return;
  el.innerHTML = `<strong>${esc(t("refusedTitle"))}</strong> ${esc(t(`refused_${r.kind}`))}
    <span class="muted">(${esc(r.reason)})</span>
    ${r.text ? `<label class="unsent">${esc(t("unsentText"))}<textarea readonly rows="3">${esc(r.text)}</textarea></label>` : ""}
    <button type="button" data-act="reload">${esc(t("reload"))}</button>`;
}

/// How far this page has read each document's log (its records' `seq`): a change made later
/// is logged after it, so a watch starts there, not at the log's first record.
const logRead = new Map();

/// Whether the server's log of `docId` holds every one of `heads`, reading it page by page from
/// record `from` (bounded: a page holds 1,000 records).
async function logHolds(docId, heads, from) {
  const want = new Set(heads);
  let after = from;
  for (let page = 0; page < 200 && want.size; page++) {
    const ev = await api(`/api/v1/documents/${docId}/events?limit=1000&after=${after}`);
    for (const e of ev.events) {
      want.delete(e.hash);
      if (e.seq > (logRead.get(docId) || 0)) logRead.set(docId, e.seq);
    }
    if (ev.next_after == null) break;
    after = ev.next_after;
  }
  return want.size === 0;
}

/// Watches the server's log until it holds the document's newest change: then it is safe
/// (true). False if the server refused it, or it never got there.
export async function confirmSaved(docId, h) {
  const heads = A.getHeads(h.doc());
  const from = logRead.get(docId) || 0;
  state.saving = { doc: docId, status: "saving" };
  renderSaving();
  // Quickly at first; then, offline for a while, every few seconds until it gets there.
  for (let i = 0; i < 50 + 600; i++) {
    if (state.refused?.doc === docId) return false;
    if (i >= 50) await new Promise((r) => setTimeout(r, 3000));
    try {
      // Now and then from the log's start, in case another watch read past this change.
      if (await logHolds(docId, heads, i % 10 === 9 ? 0 : from)) {
        state.saving = { doc: docId, status: "saved" };
        renderSaving();
        return true;
      }
    } catch {
      /* offline: keep trying */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

export function renderSaving() {
  const el = $("#saving");
  if (!el || !state.saving) return;
  el.className = state.saving.status;
  el.textContent = t(state.saving.status);
}

/// A new annotation of this participant's, written live in the hall: `fields` add its target
/// and text.
export function liveAnnotation(s, kind, fields) {
  return {
    id: uuid(),
    session: s.key,
    kind,
    author: state.me,
    author_role: myRole(s),
    created_at: nowKst(),
    capture: "live_app",
    visibility: "session",
    source: { kind: "live" },
    ...fields,
  };
}

/// Puts annotation `a` into my notes layer and watches it reach the server's log.
export async function writeAnnotation(s, a) {
  const { l, h } = await myLayer(s);
  // Kept until the server has it: a refusal shows it back to its writer.
  state.unsent = { doc: l.doc, text: a.body || a.target?.quote?.exact || "" };
  h.change((d) => {
    ensureLayer(d, s);
    d.annotations[a.id] = a;
  });
  confirmSaved(l.doc, h);
}

export async function annotate(s, form) {
  const caseKey = form.dataset.case;
  // A section's name may hold a dot (`sections.` is cut off once); a form's field is dotted.
  const raw = form.dataset.path;
  const path = raw.startsWith("sections.") ? ["sections", raw.slice("sections.".length)] : raw.split(".");
  // A sentence picked from the keyboard, else the selected passage.
  const picked = form.sentence?.value?.split(":").map(Number);
  const start = picked ? picked[0] : Number(form.dataset.start);
  const end = picked ? picked[1] : Number(form.dataset.end);
  const caseDoc = s.cases.find((c) => c.key === caseKey);
  const target = (await handle(caseDoc.doc)).doc();
  const text = path.reduce((o, k) => o?.[k], target) || "";
  const exact = cpSlice(text, start, end);
  const a = liveAnnotation(s, form.kind.value, {
    subject_cases: [caseKey],
    target: {
      type: "text_range",
      doc: `case:${caseKey}`,
      path,
      quote: { exact, prefix: cpSlice(text, Math.max(0, start - 16), start), suffix: cpSlice(text, end, end + 16) },
      position: { start, end },
      heads: A.getHeads(target),
    },
  });
  try {
    const len = cpLength(text);
    const cs = A.getCursor(target, path, start);
    if (end < len) a.target.cursor = { start: cs, end: A.getCursor(target, path, end) };
  } catch {
    /* the quote carries the anchor */
  }
  if (form.body.value.trim()) a.body = form.body.value.trim();
  // The series' departments, by key (the server refuses any other).
  const deps = Array.from(form.querySelectorAll('input[name="department"]:checked'), (x) => x.value);
  if (deps.length && (a.kind === "gap" || a.kind === "lesson")) a.departments = deps;
  await writeAnnotation(s, a);
  state.focus = a.id;
  announce(t("annotationAdded"));
  return a.id;
}

export async function reply(s, parent, body) {
  const a = liveAnnotation(s, myRole(s) === "presenter" ? "answer" : "reply", {
    parent: parent.id,
    root: parent.root || parent.id,
    body,
  });
  await writeAnnotation(s, a);
}

export async function agree(s, ann) {
  const { l, h } = await myLayer(s);
  h.change((d) => {
    ensureLayer(d, s);
    if (d.reactions[ann.id]) delete d.reactions[ann.id];
    else d.reactions[ann.id] = { kind: "agree", at: nowKst() };
  });
  confirmSaved(l.doc, h);
}

/// Marks `ann` as the question being answered now (or none, `null`): one at a time, in the
/// triage document, which every page and the projector read.
export async function setAnswering(s, ann) {
  const h = await handle(s.triage.doc);
  h.change((d) => {
    if (!d.schema) d.schema = "triage/1";
    d.answering = ann ? ann.id : null;
  });
  announce(ann ? t("answeringNow") : t("answeringDone"));
  confirmSaved(s.triage.doc, h);
}

export async function setStatus(s, ann, status) {
  const h = await handle(s.triage.doc);
  const entry = { status, by: state.me, at: nowKst() };
  h.change((d) => {
    if (!d.schema) d.schema = "triage/1";
    if (!d.items) d.items = {};
    if (!d.items[ann.id]) d.items[ann.id] = { history: [] };
    const item = d.items[ann.id];
    item.status = status;
    item.by = state.me;
    item.at = entry.at;
    if (!item.history) item.history = [];
    item.history.push(entry);
    // A question dealt with is no longer the one being answered.
    if (d.answering === ann.id) d.answering = null;
  });
  announce(`${t("status")}: ${t(status)}`);
}

/// Code point offsets of the current selection inside a section's text element.
export function selectionIn(el) {
  const sel = window.getSelection();
  if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
  const r = sel.getRangeAt(0);
  if (!el.contains(r.startContainer) || !el.contains(r.endContainer)) return null;
  const before = document.createRange();
  before.selectNodeContents(el);
  before.setEnd(r.startContainer, r.startOffset);
  const start = cpLength(before.toString());
  const end = start + cpLength(r.toString());
  return end > start ? { start, end } : null;
}

/// The sentences of a text as code-point ranges: what a keyboard user picks a passage from.
export function sentences(text) {
  const cps = Array.from(text);
  const out = [];
  let start = 0;
  for (let i = 0; i < cps.length; i++) {
    const end = /[.?!。]/.test(cps[i]) && (i + 1 === cps.length || /\s/.test(cps[i + 1]));
    if (end || i + 1 === cps.length) {
      const s = cps.slice(start, i + 1).join("");
      const lead = s.length - s.trimStart().length;
      if (s.trim()) out.push({ start: start + Array.from(s.slice(0, lead)).length, end: i + 1 });
      start = i + 1;
    }
  }
  return out;
}

/// The composer for a passage: the one selected with the mouse or a finger (`range`), or —
/// from the keyboard, without a selection — one of the section's sentences, picked in a list.
export function openComposer(sectionEl, range, s) {
  const deps = s?.departments || [];
  const text = sectionEl.textContent;
  const choices = range ? [] : sentences(text);
  const first = range || choices[0] || { start: 0, end: Array.from(text).length };
  const quote = range
    ? `<div class="quote">${esc(cpSlice(text, range.start, range.end))}</div>`
    : `<label for="sentence">${esc(t("sentence"))}</label>
    <select id="sentence" name="sentence">${choices
      .map((c) => `<option value="${c.start}:${c.end}">${esc(cpSlice(text, c.start, c.end))}</option>`)
      .join("")}</select>`;
  $("#composer").innerHTML = `<form class="annotate" data-case="${esc(sectionEl.dataset.case)}" data-path="${esc(
    sectionEl.dataset.path,
  )}" data-start="${first.start}" data-end="${first.end}" aria-label="${esc(t("newAnnotation"))}">
    ${quote}
    <label for="kind">${esc(t("kind"))}</label>
    <select id="kind" name="kind">${KINDS.map((k) => `<option value="${k}">${esc(t(k))}</option>`).join("")}</select>
    <label for="body">${esc(t("body"))}</label>
    <textarea id="body" name="body"></textarea>
    ${
      deps.length
        ? `<fieldset class="departments"><legend>${esc(t("departments"))}</legend>${deps
            .map(
              (d) =>
                `<label><input type="checkbox" name="department" value="${esc(d.key)}"> ${esc(departmentName(s, d.key))}</label>`,
            )
            .join(" ")}</fieldset>`
        : ""
    }
    <p><button class="primary" type="submit">${esc(t("add"))}</button> <button type="button" data-act="cancel">${esc(t("cancel"))}</button></p>
  </form>`;
  ($("#sentence") || $("#kind")).focus();
}
