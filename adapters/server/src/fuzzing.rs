//! Fuzz entry points of the server (compiled for `cargo fuzz`, which builds with
//! `--cfg fuzzing`, and for this crate's unit tests only; the quinn-proto pattern).
//!
//! * [`server_request`]: scripted requests through the whole router in-process (no
//!   socket): CloudBase endpoints, health, JWKS, the emulator and admin routes, the demo
//!   files, and anything else.
//! * [`code2session_reply`]: arbitrary bytes as WeChat's `jscode2session` reply, read by
//!   the real-mode client's parser.
//!
//! The targets in `fuzz/fuzz_targets/` call these; the unit tests below replay every
//! committed seed and regression input through them.

use super::config::{RateLimits, ServeConfig, WeChatApps};
use super::demo::{DEMO_DIR, DEMO_PATH};
use super::emulator_api::{DATA_PATH, EXPORT_PATH, USERS_PATH};
use super::routes::{CLIENT_HEADERS, JWKS_PATH, router};
use super::state::AppState;
use super::wechat::{JSCODE2SESSION_PATH, REPLY_MAX, WxError, WxUser, is_valid_wx_id, parse_reply};
use super::{demo, open};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use cloudbase_auth_core::ServerErrorKind;
use cloudbase_auth_core::wire::{
    self, Credentials, DEFAULT_API_PATH, Endpoint, ErrorBody, HEADER_AUTHORIZATION,
    HEADER_CONTENT_TYPE, HEADER_DEVICE_ID, ProviderTokenReply, User, codes,
};
use cloudbase_auth_server_api::{HEALTH_PATH, LOGIN_CODE_PATH};
use http_body_util::BodyExt as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tower::ServiceExt as _;

// ----- code2session_reply --------------------------------------------------------------

/// `data`: bytes 0–1 the HTTP status (little-endian, any `u16`), the rest WeChat's body.
///
/// Asserts that [`parse_reply`] never panics and agrees with an independent reading of
/// the body through `serde_json::Value` (keeping every key, so duplicates are seen):
/// a non-2xx status, an oversized or non-object body, a wrongly typed or duplicated
/// `openid`/`unionid`/`errcode` give [`WxError::Upstream`]; else a non-zero `errcode`
/// gives its classification ([`WxError::from_errcode`]); else a valid `openid` gives the
/// user, with a valid non-empty `unionid` or none; anything else is `Upstream`.
pub fn code2session_reply(data: &[u8]) {
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = u16::from_le_bytes(*status);
    let got = parse_reply(status, body);
    let expected = expected_reply(status, body);
    match (&got, &expected) {
        (Err(WxError::Upstream(_)), Err(WxError::Upstream(_))) => {}
        _ => assert_eq!(got, expected, "status {status}, body {body:?}"),
    }
    if let Ok(user) = &got {
        assert!(is_valid_wx_id(&user.openid));
        assert!(user.unionid.as_deref().is_none_or(is_valid_wx_id));
    }
}

/// The oracle of [`code2session_reply`].
fn expected_reply(status: u16, body: &[u8]) -> Result<WxUser, WxError> {
    use serde_json::Value;
    let upstream = || Err(WxError::Upstream(String::new()));
    if !(200..300).contains(&status) || body.len() > REPLY_MAX {
        return upstream();
    }
    let Ok(Entries(entries)) = serde_json::from_slice::<Entries>(body) else {
        return upstream();
    };
    let field = |name: &str| -> Result<Option<&Value>, ()> {
        let mut found = entries.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (found.next(), found.next()) {
            (_, Some(_)) => Err(()),
            (Some(Value::Null) | None, _) => Ok(None),
            (Some(v), _) => Ok(Some(v)),
        }
    };
    let (Ok(openid), Ok(unionid), Ok(errcode)) =
        (field("openid"), field("unionid"), field("errcode"))
    else {
        return upstream();
    };
    let text = |v: Option<&Value>| match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    };
    let (Ok(openid), Ok(unionid)) = (text(openid), text(unionid)) else {
        return upstream();
    };
    let errcode = match errcode {
        None => 0,
        Some(v) => match v.as_i64() {
            Some(code) => code,
            None => return upstream(),
        },
    };
    if errcode != 0 {
        return Err(WxError::from_errcode(errcode));
    }
    let unionid = unionid.filter(|u| !u.is_empty());
    match openid {
        Some(openid)
            if is_valid_wx_id(&openid) && unionid.as_deref().is_none_or(is_valid_wx_id) =>
        {
            Ok(WxUser { openid, unionid })
        }
        _ => upstream(),
    }
}

