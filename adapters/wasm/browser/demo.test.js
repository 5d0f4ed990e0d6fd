'use strict';
// A real browser: Debian's headless Chromium (/usr/bin/chromium, driven by playwright-core,
// which never downloads a browser) runs the /demo/ page of `cloudbase-auth serve` — the
// facade (js/index.js) over fetch, localStorage, WebAssembly and crypto.getRandomValues —
// through anonymous sign-in, user info, a reload (warm start from localStorage), sign-out,
// WeChat sign-in and linking (wx.login stand-in: the server's emulator), a nickname set and
// shown after a reload, the account deleted (signed out; the old session's refresh token
// refused by the server), and saves
// target/demo-screenshot.png after the anonymous sign-in. Any page error, console error,
// failed request or HTTP error status fails the test.
//
// Server: $CLOUDBASE_AUTH_BIN, else target/debug/cloudbase-auth (scripts/test-browser.sh
// builds it). Browser: $CHROMIUM_PATH, else /usr/bin/chromium.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '../../..');
// Where cargo put it: $CARGO_TARGET_DIR (relative to the repository, where the scripts
// run cargo) or target/.
const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = process.env.CLOUDBASE_AUTH_BIN || path.join(TARGET, 'debug/cloudbase-auth');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SCREENSHOT = path.join(ROOT, 'target/demo-screenshot.png');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const STEP_MS = 15000; // any single wait
const OPENID = 'oDemoOpenid0000000000000001'; // the page's default wx.login stand-in openid

/** The refresh token inside a stored snapshot (base64 of `[version][postcard body][crc]`:
 * env, device id, state, then `Some(session)`: token type, access token, `Some(refresh)`). */
function refreshTokenOf(stored) {
  const b = Buffer.from(stored, 'base64');
  let p = 1;
  const varint = () => { let v = 0, s = 0, c; do { c = b[p++]; v += (c & 127) * 2 ** s; s += 7; } while (c & 128); return v; };
  const str = () => { const n = varint(); p += n; return b.toString('utf8', p - n, p); };
  str(); str(); varint();
  if (b[p++] !== 1) return null;
  str(); str();
  return b[p++] === 1 ? str() : null;
}

/** `cloudbase-auth serve` on 127.0.0.1:0 with a fresh data dir: { url, stop() }. */
function startServer() {
  assert.ok(fs.existsSync(BIN), `no server binary at ${BIN}: cargo build -p cloudbase-auth`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cba-browser-data-'));
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((done) => child.once('exit', done));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    let out = '';
    const fail = (why) => {
      clearTimeout(timer);
      stop().then(() => reject(new Error(`${why}\nserver stderr:\n${stderr}`)));
    };
    const timer = setTimeout(() => fail('the server did not start within 20 s'), 20000);
    const early = (code) => fail(`the server exited with ${code}`);
    child.once('exit', early);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /cloudbase-auth listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeListener('exit', early);
      resolve({ url: m[1].replace(/\/$/, ''), stop, stderr: () => stderr });
    });
  });
}

