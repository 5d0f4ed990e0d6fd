'use strict';
// The Mini Program client benchmark: cloudbase-auth's facade (cloudbase-auth.min.js +
// cloudbase_auth.wasm, as shipped) against the official @cloudbase/js-sdk 2.32.0
// (miniprogram_dist app.js + auth.js), in one run, in the same wx stand-in
// (standin.js), with the same signed-in WeChat session in storage and no network.
//
//   node bench.js [--rounds N] [--warm N] [--launch-gap MS] [--json FILE] [--package DIR]
//                 [--baseline DIR]
// --package: the directory with our two files (default adapters/wasm/js); --baseline:
// another build of them (say, the main branch's), measured in the same rounds as a third
// client ("before" column).
//
// Every figure comes from separate Node processes (child.js), interleaved: each round
// runs every kind of process once for both clients, in an order that rotates per round.
//   cold   require() of the client in a fresh process (ours: cloudbase-auth.min.js; the
//          SDK: app.js + auth.js), and with what app.js does next (ours: install(),
//          which starts loading the module; the SDK: registerAuth) — median of --rounds
//          (default 20)
//   warm   after that and --launch-gap ms (default 50: WeChat runs app.js at launch and
//          the first page's script and onLoad later): init + auth() until the first
//          non-null getLoginState(); then 10,000 getLoginState() calls, each timed
//          (median, p99), with the heap / RSS growth over them and over 10,000 more —
//          median of --warm (default 15) processes; a "floor" process runs the same
//          loop over a getLoginState that returns one settled promise (the harness's
//          own share)
//   e2e    a process that loads the client and calls init at once (no launch gap) until
//          the first non-null getLoginState(): the client's share of "process start →
//          logged in" is the time from just before its require() to then, in the same
//          process (wall and CPU) — what the process takes beyond one that loads the
//          stand-in and the stored session but no client, without the start-up noise of
//          Node itself, which the figure "minus a bare process" (timeOrigin → logged in,
//          minus the same for a "bare" process) also shows — median of --rounds; also
//          init → logged in with no gap. (Spawn-to-exit wall times: --json output.)
// plus bytes shipped (raw and gzip -9) and bytes stored (keys + JSON values).

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const HERE = __dirname;
const ROOT = path.join(HERE, '../..');
const SDK_VERSION = '2.32.0';
const CHILD_TIMEOUT_MS = 60000;

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const ROUNDS = Math.min(Math.max(Number(arg('--rounds', 20)), 1), 200);
const WARM = Math.min(Math.max(Number(arg('--warm', 15)), 1), ROUNDS);
const JSON_OUT = arg('--json', null);
const OURS = path.resolve(arg('--package', path.join(ROOT, 'adapters/wasm/js')));
const BASE = arg('--baseline', null) && path.resolve(arg('--baseline'));
const GAP = String(Math.min(Math.max(Number(arg('--launch-gap', 50)), 0), 1000));

const sdkPkg = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules/@cloudbase/js-sdk/package.json'), 'utf8'));
if (sdkPkg.version !== SDK_VERSION) throw new Error(`@cloudbase/js-sdk ${sdkPkg.version}, want ${SDK_VERSION}: npm ci in benches/js`);
const SDK_FILES = ['app.js', 'auth.js'].map((f) => path.join(HERE, 'node_modules/@cloudbase/js-sdk/miniprogram_dist', f));
const OUR_FILES = ['cloudbase-auth.min.js', 'cloudbase_auth.wasm'].map((f) => path.join(OURS, f));

// The code packages: ours at /cloudbase-auth/, as the guide lays it out.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cba-bench-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const pkgs = { ours: path.join(tmp, 'ours'), base: path.join(tmp, 'base') };
for (const [who, dir] of [['ours', OURS]].concat(BASE ? [['base', BASE]] : [])) {
  fs.mkdirSync(path.join(pkgs[who], 'cloudbase-auth'), { recursive: true });
  for (const f of ['cloudbase-auth.min.js', 'cloudbase_auth.wasm']) {
    fs.copyFileSync(path.join(dir, f), path.join(pkgs[who], 'cloudbase-auth', f));
  }
}
const CLIENTS = ['ours', 'sdk'].concat(BASE ? ['base'] : []);

