// The invite sheet (organizers): join links with QR codes, printed or downloaded.

import { t, lang } from "./i18n.js";
import { api, serverError } from "./api.js";
import { render } from "./render.js";
import { $, esc, state } from "./state.js";
import { tabs } from "./views.js";

// ---- the invite sheet (organizers) ---------------------------------------------------------

/// The links made for a session in this page (tokens are shown once: they are not kept).
export const inviteSheets = {};

/// Whether `host` is this computer: links to it open on no one else's phone.
const isLoopback = (host) => /^(localhost|127(\.\d+){3}|\[::1\])$/.test(host) || host.endsWith(".localhost");

export function viewInvites(s) {
  const head = `<h1>${esc(s.title || s.key)}</h1>${tabs(s, "invites")}`;
  const sheet = inviteSheets[s.key];
  // Made from a page opened on the server itself, every link and QR code would point at it.
  const local = sheet ? sheet.loopback : !state.publicUrl && isLoopback(location.hostname);
  const warn = local
    ? `<p class="error no-print" role="alert" id="invites-loopback">${esc(t("invitesLoopback"))} <code>${esc(sheet?.base || location.origin)}</code></p>`
    : "";
  const make = `${warn}<p class="no-print">${esc(t("invitesHelp"))}</p>
    <p class="no-print"><button type="button" class="primary" data-act="invites">${esc(t("invitesMake"))}</button>
    <button type="button" data-act="invites-reissue">${esc(t("invitesReissue"))}</button></p>`;
  if (!sheet) return head + make;
  const cards = sheet.invites
    .map(
      (i) => `<article class="invite${i.link ? "" : " kept"}" data-participant="${esc(i.participant)}">
        ${i.qr_svg ? `<div class="qr" role="img" aria-label="${esc(`${t("qrOf")} ${i.name}`)}">${i.qr_svg}</div>` : ""}
        <div><strong>${esc(i.name)}</strong> <span class="kind">${esc(lang() === "en" ? i.role_en : i.role_ko)}</span>
        <div class="muted">${esc(i.affiliation || "")}</div>
        ${i.link ? `<code class="link">${esc(i.link)}</code>` : `<p class="muted">${esc(t(i.note === "not_yours" ? "inviteNotYours" : "inviteKept"))}</p>`}</div>
      </article>`,
    )
    .join("");
  return `${head}${make}
    <p class="no-print" role="status">${esc(t("invitesDone"))}: ${sheet.issued} · ${esc(t("inviteKept"))}: ${sheet.kept}
      <button type="button" data-act="print">${esc(t("printSheet"))}</button>
      <button type="button" data-act="invites-csv">${esc(t("downloadCsv"))}</button></p>
    <div class="invite-sheet">${cards}</div>`;
}

export async function makeInvites(s, reissue) {
  if (reissue && !confirm(t("invitesReissueConfirm"))) return;
  const r = await fetch(`/api/v1/sessions/${encodeURIComponent(s.key)}/invites`, {
    method: "POST",
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ base: location.origin, reissue }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw serverError(r.status, body);
  inviteSheets[s.key] = body;
  render();
}

/// The sheet as CSV for a spreadsheet or a mail merge (a byte-order mark, so Excel reads Korean).
export function downloadInvites(s) {
  const sheet = inviteSheets[s.key];
  if (!sheet) return;
  // A cell that begins with = + - @ or a tab or carriage return would run as a formula in a
  // spreadsheet (OWASP "CSV injection"): an apostrophe in front keeps it text.
  const cell = (v) => {
    const s = String(v ?? "");
    return `"${(/^[=+\-@\t\r]/.test(s) ? `'${s}` : s).replace(/"/g, '""')}"`;
  };
  const rows = [["participant", "name", "affiliation", "role", "role_ko", "link"]].concat(
    sheet.invites.map((i) => [i.participant, i.name, i.affiliation, i.role, i.role_ko, i.link || ""]),
  );
  const blob = new Blob(["\ufeff" + rows.map((r) => r.map(cell).join(",")).join("\r\n")], { type: "text/csv;charset=utf-8" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `invites-${s.key}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
