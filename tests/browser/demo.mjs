// The README's "A session shared by five tasks" demo in a real browser:
// headless Chromium driven by playwright-core.
//
//   node tests/browser/demo.mjs http://127.0.0.1:PORT
//
// Profile A (a browser context) opens /set in one tab, then / in four more
// tabs at once, and every tab must see `bar`, served by at least two of the
// host's tasks; its connect.sid cookie must be HttpOnly, Path=/, expiring
// about 900 s ahead, and invisible to page scripts. Profile B, another context
// of the same browser, must see the not-set text and hold no cookie of A's.
//
// Left to itself a browser keeps one connection to the host alive and sends
// every tab's request down it, so one task would answer them all. Like the
// README's `curl` loop, the browser here is told to open a new connection for
// every request (each request says `Connection: close`), and new connections
// go to the tasks in turn: the tabs read, through other tasks, the session
// that /set stored through one.
//
// CHROMIUM names the browser (default /usr/bin/chromium, Debian's). Prints a
// one-line JSON summary on stdout and exits 0 when every check holds; prints
// what failed on stderr and exits 1 otherwise.

import { chromium } from 'playwright-core';

const NOT_SET = "Not set. Go to '/set' to set value.";
const SET_MESSAGE = "foo value set to 'bar'";
const TABS = 4;
const LAUNCH_TIMEOUT_MS = 30_000;
const GOTO_TIMEOUT_MS = 15_000;
// Past this the whole run fails, whatever it is waiting for.
const OVERALL_TIMEOUT_MS = 50_000;
// A new connection for every request, as `curl` makes (see the top).
const NEW_CONNECTIONS = { extraHTTPHeaders: { connection: 'close' } };

class CheckFailed extends Error {}

function check(condition, message) {
  if (!condition) {
    throw new CheckFailed(message);
  }
}

function fail(message) {
  process.stderr.write(`demo.mjs: FAILED: ${message}\n`);
  process.exit(1);
}

// Loads `path` in `page`: the response's parsed JSON, whether the browser
// sent a connect.sid cookie with the request, and the page's own text.
async function load(page, base, path) {
  const url = new URL(path, base).href;
  const response = await page.goto(url, { timeout: GOTO_TIMEOUT_MS, waitUntil: 'load' });
  check(response !== null, `GET ${path}: no response`);
  const text = await response.text();
  check(response.status() === 200, `GET ${path}: status ${response.status()}, body ${text}`);
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CheckFailed(`GET ${path}: the body is not JSON: ${text}`);
  }
  const cookieHeader = (await response.request().headerValue('cookie')) ?? '';
  // What a person sees: Chromium shows a JSON response as text.
  const shown = (await page.locator('body').innerText({ timeout: GOTO_TIMEOUT_MS })).trim();
  check(shown === text.trim(), `GET ${path}: the page shows ${JSON.stringify(shown)}, not the body ${text}`);
  return { json, sentSession: /(^|;\s*)connect\.sid=/.test(cookieHeader) };
}

