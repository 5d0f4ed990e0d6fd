//! What each export does with the module's memory: validate the host's values, call the
//! engine, write the record, enforce the drain rule.

use crate::abi::{EXCHANGE_LEN, TIME_MAX, arg, profile};
use crate::record::{self, Overflow, Writer};
use crate::stored::{self, Undecodable};
use cloudbase_auth_core::capacity::POLL_BUFFER_MIN;
use cloudbase_auth_core::config::default_origin;
use cloudbase_auth_core::{Config, Engine, Error, OpId, Output, RequestId};

/// Why an export failed: a bad value from the host (a sub-code of [`arg`]), or the
/// engine refused the call: its error's `(class, sub)` and field.
///
/// Only the codes and the field, not the [`Error`]: an engine call refuses with misuse,
/// "not signed in" or snapshot errors, never with a server's reply (those complete an
/// operation, through `cba_poll`), and carrying the error with the server's texts
/// through every export cost the module 227 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fail {
    Host(u8),
    Core(u8, u8, &'static str),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        let (class, sub) = e.code();
        Fail::Core(class, sub, e.field())
    }
}

/// A record that does not fit is reported as a range error (it cannot happen with
/// [`EXCHANGE_LEN`]).
impl From<Overflow> for Fail {
    fn from(_: Overflow) -> Self {
        Fail::Host(arg::RANGE)
    }
}

/// What an export works on: everything the module keeps, borrowed from the arena.
pub(crate) struct Host<'a> {
    pub(crate) engine: &'a mut Engine,
    /// An input reached the engine and `cba_poll` has not returned the timeout since.
    pub(crate) undrained: &'a mut bool,
    /// Lent to `Engine::poll_output`, and to `restore` to decode into; never seen by the
    /// host.
    pub(crate) poll: &'a mut [u8; POLL_BUFFER_MIN],
    /// The exchange buffer (see the crate docs).
    pub(crate) xbuf: &'a mut [u8; EXCHANGE_LEN],
}

/// Host time: Unix ms as an `f64`, finite, `0..=2^53`.
fn time(now: f64) -> Result<u64, Fail> {
    if (0.0..=TIME_MAX as f64).contains(&now) {
        Ok(now as u64)
    } else {
        Err(Fail::Host(arg::TIME))
    }
}

/// The bytes at `(ptr, len)`, which must lie inside the exchange buffer `xbuf`.
fn span(xbuf: &[u8], ptr: usize, len: usize) -> Result<&[u8], Fail> {
    const RANGE: Fail = Fail::Host(arg::RANGE);
    let start = ptr.wrapping_sub(xbuf.as_ptr().addr());
    let end = start.checked_add(len).ok_or(RANGE)?;
    xbuf.get(start..end).ok_or(RANGE)
}

/// The UTF-8 text at `(ptr, len)` in `xbuf`.
fn text(xbuf: &[u8], (ptr, len): (usize, usize)) -> Result<&str, Fail> {
    core::str::from_utf8(span(xbuf, ptr, len)?).map_err(|_| Fail::Host(arg::UTF8))
}

