'use strict';
// wx.cloud.auth() for Mini Programs, Node and browsers, over cloudbase_auth.wasm (the no_std
// core). The core writes every request and makes every decision; this file only moves
// bytes, time and randomness. ABI and record layout: adapters/wasm/src/abi.rs.

// <abi>
// Generated from adapters/wasm/src/abi.rs (cargo test -p cloudbase-auth-wasm checks it;
// `-- --ignored write_js_tables` rewrites it). Do not edit by hand.
const STATES = ['UNINITIALIZED', 'INITIALIZED', 'ANONYMOUS', 'WECHAT', 'SIGNED_OUT'];
const CLASSES = ['', 'INVALID_ARGUMENT', '', 'SERVER_ERROR', 'BAD_REPLY', 'NETWORK_ERROR',
  'BAD_SNAPSHOT', 'NOT_SIGNED_IN', 'SESSION_EXPIRED', 'CANCELLED'];
const MISUSE = ['', 'NOT_INITIALIZED', 'ALREADY_INITIALIZED', 'RESTORE_TOO_LATE', 'BUSY',
  'NOT_ANONYMOUS', 'INPUT_TOO_LONG', 'INVALID_ARGUMENT', 'BUFFER_TOO_SMALL',
  'OUTPUT_QUEUE_FULL'];
const MISUSE_CLASS = 2; // named by its sub-code
const TIMEOUT = 0, TRANSMIT = 1, PERSIST = 2, CLEAR = 3, CHANGED = 4, COMPLETED = 5, REPLACED = 6;
// Records: n num, s text, b bytes.
const REC = {
  timeout: 'n', // deadline
  transmit: 'nnsssnb', // generation, seq, method, path, headers, hasBody, body
  persist: 's', // snapshot
  changed: 'nn', // from, to
  completed: 'nn', // op, ok
  completion: 'nn', // kind, detail
  error: 'nnnnnsss', // class, sub, status, serverKind, errorCode, field, error, errorDescription
  session: 'sssnnn', // uid, tokenType, accessToken, expiresAt, refreshAt, refreshable
  user: 'sssss', // uid, nickName, avatarUrl, email, openid
  origin: 's', // origin
};
// </abi>
const IMPORTS = {}; // the module imports nothing (a test checks)
// `true` in cloudbase-auth.min.js (scripts/build-wasm.sh rewrites this line), which
// compiles the Node and browser host out of the Mini Program copy.
const MINIPROGRAM = false;

class AuthError extends Error {
  constructor(code, message, extra) {
    super(message || code);
    this.name = 'AuthError';
    this.code = code;
    Object.assign(this, extra);
  }
}

// --- UTF-8 (Mini Programs have no TextEncoder/TextDecoder) -------------------------------

function utf8(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) { c = 0x10000 + (c - 0xd800) * 1024 + d - 0xdc00; i++; }
    }
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // lone surrogate
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | c >> 6, 0x80 | c & 63);
    else if (c < 0x10000) out.push(0xe0 | c >> 12, 0x80 | c >> 6 & 63, 0x80 | c & 63);
    else out.push(0xf0 | c >> 18, 0x80 | c >> 12 & 63, 0x80 | c >> 6 & 63, 0x80 | c & 63);
  }
  return new Uint8Array(out);
}

function text(b) {
  // ASCII (tokens, ids, base64) in one builtin call rather than a loop per byte, which
  // matters on a cold start, before the loop is compiled.
  let s = String.fromCharCode.apply(null, b);
  if (!/[\x80-\xff]/.test(s)) return s;
  s = '';
  for (let i = 0; i < b.length;) {
    const c = b[i++];
    let n = c > 0xef ? 3 : c > 0xdf ? 2 : c > 0xbf ? 1 : 0;
    let cp = n ? c & 63 >> n : c;
    if (c > 0x7f && (!n || c > 0xf4)) cp = 0xfffd;
    else for (; n; n--) {
      if ((b[i] & 0xc0) !== 0x80) { cp = 0xfffd; break; }
      cp = cp << 6 | b[i++] & 63;
    }
    s += String.fromCodePoint(cp > 0x10ffff ? 0xfffd : cp);
  }
  return s;
}

