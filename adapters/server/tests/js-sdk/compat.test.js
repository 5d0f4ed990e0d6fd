'use strict';
// Compatibility of the official CloudBase JS SDK (@cloudbase/js-sdk, pinned in
// package.json) with the local `cloudbase-auth serve`.
//
// The SDK runs as it would inside a WeChat Mini Program: its Mini Program build
// (`miniprogram_dist/index.js`, what WeChat devtools' "build npm" ships) is loaded into
// a Node process that carries a stand-in `wx` runtime (fake-wx.js), so the SDK picks its
// own Mini Program adapter (wx.request transport, wx storage, wx.login). It is pointed at
// the server as described in docs/wire.md §10: init({env}),
// registerEndPointWithKey({key:'CLOUD_API', url:'//127.0.0.1:PORT', protocol:'http'}),
// then app.auth({persistence:'local'}) so a fresh auth object reads that endpoint.
//
// The steps share one SDK session and run in order: anonymous sign-in, getUserInfo,
// forced refresh, two concurrent forced refreshes, expiry-driven refresh (the server
// runs with a 33 s access-token TTL, so the SDK considers a token due 3 s after it
// arrives: expires_at = now + expires_in - 30 s), WeChat sign-in through
// provider/token, sign-out.
//
// JS_SDK_WIRE=1 prints every request the SDK sent and the server's replies at the end.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { installFakeWx } = require('./fake-wx');
const { startServer, call } = require('./server');

const ENV = 'js-sdk-compat-1g2h3i';
const APPID = 'wx0123456789abcdef';
const OPENID = `oJsSdk-${process.pid}-${Date.now().toString(36)}`;
const ACCESS_TOKEN_TTL_S = 33;
const SDK_VERSION = '2.32.0';
const STEP_TIMEOUT_MS = 30000;

const CREDENTIALS_KEY = `credentials_${ENV}`;
const USER_INFO_KEY = `user_info_${ENV}`;

const HEX32 = /^[0-9a-f]{32}$/;

let server;
let fake;
let cloudbase;
let app;
let auth;

// What the steps hand on to each other.
const state = {};

/** The credentials object the SDK stored (wx storage holds it as a JSON string). */
function storedCredentials() {
  const raw = fake.stored(CREDENTIALS_KEY);
  if (raw === undefined || raw === '') return undefined;
  assert.equal(typeof raw, 'string', `${CREDENTIALS_KEY} is stored as a JSON string`);
  return JSON.parse(raw);
}

/** Requests the SDK sent (through wx.request) since wire index `from` whose path starts with `prefix`. */
function sent(prefix, from = 0) {
  return fake.wire.slice(from).filter((r) => r.path && r.path.startsWith(prefix));
}

function decodeJwt(token) {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    claims: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
  };
}

/** GET /auth/v1/user/me straight to the server with a bearer token. */
function userMe(accessToken) {
  return call(server.origin, 'GET', '/auth/v1/user/me', {
    headers: { authorization: `Bearer ${accessToken}` },
  });
}

function wireDump(from = 0) {
  return fake.wire
    .slice(from)
    .map((r) => `${r.method} ${r.path || r.url} -> ${r.status ?? r.error}\n  sent ${r.body ?? ''}\n  got  ${JSON.stringify(r.reply)}`)
    .join('\n');
}

