// Swagger UI at /docs/ in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core; no browser is ever downloaded).
//
//   node tools/swagger-ui.mjs <base url> <integration token> [screenshot.png]
//
// Run by scripts/swagger-ui.sh against a live server seeded with
// `intake seed-demo`; the token is the demo integration's (every scope).
// Asserts, in order, and exits non-zero with a FAIL line on the first
// assertion that does not hold:
//   1. /docs/ loads: no failed request, no answer >= 400, no request to
//      anywhere but the server itself, no console error, no Swagger UI error;
//   2. the integrators' tags come first, `admin` and `operations` last;
//   3. Authorize: the bearer scheme takes the token, the dialog closes;
//   4. POST /v1/cases, Try it out with the default example body: 201;
//      GET /v1/me, Try it out: 200;
//   5. a full-page screenshot (after the 201).
// Nothing may fail in between either: every failed request and console
// error of the whole run is reported at the end.
import { rmSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [baseArg, token, screenshot = 'target/swagger-ui.png'] = process.argv.slice(2);
if (!baseArg || !token) {
  console.error('usage: node tools/swagger-ui.mjs <base url> <integration token> [screenshot.png]');
  process.exit(2);
}
const base = new URL(baseArg.endsWith('/') ? baseArg : `${baseArg}/`);
const failureShot = `${screenshot.replace(/\.png$/, '')}-failure.png`;
rmSync(failureShot, { force: true });
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
// Generous for one step, but the whole run stays well under a minute.
const STEP_TIMEOUT = Number(process.env.SWAGGER_UI_STEP_TIMEOUT_MS || 15000);
const RUN_TIMEOUT = Number(process.env.SWAGGER_UI_RUN_TIMEOUT_MS || 50000);

class Failure extends Error {}
const fail = (message) => {
  throw new Failure(message);
};
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const ok = (message) => console.log(`ok: ${message} [${elapsed()}]`);

// Everything that goes wrong in the page, whatever step it happens in.
const problems = [];
const report = (text) => problems.push(text);
const fromServer = (url) => {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.host === base.host;
};

let browser;
let failureNote = '';
// The step under way, named in a FAIL line that is not an assertion's own
// (a selector that never showed up, a browser that did not start).
let stage = 'starting Chromium';
const watchdog = setTimeout(() => {
  console.error(`FAIL: the run took longer than ${RUN_TIMEOUT} ms`);
  browser?.close().catch(() => {});
  process.exit(1);
}, RUN_TIMEOUT);

async function main() {
  browser = await chromium.launch({
    executablePath,
    timeout: STEP_TIMEOUT,
    // playwright-core already adds --no-sandbox, --disable-dev-shm-usage, --headless.
    args: ['--disable-gpu'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // No request leaves the server: anything else is reported and aborted.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (fromServer(url)) return route.continue();
    report(`request to somewhere else than ${base.host}: ${route.request().method()} ${url}`);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('requestfailed', (request) => {
    report(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      report(`${response.request().method()} ${response.url()} answered ${response.status()}`);
    }
  });
  page.on('console', (message) => {
    if (message.type() === 'error') {
      const where = message.location()?.url;
      report(`console error: ${message.text()}${where ? ` (${where})` : ''}`);
    }
  });
  page.on('pageerror', (error) => report(`uncaught error in the page: ${error.message}`));
  const noProblems = (step) => {
    if (problems.length) fail(`${step}:\n  ${problems.join('\n  ')}`);
  };

  try {
    await steps(page, noProblems);
  } catch (error) {
    // What the page looked like when it failed, next to the screenshot.
    await page.screenshot({ path: failureShot, fullPage: true, timeout: 5000 }).then(
      () => {
        failureNote = `the page at the failure: ${failureShot}`;
      },
      () => {},
    );
    throw error;
  }
}

async function steps(page, noProblems) {
  // The spec the page shows, for the names of its tags and its bearer scheme.
  stage = 'fetching /openapi.json';
  const specAnswer = await fetch(new URL('openapi.json', base));
  if (!specAnswer.ok) fail(`GET /openapi.json answered ${specAnswer.status}`);
  const spec = await specAnswer.json();

  // 1. /docs/ loads.
  stage = 'loading /docs/';
  const docs = new URL('docs/', base).href;
  const answer = await page.goto(docs, { waitUntil: 'load' });
  if (!answer || answer.status() !== 200) fail(`GET ${docs} answered ${answer?.status()}`);
  await page.locator('.swagger-ui .information-container .title').first().waitFor();
  await page.locator('.opblock-tag-section').first().waitFor();
  await page.waitForLoadState('networkidle');
  const errors = await page.locator('.swagger-ui .errors-wrapper').allInnerTexts();
  if (errors.length) fail(`Swagger UI shows errors:\n${errors.join('\n')}`);
  noProblems(`${docs} did not load cleanly`);
  ok(`${docs} loads (${await page.locator('.opblock').count()} operations), no failed request, no console error`);

  // 2. The tag sections' order in the page.
  stage = 'reading the tag order';
  const order = await page.locator('.opblock-tag-section h3.opblock-tag').evaluateAll((headers) =>
    headers.map((h) => h.getAttribute('data-tag')),
  );
  const last = ['admin', 'operations'];
  const integrators = order.filter((tag) => !last.includes(tag));
  const tail = order.slice(integrators.length);
  if (!last.every((tag) => order.includes(tag)) || integrators.length === 0) {
    fail(`tag sections in the page: [${order.join(', ')}]; expected the integrators' tags and ${last.join(', ')}`);
  }
  if (order.slice(0, integrators.length).some((tag) => last.includes(tag))) {
    fail(
      `tag sections in the page: [${order.join(', ')}]; the integrators' tags [${integrators.join(', ')}] ` +
        `must come first, ${last.join(' and ')} last (the spec's "tags" array, in that order, sets it)`,
    );
  }
  ok(`tags in the page: ${integrators.join(', ')}, then ${tail.join(', ')}`);

  // 3. Authorize with the bearer scheme.
  stage = 'Authorize';
  const schemes = Object.entries(spec.components?.securitySchemes ?? {});
  const bearer = schemes.find(([, s]) => s.type === 'http' && String(s.scheme).toLowerCase() === 'bearer');
  if (!bearer) fail(`the spec has no http bearer security scheme (schemes: ${schemes.map(([n]) => n).join(', ')})`);
  const scheme = bearer[0];
  await page.locator('.scheme-container .auth-wrapper button.authorize').click();
  const modal = page.locator('.dialog-ux .modal-ux');
  await modal.waitFor();
  const container = modal.locator('.auth-container').filter({
    has: page.locator('h4 code', { hasText: new RegExp(`^${scheme}$`) }),
  });
  await container.locator('input[aria-label="auth-bearer-value"]').fill(token);
  await container.locator('button.modal-btn.authorize').click();
  await container.locator('h6', { hasText: 'Authorized' }).waitFor();
  await modal.locator('button.btn-done').first().click();
  await modal.waitFor({ state: 'detached' });
  ok(`authorized with the "${scheme}" scheme, dialog closed`);

  // 4. Try it out: POST /v1/cases with its default example, then GET /v1/me.
  const created = await tryItOut(page, spec, 'post', '/v1/cases', 201);
  ok(`POST /v1/cases, default example body: ${created}`);
  const me = await tryItOut(page, spec, 'get', '/v1/me', 200);
  ok(`GET /v1/me: ${me}`);

  // 5. The screenshot.
  stage = 'the screenshot';
  await page.screenshot({ path: screenshot, fullPage: true });
  ok(`screenshot: ${screenshot}`);

  noProblems('failed requests or console errors during the run');
}

// Expands an operation, Try it out, Execute; returns the status shown,
// fails unless it is `expected`.
async function tryItOut(page, spec, method, path, expected) {
  stage = `Try it out on ${method.toUpperCase()} ${path}`;
  const operation = spec.paths?.[path]?.[method];
  if (!operation) fail(`the spec has no ${method.toUpperCase()} ${path}`);
  // Its tag's section open (it is unless docExpansion is "none").
  const tag = operation.tags?.[0] ?? 'default';
  const header = page.locator(`.opblock-tag-section h3.opblock-tag[data-tag="${tag}"]`);
  if ((await header.getAttribute('data-is-open')) === 'false') await header.click();
  const block = page
    .locator(`.opblock-tag-section:has(h3[data-tag="${tag}"]) .opblock.opblock-${method}`)
    .filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) })
    .first();
  await block.waitFor();
  if (!(await block.evaluate((el) => el.classList.contains('is-open')))) {
    await block.locator('.opblock-summary-path').click();
  }
  await block.locator('button.try-out__btn').click();
  const body = block.locator('textarea.body-param__text');
  let sent = '';
  if (await body.count()) {
    sent = await body.inputValue();
    if (!sent.trim()) fail(`${method.toUpperCase()} ${path}: the request body has no default example`);
  }
  await block.locator('button.execute').click();
  const status = block.locator('.live-responses-table .response .response-col_status');
  await status.waitFor();
  const shown = (await status.innerText()).trim();
  const code = Number.parseInt(shown, 10);
  if (code !== expected) {
    const answer = await block
      .locator('.live-responses-table .response .response-col_description pre')
      .first()
      .innerText()
      .catch(() => '');
    fail(
      `${method.toUpperCase()} ${path} in Swagger UI answered ${shown || '(nothing)'}, expected ${expected}` +
        (sent ? `\n  body sent (the default example):\n${indent(sent)}` : '') +
        (answer ? `\n  answer:\n${indent(answer.slice(0, 1500))}` : ''),
    );
  }
  return code;
}

const indent = (text) =>
  text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');

try {
  await main();
  console.log(`swagger-ui: all assertions hold (${elapsed()})`);
  process.exitCode = 0;
} catch (error) {
  console.error(error instanceof Failure ? `FAIL: ${error.message}` : `FAIL (${stage}): ${error.message || error}`);
  if (failureNote) console.error(`(${failureNote})`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await browser?.close().catch(() => {});
}
