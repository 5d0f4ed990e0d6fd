// The emulator console: every read and change goes through the admin routes of
// `cloudbase-auth serve` (docs/emulator.md) with the admin token the user typed, kept
// in this tab's sessionStorage. Data is written with textContent only, never as HTML.
'use strict';

const TOKEN_KEY = 'cloudbase-auth-admin-token';
const PAGE = 50;
const PAGE_MAX = 500;
const POLL_MS = 2000;

const $ = (id) => document.getElementById(id);
const state = { users: [], nextAfter: null, query: '', selected: null, pending: 0, timer: null };

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function status(text, isError) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', Boolean(isError));
}

function time(secs) {
  if (secs === undefined || secs === null) return '—';
  return new Date(secs * 1000).toISOString().replace('T', ' ').slice(0, 19);
}

class AdminError extends Error {
  constructor(status, body) {
    super((body && (body.error_description || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token()}` };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (!response.ok) {
    if (response.status === 401) signOut('The admin token was refused.');
    throw new AdminError(response.status, json);
  }
  return json;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.timer);
  state.timer = null;
  $('app').hidden = true;
  $('forget-token').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  status('');
}

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function badge(td, disabled) {
  td.textContent = '';
  const span = document.createElement('span');
  span.className = disabled ? 'badge disabled' : 'badge active';
  span.textContent = disabled ? 'disabled' : 'active';
  td.appendChild(span);
}

function kind(user) {
  return user.anonymous ? 'anonymous' : 'WeChat';
}

function renderUsers() {
  const body = $('users').tBodies[0];
  body.textContent = '';
  for (const user of state.users) {
    const row = document.createElement('tr');
    row.dataset.uid = user.uid;
    if (state.selected === user.uid) row.classList.add('selected');
    cell(row, user.uid, 'uid');
    cell(row, kind(user), 'kind');
    cell(row, (user.identities || []).map((i) => i.openid).join(', ') || '—', 'openids');
    cell(row, user.name || '—', 'nickname');
    cell(row, time(user.created_at));
    cell(row, time(user.last_sign_in_at));
    badge(cell(row, '', 'state'), Boolean(user.disabled_at));
    row.addEventListener('click', () => select(user.uid));
    body.appendChild(row);
  }
  $('users-empty').hidden = state.users.length > 0;
  $('more').hidden = !state.nextAfter;
  $('user-count').textContent = `(${state.users.length}${state.nextAfter ? '+' : ''} shown)`;
}

function usersPath(limit, after) {
  const params = new URLSearchParams({ limit: String(limit) });
  if (state.query) params.set('q', state.query);
  if (after) params.set('after', after);
  return `/emulator/v1/users?${params}`;
}

// Reloads the pages shown so far (one request of up to PAGE_MAX users).
async function refreshUsers() {
  const limit = Math.min(PAGE_MAX, Math.max(PAGE, state.users.length));
  const page = await api('GET', usersPath(limit));
  state.users = page.users;
  state.nextAfter = page.next_after;
  renderUsers();
}

async function moreUsers() {
  const page = await api('GET', usersPath(PAGE, state.nextAfter));
  state.users = state.users.concat(page.users);
  state.nextAfter = page.next_after;
  renderUsers();
}

function fact(list, name, value) {
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = value;
  list.append(dt, dd);
}

function fillTable(table, rows) {
  const body = table.tBodies[0];
  body.textContent = '';
  for (const values of rows) {
    const row = document.createElement('tr');
    for (const v of values) cell(row, v);
    body.appendChild(row);
  }
}

async function select(uid) {
  state.selected = uid;
  renderUsers();
  await showDetail();
}

async function showDetail(keepInputs) {
  const uid = state.selected;
  if (!uid) {
    $('user-card').hidden = true;
    return;
  }
  let detail;
  try {
    detail = await api('GET', `/emulator/v1/users/${encodeURIComponent(uid)}`);
  } catch (e) {
    if (e.status === 404) {
      state.selected = null;
      $('user-card').hidden = true;
      return;
    }
    throw e;
  }
  const { user, sessions } = detail;
  $('user-card').hidden = false;
  $('detail-uid').textContent = user.uid;
  const facts = $('detail-facts');
  facts.textContent = '';
  fact(facts, 'env', user.env);
  fact(facts, 'kind', kind(user));
  fact(facts, 'status', user.disabled_at ? `disabled since ${time(user.disabled_at)}` : 'active');
  fact(facts, 'created', time(user.created_at));
  fact(facts, 'last sign-in', time(user.last_sign_in_at));
  fact(facts, 'nickname', user.name || '—');
  fact(facts, 'avatar', user.picture || '—');
  fillTable($('identities'), (user.identities || []).map((i) => [i.appid, i.openid, i.unionid || '—']));
  fillTable($('sessions'), sessions.map((s) => [s.id, s.device_id || '—', time(s.created_at), time(s.last_used_at)]));
  if (!keepInputs) {
    $('profile-name').value = user.name || '';
    $('profile-picture').value = user.picture || '';
  }
  $('disable').hidden = Boolean(user.disabled_at);
  $('enable').hidden = !user.disabled_at;
}

async function refreshExchanges() {
  const { exchanges } = await api('GET', '/emulator/v1/wechat/exchanges');
  fillTable($('exchanges'), exchanges.map((x) => [
    time(x.at), x.appid, x.openid || '—', x.errcode === 0 ? 'ok' : `errcode ${x.errcode}`,
  ]));
}

async function refreshAll(keepInputs) {
  await refreshUsers();
  await refreshExchanges();
  if (state.selected) await showDetail(keepInputs);
}

// Actions and refreshes run one at a time, in the order they were asked for (a click
// during a refresh waits for it); the status line says how each action went.
let queue = Promise.resolve();
function serially(job) {
  const run = queue.then(job, job);
  queue = run.catch(() => {});
  return run;
}

function act(label, action) {
  state.pending += 1;
  return serially(async () => {
    try {
      const done = await action();
      // Said once the page shows the result.
      await refreshAll(false);
      status(done || `${label}: done`);
    } catch (e) {
      status(`${label}: ${e.message}`, true);
    } finally {
      state.pending -= 1;
    }
  });
}

function poll() {
  if (state.pending > 0 || !$('live').checked || !token()) return;
  state.pending += 1;
  serially(async () => {
    try {
      await refreshAll(true);
    } catch (e) {
      status(`refresh failed: ${e.message}`, true);
    } finally {
      state.pending -= 1;
    }
  });
}

async function open() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('forget-token').hidden = false;
  await act('load', async () => 'connected');
  if (!state.timer) state.timer = setInterval(poll, POLL_MS);
}

function userPath(suffix) {
  return `/emulator/v1/users/${encodeURIComponent(state.selected)}${suffix}`;
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function wire() {
  $('token-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = $('token-input').value.trim();
    $('token-input').value = '';
    sessionStorage.setItem(TOKEN_KEY, value);
    try {
      await api('GET', '/emulator/v1/users?limit=1');
    } catch (e) {
      if (e.status !== 401) signOut(`Cannot reach the server: ${e.message}`);
      return;
    }
    await open();
  });
  $('forget-token').addEventListener('click', () => signOut(''));
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.query = $('search').value.trim();
    state.users = [];
    act('search', async () => `search: ${state.query || 'all users'}`);
  });
  $('search-clear').addEventListener('click', () => {
    $('search').value = '';
    state.query = '';
    act('search', async () => 'all users');
  });
  $('more').addEventListener('click', () => act('load more', async () => {
    await moreUsers();
    return `${state.users.length} users shown`;
  }));
  $('profile-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const edit = {};
    const name = $('profile-name').value.trim();
    const picture = $('profile-picture').value.trim();
    if (name) edit.name = name;
    if (picture) edit.picture = picture;
    act('save profile', async () => {
      await api('PATCH', userPath(''), edit);
      return 'profile saved';
    });
  });
  $('disable').addEventListener('click', () => act('disable', async () => {
    await api('POST', userPath('/disable'));
    return `user ${state.selected} disabled`;
  }));
  $('enable').addEventListener('click', () => act('enable', async () => {
    await api('POST', userPath('/enable'));
    return `user ${state.selected} enabled`;
  }));
  $('revoke').addEventListener('click', () => act('revoke', async () => {
    const { revoked } = await api('DELETE', userPath('/sessions'));
    return `${revoked} session(s) revoked`;
  }));
  $('delete').addEventListener('click', () => act('delete', async () => {
    const uid = state.selected;
    await api('DELETE', userPath(''));
    state.selected = null;
    return `user ${uid} deleted`;
  }));
  $('mint-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const request = { appid: $('mint-appid').value.trim() };
    const openid = $('mint-openid').value.trim();
    if (openid) request.openid = openid;
    act('mint', async () => {
      const { code, openid: minted } = await api('POST', '/emulator/v1/wechat/codes', request);
      $('minted-code').textContent = code;
      $('minted-openid').textContent = minted;
      return 'wx.login code minted';
    });
  });
  $('export').addEventListener('click', () => act('export', async () => {
    const doc = await api('GET', '/emulator/v1/export');
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    download(`cloudbase-auth-export-${stamp}.json`, JSON.stringify(doc, null, 2));
    return `exported ${doc.users.length} users`;
  }));
  $('import-file').addEventListener('change', () => {
    const file = $('import-file').files[0];
    if (!file) return;
    act('import', async () => {
      const { imported } = await api('POST', '/emulator/v1/import', await file.text());
      $('import-file').value = '';
      return `imported ${imported} users`;
    });
  });
  $('reset').addEventListener('click', () => {
    $('reset-confirm').hidden = false;
  });
  $('reset-no').addEventListener('click', () => {
    $('reset-confirm').hidden = true;
  });
  $('reset-yes').addEventListener('click', () => {
    $('reset-confirm').hidden = true;
    act('reset', async () => {
      await api('DELETE', '/emulator/v1/data');
      state.selected = null;
      $('user-card').hidden = true;
      $('minted-code').textContent = '';
      $('minted-openid').textContent = '';
      return 'everything deleted';
    });
  });
}

wire();
if (token()) {
  open();
} else {
  signOut('');
}
