//! The scripted CloudBase Auth server of the harness: answers with the JSON shapes of
//! §3–§6 of docs/wire.md (anonymous and WeChat users, rotating refresh tokens,
//! `invalid_grant`, `unauthenticated`), in memory and without allocating.

use super::{APPID, Sent};
use crate::capacity::*;
use crate::wire::{
    Credentials, Endpoint, ErrorBody, ProfileUpdateRequest, ProviderIdentity, ProviderTokenBody,
    ProviderTokenReply, ProviderTokenRequest, RefreshRequest, RevokeRequest, User,
};
use heapless::{String, Vec};

/// Largest reply body the scripted server writes.
pub const REPLY_MAX: usize = 4096;

/// A reply the scripted server produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8, REPLY_MAX>,
}

impl Reply {
    /// A reply with a literal body (cut at [`REPLY_MAX`]).
    pub fn raw(status: u16, body: &[u8]) -> Self {
        let n = body.len().min(REPLY_MAX);
        Reply {
            status,
            body: Vec::from_slice(&body[..n]).unwrap_or_default(),
        }
    }

    fn json<T: serde::Serialize>(status: u16, value: &T) -> Self {
        let mut body = Vec::new();
        let _ = body.resize_default(REPLY_MAX);
        let n = serde_json_core::to_slice(value, &mut body).unwrap_or(0);
        body.truncate(n);
        Reply { status, body }
    }

    fn error(status: u16, error: &str, code: i64, description: &str) -> Self {
        Self::json(status, &ErrorBody::new(error, code, description))
    }
}

const USERS_MAX: usize = 16;
const CODES_MAX: usize = 16;

#[derive(Debug, Clone, Default)]
struct ServerUser {
    uid: String<UID_MAX>,
    openid: String<OPENID_MAX>,
    access: String<ACCESS_TOKEN_MAX>,
    refresh: String<REFRESH_TOKEN_MAX>,
}

/// A small CloudBase Auth server that lives in memory.
#[derive(Debug, Clone)]
pub struct ScriptedServer {
    users: Vec<ServerUser, USERS_MAX>,
    codes: Vec<(String<64>, String<OPENID_MAX>), CODES_MAX>,
    counter: u32,
    /// `expires_in` of access tokens it hands out (seconds).
    pub expires_in: u64,
    /// Whether credentials carry a refresh token.
    pub issue_refresh_tokens: bool,
    /// Length access tokens are padded to (a real JWT is about 1,027 characters).
    pub access_token_len: usize,
    /// Requests answered, per endpoint index of [`Endpoint::ALL`].
    pub hits: [u32; Endpoint::ALL.len()],
}

impl Default for ScriptedServer {
    fn default() -> Self {
        ScriptedServer {
            users: Vec::new(),
            codes: Vec::new(),
            counter: 0,
            expires_in: 7200,
            issue_refresh_tokens: true,
            access_token_len: 40,
            hits: [0; Endpoint::ALL.len()],
        }
    }
}

pub(super) fn endpoint_index(e: Endpoint) -> usize {
    Endpoint::ALL.iter().position(|x| *x == e).unwrap_or(0)
}

fn fmt_into<const N: usize>(out: &mut String<N>, parts: &[&str], n: u32) {
    out.clear();
    for p in parts {
        let _ = out.push_str(p);
    }
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        let _ = out.push(d as char);
    }
}

impl ScriptedServer {
    /// What `wx.login` would return for `openid`: a fresh single-use code.
    pub fn mint_code(&mut self, openid: &str) -> String<64> {
        self.counter += 1;
        let mut code = String::new();
        fmt_into(&mut code, &["code-"], self.counter);
        if self.codes.is_full() {
            self.codes.remove(0);
        }
        let _ = self
            .codes
            .push((code.clone(), String::try_from(openid).unwrap_or_default()));
        code
    }

    /// Invalidates every refresh token (as a server-side revocation would).
    pub fn revoke_all_refresh_tokens(&mut self) {
        for u in &mut self.users {
            u.refresh.clear();
        }
    }

