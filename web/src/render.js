// Rendering: the view for the address, re-rendered on change (never under an open form),
// and the start once a token is known.

import { t, lang } from "./i18n.js";
import { api } from "./api.js";
import { renderRefused, renderSaving } from "./compose.js";
import { session } from "./documents.js";
import { viewFollowup } from "./followup.js";
import { markVisit, viewCase, viewPeople, viewQueue } from "./hall.js";
import { viewInvites } from "./invites.js";
import { replayState, viewReplay, viewReport } from "./replay.js";
import { $, esc, state } from "./state.js";
import { viewCases, viewJoin, viewProjector, viewSessions } from "./views.js";

export let renderQueued = false;

export function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    // Never re-render under an open form: the person is typing.
    if (document.querySelector("form.annotate, form.reply-form, form.eval-form[data-dirty], form.promote[data-dirty], form.respond[data-dirty], details[open] > form.agenda-note")) return;
    if (location.hash.includes("/replay")) return;
    render();
  });
}

export async function render() {
  $("#lang").textContent = lang() === "ko" ? "English" : "한국어";
  $("#logout").textContent = t("logout");
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
    else if ((m = h.match(/^#\/s\/([^/]+)\/followup/))) html = await viewFollowup(session(decodeURIComponent(m[1])));
    else if ((m = h.match(/^#\/s\/([^/]+)\/people/))) html = await viewPeople(session(decodeURIComponent(m[1])));
    else if ((m = h.match(/^#\/s\/([^/]+)\/projector/))) html = await viewProjector(session(decodeURIComponent(m[1])));
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

export function watchNetwork() {
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

/// Asks the server again which sessions this participant follows and what they may do in
/// each (after the chair moved a session: the phase decides who may write).
export async function refreshSessions() {
  try {
    state.sessions = (await api("/api/v1/me/sessions")).sessions;
    state.sessionsAt = Date.now();
  } catch {
    /* offline: the pushed phase stands until the next answer */
  }
}

export async function start() {
  try {
    const me = await api("/api/v1/whoami");
    state.me = me.participant || "open";
    state.publicUrl = me.public_url || null;
    $("#who").textContent = me.name ? `${me.name}` : state.me;
    $("#logout").hidden = false;
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
    // The projector's clock, and the session's state if a push was missed (every minute).
    setInterval(() => {
      if (location.hash.includes("/projector")) scheduleRender();
    }, 15000);

  }
  await render();
}
