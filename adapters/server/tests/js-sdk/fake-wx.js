'use strict';
// A stand-in for the WeChat Mini Program runtime, enough for @cloudbase/js-sdk's Mini
// Program adapter (@cloudbase/adapter-wx_mp) to recognise the environment and run:
// the globals `wx`, `Page`, `App`, `getApp`; `wx.getSystemInfoSync`, the sync storage
// API, `wx.connectSocket` and `wx.request` (its `isMatch` checks these), plus
// `wx.login` (mints a code at the local server's WeChat emulator) and
// `wx.getAccountInfoSync` (the Mini Program's appId).
//
// Behaviour follows the WeChat docs where the SDK depends on it:
// - storage is per Mini Program, `getStorageSync` of a missing key returns '' and values
//   must survive a JSON round trip; 1 MB per key, 10 MB in total;
// - `wx.request` calls `success` for every HTTP status (4xx/5xx included) with
//   `{data, statusCode, header, cookies, errMsg}`, parses JSON replies (dataType 'json'),
//   sends object data as JSON (or as the query string for GET), defaults the
//   content-type to application/json, adds the Referer a Mini Program sends, and calls
//   `fail` with `{errMsg: 'request:fail …'}` only for network errors;
// - `wx.login` yields `{code, errMsg: 'login:ok'}` (callback or promise style).
//
// Every wx.request is recorded in `wire` (method, path, headers, body, status, reply)
// so tests can assert what the SDK actually sent and received. Requests may only go to
// the loopback server: anything else fails and is recorded with `blocked: true`.

const http = require('node:http');

const KEY_LIMIT = 1024 * 1024;
const TOTAL_LIMIT = 10 * 1024 * 1024;

