'use strict';
// A canned CloudBase Auth backend for preparing the stored sessions only (the timed runs
// make no request): the JSON replies of docs/wire.md §3-§5 for a WeChat sign-in
// (provider/token → signin/with/provider → user/me), with an access token the size of a
// real RS256 JWT carrying the full claim set (about 1 KB, docs/wire.md §7).

const crypto = require('node:crypto');
const { APPID, OPENID } = require('./standin');

const b64url = (x) => Buffer.from(x).toString('base64url');

function jwt(sub, env) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', kid: 'bench-key-1' };
  const claims = {
    iss: `https://${env}.ap-shanghai.tcb-api.tencentcloudapi.com`, sub, aud: env,
    exp: now + 7200, iat: now, at_hash: b64url(crypto.randomBytes(16)), name: 'WeChat user',
    picture: 'https://thirdwx.qlogo.cn/mmopen/vi_32/bench/132', scope: 'user', project_id: env,
    provider: APPID, provider_type: 'wx_mini', groups: ['user'], meta: { wxOpenId: OPENID },
    user_id: sub, roles: ['user'], user_type: 'externalUser', client_type: 'client_user',
    is_system_admin: false,
  };
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}.${b64url(crypto.randomBytes(256))}`;
}

function cannedBackend(env) {
  const sub = '1900000000' + String(crypto.randomInt(1e9)).padStart(9, '0');
  return ({ url, method }) => {
    const p = new URL(url).pathname;
    if (method === 'POST' && p === '/auth/v1/provider/token') {
      return { status: 200, body: { provider_token: b64url(crypto.randomBytes(32)), expires_in: 600 } };
    }
    if (method === 'POST' && p === '/auth/v1/signin/with/provider') {
      return {
        status: 200,
        body: {
          token_type: 'Bearer', access_token: jwt(sub, env), refresh_token: b64url(crypto.randomBytes(32)),
          expires_in: 7200, scope: 'user', sub, groups: ['user'],
        },
      };
    }
    if (method === 'GET' && p === '/auth/v1/user/me') {
      return {
        status: 200,
        body: {
          sub, name: 'WeChat user', picture: 'https://thirdwx.qlogo.cn/mmopen/vi_32/bench/132',
          groups: [{ id: 'user' }], providers: [{ id: APPID, provider_user_id: OPENID, name: 'WeChat' }],
          gender: 'UNKNOWN', created_from: 'wx_mini',
        },
      };
    }
    return { status: 404, body: { error: 'not_found', error_code: 5, error_description: `${method} ${p}` } };
  };
}

module.exports = { cannedBackend };
