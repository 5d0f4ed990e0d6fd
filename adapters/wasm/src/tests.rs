//! Native tests of the export layer: the same `extern "C"` functions the JS facade calls,
//! driven through the exchange buffer and its record layout.

use super::*;
use cloudbase_auth_testkit::corpus;
use std::string::String;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

/// The exports share one static engine: tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

const T0: f64 = 1_700_000_000_000.0;
const ENV: &str = "wasm-test-1a2b";
const APPID: &str = "wx0123456789abcdef";

fn fresh() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    cba_reset();
    guard
}

/// Writes `parts` one after another into the exchange buffer; their `(ptr, len)`s.
fn put(parts: &[&[u8]]) -> Vec<(usize, usize)> {
    let base = cba_buf().addr();
    with_exchange(|x| {
        let mut off = 0;
        parts
            .iter()
            .map(|p| {
                x[off..off + p.len()].copy_from_slice(p);
                let r = (base + off, p.len());
                off += p.len();
                r
            })
            .collect()
    })
}

/// An error record: (class, sub, status, kind, code, field).
type ErrorRecord = (u32, u32, u32, u32, f64, String);

/// Reads a record from a copy of the exchange buffer.
struct Rd {
    buf: Vec<u8>,
    pos: usize,
}

impl Rd {
    fn new() -> Self {
        Rd {
            buf: with_exchange(|x| x.to_vec()),
            pos: 0,
        }
    }
    fn num(&mut self) -> f64 {
        let v = f64::from_le_bytes(self.buf[self.pos..self.pos + 8].try_into().unwrap());
        self.pos += 8;
        v
    }
    fn bytes(&mut self) -> Vec<u8> {
        let n = u32::from_le_bytes(self.buf[self.pos..self.pos + 4].try_into().unwrap()) as usize;
        self.pos += 4;
        let v = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        v
    }
    fn str(&mut self) -> String {
        String::from_utf8(self.bytes()).unwrap()
    }
    fn error(&mut self) -> ErrorRecord {
        (
            self.num() as u32,
            self.num() as u32,
            self.num() as u32,
            self.num() as u32,
            self.num(),
            self.str(),
        )
    }
}

/// One decoded output.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Timeout(f64),
    Transmit {
        id: (u32, u32),
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
    },
    Persist(Vec<u8>),
    Clear,
    Changed(u32, u32),
    Replaced,
    Done {
        op: u32,
        result: Result<(u32, u32), (u32, u32)>,
    },
}

fn poll() -> Out {
    let kind = cba_poll();
    let mut r = Rd::new();
    match kind as i32 {
        0 => Out::Timeout(r.num()),
        1 => {
            let id = (r.num() as u32, r.num() as u32);
            let method = r.str();
            let path = r.str();
            let headers = r
                .str()
                .lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let has_body = r.num() == 1.0;
            let body = r.bytes();
            Out::Transmit {
                id,
                method,
                path,
                headers,
                body: has_body.then_some(body),
            }
        }
        2 => Out::Persist(r.bytes()),
        3 => Out::Clear,
        4 => Out::Changed(r.num() as u32, r.num() as u32),
        5 => {
            let op = r.num() as u32;
            let result = if r.num() == 1.0 {
                Ok((r.num() as u32, r.num() as u32))
            } else {
                let e = r.error();
                Err((e.0, e.1))
            };
            Out::Done { op, result }
        }
        6 => Out::Replaced,
        k => panic!("unexpected poll result {k} {:?}", r.error()),
    }
}

/// Every output up to and including the timeout.
fn drain() -> Vec<Out> {
    let mut v = Vec::new();
    loop {
        let o = poll();
        let end = matches!(o, Out::Timeout(_));
        v.push(o);
        if end {
            return v;
        }
    }
}

fn init(now: f64) {
    let p = put(&[ENV.as_bytes(), &[7; 16]]);
    assert_eq!(cba_init(now, p[0].0, p[0].1, 0, 0, p[1].0), 0.0);
    assert_eq!(drain(), [Out::Changed(0, 1), Out::Timeout(-1.0)]);
}

