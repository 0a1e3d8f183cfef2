// The replay of a session, act by act, and the report.

import { locate } from "./anchor.js";
import { t, lang } from "./i18n.js";
import { api, serverError } from "./api.js";
import { authorship, person, session } from "./documents.js";
import { render } from "./render.js";
import { $, esc, state } from "./state.js";
import { caseSections, highlighted, sectionTitle, tabs } from "./views.js";

export const replayState = { session: null, times: [], at: null, link: null, timer: null, playing: 0 };
state.replay = replayState; // the tests read the acts' times

/// The replay's link parameters (`#/s/S/replay?ann=…&at=…` or `?doc=…&path=…`).
export function replayParams() {
  return new URLSearchParams(location.hash.split("?")[1] || "");
}

/// Fields of an evaluation as the replay shows them, by their path.
export const EVAL_FIELDS = [
  ["/strengths", "strengths"],
  ["/gaps", "gaps"],
  ["/lessons", "lessons"],
  ["/overall", "overallField"],
];

/// KST wall time of a UTC millisecond instant.
export function kstTime(ms) {
  return new Date(ms + 9 * 3600 * 1000).toISOString().replace("T", " ").slice(0, 19);
}

/// The index of the last act at or before `at` (the first if none).
export function replayIndex(at) {
  const ts = replayState.times;
  let i = 0;
  while (i + 1 < ts.length && ts[i + 1] <= at) i++;
  return i;
}