/// A JSON object as its list of members, duplicates kept. Only the three members the
/// client reads keep their value; the others are skipped as `serde` skips unknown fields
/// (without checking the UTF-8 of their strings, as the parser under test does).
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if ["openid", "unionid", "errcode"].contains(&key.as_str()) {
                        members.push((key, map.next_value()?));
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Entries(members))
            }
        }
        d.deserialize_map(Members)
    }
}

// ----- server_request: the input format ----------------------------------------------

/// Most requests one input sends.
pub const REQUESTS_MAX: usize = 16;
/// Most headers one request carries (besides the `content-length` the harness sets).
pub const HEADERS_MAX: usize = 8;
/// The Mini Program appid the fuzzed server knows (emulated WeChat).
pub const FUZZ_APPID: &str = "wx0123456789abcdef";
/// The admin token of the fuzzed server (`$K` in an input).
pub const FUZZ_ADMIN_TOKEN: &str = "fuzz-admin-token-0123456789abcdef";

/// Methods by selector (`selector % 8`; 7 reads a raw method).
const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::DELETE,
    Method::OPTIONS,
    Method::PUT,
    Method::HEAD,
    Method::PATCH,
];

/// Header names by selector (past the end: a raw name): those a CloudBase client sends,
/// then ones browsers and proxies add.
pub fn known_headers() -> &'static [&'static str] {
    static HEADERS: OnceLock<Vec<&str>> = OnceLock::new();
    HEADERS.get_or_init(|| {
        let others = [
            "origin",
            "access-control-request-method",
            "access-control-request-headers",
            "content-encoding",
            "host",
            "x-forwarded-for",
        ];
        CLIENT_HEADERS.iter().chain(&others).copied().collect()
    })
}

/// Every path the server routes, by selector (past the end: a raw path).
pub fn known_paths() -> &'static [String] {
    static PATHS: OnceLock<Vec<String>> = OnceLock::new();
    PATHS.get_or_init(route_paths)
}

fn route_paths() -> Vec<String> {
    let mut paths: Vec<String> = Endpoint::ALL
        .iter()
        .map(|e| format!("{DEFAULT_API_PATH}{}", e.path()))
        .collect();
    paths.extend(
        [
            HEALTH_PATH,
            JWKS_PATH,
            LOGIN_CODE_PATH,
            USERS_PATH,
            DATA_PATH,
            EXPORT_PATH,
            JSCODE2SESSION_PATH,
            DEMO_PATH,
            DEMO_DIR,
        ]
        .map(str::to_owned),
    );
    paths.extend(demo::FILES.iter().map(|(f, _, _)| format!("{DEMO_DIR}{f}")));
    paths
}

/// Placeholders an input may use in a query, header value or body; each is replaced by
/// the latest value of its kind seen in a reply of the same input (or left as is), `$K`
/// by [`FUZZ_ADMIN_TOKEN`].
const PLACEHOLDERS: [(&str, Slot); 5] = [
    ("$A", Slot::Access),
    ("$R", Slot::Refresh),
    ("$P", Slot::Provider),
    ("$C", Slot::Code),
    ("$K", Slot::Admin),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Access,
    Refresh,
    Provider,
    Code,
    Admin,
}

/// A method, path or header name: one of a table's entries, or any bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pick {
    /// Entry `i` of the table.
    Known(u8),
    /// Any bytes.
    Raw(Vec<u8>),
}

/// One request of a [`server_request`] input, before placeholders are replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FuzzRequest {
    /// GET, POST, DELETE, OPTIONS, PUT, HEAD, PATCH, or raw.
    pub method: Pick,
    /// One of [`known_paths`], or raw.
    pub path: Pick,
    /// The query string without `?` (empty: none).
    pub query: Vec<u8>,
    /// Headers: a known or raw name, then the value.
    pub headers: Vec<(Pick, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
    /// KiB of spaces appended to the body (to reach the 64 KiB limit).
    pub pad_kib: u8,
}

/// A little-endian byte cursor; a missing byte reads as 0 and an overlong length is cut.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken.to_vec()
    }
    fn short(&mut self) -> Vec<u8> {
        let len = self.u8();
        self.bytes(len.into())
    }
    fn long(&mut self) -> Vec<u8> {
        let len = u16::from_le_bytes([self.u8(), self.u8()]);
        self.bytes(len.into())
    }
}

