//! The vocabulary of a generated run: the host settings it starts with ([`Setup`]) and
//! its steps ([`Op`]). Plain small data shared by proptest (`tests/model.rs` draws it)
//! and the `engine_ops` fuzz target (`arbitrary` decodes it).

use cloudbase_auth_core::Config;
use cloudbase_auth_core::testing::ENV;

/// What the host configures before the run (the engine is set up with it at the start
/// and at every restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_structs)] // a test vocabulary, built field by field on purpose
pub struct Setup {
    /// [`Config::anonymous_recovery`]: whether a refused anonymous session is replaced
    /// by a new anonymous user.
    pub anonymous_recovery: bool,
}

impl Default for Setup {
    /// The defaults of [`Config::new`].
    fn default() -> Self {
        Setup {
            anonymous_recovery: Config::new(ENV).anonymous_recovery,
        }
    }
}

impl Setup {
    /// The engine configuration of this setup, for the harness's env.
    pub fn config(self) -> Config<'static> {
        Config::new(ENV).with_anonymous_recovery(self.anonymous_recovery)
    }
}

/// One step of a generated run. Plain small data: proptest builds it with the
/// strategies of `tests/model.rs`, the `engine_ops` fuzz target with the derived
/// `arbitrary::Arbitrary` (feature `arbitrary`; its byte layout is what
/// [`crate::seeds::encode_ops`] writes, so keep new variants at the end).
#[allow(clippy::exhaustive_enums)] // a test vocabulary, matched exhaustively on purpose
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Op {
    /// `get_login_state`.
    GetLoginState,
    /// `get_user_info`.
    GetUserInfo,
    /// `sign_in_anonymously`.
    SignInAnonymously,
    /// `sign_in_with_wechat` with a fresh `wx.login` code for one of [`OPENIDS`].
    SignInWeChat {
        /// Index into [`OPENIDS`] (modulo).
        openid_idx: u8,
    },
    /// `sign_in_with_wechat` with a code the server never minted.
    SignInWeChatBadCode,
    /// `link_wechat` with a fresh code for one of [`OPENIDS`].
    LinkWeChat {
        /// Index into [`OPENIDS`] (modulo).
        openid_idx: u8,
    },
    /// `sign_out`.
    SignOut,
    /// The scripted server answers a held request: the oldest (often a stale one) or the
    /// newest (the one in flight, if any).
    ReplyGood {
        /// Answer the oldest held request instead of the newest.
        oldest: bool,
    },
    /// The newest held request gets a CloudBase error reply.
    ReplyError {
        /// Index into [`ERROR_STATUSES`] (modulo).
        status_idx: u8,
        /// Index into [`ERROR_NAMES`] (modulo).
        kind_idx: u8,
    },
    /// The newest held request gets a non-JSON body (`<` + bytes).
    ReplyGarbage {
        /// Index into [`GARBAGE_STATUSES`] (modulo).
        status_idx: u8,
        /// Body bytes after the leading `<`.
        bytes: Vec<u8>,
    },
    /// A request that was already answered (or lost) gets a plausible credentials reply
    /// again: a duplicate or very late delivery.
    ReplyLateDuplicate {
        /// Index into the answered requests (modulo).
        idx: u8,
    },
    /// The newest held request fails in transport.
    TransportFail,
    /// The clock moves forward and the host's timer fires (`handle_timeout`).
    Advance {
        /// Milliseconds.
        ms: u32,
    },
    /// The clock moves to the engine's deadline and the timer fires.
    AdvanceToDeadline,
    /// Time passes without a timer firing: the next input carries the later time.
    Elapse {
        /// Milliseconds.
        ms: u32,
    },
    /// The device clock goes back and the timer fires (the engine ignores backwards time).
    Backwards {
        /// Milliseconds.
        ms: u32,
    },
    /// Restart: a fresh engine restores the stored snapshot (or starts empty).
    Restore,
    /// Restart with the stored snapshot damaged: one byte flipped (odd `flip`) or
    /// truncated (even `flip`).
    RestoreCorrupted {
        /// Where and how to damage it.
        flip: u16,
    },
    /// The server invalidates every refresh token.
    ServerRevokesRefreshTokens,
    /// The server invalidates every access token.
    ServerExpiresAccessTokens,
    /// The server hands out short access tokens from now on (1..=120 s; 0 → 7200 s).
    ShortTokens {
        /// `secs % 121`, 0 meaning the default 7200.
        secs: u8,
    },
    /// The server starts or stops issuing refresh tokens.
    NoRefreshTokens,
    /// `update_profile` with one of [`PROFILE_CHANGES`].
    UpdateProfile {
        /// Index into [`PROFILE_CHANGES`] (modulo).
        change_idx: u8,
    },
    /// `delete_account`.
    DeleteAccount,
}

/// The `(nickname, avatar URL)` changes of [`Op::UpdateProfile`]: valid inputs, one or
/// both fields.
pub const PROFILE_CHANGES: [(Option<&str>, Option<&str>); 3] = [
    (Some("小明"), None),
    (None, Some("https://a.example/m.png")),
    (Some("Ming"), Some("http://b.example/n.png")),
];

/// WeChat users of the generated runs (few, so links and sign-ins collide).
pub const OPENIDS: [&str; 3] = ["openid-alice", "openid-bob", "openid-carol"];
/// Statuses of [`Op::ReplyError`].
pub const ERROR_STATUSES: [u16; 10] = [400, 401, 403, 404, 409, 429, 500, 502, 503, 200];
/// `error` names of [`Op::ReplyError`] (`None`: an HTML error page, no JSON).
pub const ERROR_NAMES: [Option<&str>; 8] = [
    Some("invalid_grant"),
    Some("unauthenticated"),
    Some("invalid_argument"),
    Some("resource_exhausted"),
    Some("unavailable"),
    Some("permission_denied"),
    Some("mystery_error"),
    None,
];
/// Statuses of [`Op::ReplyGarbage`].
pub const GARBAGE_STATUSES: [u16; 5] = [200, 200, 204, 401, 502];
