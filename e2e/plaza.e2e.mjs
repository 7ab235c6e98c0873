// Plaza's browser tests: the web app in headless chromium against a running Plaza (run.sh
// starts both). Each test runs in fresh browser contexts; any Content-Security-Policy
// violation fails it; a failing test leaves a screenshot of every page in e2e/failures/.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const require = createRequire(new URL("../tools/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const BASE = process.env.PLAZA_E2E_URL;
const ADMIN = { email: process.env.PLAZA_E2E_ADMIN_EMAIL, password: process.env.PLAZA_E2E_ADMIN_PASSWORD };
const PASSWORD = "a long passphrase nobody guesses";
const TIMEOUT = 10_000;
const run = Date.now().toString(36);

const browser = await chromium.launch({ executablePath: process.env.PLAZA_E2E_BROWSER, headless: true, args: ["--no-sandbox"] });
const tests = [];
const test = (name, fn) => tests.push({ name, fn });

// A test's browser: contexts it opens, every page's CSP violations, closed afterwards.
class Session {
  constructor() { this.contexts = []; this.pages = []; this.violations = []; }

  async page({ width = 1200 } = {}) {
    const context = await browser.newContext({ baseURL: BASE, viewport: { width, height: 800 } });
    context.setDefaultTimeout(TIMEOUT);
    // Reported two ways: the DOM event (init scripts run outside the page's CSP) and the
    // console message chromium logs for each blocked load.
    await context.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) =>
        console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`));
    });
    const page = await context.newPage();
    page.on("console", (m) => {
      if (/Content.Security.Policy|CSP violation/i.test(m.text())) this.violations.push(`${page.url()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => this.violations.push(`${page.url()}: uncaught ${e.message}`));
    this.contexts.push(context);
    this.pages.push(page);
    return page;
  }

  async close(failed, name) {
    if (failed) {
      mkdirSync("e2e/failures", { recursive: true });
      for (const [i, p] of this.pages.entries()) {
        await p.screenshot({ path: `e2e/failures/${name.replace(/\W+/g, "-")}-${i}.png`, fullPage: true }).catch(() => {});
      }
    }
    for (const c of this.contexts) await c.close();
  }
}

async function register(page, name, email) {
  await page.goto("/register");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel(/^Password/).fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.locator("#whoami").filter({ hasText: name }).waitFor();
}

async function login(page, email, password = PASSWORD) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("#whoami").filter({ hasText: "Signed in as" }).waitFor();
}

async function refreshCookie(page) {
  return (await page.context().cookies()).find((c) => c.name === "plaza_refresh");
}

test("a shopper registers, logs in, browses a category, searches and opens a product", async (s) => {
  const page = await s.page();
  const email = `ann.${run}@example.com`;
  await register(page, "Ann", email);
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("link", { name: "Log in" }).waitFor();

  // A wrong password is shown, not swallowed.
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").filter({ hasText: /password|credentials|email/i }).waitFor();

  await login(page, email);
  // The access token lives in memory only: a reload signs in again from the refresh cookie.
  await page.reload();
  await page.locator("#whoami").filter({ hasText: "Signed in as Ann" }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, "nothing in web storage");
  assert.ok(!(await page.evaluate(() => document.cookie)).includes("plaza_refresh"), "the refresh cookie is not readable by script");

  await page.getByRole("navigation", { name: "Categories" }).getByRole("link", { name: /^electronics/ }).click();
  await page.getByRole("heading", { level: 1, name: "electronics" }).waitFor();
  const first = page.locator(".products .card a").first();
  const name = await first.textContent();
  const word = name.split(" ").find((w) => w.length > 3) ?? name.split(" ")[0];

  await page.getByLabel("Search").fill(word);
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/q=/);
  const hit = page.locator(".products .card a", { hasText: word }).first();
  const hitName = await hit.textContent();
  await hit.click();
  await page.getByRole("heading", { level: 1, name: hitName }).waitFor();
  await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "electronics" }).waitFor();

  if (process.env.PLAZA_E2E_SCREENSHOT) {
    await page.goto("/c/electronics/");
    await page.locator(".products .card").first().waitFor();
    await page.screenshot({ path: process.env.PLAZA_E2E_SCREENSHOT });
  }
});