/// Reads a [`server_request`] input:
///
/// ```text
/// request := method path query:short headers body:long pad_kib:u8
/// method  := sel:u8  (sel % 8 < 7: METHODS; else raw:short)
/// path    := sel:u8  (sel < known_paths().len(): known; else raw:short)
/// headers := count:u8 (% 9) { name value:short }
/// name    := sel:u8  (sel < 12: known_headers(); else raw:short)
/// short   := len:u8 bytes        long := len:u16le bytes
/// ```
///
/// Requests follow each other until the input ends (at most [`REQUESTS_MAX`]).
pub fn decode_requests(data: &[u8]) -> Vec<FuzzRequest> {
    let known = known_paths().len();
    let mut c = Cursor(data);
    let mut requests = Vec::new();
    while !c.0.is_empty() && requests.len() < REQUESTS_MAX {
        let m = c.u8() % 8;
        let method = if usize::from(m) < METHODS.len() {
            Pick::Known(m)
        } else {
            Pick::Raw(c.short())
        };
        let p = c.u8();
        let path = if usize::from(p) < known {
            Pick::Known(p)
        } else {
            Pick::Raw(c.short())
        };
        let query = c.short();
        let count = c.u8() % (HEADERS_MAX as u8 + 1);
        let headers = (0..count)
            .map(|_| {
                let n = c.u8();
                let name = if usize::from(n) < known_headers().len() {
                    Pick::Known(n)
                } else {
                    Pick::Raw(c.short())
                };
                (name, c.short())
            })
            .collect();
        let body = c.long();
        let pad_kib = c.u8();
        requests.push(FuzzRequest {
            method,
            path,
            query,
            headers,
            body,
            pad_kib,
        });
    }
    requests
}

/// Writes requests in the layout [`decode_requests`] reads (seed corpora). Lengths are
/// cut to what the layout can say.
pub fn encode_requests(requests: &[FuzzRequest]) -> Vec<u8> {
    fn short(out: &mut Vec<u8>, b: &[u8]) {
        let b = &b[..b.len().min(255)];
        out.push(b.len() as u8);
        out.extend_from_slice(b);
    }
    // `raw`: a selector past the end of the table.
    fn pick(out: &mut Vec<u8>, p: &Pick, raw: u8) {
        match p {
            Pick::Known(i) => out.push(*i),
            Pick::Raw(bytes) => {
                out.push(raw);
                short(out, bytes);
            }
        }
    }
    let mut out = Vec::new();
    for r in requests {
        pick(&mut out, &r.method, 7);
        pick(&mut out, &r.path, u8::MAX);
        short(&mut out, &r.query);
        out.push(r.headers.len().min(HEADERS_MAX) as u8);
        for (name, value) in r.headers.iter().take(HEADERS_MAX) {
            pick(&mut out, name, u8::MAX);
            short(&mut out, value);
        }
        let body = &r.body[..r.body.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(body.len() as u16).to_le_bytes());
        out.extend_from_slice(body);
        out.push(r.pad_kib);
    }
    out
}

// ----- server_request: the harness ----------------------------------------------------

/// One server per process, reset before every input.
struct Harness {
    runtime: tokio::runtime::Runtime,
    state: Arc<AppState>,
    app: Router,
    /// Inputs run one at a time (unit tests run in parallel threads).
    serial: Mutex<()>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut config = ServeConfig::new(data_dir());
        config.admin_token = Some(FUZZ_ADMIN_TOKEN.to_owned());
        config.wechat.apps =
            WeChatApps::parse_list(&format!("{FUZZ_APPID}:fuzz-secret")).expect("valid app");
        config.wechat.emulator_quota_per_minute = 0;
        // Inputs must not depend on the ones before them: no limits (their buckets
        // would carry over; the limiter has its own tests).
        config.rate_limits = RateLimits {
            per_ip_per_minute: 0,
            per_device_per_minute: 0,
        };
        let state = runtime
            .block_on(open(config))
            .expect("the fuzzed server starts")
            .state;
        Harness {
            app: router(state.clone()),
            runtime,
            state,
            serial: Mutex::new(()),
        }
    })
}

/// A fresh data dir for this process, in memory where possible (`/dev/shm`: the
/// store's fsyncs cost nothing there). Dirs of fuzzing processes that are gone are
/// removed first.
fn data_dir() -> PathBuf {
    const PREFIX: &str = "cloudbase-auth-fuzz-";
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
                continue;
            };
            if !PathBuf::from(format!("/proc/{pid}")).exists()
                && PathBuf::from("/proc/self").exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs the requests of `data` (see [`decode_requests`]) through the router of one
