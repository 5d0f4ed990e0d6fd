'use strict';
// Start / stop the `cloudbase-auth serve` binary for a test file, and a tiny HTTP client
// for talking to it directly (outside the SDK).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const DEFAULT_BIN = path.resolve(__dirname, '../../../../target/debug/cloudbase-auth');

/**
 * Start the server on 127.0.0.1:0 with a fresh data dir and wait for its
 * `cloudbase-auth listening on http://ADDR` line (or, with CLOUDBASE_AUTH_URL set, use
 * the server running there).
 * Resolves to {origin, child, dataDir, stderr(), stop()}.
 */
async function startServer({ extraArgs = [], startTimeoutMs = 20000 } = {}) {
  // CLOUDBASE_AUTH_URL: test a server (or a balancer in front of several) that is
  // already running, started by the caller with `extraArgs` (scripts/test-scale-out.sh).
  const external = process.env.CLOUDBASE_AUTH_URL;
  if (external) {
    const origin = new URL(external).origin;
    return {
      origin,
      child: null,
      dataDir: null,
      stderr: () => '',
      stop: async () => ({ code: 0, signal: null }),
    };
  }
  const bin = process.env.CLOUDBASE_AUTH_BIN || DEFAULT_BIN;
  if (!fs.existsSync(bin)) {
    throw new Error(
      `server binary not found: ${bin} (build it with \`cargo build -p cloudbase-auth\` or set CLOUDBASE_AUTH_BIN)`,
    );
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cloudbase-auth-js-sdk-'));
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', path.join(dataDir, 'store'), ...extraArgs];
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A fixed admin token keeps a generated one off stdout.
    env: { ...process.env, CLOUDBASE_AUTH_ADMIN_TOKEN: 'js-sdk-compat-admin-token-0123456789' },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  // If this process dies first, do not leave the server or its data dir behind (e.g.
  // when the run's `timeout` sends SIGTERM to the process group).
  const killOnExit = () => {
    child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const onSignal = (sig) => {
    child.kill('SIGTERM');
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    exited.then(() => {
      clearTimeout(force);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  };
  process.on('exit', killOnExit);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);

  const origin = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not print its address within ${startTimeoutMs} ms\nstderr:\n${stderr}`));
    }, startTimeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        const first = out.slice(0, nl).trim();
        const m = /^cloudbase-auth listening on (http:\/\/\S+)$/.exec(first);
        clearTimeout(timer);
        if (m) resolve(m[1]);
        else reject(new Error(`unexpected first stdout line: ${JSON.stringify(first)}`));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited before listening (code ${code}, signal ${signal})\nstderr:\n${stderr}`));
    });
  });

  async function stop(timeoutMs = 10000) {
    let result;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      result = await exited;
      clearTimeout(timer);
    } else {
      result = await exited;
    }
    process.removeListener('exit', killOnExit);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    fs.rmSync(dataDir, { recursive: true, force: true });
    return result;
  }

  return { origin, child, dataDir, stderr: () => stderr, stop };
}

/** A JSON request straight to the server: resolves {status, body}. */
function call(origin, method, pathAndQuery, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      new URL(pathAndQuery, origin),
      {
        method,
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        timeout: 10000,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = text;
          try {
            parsed = JSON.parse(text);
          } catch (e) {
            // keep the text
          }
          resolve({ status: res.statusCode, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${pathAndQuery}: timeout`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

module.exports = { startServer, call };