test("an admin's new product appears in another browser's live feed", async (s) => {
  const watcher = await s.page({ width: 390 }); // phone width
  await watcher.goto("/feed");
  await watcher.getByText("Live.").waitFor();

  const admin = await s.page();
  await login(admin, ADMIN.email, ADMIN.password);
  await admin.getByRole("link", { name: "New product" }).click();
  // Rule breaks are shown at their fields.
  await admin.getByLabel("Category", { exact: true }).fill("Not A Slug");
  await admin.getByRole("button", { name: "Create" }).click();
  await admin.locator("#f-name-err").filter({ hasText: /\S/ }).waitFor();
  await admin.locator("#f-category-err").filter({ hasText: /\S/ }).waitFor();
  assert.equal(await admin.getByLabel("Name").getAttribute("aria-invalid"), "true");

  const name = `Feed Lamp ${run}`;
  await admin.getByLabel("Name").fill(name);
  await admin.getByLabel("Price").fill("12.50");
  await admin.getByLabel("Category", { exact: true }).fill("home");
  await admin.getByLabel(/^Subcategory/).fill("lighting");
  await admin.getByLabel("Stock").fill("3");
  await admin.getByRole("button", { name: "Create" }).click();
  await admin.getByRole("heading", { level: 1, name }).waitFor();

  await watcher.locator(".feed li", { hasText: name }).waitFor();
  assert.ok((await watcher.locator(".feed li", { hasText: name }).textContent()).startsWith("New"));

  // Edit, then delete; both reach the feed too.
  await admin.getByRole("link", { name: "Edit" }).click();
  await admin.getByLabel("Stock").fill("7");
  await admin.getByRole("button", { name: "Save" }).click();
  await admin.getByText("7 in stock").waitFor();
  await watcher.locator(".feed li", { hasText: "Changed" }).filter({ hasText: name }).waitFor();
  admin.once("dialog", (d) => d.accept());
  await admin.getByRole("button", { name: "Delete" }).click();
  await admin.waitForURL(`${BASE}/`);
  await watcher.locator(".feed li", { hasText: "Removed" }).filter({ hasText: name }).waitFor();
});

test("two people chat, see each other, and one recovers what it missed offline", async (s) => {
  const ann = await s.page();
  const bob = await s.page({ width: 390 });
  await register(ann, "Ann Chat", `ann.chat.${run}@example.com`);
  await register(bob, "Bob Chat", `bob.chat.${run}@example.com`);
  await ann.goto("/chat/general");
  await bob.goto("/chat/general");
  for (const [p, other] of [[ann, "Bob Chat"], [bob, "Ann Chat"]]) {
    await p.locator(".members li", { hasText: other }).waitFor();
  }

  await ann.getByLabel("Message #general").fill(`hello from ann ${run}`);
  await ann.getByLabel("Message #general").press("Enter");
  await bob.getByLabel("Message #general").pressSequentially("hi", { delay: 20 });
  await ann.getByText("Bob Chat is typing…").waitFor();
  await bob.getByLabel("Message #general").fill(`hello from bob ${run}`);
  await bob.getByRole("button", { name: "Send" }).click();
  for (const p of [ann, bob]) {
    await p.locator(".messages li:not(.pending)", { hasText: `hello from ann ${run}` }).waitFor();
    await p.locator(".messages li:not(.pending)", { hasText: `hello from bob ${run}` }).waitFor();
  }

  await bob.context().setOffline(true);
  await bob.getByText(/^Offline/).waitFor();
  await ann.locator(".members li", { hasText: "Bob Chat" }).waitFor({ state: "detached" });
  for (const n of [1, 2]) {
    await ann.getByLabel("Message #general").fill(`missed ${n} ${run}`);
    await ann.getByLabel("Message #general").press("Enter");
    await ann.locator(".messages li:not(.pending)", { hasText: `missed ${n} ${run}` }).waitFor();
  }
  await bob.context().setOffline(false);
  await bob.getByText("Back online: 2 missed messages recovered.").waitFor();
  for (const n of [1, 2]) await bob.locator(".messages li", { hasText: `missed ${n} ${run}` }).waitFor();
  assert.equal(await bob.locator(".messages li", { hasText: `hello from ann ${run}` }).count(), 1, "no message shown twice");
  await ann.locator(".members li", { hasText: "Bob Chat" }).waitFor();
});

test("logging out removes the refresh cookie", async (s) => {
  const page = await s.page();
  await register(page, "Cleo", `cleo.${run}@example.com`);
  const c = await refreshCookie(page);
  assert.ok(c, "a refresh cookie after login");
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, "Strict");
  assert.equal(c.path, "/api/auth");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("link", { name: "Log in" }).waitFor();
  assert.equal(await refreshCookie(page), undefined, "the refresh cookie is gone");
  await page.reload();
  await page.getByRole("link", { name: "Log in" }).waitFor();
});

test("Swagger UI and the app's fallbacks are served from the binary", async (s) => {
  const page = await s.page();
  await page.goto("/swagger/");
  await page.locator(".swagger-ui .info .title", { hasText: "Plaza API" }).waitFor();
  await page.locator(".opblock-summary-path", { hasText: "/api/products/{id}" }).first().waitFor();
  const res = await page.goto("/no/such/page");
  assert.equal(res.status(), 200);
  await page.getByRole("heading", { name: "Not found" }).waitFor();
  const api = await page.request.get("/api/no-such-route");
  assert.equal(api.status(), 404);
  assert.equal(api.headers()["content-type"], "application/problem+json");
});

let failed = 0;
for (const t of tests) {
  const s = new Session();
  const start = Date.now();
  let err = null;
  try {
    await t.fn(s);
    assert.deepEqual(s.violations, [], "no CSP violation or uncaught error");
  } catch (e) {
    err = e;
  }
  await s.close(!!err, t.name);
  if (err) {
    failed++;
    console.log(`FAIL ${t.name} (${Date.now() - start} ms)\n${err.stack ?? err}\n  (screenshots in e2e/failures/)`);
  } else {
    console.log(`ok   ${t.name} (${Date.now() - start} ms)`);
  }
}
await browser.close();
process.exit(failed ? 1 : 0);
