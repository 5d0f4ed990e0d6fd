// The browser demo (index.html): one button per cloud.auth() operation, the login state
// from onLoginStateChanged, the user, the last call's result and error. Plain ES2017, no
// build step. Runs before index.js (both `defer`): index.js is CommonJS, so this gives it
// a global `module` to export into and starts once the document (and index.js) is ready.
//
// signInWithWeChat / linkWithWeChat: a browser has no wx.login, so `init({ login })` gets a
// stand-in that mints a code from the server's WeChat emulator
// (POST /emulator/v1/wechat/login-code, {"appid", "openid"}) for the openid in the input.
//
// The nickname field goes to `auth.currentUser.update({ nickName })`; deleteMe() deletes
// the account on the server and signs out here.
//
// For scripts (adapters/wasm/browser/demo.test.js): body[data-ready] is set once the
// first state is shown; body[data-calls] counts finished calls; #state[data-state] is
// LOADING, SIGNED_OUT, ANONYMOUS or WECHAT.
'use strict';

window.module = { exports: {} };

(function () {
  const OPS = ['signInAnonymously', 'getUserInfo', 'getLoginState', 'signInWithWeChat',
    'linkWithWeChat', 'signOut', 'deleteMe', 'update'];
  const $ = (id) => document.getElementById(id);
  const set = (id, v) => { $(id).textContent = v === undefined || v === null ? '—' : v === '' ? '(empty)' : String(v); };
  let calls = 0;

  function showUser(u) {
    set('user-uid', u && u.uid);
    set('user-nickName', u && u.nickName);
    set('user-avatarUrl', u && u.avatarUrl);
    set('user-openid', u && u.openid);
  }

  function showState(s) {
    const name = s ? s.loginType : 'SIGNED_OUT';
    $('state').dataset.state = name;
    set('state', s ? s.loginType : 'signed out');
    set('uid', s && s.user.uid);
    set('anonymous', s && String(s.isAnonymousAuth));
    set('expires', s && new Date(s.credential.accessTokenExpire).toISOString());
    showUser(s && s.user);
  }

  // A server's refusal reads as the server wrote it: its description (the message), its
  // error name and code.
  function showError(e) {
    $('error').textContent = !e ? '' : e.code
      ? e.code + ': ' + e.message + (e.error ? ' [' + e.error + ']' : '') +
        (e.errorCode ? ' (error_code ' + e.errorCode + ')' : '')
      : String(e);
  }

  // The access token is shortened on screen (it is a bearer credential).
  function describe(v) {
    return JSON.stringify(v, (k, x) => k === 'accessToken' && typeof x === 'string'
      ? x.slice(0, 12) + '… (' + x.length + ' chars)' : x, 2);
  }

  // The wx.login stand-in: a fresh single-use code from the emulator.
  function emulatorLogin(appid) {
    return fetch(location.origin + '/emulator/v1/wechat/login-code', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appid, openid: $('openid').value.trim() || undefined }),
    }).then((r) => r.json().catch(() => ({})).then((b) => {
      if (!r.ok || typeof b.code !== 'string') {
        throw new Error('login-code: HTTP ' + r.status + (b.error_description ? ' ' + b.error_description : ''));
      }
      return b.code;
    }));
  }

  function finish() {
    for (const op of OPS) $(op).disabled = false;
    document.body.dataset.calls = String(++calls);
  }

  function run(auth, op) {
    for (const name of OPS) $(name).disabled = true;
    set('op', op + '() …');
    $('result').textContent = '';
    showError(null);
    const call = op !== 'update' ? () => auth[op]()
      : () => auth.currentUser ? auth.currentUser.update({ nickName: $('nickName').value })
        : auth.getUserInfo(); // signed out: the typed NOT_SIGNED_IN error
    call().then((r) => {
      set('op', op + '()');
      $('result').textContent = describe(r);
      if (r && r.user) showUser(r.user);
    }, (e) => {
      set('op', op + '() failed');
      showError(e);
    }).then(finish);
  }

  function start() {
    const cloud = window.module.exports;
    const params = new URLSearchParams(location.search);
    const env = params.get('env') || 'demo';
    const appid = params.get('appid') || 'wx0123456789abcdef';
    set('env', env);
    set('origin', location.origin);
    let auth;
    try {
      if (typeof cloud.init !== 'function') throw new Error('index.js did not load');
      cloud.init({
        env,
        appid,
        baseUrl: location.origin,
        wasm: new URL('cloudbase_auth.wasm', document.baseURI).href,
        login: () => emulatorLogin(appid),
      });
      auth = cloud.auth();
    } catch (e) {
      set('state', 'failed to start');
      showError(e);
      return;
    }
    for (const op of OPS) $(op).addEventListener('click', () => run(auth, op));
    let first = true;
    auth.onLoginStateChanged((s) => {
      showState(s);
      if (first) {
        first = false;
        for (const op of OPS) $(op).disabled = false;
        document.body.dataset.ready = '1';
      }
    });
    // onLoginStateChanged stays silent if the module cannot start: show why.
    auth.getLoginState().catch((e) => {
      set('state', 'failed to start');
      showError(e);
    });
  }

  document.addEventListener('DOMContentLoaded', start);
})();
