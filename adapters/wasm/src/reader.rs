//! Reading records back, for native hosts: this crate's tests and the `wasm_abi` fuzz
//! target. Every read follows a layout of [`crate::abi`] and checks what the ABI
//! promises about it (items inside the exchange buffer, finite numbers, integers and
//! codes in their documented ranges, UTF-8 text); a record that breaks a promise is an
//! `Err` describing how.

use crate::abi::{self, EXCHANGE_LEN, Item, Layout, TIME_MAX};
use crate::stored;
use cloudbase_auth_core::{
    ApiMisuse, Completion, Error, LoginState, Output, ServerErrorKind, SnapshotError,
    TransportError, WireError,
};

/// What a broken promise is reported as.
pub type Check<T> = Result<T, String>;

/// One item as read.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::exhaustive_enums, reason = "the record format has these three")]
pub enum Value {
    /// A `num` item.
    Num(f64),
    /// A text item.
    Text(String),
    /// A bytes item.
    Bytes(Vec<u8>),
}

/// Reads records from a copy of (or a borrow of) the exchange buffer, item by item.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf` (the exchange buffer).
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// A finite `num`.
    pub fn num(&mut self, what: &str) -> Check<f64> {
        let b = self
            .buf
            .get(self.pos..self.pos + 8)
            .ok_or_else(|| format!("{what}: num past the buffer"))?;
        self.pos += 8;
        let v = f64::from_le_bytes(b.try_into().map_err(|_| "8 bytes")?);
        if !v.is_finite() {
            return Err(format!("{what}: not finite: {v}"));
        }
        Ok(v)
    }

    /// An integral `num` in `lo..=hi`.
    pub fn int(&mut self, what: &str, lo: f64, hi: f64) -> Check<f64> {
        let v = self.num(what)?;
        if v.fract() != 0.0 || !(lo..=hi).contains(&v) {
            return Err(format!("{what}: {v} not an integer in {lo}..={hi}"));
        }
        Ok(v)
    }

    /// An integral `num` in `0..=max`, as a code.
    pub fn code(&mut self, what: &str, max: u8) -> Check<u8> {
        Ok(self.int(what, 0.0, f64::from(max))? as u8)
    }

    /// A bytes item.
    pub fn bytes(&mut self, what: &str) -> Check<&'a [u8]> {
        let n = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| format!("{what}: length past the buffer"))?;
        let n = u32::from_le_bytes(n.try_into().map_err(|_| "4 bytes")?) as usize;
        self.pos += 4;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= EXCHANGE_LEN.min(self.buf.len()))
            .ok_or_else(|| format!("{what}: str of {n} bytes past the exchange buffer"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    /// A text item.
    pub fn text(&mut self, what: &str) -> Check<&'a str> {
        core::str::from_utf8(self.bytes(what)?).map_err(|_| format!("{what}: not UTF-8"))
    }

    /// Every item of `layout`, as its layout says it is written.
    pub fn record(&mut self, layout: Layout) -> Check<Vec<Value>> {
        layout
            .iter()
            .map(|&(what, item)| {
                Ok(match item {
                    Item::Num => Value::Num(self.num(what)?),
                    Item::Text => Value::Text(self.text(what)?.into()),
                    Item::Bytes => Value::Bytes(self.bytes(what)?.to_vec()),
                })
            })
            .collect()
    }

    /// Where the next item starts.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Every item of the record of `cba_poll`'s kind `kind`, as [`abi::OUTPUTS`] lays
    /// it out (a completion's record continues with [`abi::COMPLETION`] or
    /// [`abi::ERROR`]).
    pub fn output_items(&mut self, kind: u8) -> Check<Vec<Value>> {
        let layout = abi::OUTPUTS
            .get(usize::from(kind))
            .ok_or_else(|| format!("poll kind {kind}"))?;
        let mut items = self.record(layout)?;
        if *layout == abi::COMPLETED {
            let ok = items.last() == Some(&Value::Num(1.0));
            items.extend(self.record(if ok { abi::COMPLETION } else { abi::ERROR })?);
        }
        Ok(items)
    }

    /// An error record ([`abi::ERROR`]), its codes checked against the documented ones.
    pub fn error(&mut self) -> Check<ErrorRecord> {
        let class = self.int("class", 1.0, f64::from(Error::CLASS_MAX))? as u8;
        let max = match class {
            Error::CLASS_HOST => abi::arg::CODE_MAX,
            Error::CLASS_API_MISUSE => ApiMisuse::CODE_MAX,
            Error::CLASS_WIRE => WireError::CODE_MAX,
            Error::CLASS_TRANSPORT => TransportError::CODE_MAX,
            Error::CLASS_SNAPSHOT => SnapshotError::CODE_MAX,
            _ => 0,
        };
        let sub = self.code("sub", max)?;
        if max > 0 && sub == 0 {
            return Err(format!("class {class}: sub-code 0"));
        }
        Ok(ErrorRecord {
            class,
            sub,
            status: self.int("status", 0.0, 65535.0)? as u16,
            server_kind: self.code("server kind", ServerErrorKind::CODE_MAX)?,
            error_code: self.num("error_code")?,
            field: self.text("field")?.into(),
            error: self.text("error")?.into(),
            error_description: self.text("errorDescription")?.into(),
        })
    }

    /// The record of `cba_poll`'s kind `kind` ([`abi::OUTPUTS`]).
    pub fn output(&mut self, kind: u8) -> Check<OutputRecord> {
        let state = |r: &mut Self, what| r.code(what, LoginState::CODE_MAX);
        Ok(match kind {
            0 => {
                let d = self.num("deadline")?;
                if d != -1.0 && !(0.0..=TIME_MAX as f64).contains(&d) {
                    return Err(format!("deadline {d} is neither -1 nor a host time"));
                }
                OutputRecord::Timeout((d >= 0.0).then_some(d))
            }
            1 => {
                let u32_max = f64::from(u32::MAX);
                let generation = self.int("generation", 0.0, u32_max)? as u32;
                let seq = self.int("seq", 0.0, u32_max)? as u32;
                let method = self.text("method")?.into();
                let path = self.text("path")?.into();
                let block = self.text("headers")?;
                if !block.is_empty() && !block.ends_with('\n') {
                    return Err("a header line without its \\n".into());
                }
                let headers = block
                    .lines()
                    .map(|l| {
                        l.split_once(": ")
                            .map(|(n, v)| (n.into(), v.into()))
                            .ok_or_else(|| format!("header line {l:?} is not `name: value`"))
                    })
                    .collect::<Check<_>>()?;
                let has_body = self.int("has_body", 0.0, 1.0)? == 1.0;
                let body = self.bytes("body")?;
                OutputRecord::Transmit(TransmitRecord {
                    generation,
                    seq,
                    method,
                    path,
                    headers,
                    body: has_body.then(|| body.to_vec()),
                })
            }
            2 => {
                let text = self.text("snapshot")?;
                let mut bytes = vec![0; text.len()];
                let n = stored::decode(text.as_bytes(), &mut bytes)
                    .map_err(|e| format!("snapshot: {e:?}"))?;
                bytes.truncate(n);
                if stored::text(&bytes) != text.as_bytes() {
                    return Err("snapshot: not standard padded base64".into());
                }
                OutputRecord::Persist(bytes)
            }
            3 => OutputRecord::Clear,
            4 => OutputRecord::Changed(state(self, "from")?, state(self, "to")?),
            5 => {
                let op = self.int("op", 1.0, f64::from(u32::MAX))? as u32;
                let result = if self.int("ok", 0.0, 1.0)? == 1.0 {
                    let kind = self.int("completion", 1.0, f64::from(Completion::CODE_MAX))?;
                    let hi = match kind as u8 {
                        2 => LoginState::CODE_MAX,
                        5 => 1,
                        _ => 0,
                    };
                    Ok((kind as u8, self.code("detail", hi)?))
                } else {
                    let e = self.error()?;
                    if e.class == Error::CLASS_HOST {
                        return Err("an operation failed with a host-value error".into());
                    }
                    Err(e)
                };
                OutputRecord::Completed { op, result }
            }
            6 => OutputRecord::Replaced,
            k => return Err(format!("poll kind {k} (kinds 0..={})", Output::CODE_MAX)),
        })
    }

    /// A session record ([`abi::SESSION`]).
    pub fn session(&mut self) -> Check<SessionRecord> {
        Ok(SessionRecord {
            uid: self.text("uid")?.into(),
            token_type: self.text("token type")?.into(),
            access_token: self.text("access token")?.into(),
            expires_at: self.num("expires_at")?,
            refresh_at: self.num("refresh_at")?,
            refreshable: self.int("refreshable", 0.0, 1.0)? == 1.0,
        })
    }

    /// A user record ([`abi::USER`]): uid, nickName, avatarUrl, email, openid.
    pub fn user(&mut self) -> Check<[String; 5]> {
        let mut field = |what| self.text(what).map(String::from);
        Ok([
            field("uid")?,
            field("nickName")?,
            field("avatarUrl")?,
            field("email")?,
            field("openid")?,
        ])
    }
}

