// The Airflow UI in a real browser (Debian's Chromium, headless, driven by playwright-core):
// log in on the FAB login form as a user would, open the DAG list, then DAG_1's runs.
// Inputs come from the environment (the password never on a command line):
//   UI_URL, UI_USERNAME, UI_PASSWORD, UI_DAG_IDS (comma-separated), UI_RUN_ID, UI_SCREENSHOT
//   CHROMIUM (default /usr/bin/chromium)
// Prints one JSON line last: {logged_in, dags_visible, run_visible, run_state}. Exit 0 when
// the page flow could be driven at all; what it saw is for the caller to judge.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const PAGE_TIMEOUT_MS = 60_000;
const STATES = ["success", "failed", "running", "queued"];

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`ui_login: ${name} is not set; it must name the ${name.slice(3).toLowerCase()}`);
    process.exit(2);
  }
  return value;
}

async function main() {
  const url = need("UI_URL").replace(/\/$/, "");
  const username = need("UI_USERNAME");
  const password = need("UI_PASSWORD");
  const dagIds = need("UI_DAG_IDS").split(",");
  const runId = need("UI_RUN_ID");
  const screenshot = need("UI_SCREENSHOT");

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ui-login-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // a root CI container has no user namespaces for the sandbox; nothing else is reachable
    // from this browser but the loopback api-server
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-sync",
    ],
    viewport: { width: 1440, height: 900 },
  });
  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  const seen = { logged_in: false, dags_visible: [], run_visible: false, run_state: null };
  try {
    const page = browser.pages()[0] || (await browser.newPage());
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);

    await page.goto(`${url}/auth/login/`);
    await page.fill('input[name="username"]', username);
    await page.fill('input[name="password"]', password);
    await Promise.all([page.waitForLoadState("load"), page.click('[type="submit"]')]);
    try {
      await page.waitForURL((u) => !u.pathname.startsWith("/auth/login"));
      seen.logged_in = true;
    } catch {
      console.error(
        `ui_login: still on the login form after ${PAGE_TIMEOUT_MS / 1000} s (wrong credentials?)`,
      );
    }
    if (!seen.logged_in) {
      await page.screenshot({ path: screenshot, fullPage: true });
      return seen;
    }

    await page.goto(`${url}/dags`);
    for (const dagId of dagIds) {
      const link = page.locator(`a[href$="/dags/${dagId}"]`).first();
      try {
        await link.waitFor({ state: "visible" });
        seen.dags_visible.push(dagId);
      } catch {
        // not listed: left out of dags_visible
      }
    }

    await page.goto(`${url}/dags/${dagIds[0]}/runs`);
    // the runs table links each run by its id; the row carries the run's state badge
    const row = page.locator("tr").filter({
      has: page.locator(`a[href*="/runs/${encodeURIComponent(runId)}"], a[href*="/runs/${runId}"]`),
    });
    try {
      await row.first().waitFor({ state: "visible" });
      seen.run_visible = true;
      const text = (await row.first().innerText()).toLowerCase();
      seen.run_state = STATES.find((s) => text.includes(s)) || null;
    } catch {
      // the run is not listed: run_visible stays false
    }
    await page.screenshot({ path: screenshot, fullPage: true });
    return seen;
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  (seen) => console.log(JSON.stringify(seen)),
  (err) => {
    console.error(`ui_login: ${err.message.split("\n")[0]}`);
    process.exit(1);
  },
);