describe(`@cloudbase/js-sdk ${SDK_VERSION} (simulated Mini Program) against cloudbase-auth serve`, () => {
  before(async () => {
    server = await startServer({ extraArgs: ['--access-token-ttl', `${ACCESS_TOKEN_TTL_S}s`] });
    const port = new URL(server.origin).port;

    fake = installFakeWx({
      appId: APPID,
      origin: server.origin,
      // The stand-in wx.login: mint a code at the server's WeChat emulator.
      mintCode: async () => {
        const res = await call(server.origin, 'POST', '/emulator/v1/wechat/login-code', {
          body: { appid: APPID, openid: OPENID },
        });
        if (res.status !== 200 || typeof res.body.code !== 'string') {
          throw new Error(`login-code: ${res.status} ${JSON.stringify(res.body)}`);
        }
        return res.body.code;
      },
    });

    const pkgDir = path.dirname(path.dirname(require.resolve('@cloudbase/js-sdk')));
    assert.equal(require(path.join(pkgDir, 'package.json')).version, SDK_VERSION);
    // The Mini Program build: it registers the wx_mp adapter when it loads, which must
    // recognise the stand-in runtime.
    cloudbase = require(path.join(pkgDir, 'miniprogram_dist', 'index.js'));

    app = cloudbase.init({ env: ENV });
    app.registerEndPointWithKey({ key: 'CLOUD_API', url: `//127.0.0.1:${port}`, protocol: 'http' });
    auth = app.auth({ persistence: 'local' });
  });

  after(async () => {
    if (process.env.JS_SDK_WIRE && fake) console.log(`${wireDump()}\n${JSON.stringify(state, null, 2)}`);
    if (server) {
      const { code, signal } = await server.stop();
      if (code !== 0) console.error(`# server exit: code ${code}, signal ${signal}\n${server.stderr()}`);
    }
  });

  it('uses its Mini Program adapter and talks only to the local server', { timeout: STEP_TIMEOUT_MS }, async () => {
    assert.equal(app.platform.runtime, 'wx_mp', 'the SDK detected the Mini Program runtime');
    // Nothing has left for the real CloudBase origin (init builds a default auth object).
    assert.deepEqual(fake.wire.filter((r) => r.blocked), []);
  });

  it('signInAnonymously: anonymous scope, a uid, credentials stored', { timeout: STEP_TIMEOUT_MS }, async () => {
    const from = fake.wire.length;
    const res = await auth.signInAnonymously();
    assert.equal(res.error, null, `signInAnonymously error: ${res.error && res.error.message}\n${wireDump(from)}`);

    const [signin] = sent('/auth/v1/signin/anonymously', from);
    assert.ok(signin, `no signin/anonymously request:\n${wireDump(from)}`);
    assert.equal(signin.method, 'POST');
    assert.equal(signin.path, `/auth/v1/signin/anonymously?client_id=${ENV}`);
    assert.equal(signin.status, 200);
    assert.match(signin.headers['x-device-id'], HEX32);
    assert.match(signin.headers['x-request-id'], HEX32);
    assert.match(signin.headers['x-sdk-version'], /^@cloudbase\/js-sdk\//);

    const creds = storedCredentials();
    assert.ok(creds, 'credentials stored after sign-in');
    assert.equal(creds.token_type, 'Bearer');
    assert.equal(creds.scope, 'anonymous');
    assert.deepEqual(creds.groups, ['anonymous']);
    assert.equal(creds.expires_in, ACCESS_TOKEN_TTL_S);
    assert.equal(typeof creds.refresh_token, 'string');
    assert.match(creds.sub, /^\S+$/);
    assert.equal(decodeJwt(creds.access_token).claims.sub, creds.sub);

    assert.equal(await auth.loginScope(), 'anonymous');
    assert.deepEqual(await auth.loginGroups(), ['anonymous']);

    // The SDK loads the user right after signing in, with the new bearer token.
    const [me] = sent('/auth/v1/user/me', from);
    assert.ok(me, 'user/me after sign-in');
    assert.equal(me.status, 200);
    assert.equal(me.headers.authorization, `Bearer ${creds.access_token}`);

    const { user, session } = res.data;
    assert.equal(user.id, creds.sub);
    assert.equal(user.is_anonymous, true);
    assert.equal(session.access_token, creds.access_token);

    state.uid = creds.sub;
    state.deviceId = signin.headers['x-device-id'];
  });

  it('getUserInfo: uid and sub are the signed-in user', { timeout: STEP_TIMEOUT_MS }, async () => {
    const from = fake.wire.length;
    const info = await auth.getUserInfo();
    assert.ok(info, 'getUserInfo returned a user');
    assert.equal(info.uid, state.uid);
    assert.equal(info.sub, state.uid);

    const [me] = sent('/auth/v1/user/me', from);
    assert.ok(me, 'getUserInfo calls GET /auth/v1/user/me');
    assert.equal(me.method, 'GET');
    assert.equal(me.status, 200);
    assert.equal(me.reply.sub, state.uid);
    assert.equal(me.headers['x-device-id'], state.deviceId, 'the same device id on every request');

    // Cached the way the SDK caches it, and reachable through the login state.
    const cached = JSON.parse(fake.stored(USER_INFO_KEY));
    assert.equal(cached.content.uid, state.uid);
    const loginState = await auth.getLoginState();
    assert.ok(loginState, 'getLoginState is non-null');
    assert.equal(loginState.user.uid, state.uid);
  });

  it('refreshTokenForce: POST /auth/v1/token gives a new access token for the same user', { timeout: STEP_TIMEOUT_MS }, async () => {
    const prev = storedCredentials();
    const from = fake.wire.length;
    const fresh = await auth.refreshTokenForce();

    const refreshes = sent('/auth/v1/token', from);
    assert.ok(refreshes.length >= 1, `no refresh request:\n${wireDump(from)}`);
    const last = refreshes[refreshes.length - 1];
    assert.equal(last.path, `/auth/v1/token?client_id=${ENV}`);
    assert.equal(last.status, 200, wireDump(from));
    const body = JSON.parse(last.body);
    assert.equal(body.grant_type, 'refresh_token');
    assert.equal(body.client_id, ENV);
    assert.equal(typeof body.refresh_token, 'string');

    assert.notEqual(fresh.access_token, prev.access_token, 'a new access token');
    assert.notEqual(fresh.refresh_token, prev.refresh_token, 'the server rotates the refresh token');
    assert.equal(fresh.sub, state.uid);
    assert.equal(fresh.scope, 'anonymous');
    assert.equal(storedCredentials().access_token, fresh.access_token, 'the SDK stored the new token');

    const me = await userMe(fresh.access_token);
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body.sub, state.uid);
  });

  it('two refreshTokenForce calls at once: both succeed and the session survives', { timeout: STEP_TIMEOUT_MS }, async () => {
    const from = fake.wire.length;
    const [a, b] = await Promise.all([auth.refreshTokenForce(), auth.refreshTokenForce()]);
    const refreshes = sent('/auth/v1/token', from);
    assert.ok(refreshes.length >= 1);
    for (const r of refreshes) assert.equal(r.status, 200, wireDump(from));
    assert.equal(a.sub, state.uid);
    assert.equal(b.sub, state.uid);
    state.concurrentRefreshRequests = refreshes.length;
    const presented = new Set(refreshes.map((r) => JSON.parse(r.body).refresh_token));
    if (refreshes.length > 1 && presented.size === 1) {
      // The SDK sent the same refresh token twice: inside the grace window the server
      // answers both with the same successor instead of tripping reuse detection.
      state.concurrentSameRefreshToken = true;
      assert.equal(new Set(refreshes.map((r) => r.reply.refresh_token)).size, 1, wireDump(from));
    }

    // The stored refresh token still works (no reuse detection tripped).
    const next = await auth.refreshTokenForce();
    assert.equal(next.sub, state.uid);
    const me = await userMe(next.access_token);
    assert.equal(me.status, 200, JSON.stringify(me.body));
  });

  it('expiry-driven refresh: once due, getAccessToken refreshes and the server accepts the new token', { timeout: STEP_TIMEOUT_MS }, async () => {
    const prev = storedCredentials();
    const dueAt = new Date(prev.expires_at).getTime();
    // expires_at = time stored + (expires_in - 30) s
    assert.ok(dueAt - Date.now() <= (ACCESS_TOKEN_TTL_S - 30) * 1000 + 1000, `due at ${prev.expires_at}`);
    const from = fake.wire.length;

    const wait = Math.max(0, dueAt - Date.now()) + 250;
    await new Promise((r) => setTimeout(r, wait));
    assert.equal(sent('/auth/v1/', from).length, 0, 'no background refresh: the SDK refreshes lazily');

    const { accessToken } = await auth.getAccessToken();
    const refreshes = sent('/auth/v1/token', from);
    assert.equal(refreshes.length, 1, `one refresh when due:\n${wireDump(from)}`);
    assert.equal(refreshes[0].status, 200, wireDump(from));
    assert.equal(JSON.parse(refreshes[0].body).refresh_token, prev.refresh_token);
    assert.equal(sent('/auth/v1/signin/anonymously', from).length, 0, 'refreshed, not silently re-signed-in');

    assert.notEqual(accessToken, prev.access_token, 'the token changed');
    const now = storedCredentials();
    assert.equal(now.access_token, accessToken);
    assert.equal(now.sub, state.uid, 'same user');
    assert.ok(new Date(now.expires_at).getTime() > Date.now(), 'the new token is not due');

    // The server accepts it: through the SDK and directly.
    const info = await auth.getUserInfo();
    assert.equal(info.uid, state.uid);
    const [me] = sent('/auth/v1/user/me', from);
    assert.equal(me.headers.authorization, `Bearer ${accessToken}`);
    assert.equal(me.status, 200);
    const direct = await userMe(accessToken);
    assert.equal(direct.status, 200, JSON.stringify(direct.body));
    assert.equal(direct.body.sub, state.uid);
    assert.ok(await auth.getLoginState(), 'still signed in');
  });

  it('signInWithOpenId({useWxCloud:false}): wx.login code -> provider/token -> signin/with/provider', { timeout: STEP_TIMEOUT_MS }, async () => {
    const from = fake.wire.length;
    const loginsBefore = fake.logins.length;
    const res = await auth.signInWithOpenId({ useWxCloud: false });
    assert.equal(res.error, null, `signInWithOpenId error: ${res.error && res.error.message}\n${wireDump(from)}`);
    assert.equal(fake.logins.length, loginsBefore + 1, 'wx.login was called once');
    const code = fake.logins[fake.logins.length - 1];

    const [grant] = sent('/auth/v1/provider/token', from);
    assert.ok(grant, `no provider/token request:\n${wireDump(from)}`);
    assert.equal(grant.path, `/auth/v1/provider/token?client_id=${ENV}`);
    assert.deepEqual(JSON.parse(grant.body), {
      provider_id: APPID,
      provider_code: code,
      provider_params: { provider_code_type: 'open_id', appid: APPID },
    });
    assert.equal(grant.status, 200, wireDump(from));
    assert.equal(typeof grant.reply.provider_token, 'string');
    assert.equal(typeof grant.reply.expires_in, 'number');
    assert.ok(!('session_key' in grant.reply), 'no session_key reaches the client');

    const [signin] = sent('/auth/v1/signin/with/provider', from);
    assert.ok(signin, 'signin/with/provider request');
    assert.deepEqual(JSON.parse(signin.body), { provider_token: grant.reply.provider_token });
    assert.equal(signin.status, 200, wireDump(from));

    const creds = storedCredentials();
    assert.notEqual(creds.scope, 'anonymous');
    assert.notEqual(creds.sub, state.uid, 'signInWithOpenId signs in a WeChat user, not the anonymous one');
    assert.notEqual(await auth.loginScope(), 'anonymous');
    const { claims } = decodeJwt(creds.access_token);
    assert.equal(claims.sub, creds.sub);
    assert.equal(claims.meta && claims.meta.wxOpenId, OPENID);

    // The user/me reply carries the openid under the Mini Program's provider entry, and
    // the SDK's user picked it up.
    const mes = sent('/auth/v1/user/me', from);
    assert.ok(mes.length >= 1, 'user/me after sign-in');
    const reply = mes[mes.length - 1].reply;
    assert.equal(reply.sub, creds.sub);
    assert.ok(Array.isArray(reply.providers), `providers in ${JSON.stringify(reply)}`);
    const entry = reply.providers.find((p) => p.id === APPID);
    assert.ok(entry, `a provider entry with id ${APPID}: ${JSON.stringify(reply.providers)}`);
    assert.equal(entry.provider_user_id, OPENID);

    const info = await auth.getUserInfo();
    assert.equal(info.uid, creds.sub);
    assert.equal(info.open_id, OPENID);
    const { user } = res.data;
    assert.equal(user.id, creds.sub);
    assert.equal(user.is_anonymous, false);
    assert.ok(
      user.identities.some((i) => i.provider === APPID && i.identity_data.provider_user_id === OPENID),
      JSON.stringify(user.identities),
    );

    state.wxUid = creds.sub;
  });

  it('signInWithOpenId again with the same openid finds the same user', { timeout: STEP_TIMEOUT_MS }, async () => {
    const from = fake.wire.length;
    const res = await auth.signInWithOpenId({ useWxCloud: false });
    assert.equal(res.error, null, `signInWithOpenId error: ${res.error && res.error.message}\n${wireDump(from)}`);
    assert.equal(storedCredentials().sub, state.wxUid);
    assert.equal((await auth.getUserInfo()).open_id, OPENID);
  });

  it('user.update({name, picture}): PATCH /auth/v1/user/profile (POST + x-http-method-override), stored and shown by user/me', { timeout: STEP_TIMEOUT_MS }, async () => {
    const creds = storedCredentials();
    // The login state's user (the SDK's `User`, whose `update` is the documented call).
    const { user } = await auth.getLoginState();
    assert.equal(typeof user.update, 'function');
    const from = fake.wire.length;
    const change = { name: '小明 "Ming"', picture: 'https://a.example/ming.png' };
    await user.update(change);

    const [patch] = sent('/auth/v1/user/profile', from);
    assert.ok(patch, `no user/profile request:\n${wireDump(from)}`);
    // wx.request has no PATCH: the Mini Program adapter sends POST with the override.
    assert.equal(patch.method, 'POST');
    assert.equal(patch.headers['x-http-method-override'], 'PATCH');
    assert.equal(patch.path, '/auth/v1/user/profile');
    assert.equal(patch.headers.authorization, `Bearer ${creds.access_token}`);
    assert.deepEqual(JSON.parse(patch.body), change);
    assert.equal(patch.status, 200, wireDump(from));
    assert.equal(patch.reply.sub, state.wxUid);
    assert.equal(patch.reply.name, change.name);
    assert.equal(patch.reply.picture, change.picture);

    // The SDK keeps the reply as its user; the server keeps the change.
    assert.equal(user.name, change.name);
    assert.equal(user.picture, change.picture);
    const me = await userMe(creds.access_token);
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body.name, change.name);
    assert.equal(me.body.picture, change.picture);

    // A refusal reaches the caller as the CloudBase error body says it.
    const before = fake.wire.length;
    await assert.rejects(user.update({ name: 'n'.repeat(65) }));
    const [refused] = sent('/auth/v1/user/profile', before);
    assert.equal(refused.status, 400, wireDump(before));
    assert.equal(refused.reply.error, 'invalid_argument');
    assert.match(refused.reply.error_description, /nickname too long/);
    assert.equal((await userMe(creds.access_token)).body.name, change.name);
  });

  it('signOut: revokes the token at the server and forgets the stored credentials', { timeout: STEP_TIMEOUT_MS }, async () => {
    const creds = storedCredentials();
    const live = await userMe(creds.access_token);
    assert.equal(live.status, 200, 'the token works before sign-out');

    const from = fake.wire.length;
    const res = await auth.signOut();
    assert.equal(res.error, null, `signOut error: ${res.error && res.error.message}\n${wireDump(from)}`);

    const [revoke] = sent('/auth/v1/revoke', from);
    assert.ok(revoke, `no revoke request:\n${wireDump(from)}`);
    assert.equal(revoke.path, `/auth/v1/revoke?client_id=${ENV}`);
    assert.deepEqual(JSON.parse(revoke.body), { token: creds.access_token });
    assert.equal(revoke.status, 200, wireDump(from));

    // Gone from storage; the device id stays.
    assert.equal(fake.stored(CREDENTIALS_KEY), undefined, 'credentials removed');
    assert.equal(fake.stored(USER_INFO_KEY), undefined, 'user info removed');
    assert.equal(fake.stored('device_id'), state.deviceId, 'device id kept');
    assert.equal(await auth.getLoginState(), null);
    assert.equal(auth.hasLoginState(), null);

    // The server refuses the revoked access token and refresh token.
    const dead = await userMe(creds.access_token);
    assert.equal(dead.status, 401, JSON.stringify(dead.body));
    assert.equal(dead.body.error, 'unauthenticated');
    assert.equal(dead.body.error_code, 16);
    const refresh = await call(server.origin, 'POST', `/auth/v1/token?client_id=${ENV}`, {
      body: { client_id: ENV, client_secret: '', grant_type: 'refresh_token', refresh_token: creds.refresh_token },
    });
    // invalid_grant is what makes the SDK drop stored credentials (docs/wire.md §6).
    assert.equal(refresh.status, 400, `refresh after sign-out: ${JSON.stringify(refresh.body)}`);
    assert.equal(refresh.body.error, 'invalid_grant');
  });

  it('deleteMe: the Mini Program build cannot send DELETE; the request it means deletes the user', { timeout: STEP_TIMEOUT_MS }, async () => {
    const res = await auth.signInAnonymously();
    assert.equal(res.error, null, `signInAnonymously error: ${res.error && res.error.message}`);
    const creds = storedCredentials();
    assert.equal((await userMe(creds.access_token)).status, 200);

    // The wx_mp adapter's request class has get/post/patch but no delete: the SDK's
    // deleteMe() fails before anything is sent (docs/wire.md §3).
    const from = fake.wire.length;
    await assert.rejects(auth.deleteMe({}), /invalid 【delete】 request method/);
    assert.equal(sent('/auth/v1/', from).length, 0, wireDump(from));

    // What deleteMe() sends from the web build: DELETE user/me? with the bearer.
    const del = await call(server.origin, 'DELETE', '/auth/v1/user/me?', {
      headers: { authorization: `Bearer ${creds.access_token}` },
    });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.deepEqual(del.body, {});

    // Gone at the server: the access token and the refresh token are refused.
    const dead = await userMe(creds.access_token);
    assert.equal(dead.status, 401, JSON.stringify(dead.body));
    assert.equal(dead.body.error, 'unauthenticated');
    const refresh = await call(server.origin, 'POST', `/auth/v1/token?client_id=${ENV}`, {
      body: { client_id: ENV, client_secret: '', grant_type: 'refresh_token', refresh_token: creds.refresh_token },
    });
    assert.equal(refresh.status, 400, JSON.stringify(refresh.body));
    assert.equal(refresh.body.error, 'invalid_grant');
  });

  it('never left loopback', () => {
    assert.deepEqual(
      fake.wire.filter((r) => r.blocked).map((r) => r.url),
      [],
    );
  });
});