async function main() {
  const base = process.argv[2];
  if (!base || !/^https?:\/\//.test(base)) {
    fail(`usage: node demo.mjs http://HOST:PORT (got ${JSON.stringify(base)})`);
  }
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

  const watchdog = setTimeout(
    () => fail(`the run took longer than ${OVERALL_TIMEOUT_MS / 1000} s`),
    OVERALL_TIMEOUT_MS,
  );
  watchdog.unref();

  let browser;
  try {
    try {
      browser = await chromium.launch({
        executablePath,
        headless: true,
        // CI runs as root, where Chromium's sandbox cannot start.
        args: ['--no-sandbox'],
        timeout: LAUNCH_TIMEOUT_MS,
      });
    } catch (e) {
      throw new CheckFailed(`cannot launch Chromium at ${executablePath}: ${e.message}`);
    }

    // Profile A: /set in one tab, then / in four more tabs of the same profile.
    const a = await browser.newContext(NEW_CONNECTIONS);
    a.setDefaultTimeout(GOTO_TIMEOUT_MS);
    a.setDefaultNavigationTimeout(GOTO_TIMEOUT_MS);
    const first = await a.newPage();
    const set = await load(first, base, '/set');
    check(
      typeof set.json.message === 'string' && set.json.message.includes(SET_MESSAGE),
      `/set answered ${JSON.stringify(set.json)}, not "${SET_MESSAGE}..."`,
    );
    check(!set.sentSession, '/set: the fresh profile already sent a connect.sid cookie');

    // The tabs load at once, each on a connection of its own (see the top).
    const tabs = [];
    for (let i = 0; i < TABS; i++) {
      tabs.push(await a.newPage());
    }
    const loaded = await Promise.all(tabs.map((tab) => load(tab, base, '/')));
    loaded.forEach(({ json, sentSession }, i) => {
      check(sentSession, `tab ${i + 2}: the browser sent no connect.sid cookie with GET /`);
      check(json.foo === 'bar', `tab ${i + 2}: foo is ${JSON.stringify(json.foo)}, not "bar" (${JSON.stringify(json)})`);
      check(Number.isInteger(json.thread), `tab ${i + 2}: no thread in ${JSON.stringify(json)}`);
    });
    const tabThreads = loaded.map(({ json }) => json.thread);
    const distinct = [...new Set(tabThreads)].sort((x, y) => x - y);
    check(distinct.length >= 2, `all ${TABS} tabs were served by one task: threads ${JSON.stringify(tabThreads)}`);

    // The cookie, as the browser stored it.
    const cookies = await a.cookies(base);
    const sid = cookies.find((c) => c.name === 'connect.sid');
    check(sid, `profile A holds no connect.sid cookie: ${JSON.stringify(cookies)}`);
    check(sid.httpOnly === true, `connect.sid is not HttpOnly: ${JSON.stringify(sid)}`);
    check(sid.path === '/', `connect.sid has path ${JSON.stringify(sid.path)}, not "/"`);
    const expiresIn = sid.expires - Date.now() / 1000;
    check(
      sid.expires > 0 && expiresIn >= 870 && expiresIn <= 901,
      `connect.sid expires ${expiresIn.toFixed(1)} s ahead, not about 900 s (${JSON.stringify(sid)})`,
    );

    // HttpOnly: page scripts cannot see it, though they can see (and set)
    // cookies of their own, so the check is not vacuous.
    const documentCookie = await first.evaluate(() => {
      document.cookie = 'visible=1; path=/';
      return document.cookie;
    });
    check(documentCookie.includes('visible=1'), `document.cookie does not work at all: ${JSON.stringify(documentCookie)}`);
    check(!documentCookie.includes('connect.sid'), `document.cookie shows the session: ${JSON.stringify(documentCookie)}`);

    // Profile B: another context of the same browser knows nothing of A's session.
    const b = await browser.newContext(NEW_CONNECTIONS);
    b.setDefaultTimeout(GOTO_TIMEOUT_MS);
    b.setDefaultNavigationTimeout(GOTO_TIMEOUT_MS);
    const other = await load(await b.newPage(), base, '/');
    check(!other.sentSession, 'profile B sent a connect.sid cookie');
    check(other.json.foo === NOT_SET, `profile B sees foo ${JSON.stringify(other.json.foo)}, not the not-set text`);
    const otherCookies = await b.cookies(base);
    check(
      !otherCookies.some((c) => c.name === 'connect.sid' || c.value === sid.value),
      `profile B holds A's cookie: ${JSON.stringify(otherCookies)}`,
    );

    const summary = {
      ok: true,
      browser: browser.version(),
      set: set.json,
      tabs: loaded.map(({ json }) => json),
      tab_threads: distinct,
      cookie: {
        name: sid.name,
        httpOnly: sid.httpOnly,
        path: sid.path,
        secure: sid.secure,
        expires_in_s: Math.round(expiresIn),
      },
      document_cookie: documentCookie,
      other_profile: { foo: other.json.foo, thread: other.json.thread, cookies: otherCookies.length },
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    if (browser) {
      await browser.close().catch(() => {});
    }
  }
}

main().then(
  () => process.exit(0),
  (e) => fail(e instanceof CheckFailed ? e.message : (e && e.stack) || String(e)),
);