// A reader over the record the last export of `ex` wrote: each call reads the items of one
// layout (a REC string) and returns them in an array; the next call goes on from there.
function reader(ex) {
  const base = ex.cba_buf(), buf = ex.memory.buffer, dv = new DataView(buf, base);
  let p = 0;
  return (layout) => layout.split('').map((t) => {
    if (t === 'n') return dv.getFloat64((p += 8) - 8, true);
    const l = dv.getUint32(p, true), b = new Uint8Array(buf, base + p + 4, l).slice();
    p += 4 + l;
    return t === 's' ? text(b) : b;
  });
}

const bytes = (x) => x instanceof ArrayBuffer ? new Uint8Array(x)
  : ArrayBuffer.isView(x) ? new Uint8Array(x.buffer, x.byteOffset, x.byteLength)
  : typeof x === 'string' ? utf8(x) : new Uint8Array(0);

// --- hosts: what each platform provides -----------------------------------------------

function call(name, opts) { // a wx API in callback style, as a promise
  return new Promise((ok, fail) => wx[name](Object.assign({ success: ok, fail }, opts)));
}

const WASM = '/cloudbase-auth/cloudbase_auth.wasm';
const seed = () => wx.getRandomValues
  ? call('getRandomValues', { length: 16 }).then((r) => bytes(r.randomValues), weakSeed)
  : weakSeed();
// The module and seed install() started at app launch, for the first init() (if it asks
// for the same path): each instance holds one engine, so only one init() can take them.
let early = null;

function miniProgramHost(o) {
  const path = o.wasm || WASM, e = early && early.path === path && early;
  early = null;
  return {
    load: () => e ? e.inst : WXWebAssembly.instantiate(path, IMPORTS),
    seed: () => e ? e.seed : seed(),
    request: (method, url, header, body) => call('request', {
      url, method, header, responseType: 'arraybuffer', data: body && body.buffer,
    }).then((r) => ({ status: r.statusCode, body: bytes(r.data) })),
    get: (k) => wx.getStorageSync(k),
    set: (k, v) => wx.setStorageSync(k, v),
    remove: (k) => wx.removeStorageSync(k),
    login: () => call('login').then((r) => r.code),
    appid: () => wx.getAccountInfoSync && wx.getAccountInfoSync().miniProgram.appId,
  };
}

function webHost(o) {
  const NODE = typeof process === 'object' && !!(process.versions && process.versions.node);
  const mem = {};
  const store = o.storage || (typeof localStorage === 'object' && localStorage) || {
    getItem: (k) => mem[k], setItem: (k, v) => { mem[k] = v; }, removeItem: (k) => { delete mem[k]; },
  };
  const src = o.wasm || (NODE ? __dirname + '/cloudbase_auth.wasm' : 'cloudbase_auth.wasm');
  return {
    load: () => Promise.resolve(typeof src !== 'string' ? src : NODE
      ? require(['fs'][0]).readFileSync(src) // (indirect: keeps bundlers from packing fs)
      : fetch(src).then((r) => r.arrayBuffer()))
      .then((b) => WebAssembly.instantiate(b, IMPORTS)),
    seed: () => crypto.getRandomValues(new Uint8Array(16)),
    request: (method, url, headers, body) => fetch(url, { method, headers, body })
      .then((r) => r.arrayBuffer().then((b) => ({ status: r.status, body: new Uint8Array(b) }))),
    get: (k) => store.getItem(k),
    set: (k, v) => store.setItem(k, v),
    remove: (k) => store.removeItem(k),
    login: () => o.login ? o.login() : Promise.reject(new AuthError('NO_WX_LOGIN',
      'signInWithWeChat/linkWithWeChat need wx.login or init({ login })')),
    appid: () => undefined,
  };
}

// Request and device ids only (the core holds no secret of its own): used where
// wx.getRandomValues is missing (base library < 2.15, plugins).
function weakSeed() {
  const s = new Uint8Array(16);
  for (let i = 0; i < 16; i++) s[i] = Math.random() * 256 ^ Date.now() >> i;
  return s;
}

