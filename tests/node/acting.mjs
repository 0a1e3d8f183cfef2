// What the Node drills share: a participant acting through the official automerge-repo
// JavaScript client (a repo, as a page is, with the page's socket guard: web/src/socket.js),
// each change remembered until the server's log holds it — acknowledged, as the web client's
// "서버에 저장됨" is.

import { decodeHeads, Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { guarded } from "../../web/src/socket.js";
import { withTimeout } from "./waiting.mjs";

/// The adapter as the hall's page uses it: without the guard, a socket closing mid-sync (a
/// busy machine, a restart) leaves the repo's handle on an outdated document for good.
const Adapter = guarded(WebSocketClientAdapter);

export const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/// A seeded random source (a run can be repeated): `random()` in [0, 1), `pick(list)`.
export function seeded(seed) {
  let s = seed;
  const random = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return { random, pick: (xs) => xs[Math.floor(random() * xs.length)] };
}

export const nowKst = () => new Date(Date.now() + 9 * 3600 * 1000).toISOString().slice(0, 19) + "+09:00";

/// A GET of the server's API (`url`: http://…) as the holder of `token`.
export async function getAs(url, path, token) {
  const r = await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

/// A session's whole timeline, page by page (a page holds at most 5,000 entries).
export async function wholeTimeline(url, session, token) {
  const out = [];
  let after = null;
  for (let page = 0; page < 1000; page++) {
    const q = `limit=5000${after ? `&after=${encodeURIComponent(after)}` : ""}`;
    const r = await getAs(url, `/api/v1/sessions/${session}/timeline?${q}`, token);
    out.push(...r.entries);
    if (!r.next_after) break;
    after = r.next_after;
  }
  return out;
}

/// One participant: a repo (a page), its handles, and its acts waiting to be acknowledged.
export class Person {
  /// `p`: {participant, token, …}; `url`: the server's http:// address.
  constructor(p, n, url) {
    Object.assign(this, p);
    this.url = url;
    this.n = n;
    this.generation = 0;
    this.pending = [];
    this.acked = [];
    /// What the server refused of this person's changes, as its notices said (kind, reason).
    this.refusals = [];
    this.open();
  }

  open() {
    this.generation += 1;
    const url = `${this.url.replace(/^http/, "ws")}/sync?token=${encodeURIComponent(this.token)}`;
    // Reconnecting as the page does (the adapter's 5 s): a shorter interval abandons a join
    // the server has not answered yet — on a busy machine, every time, for good.
    const adapter = new Adapter(url);
    this.repo = new Repo({ network: [adapter], peerId: `drill-${this.participant}-${this.n}-${this.generation}` });
    this.handles = new Map();
    // How often this page's socket went away (named when an act is lost).
    this.drops = this.drops || 0;
    adapter.on("peer-disconnected", () => (this.drops += 1));
  }

  /// A page reload: the old page is gone (what it had not sent with it), a new one starts.
  async reload() {
    await this.flush(15_000);
    this.repo.shutdown();
    this.open();
  }

  /// A document's handle. A page whose socket is not up yet (a busy machine, the server
  /// restarting) is told "unavailable" at first: it waits, as the web client does, for the
  /// document to arrive once the socket is; after 30 s it is forgotten, and asked for again at
  /// the next act.
  async handle(doc) {
    if (!this.handles.has(doc)) {
      const opening = this.repo.find(`automerge:${doc}`, { allowableStates: ["ready", "unavailable"] }).then(async (h) => {
        await h.whenReady(["ready"]);
        return h;
      });
      const found = withTimeout(opening, `${this.participant} opens ${doc}`, 30_000);
      found.catch(() => this.handles.delete(doc));
      // A refusal is the server's notice on the document: kept, to be named if an act is lost.
      found.then(
        (h) =>
          h.on("ephemeral-message", (e) => {
            const m = e?.message;
            if (m?.toron === "refused") this.refusals.push({ doc, kind: String(m.kind), reason: String(m.reason) });
          }),
        () => {},
      );
      this.handles.set(doc, found);
    }
    return this.handles.get(doc);
  }

  /// Makes a change and remembers it until the server's log holds it.
  async act(doc, what, change) {
    const h = await this.handle(doc);
    h.change(change);
    // The change hashes the server's log lists (a handle gives them encoded for URLs).
    this.pending.push({ doc, heads: decodeHeads(h.heads()), ...what });
  }

  /// Asks the server's log which pending acts it holds now.
  async check() {
    const docs = [...new Set(this.pending.map((a) => a.doc))];
    for (const doc of docs) {
      const hashes = new Set();
      try {
        // Page by page: a busy document has more than a page of records.
        let after = 0;
        for (let page = 0; page < 100; page++) {
          const ev = await getAs(this.url, `/api/v1/documents/${doc}/events?limit=1000&after=${after}`, this.token);
          for (const e of ev.events) hashes.add(e.hash);
          if (ev.next_after == null) break;
          after = ev.next_after;
        }
      } catch {
        continue; // the server is down: later
      }
      const still = [];
      for (const a of this.pending) {
        if (a.doc === doc && a.heads.every((x) => hashes.has(x))) this.acked.push(a);
        else still.push(a);
      }
      this.pending = still;
    }
  }

  async flush(ms) {
    const end = Date.now() + ms;
    while (this.pending.length && Date.now() < end) {
      await this.check();
      if (this.pending.length) await pause(300);
    }
  }
}