/// emulated-mode server (store emptied and WeChat codes forgotten first), feeding tokens
/// from earlier replies into later requests through the placeholders `$A` (access
/// token), `$R` (refresh token), `$P` (provider token), `$C` (WeChat login code) and
/// `$K` (admin token).
///
/// Asserts for every request that can exist on the wire (a method, URI or header that
/// `http` refuses is skipped, as hyper would have refused it):
/// * no panic, and no 5xx: a client cannot make this server fail. The one exception is
///   503 `unavailable` after a login code minted with the `busy` fault (WeChat's -1);
/// * every `/auth` reply is read by the core as the client reads it: a 2xx reply of an
///   endpoint parses with the core's parser of that endpoint's reply
///   ([`Credentials`], [`ProviderTokenReply`], [`User`], or an empty object), and every
///   4xx reply of any JSON route is an error body whose name and code are one of the
///   core's ([`codes::ALL`]);
/// * every 2xx `jscode2session` reply of the emulator is accepted by the real-mode
///   client's parser ([`parse_reply`]), and its WeChat error replies are classified.
pub fn server_request(data: &[u8]) {
    run_requests(data);
}

/// [`server_request`], returning the status of each request sent (`None`: skipped).
fn run_requests(data: &[u8]) -> Vec<Option<u16>> {
    let requests = decode_requests(data);
    if requests.is_empty() {
        return Vec::new();
    }
    let h = harness();
    let _serial = h.serial.lock().unwrap_or_else(PoisonError::into_inner);
    h.runtime.block_on(async {
        h.state.store.reset().await.expect("store reset");
        if let Some(emulator) = &h.state.emulator {
            emulator.clear();
        }
        let mut run = Run::default();
        let mut statuses = Vec::new();
        for request in &requests {
            statuses.push(run.send(&h.app, request).await);
        }
        statuses
    })
}

/// Values captured from the replies of one input, and whether a WeChat fault was asked
/// for.
#[derive(Default)]
struct Run {
    slots: Vec<(Slot, Vec<u8>)>,
    busy_fault: bool,
}

impl Run {
    fn fill(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        'outer: while !rest.is_empty() {
            for (name, slot) in PLACEHOLDERS {
                if let Some(after) = rest.strip_prefix(name.as_bytes()) {
                    let latest = self.slots.iter().rev().find(|(s, _)| *s == slot);
                    out.extend_from_slice(match (slot, latest) {
                        (Slot::Admin, _) => FUZZ_ADMIN_TOKEN.as_bytes(),
                        (_, Some((_, value))) => value,
                        (_, None) => name.as_bytes(),
                    });
                    rest = after;
                    continue 'outer;
                }
            }
            out.push(rest[0]);
            rest = &rest[1..];
        }
        out
    }

    fn build(&self, r: &FuzzRequest) -> Option<(Request<Body>, String)> {
        let method = match &r.method {
            Pick::Known(i) => METHODS[usize::from(*i)].clone(),
            Pick::Raw(raw) => Method::from_bytes(raw).ok()?,
        };
        let path = match &r.path {
            Pick::Known(i) => known_paths()[usize::from(*i)].clone().into_bytes(),
            Pick::Raw(raw) => raw.clone(),
        };
        let mut uri = path;
        if !r.query.is_empty() {
            uri.push(b'?');
            uri.extend_from_slice(&self.fill(&r.query));
        }
        // hyper hands the router any request target it parses (origin, absolute,
        // authority and asterisk forms alike).
        let uri = axum::http::Uri::try_from(uri).ok()?;
        let path = uri.path().to_owned();
        let mut body = self.fill(&r.body);
        body.resize(body.len() + usize::from(r.pad_kib % 80) * 1024, b' ');
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in &r.headers {
            let name = match name {
                Pick::Known(i) => HeaderName::from_static(known_headers()[usize::from(*i)]),
                Pick::Raw(raw) => HeaderName::from_bytes(raw).ok()?,
            };
            // hyper frames the body by these; the harness sets the length itself.
            if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
                continue;
            }
            request = request.header(name, HeaderValue::from_bytes(&self.fill(value)).ok()?);
        }
        if !body.is_empty() {
            request = request.header(header::CONTENT_LENGTH, body.len());
        }
        let mut request = request.body(Body::from(body)).ok()?;
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
        Some((request, path))
    }

    /// Sends `r` and checks the reply; its status (`None`: not a valid HTTP request).
    async fn send(&mut self, app: &Router, r: &FuzzRequest) -> Option<u16> {
        let (request, path) = self.build(r)?;
        let method = request.method().clone();
        if method == Method::POST
            && path == LOGIN_CODE_PATH
            && r.body.windows(4).any(|w| w == b"busy")
        {
            self.busy_fault = true;
        }
        let response = app.clone().oneshot(request).await.expect("infallible");
        let (status, body) = collect(response).await;
        let context = || {
            format!(
                "{method} {path} → {status}: {}",
                String::from_utf8_lossy(&body)
            )
        };

        let is_busy = status == 503
            && self.busy_fault
            && error_kind(status, &body) == Some(ServerErrorKind::Unavailable);
        assert!(status < 500 || is_busy, "server error: {}", context());

        let endpoint = path
            .strip_prefix(DEFAULT_API_PATH)
            .and_then(Endpoint::from_path)
            .filter(|e| e.method().as_str() == method.as_str());
        if (200..300).contains(&status) {
            if let Some(endpoint) = endpoint {
                self.check_reply(endpoint, status, &body, &context);
            } else if path == LOGIN_CODE_PATH && method == Method::POST {
                let reply: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{}", context()));
                let code = reply["code"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}", context()));
                self.slots.push((Slot::Code, code.as_bytes().to_vec()));
            } else if path == JSCODE2SESSION_PATH && method == Method::GET {
                check_wechat_reply(status, &body, &context);
            }
        } else if status >= 400 && !is_demo(&path) && method != Method::HEAD {
            check_error_body(&body, &context);
        }
        Some(status)
    }

    fn check_reply(
        &mut self,
        endpoint: Endpoint,
        status: u16,
        body: &[u8],
        context: &dyn Fn() -> String,
    ) {
        match endpoint {
            Endpoint::SignInAnonymously
            | Endpoint::SignInWithProvider
            | Endpoint::SignInWeChatNoAuth
            | Endpoint::Token => {
                let c = read(status, body, Credentials::parse, context);
                self.slots
                    .push((Slot::Access, c.access_token.as_bytes().to_vec()));
                if let Some(refresh) = c.refresh_token.as_deref() {
                    self.slots
                        .push((Slot::Refresh, refresh.as_bytes().to_vec()));
                }
            }
            Endpoint::ProviderToken => {
                let p = read(status, body, ProviderTokenReply::parse, context);
                self.slots
                    .push((Slot::Provider, p.provider_token.as_bytes().to_vec()));
            }
            Endpoint::UserMe => {
                read(status, body, User::parse, context);
            }
            _ => {
                let reply: serde_json::Value = serde_json::from_slice(body)
                    .unwrap_or_else(|_| panic!("not JSON: {}", context()));
                assert!(reply.is_object(), "not an object: {}", context());
                assert!(
                    !ErrorBody::is_error_shaped(body),
                    "an error in a 2xx: {}",
                    context()
                );
            }
        }
    }
}

