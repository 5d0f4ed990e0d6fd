'use strict';
// One measured process of bench.js: `node child.js MODE CLIENT PACKAGE_DIR [STORAGE_JSON]`.
// MODE: prepare (sign in once against the canned backend, print the storage), bare (the
// stand-in with the stored session, no client), cold, warm, e2e. CLIENT: ours | sdk |
// floor (no client: getLoginState returns one settled promise, the harness's own cost).
// Prints one JSON line.

const fs = require('node:fs');
const path = require('node:path');
const { installStandin } = require('./standin');
const { cannedBackend } = require('./backend');

const ENV = 'bench-env-1a2b3c';
const CALLS = 10000; // getLoginState calls in the per-call loop
const FIRST_STATE_TRIES = 100; // bound on the wait for the first non-null state
const [mode, client, pkg, storageFile, gap = '50'] = process.argv.slice(2);
const LAUNCH_GAP_MS = Math.min(Math.max(Number(gap), 0), 1000);
const SDK_DIST = path.join(__dirname, 'node_modules/@cloudbase/js-sdk/miniprogram_dist');

const out = (o) => fs.writeSync(1, JSON.stringify(o) + '\n');
// CPU time of the whole process (every thread: V8 compiles wasm in the background), ms.
const cpu = (since) => {
  const u = process.cpuUsage(since);
  return since ? (u.user + u.system) / 1000 : u;
};

// Each client's three steps, as a Mini Program's app.js, onLaunch and first page do them.
const clients = {
  ours: {
    // app.js: require the facade and install it into wx.cloud.
    require() { this.m = require(path.join(pkg, 'cloudbase-auth/cloudbase-auth.min.js')); },
    load() { this.m.install({}); },
    // onLaunch: wx.cloud.init; a page: wx.cloud.auth().
    start() { wx.cloud.init({ env: ENV }); return wx.cloud.auth(); },
    signIn: (auth) => auth.signInWithWeChat(),
  },
  sdk: {
    require() {
      this.cloudbase = require(path.join(SDK_DIST, 'app.js'));
      this.auth = require(path.join(SDK_DIST, 'auth.js'));
    },
    load() { this.auth.registerAuth(this.cloudbase); },
    start() { return this.cloudbase.init({ env: ENV }).auth({ persistence: 'local' }); },
    signIn: (auth) => auth.signInWithOpenId({ useWxCloud: false }).then((r) => {
      if (r && r.error) throw r.error;
    }),
  },
  floor: {
    require() {},
    load() { this.answer = Promise.resolve({ user: {} }); },
    start() { return { getLoginState: () => this.answer }; },
  },
};

// `CALLS` getLoginState calls, each timed; the memory growth over them.
async function loop(auth) {
  const t = new Float64Array(CALLS);
  let nulls = 0;
  const m0 = process.memoryUsage();
  for (let i = 0; i < CALLS; i++) {
    const s = performance.now();
    const st = await auth.getLoginState();
    t[i] = performance.now() - s;
    if (!st) nulls++;
  }
  const m1 = process.memoryUsage();
  t.sort();
  return {
    nulls, medianUs: t[CALLS >> 1] * 1000, p99Us: t[Math.floor(CALLS * 0.99)] * 1000,
    heap: m1.heapUsed - m0.heapUsed, rss: m1.rss - m0.rss,
  };
}

async function firstState(auth) {
  for (let i = 0; i < FIRST_STATE_TRIES; i++) {
    const s = await auth.getLoginState();
    if (s) return s;
  }
  throw new Error(`${client}: getLoginState stayed null`);
}

async function main() {
  const c = clients[client];
  if (!c) throw new Error(`unknown client ${client}`);
  const storage = storageFile ? JSON.parse(fs.readFileSync(storageFile, 'utf8')) : {};
  const standin = installStandin({ root: pkg, storage, backend: mode === 'prepare' ? cannedBackend(ENV) : null });
  // performance.now(): ms since this process started (performance.timeOrigin).
  if (mode === 'bare') return out({ readyMs: performance.now(), readyCpuMs: cpu({ user: 0, system: 0 }) });

  if (mode === 'prepare') {
    c.require();
    c.load();
    const auth = c.start();
    await c.signIn(auth);
    await firstState(auth);
    return out({ storage: Object.fromEntries([...standin.store].map(([k, v]) => [k, JSON.parse(v)])) });
  }

  const m0 = process.memoryUsage();
  // The load: require(), then what app.js does next (ours: install(); the SDK:
  // registerAuth).
  const a = performance.now(), ac = cpu();
  c.require();
  const requireMs = performance.now() - a, requireCpuMs = cpu(ac);
  c.load();
  const loadMs = performance.now() - a, loadCpuMs = cpu(ac);
  if (mode === 'cold') return out({ requireMs, requireCpuMs, loadMs, loadCpuMs });
  if (mode === 'e2e') {
    const b = performance.now();
    await firstState(c.start());
    const e = performance.now();
    return out({
      loggedInMs: e, loggedInCpuMs: cpu({ user: 0, system: 0 }), noGapMs: e - b,
      clientMs: e - a, clientCpuMs: cpu(ac), requests: standin.requests,
    });
  }

  // warm: app.js has run; WeChat injects and starts the first page later (LAUNCH_GAP_MS
  // stands for that; the e2e processes have no gap).
  await new Promise((r) => setTimeout(r, LAUNCH_GAP_MS));
  const b = performance.now(), bc = cpu();
  const auth = c.start();
  await firstState(auth);
  const warmMs = performance.now() - b, warmCpuMs = cpu(bc);
  const m1 = process.memoryUsage();

  // The first CALLS calls (timed; their memory growth includes V8 compiling the loop and
  // growing the young generation, which the floor client shows), then CALLS more with
  // everything warm (the steady garbage and retention of the client).
  const first = await loop(auth);
  const steady = await loop(auth);
  out({
    loadMs, warmMs, warmCpuMs, requests: standin.requests, nulls: first.nulls + steady.nulls,
    medianUs: first.medianUs, p99Us: first.p99Us,
    heapClient: m1.heapUsed - m0.heapUsed, rssClient: m1.rss - m0.rss,
    heapLoop: first.heap, rssLoop: first.rss, heapSteady: steady.heap, rssSteady: steady.rss,
  });
}

main().then(() => process.exit(0), (e) => {
  fs.writeSync(2, `${e && e.stack || e}\n`);
  process.exit(1);
});