fn transmits(outs: &[Out]) -> Vec<&Out> {
    outs.iter()
        .filter(|o| matches!(o, Out::Transmit { .. }))
        .collect()
}

fn respond(now: f64, out: &Out, status: u32, body: &str) -> Vec<Out> {
    let Out::Transmit { id, .. } = out else {
        panic!("not a transmit: {out:?}")
    };
    let p = put(&[body.as_bytes()]);
    assert_eq!(
        cba_handle_response(now, id.0, id.1, status, p[0].0, p[0].1),
        1.0
    );
    drain()
}

fn creds(sub: &str, scope: &str) -> String {
    format!(
        r#"{{"token_type":"Bearer","access_token":"at-{sub}","refresh_token":"rt-{sub}","expires_in":7200,"scope":"{scope}","sub":"{sub}"}}"#
    )
}

/// Signs in anonymously through the exports; the outputs of the last reply.
fn sign_in_anonymously() -> Vec<Out> {
    let op = cba_sign_in_anonymously(T0);
    assert!(op >= 1.0, "{op}");
    let outs = drain();
    let t = transmits(&outs);
    let Out::Transmit {
        method, path, body, ..
    } = t[0]
    else {
        unreachable!()
    };
    assert_eq!(method, "POST");
    assert_eq!(
        path,
        &format!("/auth/v1/signin/anonymously?client_id={ENV}")
    );
    assert!(body.is_some());
    let outs = respond(T0, t[0], 200, &creds("100", "anonymous"));
    assert!(outs.contains(&Out::Changed(1, 2)), "{outs:?}");
    let me = transmits(&outs)[0].clone();
    let Out::Transmit {
        ref method,
        ref path,
        ref headers,
        ref body,
        ..
    } = me
    else {
        unreachable!()
    };
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("GET", "/auth/v1/user/me")
    );
    assert!(headers.contains(&("authorization".into(), "Bearer at-100".into())));
    assert_eq!(body, &None);
    let outs = respond(T0, &me, 200, r#"{"sub":"100","name":"匿名😀"}"#);
    assert!(
        outs.contains(&Out::Done {
            op: op as u32,
            result: Ok((2, 2))
        }),
        "{outs:?}"
    );
    outs
}

/// `-(class * 256 + sub)`, as exports return it.
fn code(class: u32, sub: u32) -> f64 {
    -f64::from(class * 256 + sub)
}

/// Calls an input export, then drains (as a host must after every input).
fn input(r: f64) -> f64 {
    let e = Rd::new().error();
    drain();
    // Draining rewrote the record: put the error back for the caller to inspect.
    if r < 0.0 {
        LAST.with(|l| *l.borrow_mut() = Some(e));
    }
    r
}

std::thread_local! {
    static LAST: std::cell::RefCell<Option<ErrorRecord>> =
        const { std::cell::RefCell::new(None) };
}

fn last_error() -> ErrorRecord {
    LAST.with(|l| l.borrow_mut().take()).expect("an error")
}

