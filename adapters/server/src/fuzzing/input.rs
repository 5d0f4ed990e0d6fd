//! The input format of `server_request`: a byte string decoded into requests (method,
//! path and header names picked from the server's tables or raw), and back.

use crate::demo;
use crate::demo::{DEMO_DIR, DEMO_PATH};
use crate::emulator_api::{DATA_PATH, EXPORT_PATH, USERS_PATH};
use crate::routes::{CLIENT_HEADERS, JWKS_PATH};
use crate::wechat::JSCODE2SESSION_PATH;
use axum::http::Method;
use cloudbase_auth_core::wire::{DEFAULT_API_PATH, Endpoint};
use cloudbase_auth_server_api::{HEALTH_PATH, LOGIN_CODE_PATH};
use std::sync::OnceLock;

/// Most requests one input sends.
pub const REQUESTS_MAX: usize = 16;
/// Most headers one request carries (besides the `content-length` the harness sets).
pub const HEADERS_MAX: usize = 8;
/// The Mini Program appid the fuzzed server knows (emulated WeChat).
pub const FUZZ_APPID: &str = "wx0123456789abcdef";
/// The admin token of the fuzzed server (`$K` in an input).
pub const FUZZ_ADMIN_TOKEN: &str = "fuzz-admin-token-0123456789abcdef";

/// Methods by selector (`selector % 8`; 7 reads a raw method).
pub(super) const METHODS: [Method; 7] = [
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
    let mut paths: Vec<String> = Vec::new();
    for e in Endpoint::ALL {
        // Two endpoints share a path (`GET` and `DELETE user/me`): one selector.
        let path = format!("{DEFAULT_API_PATH}{}", e.path());
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
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
pub(super) const PLACEHOLDERS: [(&str, Slot); 5] = [
    ("$A", Slot::Access),
    ("$R", Slot::Refresh),
    ("$P", Slot::Provider),
    ("$C", Slot::Code),
    ("$K", Slot::Admin),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
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
/// name    := sel:u8  (sel < 13: known_headers(); else raw:short)
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
