//! Writing records into the exchange buffer, in the layouts of [`crate::abi`].

use crate::abi::TIME_MAX;
use cloudbase_auth_core::{Error, Output};

/// A record did not fit the buffer (never with the exchange buffer; checked, not
/// assumed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

/// Writes fail only if the buffer is full.
pub(crate) type Fits = Result<(), Overflow>;

/// Writes the items of a record one after another.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> Fits {
        let end = self.pos.checked_add(bytes.len()).ok_or(Overflow)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(Overflow)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    /// A `num` item.
    pub(crate) fn num(&mut self, v: f64) -> Fits {
        self.put(&v.to_le_bytes())
    }

    /// A `num` item holding a small integer (a code, a flag, a request id part).
    pub(crate) fn int(&mut self, v: impl Into<u32>) -> Fits {
        self.num(f64::from(v.into()))
    }

    /// A text or bytes item.
    pub(crate) fn str(&mut self, bytes: &[u8]) -> Fits {
        self.put(
            &u32::try_from(bytes.len())
                .map_err(|_| Overflow)?
                .to_le_bytes(),
        )?;
        self.put(bytes)
    }

    /// A text item: `bytes` as stored text ([`crate::stored`]).
    fn stored_text(&mut self, bytes: &[u8]) -> Fits {
        let at = self.pos.checked_add(4).ok_or(Overflow)?;
        let out = self.buf.get_mut(at..).ok_or(Overflow)?;
        let n = crate::stored::encode(bytes, out).ok_or(Overflow)?;
        self.put(&u32::try_from(n).map_err(|_| Overflow)?.to_le_bytes())?;
        self.pos += n;
        Ok(())
    }
}

/// The error record of a core error ([`crate::abi::ERROR`]); its `(class, sub)`.
/// By reference: a server error carries its texts, and copying it costs module bytes.
pub(crate) fn write_error(w: &mut Writer<'_>, e: &Error) -> (u8, u8) {
    let (class, sub) = e.code();
    // Status, kind, `error_code` and the texts are a server error's; zero and empty for
    // the others.
    let (status, kind, code, name, description) = match e {
        Error::Server(s) => (
            s.status,
            s.kind.code(),
            s.code as f64,
            s.name.as_str(),
            s.description.as_str(),
        ),
        _ => (0, 0, 0.0, "", ""),
    };
    write_error_items(
        w,
        [class, sub],
        status,
        kind,
        code,
        [e.field(), name, description],
    );
    (class, sub)
}

/// The error record of an engine call's refusal (no server's reply: its numbers zero,
/// its texts empty).
pub(crate) fn write_call_error(w: &mut Writer<'_>, class: u8, sub: u8, field: &str) {
    write_error_items(w, [class, sub], 0, 0, 0.0, [field, "", ""]);
}

/// The error record of a bad host value ([`Error::CLASS_HOST`]).
pub(crate) fn write_host_error(w: &mut Writer<'_>, sub: u8) {
    write_error_items(w, [Error::CLASS_HOST, sub], 0, 0, 0.0, [""; 3]);
}

#[inline(never)]
fn write_error_items(
    w: &mut Writer<'_>,
    [class, sub]: [u8; 2],
    status: u16,
    kind: u8,
    code: f64,
    texts: [&str; 3],
) {
    // A few numbers and three texts the core bounds (a field name, 48 and 160 bytes):
    // always fits the exchange buffer.
    let _ = (|| {
        w.int(class)?;
        w.int(sub)?;
        w.int(status)?;
        w.int(kind)?;
        w.num(code)?;
        texts.iter().try_for_each(|t| w.str(t.as_bytes()))
    })();
}

/// Writes the record of one output ([`crate::abi::OUTPUTS`]); its kind.
pub(crate) fn write_output(w: &mut Writer<'_>, out: Output<'_>) -> Result<u8, Overflow> {
    let kind = out.code();
    match out {
        Output::Timeout(deadline) => {
            // The engine's deadlines can pass 2^53 (a huge `expires_in`, a clock at the
            // limit); capped, the deadline is always a time `cba_handle_timeout` takes.
            w.num(deadline.map_or(-1.0, |d| d.min(TIME_MAX) as f64))?;
        }
        Output::Transmit(t) => {
            w.int(t.request.generation)?;
            w.int(t.request.seq)?;
            w.str(t.method.as_str().as_bytes())?;
            w.str(t.path.as_bytes())?;
            w.str(t.header_block().as_bytes())?;
            w.int(t.body.is_some())?;
            w.str(t.body.unwrap_or(&[]))?;
        }
        Output::PersistSnapshot(bytes) => w.stored_text(bytes)?,
        Output::LoginStateChanged { from, to } => {
            w.int(from.code())?;
            w.int(to.code())?;
        }
        Output::OperationCompleted { op, result } => {
            w.int(op.0)?;
            match result {
                Ok(c) => {
                    let (kind, detail) = c.code();
                    w.int(1u8)?;
                    w.int(kind)?;
                    w.int(detail)?;
                }
                Err(e) => {
                    w.int(0u8)?;
                    write_error(w, &e);
                }
            }
        }
        Output::ClearStorage | Output::SessionReplaced => {}
        // A kind the core adds later has its code already (`Output::code` is
        // exhaustive), and `abi::OUTPUTS`, sized by the core's `Output::CODE_MAX`, does
        // not compile until it has a layout; its items are written here.
        _ => {}
    }
    Ok(kind)
}