// --- the client: one wasm instance per init() -------------------------------------------

class Client {
  constructor(o, host) {
    this.o = o;
    this.host = host;
    this.key = 'cloudbase_auth_' + o.env;
    this.pending = {};
    this.listeners = [];
    this.transit = 0; // calls made and not yet given to the engine
    // this.view: the last getLoginState answer (a settled promise, shared by the calls that
    // get it), until an output other than the timeout.
    this.proto = { update: (p) => this.update(p || {}) };
    this.ready = this.boot();
    this.ready.catch(() => {}); // reported by each call
    const c = this;
    this.auth = {
      getLoginState: () => c.cached() || c.op('cba_get_login_state', [], () => c.frozen(), 1),
      signInAnonymously: () => c.op('cba_sign_in_anonymously', [], () => c.state()),
      signInWithWeChat: () => c.wechat('cba_sign_in_with_wechat'),
      linkWithWeChat: () => c.wechat('cba_link_wechat'),
      getUserInfo: () => c.op('cba_get_user_info', [], () => ({ user: c.user() })),
      signOut: () => c.op('cba_sign_out', [], (kind, revoked) => ({ revoked: !!revoked })),
      // Deletes the user on the server, then ends the local session as signOut does.
      deleteMe: () => c.op('cba_delete_account', [], () => {}),
      // The signed-in user (with update()), or null; read from the engine at each get.
      get currentUser() { return c.booted ? c.user() : null; },
      onLoginStateChanged(cb) {
        let on = true;
        c.ready.then(() => { if (on) { c.listeners.push(cb); c.tell(cb, c.state()); } }, () => {});
        return () => { on = false; c.listeners = c.listeners.filter((l) => l !== cb); };
      },
    };
  }

  async boot() {
    const [inst, seed] = await Promise.all([this.host.load(), this.host.seed()]);
    const ex = this.ex = (inst.instance || inst).exports;
    const a = this.put([utf8(this.o.env), utf8(this.o.clientId || ''), seed]);
    this.check(ex.cba_init(Date.now(), a[0], a[1], a[2], a[3], a[4]));
    let stored;
    try { stored = this.host.get(this.key); } catch (e) { /* unreadable: start fresh */ }
    if (stored) {
      const b = this.put([bytes(stored)]); // base64 text, as a persist record gave it
      // A corrupt snapshot is the core's call: it signs out and asks to clear storage.
      ex.cba_restore(Date.now(), b[0], b[1]);
      this.drain();
    }
    this.booted = true;
  }

  // getLoginState without a call into the engine, while the engine says a call would
  // complete at once with the session as it is (cba_settled_until) and no earlier call is
  // on its way to it. drain() drops the view at every output but the timeout.
  cached() {
    const now = Date.now();
    if (this.transit) return;
    if (this.view === undefined) {
      if (!this.booted || !((this.until = this.ex.cba_settled_until()) > now)) return;
      this.view = Promise.resolve(this.frozen());
    }
    if (now < this.until) return this.view;
  }

  close() {
    this.closed = true;
    this.booted = false;
    this.until = 0;
    clearTimeout(this.timer);
    for (const id in this.pending) this.pending[id][1](new AuthError('CLOSED', 'init() was called again'));
  }

  // Writes byte arrays into the exchange buffer: [ptr, len, ptr, len, ...]. Copies at
  // most the buffer's length (the core refuses anything that long).
  put(parts) {
    const ex = this.ex, base = ex.cba_buf(), cap = ex.cba_buf_len();
    const mem = new Uint8Array(ex.memory.buffer, base, cap), out = [];
    let off = 0;
    for (const p of parts) {
      const n = Math.min(p.length, cap - off);
      mem.set(p.subarray(0, n), off);
      out.push(base + off, n);
      off += n;
    }
    return out;
  }

  rec() { return reader(this.ex); }

  // An AuthError from an error record's items; its message is the server's description
  // when it gave one.
  err([cls, sub, status, kind, errorCode, field, error, errorDescription]) {
    const code = (cls === MISUSE_CLASS ? MISUSE[sub] : CLASSES[cls]) || 'UNKNOWN';
    return new AuthError(code, errorDescription || code.toLowerCase().replace(/_/g, ' ') +
      (field ? ': ' + field : '') + (status ? ' (HTTP ' + status + ')' : ''),
    status ? { status, kind, errorCode, error, errorDescription } : field ? { field } : {});
  }

