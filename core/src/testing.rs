//! Test harness: a fake clock and a scripted CloudBase server (feature `testing`).
//!
//! Modelled on quinn-proto's `Pair` and str0m's `progress`: [`Harness`] owns an
//! [`Engine`], a [`ScriptedServer`] that answers with the JSON shapes of the wire
//! reference (anonymous and WeChat users, rotating refresh tokens, `invalid_grant`,
//! `unauthenticated`), and a clock in milliseconds. Requests are answered automatically
//! by default; tests that need to hold, fail or reorder replies turn that off and answer
//! by hand. Everything is `no_std` and allocation-free, so the no-allocation test can run
//! a whole session through it.
//!
//! Not a stable API: for this workspace's tests only.

use crate::capacity::*;
use crate::snapshot::SNAPSHOT_MAX;
use crate::wire::{
    self, Credentials, Endpoint, ErrorBody, ProviderIdentity, ProviderTokenBody,
    ProviderTokenReply, ProviderTokenRequest, RefreshRequest, RevokeRequest, User,
};
use crate::{Completion, Config, Delivery, Engine, Error, LoginState, OpId, Output, RequestId};
use heapless::{String, Vec};

/// Largest reply body the scripted server writes.
pub const REPLY_MAX: usize = 4096;
/// Start of the fake clock (2023-11-14, Unix ms): real-looking, far from zero.
pub const T0: u64 = 1_700_000_000_000;
/// The env id the harness initialises with.
pub const ENV: &str = "test-env-1a2b3c";
/// The Mini Program appId the harness uses.
pub const APPID: &str = "wx0123456789abcdef";

/// A request the engine sent, as the harness recorded it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Sent {
    /// Its id.
    pub request: RequestId,
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Path and query.
    pub path: String<PATH_MAX>,
    /// The `authorization` header, if any.
    pub authorization: Option<String<{ ACCESS_TOKEN_MAX + TOKEN_TYPE_MAX + 1 }>>,
    /// `x-request-id`.
    pub request_id_header: String<32>,
    /// `x-device-id`.
    pub device_id_header: String<DEVICE_ID_MAX>,
    /// The JSON body.
    pub body: Vec<u8, REQUEST_BODY_MAX>,
}

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
    pub hits: [u32; 9],
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
            hits: [0; 9],
        }
    }
}

fn endpoint_index(e: Endpoint) -> usize {
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
            _ => Reply::error(404, "not_found", 5, "no such endpoint"),
        }
    }
}

/// Engine + scripted server + fake clock.
pub struct Harness {
    /// The engine under test.
    pub engine: Engine,
    /// The server it talks to.
    pub server: ScriptedServer,
    /// Fake clock (host ms).
    pub now: u64,
    /// Answer requests automatically (default) or leave them in [`Harness::sent`].
    pub auto_reply: bool,
    /// Requests sent and not yet answered (when `auto_reply` is off).
    pub sent: Vec<Sent, 8>,
    /// Login state changes seen, in order (the newest 64).
    pub changes: Vec<(LoginState, LoginState), 64>,
    /// Completions seen, in order (the newest 64).
    pub completions: Vec<(OpId, Result<Completion, Error>), 64>,
    /// The last persisted snapshot (`None`: nothing stored or storage cleared).
    pub stored: Option<Vec<u8, SNAPSHOT_MAX>>,
    /// How many times storage was cleared.
    pub clears: u32,
    /// How many [`Output::SessionReplaced`] were reported.
    pub replacements: u32,
    /// Every request sent, counted per endpoint index of [`Endpoint::ALL`].
    pub sent_count: [u32; 9],
    /// The last deadline the engine reported.
    pub deadline: Option<u64>,
    buf: [u8; POLL_BUFFER_MIN],
}

impl Harness {
    /// A harness whose engine is initialised for [`ENV`] at [`T0`] and drained.
    pub fn new() -> Self {
        let mut h = Self::uninit();
        h.engine
            .init(h.now, Config::new(ENV), [42; 16])
            .expect("valid config");
        h.run();
        h
    }

    /// A harness whose engine is not initialised yet.
    pub fn uninit() -> Self {
        Harness {
            engine: Engine::new(),
            server: ScriptedServer::default(),
            now: T0,
            auto_reply: true,
            sent: Vec::new(),
            changes: Vec::new(),
            completions: Vec::new(),
            stored: None,
            clears: 0,
            replacements: 0,
            sent_count: [0; 9],
            deadline: None,
            buf: [0; POLL_BUFFER_MIN],
        }
    }

