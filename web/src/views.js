// The views of a session: tabs, join, the session list, cases, the agenda.

import { cpLength } from "./anchor.js";
import { t } from "./i18n.js";
import { liveAnnotation, writeAnnotation } from "./compose.js";
import { ensureRepo, gather, mayAnnotate } from "./documents.js";
import { hasFollowup } from "./followup.js";
import { annotationCard } from "./hall.js";
import { scheduleRender } from "./render.js";
import { $, KINDS, SECTIONS, esc, state } from "./state.js";

// ---- a case's sections ---------------------------------------------------------------------

/// A case's sections as the district wrote them, any names: in the order the case gives
/// (`section_order`, which the import writes from the bundle), else the four usual ones first
/// and any other after them, by name.
export function caseSections(doc) {
  const secs = doc?.sections || {};
  const names = Object.keys(secs).filter((k) => typeof secs[k] === "string");
  const order = Array.isArray(doc?.section_order) ? doc.section_order.map(String) : [];
  const rank = (n) => {
    const i = order.indexOf(n);
    if (i >= 0) return i;
    const j = SECTIONS.indexOf(n);
    return order.length + (j >= 0 ? j : SECTIONS.length);
  };
  return names.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/// A section's heading: the usual four in the reader's language, any other as the district
/// named it.
export const sectionTitle = (name) => (SECTIONS.includes(name) ? t(name) : name);

/// Where an annotation on a section points, as the page carries it: `sections.` and the
/// section's whole name (which may hold a dot: `compose.js` splits at the first one only).
export const sectionPath = (name) => `sections.${name}`;

// ---- views ---------------------------------------------------------------------------------

export function announce(msg) {
  $("#announce").textContent = msg;
}

export function tabs(s, current) {
  const items = [
    ["cases", `#/s/${s.key}`, t("cases")],
    ["queue", `#/s/${s.key}/queue`, t("queue")],
    ["people", `#/s/${s.key}/people`, t("people")],
    ["replay", `#/s/${s.key}/replay`, t("replay")],
  ];
  if (hasFollowup(s)) items.push(["followup", `#/s/${s.key}/followup`, t("followup")]);
  if (s.my_roles.includes("organizer")) {
    items.push(["invites", `#/s/${s.key}/invites`, t("invites")]);
    items.push(["report", `#/report/${s.key}`, t("report")]);
  }
  return `<nav class="tabs" aria-label="${esc(t("sessionMenu"))}">${items
    .map(([k, href, label]) => `<a href="${href}" ${k === current ? 'aria-current="page"' : ""}>${esc(label)}</a>`)
    .join("")}</nav>${sessionBar(s)}`;
}

/// Whether this participant runs the session from the hall (the server decides again): an
/// organizer, or the facilitator the session names.
export function runsSession(s) {
  return s.my_roles.includes("organizer") || (s.my_roles.includes("facilitator") && s.facilitator === state.me);
}

/// The agenda item under way, as the chair set it.
export function currentItem(s) {
  return (s.agenda || []).find((i) => i.key === s.item) || null;
}

/// An agenda item's hours, in the session's time (as the bundle wrote them).
export const itemTime = (item) =>
  [item.start, item.end]
    .filter(Boolean)
    .map((x) => String(x).slice(11, 16))
    .join("–");

/// Where the session stands, for everyone (its phase, the agenda item under way), and for the
/// one who runs it the controls: start, close, the item now, the projector's view.
export function sessionBar(s) {
  const item = currentItem(s);
  const now = item
    ? ` · ${esc(t("nowItem"))}: <strong id="now-item">${esc(item.title_ko || item.key)}</strong> <span class="meta">${esc(itemTime(item))}</span>`
    : "";
  let controls = "";
  if (runsSession(s)) {
    const start = s.phase === "scheduled" ? `<button type="button" class="primary" data-act="phase" data-phase="live">${esc(t("startSession"))}</button>` : "";
    const close =
      s.phase === "live"
        ? `<details class="confirm"><summary>${esc(t("closeSession"))}</summary><p>${esc(t("closeSessionHint"))}
            <button type="button" data-act="phase" data-phase="closed">${esc(t("closeSessionNow"))}</button></p></details>`
        : "";
    const agenda = s.agenda || [];
    // What she picked and has not set yet stays picked through a redraw.
    const picked = state.pickedItem?.session === s.key ? state.pickedItem.item : s.item;
    const pick = agenda.length
      ? `<label>${esc(t("agendaNow"))} <select id="agenda-item" data-session="${esc(s.key)}"><option value="">—</option>${agenda
          .map((i) => `<option value="${esc(i.key)}"${i.key === picked ? " selected" : ""}>${esc(`${i.title_ko || i.key} ${itemTime(i)}`)}</option>`)
          .join("")}</select></label> <button type="button" data-act="set-item">${esc(t("setItem"))}</button>`
      : "";
    controls = `<div class="chair-controls" aria-label="${esc(t("runSession"))}">${start}${close}${pick}
      <a href="#/s/${esc(s.key)}/projector">${esc(t("projector"))}</a></div>`;
  }
  return `<div class="session-bar" id="session-bar" aria-live="polite"><span class="phase phase-${esc(s.phase)}">${esc(t(s.phase))}</span>${now}${controls}</div>`;
}

/// The view for the hall's projector: the agenda item under way, the question being answered,
/// the open questions most agreed with, and the time — large, read from across the room.
export async function viewProjector(s) {
  const all = await gather(s);
  const questions = all.filter((a) => a.kind === "question" && !a.parent && a.status === "open");
  questions.sort((x, y) => y.agree - x.agree || String(x.created_at).localeCompare(String(y.created_at)));
  const answering = all.find((a) => a.answering);
  const item = currentItem(s);
  const clock = new Intl.DateTimeFormat("ko-KR", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "Asia/Seoul" }).format(new Date());
  const q = (a) => `<li><span class="agree-count" aria-label="${esc(t("agree"))}">${esc(t("agree"))} ${a.agree}</span> ${esc(a.body || a.target?.quote?.exact || "")}</li>`;
  return `<div class="projector"><p class="muted"><a href="#/s/${esc(s.key)}">${esc(s.title || s.key)}</a></p>
    <p class="clock" id="clock">${esc(clock)}</p>
    <h1>${item ? esc(item.title_ko || item.key) : esc(t(s.phase))}</h1>
    ${item ? `<p class="meta">${esc(itemTime(item))}</p>` : ""}
    ${answering ? `<section class="answering" id="projector-answering"><h2>${esc(t("answeringNow"))}</h2><p>${esc(answering.body || "")}</p></section>` : ""}
    <h2>${esc(t("topQuestions"))}</h2>
    ${(() => {
      const top = questions.filter((a) => !a.answering).slice(0, 5);
      return top.length ? `<ol class="top-questions" id="top-questions">${top.map(q).join("")}</ol>` : `<p class="muted" id="top-questions">—</p>`;
    })()}</div>`;
}

