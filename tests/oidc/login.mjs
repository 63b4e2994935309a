// The person at the browser in the OpenID Connect tests: headless Chromium (Debian's
// `chromium`, driven by playwright-core) signs in at the provider's own pages.
//
//   node login.mjs URL USER PASSWORD [--code USER_CODE] [--until PREFIX] [--deny]
//                  [--timeout SECONDS]
//
// URL is an authorization URL (code flow), or the device flow's verification_uri (then
// --code USER_CODE is typed in) or verification_uri_complete. The script goes through the
// provider's pages: user code, device confirmation, login (USER and PASSWORD), consent
// ("Allow", or "Deny" with --deny), and stops when
//   - the browser is sent to the client's redirect URI: a navigation away from the
//     provider's origin carrying `code` or `error` (or any navigation to a URL starting with
//     PREFIX, with --until). The request is sent and answered (or refused) before the
//     script ends, so the test's loopback listener has it;
//   - the device flow's success page shows;
//   - something fails: the login page says the password is wrong, the provider shows an
//     error page, a user code is refused, time runs out (--timeout, default 60 s).
//
// It prints one JSON line: {"ok":true|false,"outcome":..., ...}, and exits 0 when ok, 1
// when the flow failed, 2 on bad arguments or when the browser cannot start. Outcomes:
//   redirected        ok: the redirect URI got `code` (fields url, params)
//   device_success    ok: the device flow's success page
//   redirect_error    the redirect URI got `error` (fields url, params, error)
//   login_failed      the provider refused the user name or password (field error)
//   user_code_failed  the provider refused the user code (field error)
//   provider_error    the provider's error page (fields error, error_description)
//   missing_code      the provider asks for a user code and --code was not given
//   timeout           no end in time (fields url, page)
//   unreachable       a page could not be loaded: the provider down (field error, net::ERR_…)
//   browser_error     the browser failed otherwise (field error)
//   browser_unavailable  Chromium did not start (exit code 2)
// Failures also have `url`, `page` (the visible text) and, when the environment variable
// SIGHTLINE_SCREENSHOTS names a directory, `screenshot` (a PNG there).
//
// Chromium: SIGHTLINE_CHROMIUM or /usr/bin/chromium, headless, with --no-sandbox (the tests
// run as root, and Chromium's sandbox refuses root).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const started = Date.now();
const args = process.argv.slice(2);
const positional = [];
const opts = { code: undefined, until: undefined, deny: false, timeout: 60 };
for (let i = 0; i < args.length; i += 1) {
  const a = args[i];
  if (a === '--code') opts.code = args[++i];
  else if (a === '--until') opts.until = args[++i];
  else if (a === '--timeout') opts.timeout = Number(args[++i]);
  else if (a === '--deny') opts.deny = true;
  else positional.push(a);
}
const [startUrl, user, password] = positional;
if (positional.length !== 3 || !(opts.timeout > 0)) {
  process.stderr.write('usage: node login.mjs URL USER PASSWORD [--code USER_CODE] [--until PREFIX] [--deny] [--timeout SECONDS]\n');
  process.exit(2);
}

const log = (msg) => process.stderr.write(`login: ${((Date.now() - started) / 1000).toFixed(2)}s ${msg}\n`);

function finish(result, browser) {
  const out = { ok: false, ...result, user, elapsed_ms: Date.now() - started };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  const close = browser ? browser.close().catch(() => {}) : Promise.resolve();
  return close.then(() => process.exit(out.ok ? 0 : (result.outcome === 'browser_unavailable' ? 2 : 1)));
}

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.SIGHTLINE_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
} catch (e) {
  await finish({ outcome: 'browser_unavailable', error: `cannot start chromium: ${e.message}` });
}
log(`chromium ${browser.version()} started`);

const context = await browser.newContext({ ignoreHTTPSErrors: false });
const page = await context.newPage();
page.setDefaultTimeout(opts.timeout * 1000);

// The redirect to the client: seen as a navigation request, whatever answers it (the test's
// listener may answer anything, or close the connection).
let providerOrigin = new URL(startUrl).origin;
let redirect; // { url, params, done: Promise }
function redirectParams(request) {
  const url = new URL(request.url());
  const params = Object.fromEntries(url.searchParams);
  if (request.method() === 'POST' && request.postData()) {
    Object.assign(params, Object.fromEntries(new URLSearchParams(request.postData())));
  }
  return params;
}
let redirectSeen;
const redirected = new Promise((resolve) => { redirectSeen = resolve; });
page.on('request', (request) => {
  if (redirect || !request.isNavigationRequest() || request.frame() !== page.mainFrame()) return;
  const url = new URL(request.url());
  const params = redirectParams(request);
  const hit = opts.until
    ? request.url().startsWith(opts.until)
    : url.origin !== providerOrigin && ('code' in params || 'error' in params);
  if (!hit) return;
  let settle;
  const done = new Promise((resolve) => { settle = resolve; });
  redirect = { url: request.url(), params, done, request };
  const onEnd = (r) => { if (r === request) settle(); };
  page.on('requestfinished', onEnd);
  page.on('requestfailed', onEnd);
  log(`redirected to ${request.url()}`);
  redirectSeen();
});

