'use strict';
// A WeChat Mini Program stand-in for Node: installs a fake `wx`, `WXWebAssembly`, `Page`
// and `App`, and removes the globals Mini Programs do not have (WebAssembly, TextEncoder,
// TextDecoder, fetch, crypto). Everything it needs from those is captured first.

const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const nodeCrypto = require('node:crypto');

// Captured when this file loads, before any install() deletes the global.
const WA = globalThis.WebAssembly;

const KEY_LIMIT = 1024 * 1024; // 1 MB per key
const TOTAL_LIMIT = 10 * 1024 * 1024; // 10 MB per Mini Program

/**
 * Installs the stand-in. `root`: the code package directory (WXWebAssembly paths are
 * relative to it). Returns a handle with the storage map, recorded calls and knobs.
 */
function installFakeWx({ root, appid, openid = 'oFAKEOPENID0000000000000001', mintCode, shape = 'instance' }) {
  const handle = {
    storage: new Map(),
    openid,
    imports: [], // import objects given to WXWebAssembly.instantiate
    requests: [], // { method, url } of wx.request calls
    nativeInit: [], // options given to the Mini Program's own wx.cloud.init
    shape, // what WXWebAssembly.instantiate resolves to: 'instance' (typings) or 'both'
  };
  const bytesOf = (k, v) => Buffer.byteLength(k) + Buffer.byteLength(JSON.stringify(v));
  const total = () => { let n = 0; for (const [k, v] of handle.storage) n += bytesOf(k, v); return n; };
  const later = (fn) => setTimeout(fn, 1); // wx callbacks are asynchronous

  const wx = {
    getStorageSync(key) {
      return handle.storage.has(key) ? JSON.parse(JSON.stringify(handle.storage.get(key))) : '';
    },
    setStorageSync(key, data) {
      if (typeof key !== 'string' || !key) throw new Error('setStorageSync:fail parameter error');
      const json = JSON.stringify(data);
      if (json === undefined) throw new Error('setStorageSync:fail data not serializable');
      if (bytesOf(key, data) > KEY_LIMIT) throw new Error('setStorageSync:fail entry size limit reached');
      const old = handle.storage.has(key) ? bytesOf(key, handle.storage.get(key)) : 0;
      if (total() - old + bytesOf(key, data) > TOTAL_LIMIT) throw new Error('setStorageSync:fail storage limit reached');
      handle.storage.set(key, JSON.parse(json));
    },
    removeStorageSync(key) { handle.storage.delete(key); },
    clearStorageSync() { handle.storage.clear(); },
    getStorageInfoSync() {
      return { keys: [...handle.storage.keys()], currentSize: Math.ceil(total() / 1024), limitSize: TOTAL_LIMIT / 1024 };
    },
    getAccountInfoSync() { return { miniProgram: { appId: appid, envVersion: 'develop', version: '' } }; },
    getSystemInfoSync() { return { platform: 'devtools', SDKVersion: '3.7.0' }; },
    getRandomValues({ length, success, fail }) {
      if (!(length > 0 && length <= 1024)) return later(() => fail && fail({ errMsg: 'getRandomValues:fail invalid length' }));
      const b = nodeCrypto.randomBytes(length);
      later(() => success({ randomValues: b.buffer.slice(b.byteOffset, b.byteOffset + length) }));
    },
    login({ success, fail }) {
      mintCode(handle.openid).then((code) => later(() => success({ code, errMsg: 'login:ok' })),
        (e) => later(() => fail && fail({ errMsg: `login:fail ${e.message}` })));
    },
    request({ url, method = 'GET', header = {}, data, responseType = 'text', success, fail }) {
      handle.requests.push({ method, url });
      let body;
      if (data instanceof ArrayBuffer) body = Buffer.from(data);
      else if (typeof data === 'string') body = Buffer.from(data);
      else if (data !== undefined && data !== null) body = Buffer.from(JSON.stringify(data));
      const req = http.request(url, { method, headers: header }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const payload = responseType === 'arraybuffer'
            ? buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length)
            : buf.toString('utf8');
          later(() => success({ statusCode: res.statusCode, header: res.headers, data: payload, errMsg: 'request:ok' }));
        });
      });
      req.on('error', (e) => later(() => fail && fail({ errMsg: `request:fail ${e.message}` })));
      req.end(body);
    },
    // The Mini Program's own wx.cloud (base library): install() must keep these.
    cloud: {
      init(options) { handle.nativeInit.push(options); },
      callFunction() { return Promise.resolve({ result: 'native callFunction' }); },
      database() { return { collection: () => ({}) }; },
    },
  };

  const WXWebAssembly = {
    instantiate(p, imports) {
      // Only a path inside the code package, ending in .wasm (or .wasm.br) is accepted.
      if (typeof p !== 'string') return Promise.reject(new TypeError('WXWebAssembly.instantiate: path must be a string'));
      if (!/\.wasm(\.br)?$/.test(p)) return Promise.reject(new Error(`not a .wasm path: ${p}`));
      const file = path.resolve(root, '.' + path.posix.resolve('/', p));
      if (!file.startsWith(path.resolve(root) + path.sep) || p.includes('..') || /^[a-z]+:/i.test(p)) {
        return Promise.reject(new Error(`not a package path: ${p}`));
      }
      handle.imports.push(imports);
      return WA.instantiate(fs.readFileSync(file), imports)
        .then((r) => (handle.shape === 'instance' ? r.instance : r));
    },
  };

  const pages = [];
  globalThis.wx = wx;
  globalThis.WXWebAssembly = WXWebAssembly;
  globalThis.Page = (options) => {
    const page = Object.assign({}, options);
    page.data = JSON.parse(JSON.stringify(options.data || {}));
    page.setData = function setData(patch) { Object.assign(this.data, JSON.parse(JSON.stringify(patch))); };
    pages.push(page);
  };
  globalThis.App = (options) => { handle.app = options; };
  globalThis.getApp = () => handle.app;
  handle.pages = pages;
  handle.WebAssembly = WA;

  for (const name of ['WebAssembly', 'TextEncoder', 'TextDecoder', 'fetch', 'crypto']) {
    Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
    delete globalThis[name];
  }
  return handle;
}

module.exports = { installFakeWx };