export function viewJoin(error) {
  // With an invite link's code in hand, only the choice of device is asked.
  const field = state.pendingJoin
    ? `<p>${esc(t("joinWithLink"))}</p>`
    : `<label for="tok">${esc(t("inviteLabel"))}</label>
    <input id="tok" name="tok" style="width:100%" autocomplete="off" required>`;
  return `<h1>${esc(t("join"))}</h1>
  <form id="join" class="card">
    ${field}
    <p><label><input type="checkbox" name="shared" id="shared"> ${esc(t("sharedDevice"))}</label><br>
    <span class="muted">${esc(t("sharedDeviceHint"))}</span></p>
    <p><button class="primary" type="submit">${esc(t("enter"))}</button></p>
    ${error ? `<p class="error" role="alert">${esc(error)}</p>` : ""}
  </form>`;
}

export function viewSessions() {
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

export async function viewCases(s) {
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
  // (`data-ready` once the session's documents are open: this page is then in the session.)
  return `<h1>${esc(s.title || s.key)}</h1>${tabs(s, "cases")}${cards}
    <h2>${esc(t("agenda"))}</h2><div id="agenda-list"${state.repo ? " data-ready" : ""}>${agenda}</div>`;
}

/// The session's agenda, each item with the annotations made on it, and for those who may
/// annotate a form to add one.
export async function agendaView(s) {
  const all = await gather(s);
  const canWrite = mayAnnotate(s);
  const canTriage = !!s.triage?.writable;
  const items = s.agenda || [];
  if (!items.length) return `<p class="muted">—</p>`;
  return `<ol class="agenda">${items
    .map((item) => {
      const on = all.filter((a) => a.target?.type === "agenda_item" && a.target.agenda_item === item.key && !a.parent);
      const time = [item.start, item.end].filter(Boolean).map((x) => String(x).slice(11, 16)).join("–");
      const now = item.key === s.item ? ` aria-current="step"` : "";
      return `<li class="agenda-item${now ? " now" : ""}" data-item="${esc(item.key)}"${now}><h3>${esc(item.title_ko || item.key)} <span class="meta">${esc(time)}</span></h3>
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
export async function annotateAgenda(s, form) {
  const a = liveAnnotation(s, form.kind.value, {
    target: { type: "agenda_item", agenda_item: form.dataset.item },
    body: form.body.value.trim(),
  });
  await writeAnnotation(s, a);
  state.focus = a.id;
  announce(t("annotationAdded"));
}

/// A section's text with the annotations that anchor into it highlighted.
export function highlighted(text, anns) {
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