impl Host<'_> {
    /// Starts an input export: refused until the previous input's outputs were drained
    /// (the engine's contract); otherwise marks the queue as needing a drain, whatever
    /// this call returns. The validated time.
    #[inline(never)]
    fn begin(&mut self, now: f64) -> Result<u64, Fail> {
        if *self.undrained {
            return Err(Fail::Host(arg::NOT_DRAINED));
        }
        *self.undrained = true;
        time(now)
    }

    /// An export's return value: `v`, or `-(class * 256 + sub)` with the error record
    /// written.
    #[inline(never)]
    pub(crate) fn out(&mut self, r: Result<f64, Fail>) -> f64 {
        let mut w = Writer::new(&mut self.xbuf[..]);
        let (class, sub) = match r {
            Ok(v) => return v,
            Err(Fail::Host(sub)) => {
                record::write_host_error(&mut w, sub);
                (Error::CLASS_HOST, sub)
            }
            Err(Fail::Core(class, sub, field)) => {
                record::write_call_error(&mut w, class, sub, field);
                (class, sub)
            }
        };
        crate::abi::error_return(class, sub)
    }

    pub(crate) fn init(
        &mut self,
        now: f64,
        env: (usize, usize),
        client: (usize, usize),
        seed: usize,
    ) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        let xbuf = &self.xbuf[..];
        let seed = <[u8; 16]>::try_from(span(xbuf, seed, 16)?).map_err(|_| Overflow)?;
        let mut config = Config::new(text(xbuf, env)?);
        if client.1 > 0 {
            config = config.with_client_id(text(xbuf, client)?);
        }
        self.engine.init(now, config, seed)?;
        Ok(0.0)
    }

    /// Restores the stored text (base64 of the snapshot). Text that is not base64 is
    /// restored as no bytes, and text that decodes to more than the poll buffer as all
    /// of it: either way a corrupt snapshot for the engine.
    pub(crate) fn restore(&mut self, now: f64, ptr: usize, len: usize) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        let text = span(&self.xbuf[..], ptr, len)?;
        let n = match stored::decode(text, &mut self.poll[..]) {
            Ok(n) => n,
            Err(Undecodable::TooLong) => POLL_BUFFER_MIN,
            Err(Undecodable::NotBase64) => 0,
        };
        self.engine.restore(now, &self.poll[..n])?;
        Ok(0.0)
    }

    /// An operation without arguments: its id.
    pub(crate) fn op(
        &mut self,
        now: f64,
        f: fn(&mut Engine, u64) -> Result<OpId, Error>,
    ) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        Ok(f64::from(f(self.engine, now)?.0))
    }

    /// `sign_in_with_wechat` / `link_wechat`: the operation id.
    pub(crate) fn wechat_op(
        &mut self,
        now: f64,
        code: (usize, usize),
        appid: (usize, usize),
        f: fn(&mut Engine, u64, &str, &str) -> Result<OpId, Error>,
    ) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        let xbuf = &self.xbuf[..];
        Ok(f64::from(
            f(self.engine, now, text(xbuf, code)?, text(xbuf, appid)?)?.0,
        ))
    }

    /// `update_profile`: the operation id. `fields` says which strings are given
    /// ([`profile`]); the pair of one that is not is not read.
    pub(crate) fn update_profile(
        &mut self,
        now: f64,
        nickname: (usize, usize),
        avatar_url: (usize, usize),
        fields: u32,
    ) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        if fields & !(profile::NICKNAME | profile::AVATAR_URL) != 0 {
            return Err(Fail::Host(arg::FLAGS));
        }
        let xbuf = &self.xbuf[..];
        let given = |bit: u32, pair| {
            if fields & bit == 0 {
                Ok(None)
            } else {
                text(xbuf, pair).map(Some)
            }
        };
        let (nickname, avatar_url) = (
            given(profile::NICKNAME, nickname)?,
            given(profile::AVATAR_URL, avatar_url)?,
        );
        let op = self.engine.update_profile(now, nickname, avatar_url)?;
        Ok(f64::from(op.0))
    }

    pub(crate) fn response(
        &mut self,
        now: f64,
        id: RequestId,
        status: u32,
        ptr: usize,
        len: usize,
    ) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        let status = u16::try_from(status).map_err(|_| Fail::Host(arg::STATUS))?;
        let body = span(&self.xbuf[..], ptr, len)?;
        let d = self.engine.handle_response(now, id, status, body);
        Ok(f64::from(d.code()))
    }

    pub(crate) fn transport_error(&mut self, now: f64, id: RequestId) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        Ok(f64::from(
            self.engine.handle_transport_error(now, id).code(),
        ))
    }

    pub(crate) fn timeout(&mut self, now: f64) -> Result<f64, Fail> {
        let now = self.begin(now)?;
        self.engine.handle_timeout(now);
        Ok(0.0)
    }

    pub(crate) fn poll(&mut self) -> Result<f64, Fail> {
        let out = self.engine.poll_output(&mut self.poll[..])?;
        if matches!(out, Output::Timeout(_)) {
            *self.undrained = false;
        }
        let kind = record::write_output(&mut Writer::new(&mut self.xbuf[..]), out)?;
        Ok(f64::from(kind))
    }

    pub(crate) fn session(&mut self) -> Result<f64, Fail> {
        let Some(s) = self.engine.session() else {
            return Ok(0.0);
        };
        let mut w = Writer::new(&mut self.xbuf[..]);
        w.str(s.uid.as_bytes())?;
        w.str(s.token_type.as_bytes())?;
        w.str(s.access_token.as_bytes())?;
        w.num(s.expires_at_ms as f64)?;
        w.num(s.refresh_at_ms as f64)?;
        w.int(s.refreshable)?;
        Ok(1.0)
    }

    pub(crate) fn user(&mut self) -> Result<f64, Fail> {
        let Some(u) = self.engine.user() else {
            return Ok(0.0);
        };
        let mut w = Writer::new(&mut self.xbuf[..]);
        for s in [u.uid, u.nick_name, u.avatar_url, u.email, u.openid] {
            w.str(s.as_bytes())?;
        }
        Ok(1.0)
    }

    /// The CloudBase origin of the env `init` was given (`0` before `init`: no env).
    pub(crate) fn default_origin(&mut self) -> Result<f64, Fail> {
        let Ok(origin) = default_origin(self.engine.env(), None) else {
            return Ok(0.0);
        };
        Writer::new(&mut self.xbuf[..]).str(origin.as_bytes())?;
        Ok(1.0)
    }
}
