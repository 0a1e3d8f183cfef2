// Documents: the automerge-repo client (started when a view first needs a document), its
// handles, the participant's own notes layer, and the server's notices on them.

import { sharedDevice } from "./api.js";
import { lang } from "./i18n.js";
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";
import { Repo, initializeWasm, Automerge as A } from "@automerge/automerge-repo/slim";
import { notice } from "./compose.js";
import { guarded } from "./socket.js";
import { scheduleRender } from "./render.js";
import { $, esc, state } from "./state.js";

// ---- documents -----------------------------------------------------------------------------

/// Automerge (its WASM, ≈ 0.75 MB compressed, the bulk of the client) is fetched and compiled
/// the first time a view needs a document, not before: the join page and the session list
/// show without it. Then the repo connects.
export let repoReady = null;
export function ensureRepo() {
  repoReady ??= (async () => {
    const url = document.querySelector('meta[name="toron-wasm"]')?.content || "/automerge.wasm";
    await initializeWasm(url);
    const proto = location.protocol === "https:" ? "wss" : "ws";
    // Guarded: a send on a socket that is closing is dropped, not thrown (socket.js).
    const Adapter = guarded(BrowserWebSocketClientAdapter);
    state.adapter = new Adapter(`${proto}://${location.host}/sync?token=${encodeURIComponent(state.token)}`);
    // The browser keeps every document and unsent change (IndexedDB, one database per
    // participant on a shared machine): written offline, a note survives a closed tab and
    // goes to the server on the next connection.
    state.repo = new Repo({
      network: [state.adapter],
      // On a shared computer nothing is kept: documents live in the tab only.
      storage: sharedDevice() ? undefined : new IndexedDBStorageAdapter(`toron-${state.me}`),
    });
    return state.repo;
  })();
  repoReady.catch(() => (repoReady = null));
  return repoReady;
}

export async function handle(id) {
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

/// A document this participant may write, started if nobody has written it yet (the server
/// has nothing to send): with a first change, made by `begin`, that every tab makes byte for
/// byte the same (actor from the document's id, time 0), so two tabs or two people starting
/// it at once do not make two rival maps.
export async function openOrStart(id, begin) {
  try {
    return await handle(id);
  } catch (e) {
    if (!/unavailable/.test(String(e?.message))) throw e;
  }
  const repo = await ensureRepo();
  const actor = Array.from(new TextEncoder().encode(id).slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
  const seed = A.change(A.init({ actor }), { time: 0 }, begin);
  repo.import(A.save(seed), { docId: id });
  return handle(id);
}

export async function docOf(id) {
  try {
    return (await handle(id)).doc();
  } catch {
    return null;
  }
}

export function session(key) {
  return state.sessions.find((s) => s.key === key);
}

export function person(s, key) {
  const p = s?.people?.[key];
  if (!p) return esc(key);
  const role = lang() === "en" ? p.role_en : p.role_ko;
  return p.shown ? `${esc(p.shown)} · ${esc(role)}` : esc(role);
}

/// The role I write my notes in, as the server decided it (else my first role here).
export function myRole(s) {
  return s.layers.find((l) => l.participant === state.me)?.role || s.my_roles[0];
}

export function mayAnnotate(s) {
  const mine = s.layers.find((l) => l.participant === state.me && l.writable);
  // The server decides (policy): a layer of mine it lets me write, in this phase.
  return !!mine;
}

/// Who wrote an annotation, as its place says — never as its content claims: the owner of the
/// layer it lives in. A scribe's layer holds others' words: the speaker it names stands when
/// they hold a role in the session, and the scribe is shown as who recorded it.
export function authorship(s, l, a) {
  const owner = l.participant;
  const scribe = (s.people?.[owner]?.roles || []).includes("scribe");
  if (scribe && a.author && a.author !== owner && s.people?.[a.author]) {
    return { author: a.author, recorded_by: owner };
  }
  return { author: owner, recorded_by: null };
}

/// Every annotation of the session (from every layer this participant may read), with the
/// reactions and triage statuses that refer to them.
export async function gather(s) {
  const anns = [];
  const agrees = new Map();
  const mineAgreed = new Set();
  for (const l of s.layers) {
    const d = await docOf(l.doc);
    if (!d) continue;
    for (const [id, a] of Object.entries(d.annotations || {})) {
      anns.push({ ...a, id, layer: l.participant, ...authorship(s, l, a) });
    }
    for (const [target, r] of Object.entries(d.reactions || {})) {
      if (!r) continue;
      agrees.set(target, (agrees.get(target) || 0) + 1);
      if (l.participant === state.me) mineAgreed.add(target);
    }
  }
  let items = {};
  let answering = null;
  if (s.triage) {
    const tri = await docOf(s.triage.doc);
    items = tri?.items || {};
    // The question the chair marked "now answering" (one at a time).
    answering = tri?.answering == null ? null : String(tri.answering);
  }
  for (const a of anns) {
    a.agree = agrees.get(a.id) || 0;
    a.agreed = mineAgreed.has(a.id);
    a.status = items[a.id]?.status || (a.withdrawn ? "withdrawn" : "open");
    // The finding of the report that took it in, if one did.
    a.finding = items[a.id]?.finding || null;
    a.answering = !!answering && a.id === answering && a.status === "open";
  }
  anns.sort((x, y) => String(x.created_at).localeCompare(String(y.created_at)));
  return anns;
}

/** A department as people know it: its Korean (or English) name, by its key. */
export function departmentName(s, key) {
  const d = (s?.departments || []).find((x) => x.key === key);
  return d ? (lang() === "ko" ? d.name_ko : d.name_en || d.name_ko) : key;
}
