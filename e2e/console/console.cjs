// The operator console in headless Chromium, as an administrator uses it. Run by
// e2e/tests/console.rs against a running stack that has three welcome-email dead letters
// and an SMTP server accepting mail again. Exits 0 when every step held; screenshots of
// each step go to $SCREENSHOTS (and failure.png when one did not).
//
// Env: CONSOLE_URL (the command API's base), ADMIN_EMAIL, ADMIN_PASSWORD, SCREENSHOTS,
// CHROMIUM (default /usr/bin/chromium).
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

const base = process.env.CONSOLE_URL;
const shots = process.env.SCREENSHOTS;
const TIMEOUT = 20000;

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(TIMEOUT);
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  // The browser logs every 4xx answer as "Failed to load resource"; those the test asks
  // for are checked on the page instead.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) errors.push(message.text());
  });
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const text = (selector) => page.locator(selector).innerText();
  const waitText = (selector, pattern) =>
    page.waitForFunction(([s, p]) => new RegExp(p).test(document.querySelector(s)?.innerText ?? ""), [selector, pattern.source]);
  try {
    await page.goto(`${base}/console`);
    await shot("01-sign-in");

    // A wrong password is refused on the page.
    await page.fill("#email", process.env.ADMIN_EMAIL);
    await page.fill("#password", "not-the-password");
    await page.click("#signin-button");
    await waitText("#signin-error", /./);
    check(await page.locator("#app").isHidden(), "the console stays closed after a wrong password");

    await page.fill("#password", process.env.ADMIN_PASSWORD);
    await page.click("#signin-button");
    await page.waitForSelector("#app:not([hidden])");
    await page.waitForFunction(() => document.querySelectorAll("#projections tbody tr").length >= 3);
    const projections = await text("#projections tbody");
    for (const name of ["users", "products", "orders"]) check(projections.includes(name), `projection ${name} shown`);
    check(/running|catching up/.test(projections), `projection states shown: ${projections}`);
    await waitText("#consumers tbody", /workers-welcome-email/);
    await waitText("#dl-count", /^3 match/);
    await shot("02-overview");

    // Filters: by error text, then by effect and age.
    await page.fill("#f-error", "no-such-error-text");
    await page.click("#apply");
    await waitText("#dl-count", /^0 match/);
    await page.fill("#f-error", "");
    await page.fill("#f-effect", "welcome_email");
    await page.fill("#f-newer", "1h");
    await page.click("#apply");
    await waitText("#dl-count", /^3 match/);
    await page.fill("#f-older", "soon");
    await page.click("#apply");
    await waitText("#app-error", /VALIDATION_ERROR/);
    await page.fill("#f-older", "");
    await page.click("#apply");
    await waitText("#dl-count", /^3 match/);

    // Inspect one and discard it with a reason.
    await page.locator("#dead-letters button.inspect").first().click();
    await waitText("#d-event", /user\.registered/);
    await shot("03-inspect");
    await page.click("#d-discard");
    await waitText("#d-outcome", /give a reason/);
    await page.fill("#d-reason", "test account");
    await page.click("#d-discard");
    await waitText("#d-outcome", /^discarded/);
    await waitText("#dl-count", /^2 match/);

    // Retry all that match, followed to the end.
    await page.fill("#bulk-reason", "smtp is back");
    await page.click("#retry-all");
    await waitText("#bulk-text", /^done: 2 of 2, 2 resolved, 0 failed/);
    await waitText("#dl-count", /^0 match/);
    await shot("04-retried");

    // Every action is listed with its reason.
    await waitText("#actions tbody", /dead_letter\.retry_all/);
    const actions = await text("#actions tbody");
    check(/dead_letter\.discard[\s\S]*test account/.test(actions), `the discard is audited: ${actions}`);
    check(/smtp is back/.test(actions), `the bulk retry's reason is audited: ${actions}`);
    await waitText("#runs tbody", /done/);
    await shot("05-audit");

    // Rebuild without downtime, followed to the swap; then generation 1 is kept for a rollback.
    await waitText("#generations tbody", /live/);
    await page.fill("#rebuild-reason", "new projection code");
    await page.click("#rebuild");
    await waitText("#rebuild-text", /^rebuild to generation 2: done/);
    await waitText("#generations tbody", /retired/);
    const generations = await text("#generations tbody");
    check(/2\s+live[\s\S]*1\s+retired/.test(generations), `generation 2 live, 1 retired: ${generations}`);
    check(/Roll back to this/.test(generations), `a rollback is offered: ${generations}`);
    await waitText("#actions tbody", /projection\.rebuild/);
    await shot("06-rebuilt");
    check(errors.length === 0, `no errors in the page: ${errors.join("; ")}`);
    console.log("console: every step held");
  } catch (error) {
    await shot("failure").catch(() => {});
    throw error;
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
