// Issue 30: a session prepared the way a district prepares one — not yet held, no notes, no
// triage, no forms — run in headless Chromium from scheduled to reporting by the people who
// run it: the chair opens it and sets the agenda item; an activist (on a phone) asks about a
// passage that starts at a section's first character; the chair marks it "지금 답변 중" and
// the presenter answers; the evaluator fills her whole form in the page; the chair closes the
// session while the activist is typing (her text stays, with the reason); the planning
// officer promotes the question for a lead and an assisting department, and both answer.
// Run by tests/tests/suite/web_e2e.rs on a fresh server; it checks the report's files.
//
// Env: TORON_URL, TOKEN_CHAIR (P-MOON), TOKEN_ACTIVIST (P-KIM), TOKEN_EVALUATOR (P-PARK),
// TOKEN_PRESENTER (P-LEE, presenter of C-LIB-HB and reviewer of 문화도서관과), TOKEN_PLANNER
// (P-HAN, organizer), TOKEN_ASSIST (P-FAM, reviewer of 가족정책과), TOKEN_ORGANIZER, SESSION,
// SERIES, CHROMIUM, SCREENSHOTS (optional), OUT (a folder for the report's files).

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { card, launch, LIMIT, people, selectAndAnnotate } from "./people.mjs";

const URL = process.env.TORON_URL;
const SESSION = process.env.SESSION || "S-LIB";
const CASE_KEY = process.env.CASE_KEY || "C-LIB-HB";
const CASE = `${URL}/#/s/${SESSION}/c/${CASE_KEY}`;
// `cli`: a session made with the CLI alone (its template has no rubric of its own).
const CLI = process.env.MODE === "cli";
const shots = process.env.SCREENSHOTS;
if (shots) mkdirSync(shots, { recursive: true });
const out = process.env.OUT;
const organizer = { headers: { Authorization: `Bearer ${process.env.TOKEN_ORGANIZER}` } };

const browser = await launch(chromium);
const errors = [];
const person = people(browser, URL, errors);
const phone = { width: 390, height: 844 };

async function api(path) {
  const r = await fetch(`${URL}${path}`, organizer);
  assert.ok(r.ok, `${path}: ${r.status}`);
  return r.json();
}

/// The document's content as the server holds it, once `ok(state)` (bounded).
async function serverState(doc, ok) {
  let s = null;
  for (let i = 0; i < 100; i++) {
    s = (await api(`/api/v1/documents/${doc}/state`)).state;
    if (ok(s)) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`document ${doc} never got there: ${JSON.stringify(s).slice(0, 400)}`);
}

