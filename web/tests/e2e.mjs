// End-to-end test of the web client in headless Chromium (playwright-core driving Debian's
// chromium). Run by tests/tests/suite/web_e2e.rs against a real server with the example bundle
// imported and session S-LIB live. Every wait is bounded.
//
// Env: TORON_URL, TOKEN_ACTIVIST (P-KIM), TOKEN_EVALUATOR (P-PARK), TOKEN_CHAIR (P-MOON),
// TOKEN_OBSERVER (P-OBS), TOKEN_ORGANIZER, TOKEN_PLANNER (P-HAN, organizer), TOKEN_DEPT (P-LEE,
// department reviewer of DEP-CULT), SCREENSHOTS (a folder; optional), CHROMIUM (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { card, joinAt as joinAtUrl, launch, LIMIT, people, selectAndAnnotate } from "./people.mjs";

const URL = process.env.TORON_URL;
const shots = process.env.SCREENSHOTS;
if (shots) mkdirSync(shots, { recursive: true });
const CASE = `${URL}/#/s/S-LIB/c/C-LIB-HB`;

const browser = await launch(chromium);
const errors = [];

const person = people(browser, URL, errors);
const joinAt = (page, token, shared = false) => joinAtUrl(page, URL, token, shared);

/// axe-core's serious and critical violations on the page as it is now (run through the
/// browser's debugging protocol, which the page's script policy does not govern).
const AXE = readFileSync(new globalThis.URL("../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
async function accessibilityProblems(page) {
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help, target: v.nodes[0]?.target }));
  });
  const rules = await page.evaluate(() => window.axe.getRules(["wcag2a", "wcag2aa"]).length);
  console.log(`axe-core on ${page.url()}: ${rules} rules, ${found.length} violations (${found.map((v) => `${v.id}:${v.impact}`).join(", ") || "none"})`);
  return found.filter((v) => v.impact === "serious" || v.impact === "critical");
}

async function openCase(page) {
  await page.goto(CASE);
  await page.waitForSelector(".section-text[data-path='sections.results']", { timeout: LIMIT });
}

