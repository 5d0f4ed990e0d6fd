'use strict';
// The WeChat Mini Program stand-in both clients run in: one `wx` for ours and for the
// official SDK, so neither gets a cheaper runtime than the other.
//
// - Storage: `getStorageSync`/`setStorageSync` keep values as JSON text and hand back a
//   fresh copy on every read (what wx storage does); a missing key reads as ''.
// - `wx.request` takes `data` as an ArrayBuffer, a string or an object (sent as JSON) and
//   gives the reply body as an ArrayBuffer when `responseType: 'arraybuffer'`, else as
//   text parsed as JSON when `dataType` is 'json' (the default), like the real one. It is
//   answered by `backend` (set only while preparing the stored sessions); without one it
//   fails like a device offline, and every call is counted, so a timed run can show it
//   made no request.
// - Callbacks (`success`/`fail`) come asynchronously, on the next turn of the event loop.
// - `WXWebAssembly.instantiate` takes only a path inside the code package.
// - The globals Mini Programs lack (WebAssembly, TextEncoder, TextDecoder, fetch, crypto)
//   are removed once the stand-in is installed.

const fs = require('node:fs');
const path = require('node:path');

const WA = globalThis.WebAssembly;
const APPID = 'wx0123456789abcdef';
const OPENID = 'oBENCH0000000000000000000001';

function installStandin({ root, storage = {}, backend = null }) {
  const store = new Map(Object.entries(storage).map(([k, v]) => [k, JSON.stringify(v)]));
  const handle = { store, requests: 0, backend };
  const later = (fn, arg) => setImmediate(() => fn && fn(arg));

  const wx = {
    getSystemInfoSync() {
      return {
        brand: 'devtools', model: 'node-bench', platform: 'devtools', system: 'Node',
        version: '8.0.50', SDKVersion: '3.7.0', language: 'zh_CN', pixelRatio: 2,
        windowWidth: 375, windowHeight: 667,
      };
    },
    getAccountInfoSync() { return { miniProgram: { appId: APPID, envVersion: 'develop', version: '' } }; },
    getRendererUserAgent() { return Promise.resolve('Mozilla/5.0 (node-bench) MiniProgramEnv'); },
    onAppShow() {}, offAppShow() {}, onAppHide() {}, offAppHide() {},
    onNetworkStatusChange() {}, getNetworkType(o) { later(o && o.success, { networkType: 'wifi' }); },
    getStorageSync(key) { return store.has(key) ? JSON.parse(store.get(key)) : ''; },
    setStorageSync(key, data) {
      if (typeof key !== 'string' || !key) throw new Error('setStorageSync:fail parameter error');
      const json = JSON.stringify(data);
      if (json === undefined) throw new Error('setStorageSync:fail data not serializable');
      store.set(key, json);
    },
    removeStorageSync(key) { store.delete(key); },
    clearStorageSync() { store.clear(); },
    getStorageInfoSync() { return { keys: [...store.keys()], currentSize: 0, limitSize: 10240 }; },
    getRandomValues({ length, success }) {
      const b = new Uint8Array(length);
      for (let i = 0; i < length; i++) b[i] = Math.random() * 256;
      later(success, { randomValues: b.buffer });
    },
    login(o = {}) {
      const res = { code: 'bench-code-' + Math.random().toString(36).slice(2), errMsg: 'login:ok' };
      if (!o.success && !o.fail && !o.complete) return Promise.resolve(res);
      later(o.success, res);
      later(o.complete, res);
    },
    connectSocket() { throw new Error('connectSocket is not used by the auth flows'); },
    request(o) {
      handle.requests++;
      const { url, method = 'GET', header = {}, data, responseType = 'text', dataType = 'json' } = o;
      let body;
      if (data instanceof ArrayBuffer) body = Buffer.from(data).toString('utf8');
      else if (typeof data === 'string') body = data;
      else if (data !== undefined && data !== null) body = JSON.stringify(data);
      const reply = handle.backend && handle.backend({ url, method: method.toUpperCase(), header, body });
      if (!reply) {
        const err = { errMsg: 'request:fail offline' };
        later(o.fail, err);
        later(o.complete, err);
        return { abort() {} };
      }
      const text = JSON.stringify(reply.body);
      let payload;
      if (responseType === 'arraybuffer') {
        const b = Buffer.from(text);
        payload = b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
      } else if (dataType === 'json') {
        payload = JSON.parse(text);
      } else {
        payload = text;
      }
      const res = { statusCode: reply.status, header: { 'content-type': 'application/json' }, data: payload, cookies: [], errMsg: 'request:ok' };
      later(o.success, res);
      later(o.complete, res);
      return { abort() {}, onHeadersReceived() {}, offHeadersReceived() {} };
    },
  };

  const WXWebAssembly = {
    instantiate(p, imports) {
      if (typeof p !== 'string' || !/\.wasm$/.test(p) || p.includes('..')) {
        return Promise.reject(new TypeError('WXWebAssembly.instantiate: a package path'));
      }
      return WA.instantiate(fs.readFileSync(path.join(root, p)), imports).then((r) => r.instance);
    },
  };

  globalThis.wx = wx;
  globalThis.WXWebAssembly = WXWebAssembly;
  globalThis.Page = function Page() {};
  globalThis.App = function App() {};
  globalThis.getApp = () => ({ globalData: {} });
  for (const name of ['WebAssembly', 'TextEncoder', 'TextDecoder', 'fetch', 'crypto']) {
    Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
    delete globalThis[name];
  }
  return handle;
}

module.exports = { installStandin, APPID, OPENID };