// A measured process of `who` (ours, sdk, base, floor, bare).
function child(mode, who, storageFile) {
  const client = who === 'sdk' || who === 'floor' ? who : 'ours';
  const pkg = who === 'base' ? pkgs.base : pkgs.ours;
  const args = [path.join(HERE, 'child.js'), who === 'bare' ? 'bare' : mode, client, pkg].concat(storageFile ? [storageFile, GAP] : []);
  const a = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: HERE, encoding: 'utf8', timeout: CHILD_TIMEOUT_MS });
  const wallMs = performance.now() - a;
  if (r.status !== 0) throw new Error(`${mode} ${client}: exit ${r.status} ${r.signal || ''}\n${r.stderr}`);
  return Object.assign(JSON.parse(r.stdout.trim().split('\n').pop()), { wallMs });
}

// --- the stored sessions: one WeChat sign-in per client against the canned backend -----
const stores = {};
const storedBytes = {};
for (const client of CLIENTS) {
  const { storage } = child('prepare', client);
  stores[client] = path.join(tmp, `${client}-storage.json`);
  fs.writeFileSync(stores[client], JSON.stringify(storage));
  storedBytes[client] = Object.entries(storage)
    .reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(JSON.stringify(v)), 0);
}

// --- the interleaved runs --------------------------------------------------------------
const runs = { cold: { ours: [], sdk: [], base: [] }, warm: { ours: [], sdk: [], floor: [], base: [] }, e2e: { ours: [], sdk: [], bare: [], base: [] } };
for (let round = 0; round < ROUNDS; round++) {
  const jobs = [['e2e', 'bare']];
  for (const who of CLIENTS) jobs.push(['cold', who], ['e2e', who]);
  if (round < WARM) jobs.push(['warm', 'floor'], ...CLIENTS.map((who) => ['warm', who]));
  const shift = round % jobs.length; // rotate, so no kind always runs first
  for (const [mode, who] of jobs.slice(shift).concat(jobs.slice(0, shift))) {
    const r = child(mode, who, stores[who === 'floor' || who === 'bare' ? 'ours' : who]);
    if (r.requests) throw new Error(`${mode} ${who}: ${r.requests} network requests (the session should restore from storage)`);
    if (r.nulls) throw new Error(`${mode} ${who}: getLoginState() was null ${r.nulls} times`);
    runs[mode][who].push(r);
  }
  process.stderr.write(`\rround ${round + 1}/${ROUNDS}`);
}
process.stderr.write('\n');

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const med = (mode, who, f) => median(runs[mode][who].map(f));
const bare = med('e2e', 'bare', (r) => r.readyMs);
const bareCpu = med('e2e', 'bare', (r) => r.readyCpuMs);
const size = (files, gz) => files.reduce((n, f) => n + (gz ? zlib.gzipSync(fs.readFileSync(f), { level: 9 }).length : fs.statSync(f).size), 0);

