// Toron's debate-hall client. Documents sync with the official automerge-repo client over
// the server's WebSocket; HTTP is used only for the API (who am I, my sessions, presence,
// history, timeline, report). No framework: plain DOM, re-rendered from state on change.
//
// This module holds the page's event handlers and starts it; the rest is in modules named
// for what they hold: state, api, documents, compose (writing), views, hall (lists, a case,
// the queue, people), invites, replay (and the report), render.

import { t, lang, setLang } from "./i18n.js";
import { api, joinWith, linkedMoment, logOut, readToken } from "./api.js";
import { agree, annotate, openComposer, reply, selectionIn, setAnswering, setStatus } from "./compose.js";
import { gather, session } from "./documents.js";
import { promote, respond } from "./followup.js";
import { focusAnnotation, listView, markVisit, reopenEvaluation, saveEvaluation } from "./hall.js";
import { downloadInvites, makeInvites } from "./invites.js";
import { refreshSessions, render, start } from "./render.js";
import { downloadReport, replayPlay, replayState, replayTo } from "./replay.js";
import { $, esc, state } from "./state.js";
import { annotateAgenda, announce, viewJoin } from "./views.js";

// ---- events ----------------------------------------------------------------------------------

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
    } else if (b.id === "logout") {
      await logOut();
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
    } else if (b.dataset.act === "report-download") {
      await downloadReport(b.dataset.key, b.dataset.format);
    } else if (b.dataset.act === "phase" && s) {
      // The chair or an organizer moves the session; every open page hears of it.
      await api(`/api/v1/sessions/${encodeURIComponent(s.key)}/phase`, { method: "PUT", body: { phase: b.dataset.phase } });
      await refreshSessions();
      announce(`${t("sessionNow")}: ${t(b.dataset.phase)}`);
      render();
    } else if (b.dataset.act === "set-item" && s) {
      const item = $("#agenda-item")?.value || null;
      state.pickedItem = undefined;
      await api(`/api/v1/sessions/${encodeURIComponent(s.key)}/item`, { method: "PUT", body: { item } });
      await refreshSessions();
      render();
    } else if (b.dataset.act === "answering" && s) {
      const all = await gather(s);
      await setAnswering(s, all.find((a) => a.id === b.dataset.id) || null);
      render();
    } else if (b.dataset.act === "eval-save" && s) {
      await saveEvaluation(s, b.closest("form"), false);
      render();
    } else if (b.dataset.act === "eval-reopen") {
      await reopenEvaluation(b.dataset.doc);
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
      f.innerHTML = `<label>${esc(t("replyAction"))} <textarea name="body" required></textarea></label>
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
      const v = state.pendingJoin || f.tok.value.trim();
      const m = v.match(/#\/join\/([^/?#]+)/);
      try {
        await joinWith(m ? decodeURIComponent(m[1]) : v, f.shared.checked);
      } catch (e) {
        // A spent or unknown link: said on the join page, which now asks for another.
        state.pendingJoin = null;
        $("#app").innerHTML = viewJoin(e.message);
        return;
      }
      await start();
      return;
    }
    const m = location.hash.match(/^#\/s\/([^/]+)/);
    const s = m && session(decodeURIComponent(m[1]));
    if (f.classList.contains("promote")) {
      await promote(s, f);
      render();
    } else if (f.classList.contains("respond")) {
      await respond(s, f);
      render();
    } else if (f.classList.contains("eval-form")) {
      await saveEvaluation(s, f, true);
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
  const f = ev.target.closest?.("form.eval-form, form.promote, form.respond");
  if (f) f.dataset.dirty = "1";
  // The chair's pick of the next item survives a redraw (a push from the server) until she
  // presses 이 순서로.
  if (ev.target.id === "agenda-item") state.pickedItem = { session: ev.target.dataset.session, item: ev.target.value };
  if (ev.target.closest?.("form.filters") && ev.target.name in listView) {
    listView[ev.target.name] = ev.target.value;
    render();
  }
});
// While the slider is dragged, moves wait for a pause (one request, not one per pixel); a key
// press is one move, answered at once.
let sliderHeld = false;
document.addEventListener("pointerdown", (ev) => (sliderHeld = ev.target.id === "slider"));
document.addEventListener("pointerup", () => (sliderHeld = false));
document.addEventListener("input", (ev) => {
  // Typing in a follow-up form: the page does not redraw it under the writer.
  const f = ev.target.closest?.("form.promote, form.respond, form.eval-form");
  if (f) f.dataset.dirty = "1";
  if (ev.target.id !== "slider") return;
  replayState.playing = 0;
  replayTo(replayState.times[Number(ev.target.value)]);
  clearTimeout(replayState.timer);
  replayState.timer = setTimeout(render, sliderHeld ? 150 : 0);
});
window.addEventListener("hashchange", () => {
  // An invite link opened in a page already showing: taken out of the address as at start.
  if (location.hash.startsWith("#/join/")) {
    readToken();
    $("#app").innerHTML = viewJoin();
    return;
  }
  state.focus = null;
  markVisit();
  // What this participant may do may have changed since the list was fetched (a phase moved
  // while the page was elsewhere): asked again, at most every ten seconds.
  const fresh = Date.now() - (state.sessionsAt || 0) < 10_000;
  (fresh ? Promise.resolve() : refreshSessions())
    .then(render)
    .then(() => $("#app").focus({ preventScroll: true }));
});
linkedMoment();
state.token = readToken();
if (state.token) await start();
else render();