try {
  const activist = await person(process.env.TOKEN_ACTIVIST);
  const evaluator = await person(process.env.TOKEN_EVALUATOR);
  const chair = await person(process.env.TOKEN_CHAIR);
  const observer = await person(process.env.TOKEN_OBSERVER);
  // The session list shows before Automerge is needed; it opens no sync connection.
  assert.equal(await activist.page.locator("#net").innerText(), "", "no connection state before a document is open");
  if (shots) await activist.page.screenshot({ path: join(shots, "web-sessions-desktop.png") });
  await openCase(activist.page);
  await activist.page.locator("#net.on").waitFor({ timeout: LIMIT });
  // The case's sections as the district wrote them: any name, in the bundle's order (issue 30).
  const heads = await activist.page.locator("section h2[id^='sec-']").allTextContents();
  assert.deepEqual(heads, ["배경", "추진 방법", "성과", "과제", "예산"], `the case's sections in order: ${heads}`);
  assert.ok((await activist.page.locator(".section-text[data-path='sections.예산']").innerText()).includes("구비 60%"));
  await openCase(evaluator.page);

  // 1. The activist adds a gap; the evaluator sees it within a second, with author and role.
  const gap = "통합 회원이 늘어도 저녁 이용은 그대로입니다";
  const t0 = await selectAndAnnotate(activist.page, "sections.results", "상호대차 건수는 월 1,900건", "gap", gap, ["문화도서관과"]);
  await card(evaluator.page, gap).waitFor({ timeout: 1000 });
  const seenAfter = Date.now() - t0;
  assert.ok(seenAfter <= 1000, `seen after ${seenAfter} ms`);
  const meta = await card(evaluator.page, gap).locator(".meta").first().innerText();
  assert.match(meta, /한빛 책읽는 주민모임/);
  assert.match(meta, /활동가/);
  // Routed to the department by its name, as people call it (stored by its key).
  assert.match(await card(evaluator.page, gap).locator(".meta").nth(1).innerText(), /문화도서관과/);
  assert.equal(await card(evaluator.page, gap).locator(".kind").first().innerText(), "부족한 점");
  // …highlighted in the text for both, and safe on the server for the author.
  await evaluator.page.locator(".section-text[data-path='sections.results'] mark", { hasText: "1,900건" }).waitFor({ timeout: LIMIT });
  await activist.page.locator("#saving.saved").waitFor({ timeout: LIMIT });
  console.log(`gap seen by the evaluator after ${seenAfter} ms`);

  // 1b. Highlight ↔ card: a click on the highlighted passage marks the gap's card and brings
  // it into view; a click on a card marks its passage (issue 17).
  await activist.page.locator(".section-text[data-path='sections.results'] mark", { hasText: "1,900건" }).click();
  await activist.page.locator("article.ann.focus", { hasText: gap }).waitFor({ timeout: LIMIT });
  assert.ok(await activist.page.locator("article.ann.focus", { hasText: gap }).isVisible());
  await activist.page.locator("article.ann", { hasText: "운영자 교육은 누가 맡습니까" }).locator(".body").click();
  await activist.page.locator("mark.focus", { hasText: "작은도서관" }).waitFor({ timeout: LIMIT });

  // 2. A question; the chair marks it answered in the queue; the asker sees the status.
  const question = "저녁 운영을 위한 인력 계획이 있습니까?";
  await selectAndAnnotate(activist.page, "sections.challenges", "예산이 해마다 공모사업에 좌우된다", "question", question);
  await card(activist.page, question).waitFor({ timeout: LIMIT });
  await chair.page.goto(`${URL}/#/s/S-LIB/queue`);
  const inQueue = card(chair.page, question);
  await inQueue.waitFor({ timeout: LIMIT });
  await inQueue.locator("button[data-status=answered]").click();
  await card(activist.page, question).locator(".status", { hasText: "답변됨" }).waitFor({ timeout: LIMIT });
  console.log("the asker sees the chair's answered status");
  // The queue runs Q&A: the answered question moves apart, below the open ones, its status
  // marked; each card says which case it asks about.
  const handledCard = chair.page.locator("#queue-handled article.ann", { hasText: question });
  await handledCard.waitFor({ timeout: LIMIT });
  assert.equal(await chair.page.locator("#queue-open article.ann", { hasText: question }).count(), 0, "not among the open");
  assert.equal(await handledCard.locator("button[aria-pressed=true]").innerText(), "답변됨");
  assert.match(await handledCard.locator(".case-of").innerText(), /작은도서관 통합 회원제와 상호대차/);
  const firstOpen = chair.page.locator("#queue-open article.ann").first();
  if (await firstOpen.count()) assert.equal(await firstOpen.getAttribute("data-status"), "open");
  if (shots) await chair.page.screenshot({ path: join(shots, "web-queue-desktop.png") });

  // 3. The evaluator agrees and replies; the activist sees both.
  // The button says what it agrees with (its accessible name) and that it is pressed.
  await card(evaluator.page, gap).getByRole("button", { name: `공감: ${gap.slice(0, 10)}`, exact: false }).click();
  await card(activist.page, gap).locator(".meta", { hasText: "공감 1" }).waitFor({ timeout: LIMIT });
  await card(evaluator.page, gap).locator("button[data-act=agree][aria-pressed=true]").waitFor({ timeout: LIMIT });
  await card(evaluator.page, gap).locator("button[data-act=reply]").click();
  await evaluator.page.fill("form.reply-form textarea", "동의합니다. 순회 사서가 필요합니다.");
  await evaluator.page.click("form.reply-form button[type=submit]");
  await card(activist.page, gap).locator(".reply", { hasText: "순회 사서가 필요합니다" }).waitFor({ timeout: LIMIT });
  if (shots) {
    await activist.page.evaluate(() => window.scrollTo(0, 0));
    await activist.page.screenshot({ path: join(shots, "web-case-desktop.png") });
  }

  // 3b. The evaluation forms: the template's Korean names and weights, every text, the
  // annotations made on a form (L-08 on 정유나's) shown with the case's; the evaluator scores
  // and submits her own form from the page (issue 17).
  const jung = evaluator.page.locator("details.evaluation", { hasText: "정유나" });
  await jung.locator(".crit", { hasText: "지속가능성" }).first().waitFor({ timeout: LIMIT });
  assert.match(await jung.innerText(), /가중치 15/);
  assert.ok((await jung.locator("mark").count()) >= 1, "the passage annotated on the form is highlighted");
  await card(evaluator.page, "동의합니다. 조례 근거가 필요합니다").waitFor({ timeout: LIMIT });
  // Her form was submitted before the session (the bundle): read as submitted, with each
  // score's meaning; she reopens it (openly: the timeline tells it), changes a score and the
  // overall view, saves a draft, then submits again.
  const parkForm = evaluator.page.locator("details.evaluation", { hasText: "박민재" }).first();
  assert.match(await parkForm.innerText(), /제출됨/);
  await parkForm.getByRole("button", { name: "다시 열기" }).click();
  const mineForm = evaluator.page.locator("form.eval-form");
  await mineForm.waitFor({ timeout: LIMIT });
  assert.match(await mineForm.innerText(), /매우 우수/, "each score says what it means");
  await mineForm.locator("input[name=score-effectiveness][value='5']").check();
  await mineForm.locator("textarea[name=overall]").fill("방향은 옳으나 제도화가 필요하다. 성과 지표가 좋아졌다.");
  await mineForm.getByRole("button", { name: "임시 저장" }).click();
  await mineForm.getByRole("button", { name: "평가서 제출" }).click();
  const evalDoc = await evaluator.page.evaluate(() => window.toron.sessions.find((x) => x.key === "S-LIB").evaluations.find((e) => e.case === "C-LIB-HB" && e.evaluator === "P-PARK").doc);
  const auth0 = { headers: { Authorization: `Bearer ${process.env.TOKEN_ORGANIZER}` } };
  let stored = null;
  for (let i = 0; i < 50 && stored?.criteria?.effectiveness?.score !== 5; i++) {
    await evaluator.page.waitForTimeout(100);
    stored = (await (await fetch(`${URL}/api/v1/documents/${evalDoc}/state`, auth0)).json()).state;
  }
  assert.equal(stored?.criteria?.effectiveness?.score, 5, "the new score is on the server");
  assert.equal(String(stored.status), "submitted");
  assert.equal(String(stored.overall), "방향은 옳으나 제도화가 필요하다. 성과 지표가 좋아졌다.", "the overall view as typed");
  const reopened = await (await fetch(`${URL}/api/v1/sessions/S-LIB/timeline?kind=evaluation.reopened&participant=P-PARK`, auth0)).json();
  assert.ok(reopened.entries.length >= 1, "the timeline tells the reopening");
  const submittedEntries = await (await fetch(`${URL}/api/v1/sessions/S-LIB/timeline?kind=evaluation.submitted&participant=P-PARK`, auth0)).json();
  assert.ok(submittedEntries.entries.length >= 1, "the timeline tells the submission");
  console.log("the evaluation forms are shown; the evaluator submitted hers from the page");

  // 3c. From the keyboard alone: Tab to a paragraph, Enter, pick its second sentence with the
  // arrow key, write, submit (issue 17).
  await evaluator.page.goto(CASE);
  await evaluator.page.reload();
  const results = evaluator.page.locator(".section-text[data-path='sections.results']");
  await results.waitFor({ timeout: LIMIT });
  await results.focus();
  await evaluator.page.keyboard.press("Enter");
  await evaluator.page.locator("#sentence:focus").waitFor({ timeout: LIMIT });
  await evaluator.page.keyboard.press("ArrowDown");
  await evaluator.page.keyboard.press("Tab");
  await evaluator.page.keyboard.press("Tab");
  const typed = "키보드만으로 단 의견입니다";
  await evaluator.page.keyboard.type(typed);
  await evaluator.page.locator("form.annotate button[type=submit]").focus();
  await evaluator.page.keyboard.press("Enter");
  const byKeys = card(activist.page, typed);
  await byKeys.waitFor({ timeout: LIMIT });
  assert.equal(await byKeys.locator(".quote").innerText(), "다만 평일 저녁 이용은 여전히 적다.");
  console.log("a keyboard-only user annotated the second sentence of a paragraph");

  // 3d. The list for a hall: filtered by kind and by department, ordered by 공감; in the queue,
  // by case.
  await activist.page.selectOption("#f-kind", "gap");
  await card(activist.page, typed).waitFor({ state: "detached", timeout: LIMIT });
  const kindsShown = await activist.page.locator("aside article.ann > div:first-child > .kind").allInnerTexts();
  assert.ok(kindsShown.length >= 1 && kindsShown.every((k) => k === "부족한 점"), `only gaps: ${kindsShown}`);
  await activist.page.selectOption("#f-kind", "");
  await activist.page.selectOption("#f-dept", "DEP-CULT");
  assert.equal(await card(activist.page, gap).count(), 1, "the gap routed to 문화도서관과 stays");
  assert.equal(await card(activist.page, typed).count(), 0, "a comment for no department goes");
  await activist.page.selectOption("#f-dept", "");
  await activist.page.selectOption("#f-sort", "agree");
  const agreeCounts = (await activist.page.locator("aside article.ann").allInnerTexts()).map((x) => Number((x.match(/공감 (\d+)/) || [0, 0])[1]));
  assert.deepEqual(agreeCounts, [...agreeCounts].sort((a, b) => b - a), "the most agreed first");
  assert.ok(agreeCounts[0] >= 1, `${agreeCounts}`);
  await activist.page.selectOption("#f-sort", "new");
  await chair.page.selectOption("#f-case", "C-LIB-NR");
  await chair.page.locator("#queue-handled article.ann", { hasText: question }).waitFor({ state: "detached", timeout: LIMIT });
  await chair.page.selectOption("#f-case", "");
  console.log("the list filters by kind, department and case, and sorts by 공감");

  // 3e. The agenda: the chair sums up on an agenda item; the activist, back from elsewhere,
  // finds it on the session's page, marked new since she looked.
  await activist.page.goto(`${URL}/#/`);
  await activist.page.locator("a.card").first().waitFor({ timeout: LIMIT });
  await chair.page.goto(`${URL}/#/s/S-LIB`);
  const item = chair.page.locator(".agenda-item[data-item='AG-LIB-3']");
  await item.locator("summary").click();
  await item.locator("select[name=kind]").selectOption("lesson");
  const summing = "종합정리: 순회 사서 배치를 다음 예산에 반영합니다";
  await item.locator("textarea[name=body]").fill(summing);
  await item.locator("button[type=submit]").click();
  await activist.page.goto(`${URL}/#/s/S-LIB`);
  const onItem = activist.page.locator(".agenda-item[data-item='AG-LIB-3'] article.ann", { hasText: summing });
  await onItem.waitFor({ timeout: LIMIT });
  assert.equal(await onItem.locator(".new-badge").count(), 1, "marked new for the activist");
  assert.equal(await onItem.locator(".kind").first().innerText(), "배울 점");
  await chair.page.locator(".agenda-item[data-item='AG-LIB-3'] article.ann", { hasText: summing }).waitFor({ timeout: LIMIT });
  assert.equal(await chair.page.locator(".agenda-item article.ann .new-badge").count(), 0, "not new to its author");
  await openCase(activist.page);
  console.log("an agenda item's annotation is shown, marked new for those who had not seen it");

  // 4. The observer has no way to annotate, and a forged change from the page is refused.
  await openCase(observer.page);
  assert.equal(await observer.page.locator("#annotate-selection").count(), 0);
  assert.equal(await observer.page.locator("button[data-act=agree], button[data-act=reply]").count(), 0);
  const forged = await observer.page.evaluate(async () => {
    const s = window.toron.sessions.find((x) => x.key === "S-LIB");
    const layer = s.layers.find((l) => l.participant === "P-KIM");
    const h = await window.toron.repo.find(`automerge:${layer.doc}`);
    h.change((d) => {
      d.annotations["forged-1"] = { kind: "comment", body: "위조된 주석", author: "P-KIM" };
    });
    return layer.doc;
  });
  // The server refuses it: it never reaches the others, and the log does not have it.
  await activist.page.waitForTimeout(1500);
  assert.equal(await card(activist.page, "위조된 주석").count(), 0);
  const events = await activist.page.evaluate(async (doc) => {
    const r = await fetch(`/api/v1/documents/${doc}/events?limit=1000`, {
      headers: { Authorization: `Bearer ${localStorage.getItem("toron.token")}` },
    });
    return (await r.json()).events.map((e) => e.participant);
  }, forged);
  assert.ok(!events.includes("P-OBS"), "no change by the observer in the log");
  console.log("the observer cannot annotate; the forged change was refused");

  // 4b. Identity is never content (issue 29): the activist's page writes, through the official
  // client, a question that claims the chair asked it (author, role, an id of its own). The
  // chair's queue and the evaluator's list show it as the activist's, under its map key.
  const claimed = "좌장이 한 말처럼 꾸민 질의";
  const claimedKey = "f0e1d2c3-0000-4000-8000-00000000a001";
  await activist.page.evaluate(
    async ([body, key]) => {
      const s = window.toron.sessions.find((x) => x.key === "S-LIB");
      const layer = s.layers.find((l) => l.participant === "P-KIM");
      const h = await window.toron.repo.find(`automerge:${layer.doc}`);
      h.change((d) => {
        d.annotations[key] = {
          session: "S-LIB", kind: "question", body, author: "P-MOON", author_role: "facilitator",
          id: "an-id-it-claims", created_at: new Date().toISOString(), subject_cases: ["C-LIB-HB"],
        };
      });
    },
    [claimed, claimedKey],
  );
  await chair.page.goto(`${URL}/#/s/S-LIB/queue`);
  const claimedCard = chair.page.locator("article.ann", { hasText: claimed });
  await claimedCard.waitFor({ timeout: LIMIT });
  const claimedMeta = await claimedCard.locator(".meta").first().innerText();
  assert.ok(!claimedMeta.includes("문서윤") && !claimedMeta.includes("좌장"), `shown as the chair's: ${claimedMeta}`);
  assert.ok(claimedMeta.includes("한빛 책읽는 주민모임"), `shown as the activist's: ${claimedMeta}`);
  assert.equal(await claimedCard.getAttribute("data-ann"), claimedKey, "its id is its key");
  console.log("a note is shown as its layer's owner's, whatever it claims");

  // 5. Presence: who is here, by role — pushed by the server as people come and go, not
  // polled: the observer closes her page and is gone from the activist's list.
  const presenceAsked = [];
  activist.page.on("request", (r) => {
    if (r.url().includes("/presence")) presenceAsked.push(r.url());
  });
  await activist.page.goto(`${URL}/#/s/S-LIB/people`);
  await activist.page.locator(".presence li", { hasText: "평가자" }).first().waitFor({ timeout: LIMIT });
  const observerHere = activist.page.locator(".presence li", { hasText: "방청" });
  await observerHere.waitFor({ timeout: LIMIT });
  await observer.ctx.close();
  await observerHere.waitFor({ state: "detached", timeout: LIMIT });
  await activist.page.waitForTimeout(3500); // a poller would have asked again by now
  assert.ok(presenceAsked.length <= 1, `presence is pushed, not polled: ${presenceAsked.length} requests`);
  console.log("presence: the observer's leaving reached the list without polling");

  // 6. Replay: at the end everything is there; at an earlier moment the later ones are not.
  await activist.page.goto(`${URL}/#/s/S-LIB/replay`);
  await activist.page.waitForSelector("#slider", { timeout: LIMIT });
  await activist.page.locator("#replay-count").waitFor({ timeout: LIMIT });
  const all = Number(await activist.page.locator("#replay-count strong").innerText());
  assert.ok((await activist.page.locator("li[data-ann]", { hasText: gap }).count()) === 1, "the gap at the end");
  assert.equal(await activist.page.locator("#replay-agenda li", { hasText: summing }).count(), 1, "the agenda's annotations are replayed");
  if (shots) await activist.page.screenshot({ path: join(shots, "web-replay-desktop.png") });
  // The slider steps act by act: to 16:21 on the day of the session (KST), after the first
  // remarks, long before today's.
  const toMoment = (iso) =>
    activist.page.evaluate((iso) => {
      const v = Date.parse(iso);
      const ts = window.toron.replay.times;
      let i = 0;
      while (i + 1 < ts.length && ts[i + 1] <= v) i++;
      const s = document.querySelector("#slider");
      s.value = String(i);
      s.dispatchEvent(new Event("input", { bubbles: true }));
      return v;
    }, iso);
  const earlier = await toMoment("2012-11-07T16:21:00+09:00");
  await activist.page.waitForFunction(
    (all) => Number(document.querySelector("#replay-count strong")?.innerText) < all,
    all,
    { timeout: LIMIT },
  );
  const then = Number(await activist.page.locator("#replay-count strong").innerText());
  assert.equal(await activist.page.locator("li[data-ann]", { hasText: gap }).count(), 0, "the later gap is hidden");
  assert.ok(then >= 1 && then < all, `${then} of ${all} at ${earlier}`);
  // The moment is in the address: a reload (or a copied link) opens the same moment.
  assert.match(decodeURIComponent(activist.page.url()), /[?&]at=2012-11-07T16:\d\d:00\+09:00/, "the moment in the URL");
  await activist.page.reload();
  await activist.page.locator("#replay-count").waitFor({ timeout: LIMIT });
  assert.equal(Number(await activist.page.locator("#replay-count strong").innerText()), then, "the same moment after a reload");
  assert.equal(await activist.page.locator("#replay-agenda li", { hasText: summing }).count(), 0, "the summing-up came later");
  console.log(`replay: ${all} annotations at the end, ${then} at 16:21`);
  // Both cases are there; played at ×16 from the opening, the other case's lesson (16:30)
  // appears by itself, and the queue shows each question's status as it was.
  assert.equal(await activist.page.locator("section.replay-case").count(), 2, "every case of the session");
  await toMoment("2012-11-07T16:00:00+09:00");
  await activist.page.locator("#when", { hasText: "2012-11-07 16:" }).waitFor({ timeout: LIMIT });
  const lesson = activist.page.locator("section.replay-case[data-case='C-LIB-NR'] li[data-ann]", { hasText: "공동 구입" });
  assert.equal(await lesson.count(), 0, "not yet at the opening");
  await activist.page.getByRole("button", { name: "▶ ×16" }).click();
  await lesson.waitFor({ timeout: 30_000 });
  await activist.page.getByRole("button", { name: /멈춤/ }).click();
  assert.ok(await activist.page.locator("#replay-queue li").count() >= 1, "the queue at that moment");
  console.log(`replay played to ${await activist.page.locator("#when").innerText()}: the other case's lesson appeared`);

  // 7. A phone-sized screen, and the English switch.
  const phone = await person(process.env.TOKEN_ACTIVIST, { width: 390, height: 844 });
  await openCase(phone.page);
  await phone.page.locator("#net.on").waitFor({ timeout: LIMIT });
  const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 400, `no sideways scrolling on a phone (${width}px)`);
  if (shots) await phone.page.screenshot({ path: join(shots, "web-case-phone.png") });
  await phone.page.click("#lang");
  await phone.page.locator("h2", { hasText: "Annotations" }).waitFor({ timeout: LIMIT });
  await phone.page.click("#lang");

  // 8. The organizer reads the report: it is shown, and no request carries the token in its URL.
  const organizer = await person(process.env.TOKEN_ORGANIZER);
  const urls = [];
  organizer.page.on("request", (r) => urls.push(r.url()));
  await organizer.page.goto(`${URL}/#/report/HB-BENCH-2012`);
  const frame = organizer.page.frameLocator("iframe.report");
  await frame.locator("h1").first().waitFor({ timeout: LIMIT });
  assert.match(await frame.locator("h1").first().innerText(), /결과보고서/);
  const leaked = urls.filter((u) => u.includes("token=") && !u.startsWith("ws"));
  assert.deepEqual(leaked, [], "no HTTP request carries the token in its URL");
  if (shots) await organizer.page.screenshot({ path: join(shots, "web-report.png") });

  // 8b. The invite sheet: the organizer makes links for everyone in S-LIB who has none — those
  // already in the hall keep theirs (and stay connected) — each with its QR code, prints it
  // (print styles leave only the cards) or downloads a CSV; a new link opens the hall.
  await openCase(activist.page);
  await activist.page.locator("#net.on").waitFor({ timeout: LIMIT });
  await organizer.page.goto(`${URL}/#/s/S-LIB/invites`);
  await organizer.page.click("button[data-act=invites]");
  const sheet = organizer.page.locator(".invite-sheet article.invite");
  await sheet.first().waitFor({ timeout: LIMIT });
  // A sheet gives everyone a one-time link — also those who joined already, who keep their
  // own sign-in (nobody is logged out by printing a sheet).
  // Opened on the server's own address, the sheet says its links open nowhere else (issue 30);
  // the series' organizer is on it too.
  await organizer.page.locator("#invites-loopback").waitFor({ timeout: LIMIT });
  assert.equal(await organizer.page.locator(".invite[data-participant='P-HAN']").count(), 1, "the series' organizer is on the sheet");
  const kimCard = organizer.page.locator(".invite[data-participant='P-KIM']");
  assert.equal(await kimCard.locator("code.link").count(), 1, "a participant who joined gets a link too");
  const made = organizer.page.locator(".invite:has(code.link)");
  assert.ok((await made.count()) >= 2, `links made: ${await made.count()}`);
  assert.equal(await made.first().locator(".qr svg").count(), 1, "with its QR code");
  assert.equal(await activist.page.locator("#net.on").count(), 1, "the hall is not locked out");
  const newcomer = (await made.first().locator("code.link").innerText()).trim();
  assert.ok(newcomer.startsWith(`${URL}/#/join/`), newcomer);
  const [download] = await Promise.all([
    organizer.page.waitForEvent("download", { timeout: LIMIT }),
    organizer.page.click("button[data-act=invites-csv]"),
  ]);
  const csv = readFileSync(await download.path(), "utf8");
  assert.ok(csv.startsWith("\ufeff") && csv.includes(newcomer), "the CSV carries the links");
  await organizer.page.emulateMedia({ media: "print" });
  assert.equal(await organizer.page.locator("nav.tabs").isVisible(), false, "printing shows the cards only");
  if (shots) await organizer.page.screenshot({ path: join(shots, "web-invites-print.png"), fullPage: true });
  await organizer.page.emulateMedia({ media: "screen" });
  const joined = await person(decodeURIComponent(newcomer.split("#/join/")[1]));
  await joined.page.locator("a.card", { hasText: "도서관" }).first().waitFor({ timeout: LIMIT });
  await joined.ctx.close();
  console.log(`invite sheet: ${await made.count()} links with QR codes; the CSV and a new link work`);
  await organizer.page.goto(`${URL}/#/report/HB-BENCH-2012`);
  await frame.locator("h1").first().waitFor({ timeout: LIMIT });

  // 9. The report's links lead to the moment they name (issue 16): every one answers, and the
  // organizer follows three — one clicked in the report as shown, two opened from a mailed
  // file — each opening the replay at that instant with the annotation or passage in view.
  const auth = { headers: { Authorization: `Bearer ${process.env.TOKEN_ORGANIZER}` } };
  const report = await (await fetch(`${URL}/api/v1/reports/HB-BENCH-2012?lang=ko`, auth)).text();
  const hrefs = [...new Set([...report.matchAll(/href="([^"]+)"/g)].map((m) => m[1].replaceAll("&amp;", "&")))];
  const annLinks = hrefs.filter((h) => h.includes("/annotations/"));
  const docLink = hrefs.find((h) => h.includes("/docs/"));
  assert.ok(annLinks.length >= 2 && docLink, `links to annotations and to an evaluation: ${hrefs.length}`);
  for (const h of hrefs) {
    assert.ok(h.startsWith(`${URL}/sessions/`), `an absolute link to this server: ${h}`);
    assert.equal((await fetch(h)).status, 200, h);
  }
  const bundle = await (await fetch(`${URL}/api/v1/export/HB-BENCH-2012`, auth)).json();
  const annotation = (href) => {
    const id = new globalThis.URL(href).pathname.split("/").pop();
    // A report names an annotation by the first eight characters of its id, never the whole.
    assert.ok(id.length < 36, `no whole UUID in a report's link: ${href}`);
    return bundle.sessions.flatMap((x) => x.annotations).find((a) => a.id === id || a.id.startsWith(id));
  };
  const kst = (iso) => new Date(Date.parse(iso) + 9 * 3600 * 1000).toISOString().replace("T", " ").slice(0, 19);
  const expectMoment = async (href) => {
    const a = annotation(href);
    assert.ok(a, `the link names an annotation of the series: ${href}`);
    const linked = organizer.page.locator("#linked.focus");
    await linked.waitFor({ timeout: LIMIT });
    assert.equal(await organizer.page.locator("#when").innerText(), kst(a.created_at), `the moment of ${a.ref}`);
    if (a.body) assert.ok((await linked.innerText()).includes(a.body.slice(0, 20)), `${a.ref} is shown`);
    assert.ok(await linked.isVisible(), `${a.ref} is in view`);
    return a;
  };
  const first = organizer.page.frameLocator("iframe.report").locator(`a[href="${annLinks[0]}"]`).first();
  await first.click();
  await organizer.page.waitForURL(/#\/s\/S-LIB\/replay\?ann=/, { timeout: LIMIT });
  const a1 = await expectMoment(annLinks[0]);
  await organizer.page.goto(annLinks[1]);
  const a2 = await expectMoment(annLinks[1]);
  if (shots) await organizer.page.screenshot({ path: join(shots, "web-report-link.png") });
  await organizer.page.goto(docLink);
  const passage = organizer.page.locator("#linked-passage.focus");
  await passage.waitFor({ timeout: LIMIT });
  const [, doc, path] = decodeURIComponent(docLink).match(/\/docs\/([^#]+)#(.*)$/);
  const [, c, who] = doc.split(":");
  const ev = bundle.sessions.flatMap((x) => x.evaluations).find((e) => e.case === c && e.evaluator === who);
  assert.equal(await passage.innerText(), ev[path.slice(1)], `the evaluation's ${path} as written`);
  console.log(`report links: ${hrefs.length} answer 200; followed ${a1.ref} (${a1.created_at}), ${a2.ref} (${a2.created_at}), ${doc}#${path}`);

  // 9b. Written offline, a note survives a closed tab and reaches the others once the
  // connection is back (issue 17). The activist on a phone, on a train: the page's WebSocket
  // is cut (and every attempt to reconnect), she writes, closes the tab, opens it later.
  let offline = false;
  const sockets = [];
  const away = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "ko-KR" });
  await away.routeWebSocket(/\/sync/, (ws) => {
    if (offline) return ws.close();
    ws.connectToServer();
    sockets.push(ws);
  });
  const tab = async () => {
    const p = await away.newPage();
    p.on("pageerror", (e) => errors.push(e.message));
    return p;
  };
  let train = await tab();
  await joinAt(train, process.env.TOKEN_ACTIVIST);
  await openCase(train);
  await train.locator("#net.on").waitFor({ timeout: LIMIT });
  offline = true;
  for (const ws of sockets) await ws.close();
  await train.locator("#net.off").waitFor({ timeout: LIMIT });
  const unsent = "지하철에서 쓴 의견: 순회 사서 근무표를 공개해 주세요";
  await selectAndAnnotate(train, "sections.challenges", "장서 중복도 크다", "comment", unsent);
  await card(train, unsent).waitFor({ timeout: LIMIT });
  await train.waitForTimeout(1000); // the browser's storage takes it (its saves are debounced)
  await train.close();
  assert.equal(await card(evaluator.page, unsent).count(), 0, "nobody has it while she is offline");
  offline = false;
  train = await tab();
  await train.goto(CASE);
  await card(train, unsent).waitFor({ timeout: LIMIT });
  await card(evaluator.page, unsent).waitFor({ timeout: LIMIT });
  await away.close();
  console.log("written offline, kept through a closed tab, delivered on reconnecting");

  // 10. A change the server refuses is said so, in Korean, with what to do — not "saving…"
  // forever — and the page keeps receiving everyone else's (issue 17). The session moves on
  // to reporting under the activist's feet (her page still offers to annotate).
  const phase = (p, force) =>
    fetch(`${URL}/api/v1/sessions/S-LIB/phase`, {
      method: "PUT",
      headers: { ...auth.headers, "Content-Type": "application/json" },
      body: JSON.stringify({ phase: p, force }),
    });
  // (An open page hears of the move at once and stops offering to write: issue 30. Hers is
  // off the venue's Wi-Fi when it happens, so she writes on and learns it on reconnecting.)
  await openCase(activist.page);
  await activist.ctx.setOffline(true);
  assert.equal((await phase("reporting", false)).status, 200);
  const late = "단계가 바뀐 뒤에 쓴 의견";
  await selectAndAnnotate(activist.page, "sections.method", "상호대차 차량을 주 2회 운행", "comment", late);
  await activist.ctx.setOffline(false);
  const banner = activist.page.locator("#refused");
  await banner.waitFor({ state: "visible", timeout: LIMIT });
  const said = await banner.innerText();
  assert.match(said, /변경이 저장되지 않았습니다/, said);
  assert.match(said, /단계나 역할이 바뀌었을 수 있습니다/, said);
  // What she wrote is shown back to her, to copy: never silently lost.
  assert.equal(await banner.locator(".unsent textarea").inputValue(), late);
  await activist.page.locator("#saving.refused").waitFor({ timeout: LIMIT });
  assert.equal(await activist.page.locator("#net.on").count(), 1, "still connected");
  if (shots) await activist.page.screenshot({ path: join(shots, "web-refused-desktop.png") });
  // The organizer, who still triages in reporting, accepts the activist's question: her page
  // shows it.
  await organizer.page.goto(`${URL}/#/s/S-LIB/queue`);
  await card(organizer.page, question).locator("button[data-status=accepted]").click();
  await card(activist.page, question).locator(".status", { hasText: "반영" }).waitFor({ timeout: LIMIT });
  // Reloading as the banner says drops the refused copy this browser kept: the server's
  // copy again, without the refused note, and nothing refused any more.
  await activist.page.getByRole("button", { name: "다시 불러오기" }).click();
  await activist.page.locator("#net.on").waitFor({ timeout: LIMIT });
  await card(activist.page, question).waitFor({ timeout: LIMIT });
  await activist.page.waitForTimeout(1500);
  assert.equal(await card(activist.page, late).count(), 0, "the refused note is gone");
  assert.ok(await activist.page.locator("#refused").isHidden(), "nothing refused after reloading");
  console.log("a refused change is said; the page keeps receiving; reloading starts clean");

  // 10b. The work after the session, from the page (issue 19). The planning officer (P-HAN,
  // organizer) also accepts the activist's gap, then promotes both accepted annotations into
  // one finding for 문화도서관과 under 후속 조치; its reviewer (P-LEE) finds it there — and
  // nothing of another department's — and records the department's response. The report and
  // the series' timeline show both, each by its author.
  const planner = await person(process.env.TOKEN_PLANNER);
  await planner.page.goto(CASE);
  await card(planner.page, gap).locator("button[data-status=accepted]").click();
  await card(planner.page, gap).locator("button[data-status=accepted][aria-pressed=true]").waitFor({ timeout: LIMIT });
  await planner.page.getByRole("link", { name: "후속 조치" }).click();
  const promoteForm = planner.page.locator("form.promote");
  await promoteForm.waitFor({ timeout: LIMIT });
  for (const body of [gap, question]) await promoteForm.locator("label.source", { hasText: body.slice(0, 12) }).locator("input").check();
  const title = "저녁 시간 작은도서관 운영 인력";
  const advice = "작은도서관 저녁 운영에 시간제 사서를 배치한다";
  await promoteForm.getByLabel("유형").selectOption({ label: "제언" });
  await promoteForm.getByLabel("제목").fill(title);
  await promoteForm.getByLabel("권고 사항").fill(advice);
  await promoteForm.getByLabel("주관 부서").selectOption({ label: "문화도서관과" });
  await promoteForm.getByLabel("우선순위").selectOption({ label: "상" });
  if (shots) await planner.page.screenshot({ path: join(shots, "web-promote-desktop.png"), fullPage: true });
  await promoteForm.getByRole("button", { name: "과제로 올리기" }).click();
  const promotedItem = planner.page.locator("li.finding", { hasText: title });
  await promotedItem.waitFor({ timeout: LIMIT });
  assert.match(await promotedItem.innerText(), /F-S-LIB-01/);
  assert.equal(await promotedItem.locator("ul.sources li").count(), 2, "both annotations are its sources");
  await planner.page.locator("#saving.saved").waitFor({ timeout: LIMIT });
  await planner.page.waitForFunction(() => !document.querySelector("form.promote label.source"), null, { timeout: LIMIT });
  console.log("the planning officer promoted two accepted annotations into F-S-LIB-01");

  const reviewer = await person(process.env.TOKEN_DEPT, { width: 390, height: 844 });
  await reviewer.page.goto(`${URL}/#/s/S-LIB/followup`);
  const mine = reviewer.page.locator("li.finding", { hasText: title });
  await mine.waitFor({ timeout: LIMIT });
  assert.equal(await reviewer.page.locator("form.promote").count(), 0, "a reviewer promotes nothing");
  assert.equal(await reviewer.page.locator("li.finding", { hasText: "F-CARE-01" }).count(), 0, "another department's finding is not shown");
  assert.match(await mine.innerText(), /주관/);
  assert.match(await mine.innerText(), new RegExp(advice));
  const respondForm = mine.locator("form.respond");
  await respondForm.getByLabel("검토 의견").first().selectOption({ label: "일부수용" });
  await respondForm.getByLabel("조치 계획").fill("2013년 하반기 시간제 사서 두 명을 시범 배치");
  await respondForm.getByLabel("완료 예정").fill("2013-12-31");
  await respondForm.getByLabel("추진 상황").fill("예산 편성 중");
  if (shots) await reviewer.page.screenshot({ path: join(shots, "web-respond-phone.png"), fullPage: true });
  await respondForm.getByRole("button", { name: "검토 의견 저장" }).click();
  await reviewer.page.locator("li.finding", { hasText: title }).locator(".response-now", { hasText: "일부수용" }).waitFor({ timeout: LIMIT });
  await reviewer.page.locator("#saving.saved").waitFor({ timeout: LIMIT });
  console.log("the department's reviewer recorded its response");

  const reportMd = await (await fetch(`${URL}/api/v1/reports/HB-BENCH-2012?lang=ko&format=md`, auth)).text();
  for (const want of [title, advice, "일부수용", "2013년 하반기 시간제 사서 두 명을 시범 배치", "예산 편성 중"]) {
    assert.ok(reportMd.includes(want), `the report has ${want}`);
  }
  const timeline = (await (await fetch(`${URL}/api/v1/sessions/HB-BENCH-2012/timeline?limit=5000`, auth)).json()).entries;
  const did = (who, kind, finding) => timeline.some((e) => e.participant === who && e.kind === kind && e.detail?.finding === finding);
  const seen = timeline.filter((e) => ["P-HAN", "P-LEE"].includes(e.participant)).map((e) => `${e.participant} ${e.kind} ${e.detail?.finding}`);
  assert.ok(did("P-HAN", "finding.created", "F-S-LIB-01"), `the finding is P-HAN's in the timeline: ${seen}`);
  assert.ok(did("P-LEE", "department.responded", "F-S-LIB-01"), `the response is P-LEE's in the timeline: ${seen}`);
  console.log("the report and the series' timeline show the finding and the response");

  // 10c. A shared computer (issue 29). An invite link's code leaves the address bar at once,
  // is spent once used (the next person finds a dead link in the history), "공용 PC" keeps
  // nothing after the tab closes, and 로그아웃 removes the token and every document the
  // participant left in the browser.
  const codes = await (
    await fetch(`${URL}/api/v1/sessions/S-LIB/invites`, {
      method: "POST",
      headers: { Authorization: `Bearer ${process.env.TOKEN_ORGANIZER}`, "Content-Type": "application/json" },
      body: JSON.stringify({ base: URL }),
    })
  ).json();
  const kimCode = codes.invites.find((i) => i.participant === "P-KIM").link.split("#/join/")[1];
  const shared = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "ko-KR" });
  const kiosk = await shared.newPage();
  kiosk.on("pageerror", (e) => errors.push(e.message));
  await joinAt(kiosk, kimCode, true);
  await kiosk.locator("a.card").first().waitFor({ timeout: LIMIT });
  await openCase(kiosk);
  const kept = await kiosk.evaluate(async () => ({
    local: localStorage.getItem("toron.token"),
    session: !!sessionStorage.getItem("toron.token"),
    dbs: (await indexedDB.databases()).map((d) => d.name),
  }));
  assert.equal(kept.local, null, "공용 PC: no token in localStorage");
  assert.ok(kept.session, "the tab holds it while it is open");
  assert.ok(!kept.dbs.some((n) => n.startsWith("toron-")), `공용 PC: no documents kept: ${kept.dbs}`);
  await kiosk.close();
  // The next person at the computer opens the link from the history: spent.
  const next = await shared.newPage();
  await joinAt(next, kimCode);
  await next.locator("form#join [role=alert]").waitFor({ timeout: LIMIT });
  await shared.close();
  // On one's own device: a token and documents are kept; 로그아웃 removes both.
  const own = await person(process.env.TOKEN_ACTIVIST);
  await openCase(own.page);
  await own.page.waitForTimeout(1000);
  const before = await own.page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
  assert.ok(before.includes("toron-P-KIM"), `documents kept on one's own device: ${before}`);
  await own.page.click("#logout");
  await own.page.waitForSelector("form#join", { timeout: LIMIT });
  const after = await own.page.evaluate(async () => ({
    token: localStorage.getItem("toron.token"),
    dbs: (await indexedDB.databases()).map((d) => d.name),
  }));
  assert.equal(after.token, null, "signed out");
  assert.ok(!after.dbs.includes("toron-P-KIM"), `the documents are gone: ${after.dbs}`);
  await own.ctx.close();
  console.log("shared computer: the link is spent, 공용 PC keeps nothing, 로그아웃 clears the browser");

  // 11. axe-core finds no serious or critical violation on the join, case, queue and replay
  // views (issue 17).
  const stranger = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "ko-KR" });
  const joinPage = await stranger.newPage();
  // A bad invite link is said so in Korean, with what to do.
  await joinAt(joinPage, "not-a-real-token");
  await joinPage.locator("form#join [role=alert]", { hasText: "주최 측에 새 링크를 요청하세요" }).waitFor({ timeout: LIMIT });
  assert.equal(await joinPage.locator("#lang").innerText(), "English", "the language switch is labelled");
  const views = [
    ["join", joinPage],
    ["case", activist.page, CASE],
    ["queue", chair.page, `${URL}/#/s/S-LIB/queue`],
    ["replay", activist.page, `${URL}/#/s/S-LIB/replay`],
  ];
  const problems = {};
  for (const [name, page, url] of views) {
    if (url) {
      await page.goto(url);
      await page.waitForSelector("main h1", { timeout: LIMIT });
      await page.waitForTimeout(500);
    }
    const found = await accessibilityProblems(page);
    if (found.length) problems[name] = found;
  }
  await stranger.close();
  assert.deepEqual(problems, {}, `accessibility: ${JSON.stringify(problems, null, 1)}`);
  console.log("axe-core: no serious or critical violation on join, case, queue, replay");

  assert.deepEqual(errors, [], "no script errors in the pages");
  console.log("web e2e: ok");
} finally {
  await browser.close();
}