try {
  // 0. Before: the session is scheduled and nothing has happened in it.
  const chair = await person(process.env.TOKEN_CHAIR);
  const activist = await person(process.env.TOKEN_ACTIVIST, phone);
  await activist.page.goto(`${URL}/#/s/${SESSION}`);
  await activist.page.locator("#session-bar .phase", { hasText: "예정" }).waitFor({ timeout: LIMIT });
  // Her page is in the session (connected, its documents open): what the chair does reaches it.
  await activist.page.locator("#net.on").waitFor({ timeout: LIMIT });
  await activist.page.locator("#agenda-list[data-ready]").waitFor({ timeout: LIMIT });
  assert.equal(await activist.page.locator(".chair-controls").count(), 0, "an activist runs nothing");

  // 1. The chair opens the session and sets the agenda item; the activist's open page follows
  // at once, without a reload.
  await chair.page.goto(`${URL}/#/s/${SESSION}`);
  await chair.page.getByRole("button", { name: "토론회 시작" }).click();
  await chair.page.locator("#session-bar .phase", { hasText: "진행 중" }).waitFor({ timeout: LIMIT });
  await activist.page.locator("#session-bar .phase", { hasText: "진행 중" }).waitFor({ timeout: LIMIT });
  await chair.page.locator("#agenda-item").selectOption("AG-LIB-2");
  await chair.page.getByRole("button", { name: "이 순서로" }).click();
  await activist.page.locator("#now-item", { hasText: "사례발표" }).waitFor({ timeout: LIMIT });
  await activist.page.locator("li.agenda-item.now[data-item='AG-LIB-2']").waitFor({ timeout: LIMIT });
  const items = (await api(`/api/v1/sessions/${SESSION}/timeline?kind=session.agenda_item`)).entries;
  assert.ok(items.some((e) => e.participant === "P-MOON" && e.detail?.item === "AG-LIB-2"), `the item is the chair's, in the log: ${JSON.stringify(items)}`);
  if (shots) await chair.page.screenshot({ path: join(shots, "web-chair-desktop.png") });
  console.log("the chair opened the session and set the agenda item; the activist's page followed");

  // 2. The activist asks about the first words of a section (a passage at offset 0).
  await activist.page.goto(CASE);
  await activist.page.waitForSelector(".section-text[data-path='sections.background']", { timeout: LIMIT });
  const first = (await activist.page.locator(".section-text[data-path='sections.background']").innerText()).slice(0, 8);
  const question = "저녁 시간 운영은 언제부터 가능한가요?";
  await selectAndAnnotate(activist.page, "sections.background", first, "question", question);
  await card(activist.page, question).waitFor({ timeout: LIMIT });
  await activist.page.locator("#saving.saved").waitFor({ timeout: LIMIT });
  const layerDoc = await activist.page.evaluate((s) => window.toron.sessions.find((x) => x.key === s).layers.find((l) => l.participant === "P-KIM").doc, SESSION);
  const layer = await serverState(layerDoc, (s) => Object.values(s?.annotations || {}).some((a) => String(a.body) === question));
  const asked = Object.entries(layer.annotations).find(([, a]) => String(a.body) === question);
  const askedId = asked[0];
  assert.equal(Number(asked[1].target.position.start), 0, "the passage starts at the section's first character");
  console.log("the activist asked about a passage at a section's first character");

  // 3. The chair's queue: the question, "답변 시작" → 지금 답변 중 on every page and on the
  // projector; the presenter answers; the chair marks it answered.
  await chair.page.goto(`${URL}/#/s/${SESSION}/queue`);
  const queued = card(chair.page, question);
  await queued.waitFor({ timeout: LIMIT });
  await queued.getByRole("button", { name: "답변 시작" }).click();
  await queued.locator(".answering-badge").waitFor({ timeout: LIMIT });
  await activist.page.goto(`${URL}/#/s/${SESSION}/queue`);
  await card(activist.page, question).locator(".answering-badge", { hasText: "지금 답변 중" }).waitFor({ timeout: LIMIT });
  const projector = await person(process.env.TOKEN_CHAIR, { width: 1920, height: 1080 });
  await projector.page.goto(`${URL}/#/s/${SESSION}/projector`);
  await projector.page.locator("#projector-answering", { hasText: question }).waitFor({ timeout: LIMIT });
  assert.match(await projector.page.locator(".projector h1").innerText(), /사례발표/);
  assert.match(await projector.page.locator("#clock").innerText(), /^\d\d:\d\d$/);
  if (shots) await projector.page.screenshot({ path: join(shots, "web-projector.png") });
  const presenter = await person(process.env.TOKEN_PRESENTER);
  await presenter.page.goto(CASE);
  const onPresenter = card(presenter.page, question);
  await onPresenter.waitFor({ timeout: LIMIT });
  const answer = "내년 상반기에 시간제 사서를 두어 저녁 9시까지 엽니다.";
  await onPresenter.getByRole("button", { name: /^댓글/ }).click();
  await onPresenter.locator("form.reply-form textarea").fill(answer);
  await onPresenter.locator("form.reply-form button[type=submit]").click();
  await card(chair.page, question).locator(".reply", { hasText: answer }).waitFor({ timeout: LIMIT });
  assert.match(await card(chair.page, question).locator(".reply", { hasText: answer }).innerText(), /답변/, "the presenter's reply is an answer");
  await card(chair.page, question).locator("button[data-status=answered]").click();
  await chair.page.locator("#queue-handled article.ann", { hasText: question }).waitFor({ timeout: LIMIT });
  await projector.page.locator("#projector-answering").waitFor({ state: "detached", timeout: LIMIT });
  console.log("the queue: now answering, the presenter's answer, answered");

  // 4. The evaluator's whole form, in the page: every score with what it means, an N/A with
  // its reason, comments, the four texts; saved as a draft, then submitted.
  const evaluator = await person(process.env.TOKEN_EVALUATOR, phone);
  await evaluator.page.goto(CASE);
  const form = evaluator.page.locator("form.eval-form");
  await form.waitFor({ timeout: LIMIT });
  assert.match(await form.innerText(), /적절성/);
  // What each score means: the template's rubric where it gives one (the bundle's), else the
  // scale's words.
  if (!CLI) assert.match(await form.innerText(), /우리 구의 핵심 과제에 정확히 맞닿아 있다/);
  assert.match(await form.innerText(), /매우 우수/);
  {
    const scores = { relevance: "4", process: "3", effectiveness: "4", efficiency: "na", sustainability: "2", transferability: "5" };
    for (const [k, v] of Object.entries(scores)) await form.locator(`input[name=score-${k}][value='${v}']`).check();
    await form.locator("input[name=na-efficiency]").fill("비용 자료가 제출되지 않음");
    await form.locator("textarea[name=text-sustainability]").fill("공모사업 예산에 기대어 지속성이 약하다.");
  }
  const texts = {
    strengths: "주민 가까이에서 책을 빌릴 수 있게 되었다.",
    gaps: "저녁 운영 인력이 자원봉사에 의존한다.",
    lessons: "거점 도서관과 공동 운영하는 방식을 배울 만하다.",
    overall: "방향은 옳으나 인력과 예산의 제도화가 필요하다.",
  };
  for (const [k, v] of Object.entries(texts)) await form.locator(`textarea[name=${k}]`).fill(v);
  await form.getByRole("button", { name: "임시 저장" }).click();
  const evalDoc = await evaluator.page.evaluate(([s, c]) => window.toron.sessions.find((x) => x.key === s).evaluations.find((e) => e.case === c && e.evaluator === "P-PARK").doc, [SESSION, CASE_KEY]);
  const draft = await serverState(evalDoc, (s) => String(s?.overall || "") === texts.overall);
  assert.equal(String(draft.status), "draft", "saved as a draft");
  if (shots) await evaluator.page.screenshot({ path: join(shots, "web-evaluation-phone.png"), fullPage: true });
  await form.getByRole("button", { name: "평가서 제출" }).click();
  const submitted = await serverState(evalDoc, (s) => String(s?.status) === "submitted");
  {
    assert.equal(submitted.criteria.efficiency.score, null);
    assert.equal(String(submitted.criteria.efficiency.na_reason), "비용 자료가 제출되지 않음");
    assert.equal(submitted.criteria.transferability.score, 5);
  }
  await evaluator.page.locator("details.evaluation .status", { hasText: "제출됨" }).first().waitFor({ timeout: LIMIT });
  console.log("the evaluator filled and submitted her whole form in the page");

  // 5. The chair closes the session while the activist is typing a note: her page says so at
  // once and keeps her text; closed still takes notes (the last words of a debate), so she
  // sends it. Then the organizers move the session on to reporting while she types another:
  // that one cannot be sent any more, and her text stays, with the reason.
  const openComposerOnResults = async () => {
    await activist.page.waitForSelector(".section-text[data-path='sections.results']", { timeout: LIMIT });
    await activist.page.evaluate(() => {
      const el = document.querySelector(".section-text[data-path='sections.results']");
      const r = document.createRange();
      r.selectNodeContents(el);
      getSelection().removeAllRanges();
      getSelection().addRange(r);
    });
    await activist.page.click("#annotate-selection");
    await activist.page.waitForSelector("form.annotate", { timeout: LIMIT });
  };
  await activist.page.goto(CASE);
  await openComposerOnResults();
  const typed = "마감 직전에 쓰던 의견: 주말 운영도 함께 검토해 주세요.";
  await activist.page.fill("#body", typed);
  await chair.page.goto(`${URL}/#/s/${SESSION}`);
  await chair.page.locator("details.confirm summary").click();
  await chair.page.getByRole("button", { name: "지금 종료" }).click();
  await chair.page.locator("#session-bar .phase", { hasText: "종료" }).waitFor({ timeout: LIMIT });
  await activist.page.locator("#session-bar .phase", { hasText: "종료" }).waitFor({ timeout: LIMIT });
  assert.equal(await activist.page.inputValue("#body"), typed, "the typed note is kept");
  await activist.page.click("form.annotate button[type=submit]");
  await card(activist.page, typed).waitFor({ timeout: LIMIT });
  await activist.page.locator("#saving.saved").waitFor({ timeout: LIMIT });
  assert.ok(await activist.page.locator("#refused").isHidden(), "a note of the closed session is taken");
  await openComposerOnResults();
  const late = "보고서 작성 중에 쓰던 의견: 야간 안전도 살펴 주세요.";
  await activist.page.fill("#body", late);
  const moved = await fetch(`${URL}/api/v1/sessions/${SESSION}/phase`, {
    method: "PUT",
    headers: { ...organizer.headers, "Content-Type": "application/json" },
    body: JSON.stringify({ phase: "reporting" }),
  });
  assert.ok(moved.ok, `reporting: ${moved.status}`);
  await activist.page.locator("#session-bar .phase", { hasText: "보고서 작성" }).waitFor({ timeout: LIMIT });
  await activist.page.locator("form.annotate .closed-note").waitFor({ timeout: LIMIT });
  assert.equal(await activist.page.inputValue("#body"), late, "the typed note is kept");
  assert.ok(await activist.page.locator("form.annotate button[type=submit]").isDisabled(), "and not sent into a refusal");
  if (shots) await activist.page.screenshot({ path: join(shots, "web-closed-phone.png"), fullPage: true });
  console.log("closing and reporting reached the activist's open page; her typed notes are kept");

  const title = "작은도서관 저녁 운영 인력 확보";
  const planner = await person(process.env.TOKEN_PLANNER);
  {
    // 6. The planning officer accepts the question and promotes it, for 문화도서관과 (lead) and
    // 가족정책과 (assisting); both departments answer.
    await planner.page.goto(`${URL}/#/s/${SESSION}/queue`);
    await card(planner.page, question).locator("button[data-status=accepted]").click();
    await card(planner.page, question).locator("button[data-status=accepted][aria-pressed=true]").waitFor({ timeout: LIMIT });
    await planner.page.getByRole("link", { name: "후속 조치" }).click();
    const promote = planner.page.locator("form.promote");
    await promote.waitFor({ timeout: LIMIT });
    await promote.locator("label.source", { hasText: question.slice(0, 10) }).locator("input").check();
    await promote.getByLabel("유형").selectOption({ label: "제언" });
    await promote.getByLabel("제목").fill(title);
    await promote.getByLabel("권고 사항").fill("시간제 사서를 두어 저녁 운영을 넓힌다");
    await promote.getByLabel("주관 부서").selectOption({ label: "문화도서관과" });
    await promote.locator("input[name=assist][value='DEP-FAM']").check();
    await promote.getByRole("button", { name: "과제로 올리기" }).click();
    await planner.page.locator("li.finding", { hasText: title }).waitFor({ timeout: LIMIT });
    await planner.page.locator("#saving.saved").waitFor({ timeout: LIMIT });
    console.log("the planning officer promoted the question for a lead and an assisting department");

    const answers = [
      [process.env.TOKEN_PRESENTER, "일부수용", "2027년 상반기 시간제 사서 배치"],
      [process.env.TOKEN_ASSIST, "수용", "돌봄 프로그램과 저녁 운영 연계"],
    ];
    for (const [token, stance, plan] of answers) {
      const reviewer = await person(token, phone);
      await reviewer.page.goto(`${URL}/#/s/${SESSION}/followup`);
      const mine = reviewer.page.locator("li.finding", { hasText: title });
      await mine.waitFor({ timeout: LIMIT });
      const respond = mine.locator("form.respond");
      await respond.getByLabel("검토 의견").first().selectOption({ label: stance });
      await respond.getByLabel("조치 계획").fill(plan);
      await respond.getByRole("button", { name: "검토 의견 저장" }).click();
      await mine.locator(".response-now", { hasText: stance }).waitFor({ timeout: LIMIT });
      await reviewer.page.locator("#saving.saved").waitFor({ timeout: LIMIT });
      await reviewer.ctx.close();
    }
    console.log("the lead and the assisting department answered");

    // 6b. The replay keeps the agenda item the chair set, and its marker sits on the slider
    // where the chair began it (the session ran today, not at the bundle's hours).
    await planner.page.goto(`${URL}/#/s/${SESSION}/replay`);
    await planner.page.locator("#replay-item", { hasText: "사례발표" }).waitFor({ timeout: LIMIT });
    assert.ok((await planner.page.locator(".markers span").allTextContents()).includes("사례발표"), "the item's marker is on the slider");
    console.log("the replay shows the agenda item under way");
  }

  // 7. The report, in the 보고서 view and as files: the question, the answer, the form's texts,
  // both departments' answers; never a UUID.
  await planner.page.goto(`${URL}/#/report/${SESSION}`);
  await planner.page.locator(".downloads button", { hasText: "PDF" }).waitFor({ timeout: LIMIT });
  const [download] = await Promise.all([
    planner.page.waitForEvent("download", { timeout: 60_000 }),
    planner.page.locator(".downloads button", { hasText: "HWPX" }).click(),
  ]);
  assert.match(download.suggestedFilename(), /\.hwpx$/);
  const want = [title, question, answer, texts.strengths, texts.gaps, texts.lessons, texts.overall, "비용 자료가 제출되지 않음", "2027년 상반기 시간제 사서 배치", "돌봄 프로그램과 저녁 운영 연계", "가족정책과", "문화도서관과"];
  const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
  if (out) {
    mkdirSync(out, { recursive: true });
    for (const format of ["pdf", "hwpx", "xlsx", "csv", "md", "html"]) {
      const r = await fetch(`${URL}/api/v1/reports/${SESSION}?lang=ko&format=${format}`, organizer);
      assert.ok(r.ok, `${format}: ${r.status}`);
      writeFileSync(join(out, `report.${format}`), Buffer.from(await r.arrayBuffer()));
    }
    writeFileSync(join(out, "expected.json"), JSON.stringify({ want, question, answer, texts }));
  }
  // The CSV is the departments' table: the finding and both answers.
  const wanted = { md: want, html: want, csv: [title, "2027년 상반기 시간제 사서 배치", "돌봄 프로그램과 저녁 운영 연계", "가족정책과"] };
  for (const [format, words] of Object.entries(wanted)) {
    const r = await fetch(`${URL}/api/v1/reports/${SESSION}?lang=ko&format=${format}`, organizer);
    assert.ok(r.ok, `${format}: ${r.status}`);
    const text = await r.text();
    for (const w of words) assert.ok(text.includes(w), `the ${format} report holds "${w}"`);
    // What a reader sees: link targets (a machine's address) are not part of it.
    const seen = format === "md" ? text.replace(/\]\([^)]*\)/g, "]") : format === "html" ? text.replace(/<[^>]*>/g, " ") : text;
    assert.ok(!uuid.test(seen), `no UUID in the ${format} report: ${seen.match(uuid)}`);
  }
  console.log("the report holds the question, the answer, the form and both departments' answers");

  assert.deepEqual(errors, [], "no error on any page");
  console.log("prepared session e2e: ok");
} finally {
  await browser.close();
}