    /// Invalidates every access token (as a key rotation would).
    pub fn revoke_all_access_tokens(&mut self) {
        for u in &mut self.users {
            u.access.clear();
        }
    }

    /// How many requests hit `endpoint`.
    pub fn hits(&self, endpoint: Endpoint) -> u32 {
        self.hits[endpoint_index(endpoint)]
    }

    /// The uid that owns `openid`, if any.
    pub fn uid_of_openid(&self, openid: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.openid == openid)
            .map(|u| u.uid.as_str())
    }

    fn issue(&mut self, idx: usize) -> Reply {
        self.counter += 1;
        let n = self.counter;
        let len = self.access_token_len;
        let user = &mut self.users[idx];
        fmt_into(&mut user.access, &["at-", &user.uid, "-"], n);
        while user.access.len() < len && user.access.push('x').is_ok() {}
        fmt_into(&mut user.refresh, &["rt-", &user.uid, "-"], n);
        let mut c = Credentials {
            token_type: String::try_from("Bearer").unwrap_or_default(),
            access_token: user.access.clone(),
            refresh_token: None,
            expires_in: self.expires_in,
            scope: String::try_from(if user.openid.is_empty() {
                "anonymous"
            } else {
                "user"
            })
            .unwrap_or_default(),
            sub: user.uid.clone(),
            groups: Vec::new(),
        };
        if self.issue_refresh_tokens {
            c.refresh_token = Some(user.refresh.clone());
        }
        let _ = c.groups.push(c.scope.clone());
        Reply::json(200, &c)
    }

    fn new_user(&mut self, openid: &str) -> usize {
        if self.users.is_full() {
            self.users.remove(0);
        }
        self.counter += 1;
        let mut uid = String::new();
        fmt_into(&mut uid, &["uid-"], self.counter);
        let user = ServerUser {
            uid,
            openid: String::try_from(openid).unwrap_or_default(),
            ..Default::default()
        };
        let _ = self.users.push(user);
        self.users.len() - 1
    }

    fn bearer_user(&self, sent: &Sent) -> Option<usize> {
        let token = sent.authorization.as_deref()?.strip_prefix("Bearer ")?;
        self.users
            .iter()
            .position(|u| !u.access.is_empty() && u.access == token)
    }

    fn take_code(&mut self, code: &str) -> Option<String<OPENID_MAX>> {
        let i = self.codes.iter().position(|(c, _)| c == code)?;
        Some(self.codes.swap_remove(i).1)
    }

    /// Provider tokens are `pt:<openid>` here: opaque to the client, cheap to check.
    fn provider_token_openid(token: &str) -> Option<&str> {
        token.strip_prefix("pt:")
    }

    /// Answers one request the way CloudBase does.
    pub fn handle(&mut self, sent: &Sent) -> Reply {
        self.hits[endpoint_index(sent.endpoint)] += 1;
        let body = sent.body.as_slice();
        match sent.endpoint {
            Endpoint::SignInAnonymously => {
                let idx = self.new_user("");
                self.issue(idx)
            }
            Endpoint::ProviderToken => {
                let Ok((req, _)) = serde_json_core::from_slice::<ProviderTokenRequest<&str>>(body)
                else {
                    return Reply::error(400, "invalid_argument", 3, "bad body");
                };
                match self.take_code(req.provider_code) {
                    Some(openid) => {
                        let mut t = String::new();
                        let _ = t.push_str("pt:");
                        let _ = t.push_str(&openid);
                        Reply::json(
                            200,
                            &ProviderTokenReply {
                                provider_token: t,
                                expires_in: 300,
                            },
                        )
                    }
                    None => Reply::error(400, "invalid_grant", 3, "invalid code"),
                }
            }
            Endpoint::SignInWithProvider => {
                let Ok((req, _)) = serde_json_core::from_slice::<ProviderTokenBody<&str>>(body)
                else {
                    return Reply::error(400, "invalid_argument", 3, "bad body");
                };
                let Some(openid) = Self::provider_token_openid(req.provider_token) else {
                    return Reply::error(400, "invalid_grant", 3, "bad provider token");
                };
                let idx = match self.users.iter().position(|u| u.openid == openid) {
                    Some(i) => i,
                    None => self.new_user(openid),
                };
                self.issue(idx)
            }
            Endpoint::Token => {
                let Ok((req, _)) = serde_json_core::from_slice::<RefreshRequest<&str>>(body) else {
                    return Reply::error(400, "invalid_argument", 3, "bad body");
                };
                match self
                    .users
                    .iter()
                    .position(|u| !u.refresh.is_empty() && u.refresh == req.refresh_token)
                {
                    Some(i) => self.issue(i),
                    None => Reply::error(400, "invalid_grant", 3, "refresh token invalid"),
                }
            }
            Endpoint::UserMe => match self.bearer_user(sent) {
                Some(i) => {
                    let u = &self.users[i];
                    let mut user = User {
                        sub: u.uid.clone(),
                        ..Default::default()
                    };
                    if u.openid.is_empty() {
                        let _ = user.name.push_str("anonymous");
                    } else {
                        let _ = user.name.push_str("微信用户😀");
                        let _ = user
                            .picture
                            .push_str("https://thirdwx.qlogo.cn/mmopen/vi_32/avatar/132");
                        let _ = user.providers.push(ProviderIdentity::new(
                            String::try_from(APPID).unwrap_or_default(),
                            u.openid.clone(),
                        ));
                    }
                    Reply::json(200, &user)
                }
                None => Reply::error(401, "unauthenticated", 16, "invalid access token"),
            },
            Endpoint::Revoke => {
                if serde_json_core::from_slice::<RevokeRequest<&str>>(body).is_err() {
                    return Reply::error(400, "invalid_argument", 3, "bad body");
                }
                Reply::raw(200, b"{}")
            }
            Endpoint::ProviderBind => {
                let Some(i) = self.bearer_user(sent) else {
                    return Reply::error(401, "unauthenticated", 16, "invalid access token");
                };
                let Ok((req, _)) = serde_json_core::from_slice::<ProviderTokenBody<&str>>(body)
                else {
                    return Reply::error(400, "invalid_argument", 3, "bad body");
                };
                let Some(openid) = Self::provider_token_openid(req.provider_token) else {
                    return Reply::error(400, "invalid_grant", 3, "bad provider token");
                };
                if self.users.iter().any(|u| u.openid == openid) {
                    return Reply::error(409, "already_exists", 6, "openid bound to another user");
                }
                self.users[i].openid = String::try_from(openid).unwrap_or_default();
                Reply::raw(200, b"{}")
            }
            Endpoint::UserProfile => {
                let Some(i) = self.bearer_user(sent) else {
                    return Reply::error(401, "unauthenticated", 16, "invalid access token");
                };
                let Ok((req, _)) = serde_json_core::from_slice::<ProfileUpdateRequest<&str>>(body)
                else {
                    return Reply::error(400, "invalid_argument", 3, "bad body");
                };
                if req.name.is_some_and(|n| n.chars().count() > 20) {
                    return Reply::error(400, "invalid_argument", 3, "nickname too long");
                }
                let mut user = User {
                    sub: self.users[i].uid.clone(),
                    ..Default::default()
                };
                let _ = user.name.push_str(req.name.unwrap_or("anonymous"));
                let _ = user.picture.push_str(req.picture.unwrap_or(""));
                Reply::json(200, &user)
            }
            Endpoint::DeleteMe => {
                let Some(i) = self.bearer_user(sent) else {
                    return Reply::error(401, "unauthenticated", 16, "invalid access token");
                };
                // Every token of the user stops working; the openid is free again.
                self.users[i] = ServerUser::default();
                Reply::raw(200, b"{}")
            }
            _ => Reply::error(404, "not_found", 5, "no such endpoint"),
        }
    }
}
