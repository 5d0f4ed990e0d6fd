'use strict';
// The facade's own UTF-8 codec (Mini Programs have no TextEncoder/TextDecoder). The snapshot's
// base64 is the module's (facade.test.js checks the stored text against Buffer's).
const test = require('node:test');
const assert = require('node:assert/strict');
const { _codec: { utf8, text } } = require('..');

const SAMPLES = ['', 'a', 'env-1a2b', 'é', '中文', '微信用户😀', '\u0000\u007f\u0080\u07ff\u0800\uffff',
  '\ud83d\ude00x', 'a\u{10ffff}b', 'x'.repeat(5000)];

test('utf8 matches Buffer for well-formed strings, and round-trips', () => {
  for (const s of SAMPLES) {
    assert.deepEqual(Buffer.from(utf8(s)), Buffer.from(s, 'utf8'), s);
    assert.equal(text(utf8(s)), s);
    assert.equal(text(Buffer.from(s, 'utf8')), s);
  }
});

test('lone surrogates encode as U+FFFD, like TextEncoder', () => {
  for (const s of ['\ud800', 'a\udc00b', '\ude00\ud83d', 'x\ud83d']) {
    assert.deepEqual(Buffer.from(utf8(s)), Buffer.from(new TextEncoder().encode(s)), JSON.stringify(s));
  }
});

test('malformed UTF-8 decodes with U+FFFD and never throws', () => {
  const bad = [[0x80], [0xc3], [0xe4, 0xb8], [0xf0, 0x9f, 0x98], [0xff, 0x41], [0xc3, 0x41], [0xf5, 0x80, 0x80, 0x80]];
  for (const b of bad) {
    const s = text(new Uint8Array(b));
    assert.ok(s.includes('\ufffd'), JSON.stringify(b));
  }
  assert.equal(text(new Uint8Array([0xc3, 0x41])), '\ufffdA');
  // Random bytes: never throws, and valid parts survive.
  for (let i = 0; i < 200; i++) {
    const b = require('node:crypto').randomBytes(i);
    assert.equal(typeof text(b), 'string');
  }
});