/// Plays the session from the slider's moment, act by act: the real pause between two acts
/// divided by `speed`, never longer than 3 s (a session has long silences) nor shorter than
/// a frame people can follow.
export function replayPlay(speed) {
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

export async function viewReplay(s) {
  if (replayState.session !== s.key) {
    const tl = await api(`/api/v1/sessions/${s.key}/timeline?limit=5000`);
    replayState.times = [...new Set(tl.entries.map((e) => e.occurred_ms ?? e.time_ms))].sort((a, b) => a - b);
    // When the chair began each agenda item, as the log has it.
    replayState.items = tl.entries
      .filter((e) => e.kind === "session.agenda_item" || e.kind === "agenda.advanced")
      .map((e) => ({ at: e.occurred_ms ?? e.time_ms, item: e.detail?.item ?? null }))
      .sort((a, b) => a.at - b.at);
    replayState.session = s.key;
    replayState.at = null;
  }
  const params = replayParams();
  // A link names its moment once: after that the slider is the reader's.
  if (replayState.link !== location.hash) {
    replayState.link = location.hash;
    const given = params.get("at") || "";
    const at = Date.parse(given);
    // A moment written to the second (as a report's link is) means that whole second: what
    // was written in it is there — the link opens at, not before, its annotation.
    const whole = /T\d\d:\d\d:\d\d(?!\.)/.test(given);
    replayState.at = Number.isNaN(at) ? null : whole ? at + 999 : at;
    state.focus = params.get("ann");
  }
  const ts = replayState.times;
  if (!ts.length) return `<h1>${esc(s.title)}</h1>${tabs(s, "replay")}<p class="muted">—</p>`;
  const at = replayState.at ?? ts[ts.length - 1];
  const idx = replayIndex(at);
  const last = Math.max(1, ts.length - 1);
  // The slider steps act by act, so that hours of silence (or an import years later) take no
  // room; the agenda's items mark where they began.
  // Where each item began: when the chair began it (the log), else its scheduled start;
  // a session that started late keeps its markers on the slider, at its first or last act.
  const begun = (key) => (replayState.items || []).find((x) => x.item === key)?.at;
  const markers = (s.agenda || [])
    .map((a) => ({ a, at: begun(a.key) ?? Date.parse(a.start || "") }))
    .filter(({ at }) => !Number.isNaN(at))
    .map(({ a, at }) => {
      const found = ts.findIndex((x) => x >= at);
      const i = found < 0 ? last : found;
      return `<span style="left:${(Math.min(i, last) / last) * 100}%">${esc(a.title_ko || a.key)}</span>`;
    })
    .join("");
  // The agenda item under way at this moment, as the chair set it.
  const then = (replayState.items || []).filter((x) => x.at <= at).pop();
  const thenItem = then?.item ? (s.agenda || []).find((x) => x.key === then.item) : null;
  const itemNow = thenItem ? `<p id="replay-item">${esc(t("nowItem"))}: <strong>${esc(thenItem.title_ko || thenItem.key)}</strong></p>` : "";
  // Everything of the session at that moment, in one request.
  const all = await api(`/api/v1/sessions/${encodeURIComponent(s.key)}/state?at=${at}&clock=happened`);
  const docs = all.documents || {};
  const anns = [];
  for (const [key, d] of Object.entries(docs)) {
    if (!key.startsWith("notes:")) continue;
    // The author is the layer's owner (its key names them), never what the note says.
    const layer = { participant: key.slice(`notes:${s.key}:`.length) };
    for (const [id, a] of Object.entries(d.state?.annotations || {})) anns.push({ ...a, id, ...authorship(s, layer, a) });
  }
  const statusOf = (a) => docs[`triage:${s.key}`]?.state?.items?.[a.id]?.status || "open";
  let linked = "";
  const ann = params.get("ann");
  // A report names an annotation by the start of its id (eight characters).
  const named = (x) => !!ann && (x.id === ann || (ann.length >= 8 && String(x.id).startsWith(ann)));
  if (ann) {
    const a = anns.find(named);
    if (a && state.focus === ann) state.focus = a.id;
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
  const target = anns.find(named)?.target?.doc;
  const cases = [...s.cases].sort((x, y) => (`case:${y.key}` === target) - (`case:${x.key}` === target));
  let content = "";
  let shown = onAgenda.length;
  for (const c of cases) {
    const caseState = docs[`case:${c.key}`]?.state;
    const onCase = anns.filter((a) => a.target?.doc === `case:${c.key}` && !a.parent);
    shown += onCase.length;
    let secs = "";
    for (const sec of caseSections(caseState)) {
      const text = caseState.sections[sec];
      const here = onCase.filter((a) => (a.target.path || []).join(".") === `sections.${sec}`);
      for (const a of here) a.range = locate(text, a.target.quote, a.target.position);
      secs += `<h3>${esc(sectionTitle(sec))}</h3><div class="section-text">${highlighted(text, here)}</div>`;
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
    </div>${itemNow}${linked}
    <p id="replay-count" aria-live="polite">${esc(t("visibleAnnotations"))}: <strong>${shown}</strong></p>${queue}${agendaNotes}${content}`;
}

/// The report, fetched with the token in a header and shown in a sandboxed frame: a token in
/// the frame's URL would sit in the browser's history and in any proxy's access log.
export async function viewReport(key) {
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
  const buttons = REPORT_FILES.map(
    ([format, label]) => `<button type="button" data-act="report-download" data-key="${esc(key)}" data-format="${format}">${esc(label)} ${esc(t("download"))}</button>`,
  ).join(" ");
  return `<h1>${esc(t("report"))}</h1>
    <p class="downloads" role="group" aria-label="${esc(t("reportFiles"))}">${buttons} <span id="download-state" aria-live="polite" class="muted"></span></p>
    <iframe class="report" title="${esc(t("report"))}" sandbox="allow-popups allow-top-navigation-by-user-activation" srcdoc="${esc(html)}"></iframe>`;
}

/// The report's files a person downloads from the 보고서 view, by format.
const REPORT_FILES = [
  ["pdf", "PDF"],
  ["hwpx", "HWPX (한글)"],
  ["xlsx", "XLSX (엑셀)"],
  ["csv", "CSV"],
];

/// Downloads the report of `key` as `format`: fetched with the token in a header (never in a
/// URL), saved under the name the server gives.
export async function downloadReport(key, format) {
  const note = document.getElementById("download-state");
  if (note) note.textContent = t("preparing");
  const r = await fetch(`/api/v1/reports/${encodeURIComponent(key)}?lang=${lang()}&format=${format}`, {
    headers: state.token ? { Authorization: `Bearer ${state.token}` } : {},
  });
  if (!r.ok) {
    const body = await r.json().catch(() => null);
    if (note) note.textContent = "";
    throw serverError(r.status, body);
  }
  const blob = await r.blob();
  const named = /filename="([^"]+)"/.exec(r.headers.get("content-disposition") || "");
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = named ? named[1] : `${key}.${format}`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  if (note) note.textContent = `${t("downloaded")}: ${a.download}`;
}

/// Moves the replay to `at` and writes the moment into the address, so that a copied link
/// (or a reload) opens the same moment.
export function replayTo(at) {
  replayState.at = at;
  const p = replayParams();
  p.set("at", new Date(at + 9 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, "+09:00"));
  history.replaceState(null, "", `${location.pathname}${location.hash.split("?")[0]}?${p}`);
  replayState.link = location.hash;
}
