// The token (from the join link) and the server's HTTP API.

import { t } from "./i18n.js";
import { $, state } from "./state.js";

// ---- token and API --------------------------------------------------------------------------

export function readToken() {
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

export async function api(path) {
  const r = await fetch(path, { headers: state.token ? { Authorization: `Bearer ${state.token}` } : {} });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw serverError(r.status, body);
  return body;
}