/// A 2xx reply as the core reads it; a refusal fails the input.
fn read<T>(
    status: u16,
    body: &[u8],
    parse: fn(&[u8]) -> Result<T, cloudbase_auth_core::WireError>,
    context: &dyn Fn() -> String,
) -> T {
    wire::decode_reply(status, body, parse)
        .unwrap_or_else(|e| panic!("the core refuses the reply ({e:?}): {}", context()))
}

fn is_demo(path: &str) -> bool {
    path == DEMO_PATH || path.starts_with(DEMO_DIR)
}

/// The kind of an error body, or `None` if it is not one (no `error` name).
fn error_kind(status: u16, body: &[u8]) -> Option<ServerErrorKind> {
    let parsed = ErrorBody::parse(body).ok()?;
    (!parsed.error.is_empty()).then(|| ServerErrorKind::classify(status, &parsed.error))
}

/// A 4xx reply: one of the core's errors, name and code as in its table.
fn check_error_body(body: &[u8], context: &dyn Fn() -> String) {
    let parsed = ErrorBody::parse(body)
        .unwrap_or_else(|e| panic!("not an error body ({e:?}): {}", context()));
    assert!(
        codes::ALL
            .iter()
            .any(|c| c.name == parsed.error.as_str() && c.code == parsed.error_code),
        "not one of the core's errors: {}",
        context()
    );
}

/// The emulator's `jscode2session` replies, read by the real-mode client.
fn check_wechat_reply(status: u16, body: &[u8], context: &dyn Fn() -> String) {
    let reply: serde_json::Value =
        serde_json::from_slice(body).unwrap_or_else(|_| panic!("not JSON: {}", context()));
    match (parse_reply(status, body), reply["errcode"].as_i64()) {
        (Ok(_), None) => {}
        (Err(e), Some(code)) if code != 0 => {
            assert_eq!(e, WxError::from_errcode(code), "{}", context())
        }
        (got, _) => panic!("the real client reads {got:?}: {}", context()),
    }
}

async fn collect(response: Response<Body>) -> (u16, Vec<u8>) {
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    (status, body)
}

// ----- seed corpora ----------------------------------------------------------------------

