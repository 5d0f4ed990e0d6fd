'use strict';
// getLoginState's cached view (index.js `cached()`): served only while the engine says a
// call would answer at once with the same session (cba_settled_until), dropped at every
// engine output but the timeout. Each test changes the session in one way the engine
// knows of — a refresh (by its timer, or due while JS could not run its timer), a
// sign-out, a sign-in, a replaced user — and checks getLoginState reflects the engine,
// never a stale token. Against the real server (`cloudbase-auth serve`, port 0).
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, until } = require('./helpers/server');

const cloud = require('..');

function memoryStorage() {
  const m = new Map();
  return { m, getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
}

let n = 0;
function client(server, { storage = memoryStorage(), env = `wasm-cache-${process.pid}-${++n}` } = {}) {
  const openid = `oCACHE${process.pid}x${n}`;
  cloud.init({ env, baseUrl: server.url, appid: server.appid, storage, login: () => server.mintCode(openid) });
  return { auth: cloud.auth(), storage, env, key: `cloudbase_auth_${env}` };
}

/** Blocks the thread for `ms` (so no timer of the facade can run meanwhile). */
function blockFor(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Two getLoginState calls with nothing in between answer with the same read-only state. */
async function assertCached(auth) {
  const a = await auth.getLoginState(), b = await auth.getLoginState();
  assert.equal(a, b, 'the same state object while nothing changed');
  if (a) {
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.credential) && Object.isFrozen(a.user), 'read-only');
  }
  return a;
}

describe('getLoginState cache, access tokens living 2 s (refresh due after ~1 s)', () => {
  let server;
  before(async () => { server = await startServer(['--access-token-ttl', '2s']); });
  after(() => server.stop());

  test('a refresh that came due while the facade could not run its timer is not skipped', async () => {
    const { auth } = client(server);
    const s = await auth.signInAnonymously();
    const cached = await assertCached(auth);
    assert.equal(cached.credential.accessToken, s.credential.accessToken);
    // Past the engine's refresh time, with the event loop held so the facade's refresh
    // timer cannot have fired: the view's deadline, not the timer, must send this call
    // to the engine, which refreshes before it answers.
    blockFor(1300);
    const st = await auth.getLoginState();
    assert.notEqual(st, cached);
    assert.equal(st.user.uid, s.user.uid);
    assert.notEqual(st.credential.accessToken, s.credential.accessToken, 'a refreshed token');
    assert.ok(st.credential.accessTokenExpire > s.credential.accessTokenExpire);
    assert.ok(st.credential.accessTokenExpire > Date.now() + 1000, 'not a token about to expire');
    await auth.signOut();
  });

  test("the engine's own refresh (timer) replaces the cached token", async () => {
    const { auth, storage, key } = client(server);
    const s = await auth.signInAnonymously();
    const cached = await assertCached(auth);
    const snap = storage.m.get(key);
    await until(() => storage.m.get(key) !== snap, 3000, 'a refreshed snapshot');
    const st = await assertCached(auth);
    assert.notEqual(st, cached);
    assert.notEqual(st.credential.accessToken, s.credential.accessToken);
    await auth.signOut();
  });

  test('for as long as it lasts, every answer carries an unexpired token', async () => {
    const { auth } = client(server);
    await auth.signInAnonymously();
    const end = Date.now() + 4500; // more than two lifetimes, so several refreshes
    const tokens = new Set();
    for (let i = 0; i < 10000 && Date.now() < end; i++) {
      const st = await auth.getLoginState();
      assert.ok(st.credential.accessTokenExpire > Date.now(), 'unexpired');
      tokens.add(st.credential.accessToken);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(tokens.size >= 3, `refreshed along the way (${tokens.size} tokens)`);
    await auth.signOut();
  });
});

describe('getLoginState cache, sessions that change', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(() => server.stop());

  test('a sign-out called before getLoginState is seen by it', async () => {
    const { auth } = client(server);
    await auth.signInAnonymously();
    await assertCached(auth);
    const out = auth.signOut();
    assert.equal(await auth.getLoginState(), null, 'called after signOut(), answered after it');
    assert.deepEqual(await out, { revoked: true });
    assert.equal(await assertCached(auth), null);
  });

  test('a WeChat sign-in over an anonymous session, and a new anonymous user after sign-out', async () => {
    const { auth } = client(server);
    const anon = await auth.signInAnonymously();
    await assertCached(auth);
    const wechat = await auth.signInWithWeChat();
    const st = await assertCached(auth);
    assert.equal(st.loginType, 'WECHAT');
    assert.equal(st.credential.accessToken, wechat.credential.accessToken);
    assert.notEqual(st.credential.accessToken, anon.credential.accessToken);
    await auth.signOut();
    const again = await auth.signInAnonymously();
    const st2 = await assertCached(auth);
    assert.equal(st2.loginType, 'ANONYMOUS');
    assert.equal(st2.user.uid, again.user.uid);
    assert.notEqual(st2.user.uid, anon.user.uid);
    await auth.signOut();
  });

  test('a profile fetched by getUserInfo shows in the next state', async () => {
    const { auth } = client(server);
    await auth.signInWithWeChat();
    const before = await assertCached(auth);
    const { user } = await auth.getUserInfo();
    const st = await auth.getLoginState();
    assert.deepEqual(st.user, user);
    assert.equal(st.user.openid, before.user.openid);
    await auth.signOut();
  });
});

describe('getLoginState cache, a refused anonymous session replaced by a new user', () => {
  let server;
  before(async () => { server = await startServer(['--access-token-ttl', '2s', '--refresh-grace', '0s']); });
  after(() => server.stop());

  test('the cached state of the refused user is never served again', async () => {
    const first = client(server);
    const s = await first.auth.signInAnonymously();
    const copied = new Map(first.storage.m);
    await new Promise((r) => setTimeout(r, 1100));
    await first.auth.getLoginState(); // rotates the refresh token: the copy's is now refused

    const storage = memoryStorage();
    for (const [k, v] of copied) storage.m.set(k, v);
    const copy = client(server, { storage, env: first.env });
    const states = [];
    copy.auth.onLoginStateChanged((st) => states.push(st));
    // The restored (old) token is still unexpired, but its refresh is due: no cache.
    await assert.rejects(copy.auth.getLoginState(), (e) => e.code === 'SESSION_EXPIRED');
    await until(() => states.some((st) => st && st.replaced), 5000, 'the replacement event');
    // (The new user's profile may still be on its way: the state is not settled yet.)
    const now = await copy.auth.getLoginState();
    assert.notEqual(now.user.uid, s.user.uid);
    assert.notEqual(now.credential.accessToken, s.credential.accessToken);
  });
});