  // Every input is followed by a drain; a negative result throws the error record.
  check(v) {
    const e = v < 0 && this.err(this.rec()(REC.error));
    this.drain();
    if (e) throw e;
    return v;
  }

  drain() {
    for (;;) {
      const k = this.ex.cba_poll(), r = this.rec();
      if (k <= TIMEOUT) return this.arm(k ? -1 : r(REC.timeout)[0]);
      this.view = undefined;
      if (k === TRANSMIT) this.send(r(REC.transmit));
      else if (k === PERSIST) this.save(r(REC.persist)[0]);
      else if (k === CLEAR) this.save('');
      else if (k === CHANGED) this.emit(r(REC.changed)[1]);
      else if (k === COMPLETED) this.done(r);
      else if (k === REPLACED) this.replaced = true; // the next state change is a new user
    }
  }

  arm(deadline) {
    clearTimeout(this.timer);
    if (deadline < 0 || this.closed) return;
    this.timer = setTimeout(() => {
      if (!this.closed) this.check(this.ex.cba_handle_timeout(Date.now()));
    }, Math.min(Math.max(deadline - Date.now(), 0), 0x7fffffff));
    if (this.timer.unref) this.timer.unref(); // Node: a refresh timer keeps no process alive
  }

  send([gen, seq, method, path, lines, hasBody, body]) {
    // Without a baseUrl, the env's CloudBase origin (the engine knows it); worked out at
    // the first request, not at start.
    const origin = this.origin || (this.origin = (this.o.baseUrl ||
      this.ex.cba_default_origin() && this.rec()(REC.origin)[0]).replace(/\/+$/, ''));
    const url = origin + path, headers = {}, data = hasBody ? body : undefined;
    for (const line of lines.split('\n')) {
      const i = line.indexOf(': ');
      if (i > 0) headers[line.slice(0, i)] = line.slice(i + 2);
    }
    const reply = (status, b) => {
      if (this.closed) return;
      if (status < 0) return this.check(this.ex.cba_handle_transport_error(Date.now(), gen, seq));
      const a = this.put([b]);
      this.check(this.ex.cba_handle_response(Date.now(), gen, seq, status, a[0], a[1]));
    };
    Promise.resolve().then(() => this.host.request(method, url, headers, data))
      .then((res) => reply(res.status, res.body), () => reply(-1));
  }

  save(v) {
    try {
      if (v) this.host.set(this.key, v);
      else this.host.remove(this.key);
    } catch (e) { /* storage full or gone: the session lives on in memory */ }
  }

  emit(to) {
    const s = this.listeners.length && this.ex.cba_is_signed_in(to) ? this.state() : null;
    if (s && this.replaced) s.replaced = true;
    this.replaced = false;
    for (const cb of this.listeners.slice()) this.tell(cb, s);
  }

  tell(cb, s) { // a listener's exception is reported, not thrown into the engine's loop
    try { cb(s); } catch (e) { setTimeout(() => { throw e; }); }
  }

  done(r) {
    const [op, ok] = r(REC.completed), p = this.pending[op];
    const a = ok ? r(REC.completion) : null, e = ok ? null : this.err(r(REC.error));
    if (!p) return;
    delete this.pending[op];
    if (e) p[1](e);
    else p[0](p[2](a[0], a[1]));
  }

  // Gives a call to the engine once the module is ready, in call order. `fast`: a
  // getLoginState, which the cached view may answer then (no earlier call still waiting).
  // `flags`: the argument after the (ptr, len) pairs, for the exports that take one.
  op(name, parts, map, fast, flags) {
    this.transit++;
    return this.ready.then(() => {
      this.transit--;
      return fast && this.cached() || new Promise((resolve, reject) => {
        if (this.closed) throw new AuthError('CLOSED', 'init() was called again');
        const id = this.ex[name](Date.now(), ...this.put(parts), flags);
        if (id >= 0) this.pending[id] = [resolve, reject, map];
        this.check(id); // drains: may complete `id` at once
      });
    });
  }