function installFakeWx({ appId, origin, mintCode }) {
  const store = new Map();
  const wire = [];
  const logins = [];
  const allowedHost = new URL(origin).host;

  const storageBytes = () => {
    let n = 0;
    for (const [k, v] of store) n += Buffer.byteLength(k) + Buffer.byteLength(v);
    return n;
  };

  const wx = {
    // --- adapter detection -------------------------------------------------------
    getSystemInfoSync() {
      return {
        brand: 'devtools',
        model: 'node-test',
        platform: 'devtools',
        system: `Node ${process.version}`,
        version: '8.0.50',
        SDKVersion: '3.4.0',
        language: 'zh_CN',
        pixelRatio: 2,
        windowWidth: 375,
        windowHeight: 667,
      };
    },
    getAccountInfoSync() {
      return { miniProgram: { appId, envVersion: 'develop', version: '' } };
    },
    // An app (not a plugin): the SDK's isPlugin() looks for these.
    onAppShow() {},
    offAppShow() {},
    onAppHide() {},
    offAppHide() {},

    // --- storage ---------------------------------------------------------------------
    setStorageSync(key, data) {
      if (typeof key !== 'string' || key === '') throw new Error('setStorageSync:fail parameter error');
      if (data === undefined) throw new Error('setStorageSync:fail data is undefined');
      const json = JSON.stringify(data);
      if (Buffer.byteLength(json) > KEY_LIMIT) throw new Error('setStorageSync:fail exceed max size 1MB');
      const old = store.get(key);
      store.set(key, json);
      if (storageBytes() > TOTAL_LIMIT) {
        if (old === undefined) store.delete(key);
        else store.set(key, old);
        throw new Error('setStorageSync:fail exceed storage max size 10MB');
      }
    },
    getStorageSync(key) {
      const json = store.get(key);
      return json === undefined ? '' : JSON.parse(json);
    },
    removeStorageSync(key) {
      store.delete(key);
    },
    clearStorageSync() {
      store.clear();
    },
    getStorageInfoSync() {
      return {
        keys: [...store.keys()],
        currentSize: Math.ceil(storageBytes() / 1024),
        limitSize: TOTAL_LIMIT / 1024,
      };
    },

    // --- network -----------------------------------------------------------------------
    connectSocket() {
      throw new Error('connectSocket is not expected in the auth flows');
    },
    request(options) {
      const {
        url,
        data,
        header = {},
        method = 'GET',
        timeout = 60000,
        dataType = 'json',
        success,
        fail,
        complete,
      } = options;
      const entry = { method: method.toUpperCase(), url, headers: {}, body: undefined };
      wire.push(entry);
      let req;
      const finish = (ok, res) => {
        try {
          if (ok) success && success(res);
          else fail && fail(res);
        } finally {
          complete && complete(res);
        }
      };
      const failWith = (why) => {
        entry.error = why;
        finish(false, { errMsg: `request:fail ${why}` });
      };

      let target;
      try {
        target = new URL(url);
      } catch (e) {
        setImmediate(() => failWith(`invalid url ${url}`));
        return { abort() {} };
      }
      entry.path = target.pathname + target.search;
      if (target.protocol !== 'http:' || target.host !== allowedHost) {
        entry.blocked = true;
        setImmediate(() => failWith(`url not in domain list: ${target.origin}`));
        return { abort() {} };
      }

      const headers = {};
      for (const [k, v] of Object.entries(header)) {
        if (v !== undefined && v !== null) headers[k.toLowerCase()] = String(v);
      }
      if (!headers['content-type']) headers['content-type'] = 'application/json';
      headers.referer = `https://servicewechat.com/${appId}/devtools/page-frame.html`;

      let body;
      if (entry.method === 'GET') {
        if (data && typeof data === 'object') {
          for (const [k, v] of Object.entries(data)) target.searchParams.append(k, String(v));
          entry.path = target.pathname + target.search;
        }
      } else if (typeof data === 'string') {
        body = data;
      } else if (data !== undefined && data !== null) {
        body = JSON.stringify(data);
      }
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      entry.headers = headers;
      entry.body = body;

      req = http.request(
        target,
        { method: entry.method, headers, timeout },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed = text;
            if (dataType === 'json') {
              try {
                parsed = JSON.parse(text);
              } catch (e) {
                parsed = text;
              }
            }
            entry.status = res.statusCode;
            // A copy: the SDK mutates the object it gets (e.g. adds `uid` to user/me).
            entry.reply = typeof parsed === 'string' ? parsed : JSON.parse(text);
            finish(true, {
              data: parsed,
              statusCode: res.statusCode,
              header: res.headers,
              cookies: [],
              errMsg: 'request:ok',
            });
          });
          res.on('error', (e) => failWith(e.message));
        },
      );
      req.on('timeout', () => {
        req.destroy();
        failWith('timeout');
      });
      req.on('error', (e) => {
        if (entry.error === undefined) failWith(e.message);
      });
      if (body !== undefined) req.write(body);
      req.end();
      return {
        abort() {
          req.destroy(new Error('abort'));
        },
        onHeadersReceived() {},
        offHeadersReceived() {},
      };
    },

    // --- login -------------------------------------------------------------------------
    login(options = {}) {
      const { success, fail, complete } = options;
      const p = mintCode().then(
        (code) => {
          logins.push(code);
          return { code, errMsg: 'login:ok' };
        },
        (e) => {
          const err = { errMsg: `login:fail ${e.message}`, errno: -1 };
          throw err;
        },
      );
      if (!success && !fail && !complete) return p;
      p.then(
        (res) => {
          success && success(res);
          complete && complete(res);
        },
        (err) => {
          fail && fail(err);
          complete && complete(err);
        },
      );
      return undefined;
    },
  };

  globalThis.wx = wx;
  globalThis.Page = function Page() {};
  globalThis.App = function App() {};
  globalThis.getApp = () => ({ globalData: {} });

  return {
    wx,
    wire,
    logins,
    /** The raw stored string of a key, or undefined (what the SDK wrote). */
    stored(key) {
      const json = store.get(key);
      return json === undefined ? undefined : JSON.parse(json);
    },
    keys() {
      return [...store.keys()];
    },
  };
}

module.exports = { installFakeWx };
