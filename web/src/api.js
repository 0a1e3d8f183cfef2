// The token (from the join link) and the server's HTTP API.

import { t } from "./i18n.js";
import { $, state } from "./state.js";

// ---- token and API --------------------------------------------------------------------------

/// Where this browser keeps the token: `localStorage` on one's own device; `sessionStorage`
/// on a shared computer ("공용 PC"), gone when the tab closes — with no documents kept either.
export function sharedDevice() {
  return sessionStorage.getItem("toron.shared") === "1";
}

export function keepToken(token, shared) {
  if (shared) {
    sessionStorage.setItem("toron.shared", "1");
    sessionStorage.setItem("toron.token", token);
    localStorage.removeItem("toron.token");
  } else {
    sessionStorage.removeItem("toron.shared");
    localStorage.setItem("toron.token", token);
  }
}

/// An invite link's code (`#/join/j_…`), taken out of the address before anything else
/// happens: the address bar and the history never keep it past this moment, and once the
/// page has exchanged it for a token the code is spent. A raw token in the link (older
/// sheets, pasted by hand) is taken the same way.
export function readToken() {
  const m = location.hash.match(/^#\/join\/([^/?#]+)/);
  if (m) {
    history.replaceState(null, "", location.pathname + "#/");
    state.pendingJoin = decodeURIComponent(m[1]);
    return null;
  }
  return sessionStorage.getItem("toron.token") || localStorage.getItem("toron.token");
}

/// Joins with what the join form holds (a code from a link, or a token pasted by hand): a
/// code is exchanged for a token of this device (`POST /api/v1/join`).
export async function joinWith(given, shared) {
  let token = given;
  if (given.startsWith("j_")) {
    const r = await fetch("/api/v1/join", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code: given }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw serverError(r.status, body);
    token = body.token;
  }
  keepToken(token, shared);
  state.token = token;
  state.pendingJoin = null;
}

/// Signs this browser out: the token, and every document and mark this participant left here
/// (their IndexedDB database, what they last saw), so the next person at the computer finds
/// nothing of theirs.
export async function logOut() {
  const me = state.me;
  try {
    await state.repo?.shutdown?.();
  } catch {
    // The repo is going away either way.
  }
  localStorage.removeItem("toron.token");
  sessionStorage.clear();
  for (const k of Object.keys(localStorage)) if (k.startsWith(`toron.seen.${me}.`)) localStorage.removeItem(k);
  if (me) {
    await new Promise((done) => {
      const req = indexedDB.deleteDatabase(`toron-${me}`);
      req.onsuccess = req.onerror = req.onblocked = () => done();
    });
  }
  location.replace("/");
}

/// The report's links are paths of this server — `/sessions/S/annotations/ID?at=…` and
/// `/sessions/S/docs/eval:C:P#/gaps` — that serve this page: they become the replay of that
/// session at that moment, the annotation or passage highlighted, once the token is known.
export function linkedMoment() {
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
export function serverError(status, body) {
  const key =
    { 400: "errBadRequest", 401: "badToken", 403: "errForbidden", 404: "notFound", 409: "errConflict", 413: "errTooLarge", 429: "errTooMany" }[status] ||
    (status >= 500 ? "errServer" : "errBadRequest");
  const detail = body?.error?.message;
  const e = new Error(detail ? `${t(key)} (${detail})` : t(key));
  e.status = status;
  return e;
}

/// A call of the server's API: a GET, or `{ method, body }` (sent as JSON).
export async function api(path, { method = "GET", body } = {}) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await r.json().catch(() => ({}));
  if (!r.ok) throw serverError(r.status, answer);
  return answer;
}
