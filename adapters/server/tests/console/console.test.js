'use strict';
// The emulator console in a real browser: Debian's headless Chromium (/usr/bin/chromium,
// driven by playwright-core, which never downloads a browser) opens the /console/ page of
// `cloudbase-auth serve` at the URL the server prints, takes the admin token once, and
// steers the server while the official @cloudbase/js-sdk signs in from a simulated Mini
// Program (the stand-in `wx` of ../js-sdk/fake-wx.js):
//   an SDK sign-in appears in the list without a reload → search → disable (the SDK's
//   refresh fails with `user_blocked`) → enable (it works again) → revoke all sessions
//   (the SDK's refresh is refused) → mint a wx.login code in the console and sign in
//   with it from the Mini Program (the exchange is listed) → export to a file → reset →
//   import the file — and saves target/console-screenshot.png with the restored list.
// Any page error, console error, failed request or HTTP error status fails the test.
//
// Server: $CLOUDBASE_AUTH_BIN, else target/debug/cloudbase-auth (scripts/test-console.sh
// builds it). Browser: $CHROMIUM_PATH, else /usr/bin/chromium.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { installFakeWx } = require('../js-sdk/fake-wx');

const ROOT = path.resolve(__dirname, '../../../..');
const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = process.env.CLOUDBASE_AUTH_BIN || path.join(TARGET, 'debug/cloudbase-auth');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SCREENSHOT = path.join(ROOT, 'target/console-screenshot.png');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const STEP_MS = 15000; // any single wait
const ENV = 'console-test-4d5e6f';
const APPID = 'wx0123456789abcdef';
const OPENID = `oConsole-${process.pid}`;
// The admin token this run gives the server (through the environment, never argv).
const ADMIN_TOKEN = crypto.randomBytes(24).toString('base64url');

/** `cloudbase-auth serve` on 127.0.0.1:0 with a fresh data dir: { url, consoleUrl, stop() }. */
function startServer() {
  assert.ok(fs.existsSync(BIN), `no server binary at ${BIN}: cargo build -p cloudbase-auth`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cba-console-data-'));
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: 'info', CLOUDBASE_AUTH_ADMIN_TOKEN: ADMIN_TOKEN } });
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
      const listening = /cloudbase-auth listening on (http:\/\/\S+)/.exec(out);
      const printed = /^console: (http:\/\/\S+)$/m.exec(out);
      if (!listening || !printed) return;
      clearTimeout(timer);
      child.removeListener('exit', early);
      assert.ok(!out.includes(ADMIN_TOKEN), 'a token from the environment is not printed');
      resolve({ url: listening[1].replace(/\/$/, ''), consoleUrl: printed[1], stop, stderr: () => stderr });
    });
  });
}

/** A JSON request straight to the server (outside the SDK and the page). */
function call(origin, method, pathAndQuery, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(new URL(pathAndQuery, origin), { method, timeout: 10000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null });
      });
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