#[test]
fn values_from_the_host_are_validated() {
    let _g = fresh();
    let base = cba_buf().addr();
    let range = code(err::ARG, err::ARG_RANGE);
    // Pointers outside the exchange buffer, overflowing lengths, a seed cut at the end.
    for (ptr, len) in [
        (0, 3),
        (usize::MAX, 2),
        (base, usize::MAX),
        (base + EXCHANGE_LEN, 1),
        (base - 1, 2),
    ] {
        let p = put(&[ENV.as_bytes(), &[1; 16]]);
        assert_eq!(
            input(cba_init(T0, ptr, len, 0, 0, p[1].0)),
            range,
            "{ptr} {len}"
        );
    }
    let p = put(&[ENV.as_bytes()]);
    assert_eq!(
        input(cba_init(T0, p[0].0, p[0].1, 0, 0, base + EXCHANGE_LEN - 15)),
        range
    );
    // An empty string at the very end is fine as a range (then refused as an env).
    let p = put(&[&[1; 16]]);
    assert_eq!(
        input(cba_init(T0, base + EXCHANGE_LEN, 0, 0, 0, p[0].0)),
        code(err::API_MISUSE, 7)
    );
    assert_eq!(last_error(), (2, 7, 0, 0, 0.0, "env".into()));
    // An input before the previous one was drained is refused (and changes nothing).
    let p = put(&[ENV.as_bytes(), &[1; 16]]);
    assert_eq!(cba_init(T0, p[0].0, p[0].1, 0, 0, p[1].0), 0.0);
    let not_drained = code(err::ARG, err::ARG_NOT_DRAINED);
    assert_eq!(cba_get_login_state(T0), not_drained);
    assert_eq!(cba_handle_timeout(T0), not_drained);
    assert_eq!(drain(), [Out::Changed(0, 1), Out::Timeout(-1.0)]);
    cba_reset();
    // Not UTF-8.
    let p = put(&[b"env\xff", &[1; 16]]);
    assert_eq!(
        input(cba_init(T0, p[0].0, p[0].1, 0, 0, p[1].0)),
        code(err::ARG, err::ARG_UTF8)
    );
    // Times.
    for t in [f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY, 1e300] {
        let p = put(&[ENV.as_bytes(), &[1; 16]]);
        let bad_time = code(err::ARG, err::ARG_TIME);
        assert_eq!(input(cba_init(t, p[0].0, p[0].1, 0, 0, p[1].0)), bad_time);
        assert_eq!(input(cba_handle_timeout(t)), bad_time);
        assert_eq!(input(cba_sign_out(t)), bad_time);
    }
    // Calls before init are typed errors.
    let not_init = code(err::API_MISUSE, 1);
    for call in [
        cba_get_login_state,
        cba_get_user_info,
        cba_sign_in_anonymously,
        cba_sign_out,
    ] {
        assert_eq!(input(call(T0)), not_init);
    }
    assert_eq!(input(cba_restore(T0, base, 0)), not_init);
    assert_eq!(cba_login_state(), 0);
    assert_eq!(cba_session(), 0.0);
    assert_eq!(cba_user(), 0.0);
    // A bad client id names its field.
    let p = put(&[ENV.as_bytes(), b"bad id", &[1; 16]]);
    assert!(input(cba_init(T0, p[0].0, p[0].1, p[1].0, p[1].1, p[2].0)) < 0.0);
    assert_eq!(last_error().5, "client_id");
    // A status that is not a u16; a reply to a request that does not exist.
    init(T0);
    assert_eq!(
        input(cba_handle_response(T0, 0, 1, 70_000, base, 0)),
        code(err::ARG, err::ARG_STATUS)
    );
    assert_eq!(input(cba_handle_transport_error(T0, 9, 9)), 0.0, "stale");
    // WeChat inputs.
    let p = put(&[b"code with space", APPID.as_bytes()]);
    assert!(input(cba_sign_in_with_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1)) < 0.0);
    assert_eq!(last_error(), (2, 7, 0, 0, 0.0, "code".into()));
    let p = put(&[b"code", APPID.as_bytes()]);
    assert!(input(cba_link_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1)) < 0.0);
    assert_eq!(last_error().1, 5, "not anonymous");
    let p = put(&[b"code", b"wx/bad"]);
    assert!(input(cba_sign_in_with_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1)) < 0.0);
    assert_eq!(last_error().5, "appid");
}

