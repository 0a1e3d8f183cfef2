// What the Node drills share: a participant acting through the official automerge-repo
// JavaScript client (a repo, as a page is), each change remembered until the server's log
// holds it — acknowledged, as the web client's "서버에 저장됨" is.

import { decodeHeads, Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { withTimeout } from "./waiting.mjs";

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
    this.open();
  }

  open() {
    this.generation += 1;
    const url = `${this.url.replace(/^http/, "ws")}/sync?token=${encodeURIComponent(this.token)}`;
    this.repo = new Repo({ network: [new WebSocketClientAdapter(url, 500)], peerId: `drill-${this.participant}-${this.n}-${this.generation}` });
    this.handles = new Map();
  }

  /// A page reload: the old page is gone (what it had not sent with it), a new one starts.
  async reload() {
    await this.flush(15_000);
    this.repo.shutdown();
    this.open();
  }

  /// A document's handle; while the server is down a page cannot open what it has not opened
  /// yet ("unavailable"): forgotten, and asked for again at the next act.
  async handle(doc) {
    if (!this.handles.has(doc)) {
      const found = withTimeout(this.repo.find(`automerge:${doc}`), `${this.participant} opens ${doc}`, 30_000);
      found.catch(() => this.handles.delete(doc));
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
      let hashes;
      try {
        hashes = new Set((await getAs(this.url, `/api/v1/documents/${doc}/events?limit=1000`, this.token)).events.map((e) => e.hash));
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

