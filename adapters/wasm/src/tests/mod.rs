//! Native tests of the exports: the same functions the module exports, driven through
//! the exchange buffer and read back with [`crate::reader`].

use crate::exports::*;
use crate::reader::{self, ErrorRecord, OutputRecord, TransmitRecord};
use crate::with_exchange;
use std::sync::{Mutex, MutexGuard, PoisonError};

mod abi;
mod contract;
mod exports;
mod snapshots;

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

/// Reads the record the last export wrote with `f`; panics on a malformed one.
fn read<T>(f: impl FnOnce(&mut reader::Reader<'_>) -> reader::Check<T>) -> T {
    reader::read(f).unwrap_or_else(|e| panic!("malformed record: {e}"))
}

/// The error record of the last export.
fn error_record() -> ErrorRecord {
    read(|r| r.error())
}

/// One `cba_poll`, its record read.
fn poll() -> OutputRecord {
    let kind = cba_poll();
    assert!(kind >= 0.0, "cba_poll failed: {kind} {:?}", error_record());
    read(|r| r.output(kind as u8))
}

/// Every output up to and including the timeout.
fn drain() -> Vec<OutputRecord> {
    let mut v = Vec::new();
    loop {
        let o = poll();
        let end = matches!(o, OutputRecord::Timeout(_));
        v.push(o);
        if end {
            return v;
        }
    }
}

/// The timeout record with no deadline.
const NO_DEADLINE: OutputRecord = OutputRecord::Timeout(None);

/// A completion as `(op, Ok((kind, detail)) | Err((class, sub)))`, else `None`.
type Done = (u32, Result<(u8, u8), (u8, u8)>);

fn done(o: &OutputRecord) -> Option<Done> {
    match o {
        OutputRecord::Completed { op, result } => {
            Some((*op, result.as_ref().map(|c| *c).map_err(ErrorRecord::code)))
        }
        _ => None,
    }
}

/// Whether `outs` completes `op` with `result`.
fn completes(outs: &[OutputRecord], op: f64, result: Result<(u8, u8), (u8, u8)>) -> bool {
    outs.iter().any(|o| done(o) == Some((op as u32, result)))
}

fn init(now: f64) {
    let p = put(&[ENV.as_bytes(), &[7; 16]]);
    assert_eq!(cba_init(now, p[0].0, p[0].1, 0, 0, p[1].0), 0.0);
    assert_eq!(drain(), [OutputRecord::Changed(0, 1), NO_DEADLINE]);
}

fn transmits(outs: &[OutputRecord]) -> Vec<TransmitRecord> {
    outs.iter()
        .filter_map(|o| match o {
            OutputRecord::Transmit(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// The last snapshot `outs` persist.
fn persisted(outs: &[OutputRecord]) -> Option<Vec<u8>> {
    outs.iter()
        .filter_map(|o| match o {
            OutputRecord::Persist(b) => Some(b.clone()),
            _ => None,
        })
        .next_back()
}

fn respond(now: f64, t: &TransmitRecord, status: u32, body: &str) -> Vec<OutputRecord> {
    let p = put(&[body.as_bytes()]);
    assert_eq!(
        cba_handle_response(now, t.generation, t.seq, status, p[0].0, p[0].1),
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
fn sign_in_anonymously() -> Vec<OutputRecord> {
    let op = cba_sign_in_anonymously(T0);
    assert!(op >= 1.0, "{op}");
    let t = transmits(&drain()).remove(0);
    assert_eq!(t.method, "POST");
    assert_eq!(
        t.path,
        format!("/auth/v1/signin/anonymously?client_id={ENV}")
    );
    assert!(t.body.is_some());
    let outs = respond(T0, &t, 200, &creds("100", "anonymous"));
    assert!(outs.contains(&OutputRecord::Changed(1, 2)), "{outs:?}");
    let me = transmits(&outs).remove(0);
    assert_eq!(
        (me.method.as_str(), me.path.as_str()),
        ("GET", "/auth/v1/user/me")
    );
    assert!(
        me.headers
            .contains(&("authorization".into(), "Bearer at-100".into()))
    );
    assert_eq!(me.body, None);
    let outs = respond(T0, &me, 200, r#"{"sub":"100","name":"匿名😀"}"#);
    assert!(completes(&outs, op, Ok((2, 2))), "{outs:?}");
    outs
}

/// `-(class * 256 + sub)`, as exports return it.
fn code(class: u8, sub: u8) -> f64 {
    crate::abi::error_return(class, sub)
}

/// The stored text of snapshot `bytes`.
fn stored(bytes: &[u8]) -> Vec<u8> {
    crate::stored::text(bytes)
}

std::thread_local! {
    static LAST: std::cell::RefCell<Option<ErrorRecord>> =
        const { std::cell::RefCell::new(None) };
}

/// Calls an input export, then drains (as a host must after every input); a failure's
/// error record is kept for [`last_error`].
fn input(r: f64) -> f64 {
    let e = (r < 0.0).then(error_record);
    drain();
    LAST.with(|l| *l.borrow_mut() = e);
    r
}

/// An error record's items: (class, sub, status, kind, code, field).
type Flat = (u8, u8, u16, u8, f64, String);

fn flat(e: ErrorRecord) -> Flat {
    (
        e.class,
        e.sub,
        e.status,
        e.server_kind,
        e.error_code,
        e.field,
    )
}

/// The error record of the last failed [`input`].
fn last_error() -> Flat {
    flat(LAST.with(|l| l.borrow_mut().take()).expect("an error"))
}
