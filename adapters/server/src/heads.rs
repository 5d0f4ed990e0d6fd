//! Request heads, checked before hyper reads them.
//!
//! hyper answers a request head it cannot parse, or one over its limits, by itself: an
//! empty 400 or 431 written before any of our code runs, with no hook in hyper 1.x to
//! change that reply. So the bytes of every connection pass through [`Guarded`], which
//! checks each request head with the parser hyper uses (`httparse`, with the same
//! header count, [`HEADERS_MAX`]) and the checks hyper adds after it (method, request
//! target, header names, `Content-Length`, `Transfer-Encoding`), before hyper sees a
//! byte of the head:
//!
//! * a head that passes goes to hyper unchanged, then its body; the guard counts the
//!   body's `Content-Length` bytes to know where the next head starts;
//! * a head that fails never reaches hyper. Once the requests before it are answered
//!   ([`InFlight`]), hyper is told the connection ended; when hyper then shuts the
//!   connection down (after writing out everything it had), the guard writes the
//!   CloudBase error reply ([`ErrorBody`](cloudbase_auth_core::wire::ErrorBody): 400 `invalid_argument`, or 431 for a head
//!   over [`HEAD_MAX`] bytes or [`HEADERS_MAX`] fields) and closes.
//!
//! A request with a chunked body (or a `CONNECT`) is the last of its connection: its
//! reply says `Connection: close` (see [`ends_connection`]) and the guard steps aside
//! for the rest of the connection, so it never has to follow chunked framing, which
//! hyper alone decodes.

use crate::error::error_body;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Method, Request, StatusCode, Uri};
use cloudbase_auth_core::wire::CONTENT_TYPE_JSON;
use cloudbase_auth_core::wire::codes;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest request head accepted (request line and header fields); larger gets 431.
pub(crate) const HEAD_MAX: usize = 32 * 1024;
/// Most header fields in a request head; more gets 431. hyper is configured with the
/// same number, so every head the guard passes, hyper accepts.
pub(crate) const HEADERS_MAX: usize = 100;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;
/// After a refusal is written: how long, and how many bytes, the guard reads and drops
/// what the client still sends, so that closing does not reset the connection (and
/// destroy the reply) before the client has read it.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;

/// How a head that passed frames its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` bytes (0 without the header).
    Length(u64),
    /// Chunked, or a `CONNECT` tunnel: the last request of the connection.
    Unframed,
}

/// A head that is refused: the status and the error description for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) description: String,
}

impl Refusal {
    fn bad(what: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            description: format!("malformed HTTP request: {what}"),
        }
    }

    fn too_large(what: String) -> Self {
        Self {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            description: what,
        }
    }

    /// The whole HTTP/1.1 reply: the CloudBase error body, `Connection: close`.
    fn reply(&self) -> Vec<u8> {
        let body = error_body(codes::INVALID_ARGUMENT, &self.description);
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut reply = format!(
            "HTTP/1.1 {} {}\r\n{}: {CONTENT_TYPE_JSON}\r\n{}: {}\r\n{}: *\r\n{}: close\r\n\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or_default(),
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            body.len(),
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::CONNECTION,
        )
        .into_bytes();
        reply.extend_from_slice(&body);
        reply
    }
}

/// What the bytes buffered for a head are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inspection {
    /// The start of a head: more bytes are needed.
    Partial,
    /// A head hyper will accept, `len` bytes long (leading empty lines included).
    Head {
        /// Its length.
        len: usize,
        /// How its body is framed.
        framing: Framing,
    },
    /// A head hyper would refuse, or one over this server's limits.
    Refused(Refusal),
}

