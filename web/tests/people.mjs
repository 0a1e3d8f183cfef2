// What the browser tests share: a person joining with an invite link, selecting a passage
// and annotating it with the page's own controls, an annotation's card. Every wait is bounded.

import assert from "node:assert/strict";

export const LIMIT = 10_000;

/// Debian's Chromium, headless, with nothing of its own on the network.
export function launch(chromium) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/// `person(token, viewport)`: a new browser context of `browser` joined at `url` with the
/// token, its page errors (and any security-policy complaint) pushed to `errors`.
export function people(browser, url, errors) {
  return async function person(token, viewport = { width: 1280, height: 900 }) {
    const ctx = await browser.newContext({ viewport, locale: "ko-KR" });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    // What the page told its person in a dialog (an error it could not show otherwise).
    page.on("dialog", (d) => {
      console.log(`dialog shown: ${d.message()}`);
      d.dismiss().catch(() => {});
    });
    // The page's security policy must not block anything the client does (WASM, sync, report).
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) errors.push(m.text());
    });
    const answer = await joinAt(page, url, token);
    assert.match(answer.headers()["content-security-policy"] || "", /frame-ancestors 'none'/, "the page may not be framed by others");
    return { ctx, page };
  };
}

/// Opens an invite link as a person does: the page takes the code (or token) out of the
/// address at once and asks only which device this is; they press 참여하기.
export async function joinAt(page, url, token, shared = false) {
  const answer = await page.goto(`${url}/#/join/${token}`);
  await page.waitForSelector("form#join button[type=submit]", { timeout: LIMIT });
  assert.ok(!page.url().includes(token), "the link's code left the address bar before anything was asked");
  if (shared) await page.check("form#join input[name=shared]");
  await page.click("form#join button[type=submit]");
  await page.waitForSelector(".cards, h1:not(:first-child), #logout:not([hidden]), form#join [role=alert]", { timeout: LIMIT });
  return answer;
}

/// Selects `text` inside the section at `path` the way a person does with the mouse or the
/// keyboard (a DOM selection), then uses the page's own controls to annotate it.
export async function selectAndAnnotate(page, path, text, kind, body, departments) {
  await page.evaluate(
    ([path, text]) => {
      const el = document.querySelector(`.section-text[data-path='${path}']`);
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      let node;
      while ((node = walker.nextNode())) {
        const i = node.data.indexOf(text);
        if (i >= 0) {
          const r = document.createRange();
          r.setStart(node, i);
          r.setEnd(node, i + text.length);
          const sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(r);
          return;
        }
      }
      throw new Error(`"${text}" is not in ${path}`);
    },
    [path, text],
  );
  await page.click("#annotate-selection");
  await page.waitForSelector("form.annotate", { timeout: LIMIT });
  await page.selectOption("#kind", kind);
  await page.fill("#body", body);
  // The series' departments are offered by name: the person ticks the one(s) concerned.
  for (const d of departments || []) await page.getByLabel(d, { exact: true }).check();
  const submitted = Date.now();
  await page.click("form.annotate button[type=submit]");
  return submitted;
}

export function card(page, body) {
  return page.locator("article.ann", { hasText: body });
}

