'use strict';
// The facade (index.js, Node route: fetch, WebAssembly, crypto) against the real server,
// `cloudbase-auth serve` on 127.0.0.1.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, until } = require('./helpers/server');

const cloud = require('..');

/** A Map-backed storage that outlives clients (a warm start reuses it). */
function memoryStorage() {
  const m = new Map();
  return { m, getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
}

let envCounter = 0;
/** A client on `server` with its own env id (so tests do not share sessions). */
/** `o.openid` and `o.login` (a wx.login stand-in) may be changed later; init copies the rest. */
function client(server, { storage = memoryStorage(), env = `wasm-facade-${process.pid}-${++envCounter}`, appid = server.appid } = {}) {
  const o = { openid: `oFACADE${envCounter}`, login: null };
  cloud.init({
    env, baseUrl: server.url, appid, storage,
    login: () => (o.login ? o.login() : server.mintCode(o.openid)),
  });
  return { auth: cloud.auth(), storage, o, env, key: `cloudbase_auth_${env}` };
}

/** Records onLoginStateChanged calls as 'NONE' / loginType. */
function record(auth) {
  const seen = [];
  const off = auth.onLoginStateChanged((s) => seen.push(s ? `${s.loginType}:${s.user.uid}` : 'NONE'));
  return { seen, off };
}

describe('facade against cloudbase-auth serve', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(() => server.stop());

  test('auth() before init() is a typed error', () => {
    const file = require.resolve('..'), saved = require.cache[file];
    delete require.cache[file];
    const fresh = require('..');
    require.cache[file] = saved;
    assert.throws(() => fresh.auth(), (e) => e instanceof fresh.AuthError && e.code === 'NOT_INITIALIZED');
  });

  test('anonymous sign-in, user info, login state, events', async () => {
    const { auth } = client(server);
    const ev = record(auth);
    assert.equal(await auth.getLoginState(), null);
    await until(() => ev.seen.length === 1, 2000, 'the first event');
    assert.deepEqual(ev.seen, ['NONE'], 'fires with the current state first');

    const s = await auth.signInAnonymously();
    assert.equal(s.loginType, 'ANONYMOUS');
    assert.equal(s.isAnonymousAuth, true);
    assert.match(s.user.uid, /^\d+$/);
    assert.equal(s.credential.tokenType, 'Bearer');
    assert.ok(s.credential.accessToken.length > 100);
    assert.ok(s.credential.accessTokenExpire > Date.now() + 3600e3);

    const again = await auth.signInAnonymously();
    assert.equal(again.user.uid, s.user.uid, 'an anonymous session is reused');
    const st = await auth.getLoginState();
    assert.equal(st.user.uid, s.user.uid);
    assert.equal(st.credential.accessToken, s.credential.accessToken);

    const info = await auth.getUserInfo();
    assert.equal(info.user.uid, s.user.uid);
    assert.equal(typeof info.user.nickName, 'string');
    assert.equal(typeof info.user.avatarUrl, 'string');
    assert.ok(!('openid' in info.user), 'no WeChat identity yet');

    // Concurrent calls share the engine's single request in flight.
    const all = await Promise.all([auth.getLoginState(), auth.getUserInfo(), auth.getLoginState(), auth.getUserInfo()]);
    assert.ok(all.every((r) => (r.user || r).uid === s.user.uid || r.user.uid === s.user.uid));

    assert.deepEqual(ev.seen, ['NONE', `ANONYMOUS:${s.user.uid}`]);
    ev.off();
    await auth.signOut();
    assert.equal(ev.seen.length, 2, 'no events after unsubscribing');
  });

  test('link WeChat to the anonymous user, then WeChat sign-in finds the same user', async () => {
    const { auth, o } = client(server);
    const ev = record(auth);
    await assert.rejects(auth.linkWithWeChat(), (e) => e.code === 'NOT_ANONYMOUS');
    const anon = await auth.signInAnonymously();
    const linked = await auth.linkWithWeChat();
    assert.equal(linked.loginType, 'WECHAT');
    assert.equal(linked.isAnonymousAuth, false);
    assert.equal(linked.user.uid, anon.user.uid, 'linking keeps the uid');
    assert.equal(linked.user.openid, o.openid);
    const info = await auth.getUserInfo();
    assert.equal(info.user.openid, o.openid);
    await assert.rejects(auth.linkWithWeChat(), (e) => e.code === 'NOT_ANONYMOUS');

    const out = await auth.signOut();
    assert.deepEqual(out, { revoked: true });
    assert.equal(await auth.getLoginState(), null);
    await assert.rejects(auth.getUserInfo(), (e) => e.code === 'NOT_SIGNED_IN');

    const wx = await auth.signInWithWeChat();
    assert.equal(wx.loginType, 'WECHAT');
    assert.equal(wx.user.uid, anon.user.uid, 'the openid belongs to the linked user');
    assert.equal(wx.user.openid, o.openid);

    // Another openid is another user; anonymous sign-in replaces a WeChat session.
    o.openid = `${o.openid}b`;
    const other = await auth.signInWithWeChat();
    assert.notEqual(other.user.uid, anon.user.uid);
    const anon2 = await auth.signInAnonymously();
    assert.equal(anon2.loginType, 'ANONYMOUS');
    assert.notEqual(anon2.user.uid, other.user.uid);
    assert.deepEqual(ev.seen.map((x) => x.split(':')[0]),
      ['NONE', 'ANONYMOUS', 'WECHAT', 'NONE', 'WECHAT', 'WECHAT', 'ANONYMOUS']);
    await auth.signOut();
  });

  test('server errors are typed: a used or unknown wx.login code', async () => {
    const code = await server.mintCode('oUSEDONCE');
    const { auth, o } = client(server);
    let n = 0;
    o.login = () => Promise.resolve(n++ < 2 ? code : 'not-a-code');
    const first = await auth.signInWithWeChat();
    assert.equal(first.loginType, 'WECHAT');
    assert.equal(first.user.openid, 'oUSEDONCE');
    await auth.signOut();
    for (let i = 0; i < 2; i++) { // the same code again, then an unknown one
      await assert.rejects(auth.signInWithWeChat(), (e) => {
        assert.equal(e.code, 'SERVER_ERROR');
        assert.ok(e.status >= 400 && e.status < 500, String(e.status));
        assert.equal(typeof e.errorCode, 'number');
        return e instanceof cloud.AuthError;
      });
    }
    assert.equal(await auth.getLoginState(), null);
  });

  test('warm start: a second init restores the session from storage', async () => {
    const first = client(server);
    const s = await first.auth.signInAnonymously();
    const { user } = await first.auth.getUserInfo();
    const stored = first.storage.m.get(first.key);
    assert.match(stored, /^[A-Za-z0-9+/]+=*$/, 'the snapshot is stored as base64 under one key');
    assert.equal(Buffer.from(stored, 'base64').toString('base64'), stored, 'standard base64, padded');
    assert.deepEqual([...first.storage.m.keys()], [first.key]);

    const second = client(server, { storage: first.storage, env: first.env });
    const ev = record(second.auth);
    const st = await second.auth.getLoginState();
    assert.equal(st.user.uid, s.user.uid, 'restored without signing in again');
    assert.equal(st.credential.accessToken, s.credential.accessToken);
    // The data; each client's users have its own prototype (their update() goes to it).
    assert.deepEqual({ ...st.user }, { ...user }, 'with the cached profile');
    await until(() => ev.seen.length >= 1, 2000, 'the first event');
    assert.deepEqual(ev.seen, [`ANONYMOUS:${s.user.uid}`]);
    const info = await second.auth.getUserInfo();
    assert.equal(info.user.uid, s.user.uid, 'the restored token works on the server');
    // The old client was replaced.
    await assert.rejects(first.auth.getLoginState(), (e) => e.code === 'CLOSED');

    // Another env id does not see this session.
    const other = client(server, { storage: first.storage });
    assert.equal(await other.auth.getLoginState(), null);
  });

  test('a corrupted storage value signs out and is cleared', async () => {
    const good = client(server);
    await good.auth.signInAnonymously();
    const snap = good.storage.m.get(good.key);
    const flipped = Buffer.from(snap, 'base64');
    flipped[10] ^= 0x55;
    // Not base64, damaged, cut, too long; and values that are not even text (no bytes).
    for (const bad of ['not base64 !!', '', 'AAAA', flipped.toString('base64'), snap.slice(0, 20), 'x'.repeat(40000),
      '%%%', 'ab cd', '中文', 42, null, undefined, { a: 1 }, ['x']]) {
      const storage = memoryStorage();
      storage.m.set(good.key, bad);
      const c = client(server, { storage, env: good.env });
      const ev = record(c.auth);
      assert.equal(await c.auth.getLoginState(), null, String(JSON.stringify(bad)).slice(0, 30));
      if (bad) assert.ok(!storage.m.has(c.key), 'the bad value was removed');
      await until(() => ev.seen.length === 1, 2000, 'the first event');
      assert.deepEqual(ev.seen, ['NONE']);
      const s = await c.auth.signInAnonymously();
      assert.equal(s.loginType, 'ANONYMOUS', 'signing in works afterwards');
      assert.ok(storage.m.get(c.key).length > 100);
    }
    // A storage that throws is survivable too.
    const broken = { getItem() { throw new Error('boom'); }, setItem() { throw new Error('full'); }, removeItem() {} };
    const c = client(server, { storage: broken });
    assert.equal((await c.auth.signInAnonymously()).loginType, 'ANONYMOUS');
  });

  test('a second init() rejects calls in flight; a throwing listener breaks nothing', async () => {
    const first = client(server);
    first.auth.onLoginStateChanged(() => { throw new Error('listener bug'); });
    // The facade rethrows a listener's exception from a timer: catch it there.
    const errors = [], realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = (fn, ms) => realSetTimeout(() => {
      try { fn(); } catch (e) { errors.push(e.message); }
    }, ms);
    try {
      const s = await first.auth.signInAnonymously();
      assert.equal(s.loginType, 'ANONYMOUS');
      await new Promise((r) => realSetTimeout(r, 50));
      assert.deepEqual(errors, ['listener bug', 'listener bug'], 'reported, once per call');
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    const inflight = first.auth.getUserInfo();
    client(server);
    await assert.rejects(inflight, (e) => e.code === 'CLOSED');
    await assert.rejects(first.auth.getLoginState(), (e) => e.code === 'CLOSED');
  });

  test('invalid env ids and inputs are typed errors', async () => {
    cloud.init({ env: 'bad env!', baseUrl: server.url });
    await assert.rejects(cloud.auth().getLoginState(), (e) => e.code === 'INVALID_ARGUMENT' && e.field === 'env');
    const c = client(server);
    c.o.login = () => Promise.resolve('has space');
    await assert.rejects(c.auth.signInWithWeChat(), (e) => e.code === 'INVALID_ARGUMENT' && e.field === 'code');
    c.o.login = () => Promise.resolve('x'.repeat(600));
    await assert.rejects(c.auth.signInWithWeChat(), (e) => e.code === 'INPUT_TOO_LONG' && e.field === 'code');
    const bad = client(server, { appid: 'wx/bad' });
    await assert.rejects(bad.auth.signInWithWeChat(), (e) => e.code === 'INVALID_ARGUMENT' && e.field === 'appid');
    cloud.init({ env: 'no-login-given', baseUrl: server.url });
    await assert.rejects(cloud.auth().signInWithWeChat(), (e) => e.code === 'NO_WX_LOGIN');
  });
});

describe('expiry-driven refresh (access tokens live 4 s)', () => {
  let server;
  before(async () => { server = await startServer(['--access-token-ttl', '4s']); });
  after(() => server.stop());

  test('the engine refreshes on its own timer before the token expires', async () => {
    const { auth, storage, key } = client(server);
    const ev = record(auth);
    const s = await auth.signInAnonymously();
    const lifetime = s.credential.accessTokenExpire - Date.now();
    assert.ok(lifetime > 3000 && lifetime <= 4000, String(lifetime));
    const snap = storage.m.get(key);
    // No call at all: the deadline timer (half the lifetime, ~2 s) refreshes and persists.
    await until(() => storage.m.get(key) !== snap, 3500, 'a refreshed snapshot');
    const st = await auth.getLoginState();
    assert.equal(st.user.uid, s.user.uid);
    assert.notEqual(st.credential.accessToken, s.credential.accessToken);
    assert.ok(st.credential.accessTokenExpire > s.credential.accessTokenExpire);
    // Keeps going: after three lifetimes the session is still good on the server.
    await new Promise((r) => setTimeout(r, 9000));
    const later = await auth.getUserInfo();
    assert.equal(later.user.uid, s.user.uid);
    const st2 = await auth.getLoginState();
    assert.ok(st2.credential.accessTokenExpire > Date.now(), 'never handed out an expired token');
    assert.deepEqual(ev.seen, ['NONE', `ANONYMOUS:${s.user.uid}`], 'refreshes are not state changes');
    await auth.signOut();
  });
});

describe('a refused anonymous session (revoked by reuse of a copied storage)', () => {
  let server;
  // 2 s tokens, and no grace window: a rotated refresh token presented again revokes
  // the whole session at once.
  before(async () => { server = await startServer(['--access-token-ttl', '2s', '--refresh-grace', '0s']); });
  after(() => server.stop());

  test('is replaced by a new user, announced as such, never passed off as the old one', async () => {
    const first = client(server);
    const s = await first.auth.signInAnonymously();
    const copied = new Map(first.storage.m); // a backup, a second device's copy
    await new Promise((r) => setTimeout(r, 1100)); // refresh due (half the lifetime)
    await first.auth.getLoginState(); // rotates the refresh token

    const storage = memoryStorage();
    for (const [k, v] of copied) storage.m.set(k, v);
    const copy = client(server, { storage, env: first.env });
    const states = [];
    copy.auth.onLoginStateChanged((st) => states.push(st));
    await assert.rejects(copy.auth.getLoginState(), (e) => e.code === 'SESSION_EXPIRED',
      'the call about the refused session is not answered with another user');
    await until(() => states.some((st) => st && st.replaced), 5000, 'the replacement event');
    const replaced = states.find((st) => st && st.replaced);
    assert.equal(replaced.loginType, 'ANONYMOUS');
    assert.notEqual(replaced.user.uid, s.user.uid);
    assert.ok(states.includes(null), 'signed out first');
    const now = await copy.auth.getLoginState();
    assert.equal(now.user.uid, replaced.user.uid);
    assert.ok(!('replaced' in now), 'only the event carries the mark');
  });
});

describe('offline', () => {
  test('sign-out works with the server gone; sign-in reports a network error', async () => {
    const server = await startServer();
    const { auth, storage, key, env } = client(server);
    const ev = record(auth);
    const s = await auth.signInAnonymously();
    await server.stop();

    const out = await auth.signOut();
    assert.deepEqual(out, { revoked: false }, 'the server could not confirm');
    assert.equal(await auth.getLoginState(), null, 'signed out locally all the same');
    assert.deepEqual(ev.seen, ['NONE', `ANONYMOUS:${s.user.uid}`, 'NONE']);
    const snap = storage.m.get(key);
    assert.ok(!snap || !snap.includes(s.credential.accessToken.slice(0, 20)));

    // A restart from that storage stays signed out.
    const again = client(server, { storage, env });
    assert.equal(await again.auth.getLoginState(), null);
    await assert.rejects(again.auth.signInAnonymously(), (e) => e.code === 'NETWORK_ERROR');
    await assert.rejects(again.auth.getUserInfo(), (e) => e.code === 'NOT_SIGNED_IN');
  });
});

describe('the account: user.update, deleteMe, readable server errors (access tokens live 2 s)', () => {
  let server;
  before(async () => { server = await startServer(['--access-token-ttl', '2s']); });
  after(() => server.stop());

  test('update sets the profile, listeners hear it, a restart keeps it', async () => {
    const { auth, storage, env } = client(server);
    const ev = record(auth);
    const s = await auth.signInWithWeChat();
    const user = auth.currentUser;
    assert.equal(user.uid, s.user.uid);
    assert.equal(await user.update({ nickName: '小明 "Ming"', avatarUrl: 'https://a.example/ming.png' }), undefined);
    await until(() => ev.seen.length === 3, 2000, 'the event after the update');
    assert.deepEqual(ev.seen, ['NONE', `WECHAT:${s.user.uid}`, `WECHAT:${s.user.uid}`]);
    const st = await auth.getLoginState();
    assert.equal(st.user.nickName, '小明 "Ming"');
    assert.equal(st.user.avatarUrl, 'https://a.example/ming.png');
    // Only the fields given change; the login state's user has update() too.
    await st.user.update({ nickName: 'Ming' });
    assert.equal(auth.currentUser.nickName, 'Ming');
    assert.equal(auth.currentUser.avatarUrl, 'https://a.example/ming.png');
    assert.equal((await auth.getUserInfo()).user.nickName, 'Ming', 'the server has it');

    const again = client(server, { storage, env });
    assert.equal((await again.auth.getLoginState()).user.nickName, 'Ming', 'stored with the session');
    ev.off();
  });

  test('bad values are typed errors before anything is sent', async () => {
    const { auth } = client(server);
    await auth.signInAnonymously();
    const user = auth.currentUser;
    await assert.rejects(user.update({}), (e) => e.code === 'INVALID_ARGUMENT' && e.field === 'profile');
    await assert.rejects(user.update({ nickName: 'n'.repeat(65) }),
      (e) => e.code === 'INPUT_TOO_LONG' && e.field === 'nickname');
    await assert.rejects(user.update({ avatarUrl: 'ftp://a/b.png' }),
      (e) => e.code === 'INVALID_ARGUMENT' && e.field === 'avatar_url');
    await assert.rejects(user.update({ nickName: 7 }), (e) => e.code === 'INVALID_ARGUMENT' && e.field === 'nickname');
    await auth.signOut();
    assert.equal(auth.currentUser, null);
    await assert.rejects(user.update({ nickName: 'x' }), (e) => e.code === 'NOT_SIGNED_IN');
    await assert.rejects(auth.deleteMe(), (e) => e.code === 'NOT_SIGNED_IN');
  });

  test('a server refusal reads as the server wrote it', async () => {
    const { auth, o } = client(server);
    o.login = () => Promise.resolve('not-a-code-the-server-minted');
    const e = await auth.signInWithWeChat().then(() => null, (x) => x);
    assert.ok(e instanceof cloud.AuthError, String(e));
    assert.equal(e.code, 'SERVER_ERROR');
    assert.ok(e.status >= 400, String(e.status));
    assert.match(e.error, /^[a-z_]+$/);
    assert.ok(e.errorDescription.length > 0, 'the server gave a description');
    assert.equal(e.message, e.errorDescription);
  });

  test('deleteMe ends the session everywhere: signed out here, the old session refused', async () => {
    const { auth, storage, env } = client(server);
    const ev = record(auth);
    const s = await auth.signInWithWeChat();
    const copied = new Map(storage.m); // another device's copy of the session
    assert.equal(await auth.deleteMe(), undefined);
    assert.equal(await auth.getLoginState(), null);
    assert.equal(auth.currentUser, null);
    assert.deepEqual(ev.seen, ['NONE', `WECHAT:${s.user.uid}`, 'NONE']);

    await new Promise((r) => setTimeout(r, 1100)); // the copy's refresh is due
    const other = memoryStorage();
    for (const [k, v] of copied) other.m.set(k, v);
    const copy = client(server, { storage: other, env });
    await assert.rejects(copy.auth.getLoginState(), (x) => x.code === 'SESSION_EXPIRED');
    assert.equal(await copy.auth.getLoginState(), null);
    ev.off();
  });
});