/// A named seed input.
pub type Seed = (&'static str, Vec<u8>);

/// The env the seeds sign in to.
const SEED_ENV: &str = "fuzz-env";

fn req(
    method: &Method,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> FuzzRequest {
    // The table entry equal to `raw`, else the raw bytes.
    fn pick<T: AsRef<str>>(table: &[T], raw: &str) -> Pick {
        table.iter().position(|t| t.as_ref() == raw).map_or_else(
            || Pick::Raw(raw.as_bytes().to_vec()),
            |i| Pick::Known(i as u8),
        )
    }
    FuzzRequest {
        method: pick(&METHODS, method.as_str()),
        path: pick(known_paths(), path),
        query: query.as_bytes().to_vec(),
        headers: headers
            .iter()
            .map(|(n, v)| (pick(known_headers(), n), v.as_bytes().to_vec()))
            .collect(),
        body: body.as_bytes().to_vec(),
        pad_kib: 0,
    }
}

fn api(endpoint: Endpoint) -> String {
    format!("{DEFAULT_API_PATH}{}", endpoint.path())
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serializable")
}

/// The requests of a real session, as the SDK sends them (bodies from the core's types).
fn sign_in_anonymously() -> FuzzRequest {
    let body = json(&wire::AnonymousSignInRequest::<&str>::default());
    req(
        &Method::POST,
        &api(Endpoint::SignInAnonymously),
        &client_id(),
        &[
            (HEADER_CONTENT_TYPE, "application/json"),
            (HEADER_DEVICE_ID, "0123456789abcdef0123456789abcdef"),
        ],
        &body,
    )
}

fn client_id() -> String {
    format!("{}={SEED_ENV}", wire::CLIENT_ID_PARAM)
}

fn user_me() -> FuzzRequest {
    user_me_with("Bearer $A")
}

fn user_me_with(authorization: &str) -> FuzzRequest {
    req(
        &Method::GET,
        &api(Endpoint::UserMe),
        "",
        &[(HEADER_AUTHORIZATION, authorization)],
        "",
    )
}

fn refresh() -> FuzzRequest {
    let body = json(&wire::RefreshRequest::new(
        SEED_ENV,
        "",
        wire::GRANT_REFRESH_TOKEN,
        "$R",
    ));
    req(
        &Method::POST,
        &api(Endpoint::Token),
        &client_id(),
        &[],
        &body,
    )
}

fn login_code(extra: &str) -> FuzzRequest {
    let body =
        format!(r#"{{"appid":"{FUZZ_APPID}","openid":"oFuzzUser0123456789abcdefgh"{extra}}}"#);
    req(&Method::POST, LOGIN_CODE_PATH, "", &[], &body)
}

fn provider_token() -> FuzzRequest {
    let params = wire::ProviderParams::new(wire::PROVIDER_CODE_TYPE_OPEN_ID, FUZZ_APPID);
    let body = json(&wire::ProviderTokenRequest::new(FUZZ_APPID, "$C", params));
    req(
        &Method::POST,
        &api(Endpoint::ProviderToken),
        &client_id(),
        &[],
        &body,
    )
}

fn with_provider(endpoint: Endpoint, bearer: bool) -> FuzzRequest {
    let body = json(&wire::ProviderTokenBody::new("$P"));
    let (query, headers): (String, &[(&str, &str)]) = if bearer {
        (String::new(), &[(HEADER_AUTHORIZATION, "Bearer $A")])
    } else {
        (client_id(), &[])
    };
    req(&Method::POST, &api(endpoint), &query, headers, &body)
}

fn admin(method: &Method, path: &str, token: &str) -> FuzzRequest {
    req(
        method,
        path,
        "",
        &[(HEADER_AUTHORIZATION, &format!("Bearer {token}"))],
        "",
    )
}

/// Seeds of `server_request`: every flow of the API reference and its error paths.
pub fn server_request_seeds() -> Vec<Seed> {
    let revoke = req(
        &Method::POST,
        &api(Endpoint::Revoke),
        &client_id(),
        &[],
        &json(&wire::RevokeRequest::new("$A")),
    );
    let sign_out = req(
        &Method::POST,
        &api(Endpoint::UserSignOut),
        "",
        &[(HEADER_AUTHORIZATION, "Bearer $A")],
        "{}",
    );
    let jscode2session = req(
        &Method::GET,
        JSCODE2SESSION_PATH,
        &format!("appid={FUZZ_APPID}&secret=fuzz-secret&js_code=$C&grant_type=authorization_code"),
        &[],
        "",
    );
    let mut too_large = req(
        &Method::POST,
        &api(Endpoint::SignInAnonymously),
        &client_id(),
        &[],
        "{}",
    );
    too_large.pad_kib = 70;
    let preflight = req(
        &Method::OPTIONS,
        &api(Endpoint::Token),
        "",
        &[
            ("origin", "https://servicewechat.com"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type, x-request-id",
            ),
        ],
        "",
    );
    let seeds: Vec<(&'static str, Vec<FuzzRequest>)> = vec![
        (
            "anonymous_session",
            vec![
                sign_in_anonymously(),
                user_me(),
                refresh(),
                user_me(),
                revoke.clone(),
                user_me(),
            ],
        ),
        (
            "refresh_reuse",
            vec![
                sign_in_anonymously(),
                refresh(),
                refresh(),
                sign_out.clone(),
                refresh(),
            ],
        ),
        (
            "wechat_sign_in",
            vec![
                login_code(""),
                provider_token(),
                with_provider(Endpoint::SignInWithProvider, false),
                user_me(),
                sign_out,
            ],
        ),
        (
            "link_anonymous_to_wechat",
            vec![
                sign_in_anonymously(),
                login_code(r#","unionid":"uFuzzUnion""#),
                provider_token(),
                with_provider(Endpoint::ProviderBind, true),
                refresh(),
                user_me(),
            ],
        ),
        (
            "code_reused",
            vec![
                login_code(""),
                provider_token(),
                provider_token(),
                jscode2session.clone(),
            ],
        ),
        (
            "jscode2session",
            vec![login_code(""), jscode2session.clone(), jscode2session],
        ),
        (
            "wechat_busy",
            vec![
                login_code(r#","fault":"busy""#),
                provider_token(),
                login_code(r#","fault":"blocked""#),
                provider_token(),
            ],
        ),
        (
            "wechat_noauth",
            vec![
                req(
                    &Method::POST,
                    &api(Endpoint::SignInWeChatNoAuth),
                    &client_id(),
                    &[],
                    "{}",
                ),
                with_provider(Endpoint::SignInWeChatNoAuth, false),
            ],
        ),
        (
            "admin_routes",
            vec![
                sign_in_anonymously(),
                admin(&Method::GET, USERS_PATH, "$K"),
                admin(&Method::GET, &format!("{USERS_PATH}?env={SEED_ENV}"), "$K"),
                admin(&Method::GET, EXPORT_PATH, "$K"),
                admin(&Method::DELETE, DATA_PATH, "$A"),
                admin(&Method::DELETE, DATA_PATH, "$K"),
            ],
        ),
        (
            "static_routes",
            vec![
                req(&Method::GET, HEALTH_PATH, "", &[], ""),
                req(&Method::GET, JWKS_PATH, "", &[], ""),
                req(&Method::GET, DEMO_PATH, "", &[], ""),
                req(&Method::GET, &format!("{DEMO_DIR}index.js"), "", &[], ""),
                req(&Method::HEAD, DEMO_DIR, "", &[], ""),
            ],
        ),
        (
            "bad_requests",
            vec![
                req(&Method::GET, "/auth/v1/nothing", "", &[], ""),
                req(&Method::DELETE, &api(Endpoint::UserMe), "", &[], ""),
                req(
                    &Method::POST,
                    &api(Endpoint::SignInAnonymously),
                    "",
                    &[],
                    "{}",
                ),
                req(
                    &Method::POST,
                    &api(Endpoint::SignInAnonymously),
                    "client_id=bad%20env",
                    &[],
                    "{}",
                ),
                req(
                    &Method::POST,
                    &api(Endpoint::Token),
                    &client_id(),
                    &[],
                    r#"{"grant_type":7}"#,
                ),
                req(
                    &Method::POST,
                    &api(Endpoint::Token),
                    &client_id(),
                    &[],
                    "{\"refresh_token\":\"\\ud800\"}",
                ),
                user_me_with("Bearer eyJhbGciOiJub25lIn0.e30."),
                too_large,
                preflight,
                req(
                    &Method::from_bytes(b"BREW").expect("a token"),
                    HEALTH_PATH,
                    "",
                    &[("x-custom", "1")],
                    "",
                ),
            ],
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, requests)| (name, encode_requests(&requests)))
        .collect()
}

/// Seeds of `code2session_reply`: WeChat's documented replies (wechat-miniprogram
/// reference §3.2), the emulator's, and what a broken proxy sends.
pub fn code2session_reply_seeds() -> Vec<Seed> {
    let with = |status: u16, body: &str| {
        let mut bytes = status.to_le_bytes().to_vec();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    };
    vec![
        (
            "ok",
            with(
                200,
                r#"{"openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}"#,
            ),
        ),
        (
            "ok_unionid",
            with(
                200,
                r#"{"openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","session_key":"tiihtNczf5v6AKRyjwEUhQ==","unionid":"oFz8xuFv0bEXAMPLEunionid0000"}"#,
            ),
        ),
        (
            "ok_errcode_0",
            with(
                200,
                r#"{"session_key":"k","openid":"o1","errcode":0,"errmsg":"ok"}"#,
            ),
        ),
        (
            "invalid_code",
            with(
                200,
                r#"{"errcode":40029,"errmsg":"invalid code, rid: 6543a1b2-1c2d3e4f-5a6b7c8d"}"#,
            ),
        ),
        (
            "code_used",
            with(
                200,
                r#"{"errcode":40163,"errmsg":"code been used, rid: 6543a1b2"}"#,
            ),
        ),
        (
            "busy",
            with(200, r#"{"errcode":-1,"errmsg":"system error"}"#),
        ),
        (
            "quota",
            with(
                200,
                r#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#,
            ),
        ),
        (
            "bad_secret",
            with(200, r#"{"errcode":40125,"errmsg":"invalid appsecret"}"#),
        ),
        (
            "blocked",
            with(200, r#"{"errcode":40226,"errmsg":"high risk user"}"#),
        ),
        (
            "html_502",
            with(502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        ),
        ("empty_200", with(200, "")),
        (
            "unicode_escapes",
            with(
                200,
                r#"{"openid":"o\u0041\u0062","unionid":"","extra":{"nested":[1,2,{"k":null}]}}"#,
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudbase_auth_testkit::corpus;

    const REGENERATE: &str =
        "cargo test -p cloudbase-auth-server --lib -- --ignored write_seed_corpora";

    #[test]
    fn code2session_inputs_pass() {
        for (_, bytes) in code2session_reply_seeds() {
            code2session_reply(&bytes);
        }
        corpus::replay("corpus", "code2session_reply", code2session_reply);
        corpus::replay("regressions", "code2session_reply", code2session_reply);
        corpus::assert_seeds_committed(
            "code2session_reply",
            &code2session_reply_seeds(),
            REGENERATE,
        );
    }

    #[test]
    fn server_request_inputs_pass() {
        corpus::replay("corpus", "server_request", server_request);
        corpus::replay("regressions", "server_request", server_request);
        corpus::assert_seeds_committed("server_request", &server_request_seeds(), REGENERATE);
    }

    #[test]
    fn seeds_decode_back_and_reach_their_replies() {
        // What each seed's requests get: the flows go where they say.
        let expected: &[(&str, &[u16])] = &[
            ("anonymous_session", &[200, 200, 200, 200, 200, 401]),
            ("refresh_reuse", &[200, 200, 200, 200, 400]),
            ("wechat_sign_in", &[200, 200, 200, 200, 200]),
            ("link_anonymous_to_wechat", &[200, 200, 200, 200, 200, 200]),
            ("code_reused", &[200, 200, 400, 200]),
            ("jscode2session", &[200, 200, 200]),
            ("wechat_busy", &[200, 503, 200, 400]),
            ("wechat_noauth", &[400, 400]),
            ("admin_routes", &[200, 200, 200, 200, 401, 200]),
            ("static_routes", &[200, 200, 303, 200, 200]),
            (
                "bad_requests",
                &[404, 405, 400, 400, 400, 400, 401, 413, 200, 405],
            ),
        ];
        let seeds = server_request_seeds();
        assert_eq!(seeds.len(), expected.len());
        for ((name, bytes), (want_name, want)) in seeds.iter().zip(expected) {
            assert_eq!(name, want_name);
            let requests = decode_requests(bytes);
            assert_eq!(encode_requests(&requests), *bytes, "{name}");
            let got: Vec<Option<u16>> = run_requests(bytes);
            let want: Vec<Option<u16>> = want.iter().map(|&s| Some(s)).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    /// Pseudo-random inputs (a fixed xorshift sequence) mixed into the seeds.
    #[test]
    fn mutated_seeds_pass() {
        let mut next = corpus::xorshift(0x9e37_79b9_7f4a_7c15);
        let seeds: Vec<Vec<u8>> = server_request_seeds().into_iter().map(|(_, b)| b).collect();
        let replies: Vec<Vec<u8>> = code2session_reply_seeds()
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        for i in 0..300 {
            let mut input = seeds[i % seeds.len()].clone();
            let mut reply = replies[i % replies.len()].clone();
            for _ in 0..(1 + next() % 4) {
                let at = (next() as usize) % input.len();
                input[at] = next() as u8;
                let at = (next() as usize) % reply.len();
                reply[at] = next() as u8;
            }
            server_request(&input);
            code2session_reply(&reply);
        }
    }

    /// Regenerates `fuzz/corpus/{server_request,code2session_reply}/` (`REGENERATE`).
    #[test]
    #[ignore = "writes the seed corpora"]
    fn write_seed_corpora() {
        corpus::write_seeds("server_request", &server_request_seeds());
        corpus::write_seeds("code2session_reply", &code2session_reply_seeds());
    }
}
