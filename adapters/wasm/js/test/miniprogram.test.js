'use strict';
// The Mini Program stand-in: the shipped files (cloudbase_auth.wasm, cloudbase-auth.min.js)
// in a code package with the CloudBase guide's example page, verbatim, under a fake `wx` (storage
// limits, wx.request over http, wx.login codes from the server's emulator, WXWebAssembly
// with package paths only) and without WebAssembly, TextEncoder, TextDecoder, fetch and
// crypto. Against the real server.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, until, APPID } = require('./helpers/server');
const { installFakeWx } = require('./helpers/fake-wx');

const JS = path.join(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures/miniprogram');
const ENV = 'mp-standin-1a2b';
const KEY = `cloudbase_auth_${ENV}`;

let server, root;

/** A Mini Program launch: fresh modules, app.js, onLaunch, a page (`opts.page`, default
 * the index page) loaded. */
function launch(opts = {}) {
  const wx = installFakeWx({ root, appid: APPID, mintCode: (openid) => server.mintCode(openid), ...opts });
  if (opts.storage) wx.storage = opts.storage;
  for (const k of Object.keys(require.cache)) if (k.startsWith(root)) delete require.cache[k];
  require(path.join(root, 'app.js'));
  wx.app.onLaunch();
  const name = opts.page || 'index';
  require(path.join(root, `pages/${name}/${name}.js`));
  const page = wx.pages[wx.pages.length - 1];
  return { wx, page };
}

/** Waits until every call made so far through wx.cloud.auth() has settled. */
const settled = () => globalThis.wx.cloud.auth().getLoginState().catch(() => {});

describe("Mini Program stand-in: the guide's example page on the shipped files", () => {
  before(async () => {
    server = await startServer();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cba-mp-'));
    fs.cpSync(FIXTURE, root, { recursive: true });
    fs.mkdirSync(path.join(root, 'cloudbase-auth'));
    for (const f of ['cloudbase_auth.wasm', 'cloudbase-auth.min.js']) {
      fs.copyFileSync(path.join(JS, f), path.join(root, 'cloudbase-auth', f));
    }
    fs.writeFileSync(path.join(root, 'config.js'),
      `module.exports = ${JSON.stringify({ env: ENV, baseUrl: server.url })}\n`);
  });
  after(async () => {
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('the page is the guide\'s, byte for byte, and the runtime has no browser globals', () => {
    const page = fs.readFileSync(path.join(FIXTURE, 'pages/index/index.js'), 'utf8');
    assert.ok(page.startsWith('// pages/index/index.js\nPage({\ndata: {\nisLoggedIn: false,'));
    assert.match(page, /async handleLogout\(\) \{\nconst auth = wx\.cloud\.auth\(\)\ntry \{\nawait auth\.signOut\(\)/);
    installFakeWx({ root: JS, appid: APPID, mintCode: () => Promise.reject(new Error('unused')) });
    for (const name of ['WebAssembly', 'TextEncoder', 'TextDecoder', 'fetch', 'crypto']) {
      assert.equal(typeof globalThis[name], 'undefined', name);
    }
  });

  test('onLoad → logged out; handleLogin → logged in; handleLogout → logged out', async () => {
    const { wx, page } = launch();
    // install() kept the Mini Program's own wx.cloud and called its init.
    assert.deepEqual(wx.nativeInit, [{ env: ENV, traceUser: true }]);
    assert.deepEqual(await globalThis.wx.cloud.callFunction({ name: 'x' }), { result: 'native callFunction' });
    assert.equal(typeof globalThis.wx.cloud.database, 'function');

    page.onLoad();
    await settled();
    assert.deepEqual(page.data, { isLoggedIn: false, userInfo: null });

    await page.handleLogin();
    await until(() => page.data.isLoggedIn, 5000, 'isLoggedIn');
    const user = page.data.userInfo;
    assert.match(user.uid, /^\d+$/);
    assert.equal(typeof user.nickName, 'string');
    assert.ok(wx.requests.every((r) => r.url.startsWith(server.url + '/')), 'every request went through wx.request');
    assert.ok(wx.requests.length >= 2);
    const stored = wx.storage.get(KEY);
    assert.equal(typeof stored, 'string', 'snapshot stored as a string (base64) under one key');
    assert.deepEqual([...wx.storage.keys()], [KEY]);

    await page.handleLogout();
    assert.deepEqual(page.data, { isLoggedIn: false, userInfo: null });
    assert.equal(await globalThis.wx.cloud.auth().getLoginState(), null);

    // And once more, leaving a session for the next launch.
    await page.handleLogin();
    await until(() => page.data.isLoggedIn, 5000, 'isLoggedIn again');
    assert.notEqual(page.data.userInfo.uid, user.uid, 'a new anonymous user after signing out');
  });

  test('a second launch starts logged in from storage, without a network request', async () => {
    const before = launch();
    before.page.onLoad();
    await before.page.handleLogin();
    await until(() => before.page.data.isLoggedIn, 5000, 'logged in');
    const uid = before.page.data.userInfo.uid;

    const { wx, page } = launch({ storage: before.wx.storage, shape: 'both' });
    page.onLoad();
    await until(() => page.data.isLoggedIn, 5000, 'warm start');
    assert.equal(page.data.userInfo.uid, uid);
    assert.deepEqual(wx.requests, [], 'the restored token was still valid: no request');
    // The token works on the server.
    const info = await globalThis.wx.cloud.auth().getUserInfo();
    assert.equal(info.user.uid, uid);
  });

  test('WeChat sign-in through wx.login and the appId from getAccountInfoSync', async () => {
    const { wx } = launch();
    wx.openid = 'oMINIPROGRAM000000000000001';
    const auth = globalThis.wx.cloud.auth();
    await auth.signOut();
    const s = await auth.signInWithWeChat();
    assert.equal(s.loginType, 'WECHAT');
    assert.equal(s.user.openid, wx.openid);
    const again = await auth.signInWithWeChat(); // a fresh code each time
    assert.equal(again.user.uid, s.user.uid);
    const { user } = await auth.getUserInfo();
    assert.equal(user.openid, wx.openid);
    await auth.signOut();
  });

  test('a failing wx.login is a typed error', async () => {
    launch({ mintCode: () => Promise.reject(new Error('no network')) });
    await assert.rejects(globalThis.wx.cloud.auth().signInWithWeChat(),
      (e) => e.code === 'WX_LOGIN_FAILED' && /no network/.test(e.message));
    assert.equal(await globalThis.wx.cloud.auth().getLoginState(), null);
  });

  test('a corrupted or foreign storage value starts logged out and is removed', async () => {
    for (const bad of ['garbage', { not: 'a string' }, 12345, 'QUJD']) {
      const storage = new Map([[KEY, bad]]);
      const { wx, page } = launch({ storage });
      page.onLoad();
      await settled();
      assert.deepEqual(page.data, { isLoggedIn: false, userInfo: null }, JSON.stringify(bad));
      assert.ok(!wx.storage.has(KEY), 'removed');
      await page.handleLogin();
      await until(() => page.data.isLoggedIn, 5000, 'login after corruption');
    }
  });

  test('the account page: a nickname set, shown after a relaunch; the account deleted everywhere', async () => {
    const { wx, page } = launch({ page: 'account' });
    page.onLoad();
    await settled();
    await page.handleLogin();
    await until(() => page.data.isLoggedIn, 5000, 'logged in');
    const uid = page.data.userInfo.uid;

    await page.handleNickname({ detail: { value: '小明' } });
    await until(() => page.data.userInfo.nickName === '小明', 5000, 'the nickname shown');
    assert.equal(page.data.userInfo.uid, uid);
    const patch = wx.requests.find((r) => r.url.endsWith('/auth/v1/user/profile'));
    assert.equal(patch.method, 'POST', 'wx.request has no PATCH: POST with the override');
    // A refused value leaves the page as it was (the page logs the readable message).
    await page.handleNickname({ detail: { value: '' } });
    assert.equal(page.data.userInfo.nickName, '小明');

    const copy = new Map(wx.storage); // the session as another launch would find it
    const again = launch({ page: 'account', storage: new Map(copy) });
    again.page.onLoad();
    await until(() => again.page.data.isLoggedIn, 5000, 'warm start');
    assert.equal(again.page.data.userInfo.nickName, '小明', 'the nickname came back from storage');

    await again.page.handleDeleteAccount();
    assert.deepEqual(again.page.data, { isLoggedIn: false, userInfo: null });
    assert.equal(await globalThis.wx.cloud.auth().getLoginState(), null);
    assert.ok(again.wx.requests.some((r) => r.url.endsWith('/auth/v1/user/me') && r.method === 'DELETE'));

    // The copy of the deleted session: the server refuses it at its first use.
    launch({ page: 'account', storage: new Map(copy) });
    const auth = globalThis.wx.cloud.auth();
    await assert.rejects(auth.getUserInfo(), (e) => e.code === 'SERVER_ERROR' || e.code === 'SESSION_EXPIRED');
    // Gone: an anonymous session is replaced by a new user (the facade's recovery rule),
    // never the deleted one.
    const now = await auth.getLoginState();
    assert.ok(now === null || now.user.uid !== uid, JSON.stringify(now && now.user));
  });

  test('the module imports nothing the facade does not give WXWebAssembly', () => {
    const { wx } = launch();
    return settled().then(() => {
      assert.equal(wx.imports.length, 1);
      const mod = new wx.WebAssembly.Module(fs.readFileSync(path.join(root, 'cloudbase-auth/cloudbase_auth.wasm')));
      const given = wx.imports[0];
      const missing = wx.WebAssembly.Module.imports(mod).filter((i) => !(given[i.module] && i.name in given[i.module]));
      assert.deepEqual(missing, []);
    });
  });

  test('only a package path loads the module', async () => {
    for (const wasm of ['../cloudbase-auth/cloudbase_auth.wasm', '/cloudbase-auth/missing.txt', 'https://x.example/a.wasm']) {
      launch();
      globalThis.wx.cloud.init({ env: ENV, wasm });
      await assert.rejects(globalThis.wx.cloud.auth().getLoginState(), undefined, wasm);
    }
  });
});