  wechat(name) {
    return this.ready
      .then(() => this.host.login().catch((e) => {
        throw e instanceof AuthError ? e : new AuthError('WX_LOGIN_FAILED', e && e.errMsg || String(e));
      }))
      .then((code) => this.op(name, [utf8(String(code)), utf8(this.o.appid || this.host.appid() || '')],
        () => this.state()));
  }

  // user.update({ nickName, avatarUrl }): the fields given (bit 0, bit 1) are sent; then
  // the listeners hear the state with the user as the server answered it.
  update({ nickName: n, avatarUrl: a }) {
    return this.op('cba_update_profile', [bytes(n), bytes(a)],
      () => this.emit(this.ex.cba_login_state()), 0, (n != null) | (a != null) << 1);
  }

  // LoginState | null, read from the engine.
  state() {
    const ex = this.ex, st = ex.cba_login_state();
    if (!ex.cba_session()) return null;
    const [, type, token, expires] = this.rec()(REC.session); // (uid: in user)
    return {
      loginType: STATES[st], isAnonymousAuth: STATES[st] === 'ANONYMOUS',
      credential: { accessToken: token, tokenType: type, accessTokenExpire: expires },
      user: this.user(),
    };
  }

  // getLoginState's answer: shared by the calls that get it from the cache, so read-only.
  frozen() {
    const s = this.state();
    if (s) [s.credential, s.user, s].forEach(Object.freeze);
    return s;
  }

  user() {
    if (!this.ex.cba_user()) return null;
    const [uid, nickName, avatarUrl, email, openid] = this.rec()(REC.user);
    // update() on a prototype shared by this client's users: not an own field, so users
    // compare equal, and setData/JSON copy only the data.
    const u = Object.assign(Object.create(this.proto), { uid, nickName, avatarUrl });
    if (email) u.email = email;
    if (openid) u.openid = openid;
    return u;
  }
}

// --- the API --------------------------------------------------------------------------

let client = null;

function init(options) {
  const o = Object.assign({}, options);
  if (typeof o.env !== 'string' || !o.env) {
    throw new AuthError('INVALID_ARGUMENT', 'init({ env }) needs an env id');
  }
  if (client) client.close();
  const mp = MINIPROGRAM || typeof WXWebAssembly === 'object' && typeof wx === 'object';
  client = new Client(o, mp ? miniProgramHost(o) : webHost(o));
}

function auth() {
  if (!client) throw new AuthError('NOT_INITIALIZED', 'call init({ env }) before auth()');
  return client.auth;
}

// Adds auth() and an init() that also records the env to the Mini Program's own wx.cloud,
// keeping its other members (and calling its own init).
function install(defaults) {
  const cloud = wx.cloud || (wx.cloud = {}), own = cloud.init;
  if (typeof WXWebAssembly === 'object') {
    const path = defaults && defaults.wasm || WASM;
    early = { path, inst: WXWebAssembly.instantiate(path, IMPORTS), seed: seed() };
    // Engines compile wasm functions on their first call: call the start-up exports once
    // now, with no arguments (refused before they reach the engine: no time, then not
    // drained), and drain, so that init() finds them compiled.
    early.inst.then((i) => {
      const x = (i.instance || i).exports;
      x.cba_init();
      x.cba_restore();
      x.cba_poll();
    }, () => {}); // a failed load is reported by init()'s calls
  }
  const add = {
    init(o) {
      init(Object.assign({}, defaults, o));
      if (typeof own === 'function') own.call(cloud, o);
    },
    auth,
  };
  try { Object.assign(cloud, add); } catch (e) { /* frozen */ }
  if (cloud.auth !== auth) wx.cloud = Object.assign(Object.create(cloud), add);
  return wx.cloud;
}

module.exports = { init, auth, install, AuthError };
// For the tests of index.js (the Mini Program copy leaves them out).
if (!MINIPROGRAM) Object.assign(module.exports, { _codec: { utf8, text }, _abi: { REC, reader, TRANSMIT } });
