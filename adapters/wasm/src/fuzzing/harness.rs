//! Runs steps against the exports: keeps the clock, places each argument in the exchange
//! buffer and passes it as the step says (placed or hostile), answers requests through
//! the fake server, and hands every result to the [`Contract`].

use super::checks::{self, Contract, Faults, Returns};
use super::grammar::*;
use super::server::Server;
use super::{APPID, ENV, MAX_POLLS, T0};
use crate::abi::EXCHANGE_LEN;
use crate::exports::*;
use crate::reader::OutputRecord;
use crate::with_exchange;
use cloudbase_auth_core::LoginState;
use cloudbase_auth_core::wire::Endpoint;

/// Transmits kept for [`Id::Recent`].
const RECENT: usize = 8;

/// What the harness knows beyond the module: its clock and what it polled.
pub(super) struct Harness {
    base: usize,
    clock: u64,
    deadline: Option<f64>,
    recent: Vec<(u32, u32, Option<Endpoint>)>,
    /// The last snapshot a poll persisted (its bytes).
    snapshot: Option<Vec<u8>>,
    /// Where the next placed value goes.
    place: usize,
    server: Server,
    contract: Contract,
}

impl Harness {
    /// A harness on a fresh engine (`cba_reset`).
    pub(super) fn new() -> Self {
        let mut h = Harness {
            base: cba_buf().addr(),
            clock: T0,
            deadline: None,
            recent: Vec::new(),
            snapshot: None,
            place: 0,
            server: Server::default(),
            contract: Contract::default(),
        };
        h.reset();
        h
    }

    /// A new engine; the clock and the last snapshot stay.
    fn reset(&mut self) {
        cba_reset();
        self.deadline = None;
        self.recent.clear();
        self.server.reset();
        self.contract.reset();
    }

    fn time(&mut self, t: &Time) -> f64 {
        match t {
            Time::Clock => self.clock as f64,
            Time::Special(i) => SPECIAL_TIMES[usize::from(*i) % SPECIAL_TIMES.len()],
            Time::Raw(bits) => f64::from_bits(*bits),
            Time::Back(ms) => self.clock.saturating_sub(u64::from(*ms)) as f64,
            Time::Frac => self.clock as f64 + 0.5,
            Time::Deadline => match self.deadline {
                // Deadlines are capped at 2^53, so the deadline itself is always a time
                // `cba_handle_timeout` takes (checked where the record is read).
                Some(d) => {
                    if d > self.clock as f64 {
                        self.clock = d as u64;
                    }
                    d
                }
                None => self.clock as f64,
            },
        }
    }

    /// Writes `bytes` at the next free offset from `at * 64` (moved back to fit); its
    /// offset.
    fn put(&mut self, bytes: &[u8]) -> usize {
        let off = self.place.min(EXCHANGE_LEN - bytes.len().min(EXCHANGE_LEN));
        let n = bytes.len().min(EXCHANGE_LEN - off);
        with_exchange(|x| x[off..off + n].copy_from_slice(&bytes[..n]));
        self.place = off + n;
        off
    }

    /// The `(ptr, len)` for a value placed at `off` with `len` bytes.
    fn pair(&self, p: &Pair, off: usize, len: usize) -> (usize, usize) {
        let Pair::Hostile { ptr, len: l, extra } = p else {
            return (self.base + off, len);
        };
        let (base, e) = (self.base, usize::from(*extra));
        let ptr = match ptr % 10 {
            0 => base + off,
            1 => 0,
            2 => 1,
            3 => usize::MAX,
            4 => base + EXCHANGE_LEN,
            5 => base + EXCHANGE_LEN - 1,
            6 => base.wrapping_sub(1),
            7 => usize::MAX - e,
            8 => base.wrapping_add(e),
            _ => base.wrapping_sub(e),
        };
        let start = ptr.wrapping_sub(base);
        let len = match l % 12 {
            0 => len,
            1 => 0,
            2 => 1,
            3 => usize::MAX,
            4 => EXCHANGE_LEN,
            5 => EXCHANGE_LEN + 1,
            6 => EXCHANGE_LEN.wrapping_sub(start),
            7 => EXCHANGE_LEN.wrapping_sub(start).wrapping_add(1),
            8 => 0usize.wrapping_sub(ptr),
            9 => e,
            10 => usize::MAX - start,
            _ => (usize::MAX - start).wrapping_add(1),
        };
        (ptr, len)
    }

    /// Places a string argument; its `(ptr, len)`.
    fn text(&mut self, f: &mut Faults, t: &Text, good: &[u8], p: &Pair) -> (usize, usize) {
        let bytes: &[u8] = match t {
            Text::Good => good,
            Text::Canned(i) => CANNED[usize::from(*i) % CANNED.len()],
            Text::Bytes(b) => b,
        };
        let off = self.put(bytes);
        let pair = self.pair(p, off, bytes.len());
        f.pairs.push((pair, true));
        pair
    }

