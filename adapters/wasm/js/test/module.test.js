'use strict';
// The shipped files: size budget, the module's imports and exports against what the facade
// provides and calls, ES2017 syntax, no browser-only globals in the Mini Program copy.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const acorn = require('acorn');

const DIR = path.join(__dirname, '..');
const WASM = path.join(DIR, 'cloudbase_auth.wasm');
const MIN = path.join(DIR, 'cloudbase-auth.min.js');
const SRC = path.join(DIR, 'index.js');
// 52,000 until the account operations and the server's error texts added
// 3,321 bytes that no cut recovered without a hand-written snapshot codec (adapters/wasm/README.md, Sizes).
const BUDGET = 55300;

const module_ = new WebAssembly.Module(fs.readFileSync(WASM));

test(`the .wasm plus the Mini Program facade JS are within ${BUDGET} bytes`, () => {
  const wasm = fs.statSync(WASM).size, js = fs.statSync(MIN).size;
  console.log(`# cloudbase_auth.wasm ${wasm} + cloudbase-auth.min.js ${js} = ${wasm + js} bytes (budget ${BUDGET})`);
  assert.ok(wasm + js <= BUDGET,
    `${wasm} (wasm) + ${js} (js) = ${wasm + js} bytes, over the budget of ${BUDGET} by ${wasm + js - BUDGET}`);
});

/** The import object each copy of the facade passes to instantiate. */
async function importsGivenBy(file, miniProgram) {
  const seen = [];
  const saved = { wx: globalThis.wx, WXWebAssembly: globalThis.WXWebAssembly, instantiate: WebAssembly.instantiate };
  try {
    if (miniProgram) {
      globalThis.wx = { getStorageSync: () => '', getRandomValues: ({ success }) => success({ randomValues: new ArrayBuffer(16) }) };
      globalThis.WXWebAssembly = { instantiate: (p, imports) => { seen.push(imports); return new Promise(() => {}); } };
    } else {
      WebAssembly.instantiate = (b, imports) => { seen.push(imports); return new Promise(() => {}); };
    }
    delete require.cache[require.resolve(file)];
    require(file).init({ env: 'imports-check' });
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    globalThis.wx = saved.wx;
    globalThis.WXWebAssembly = saved.WXWebAssembly;
    WebAssembly.instantiate = saved.instantiate;
    delete require.cache[require.resolve(file)];
  }
  assert.equal(seen.length, 1, `${file} instantiated the module once`);
  return seen[0];
}

for (const [name, file, mp] of [['index.js (Node)', SRC, false], ['cloudbase-auth.min.js (Mini Program)', MIN, true]]) {
  test(`every import of the module is provided by ${name}`, async () => {
    const given = await importsGivenBy(file, mp);
    const missing = WebAssembly.Module.imports(module_)
      .filter((i) => !(given[i.module] && i.name in given[i.module]))
      .map((i) => `${i.module}.${i.name} (${i.kind})`);
    assert.deepEqual(missing, [], `imports the facade does not provide: ${missing.join(', ')}`);
  });
}

test('the module exports every function the facade calls, and no globals', () => {
  const exports = WebAssembly.Module.exports(module_);
  const funcs = new Set(exports.filter((e) => e.kind === 'function').map((e) => e.name));
  for (const file of [SRC, MIN]) {
    const called = new Set(fs.readFileSync(file, 'utf8').match(/\bcba_\w+/g));
    assert.ok(called.size >= 16, file);
    for (const n of called) assert.ok(funcs.has(n), `${path.basename(file)} calls ${n}, which the module does not export`);
    // And the facade reaches every export: none is dead weight in the budget.
    for (const n of funcs) assert.ok(called.has(n), `${path.basename(file)} never calls ${n}`);
  }
  for (const n of ['cba_update_profile', 'cba_delete_account']) assert.ok(funcs.has(n), n);
  assert.ok(exports.some((e) => e.kind === 'memory' && e.name === 'memory'));
  // WXWebAssembly: "exported Globals are not supported on iOS".
  assert.deepEqual(exports.filter((e) => e.kind === 'global').map((e) => e.name), []);
  assert.ok(!funcs.has('cba_reset'), 'cba_reset is for host builds only');
});

test('the module starts small: at most 2 pages of memory, nothing to import', () => {
  const inst = new WebAssembly.Instance(module_, {});
  assert.ok(inst.exports.memory.buffer.byteLength <= 2 * 65536, `${inst.exports.memory.buffer.byteLength}`);
  assert.ok(inst.exports.cba_buf_len() >= 16 * 1024 + 1);
});

