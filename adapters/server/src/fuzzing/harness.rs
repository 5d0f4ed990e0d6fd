//! The `server_request` harness: one in-process server, every input's requests through
//! its router, and the checks on every reply.

use super::input::{
    FUZZ_ADMIN_TOKEN, FUZZ_APPID, FuzzRequest, METHODS, PLACEHOLDERS, Pick, Slot, decode_requests,
    known_headers, known_paths,
};
use crate::config::{RateLimits, ServeConfig, WeChatApps};
use crate::demo::{DEMO_DIR, DEMO_PATH};
use crate::open;
use crate::routes::router;
use crate::state::AppState;
use crate::wechat::{JSCODE2SESSION_PATH, WxError, parse_reply};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use cloudbase_auth_core::ServerErrorKind;
use cloudbase_auth_core::wire::{
    self, Credentials, DEFAULT_API_PATH, Endpoint, ErrorBody, ProviderTokenReply, User, codes,
};
use cloudbase_auth_server_api::LOGIN_CODE_PATH;
use http_body_util::BodyExt as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tower::ServiceExt as _;

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
pub(super) fn run_requests(data: &[u8]) -> Vec<Option<u16>> {
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

        let endpoint = path.strip_prefix(DEFAULT_API_PATH).and_then(|p| {
            Endpoint::ALL
                .into_iter()
                .find(|e| e.path() == p && e.method().as_str() == method.as_str())
        });
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
            Endpoint::UserMe | Endpoint::UserProfile => {
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