/// Checks the request head at the start of `buf` as hyper's HTTP/1 server does
/// (`hyper::proto::h1::role::Server::parse`), plus the [`HEAD_MAX`] limit.
pub(crate) fn inspect(buf: &[u8]) -> Inspection {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= HEAD_MAX => len,
        Ok(httparse::Status::Partial) if buf.len() <= HEAD_MAX => return Inspection::Partial,
        Ok(_) => {
            return Inspection::Refused(Refusal::too_large(format!(
                "request head larger than {HEAD_MAX} bytes"
            )));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Inspection::Refused(Refusal::too_large(format!(
                "more than {HEADERS_MAX} header fields"
            )));
        }
        Err(e) => return Inspection::Refused(Refusal::bad(e)),
    };
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Inspection::Refused(Refusal::bad("incomplete request line"));
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Inspection::Refused(Refusal::bad("invalid method"));
    };
    if Uri::try_from(target).is_err() {
        return Inspection::Refused(Refusal::bad("invalid request target"));
    }
    // hyper's rules (RFC 9112 §6.3): the last Transfer-Encoding line decides whether
    // the body is chunked and makes an earlier Content-Length void; Content-Length
    // values must be digits and agree.
    let mut chunked = None;
    let mut length: Option<u64> = None;
    for field in request.headers.iter() {
        if HeaderName::from_bytes(field.name.as_bytes()).is_err() {
            return Inspection::Refused(Refusal::bad("invalid header name"));
        }
        if field
            .name
            .eq_ignore_ascii_case(header::TRANSFER_ENCODING.as_str())
        {
            if version == 0 {
                return Inspection::Refused(Refusal::bad(
                    "Transfer-Encoding is not allowed in HTTP/1.0",
                ));
            }
            length = None;
            chunked = Some(ends_chunked(field.value));
        } else if field
            .name
            .eq_ignore_ascii_case(header::CONTENT_LENGTH.as_str())
            && chunked.is_none()
        {
            match (digits(field.value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(earlier)) if n == earlier => {}
                _ => return Inspection::Refused(Refusal::bad("invalid Content-Length")),
            }
        }
    }
    let framing = match chunked {
        Some(false) => {
            return Inspection::Refused(Refusal::bad("Transfer-Encoding other than chunked"));
        }
        Some(true) => Framing::Unframed,
        None if method == Method::CONNECT => Framing::Unframed,
        None => Framing::Length(length.unwrap_or(0)),
    };
    Inspection::Head { len, framing }
}

/// Whether a `Transfer-Encoding` value ends with `chunked` (hyper's `is_chunked_`).
fn ends_chunked(value: &[u8]) -> bool {
    HeaderValue::from_bytes(value)
        .ok()
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .and_then(|s| {
            s.rsplit(',')
                .next()
                .map(|last| last.trim().eq_ignore_ascii_case("chunked"))
        })
        .unwrap_or(false)
}

/// A `Content-Length` value: ASCII digits only (no sign, no list), below hyper's
/// largest length (`u64::MAX - 2`).
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value)
        .ok()?
        .parse::<u64>()
        .ok()
        .filter(|&n| n <= u64::MAX - 2)
}

/// Whether `request` is the last of its connection (see the module docs): its reply
/// must carry `Connection: close`.
pub(crate) fn ends_connection<B>(request: &Request<B>) -> bool {
    request.method() == Method::CONNECT || request.headers().contains_key(header::TRANSFER_ENCODING)
}

/// The requests of one connection that hyper has read and not finished answering.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    /// The connection's task, waiting for the count to reach 0.
    waiting: Mutex<Option<Waker>>,
}

/// One request in flight; dropped once its reply has been handed to hyper in full (or
/// abandoned).
#[derive(Debug)]
pub(crate) struct InFlightGuard(Arc<InFlight>);

impl InFlight {
    /// Counts a request hyper has read.
    pub(crate) fn start(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// Whether no request is in flight; if one is, `cx` is woken when none is.
    fn idle(&self, cx: &Context<'_>) -> bool {
        // Register first, then look: a guard dropped in between still wakes us.
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        self.count.load(Ordering::SeqCst) == 0
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1
            && let Some(waker) = self
                .0
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
        {
            waker.wake();
        }
    }
}

/// Where the guard is in the connection's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Buffering the next head until [`inspect`] decides.
    Head,
    /// Handing an accepted head to hyper, then its body.
    Release { head_left: usize, then: Framing },
    /// Handing this many body bytes to hyper.
    Body(u64),
    /// Stepped aside: everything passes unchecked.
    Open,
    /// A head was refused; hyper gets the end of the stream once idle.
    Refused,
}

/// Writing the refusal at shutdown.
enum Closing {
    /// Writing the reply from this offset.
    Writing(usize),
    Flushing,
    ShuttingDown,
    /// Reading and dropping what the client still sends.
    Lingering {
        until: Pin<Box<tokio::time::Sleep>>,
        read: usize,
    },
    Done,
}