describe('the /demo/ page in headless Chromium', { timeout: 120000 }, () => {
  let server, context, page, profile;
  const problems = []; // page errors, console errors, failed requests, HTTP errors

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM}: apt-get install -y chromium`);
    server = await startServer();
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cba-browser-profile-'));
    // A persistent context on a fresh profile dir: `--user-data-dir` is ours, not Playwright's.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30000,
      viewport: { width: 1100, height: 720 },
    });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (e) => problems.push(`page error: ${e.stack || e}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  });

  after(async () => {
    if (context) await context.close().catch(() => {});
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    if (server) await server.stop();
  });

  const text = (sel) => page.textContent(sel).then((t) => t.trim());
  const state = () => page.getAttribute('#state', 'data-state');

  /** Clicks an operation's button and waits until the page has finished that call. */
  async function call(op) {
    const before = Number(await page.getAttribute('body', 'data-calls') || 0);
    await page.click(`#${op}`);
    await page.waitForSelector(`body[data-calls="${before + 1}"]`);
    return { result: await text('#result'), error: await text('#error') };
  }

  async function waitState(name) {
    await page.waitForSelector(`#state[data-state="${name}"]`);
  }

  test('anonymous sign-in → user info → reload → sign-out, then WeChat', async (t) => {
    const started = Date.now();
    const response = await page.goto(`${server.url}/demo`); // redirects to /demo/
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/demo/');
    await page.waitForSelector('body[data-ready]');
    assert.equal(await state(), 'SIGNED_OUT');
    assert.equal(await text('#origin'), server.url);

    // Signed out: the core refuses locally, the page shows the error.
    let r = await call('getUserInfo');
    assert.match(r.error, /^NOT_SIGNED_IN/);

    r = await call('signInAnonymously');
    assert.equal(r.error, '');
    await waitState('ANONYMOUS');
    const uid = await text('#uid');
    assert.match(uid, /^\d{6,}$/, 'a uid is shown');
    assert.equal(await text('#anonymous'), 'true');
    assert.equal(JSON.parse(r.result).user.uid, uid);
    assert.match(JSON.parse(r.result).credential.accessToken, /^.{12}… \(\d{3,} chars\)$/,
      'the access token is shortened on screen');

    r = await call('getUserInfo');
    assert.equal(r.error, '');
    assert.equal(JSON.parse(r.result).user.uid, uid);
    assert.equal(await text('#user-uid'), uid);
    assert.notEqual(await text('#user-nickName'), '—');
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    r = await call('getLoginState');
    assert.equal(JSON.parse(r.result).loginType, 'ANONYMOUS');
    assert.equal(JSON.parse(r.result).user.uid, uid);

    // Warm start: a reload restores the session from localStorage.
    const stored = await page.evaluate(() => localStorage.getItem('cloudbase_auth_demo'));
    assert.ok(stored && stored.length > 100, 'the session is in localStorage');
    await page.reload();
    await page.waitForSelector('body[data-ready]');
    await waitState('ANONYMOUS');
    assert.equal(await text('#uid'), uid, 'same user after a reload');

    r = await call('signOut');
    assert.equal(r.error, '');
    assert.deepEqual(JSON.parse(r.result), { revoked: true });
    await waitState('SIGNED_OUT');
    assert.equal(await text('#state'), 'signed out');
    assert.equal(await text('#uid'), '—');
    assert.equal(await text('#user-uid'), '—');
    const after = await page.evaluate(() => localStorage.getItem('cloudbase_auth_demo'));
    assert.ok(!after || after.length < stored.length / 2, 'no session left in localStorage');

    // WeChat through the page's wx.login stand-in (the server's emulator mints the code).
    r = await call('signInWithWeChat');
    assert.equal(r.error, '');
    await waitState('WECHAT');
    const wechatUid = await text('#uid');
    assert.match(wechatUid, /^\d{6,}$/);
    assert.notEqual(wechatUid, uid);
    r = await call('getUserInfo');
    assert.equal(JSON.parse(r.result).user.openid, OPENID);
    assert.equal(await text('#user-openid'), OPENID);
    await call('signOut');
    await waitState('SIGNED_OUT');

    // Linking keeps the anonymous uid.
    await call('signInAnonymously');
    await waitState('ANONYMOUS');
    const anonUid = await text('#uid');
    await page.fill('#openid', 'oDemoOpenidLinked000000002');
    r = await call('linkWithWeChat');
    assert.equal(r.error, '');
    await waitState('WECHAT');
    assert.equal(await text('#uid'), anonUid, 'linking keeps the uid');
    await call('signOut');
    await waitState('SIGNED_OUT');

    // The account: a nickname set, shown after a reload; then deleted.
    await call('signInAnonymously');
    await waitState('ANONYMOUS');
    const accountUid = await text('#uid');
    await page.fill('#nickName', '小明 Ming');
    r = await call('update');
    assert.equal(r.error, '');
    await page.waitForFunction(() => document.getElementById('user-nickName').textContent === '小明 Ming');
    await page.reload();
    await page.waitForSelector('body[data-ready]');
    await waitState('ANONYMOUS');
    assert.equal(await text('#uid'), accountUid);
    assert.equal(await text('#user-nickName'), '小明 Ming', 'the nickname after a reload');
    const session = await page.evaluate(() => localStorage.getItem('cloudbase_auth_demo'));
    const refreshToken = refreshTokenOf(session);
    assert.ok(refreshToken && refreshToken.length > 10, 'a refresh token in the stored session');

    r = await call('deleteMe');
    assert.equal(r.error, '');
    await waitState('SIGNED_OUT');
    assert.equal(await text('#uid'), '—');
    assert.equal(await text('#user-nickName'), '—');
    const gone = await page.evaluate(() => localStorage.getItem('cloudbase_auth_demo'));
    assert.ok(!gone || refreshTokenOf(gone) === null, 'no session left in localStorage');
    // The old session is refused by the server: its refresh token no longer refreshes.
    const refused = await fetch(`${server.url}/auth/v1/token?client_id=demo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'demo', client_secret: '', grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
    assert.equal(refused.status, 400);
    assert.equal((await refused.json()).error, 'invalid_grant');
    // Signed out, the nickname button gets the typed error on the page.
    r = await call('update');
    assert.match(r.error, /^NOT_SIGNED_IN/);

    assert.deepEqual(problems, [], 'no page errors, console errors or failed requests');
    t.diagnostic(`browser flow: ${Date.now() - started} ms; screenshot ${path.relative(ROOT, SCREENSHOT)}`);
  });
});