describe('the /console/ page in headless Chromium', { timeout: 180000 }, () => {
  let server, context, page, profile, downloads, fake, auth;
  let nextCode = null; // what the Mini Program's wx.login yields: a code minted in the console
  const problems = [];

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM}: apt-get install -y chromium`);
    server = await startServer();
    const port = new URL(server.url).port;
    fake = installFakeWx({
      appId: APPID,
      origin: server.url,
      mintCode: async () => {
        if (!nextCode) throw new Error('no code minted in the console yet');
        const code = nextCode;
        nextCode = null;
        return code;
      },
    });
    const pkgDir = path.dirname(path.dirname(require.resolve('@cloudbase/js-sdk')));
    const cloudbase = require(path.join(pkgDir, 'miniprogram_dist', 'index.js'));
    const app = cloudbase.init({ env: ENV });
    app.registerEndPointWithKey({ key: 'CLOUD_API', url: `//127.0.0.1:${port}`, protocol: 'http' });
    auth = app.auth({ persistence: 'local' });

    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cba-console-profile-'));
    downloads = fs.mkdtempSync(path.join(os.tmpdir(), 'cba-console-downloads-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30000,
      viewport: { width: 1280, height: 900 }, acceptDownloads: true, downloadsPath: downloads,
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
    for (const dir of [profile, downloads]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (server) await server.stop();
  });

  const text = (sel) => page.textContent(sel).then((t) => t.trim());
  const row = (uid) => `#users tbody tr[data-uid="${uid}"]`;
  const rowCount = () => page.locator('#users tbody tr').count();
  const sdkUid = () => JSON.parse(fake.stored(`credentials_${ENV}`)).sub;

  async function waitStatus(pattern) {
    await page.waitForFunction((source) => new RegExp(source).test(document.getElementById('status').textContent),
      pattern.source);
  }

  /** The SDK's forced refresh: the error it rejects with, or null. */
  async function sdkRefreshError() {
    try {
      await auth.refreshTokenForce();
      return null;
    } catch (e) {
      return e;
    }
  }

  test('token, live list, search, disable/enable, revoke, WeChat code, export/reset/import', async (t) => {
    const started = Date.now();
    assert.equal(server.consoleUrl, `${server.url}/console/`);
    const response = await page.goto(server.consoleUrl);
    assert.equal(response.status(), 200);
    const csp = response.headers()['content-security-policy'];
    assert.match(csp, /script-src 'self';/);
    assert.doesNotMatch(csp, /unsafe/);
    // The token is asked for once, kept in sessionStorage, survives a reload.
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token-input', ADMIN_TOKEN);
    await page.click('#token-form button[type=submit]');
    await page.waitForSelector('#app:not([hidden])');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('cloudbase-auth-admin-token')), ADMIN_TOKEN);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
    await page.reload();
    await page.waitForSelector('#app:not([hidden])');
    assert.ok(await page.isHidden('#login'), 'no second prompt after a reload');
    await waitStatus(/connected/);
    assert.equal(await rowCount(), 0);

    // An SDK sign-in shows up without a reload (the page polls).
    const signedIn = await auth.signInAnonymously();
    assert.equal(signedIn.error, null, signedIn.error && signedIn.error.message);
    const uid = sdkUid();
    await page.waitForSelector(row(uid));
    assert.equal(await text(`${row(uid)} td.kind`), 'anonymous');
    // Two more users (plain HTTP sign-ins) so the list has something to search through.
    for (let i = 0; i < 2; i += 1) {
      const other = await call(server.url, 'POST', `/auth/v1/signin/anonymously?client_id=${ENV}`, {});
      assert.equal(other.status, 200);
    }
    await page.waitForFunction(() => document.querySelectorAll('#users tbody tr').length === 3);

    // Search by uid prefix.
    await page.fill('#search', uid.slice(0, 10));
    await page.click('#search-form button[type=submit]');
    await waitStatus(/search:/);
    await page.waitForFunction(() => document.querySelectorAll('#users tbody tr').length === 1);
    assert.ok(await page.isVisible(row(uid)));

    // One user: its live session with the SDK's device id.
    await page.click(row(uid));
    await page.waitForSelector('#user-card:not([hidden])');
    assert.equal(await text('#detail-uid'), uid);
    await page.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 1);
    assert.match(await text('#sessions tbody tr td:nth-child(2)'), /^[0-9a-f]{32}$/, 'the device id the SDK sent');

    // Disable: the SDK's refresh is refused with the disabled-account error.
    await page.click('#disable');
    await waitStatus(/disabled$/);
    assert.equal(await text(`${row(uid)} td.state`), 'disabled');
    const blocked = await sdkRefreshError();
    assert.ok(blocked, 'refresh of a disabled user fails');
    assert.equal(blocked.error, 'user_blocked', `SDK error: ${JSON.stringify(blocked)}`);
    t.diagnostic(`SDK refresh while disabled: ${JSON.stringify({ error: blocked.error, error_code: blocked.error_code })}`);

    // Enable: it works again (the refused refresh did not rotate the token).
    await page.click('#enable');
    await waitStatus(/enabled$/);
    assert.equal(await text(`${row(uid)} td.state`), 'active');
    assert.equal(await sdkRefreshError(), null, 'refresh works once enabled');

    // Revoke every session: the SDK's refresh token is refused.
    await page.click('#revoke');
    await waitStatus(/1 session\(s\) revoked/);
    await page.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 0);
    const revoked = await sdkRefreshError();
    assert.ok(revoked, 'refresh after revoke fails');

    // WeChat: a code minted in the console signs in from the Mini Program.
    await page.click('#search-clear');
    await page.fill('#mint-appid', APPID);
    await page.fill('#mint-openid', OPENID);
    await page.click('#mint-form button[type=submit]');
    await waitStatus(/code minted/);
    nextCode = await text('#minted-code');
    assert.match(nextCode, /^[A-Za-z0-9_-]{16,}$/);
    assert.equal(await text('#minted-openid'), OPENID);
    const wechat = await auth.signInWithOpenId({ useWxCloud: false });
    assert.equal(wechat.error, null, wechat.error && wechat.error.message);
    assert.deepEqual(fake.logins.length, 1, 'wx.login ran once');
    const wxUid = sdkUid();
    await page.waitForSelector(row(wxUid));
    assert.equal(await text(`${row(wxUid)} td.kind`), 'WeChat');
    assert.equal(await text(`${row(wxUid)} td.openids`), OPENID);
    await page.waitForFunction((openid) => [...document.querySelectorAll('#exchanges tbody tr')]
      .some((r) => r.cells[2].textContent === openid && r.cells[3].textContent === 'ok'), OPENID);
    // A nickname, set in the console.
    await page.click(row(wxUid));
    await page.waitForFunction((u) => document.getElementById('detail-uid').textContent === u, wxUid);
    await page.fill('#profile-name', 'Console Tester');
    await page.click('#profile-form button[type=submit]');
    await waitStatus(/profile saved/);
    await page.waitForFunction((u) => document.querySelector(`#users tbody tr[data-uid="${u}"] td.nickname`)
      .textContent === 'Console Tester', wxUid);

    // Export to a file.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
    const file = path.join(downloads, download.suggestedFilename());
    await download.saveAs(file);
    const exported = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(exported.format, 'cloudbase-auth-users');
    assert.equal(exported.users.length, 4);
    assert.ok(exported.users.some((u) => u.uid === wxUid && u.name === 'Console Tester'));
    assert.ok(!fs.readFileSync(file, 'utf8').includes(ADMIN_TOKEN));

    // Reset (after a confirmation), then import the file.
    await page.click('#reset');
    await page.waitForSelector('#reset-confirm:not([hidden])');
    assert.equal(await rowCount(), 4, 'nothing deleted before the confirmation');
    await page.click('#reset-yes');
    await waitStatus(/everything deleted/);
    await page.waitForSelector('#users-empty:not([hidden])');
    assert.equal(await rowCount(), 0);
    await page.setInputFiles('#import-file', file);
    await waitStatus(/imported 4 users/);
    await page.waitForFunction(() => document.querySelectorAll('#users tbody tr').length === 4);
    assert.equal(await text(`${row(wxUid)} td.nickname`), 'Console Tester');
    assert.ok(await page.isHidden('#reset-confirm'));
    // The screenshot shows the restored list with the WeChat user open.
    await page.click(row(wxUid));
    await page.waitForFunction((u) => document.getElementById('detail-uid').textContent === u, wxUid);
    await page.waitForFunction((openid) => [...document.querySelectorAll('#identities tbody tr')]
      .some((r) => r.cells[1].textContent === openid), OPENID);

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.diagnostic(`screenshot: ${SCREENSHOT}; whole flow ${Date.now() - started} ms`);
    assert.deepEqual(problems, []);
    // The token never reached the server's log.
    assert.ok(!server.stderr().includes(ADMIN_TOKEN), 'the admin token is not logged');
  });
});
