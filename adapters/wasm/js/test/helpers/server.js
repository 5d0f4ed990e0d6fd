'use strict';
// Starts the real server, `cloudbase-auth serve`, on 127.0.0.1 with a fresh data dir.
// Binary: $CLOUDBASE_AUTH_BIN, else debug/cloudbase-auth in the target dir (cargo build -p
// cloudbase-auth, which scripts/test-wasm.sh runs first).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');

const ROOT = path.resolve(__dirname, '../../../../..');
// Where cargo put it: $CARGO_TARGET_DIR (relative to the repository, where the scripts
// run cargo) or target/.
const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = process.env.CLOUDBASE_AUTH_BIN || path.join(TARGET, 'debug/cloudbase-auth');
const APPID = 'wx0123456789abcdef';

/** Resolves to { url, port, mintCode(openid, appid?), stop() } once the server listens. */
function startServer(extraArgs = []) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`no server binary at ${BIN}: run cargo build -p cloudbase-auth`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cba-wasm-test-'));
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--signin-rate-per-ip', '0', '--signin-rate-per-device', '0', ...extraArgs],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('server did not start in 20 s')), 20000);
    function fail(e) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${e.message}\nstderr: ${stderr}`));
    }
    child.on('exit', (code) => fail(new Error(`server exited with ${code}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const m = /cloudbase-auth listening on (http:\/\/[^\s]+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const url = m[1].replace(/\/$/, '');
      let stopped = false;
      resolve({
        url,
        port: Number(new URL(url).port),
        appid: APPID,
        mintCode: (openid, appid = APPID) => postJson(`${url}/emulator/v1/wechat/login-code`,
          { appid, openid }).then((r) => {
          if (!r.code) throw new Error(`no code: ${JSON.stringify(r)}`);
          return r.code;
        }),
        stop: () => new Promise((done) => {
          if (stopped) return done();
          stopped = true;
          child.once('exit', () => {
            fs.rmSync(dataDir, { recursive: true, force: true });
            done();
          });
          child.kill('SIGTERM');
        }),
      });
    });
  });
}

function postJson(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let data = '';
        res.on('data', (d) => { data += d; });
        res.on('end', () => {
          try { resolve(JSON.parse(data)); } catch (e) { reject(new Error(`${res.statusCode}: ${data}`)); }
        });
      });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Polls `cond` until it is truthy (or fails after `ms`). */
async function until(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

module.exports = { startServer, until, APPID, ROOT };