async function failure(outcome, fields = {}) {
  const out = { outcome, url: page.url(), ...fields };
  try {
    out.page = (await page.locator('body').innerText({ timeout: 2000 })).slice(0, 2000);
  } catch { /* no page */ }
  const dir = process.env.SIGHTLINE_SCREENSHOTS;
  if (dir) {
    try {
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `login-${user}-${outcome}-${Date.now()}.png`);
      await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
      out.screenshot = file;
    } catch (e) {
      out.screenshot_error = e.message;
    }
  }
  return out;
}

async function settleRedirect() {
  // let the request reach the listener and be answered or refused (bounded)
  await Promise.race([redirect.done, new Promise((r) => setTimeout(r, 10_000))]);
  const { params } = redirect;
  if ('error' in params) {
    return { outcome: 'redirect_error', url: redirect.url, params, error: params.error };
  }
  return { ok: true, outcome: 'redirected', url: redirect.url, params };
}

// Which provider page is showing: the <body id> of provider.mjs's pages.
async function pageId() {
  return page.evaluate(() => document.body?.id || '').catch(() => '');
}

async function errorText() {
  const e = page.locator('#error');
  return (await e.count()) ? (await e.innerText()).trim() : undefined;
}

const deadline = started + opts.timeout * 1000;
const steps = { login: 0, code: 0 };
let result;
try {
  const nav = page.goto(startUrl, { waitUntil: 'load' }).catch((e) => {
    if (!redirect) throw e;
  });
  await Promise.race([nav, redirected]);
  let lastUrl;
  while (!result) {
    if (redirect) {
      result = await settleRedirect();
      break;
    }
    if (Date.now() > deadline) {
      result = await failure('timeout');
      break;
    }
    await page.waitForLoadState('load').catch(() => {});
    const id = await pageId();
    const url = page.url();
    if (id && url !== lastUrl) log(`page ${id} at ${url}`);
    lastUrl = url;
    if (id) providerOrigin = new URL(url).origin;
    const after = async (click) => {
      // a click that submits a form: wait for the next document, or the redirect
      await Promise.race([
        Promise.all([page.waitForNavigation({ waitUntil: 'load' }).catch(() => {}), click()]),
        redirected,
      ]);
    };
    if (id === 'device-input') {
      const err = await errorText();
      if (err && steps.code > 0) {
        result = await failure('user_code_failed', { error: err });
      } else if (opts.code === undefined && !(await page.locator('[name=user_code]').inputValue())) {
        result = await failure('missing_code', { error: 'the provider asks for a user code: pass --code' });
      } else {
        steps.code += 1;
        if (opts.code !== undefined) await page.fill('[name=user_code]', opts.code);
        await after(() => page.click('#continue'));
      }
    } else if (id === 'device-confirm') {
      await after(() => page.click('#continue'));
    } else if (id === 'login') {
      const err = await errorText();
      if (err && steps.login > 0) {
        result = await failure('login_failed', { error: err });
      } else {
        steps.login += 1;
        await page.fill('#username', user);
        await page.fill('#password', password);
        await after(() => page.click('#sign-in'));
      }
    } else if (id === 'consent') {
      await after(() => page.click(opts.deny ? '#deny' : '#allow'));
    } else if (id === 'device-success') {
      result = { ok: true, outcome: 'device_success', url, message: (await page.locator('#success').innerText()).trim() };
    } else if (id === 'error-page') {
      const desc = page.locator('#error-description');
      result = await failure('provider_error', {
        error: await errorText(),
        error_description: (await desc.count()) ? (await desc.innerText()).trim() : undefined,
      });
    } else {
      // a page that is not the provider's (a relay's page in between) or still loading
      await Promise.race([redirected, page.waitForTimeout(200)]);
    }
  }
} catch (e) {
  const unreachable = /net::ERR_/.test(e.message);
  result = await failure(unreachable ? 'unreachable' : 'browser_error', { error: e.message });
}
await finish(result, browser);