#[test]
fn an_anonymous_session_through_the_exports() {
    let _g = fresh();
    init(T0);
    let outs = sign_in_anonymously();
    assert!(matches!(outs.last(), Some(Out::Timeout(d)) if *d > T0));
    assert_eq!(cba_login_state(), 2);
    assert_eq!(cba_session(), 1.0);
    let mut r = Rd::new();
    assert_eq!(
        (r.str(), r.str(), r.str()),
        ("100".into(), "Bearer".into(), "at-100".into())
    );
    assert_eq!(r.num(), T0 + 7_200_000.0);
    assert_eq!(r.num(), T0 + 7_170_000.0);
    assert_eq!(r.num(), 1.0);
    assert_eq!(cba_user(), 1.0);
    let mut r = Rd::new();
    let user: Vec<String> = (0..5).map(|_| r.str()).collect();
    assert_eq!(user, ["100", "匿名😀", "", "", ""]);

    // getLoginState answers at once; a second anonymous sign-in reuses the session.
    let op = cba_get_login_state(T0 + 1.0);
    assert_eq!(
        drain()[0],
        Out::Done {
            op: op as u32,
            result: Ok((1, 0))
        }
    );
    let op = cba_sign_in_anonymously(T0 + 2.0);
    assert_eq!(
        drain()[0],
        Out::Done {
            op: op as u32,
            result: Ok((2, 2))
        }
    );

    // getUserInfo fetches user/me; a server error arrives as an error record.
    let op = cba_get_user_info(T0 + 3.0);
    let outs = drain();
    let outs = respond(
        T0 + 4.0,
        transmits(&outs)[0],
        503,
        r#"{"error":"unavailable","error_code":14,"error_description":"busy"}"#,
    );
    assert_eq!(
        outs[0],
        Out::Done {
            op: op as u32,
            result: Err((err::SERVER, 0))
        }
    );
    let op = cba_get_user_info(T0 + 5.0);
    let outs = drain();
    let t = transmits(&outs)[0].clone();
    let Out::Transmit { id, .. } = t else {
        unreachable!()
    };
    let p = put(&[br#"{"error":"unavailable","error_code":14}"#]);
    cba_handle_response(T0 + 6.0, id.0, id.1, 503, p[0].0, p[0].1);
    assert_eq!(cba_poll(), 5.0);
    let mut r = Rd::new();
    assert_eq!((r.num(), r.num()), (op, 0.0));
    assert_eq!(r.error(), (err::SERVER, 0, 503, 8, 14.0, String::new()));
    assert_eq!(cba_handle_timeout(T0), code(err::ARG, err::ARG_NOT_DRAINED));
    drain();

    // Sign-out offline: state and snapshot change at once, the revoke fails later.
    let op = cba_sign_out(T0 + 7.0);
    let outs = drain();
    assert_eq!(outs[0], Out::Changed(2, 4));
    assert!(matches!(outs[1], Out::Persist(_)));
    let Out::Transmit { id, ref path, .. } = *transmits(&outs)[0] else {
        unreachable!()
    };
    assert!(path.starts_with("/auth/v1/revoke?client_id="));
    assert_eq!(cba_handle_transport_error(T0 + 8.0, id.0, id.1), 1.0);
    assert_eq!(
        drain()[0],
        Out::Done {
            op: op as u32,
            result: Ok((5, 0))
        }
    );
    assert_eq!(cba_session(), 0.0);
    assert_eq!(cba_user(), 0.0);
    let op = cba_get_user_info(T0 + 9.0);
    assert_eq!(
        drain()[0],
        Out::Done {
            op: op as u32,
            result: Err((err::NOT_SIGNED_IN, 0))
        }
    );
}

#[test]
fn a_refused_anonymous_session_is_announced_as_replaced() {
    let _g = fresh();
    init(T0);
    sign_in_anonymously();
    // The refresh, due at expires_at − 30 s, is refused: the refresh token was revoked.
    let due = T0 + 7_170_000.0;
    let op = cba_get_login_state(due);
    let outs = drain();
    let outs = respond(
        due,
        transmits(&outs)[0],
        400,
        r#"{"error":"invalid_grant","error_code":4,"error_description":"revoked"}"#,
    );
    assert!(outs.contains(&Out::Changed(2, 4)), "{outs:?}");
    assert!(
        outs.contains(&Out::Done {
            op: op as u32,
            result: Err((err::SESSION_EXPIRED, 0))
        }),
        "the waiting call learns the session ended: {outs:?}"
    );
    // The automatic anonymous sign-in: a new user, announced before its state change.
    let outs = respond(due, transmits(&outs)[0], 200, &creds("200", "anonymous"));
    let at = outs
        .iter()
        .position(|o| *o == Out::Replaced)
        .expect("kind 6");
    assert_eq!(outs[at + 1], Out::Changed(4, 2), "{outs:?}");
    assert_eq!(cba_session(), 1.0);
    assert_eq!(Rd::new().str(), "200");
}

#[test]
fn snapshots_restore_and_corrupt_ones_clear_storage() {
    let _g = fresh();
    init(T0);
    let snap = sign_in_anonymously()
        .into_iter()
        .filter_map(|o| match o {
            Out::Persist(b) => Some(b),
            _ => None,
        })
        .next_back()
        .expect("a snapshot");

    // Warm start on a fresh engine.
    cba_reset();
    init(T0 + 10.0);
    let p = put(&[&snap]);
    assert_eq!(cba_restore(T0 + 10.0, p[0].0, p[0].1), 0.0);
    assert_eq!(drain()[0], Out::Changed(1, 2));
    assert_eq!(cba_user(), 1.0);
    assert_eq!(Rd::new().str(), "100");
    assert_eq!(
        input(cba_restore(T0 + 11.0, p[0].0, p[0].1)),
        code(err::API_MISUSE, 3),
        "restore only once"
    );

    // A damaged copy: typed error, signed out, storage cleared.
    let mut bad = snap.clone();
    bad[5] ^= 0x40;
    cba_reset();
    init(T0);
    let p = put(&[&bad]);
    assert_eq!(
        cba_restore(T0, p[0].0, p[0].1),
        -((err::SNAPSHOT * 256 + 4) as f64)
    );
    assert_eq!(
        drain(),
        [Out::Changed(1, 4), Out::Clear, Out::Timeout(-1.0)]
    );
    // Garbage and empty values too.
    for junk in [&b""[..], b"not base64 at all", &[0xff; 3100]] {
        cba_reset();
        init(T0);
        let p = put(&[junk]);
        assert!(cba_restore(T0, p[0].0, p[0].1) < 0.0);
        assert_eq!(Rd::new().error().0, err::SNAPSHOT);
        assert_eq!(
            drain(),
            [Out::Changed(1, 4), Out::Clear, Out::Timeout(-1.0)]
        );
    }
}

#[test]
fn wechat_sign_in_and_link_through_the_exports() {
    let _g = fresh();
    init(T0);
    sign_in_anonymously();
    let p = put(&[b"code-1", APPID.as_bytes()]);
    let op = cba_link_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1);
    assert!(op >= 1.0);
    let outs = drain();
    let t = transmits(&outs)[0].clone();
    let Out::Transmit {
        ref path, ref body, ..
    } = t
    else {
        unreachable!()
    };
    assert!(path.starts_with("/auth/v1/provider/token?"));
    let body = String::from_utf8(body.clone().unwrap()).unwrap();
    assert!(body.contains("code-1") && body.contains(APPID), "{body}");
    let outs = respond(T0, &t, 200, r#"{"provider_token":"pt-1","expires_in":300}"#);
    let t = transmits(&outs)[0].clone();
    let Out::Transmit { ref path, .. } = t else {
        unreachable!()
    };
    assert_eq!(path, "/auth/v1/user/provider/bind");
    let outs = respond(T0, &t, 200, "{}");
    assert!(outs.contains(&Out::Changed(2, 3)));
    let outs = respond(T0, transmits(&outs)[0], 200, &creds("100", "user"));
    let user = format!(
        r#"{{"sub":"100","name":"微信用户","picture":"https://a/b.png","providers":[{{"id":"{APPID}","provider_user_id":"oOPENID"}}]}}"#
    );
    let outs = respond(T0, transmits(&outs)[0], 200, &user);
    assert!(
        outs.contains(&Out::Done {
            op: op as u32,
            result: Ok((4, 0))
        }),
        "{outs:?}"
    );
    assert_eq!(cba_user(), 1.0);
    let mut r = Rd::new();
    let u: Vec<String> = (0..5).map(|_| r.str()).collect();
    assert_eq!(u, ["100", "微信用户", "https://a/b.png", "", "oOPENID"]);

    // A fresh WeChat sign-in replaces the session.
    let p = put(&[b"code-2", APPID.as_bytes()]);
    let op = cba_sign_in_with_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1);
    let outs = drain();
    let outs = respond(
        T0,
        transmits(&outs)[0],
        200,
        r#"{"provider_token":"pt-2","expires_in":300}"#,
    );
    let outs = respond(T0, transmits(&outs)[0], 200, &creds("200", "user"));
    let outs = respond(T0, transmits(&outs)[0], 200, r#"{"sub":"200"}"#);
    assert!(
        outs.contains(&Out::Done {
            op: op as u32,
            result: Ok((2, 3))
        }),
        "{outs:?}"
    );
}

#[test]
fn oversized_and_stale_replies() {
    let _g = fresh();
    init(T0);
    cba_sign_in_anonymously(T0);
    let outs = drain();
    let Out::Transmit { id, .. } = *transmits(&outs)[0] else {
        unreachable!()
    };
    // The whole buffer: over the core's body limit, a typed wire error.
    let base = cba_buf().addr();
    with_exchange(|x| x.fill(b' '));
    assert_eq!(
        cba_handle_response(T0, id.0, id.1, 200, base, EXCHANGE_LEN),
        1.0
    );
    assert_eq!(
        poll(),
        Out::Done {
            op: 1,
            result: Err((err::WIRE, 1))
        }
    );
    drain();
    // The same id again is stale.
    assert_eq!(cba_handle_response(T0, id.0, id.1, 200, base, 2), 0.0);
    drain();
}

/// Found by the `wasm_abi` fuzz target: with the clock near 2^53 ms, the refresh
/// deadline of a new session lies past it and was reported as is, and
/// `cba_handle_timeout` refused that very deadline with `ARG_TIME`. Deadlines are
/// capped at 2^53 now.
#[test]
fn deadlines_are_times_the_exports_take() {
    let _g = fresh();
    let now = TIME_MAX as f64 - 1_000.0;
    init(now);
    cba_sign_in_anonymously(now);
    let outs = drain();
    let outs = respond(now, transmits(&outs)[0], 200, &creds("u1", "anonymous"));
    let Some(Out::Timeout(deadline)) = outs.last() else {
        panic!("{outs:?}")
    };
    assert_eq!(*deadline, TIME_MAX as f64);
    assert_eq!(cba_handle_timeout(*deadline), 0.0);
    drain();
}

/// Arbitrary calls with arbitrary arguments never panic (a small deterministic fuzz).
#[test]
fn random_calls_never_panic() {
    let _g = fresh();
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let base = cba_buf().addr();
    for _ in 0..20_000 {
        let r = next();
        let ptr = match r % 4 {
            0 => base + (next() as usize % (EXCHANGE_LEN + 8)),
            1 => next() as usize,
            _ => base + (next() as usize % 64),
        };
        let len = match (r >> 8) % 3 {
            0 => next() as usize % 64,
            1 => next() as usize,
            _ => next() as usize % (EXCHANGE_LEN + 8),
        };
        let now = match (r >> 16) % 5 {
            0 => f64::from_bits(next()),
            _ => T0 + (next() % 100_000_000) as f64,
        };
        if (r >> 24) % 7 == 0 {
            let junk = next().to_le_bytes();
            with_exchange(|x| {
                let at = (next() as usize) % (EXCHANGE_LEN - 8);
                x[at..at + 8].copy_from_slice(&junk);
            });
        }
        let (g, q) = (next() as u32 % 4, next() as u32 % 8);
        match (r >> 32) % 16 {
            0 => drop(cba_init(now, ptr, len % 80, ptr, len % 3, ptr)),
            1 => drop(cba_restore(now, ptr, len)),
            2 => drop(cba_get_login_state(now)),
            3 => drop(cba_get_user_info(now)),
            4 => drop(cba_sign_in_anonymously(now)),
            5 => drop(cba_sign_out(now)),
            6 => drop(cba_sign_in_with_wechat(now, ptr, len % 40, base, 18)),
            7 => drop(cba_link_wechat(now, base, len % 40, ptr, len)),
            8 => drop(cba_handle_response(
                now,
                g,
                q,
                (next() % 70_000) as u32,
                ptr,
                len,
            )),
            9 => drop(cba_handle_transport_error(now, g, q)),
            10 => drop(cba_handle_timeout(now)),
            11 => drop(cba_session() + cba_user() + f64::from(cba_login_state())),
            12 => cba_reset(),
            _ => {}
        }
        // Usually drain, as a host must after every input (bounded: the queue is
        // finite); sometimes not, which the next input must refuse without panicking.
        if next() % 8 != 0 {
            for _ in 0..32 {
                if cba_poll() <= 0.0 {
                    break;
                }
            }
        }
    }
}

// ----- the `wasm_abi` fuzz target's body (`fuzzing.rs`) ----------------------------------

const REGENERATE: &str = "cargo test -p cloudbase-auth-wasm -- --ignored write_wasm_abi_seeds";

/// Every committed seed and crash input passes the target's body (crash inputs: each a
/// bug that must stay fixed).
#[test]
fn fuzz_corpus_and_regressions_pass() {
    let _g = fresh();
    let n = corpus::replay("corpus", "wasm_abi", fuzzing::wasm_abi);
    assert!(n >= 5, "the seed corpus is missing ({n} inputs)");
    corpus::replay("regressions", "wasm_abi", fuzzing::wasm_abi);
}

/// The committed seeds are what `fuzzing::seeds` writes, and decode back to the same
/// bytes (the encoder writes the format the target reads).
#[test]
fn fuzz_seeds_match_the_committed_corpus() {
    let seeds = fuzzing::seeds();
    assert!((5..=10).contains(&seeds.len()));
    for (name, bytes) in seeds {
        assert_eq!(
            fuzzing::encode(&fuzzing::decode(&bytes)),
            bytes,
            "{name} does not decode back"
        );
    }
    corpus::assert_seeds_committed("wasm_abi", &fuzzing::seeds(), REGENERATE);
}

/// The encoder is the decoder's inverse on whatever the decoder reads.
#[test]
fn fuzz_encoding_round_trips() {
    let mut next = corpus::xorshift(0x2545_F491_4F6C_DD1D);
    for _ in 0..2_000 {
        let data: Vec<u8> = (0..next() % 300).map(|_| next() as u8).collect();
        let steps = fuzzing::decode(&data);
        assert_eq!(fuzzing::decode(&fuzzing::encode(&steps)), steps);
    }
}

/// 2,000 pseudo-random inputs through the target's body: random bytes, and random
/// bytes spliced into the seeds (so inputs get past `init` and sign-in).
#[test]
fn fuzz_sweep() {
    let _g = fresh();
    let seeds = fuzzing::seeds();
    let mut next = corpus::xorshift(0x9E37_79B9_7F4A_7C15);
    for i in 0..2_000 {
        let mut data = if i % 2 == 0 {
            Vec::new()
        } else {
            seeds[(next() % seeds.len() as u64) as usize].1.clone()
        };
        for _ in 0..1 + next() % 8 {
            let at = (next() as usize) % (data.len() + 1);
            let junk: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
            if next().is_multiple_of(2) && at < data.len() {
                let end = (at + junk.len()).min(data.len());
                data.splice(at..end, junk);
            } else {
                data.splice(at..at, junk);
            }
        }
        fuzzing::wasm_abi(&data);
    }
}

/// Rewrites `fuzz/corpus/wasm_abi/` from `fuzzing::seeds()`.
#[test]
#[ignore = "writes the seed corpus (REGENERATE)"]
fn write_wasm_abi_seeds() {
    corpus::write_seeds("wasm_abi", &fuzzing::seeds());
}