const MB = 1048576;
// One figure for every client: { ours, sdk, base } (base only with --baseline), less `dx`.
const all = (mode, f, dx = 0) => Object.fromEntries(CLIENTS.map((who) => [who, med(mode, who, f) - dx]));
// The floor (a process whose getLoginState returns one settled promise): the harness's own
// share of the per-call and memory figures.
const floor = (f) => med('warm', 'floor', f);
const fixed = (ours, sdk, base) => ({ ours, sdk, base });
const bytesOf = (dir) => ['cloudbase-auth.min.js', 'cloudbase_auth.wasm'].map((f) => path.join(dir, f));
const rows = [ // [figure, unit, values, floor]
  [`cold load: require() in a fresh process (median of ${ROUNDS})`, 'ms', all('cold', (r) => r.requireMs)],
  ['cold load: require(), CPU time', 'ms', all('cold', (r) => r.requireCpuMs)],
  ['cold load + install() (ours: starts loading the module) / registerAuth (SDK)', 'ms', all('cold', (r) => r.loadMs)],
  ['cold load + install() / registerAuth, CPU time', 'ms', all('cold', (r) => r.loadCpuMs)],
  [`warm start: init + auth() → first getLoginState() non-null, ${GAP} ms after load (median of ${WARM})`, 'ms', all('warm', (r) => r.warmMs)],
  ['warm start, CPU time (all threads)', 'ms', all('warm', (r) => r.warmCpuMs)],
  [`warm start with no launch gap: init right after load → logged in (median of ${ROUNDS})`, 'ms', all('e2e', (r) => r.noGapMs)],
  [`process start → logged in, the client's share: require() → logged in, no gap (median of ${ROUNDS})`, 'ms', all('e2e', (r) => r.clientMs)],
  ["process start → logged in, the client's share, CPU time (all threads)", 'ms', all('e2e', (r) => r.clientCpuMs)],
  [`process start → logged in, minus a bare process (median of ${ROUNDS}; Node start-up noise)`, 'ms', all('e2e', (r) => r.loggedInMs, bare)],
  [`getLoginState() per call, median (10,000 calls; median of ${WARM} processes)`, 'µs', all('warm', (r) => r.medianUs), floor((r) => r.medianUs)],
  ['getLoginState() per call, p99', 'µs', all('warm', (r) => r.p99Us), floor((r) => r.p99Us)],
  ['RSS growth over the 10,000 calls', 'MB', all('warm', (r) => r.rssLoop / MB), floor((r) => r.rssLoop / MB)],
  ['heap growth over the 10,000 calls', 'MB', all('warm', (r) => r.heapLoop / MB), floor((r) => r.heapLoop / MB)],
  ['RSS growth over 10,000 more calls (steady)', 'MB', all('warm', (r) => r.rssSteady / MB), floor((r) => r.rssSteady / MB)],
  ['heap growth over 10,000 more calls (steady)', 'MB', all('warm', (r) => r.heapSteady / MB), floor((r) => r.heapSteady / MB)],
  ['heap added by load + logged in', 'MB', all('warm', (r) => r.heapClient / MB)],
  ['RSS added by load + logged in', 'MB', all('warm', (r) => r.rssClient / MB)],
  ['bytes shipped (raw)', 'B', fixed(size(OUR_FILES, false), size(SDK_FILES, false), BASE && size(bytesOf(BASE), false))],
  ['bytes shipped (gzip -9)', 'B', fixed(size(OUR_FILES, true), size(SDK_FILES, true), BASE && size(bytesOf(BASE), true))],
  ['bytes stored (keys + JSON values)', 'B', fixed(storedBytes.ours, storedBytes.sdk, storedBytes.base)],
];

const fmt = (v, unit) => v === undefined || v === null || Number.isNaN(v) ? '—'
  : unit === 'B' ? `${Math.round(v).toLocaleString('en-US')} B`
  : `${Math.abs(v) < 10 ? v.toFixed(2) : v.toFixed(1)} ${unit}`;
const ratio = (ours, sdk) => !(ours > 0) || !(sdk > 0) ? '—' : sdk / ours >= 10 ? `${(sdk / ours).toFixed(0)}×` : `${(sdk / ours).toFixed(2)}×`;
console.log(`Node ${process.version}, launch gap ${GAP} ms, ${os.cpus().length} CPUs (${os.cpus()[0].model}), load average ${os.loadavg()[0].toFixed(1)}; bare process ${bare.toFixed(1)} ms (CPU ${bareCpu.toFixed(1)} ms)`);
console.log(`| figure | ours | @cloudbase/js-sdk ${SDK_VERSION} | SDK / ours |${BASE ? ' before (--baseline) |' : ''} harness floor |`);
console.log(`|---|---:|---:|---:|${BASE ? '---:|' : ''}---:|`);
for (const [figure, unit, v, fl] of rows) {
  console.log(`| ${figure} | ${fmt(v.ours, unit)} | ${fmt(v.sdk, unit)} | ${ratio(v.ours, v.sdk)} |${BASE ? ` ${fmt(v.base, unit)} |` : ''} ${fmt(fl, unit)} |`);
}
if (JSON_OUT) {
  fs.writeFileSync(JSON_OUT, JSON.stringify({
    node: process.version, rounds: ROUNDS, warm: WARM, bareMs: bare,
    rows: rows.map(([figure, unit, values, fl]) => ({ figure, unit, ...values, floor: fl })), runs,
  }, null, 1));
}