    fn bytes_arg(&mut self, f: &mut Faults, bytes: &[u8], p: &Pair) -> (usize, usize) {
        let off = self.put(bytes);
        let pair = self.pair(p, off, bytes.len());
        f.pairs.push((pair, false));
        pair
    }

    fn id(&self, id: &Id) -> (u32, u32, Option<Endpoint>) {
        match id {
            Id::Recent(k) if !self.recent.is_empty() => {
                let i = usize::from(*k) % self.recent.len();
                self.recent[self.recent.len() - 1 - i]
            }
            Id::Recent(_) => (0, 0, None),
            Id::Raw(g, s) => (*g, *s, None),
        }
    }

    /// The stored text a restore passes.
    fn stored(&self, snap: &Snap) -> Vec<u8> {
        let last = self.snapshot.clone().unwrap_or_default();
        let bytes = match snap {
            Snap::Last => last,
            Snap::Flipped { at, mask } => {
                let mut b = last;
                if !b.is_empty() {
                    let i = usize::from(*at) % b.len();
                    b[i] ^= (*mask).max(1);
                }
                b
            }
            Snap::Bytes(b) => b.clone(),
            Snap::Text(text) => return text.clone(),
        };
        crate::stored::text(&bytes)
    }

    fn input(&mut self, call: &Call, drain: bool) {
        let before = self.contract.before_input();
        let mut f = Faults::default();
        let (r, returns) = match call {
            Call::Init {
                time,
                at,
                env,
                env_pair,
                client,
                client_pair,
                seed,
                seed_pair,
            } => {
                let now = f.time(self.time(time));
                self.place = usize::from(*at) * 64;
                let off = self.put(&[*seed; 16]);
                // The seed's length is always 16: only the pointer can be hostile.
                let seed = self.pair(seed_pair, off, 16).0;
                if !checks::inside(self.base, (seed, 16)) {
                    f.add(crate::abi::arg::RANGE);
                }
                let env = self.text(&mut f, env, ENV.as_bytes(), env_pair);
                // `client_len == 0`: the env id, the pointer unused (and unchecked).
                let mut cf = Faults::default();
                let client = self.text(&mut cf, client, b"", client_pair);
                if client.1 > 0 {
                    f.pairs.append(&mut cf.pairs);
                }
                f.settle(self.base);
                let r = cba_init(now, env.0, env.1, client.0, client.1, seed);
                (r, Returns::Zero)
            }
            Call::Restore {
                time,
                at,
                snap,
                pair,
            } => {
                let now = f.time(self.time(time));
                self.place = usize::from(*at) * 64;
                let stored = self.stored(snap);
                let (ptr, len) = self.bytes_arg(&mut f, &stored, pair);
                f.settle(self.base);
                (cba_restore(now, ptr, len), Returns::Zero)
            }
            Call::GetLoginState(t) => {
                let now = f.time(self.time(t));
                (cba_get_login_state(now), Returns::OpId)
            }
            Call::GetUserInfo(t) => {
                let now = f.time(self.time(t));
                (cba_get_user_info(now), Returns::OpId)
            }
            Call::SignInAnonymously(t) => {
                let now = f.time(self.time(t));
                (cba_sign_in_anonymously(now), Returns::OpId)
            }
            Call::SignOut(t) => {
                let now = f.time(self.time(t));
                (cba_sign_out(now), Returns::OpId)
            }
            Call::SignInWithWeChat(w) | Call::LinkWeChat(w) => {
                let now = f.time(self.time(&w.time));
                self.place = usize::from(w.at) * 64;
                let code = self.text(&mut f, &w.code, b"code-1", &w.code_pair);
                let appid = self.text(&mut f, &w.appid, APPID.as_bytes(), &w.appid_pair);
                let export = match call {
                    Call::LinkWeChat(_) => cba_link_wechat,
                    _ => cba_sign_in_with_wechat,
                };
                f.settle(self.base);
                let r = export(now, code.0, code.1, appid.0, appid.1);
                (r, Returns::OpId)
            }
            Call::Answer {
                time,
                at,
                id,
                reply,
                pair,
            } => {
                let now = f.time(self.time(time));
                let (g, s, endpoint) = self.id(id);
                let anonymous = cba_login_state() == u32::from(LoginState::Anonymous.code());
                let (status, body) = self.server.reply(endpoint, reply, anonymous);
                self.place = usize::from(*at) * 64;
                let (ptr, len) = self.bytes_arg(&mut f, &body, pair);
                f.settle(self.base);
                let r = cba_handle_response(now, g, s, status, ptr, len);
                (r, Returns::Delivery)
            }
            Call::Respond {
                time,
                at,
                id,
                status,
                body,
                pair,
            } => {
                let now = f.time(self.time(time));
                let (g, s, _) = self.id(id);
                let status = match status {
                    Status::Table(i) => STATUSES[usize::from(*i) % STATUSES.len()],
                    Status::Raw(s) => *s,
                };
                if status > 65535 {
                    f.add(crate::abi::arg::STATUS);
                }
                self.place = usize::from(*at) * 64;
                let (ptr, len) = self.bytes_arg(&mut f, body, pair);
                f.settle(self.base);
                let r = cba_handle_response(now, g, s, status, ptr, len);
                (r, Returns::Delivery)
            }
            Call::TransportError { time, id } => {
                let now = f.time(self.time(time));
                let (g, s, _) = self.id(id);
                (cba_handle_transport_error(now, g, s), Returns::Delivery)
            }
            Call::Timeout(t) => {
                let now = f.time(self.time(t));
                (cba_handle_timeout(now), Returns::Zero)
            }
            Call::UpdateProfile {
                time,
                at,
                nickname,
                nickname_pair,
                avatar,
                avatar_pair,
                fields,
            } => {
                use crate::abi::profile::{AVATAR_URL, NICKNAME};
                let now = f.time(self.time(time));
                self.place = usize::from(*at) * 64;
                let fields = u32::from(*fields);
                if fields & !(NICKNAME | AVATAR_URL) != 0 {
                    f.add(crate::abi::arg::FLAGS);
                }
                // Only the pairs of the fields given are read (and checked).
                let mut unread = Faults::default();
                let mut pair = |f: &mut Faults, bit, t, good: &[u8], p| {
                    let into = if fields & bit != 0 { f } else { &mut unread };
                    self.text(into, t, good, p)
                };
                let n = pair(&mut f, NICKNAME, nickname, b"Ming", nickname_pair);
                let a = pair(
                    &mut f,
                    AVATAR_URL,
                    avatar,
                    b"https://a.example/m.png",
                    avatar_pair,
                );
                f.settle(self.base);
                let r = cba_update_profile(now, n.0, n.1, a.0, a.1, fields);
                (r, Returns::OpId)
            }
            Call::DeleteAccount(t) => {
                let now = f.time(self.time(t));
                (cba_delete_account(now), Returns::OpId)
            }
        };
        let restore = matches!(call, Call::Restore { .. });
        self.contract.after_input(r, returns, &f, before, restore);
        if drain {
            self.drain();
        }
    }