test('a whole session uses well under the 64 KiB stack', () => {
  // Paint the stack (the module's first 64 KiB, below the statics), run a session
  // through the raw exports, and see how far down the paint was overwritten.
  const { _codec: { utf8 }, _abi: { REC, reader, TRANSMIT } } = require(SRC);
  const ex = new WebAssembly.Instance(module_, {}).exports;
  const mem = new Uint8Array(ex.memory.buffer), base = ex.cba_buf();
  assert.ok(base >= 65536, 'the statics sit above the stack');
  mem.fill(0xaa, 0, 65536);
  const put = (...parts) => {
    let off = 0;
    return parts.flatMap((p) => { mem.set(p, base + off); off += p.length; return [base + off - p.length, p.length]; });
  };
  const now = 1.7e12;
  let request;
  const drain = () => {
    for (let k; (k = ex.cba_poll()) > 0;) {
      if (k === TRANSMIT) request = reader(ex)(REC.transmit).slice(0, 2); // generation, seq
    }
  };
  const reply = (status, body) => {
    const a = put(utf8(JSON.stringify(body)));
    assert.equal(ex.cba_handle_response(now, request[0], request[1], status, a[0], a[1]), 1);
    drain();
  };
  const a = put(utf8('stack-env'), new Uint8Array(16).fill(3));
  assert.equal(ex.cba_init(now, a[0], a[1], 0, 0, a[2]), 0);
  drain();
  ex.cba_sign_in_anonymously(now);
  drain();
  reply(200, { token_type: 'Bearer', access_token: 'a'.repeat(1060), refresh_token: 'r'.repeat(43),
    expires_in: 7200, scope: 'anonymous', sub: '1234567890123456789', groups: ['x'] });
  reply(200, { sub: '1234567890123456789', name: '微信用户😀', picture: 'https://x/y.png',
    providers: [{ id: 'wx0123456789abcdef', provider_user_id: 'oX' }], deep: [[[[[[[1, { a: [1.5e3, null] }]]]]]]] });
  assert.equal(ex.cba_login_state(), 2);
  ex.cba_get_user_info(now);
  drain();
  reply(401, { error: 'unauthenticated', error_code: 16, error_description: 'd'.repeat(300) });
  ex.cba_sign_out(now);
  drain();
  let low = 0;
  while (low < 65536 && mem[low] === 0xaa) low++;
  const used = 65536 - low;
  console.log(`# stack high-water mark: ${used} bytes of 65536`);
  assert.ok(used > 1000 && used <= 32768, String(used));
});

test('the calls install() makes to compile the start-up exports change nothing', () => {
  // install() calls cba_init(), cba_restore() and cba_poll() with no arguments on the
  // module it loads at launch; the first init() must still find a fresh engine.
  const ex = new WebAssembly.Instance(module_, {}).exports;
  assert.equal(ex.cba_init(), -(1 * 256 + 3), 'refused: no time');
  assert.equal(ex.cba_restore(), -(1 * 256 + 5), 'refused: not drained');
  assert.equal(ex.cba_poll(), 0, 'drained');
  assert.equal(ex.cba_login_state(), 0, 'still uninitialised');
  const base = ex.cba_buf(), env = Buffer.from('prime-env-1');
  new Uint8Array(ex.memory.buffer, base, 64).set(env);
  assert.equal(ex.cba_init(Date.now(), base, env.length, 0, 0, base + 32), 0);
  assert.equal(ex.cba_poll(), 4, 'Uninitialized → Initialized');
  assert.equal(ex.cba_login_state(), 1);
});

test('both facade files are plain ES2017 CommonJS', () => {
  for (const file of [SRC, MIN]) {
    assert.doesNotThrow(() => acorn.parse(fs.readFileSync(file, 'utf8'), { ecmaVersion: 2017, sourceType: 'script' }), file);
  }
});

test('the Mini Program copy uses no browser/Node-only global and no dynamic code', () => {
  const min = fs.readFileSync(MIN, 'utf8');
  for (const word of ['WebAssembly', 'TextEncoder', 'TextDecoder', 'fetch', 'crypto', 'localStorage', 'require', 'eval', 'Function', 'process', 'Buffer', 'globalThis']) {
    assert.doesNotMatch(min, new RegExp(`(?<![\\w$])${word}\\b`), `cloudbase-auth.min.js mentions ${word}`);
  }
  // And no CloudBase path or JSON field: the core writes the requests.
  for (const word of ['/auth/v1', 'signin', 'access_token', 'refresh_token', 'provider_token', 'client_id']) {
    assert.ok(!min.includes(word) && !fs.readFileSync(SRC, 'utf8').includes(word), `the facade mentions ${word}`);
  }
});

test('index.d.ts declares what index.js exports', () => {
  const dts = fs.readFileSync(path.join(DIR, 'index.d.ts'), 'utf8');
  const api = require(SRC);
  for (const name of ['init', 'auth', 'install', 'AuthError']) {
    assert.ok(name in api, name);
    assert.match(dts, new RegExp(`export (function|class) ${name}\\b`));
  }
  assert.throws(() => api.auth(), (e) => e instanceof api.AuthError && e.code === 'NOT_INITIALIZED');
  assert.throws(() => api.init({}), (e) => e.code === 'INVALID_ARGUMENT');
});