    /// Drains every output; answers requests while `auto_reply` is on.
    pub fn run(&mut self) {
        loop {
            self.drain();
            if !self.auto_reply || self.sent.is_empty() {
                return;
            }
            let sent = self.sent.remove(0);
            let reply = self.server.handle(&sent);
            let _ = self
                .engine
                .handle_response(self.now, sent.request, reply.status, &reply.body);
        }
    }

    /// Polls until `Timeout`, recording everything.
    pub fn drain(&mut self) {
        loop {
            let out = self
                .engine
                .poll_output(&mut self.buf)
                .expect("buffer is POLL_BUFFER_MIN");
            match out {
                Output::Transmit(t) => {
                    let sent = Sent {
                        request: t.request,
                        endpoint: t.endpoint,
                        path: String::try_from(t.path).expect("path fits"),
                        authorization: t
                            .header(wire::HEADER_AUTHORIZATION)
                            .map(|v| String::try_from(v).expect("authorization fits")),
                        request_id_header: String::try_from(
                            t.header(wire::HEADER_REQUEST_ID).unwrap_or(""),
                        )
                        .expect("request id fits"),
                        device_id_header: String::try_from(
                            t.header(wire::HEADER_DEVICE_ID).unwrap_or(""),
                        )
                        .expect("device id fits"),
                        body: Vec::from_slice(t.body.unwrap_or(&[])).expect("body fits"),
                    };
                    self.sent_count[endpoint_index(sent.endpoint)] += 1;
                    self.sent
                        .push(sent)
                        .expect("at most one request in flight plus stale ones");
                }
                Output::PersistSnapshot(bytes) => {
                    self.stored =
                        Some(Vec::from_slice(bytes).expect("snapshot within SNAPSHOT_MAX"));
                }
                Output::ClearStorage => {
                    self.stored = None;
                    self.clears += 1;
                }
                Output::LoginStateChanged { from, to } => {
                    if self.changes.is_full() {
                        self.changes.remove(0);
                    }
                    let _ = self.changes.push((from, to));
                }
                Output::SessionReplaced => self.replacements += 1,
                Output::OperationCompleted { op, result } => {
                    if self.completions.is_full() {
                        let _ = self.completions.remove(0);
                    }
                    let _ = self.completions.push((op, result));
                }
                Output::Timeout(deadline) => {
                    self.deadline = deadline;
                    return;
                }
            }
        }
    }

    /// Moves the clock forward by `ms`, fires timers, and runs.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.engine.handle_timeout(self.now);
        self.run();
    }

    /// Moves the clock to the engine's next deadline (if any) and runs.
    pub fn advance_to_deadline(&mut self) {
        if let Some(d) = self.deadline {
            self.now = self.now.max(d);
            self.engine.handle_timeout(self.now);
            self.run();
        }
    }

    /// Answers the oldest held request with the server's reply.
    pub fn reply_next(&mut self) -> Delivery {
        let sent = self.sent.remove(0);
        let reply = self.server.handle(&sent);
        let d = self
            .engine
            .handle_response(self.now, sent.request, reply.status, &reply.body);
        self.run();
        d
    }

    /// Answers the oldest held request with `status` and `body`.
    pub fn reply_next_with(&mut self, status: u16, body: &[u8]) -> Delivery {
        let sent = self.sent.remove(0);
        let d = self
            .engine
            .handle_response(self.now, sent.request, status, body);
        self.run();
        d
    }

    /// Fails the oldest held request in transport.
    pub fn fail_next(&mut self) -> Delivery {
        let sent = self.sent.remove(0);
        let d = self.engine.handle_transport_error(self.now, sent.request);
        self.run();
        d
    }

    /// The result of operation `op`, if it completed.
    pub fn result(&self, op: OpId) -> Option<Result<Completion, Error>> {
        self.completions
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, r)| *r)
    }

    /// Signs in anonymously and runs to completion.
    pub fn sign_in_anonymously(&mut self) -> Result<Completion, Error> {
        let op = self
            .engine
            .sign_in_anonymously(self.now)
            .expect("initialised");
        self.run();
        self.result(op).expect("completed")
    }

    /// Signs in with WeChat as `openid` (minting a code like `wx.login`) and runs.
    pub fn sign_in_with_wechat(&mut self, openid: &str) -> Result<Completion, Error> {
        let code = self.server.mint_code(openid);
        let op = self
            .engine
            .sign_in_with_wechat(self.now, &code, APPID)
            .expect("valid input");
        self.run();
        self.result(op).expect("completed")
    }

    /// Restores `bytes` into a fresh engine (same env), as a second start would.
    pub fn restart_with(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.engine = Engine::new();
        self.engine
            .init(self.now, Config::new(ENV), [43; 16])
            .expect("valid config");
        self.run();
        let r = self.engine.restore(self.now, bytes);
        self.run();
        r
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}