    /// One `cba_poll`, checked; whether it returned the timeout kind.
    fn poll(&mut self) -> bool {
        match self.contract.poll() {
            Some(OutputRecord::Timeout(d)) => {
                self.deadline = d;
                return true;
            }
            Some(OutputRecord::Transmit(t)) => {
                if self.recent.len() == RECENT {
                    self.recent.remove(0);
                }
                // `/auth/v1/token?client_id=…` → `Endpoint::Token`.
                let path = t.path.split('?').next().unwrap_or("");
                let ep = Endpoint::ALL.into_iter().find(|e| path.ends_with(e.path()));
                self.recent.push((t.generation, t.seq, ep));
            }
            Some(OutputRecord::Persist(b)) => self.snapshot = Some(b),
            _ => {}
        }
        false
    }

    /// `cba_poll` until the timeout kind.
    pub(super) fn drain(&mut self) {
        for _ in 0..=MAX_POLLS {
            if self.poll() {
                return;
            }
        }
        panic!("no timeout within {MAX_POLLS} polls");
    }

    /// Runs one step.
    pub(super) fn step(&mut self, s: &Step) {
        match s {
            Step::Input { call, drain } => self.input(call, *drain),
            Step::Poll => {
                self.poll();
            }
            Step::Drain => self.drain(),
            Step::LoginState => {
                checks::login_state();
            }
            Step::Session | Step::User => {
                checks::reads();
            }
            Step::Write { at, bytes } => {
                let off = usize::from(*at) % EXCHANGE_LEN;
                let n = bytes.len().min(EXCHANGE_LEN - off);
                with_exchange(|x| x[off..off + n].copy_from_slice(&bytes[..n]));
            }
            Step::Advance(ms) => {
                self.clock = self.clock.saturating_add(u64::from(*ms));
            }
            Step::Reset => self.reset(),
            Step::Buf => {
                assert_eq!(cba_buf().addr(), self.base, "cba_buf moved");
                assert_eq!(cba_buf_len() as usize, EXCHANGE_LEN);
            }
        }
    }
}
