// Shared by every part of the client: the state it renders from, and two DOM helpers.
import { values } from "./vocab.js";

export const $ = (sel) => document.querySelector(sel);
export const esc = (s) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
export const SECTIONS = values("Section");
/// The kinds a participant writes from the hall's composer (answers, replies and reference
/// scores are written from their own places).
export const KINDS = values("AnnotationKind").filter((k) => !["answer", "reply", "score"].includes(k));

export const state = {
  token: null,
  /// An invite link's code (or token), taken out of the address, until the join form is sent.
  pendingJoin: null,
  me: null,
  /// The address participants reach the server by (its `--public-url`), if it says one.
  publicUrl: null,
  sessions: [],
  repo: null,
  adapter: null,
  handles: new Map(), // doc id → DocHandle
  awaited: new Set(), // doc ids not available yet, watched for their first content
  presence: {}, // session → participant keys here now (pushed by the server)
  shownAs: {}, // participant → how the server said to show them (for those not in a session's people)
  focus: null, // annotation id highlighted
  saving: null, // { doc, heads, status }
  pickedItem: undefined, // the agenda item the chair chose in the bar and has not set yet
};
window.toron = state; // for the end-to-end tests and the curious
