// Toron's debate-hall client. Documents sync with the official automerge-repo client over
// the server's WebSocket; HTTP is used only for the API (who am I, my sessions, presence,
// history, timeline, report). No framework: plain DOM, re-rendered from state on change.

import { Repo, initializeWasm, Automerge as A } from "@automerge/automerge-repo/slim";
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";
import { t, lang, setLang } from "./i18n.js";
import { locate, cpLength, cpSlice } from "./anchor.js";

const $ = (sel) => document.querySelector(sel);
const esc = (s) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const SECTIONS = ["background", "method", "results", "challenges"];
const KINDS = ["comment", "question", "highlight", "strength", "gap", "lesson"];

const state = {
  token: null,
  me: null,
  sessions: [],
  repo: null,
  adapter: null,
  handles: new Map(), // doc id → DocHandle
  awaited: new Set(), // doc ids not available yet, watched for their first content
  presence: {}, // session → participant keys here now (pushed by the server)
  shownAs: {}, // participant → how the server said to show them (for those not in a session's people)
  focus: null, // annotation id highlighted
  saving: null, // { doc, heads, status }
};
window.toron = state; // for the end-to-end tests and the curious

// ---- token and API --------------------------------------------------------------------------

function readToken() {
  const m = location.hash.match(/^#\/join\/([^/?#]+)/);
  if (m) {
    localStorage.setItem("toron.token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + "#/");
  }
  return localStorage.getItem("toron.token");
}

/// The report's links are paths of this server — `/sessions/S/annotations/ID?at=…` and
/// `/sessions/S/docs/eval:C:P#/gaps` — that serve this page: they become the replay of that
/// session at that moment, the annotation or passage highlighted, once the token is known.
function linkedMoment() {
  const q = new URLSearchParams(location.search);
  let m = location.pathname.match(/^\/sessions\/([^/]+)\/annotations\/([^/]+)$/);
  let hash = null;
  if (m) {
    hash = `#/s/${m[1]}/replay?ann=${m[2]}`;
    if (q.get("at")) hash += `&at=${encodeURIComponent(q.get("at"))}`;
  } else if ((m = location.pathname.match(/^\/sessions\/([^/]+)\/docs\/([^/]+)$/))) {
    hash = `#/s/${m[1]}/replay?doc=${m[2]}&path=${encodeURIComponent(decodeURIComponent(location.hash.slice(1)))}`;
    if (q.get("at")) hash += `&at=${encodeURIComponent(q.get("at"))}`;
  }
  if (hash) history.replaceState(null, "", `/${hash}`);
}

/// A refused request said in the reader's language; the server's own words (English, for
/// whoever diagnoses it) follow in parentheses.
function serverError(status, body) {
  const key =
    { 400: "errBadRequest", 401: "badToken", 403: "errForbidden", 404: "notFound", 409: "errConflict", 413: "errTooLarge", 429: "errTooMany" }[status] ||
    (status >= 500 ? "errServer" : "errBadRequest");
  const detail = body?.error?.message;
  const e = new Error(detail ? `${t(key)} (${detail})` : t(key));
  e.status = status;
  return e;
}

async function api(path) {
  const r = await fetch(path, { headers: state.token ? { Authorization: `Bearer ${state.token}` } : {} });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw serverError(r.status, body);
  return body;
}

// ---- documents -----------------------------------------------------------------------------

/// Automerge (its WASM, ≈ 0.75 MB compressed, the bulk of the client) is fetched and compiled
/// the first time a view needs a document, not before: the join page and the session list
/// show without it. Then the repo connects.
let repoReady = null;
function ensureRepo() {
  repoReady ??= (async () => {
    const url = document.querySelector('meta[name="toron-wasm"]')?.content || "/automerge.wasm";
    await initializeWasm(url);
    const proto = location.protocol === "https:" ? "wss" : "ws";
    state.adapter = new BrowserWebSocketClientAdapter(`${proto}://${location.host}/sync?token=${encodeURIComponent(state.token)}`);
    // The browser keeps every document and unsent change (IndexedDB, one database per
    // participant on a shared machine): written offline, a note survives a closed tab and
    // goes to the server on the next connection.
    state.repo = new Repo({
      network: [state.adapter],
      storage: new IndexedDBStorageAdapter(`toron-${state.me}`),
    });
    return state.repo;
  })();
  repoReady.catch(() => (repoReady = null));
  return repoReady;
}

async function handle(id) {
  if (state.handles.has(id)) return state.handles.get(id);
  const p = ensureRepo()
    .then((repo) => repo.find(`automerge:${id}`))
    .then((h) => {
      h.on("change", () => scheduleRender());
      // The server's notices about this document (a refused change), beside the sync.
      h.on("ephemeral-message", (e) => notice(id, e));
      return h;
    });
  state.handles.set(id, p);
  try {
    return await p;
  } catch (e) {
    state.handles.delete(id);
    // Not written yet (a layer nobody has used): the server sends it once somebody writes
    // it. Show it then.
    const raw = state.repo?.handles?.[id];
    if (raw && !state.awaited.has(id)) {
      state.awaited.add(id);
      raw.once("change", () => {
        state.awaited.delete(id);
        scheduleRender();
      });
    }
    throw e;
  }
}

async function docOf(id) {
  try {
    return (await handle(id)).doc();
  } catch {
    return null;
  }
}

function session(key) {
  return state.sessions.find((s) => s.key === key);
}

function person(s, key) {
  const p = s?.people?.[key];
  if (!p) return esc(key);
  const role = lang() === "en" ? p.role_en : p.role_ko;
  return p.shown ? `${esc(p.shown)} · ${esc(role)}` : esc(role);
}

/// The role I write my notes in, as the server decided it (else my first role here).
function myRole(s) {
  return s.layers.find((l) => l.participant === state.me)?.role || s.my_roles[0];
}

function mayAnnotate(s) {
  const mine = s.layers.find((l) => l.participant === state.me && l.writable);
  // The server decides (policy): a layer of mine it lets me write, in this phase.
  return !!mine;
}

/// Every annotation of the session (from every layer this participant may read), with the
/// reactions and triage statuses that refer to them.
async function gather(s) {
  const anns = [];
  const agrees = new Map();
  const mineAgreed = new Set();
  for (const l of s.layers) {
    const d = await docOf(l.doc);
    if (!d) continue;
    for (const [id, a] of Object.entries(d.annotations || {})) {
      anns.push({ ...a, id: a.id || id, layer: l.participant });
    }
    for (const [target, r] of Object.entries(d.reactions || {})) {
      if (!r) continue;
      agrees.set(target, (agrees.get(target) || 0) + 1);
      if (l.participant === state.me) mineAgreed.add(target);
    }
  }
  let items = {};
  if (s.triage) items = (await docOf(s.triage.doc))?.items || {};
  for (const a of anns) {
    a.agree = agrees.get(a.id) || 0;
    a.agreed = mineAgreed.has(a.id);
    a.status = items[a.id]?.status || (a.withdrawn ? "withdrawn" : "open");
  }
  anns.sort((x, y) => String(x.created_at).localeCompare(String(y.created_at)));
  return anns;
}

// ---- writing -------------------------------------------------------------------------------

function nowKst() {
  const d = new Date(Date.now() + 9 * 3600 * 1000);
  return d.toISOString().replace(/\.\d+Z$/, "+09:00");
}

function uuid() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

async function myLayer(s) {
  const l = s.layers.find((x) => x.participant === state.me && x.writable);
  if (!l) throw new Error(t("cannotAnnotate"));
  try {
    return { l, h: await handle(l.doc) };
  } catch (e) {
    if (!/unavailable/.test(String(e?.message))) throw e;
  }
  // Registered for me but never written: the server has nothing to send. Start it with a
  // first change that every tab of mine makes byte for byte the same (actor from the
  // document's id, time 0), so two tabs starting it at once do not make two rival maps.
  const repo = await ensureRepo();
  const actor = Array.from(new TextEncoder().encode(l.doc).slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
  const seed = A.change(A.init({ actor }), { time: 0 }, (d) => ensureLayer(d, s));
  repo.import(A.save(seed), { docId: l.doc });
  return { l, h: await handle(l.doc) };
}

function ensureLayer(d, s) {
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
function notice(id, e) {
  const m = e?.message;
  // Only from the server itself (the one peer this page connects to), never relayed from
  // another participant.
  if (!m || !state.repo?.peers?.includes(e.senderId)) return;
  if (m.toron === "presence" && typeof m.session === "string" && Array.isArray(m.here)) {
    state.presence[m.session] = m.here.map(String);
    if (location.hash.includes("/people")) scheduleRender();
    return;
  }
  if (m.toron !== "refused") return;
  state.refused = { doc: id, kind: String(m.kind || "value"), reason: String(m.reason || "") };
  if (state.saving?.doc === id) state.saving.status = "refused";
  renderSaving();
  renderRefused();
}

function renderRefused() {
  const el = $("#refused");
  if (!el) return;
  const r = state.refused;
  el.hidden = !r;
  if (!r) return;
  el.innerHTML = `<strong>${esc(t("refusedTitle"))}</strong> ${esc(t(`refused_${r.kind}`))}
    <span class="muted">(${esc(r.reason)})</span>
    <button type="button" data-act="reload">${esc(t("reload"))}</button>`;
}

/// Watches the server's log until it holds the layer's newest change: then it is safe.
async function confirmSaved(docId, h) {
  const heads = A.getHeads(h.doc());
  state.saving = { doc: docId, status: "saving" };
  renderSaving();
  // Quickly at first; then, offline for a while, every few seconds until it gets there.
  for (let i = 0; i < 50 + 600; i++) {
    if (state.refused?.doc === docId) return;
    if (i >= 50) await new Promise((r) => setTimeout(r, 3000));
    try {
      const ev = await api(`/api/v1/documents/${docId}/events?limit=1000`);
      const hashes = new Set(ev.events.map((e) => e.hash));
      if (heads.every((x) => hashes.has(x))) {
        state.saving = { doc: docId, status: "saved" };
        renderSaving();
        return;
      }
    } catch {
      /* offline: keep trying */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function renderSaving() {
  const el = $("#saving");
  if (!el || !state.saving) return;
  el.className = state.saving.status;
  el.textContent = t(state.saving.status);
}

/// A new annotation of this participant's, written live in the hall: `fields` add its target
/// and text.
function liveAnnotation(s, kind, fields) {
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
async function writeAnnotation(s, a) {
  const { l, h } = await myLayer(s);
  h.change((d) => {
    ensureLayer(d, s);
    d.annotations[a.id] = a;
  });
  confirmSaved(l.doc, h);
}

async function annotate(s, form) {
  const caseKey = form.dataset.case;
  const path = form.dataset.path.split(".");
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

async function reply(s, parent, body) {
  const a = liveAnnotation(s, myRole(s) === "presenter" ? "answer" : "reply", {
    parent: parent.id,
    root: parent.root || parent.id,
    body,
  });
  await writeAnnotation(s, a);
}

async function agree(s, ann) {
  const { l, h } = await myLayer(s);
  h.change((d) => {
    ensureLayer(d, s);
    if (d.reactions[ann.id]) delete d.reactions[ann.id];
    else d.reactions[ann.id] = { kind: "agree", at: nowKst() };
  });
  confirmSaved(l.doc, h);
}

async function setStatus(s, ann, status) {
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
  });
  announce(`${t("status")}: ${t(status)}`);
}

// ---- views ---------------------------------------------------------------------------------

function announce(msg) {
  $("#announce").textContent = msg;
}

function tabs(s, current) {
  const items = [
    ["cases", `#/s/${s.key}`, t("cases")],
    ["queue", `#/s/${s.key}/queue`, t("queue")],
    ["people", `#/s/${s.key}/people`, t("people")],
    ["replay", `#/s/${s.key}/replay`, t("replay")],
  ];
  if (s.my_roles.includes("organizer")) {
    items.push(["invites", `#/s/${s.key}/invites`, t("invites")]);
    items.push(["report", `#/report/${s.key}`, t("report")]);
  }
  return `<nav class="tabs" aria-label="${esc(t("sessionMenu"))}">${items
    .map(([k, href, label]) => `<a href="${href}" ${k === current ? 'aria-current="page"' : ""}>${esc(label)}</a>`)
    .join("")}</nav>`;
}

function viewJoin(error) {
  return `<h1>${esc(t("join"))}</h1>
  <form id="join" class="card">
    <label for="tok">${esc(t("inviteLabel"))}</label>
    <input id="tok" name="tok" style="width:100%" autocomplete="off" required>
    <p><button class="primary" type="submit">${esc(t("enter"))}</button></p>
    ${error ? `<p class="error" role="alert">${esc(error)}</p>` : ""}
  </form>`;
}

function viewSessions() {
  if (!state.sessions.length) return `<h1>${esc(t("sessions"))}</h1><p>${esc(t("noSessions"))}</p>`;
  return `<h1>${esc(t("sessions"))}</h1><div class="cards">${state.sessions
    .map(
      (s) => `<a class="card" href="#/s/${esc(s.key)}" style="text-decoration:none;color:inherit">
      <strong>${esc(s.title || s.key)}</strong>
      <div class="muted">${esc(s.date || "")} · ${esc(t(s.phase))} · ${esc(s.my_roles.map((r) => t(r)).join(", "))}</div>
      <div class="muted">${esc(s.cases.length)} ${esc(t("casesCount"))}</div></a>`,
    )
    .join("")}</div>`;
}

async function viewCases(s) {
  const cards = `<div class="cards">${s.cases
    .map(
      (c) => `<a class="card" href="#/s/${esc(s.key)}/c/${esc(c.key)}" style="text-decoration:none;color:inherit">
      <strong>${esc(c.title)}</strong><div class="muted">${esc(c.government || "")} · ${esc(c.key)}</div></a>`,
    )
    .join("")}</div>`;
  // The agenda's annotations (the chair's summing-up among them) need the documents: until
  // Automerge is in (fetched now, while the list is read), the cases show alone.
  let agenda = `<p class="muted">${esc(t("loading"))}</p>`;
  if (!state.repo) ensureRepo().then(scheduleRender, () => {});
  else agenda = await agendaView(s);
  return `<h1>${esc(s.title || s.key)}</h1>${tabs(s, "cases")}${cards}
    <h2>${esc(t("agenda"))}</h2>${agenda}`;
}

/// The session's agenda, each item with the annotations made on it, and for those who may
/// annotate a form to add one.
async function agendaView(s) {
  const all = await gather(s);
  const canWrite = mayAnnotate(s);
  const canTriage = !!s.triage?.writable;
  const items = s.agenda || [];
  if (!items.length) return `<p class="muted">—</p>`;
  return `<ol class="agenda">${items
    .map((item) => {
      const on = all.filter((a) => a.target?.type === "agenda_item" && a.target.agenda_item === item.key && !a.parent);
      const time = [item.start, item.end].filter(Boolean).map((x) => String(x).slice(11, 16)).join("–");
      return `<li class="agenda-item" data-item="${esc(item.key)}"><h3>${esc(item.title_ko || item.key)} <span class="meta">${esc(time)}</span></h3>
        ${on.map((a) => annotationCard(s, a, all, canWrite, canTriage)).join("")}
        ${
          canWrite
            ? `<details><summary>${esc(t("annotateAgenda"))}</summary>
          <form class="agenda-note" data-item="${esc(item.key)}">
            <label>${esc(t("kind"))} <select name="kind">${KINDS.filter((k) => k !== "highlight")
              .map((k) => `<option value="${k}">${esc(t(k))}</option>`)
              .join("")}</select></label>
            <label>${esc(t("body"))}<textarea name="body" required rows="3"></textarea></label>
            <button type="submit">${esc(t("add"))}</button></form></details>`
            : ""
        }</li>`;
    })
    .join("")}</ol>`;
}

/// An annotation on an agenda item: no passage, the item named.
async function annotateAgenda(s, form) {
  const a = liveAnnotation(s, form.kind.value, {
    target: { type: "agenda_item", agenda_item: form.dataset.item },
    body: form.body.value.trim(),
  });
  await writeAnnotation(s, a);
  state.focus = a.id;
  announce(t("annotationAdded"));
}

/// A section's text with the annotations that anchor into it highlighted.
function highlighted(text, anns) {
  const n = cpLength(text);
  const cover = Array.from({ length: n }, () => []);
  for (const a of anns) {
    const r = a.range;
    if (!r) continue;
    for (let i = r.start; i < Math.min(r.end, n); i++) cover[i].push(a.id);
  }
  const cps = Array.from(text);
  let out = "";
  let i = 0;
  while (i < n) {
    const ids = cover[i].join(" ");
    let j = i;
    while (j < n && cover[j].join(" ") === ids) j++;
    const chunk = esc(cps.slice(i, j).join(""));
    if (ids) {
      const focus = cover[i].includes(state.focus) ? " focus" : "";
      out += `<mark class="${cover[i].length > 1 ? "many" : ""}${focus}" data-ids="${esc(ids)}">${chunk}</mark>`;
    } else out += chunk;
    i = j;
  }
  return out;
}

// ---- the lists of a hall: filters, order, what is new ------------------------------------

/// The lists' filters and order, kept while the page is open (a hall's list runs long).
const listView = { kind: "", status: "", dept: "", case: "", sort: "new", qsort: "agree" };
const STATUSES = ["open", "answered", "accepted", "noted", "deferred", "withdrawn"];

/// When this participant last looked at the session before this visit: what was written
/// after is marked new. A visit begins when a view of the session is entered.
function markVisit() {
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

function isNew(a) {
  return !!state.seenBefore && a.author !== state.me && String(a.created_at || "") > state.seenBefore;
}

/// The filter bar over a list: `fields` among kind, status, dept, case; then the order.
function filterBar(s, fields, sortKey = "sort") {
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
function filtered(s, anns, fields, sortKey = "sort") {
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
function gist(a) {
  const words = String(a.body || a.target?.quote?.exact || t(a.kind));
  return Array.from(words).length > 24 ? `${Array.from(words).slice(0, 24).join("")}…` : words;
}

function annotationCard(s, a, all, canWrite, canTriage) {
  // Imported replies name their parent by its short code (ref), live ones by id.
  const replies = all.filter((x) => x.parent && (x.parent === a.id || x.parent === a.ref));
  const q = a.target?.quote?.exact;
  const about = a.kind === "question" ? caseOf(s, a) : null;
  return `<article class="card ann ${esc(a.kind)}${a.id === state.focus ? " focus" : ""}" data-ann="${esc(a.id)}" data-status="${esc(a.status)}" aria-label="${esc(t(a.kind))}">
    <div><span class="kind">${esc(t(a.kind))}</span> <span class="meta">${person(s, a.author)} · ${esc(
      String(a.created_at || "").slice(11, 16),
    )}</span> ${a.status !== "open" ? `<span class="status">${esc(t(a.status))}</span>` : ""}
    ${isNew(a) ? `<span class="new-badge">${esc(t("newSince"))}</span>` : ""}
    ${about ? `<span class="meta case-of">${esc(t("aboutCase"))}: ${esc(about.title)}</span>` : ""}
    ${a.orphaned ? `<span class="status" style="background:#fdecea;color:#b71c1c">${esc(t("orphaned"))}</span>` : ""}</div>
    ${q ? `<div class="quote">${esc(q)}</div>` : ""}
    ${a.body ? `<div class="body">${esc(a.body)}</div>` : ""}
    <div class="meta">${esc(t("agree"))} ${a.agree}${(a.departments || []).length ? ` · ${esc(a.departments.map((d) => departmentName(s, d)).join(", "))}` : ""}</div>
    ${replies
      .map((r) => `<div class="reply"><span class="kind">${esc(t(r.kind))}</span> <span class="meta">${person(s, r.author)}</span><span class="reply-body">${esc(r.body || "")}</span></div>`)
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

const ASIDE_FILTERS = ["kind", "status", "dept"];

async function viewCase(s, caseKey) {
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
  for (const sec of SECTIONS) {
    const text = doc?.sections?.[sec];
    if (typeof text !== "string") continue;
    const here = roots.filter((a) => (a.target.path || []).join(".") === `sections.${sec}`);
    for (const a of here) {
      a.range = locate(text, a.target.quote, a.target.position);
      a.orphaned = !a.range;
    }
    body += `<h2 id="sec-${sec}">${esc(t(sec))}</h2>
      <div class="section-text" data-case="${esc(caseKey)}" data-path="sections.${sec}" tabindex="0"
        aria-label="${esc(t(sec))}">${highlighted(text, here)}</div>`;
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
function evaluationPanel(s, e, d, roots) {
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
async function submitEvaluation(s, form) {
  const h = await handle(form.dataset.doc);
  const keys = Array.from(form.querySelectorAll("select[name^=score-]"), (x) => x.name.slice(6));
  h.change((d) => {
    if (!d.criteria) d.criteria = {};
    for (const k of keys) {
      const v = form[`score-${k}`].value;
      if (!d.criteria[k]) d.criteria[k] = {};
      d.criteria[k].score = v === "" ? null : Number(v);
    }
    d.status = "submitted";
  });
  announce(t("evaluationSubmitted"));
  confirmSaved(form.dataset.doc, h);
}

/// The case a question asks about: the case document it is anchored in, or the first of its
/// subject cases.
function caseOf(s, a) {
  const doc = a.target?.doc || "";
  const key = doc.startsWith("case:") ? doc.slice(5) : (a.subject_cases || [])[0];
  return s.cases.find((c) => c.key === key);
}

async function viewQueue(s) {
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

async function viewPeople(s) {
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

// ---- the invite sheet (organizers) ---------------------------------------------------------

/// The links made for a session in this page (tokens are shown once: they are not kept).
const inviteSheets = {};

function viewInvites(s) {
  const head = `<h1>${esc(s.title || s.key)}</h1>${tabs(s, "invites")}`;
  const sheet = inviteSheets[s.key];
  const make = `<p class="no-print">${esc(t("invitesHelp"))}</p>
    <p class="no-print"><button type="button" class="primary" data-act="invites">${esc(t("invitesMake"))}</button>
    <button type="button" data-act="invites-reissue">${esc(t("invitesReissue"))}</button></p>`;
  if (!sheet) return head + make;
  const cards = sheet.invites
    .map(
      (i) => `<article class="invite${i.link ? "" : " kept"}" data-participant="${esc(i.participant)}">
        ${i.qr_svg ? `<div class="qr" role="img" aria-label="${esc(`${t("qrOf")} ${i.name}`)}">${i.qr_svg}</div>` : ""}
        <div><strong>${esc(i.name)}</strong> <span class="kind">${esc(lang() === "en" ? i.role_en : i.role_ko)}</span>
        <div class="muted">${esc(i.affiliation || "")}</div>
        ${i.link ? `<code class="link">${esc(i.link)}</code>` : `<p class="muted">${esc(t(i.note === "not_yours" ? "inviteNotYours" : "inviteKept"))}</p>`}</div>
      </article>`,
    )
    .join("");
  return `${head}${make}
    <p class="no-print" role="status">${esc(t("invitesDone"))}: ${sheet.issued} · ${esc(t("inviteKept"))}: ${sheet.kept}
      <button type="button" data-act="print">${esc(t("printSheet"))}</button>
      <button type="button" data-act="invites-csv">${esc(t("downloadCsv"))}</button></p>
    <div class="invite-sheet">${cards}</div>`;
}

async function makeInvites(s, reissue) {
  if (reissue && !confirm(t("invitesReissueConfirm"))) return;
  const r = await fetch(`/api/v1/sessions/${encodeURIComponent(s.key)}/invites`, {
    method: "POST",
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ base: location.origin, reissue }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw serverError(r.status, body);
  inviteSheets[s.key] = body;
  render();
}

/// The sheet as CSV for a spreadsheet or a mail merge (a byte-order mark, so Excel reads Korean).
function downloadInvites(s) {
  const sheet = inviteSheets[s.key];
  if (!sheet) return;
  const cell = (v) => `"${String(v ?? "").replace(/"/g, '""')}"`;
  const rows = [["participant", "name", "affiliation", "role", "role_ko", "link"]].concat(
    sheet.invites.map((i) => [i.participant, i.name, i.affiliation, i.role, i.role_ko, i.link || ""]),
  );
  const blob = new Blob(["\ufeff" + rows.map((r) => r.map(cell).join(",")).join("\r\n")], { type: "text/csv;charset=utf-8" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `invites-${s.key}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

const replayState = { session: null, times: [], at: null, link: null, timer: null, playing: 0 };
state.replay = replayState; // the tests read the acts' times

/// The replay's link parameters (`#/s/S/replay?ann=…&at=…` or `?doc=…&path=…`).
function replayParams() {
  return new URLSearchParams(location.hash.split("?")[1] || "");
}

/// Fields of an evaluation as the replay shows them, by their path.
const EVAL_FIELDS = [
  ["/strengths", "strengths"],
  ["/gaps", "gaps"],
  ["/lessons", "lessons"],
  ["/overall", "overallField"],
];

/// KST wall time of a UTC millisecond instant.
function kstTime(ms) {
  return new Date(ms + 9 * 3600 * 1000).toISOString().replace("T", " ").slice(0, 19);
}

/// The index of the last act at or before `at` (the first if none).
function replayIndex(at) {
  const ts = replayState.times;
  let i = 0;
  while (i + 1 < ts.length && ts[i + 1] <= at) i++;
  return i;
}

/// Plays the session from the slider's moment, act by act: the real pause between two acts
/// divided by `speed`, never longer than 3 s (a session has long silences) nor shorter than
/// a frame people can follow.
function replayPlay(speed) {
  clearTimeout(replayState.timer);
  replayState.playing = speed;
  const ts = replayState.times;
  const step = () => {
    const i = replayIndex(replayState.at ?? ts[ts.length - 1]);
    if (!replayState.playing || i + 1 >= ts.length || !location.hash.includes("/replay")) {
      replayState.playing = 0;
      render();
      return;
    }
    replayTo(ts[i + 1]);
    render();
    const wait = Math.min(3000, Math.max(250, (ts[Math.min(i + 2, ts.length - 1)] - ts[i + 1]) / speed));
    replayState.timer = setTimeout(step, wait);
  };
  if (replayIndex(replayState.at ?? 0) + 1 >= ts.length) replayState.at = ts[0];
  step();
}

async function viewReplay(s) {
  if (replayState.session !== s.key) {
    const tl = await api(`/api/v1/sessions/${s.key}/timeline?limit=5000`);
    replayState.times = [...new Set(tl.entries.map((e) => e.occurred_ms ?? e.time_ms))].sort((a, b) => a - b);
    replayState.session = s.key;
    replayState.at = null;
  }
  const params = replayParams();
  // A link names its moment once: after that the slider is the reader's.
  if (replayState.link !== location.hash) {
    replayState.link = location.hash;
    const at = Date.parse(params.get("at") || "");
    replayState.at = Number.isNaN(at) ? null : at;
    state.focus = params.get("ann");
  }
  const ts = replayState.times;
  if (!ts.length) return `<h1>${esc(s.title)}</h1>${tabs(s, "replay")}<p class="muted">—</p>`;
  const at = replayState.at ?? ts[ts.length - 1];
  const idx = replayIndex(at);
  const last = Math.max(1, ts.length - 1);
  // The slider steps act by act, so that hours of silence (or an import years later) take no
  // room; the agenda's items mark where they began.
  const markers = (s.agenda || [])
    .filter((a) => a.start)
    .map((a) => {
      const i = ts.findIndex((x) => x >= Date.parse(a.start));
      return i < 0 ? "" : `<span style="left:${(i / last) * 100}%">${esc(a.title_ko || a.key)}</span>`;
    })
    .join("");
  // Everything of the session at that moment, in one request.
  const all = await api(`/api/v1/sessions/${encodeURIComponent(s.key)}/state?at=${at}&clock=happened`);
  const docs = all.documents || {};
  const anns = [];
  for (const [key, d] of Object.entries(docs)) {
    if (!key.startsWith("notes:")) continue;
    for (const [id, a] of Object.entries(d.state?.annotations || {})) anns.push({ ...a, id: a.id || id });
  }
  const statusOf = (a) => docs[`triage:${s.key}`]?.state?.items?.[a.id]?.status || "open";
  let linked = "";
  const ann = params.get("ann");
  if (ann) {
    const a = anns.find((x) => x.id === ann);
    linked = `<section id="linked" class="card focus" aria-label="${esc(t("linkedAnnotation"))}"><h2>${esc(t("linkedAnnotation"))}</h2>${
      a
        ? `<div><span class="kind">${esc(t(a.kind))}</span> <span class="meta">${person(s, a.author)} · ${esc(String(a.created_at || "").slice(11, 16))}</span></div>
          ${a.target?.quote?.exact ? `<div class="quote">${esc(a.target.quote.exact)}</div>` : ""}${a.body ? `<div class="body">${esc(a.body)}</div>` : ""}`
        : `<p class="muted">${esc(t("notAtThisMoment"))}</p>`
    }</section>`;
  }
  const doc = params.get("doc");
  const ev = doc && (s.evaluations || []).find((e) => `eval:${e.case}:${e.evaluator}` === doc);
  if (ev) {
    const path = params.get("path") || "";
    const st = docs[doc]?.state;
    const fields = EVAL_FIELDS.filter(([p]) => typeof st?.[p.slice(1)] === "string")
      .map(
        ([p, label]) =>
          `<h3>${esc(t(label))}</h3><div class="section-text${p === path ? " focus" : ""}"${p === path ? ' id="linked-passage"' : ""}>${esc(st[p.slice(1)])}</div>`,
      )
      .join("");
    linked = `<section id="linked" class="card" aria-label="${esc(t("linkedPassage"))}"><h2>${esc(t("evaluation"))} · ${esc(
      ev.case,
    )} · ${person(s, ev.evaluator)}</h2>${fields || `<p class="muted">${esc(t("notAtThisMoment"))}</p>`}</section>`;
  }
  // The question queue as it stood: each question and its status then.
  const questions = anns.filter((a) => a.kind === "question" && !a.parent);
  const queue = questions.length
    ? `<section class="card" aria-label="${esc(t("queue"))}"><h2>${esc(t("queue"))}</h2><ul id="replay-queue">${questions
        .map((a) => `<li data-ann="${esc(a.id)}" data-status="${esc(statusOf(a))}"><span class="status">${esc(t(statusOf(a)))}</span> ${esc(a.body || "")}</li>`)
        .join("")}</ul></section>`
    : "";
  // What was said on the agenda's items by then (the chair's summing-up among it).
  const onAgenda = anns.filter((a) => a.target?.type === "agenda_item" && !a.parent);
  const itemTitle = (k) => (s.agenda || []).find((x) => x.key === k)?.title_ko || k;
  const agendaNotes = onAgenda.length
    ? `<section class="card" aria-label="${esc(t("agenda"))}"><h2>${esc(t("agenda"))}</h2><ul id="replay-agenda">${onAgenda
        .map(
          (a) =>
            `<li data-ann="${esc(a.id)}"${a.id === state.focus ? ' class="focus"' : ""}><span class="meta">${esc(itemTitle(a.target.agenda_item))}</span> <span class="kind">${esc(t(a.kind))}</span> ${esc(a.body || "")}</li>`,
        )
        .join("")}</ul></section>`
    : "";
  // Every case, its text as it was and the annotations on it then; the linked one's first.
  const target = anns.find((x) => x.id === ann)?.target?.doc;
  const cases = [...s.cases].sort((x, y) => (`case:${y.key}` === target) - (`case:${x.key}` === target));
  let content = "";
  let shown = onAgenda.length;
  for (const c of cases) {
    const caseState = docs[`case:${c.key}`]?.state;
    const onCase = anns.filter((a) => a.target?.doc === `case:${c.key}` && !a.parent);
    shown += onCase.length;
    let secs = "";
    for (const sec of SECTIONS) {
      const text = caseState?.sections?.[sec];
      if (typeof text !== "string") continue;
      const here = onCase.filter((a) => (a.target.path || []).join(".") === `sections.${sec}`);
      for (const a of here) a.range = locate(text, a.target.quote, a.target.position);
      secs += `<h3>${esc(t(sec))}</h3><div class="section-text">${highlighted(text, here)}</div>`;
    }
    content += `<section class="replay-case" data-case="${esc(c.key)}"><h2>${esc(c.title)}</h2>
      <ul>${onCase.map((a) => `<li data-ann="${esc(a.id)}"${a.id === state.focus ? ' class="focus"' : ""}><span class="kind">${esc(t(a.kind))}</span> ${esc(a.body || a.target?.quote?.exact || "")}</li>`).join("")}</ul>${secs}</section>`;
  }
  const when = kstTime(at);
  const speeds = [1, 4, 16]
    .map((x) => `<button type="button" data-act="play" data-speed="${x}" aria-pressed="${replayState.playing === x}">▶ ×${x}</button>`)
    .join(" ");
  return `<h1>${esc(s.title || s.key)}</h1>${tabs(s, "replay")}
    <div class="card replay">
      <label for="slider">${esc(t("replayAt"))}: <output id="when">${esc(when)}</output></label>
      <input id="slider" type="range" min="0" max="${ts.length - 1}" step="1" value="${idx}" aria-valuetext="${esc(when)}">
      <div class="markers" aria-hidden="true">${markers}</div>
      <p>${speeds} <button type="button" data-act="pause" ${replayState.playing ? "" : "disabled"}>⏸ ${esc(t("pause"))}</button></p>
    </div>${linked}
    <p id="replay-count" aria-live="polite">${esc(t("visibleAnnotations"))}: <strong>${shown}</strong></p>${queue}${agendaNotes}${content}`;
}

/// The report, fetched with the token in a header and shown in a sandboxed frame: a token in
/// the frame's URL would sit in the browser's history and in any proxy's access log.
async function viewReport(key) {
  const r = await fetch(`/api/v1/reports/${encodeURIComponent(key)}?lang=${lang()}`, {
    headers: state.token ? { Authorization: `Bearer ${state.token}` } : {},
  });
  const html = await r.text();
  if (!r.ok) {
    let body = null;
    try {
      body = JSON.parse(html);
    } catch {
      /* not JSON */
    }
    throw serverError(r.status, body);
  }
  return `<h1>${esc(t("report"))}</h1>
    <iframe class="report" title="${esc(t("report"))}" sandbox="allow-popups allow-top-navigation-by-user-activation" srcdoc="${esc(html)}"></iframe>`;
}

// ---- rendering and events ------------------------------------------------------------------

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    // Never re-render under an open form: the person is typing.
    if (document.querySelector("form.annotate, form.reply-form, form.eval-form[data-dirty], details[open] > form.agenda-note")) return;
    if (location.hash.includes("/replay")) return;
    render();
  });
}

async function render() {
  $("#lang").textContent = lang() === "ko" ? "English" : "한국어";
  document.documentElement.lang = lang();
  const app = $("#app");
  if (!state.token || !state.me) {
    app.innerHTML = viewJoin();
    return;
  }
  const h = location.hash || "#/";
  let m;
  let html;
  try {
    // A session this reader does not take part in (or a mistyped link) is said to be so.
    const named = h.match(/^#\/s\/([^/?]+)/);
    if (named && !session(decodeURIComponent(named[1]))) throw new Error(`${t("noSuchSession")}: ${decodeURIComponent(named[1])}`);
    if ((m = h.match(/^#\/s\/([^/]+)\/c\/([^/]+)/))) html = await viewCase(session(decodeURIComponent(m[1])), decodeURIComponent(m[2]));
    else if ((m = h.match(/^#\/s\/([^/]+)\/queue/))) html = await viewQueue(session(decodeURIComponent(m[1])));
    else if ((m = h.match(/^#\/s\/([^/]+)\/people/))) html = await viewPeople(session(decodeURIComponent(m[1])));
    else if ((m = h.match(/^#\/s\/([^/]+)\/invites/))) html = viewInvites(session(decodeURIComponent(m[1])));
    else if ((m = h.match(/^#\/s\/([^/]+)\/replay/))) html = await viewReplay(session(decodeURIComponent(m[1].split("?")[0])));
    else if ((m = h.match(/^#\/s\/([^/]+)/))) html = await viewCases(session(decodeURIComponent(m[1])));
    else if ((m = h.match(/^#\/report\/([^/]+)/))) html = await viewReport(decodeURIComponent(m[1]));
    else html = viewSessions();
  } catch (e) {
    html = `<p class="error" role="alert">${esc(e.message)}</p>`;
  }
  // A re-render must not take the keyboard's place away (the replay slider, a filter).
  const focused = document.activeElement?.id;
  app.innerHTML = html;
  if (focused && app.contains(document.getElementById(focused))) document.getElementById(focused).focus({ preventScroll: true });
  renderSaving();
  renderRefused();
  // A report's link: bring what it points to into view, once.
  const linked = $("#linked");
  if (linked && replayState.shown !== location.hash) {
    replayState.shown = location.hash;
    ($("#linked-passage") || linked).scrollIntoView({ block: "center" });
  }
}

/// Code point offsets of the current selection inside a section's text element.
function selectionIn(el) {
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

/** A department as people know it: its Korean (or English) name, by its key. */
function departmentName(s, key) {
  const d = (s?.departments || []).find((x) => x.key === key);
  return d ? (lang() === "ko" ? d.name_ko : d.name_en || d.name_ko) : key;
}

/// The sentences of a text as code-point ranges: what a keyboard user picks a passage from.
function sentences(text) {
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
function openComposer(sectionEl, range, s) {
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

/// Highlight ↔ card: a click on a highlighted passage brings its annotation's card into view,
/// a click on a card (not on its buttons) brings its passage into view; both are marked.
async function focusAnnotation(id, show) {
  state.focus = id;
  await render();
  const el =
    show === "card"
      ? document.querySelector(`article.ann[data-ann="${CSS.escape(id)}"]`)
      : document.querySelector("mark.focus");
  el?.scrollIntoView({ block: "center" });
}

document.addEventListener("click", (ev) => {
  if (window.getSelection()?.toString()) return; // selecting a passage, not pointing at one
  const mark = ev.target.closest?.("mark[data-ids]");
  if (mark) return void focusAnnotation(mark.dataset.ids.split(" ")[0], "card");
  const cardEl = ev.target.closest?.("article.ann[data-ann]");
  if (cardEl && !ev.target.closest("button, a, form, textarea, select, input, details")) {
    focusAnnotation(cardEl.dataset.ann, "mark");
  }
});

document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button");
  if (!b) return;
  const m = location.hash.match(/^#\/s\/([^/]+)/);
  const s = m && session(decodeURIComponent(m[1]));
  try {
    if (b.id === "lang") {
      setLang(lang() === "ko" ? "en" : "ko");
      render();
    } else if (b.id === "annotate-selection") {
      for (const el of document.querySelectorAll(".section-text")) {
        const r = selectionIn(el);
        if (r) return openComposer(el, r, s);
      }
      // No selection: the section last focused, its sentences to choose from.
      const focused = lastSection && document.contains(lastSection) ? lastSection : null;
      if (focused) return openComposer(focused, null, s);
      announce(t("selectFirst"));
    } else if (b.dataset.act === "invites" || b.dataset.act === "invites-reissue") {
      await makeInvites(s, b.dataset.act === "invites-reissue");
    } else if (b.dataset.act === "invites-csv") {
      downloadInvites(s);
    } else if (b.dataset.act === "print") {
      window.print();
    } else if (b.dataset.act === "play") {
      replayPlay(Number(b.dataset.speed));
    } else if (b.dataset.act === "pause") {
      replayState.playing = 0;
      clearTimeout(replayState.timer);
      render();
    } else if (b.dataset.act === "reload") {
      // The refused copy is kept in this browser: drop it, and take the server's again.
      if (state.refused?.doc) {
        const id = state.refused.doc;
        state.repo.delete(id);
        // `delete` removes it from storage without waiting, and a save already scheduled can
        // write it back: remove it, let pending saves pass, remove it again, then reload.
        await state.repo.storageSubsystem?.removeDoc(id);
        await new Promise((r) => setTimeout(r, 500));
        await state.repo.storageSubsystem?.removeDoc(id);
      }
      location.reload();
    } else if (b.dataset.act === "cancel") {
      $("#composer").innerHTML = "";
      render();
    } else if (b.dataset.act === "agree" && s) {
      const all = await gather(s);
      await agree(s, all.find((a) => a.id === b.dataset.id));
    } else if (b.dataset.act === "status" && s) {
      const all = await gather(s);
      await setStatus(s, all.find((a) => a.id === b.dataset.id), b.dataset.status);
    } else if (b.dataset.act === "reply" && s) {
      const card = b.closest("article");
      if (card.querySelector("form")) return;
      const f = document.createElement("form");
      f.className = "reply-form";
      f.dataset.parent = b.dataset.id;
      f.innerHTML = `<label>${esc(t("reply"))} <textarea name="body" required></textarea></label>
        <button class="primary" type="submit">${esc(t("send"))}</button>`;
      card.appendChild(f);
      f.body.focus();
    }
  } catch (e) {
    announce(e.message);
    alert(e.message);
  }
});

document.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  try {
    if (f.id === "join") {
      const v = f.tok.value.trim();
      const m = v.match(/#\/join\/([^/?#]+)/);
      state.token = m ? decodeURIComponent(m[1]) : v;
      localStorage.setItem("toron.token", state.token);
      await start();
      return;
    }
    const m = location.hash.match(/^#\/s\/([^/]+)/);
    const s = m && session(decodeURIComponent(m[1]));
    if (f.classList.contains("eval-form")) {
      await submitEvaluation(s, f);
      render();
    } else if (f.classList.contains("agenda-note")) {
      await annotateAgenda(s, f);
      f.closest("details")?.removeAttribute("open");
      f.reset();
      render();
    } else if (f.classList.contains("annotate")) {
      await annotate(s, f);
      f.remove();
      render();
    } else if (f.classList.contains("reply-form")) {
      const all = await gather(s);
      await reply(s, all.find((a) => a.id === f.dataset.parent), f.body.value.trim());
      f.remove();
      render();
    }
  } catch (e) {
    announce(e.message);
    alert(e.message);
  }
});

document.addEventListener("mouseup", () => {
  const btn = $("#annotate-selection");
  if (!btn) return;
  for (const el of document.querySelectorAll(".section-text")) {
    if (selectionIn(el)) btn.classList.add("primary");
  }
});

// From the keyboard: a section of the case text takes focus (Tab), Enter opens the composer
// with its sentences to pick from.
let lastSection = null;
document.addEventListener("focusin", (ev) => {
  const el = ev.target.closest?.(".section-text[data-case]");
  if (el) lastSection = el;
});
document.addEventListener("keydown", (ev) => {
  const el = ev.target.closest?.(".section-text[data-case]");
  if (!el || ev.key !== "Enter" || !$("#annotate-selection")) return;
  ev.preventDefault();
  const m = location.hash.match(/^#\/s\/([^/]+)/);
  openComposer(el, selectionIn(el), m && session(decodeURIComponent(m[1])));
});

// An evaluator choosing scores: the page does not redraw the form under her until she submits.
document.addEventListener("change", (ev) => {
  const f = ev.target.closest?.("form.eval-form");
  if (f) f.dataset.dirty = "1";
  if (ev.target.closest?.("form.filters") && ev.target.name in listView) {
    listView[ev.target.name] = ev.target.value;
    render();
  }
});

/// Moves the replay to `at` and writes the moment into the address, so that a copied link
/// (or a reload) opens the same moment.
function replayTo(at) {
  replayState.at = at;
  const p = replayParams();
  p.set("at", new Date(at + 9 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, "+09:00"));
  history.replaceState(null, "", `${location.pathname}${location.hash.split("?")[0]}?${p}`);
  replayState.link = location.hash;
}

// While the slider is dragged, moves wait for a pause (one request, not one per pixel); a key
// press is one move, answered at once.
let sliderHeld = false;
document.addEventListener("pointerdown", (ev) => (sliderHeld = ev.target.id === "slider"));
document.addEventListener("pointerup", () => (sliderHeld = false));

document.addEventListener("input", (ev) => {
  if (ev.target.id !== "slider") return;
  replayState.playing = 0;
  replayTo(replayState.times[Number(ev.target.value)]);
  clearTimeout(replayState.timer);
  replayState.timer = setTimeout(render, sliderHeld ? 150 : 0);
});

window.addEventListener("hashchange", () => {
  state.focus = null;
  markVisit();
  render().then(() => $("#app").focus({ preventScroll: true }));
});

function watchNetwork() {
  const el = $("#net");
  const tick = () => {
    // Before any document is needed there is no connection to speak of.
    if (!state.adapter) {
      el.textContent = "";
      return;
    }
    const ws = state.adapter.socket;
    const up = navigator.onLine && ws && ws.readyState === 1;
    if (up) state.wasOnline = true;
    // A page that has not connected yet is connecting, not offline.
    const word = up ? "online" : state.wasOnline || !navigator.onLine ? "offline" : "connecting";
    el.textContent = t(word);
    el.className = { online: "net on", offline: "net off", connecting: "net" }[word];
  };
  tick();
  setInterval(tick, 1000);
  window.addEventListener("online", tick);
  window.addEventListener("offline", tick);
}

async function start() {
  try {
    const me = await api("/api/v1/whoami");
    state.me = me.participant || "open";
    $("#who").textContent = me.name ? `${me.name}` : state.me;
    state.sessions = (await api("/api/v1/me/sessions")).sessions;
  } catch (e) {
    state.me = null;
    $("#lang").textContent = lang() === "ko" ? "English" : "한국어";
    $("#app").innerHTML = viewJoin(e.status === 401 ? t("badToken") : e.status ? e.message : t("serverUnreachable"));
    return;
  }
  markVisit();
  if (!state.watching) {
    state.watching = true;
    watchNetwork();

  }
  await render();
}

linkedMoment();
state.token = readToken();
if (state.token) await start();
else render();