/// A connection's IO with request heads checked before hyper reads them (see the
/// module docs).
pub(crate) struct Guarded<S> {
    inner: S,
    /// Bytes read from `inner` and not handed to hyper yet: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    phase: Phase,
    in_flight: Arc<InFlight>,
    /// The refusal's reply, once hyper was told the stream ended.
    refusal: Option<(Vec<u8>, Closing)>,
    /// The refusal, until then.
    pending: Option<Refusal>,
}

impl<S> Guarded<S> {
    /// Guards `inner`; `in_flight` counts the requests hyper reads from it.
    pub(crate) fn new(inner: S, in_flight: Arc<InFlight>) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            start: 0,
            phase: Phase::Head,
            in_flight,
            refusal: None,
            pending: None,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Hands at most `limit` buffered bytes to `out`; returns how many.
    fn give(&mut self, out: &mut ReadBuf<'_>, limit: usize) -> usize {
        let n = self.buffered().len().min(limit).min(out.remaining());
        out.put_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        n
    }

    fn refuse(&mut self, refusal: Refusal) {
        // The description holds no byte of the request (fixed texts, httparse's
        // error names): it may be logged.
        tracing::info!(
            target: "cloudbase_auth::http",
            status = refusal.status.as_u16(),
            reason = %refusal.description,
            "request head refused"
        );
        self.buf.clear();
        self.start = 0;
        self.phase = Phase::Refused;
        self.pending = Some(refusal);
    }
}