/// An error record.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::exhaustive_structs, reason = "the record's items")]
pub struct ErrorRecord {
    /// Error class (`Error::CLASS_*`).
    pub class: u8,
    /// Sub-code within the class.
    pub sub: u8,
    /// HTTP status (server errors; else 0).
    pub status: u16,
    /// Server error kind code (server errors; else 0).
    pub server_kind: u8,
    /// The server's `error_code` (server errors; else 0).
    pub error_code: f64,
    /// The refused input or reply field, or empty.
    pub field: String,
    /// The server's `error` name (server errors that gave one; else empty).
    pub error: String,
    /// The server's `error_description` (server errors that gave one; else empty).
    pub error_description: String,
}

impl ErrorRecord {
    /// `(class, sub)`.
    pub fn code(&self) -> (u8, u8) {
        (self.class, self.sub)
    }
}

/// A transmit record.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::exhaustive_structs, reason = "the record's items")]
pub struct TransmitRecord {
    /// Request id, first half.
    pub generation: u32,
    /// Request id, second half.
    pub seq: u32,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `(name, value)` pairs, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if the request has one.
    pub body: Option<Vec<u8>>,
}

/// The record of one polled output.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::exhaustive_enums, reason = "the output kinds of this ABI")]
pub enum OutputRecord {
    /// Kind 0: the next deadline, if any.
    Timeout(Option<f64>),
    /// Kind 1.
    Transmit(TransmitRecord),
    /// Kind 2: the snapshot's bytes (decoded from the record's base64 text, which the
    /// read checked is the canonical encoding).
    Persist(Vec<u8>),
    /// Kind 3.
    Clear,
    /// Kind 4: from, to (state codes).
    Changed(u8, u8),
    /// Kind 5: the op id; the completion's (kind, detail), or the error.
    Completed {
        /// The id the operation's export returned.
        op: u32,
        /// What happened.
        result: Result<(u8, u8), ErrorRecord>,
    },
    /// Kind 6.
    Replaced,
}

/// A session record.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::exhaustive_structs, reason = "the record's items")]
pub struct SessionRecord {
    /// User id.
    pub uid: String,
    /// `Bearer`.
    pub token_type: String,
    /// The access token.
    pub access_token: String,
    /// When the access token expires (host ms).
    pub expires_at: f64,
    /// When the engine refreshes it (host ms).
    pub refresh_at: f64,
    /// Whether there is a refresh token.
    pub refreshable: bool,
}

/// Reads the record the last export wrote, with `f`, on the exchange buffer (locked for
/// the read: call no export from `f`).
pub fn read<T>(f: impl FnOnce(&mut Reader<'_>) -> Check<T>) -> Check<T> {
    crate::with_exchange(|x| f(&mut Reader::new(x)))
}