impl<S: AsyncRead + Unpin> Guarded<S> {
    /// Reads more bytes from the socket into the buffer; `Ok(0)` at its end.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut read = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut read))?;
        self.buf.extend_from_slice(read.filled());
        Poll::Ready(Ok(read.filled().len()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match this.phase {
                Phase::Open => {
                    if !this.buffered().is_empty() {
                        this.give(out, usize::MAX);
                        return Poll::Ready(Ok(()));
                    }
                    return Pin::new(&mut this.inner).poll_read(cx, out);
                }
                Phase::Release { head_left: 0, then } => {
                    this.phase = match then {
                        Framing::Length(n) => Phase::Body(n),
                        Framing::Unframed => Phase::Open,
                    };
                }
                Phase::Release { head_left, then } => {
                    let n = this.give(out, head_left);
                    this.phase = Phase::Release {
                        head_left: head_left - n,
                        then,
                    };
                    return Poll::Ready(Ok(()));
                }
                Phase::Body(0) => this.phase = Phase::Head,
                Phase::Body(left) => {
                    if this.buffered().is_empty() && ready!(this.fill(cx))? == 0 {
                        // The client ended mid-body: hyper sees it so.
                        return Poll::Ready(Ok(()));
                    }
                    let n = this.give(out, usize::try_from(left).unwrap_or(usize::MAX));
                    this.phase = Phase::Body(left - n as u64);
                    return Poll::Ready(Ok(()));
                }
                Phase::Head => {
                    if !this.buffered().is_empty() {
                        match inspect(this.buffered()) {
                            Inspection::Head { len, framing } => {
                                this.phase = Phase::Release {
                                    head_left: len,
                                    then: framing,
                                };
                                continue;
                            }
                            Inspection::Refused(refusal) => {
                                this.refuse(refusal);
                                continue;
                            }
                            Inspection::Partial => {}
                        }
                    }
                    if ready!(this.fill(cx))? == 0 {
                        // The client closed (a partial head is dropped, as hyper would
                        // drop it without a reply).
                        return Poll::Ready(Ok(()));
                    }
                }
                Phase::Refused => {
                    // Only once every earlier request is answered is hyper reading a
                    // new head; then it learns the stream ended, and the reply is
                    // written when hyper shuts the connection down.
                    if !this.in_flight.idle(cx) {
                        return Poll::Pending;
                    }
                    if let Some(refusal) = this.pending.take() {
                        this.refusal = Some((refusal.reply(), Closing::Writing(0)));
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    /// hyper has written out everything it had: the refusal's reply (if any) goes
    /// last, then the connection is closed with a lingering read.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some((reply, closing)) = &mut this.refusal else {
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        };
        let inner = &mut this.inner;
        loop {
            match closing {
                Closing::Writing(written) => {
                    if *written == reply.len() {
                        *closing = Closing::Flushing;
                        continue;
                    }
                    let n = ready!(Pin::new(&mut *inner).poll_write(cx, &reply[*written..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *written += n;
                }
                Closing::Flushing => {
                    ready!(Pin::new(&mut *inner).poll_flush(cx))?;
                    *closing = Closing::ShuttingDown;
                }
                Closing::ShuttingDown => {
                    ready!(Pin::new(&mut *inner).poll_shutdown(cx))?;
                    *closing = Closing::Lingering {
                        until: Box::pin(tokio::time::sleep(LINGER)),
                        read: 0,
                    };
                }
                Closing::Lingering { until, read } => {
                    let mut chunk = [0u8; READ_CHUNK];
                    let mut buf = ReadBuf::new(&mut chunk);
                    match Pin::new(&mut *inner).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            *read += buf.filled().len();
                            if *read > LINGER_BYTES {
                                *closing = Closing::Done;
                            }
                        }
                        // The client's end, or an error: nothing more to wait for.
                        Poll::Ready(_) => *closing = Closing::Done,
                        Poll::Pending => {
                            ready!(until.as_mut().poll(cx));
                            *closing = Closing::Done;
                        }
                    }
                }
                Closing::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use cloudbase_auth_core::wire::ErrorBody;

    fn refused(head: &str) -> (u16, String) {
        match inspect(head.as_bytes()) {
            Inspection::Refused(r) => (r.status.as_u16(), r.description),
            other => panic!("{head:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn heads_hyper_accepts_pass_with_their_framing() {
        let head = "POST /a?b=c HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(
            inspect(head.as_bytes()),
            Inspection::Head {
                len: head.len() - 5,
                framing: Framing::Length(5)
            }
        );
        let cases = [
            ("GET / HTTP/1.1\r\n\r\n", Framing::Length(0)),
            ("\r\nGET / HTTP/1.0\r\n\r\n", Framing::Length(0)),
            (
                "POST / HTTP/1.1\r\ncontent-length: 7\r\nContent-Length: 7\r\n\r\n",
                Framing::Length(7),
            ),
            (
                "POST / HTTP/1.1\r\ncontent-length: 7\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                Framing::Unframed,
            ),
            ("CONNECT x:1 HTTP/1.1\r\n\r\n", Framing::Unframed),
            ("BREW / HTTP/1.1\r\n\r\n", Framing::Length(0)),
        ];
        for (head, framing) in cases {
            assert_eq!(
                inspect(head.as_bytes()),
                Inspection::Head {
                    len: head.len(),
                    framing
                },
                "{head:?}"
            );
        }
        assert_eq!(inspect(b"GET / HTTP/1.1\r\nhost"), Inspection::Partial);
    }

    #[test]
    fn heads_hyper_refuses_are_refused_with_its_status() {
        for head in [
            "GET / HTTP/1.1\r\nbad header: x\r\n\r\n",
            "GET / HTTP/1.1\r\nx: \x01\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\ncontent-length: +5\r\n\r\n",
            "GET / HTTP/1.1\r\ncontent-length: 5, 5\r\n\r\n",
            "GET / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            "GET / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            "GET / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(refused(head).0, 400, "{head:?}");
        }
        let many: String = (0..=HEADERS_MAX).map(|i| format!("x-{i}: y\r\n")).collect();
        assert_eq!(refused(&format!("GET / HTTP/1.1\r\n{many}\r\n")).0, 431);
        let long = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "y".repeat(HEAD_MAX));
        assert_eq!(refused(&long).0, 431);
        assert_eq!(
            refused(&long[..HEAD_MAX + 1]).0,
            431,
            "partial, over the limit"
        );
    }

    /// What hyper's HTTP/1 server does with `head` (then the end of the stream).
    #[derive(Debug, PartialEq, Eq)]
    enum Hyper {
        /// It read the head and called the service.
        Served,
        /// It answered by itself with this status (its empty automatic reply).
        Refused(u16),
        /// Neither (it waited for more of the head).
        Nothing,
    }

    async fn hyper_on(head: &[u8]) -> Hyper {
        use http_body_util::Empty;
        use hyper::server::conn::http1;
        use hyper_util::rt::TokioIo;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let served = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = served.clone();
        let service = hyper::service::service_fn(move |_request| {
            flag.store(true, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(hyper::Response::new(Empty::<Bytes>::new())) }
        });
        let conn = http1::Builder::new()
            .max_headers(HEADERS_MAX)
            .serve_connection(TokioIo::new(server), service);
        let task = tokio::spawn(conn);
        client.write_all(head).await.unwrap();
        client.shutdown().await.unwrap();
        let mut reply = Vec::new();
        let _ = client.read_to_end(&mut reply).await;
        let _ = task.await;
        if served.load(Ordering::SeqCst) {
            Hyper::Served
        } else if reply.starts_with(b"HTTP/1.1 ") && reply.len() >= 12 {
            Hyper::Refused(std::str::from_utf8(&reply[9..12]).unwrap().parse().unwrap())
        } else {
            Hyper::Nothing
        }
    }

    /// Valid heads, and the bytes mutations put into them (where parsers disagree most).
    const SEEDS: [&[u8]; 8] = [
        b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n",
        b"POST /auth/v1/token?client_id=e HTTP/1.1\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\n",
        b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n",
        b"\r\nGET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nx-device-id: abc\r\nx:\t y \r\n\r\n",
        b"GET /demo/ HTTP/1.1\r\nContent-Length: 0\r\nCONTENT-LENGTH: 0\r\n\r\n",
        b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n",
        b"DELETE /emulator/v1/data HTTP/1.1\r\nauthorization: Bearer a.b.c\r\n\r\n",
    ];
    const BYTES: &[u8] = b" \t\r\n:,;/?#%@*0123456789-_.~\"'()[]{}<>\\|aAzZ\x00\x01\x7f\x80\xff";

    /// One change to a head.
    #[derive(Debug, Clone, Copy)]
    enum Edit {
        Set(proptest::sample::Index, u8),
        Insert(proptest::sample::Index, u8),
        Remove(proptest::sample::Index),
    }

    /// A seed with 1 to 3 edits (they shrink to fewer, earlier-listed bytes).
    fn mutated_head() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        use proptest::sample::{Index, select};
        let byte = || select(BYTES);
        let edit = prop_oneof![
            (any::<Index>(), byte()).prop_map(|(at, b)| Edit::Set(at, b)),
            (any::<Index>(), byte()).prop_map(|(at, b)| Edit::Insert(at, b)),
            any::<Index>().prop_map(Edit::Remove),
        ];
        (select(&SEEDS[..]), proptest::collection::vec(edit, 1..=3)).prop_map(|(seed, edits)| {
            let mut head = seed.to_vec();
            for edit in edits {
                match edit {
                    Edit::Set(at, b) => {
                        let at = at.index(head.len());
                        head[at] = b;
                    }
                    Edit::Insert(at, b) => head.insert(at.index(head.len()), b),
                    Edit::Remove(at) => {
                        head.remove(at.index(head.len()));
                    }
                }
            }
            head
        })
    }

    /// The guard's verdict matches hyper's on heads mutated from valid ones: every head
    /// hyper would answer by itself is refused with its status, and every head it serves
    /// passes, so the guard neither lets an empty reply through nor refuses a request
    /// hyper would serve. 3,000 cases (a property: a failure shrinks to a minimal head),
    /// of which more than 500 must be served and 500 refused, so the mutations keep
    /// reaching both sides.
    #[test]
    fn verdicts_agree_with_hyper() {
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (served, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let mut runner = TestRunner::new(Config {
            cases: 3_000,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&mutated_head(), |head| {
            let hyper = runtime.block_on(hyper_on(&head));
            let text = || String::from_utf8_lossy(&head).into_owned();
            match (inspect(&head), &hyper) {
                (Inspection::Head { .. }, Hyper::Served) => {
                    served.fetch_add(1, Ordering::Relaxed);
                }
                (Inspection::Refused(r), Hyper::Refused(status)) => {
                    if r.status.as_u16() != *status {
                        return Err(TestCaseError::fail(format!(
                            "{:?}: guard {}, hyper {status}",
                            text(),
                            r.status
                        )));
                    }
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                (Inspection::Partial, Hyper::Nothing) => {}
                (ours, theirs) => {
                    return Err(TestCaseError::fail(format!(
                        "{:?}: guard {ours:?}, hyper {theirs:?}",
                        text()
                    )));
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let (served, refused) = (served.into_inner(), refused.into_inner());
        assert!(
            served > 500 && refused > 500,
            "{served} served, {refused} refused"
        );
    }

    #[test]
    fn the_reply_is_a_cloudbase_error_body() {
        let refusal = Refusal::bad("invalid header name");
        let reply = String::from_utf8(refusal.reply()).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let parsed = ErrorBody::parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.error.as_str(), codes::INVALID_ARGUMENT.name);
        assert!(parsed.error_description.contains("invalid header name"));
    }
}
