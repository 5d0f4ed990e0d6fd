//! Seed corpora for the fuzz targets, made from real messages.
//!
//! * `snapshot_decode`: snapshots of every state as the engine writes them (driven
//!   through the scripted server), plus layouts the engine cannot be driven into
//!   writing (an `Initialized` snapshot, every field at capacity, a clock far ahead,
//!   another env), written with [`crate::snapshot_file`].
//! * `response_parse`: the JSON shapes of docs/wire.md (credentials §4, provider
//!   token §3, user §5, errors §6, the HARNESS log of §10), each behind its kind byte
//!   and status (see [`crate::fuzz_response_parse`]).
//! * `engine_ops`: operation sequences encoded with [`encode_ops`].
//!
//! `tests/seeds.rs` writes them to `fuzz/corpus/<target>/` (an ignored test: run it to
//! regenerate) and checks that each passes its target.

use cloudbase_auth_core::LoginState;
use cloudbase_auth_core::capacity::*;
use cloudbase_auth_core::config::DEFAULT_REFRESH_MARGIN_MS;
use cloudbase_auth_core::testing::{APPID, ENV, Harness};

use crate::fuzz::RESTORE_AT;
use crate::model::{Op, Setup};
use crate::snapshot_file::{self, ProfileFields, SessionFields, SnapshotFile};

pub use crate::corpus::Seed;

fn stored(h: &Harness) -> Vec<u8> {
    h.stored
        .as_ref()
        .expect("a snapshot was persisted")
        .to_vec()
}

fn link(h: &mut Harness, openid: &str) {
    let code = h.server.mint_code(openid);
    h.engine
        .link_wechat(h.now, &code, APPID)
        .expect("anonymous and idle");
    h.run();
}

fn sign_out(h: &mut Harness) {
    h.engine.sign_out(h.now).expect("initialised");
    h.run();
}

fn crafted(state: LoginState, session: Option<SessionFields>) -> SnapshotFile {
    SnapshotFile {
        env: ENV.into(),
        device_id: "0123456789abcdef0123456789abcdef".into(),
        state,
        session,
        profile: ProfileFields::default(),
        generation: 3,
        saved_at: RESTORE_AT - 60_000,
    }
}

fn session(expires_at: u64, refreshable: bool) -> SessionFields {
    SessionFields {
        token_type: "Bearer".into(),
        access_token: "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiIxOTAwIn0.c2ln".into(),
        refresh_token: refreshable.then(|| "MeZYrt-1900000000781648021".into()),
        expires_at,
        refresh_at: expires_at - DEFAULT_REFRESH_MARGIN_MS,
        uid: "1900000000781648021".into(),
    }
}

/// Seeds of `snapshot_decode`: one per state and per restore path.
pub fn snapshot_seeds() -> Vec<Seed> {
    let mut out = Vec::new();

    let mut h = Harness::new();
    h.sign_in_anonymously().expect("signs in");
    out.push(("anonymous", stored(&h)));

    let mut h = Harness::new();
    h.server.access_token_len = 1027; // a real JWT's length
    h.sign_in_anonymously().expect("signs in");
    out.push(("anonymous_real_size_token", stored(&h)));

    let mut h = Harness::new();
    h.sign_in_with_wechat("openid-alice").expect("signs in");
    out.push(("wechat_with_profile", stored(&h)));

    let mut h = Harness::new();
    h.sign_in_anonymously().expect("signs in");
    link(&mut h, "openid-bob");
    assert_eq!(h.engine.login_state(), LoginState::WeChat);
    out.push(("linked", stored(&h)));

    let mut h = Harness::new();
    h.sign_in_with_wechat("openid-carol").expect("signs in");
    sign_out(&mut h);
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    out.push(("signed_out", stored(&h)));

    // No refresh token: still valid at the restore time, and already expired.
    let mut h = Harness::new();
    h.server.issue_refresh_tokens = false;
    h.sign_in_anonymously().expect("signs in");
    out.push(("anonymous_no_refresh_token", stored(&h)));
    let mut h = Harness::new();
    h.server.issue_refresh_tokens = false;
    h.server.expires_in = 60;
    h.sign_in_with_wechat("openid-alice").expect("signs in");
    out.push(("wechat_expired_no_refresh_token", stored(&h)));

    // Short-lived token: its refresh is due when restored.
    let mut h = Harness::new();
    h.server.expires_in = 120;
    h.sign_in_anonymously().expect("signs in");
    out.push(("anonymous_refresh_due", stored(&h)));

    // Layouts the engine is not driven into writing here.
    out.push((
        "initialized",
        snapshot_file::write(&crafted(LoginState::Initialized, None)),
    ));
    let mut ahead = crafted(
        LoginState::WeChat,
        Some(session(RESTORE_AT + 11 * 86_400_000, true)),
    );
    ahead.saved_at = RESTORE_AT + 10 * 86_400_000; // the clock went back 10 days
    ahead.profile = ProfileFields {
        name: "微信用户😀".into(),
        avatar: "https://thirdwx.qlogo.cn/mmopen/vi_32/avatar/132".into(),
        email: String::new(),
        openid: "openid-alice".into(),
        appid: APPID.into(),
    };
    out.push(("clock_went_back", snapshot_file::write(&ahead)));
    let mut wrapping = crafted(
        LoginState::Anonymous,
        Some(session(RESTORE_AT + 7_200_000, true)),
    );
    wrapping.generation = u32::MAX;
    out.push(("generation_wraps", snapshot_file::write(&wrapping)));
    let mut foreign = crafted(
        LoginState::Anonymous,
        Some(session(RESTORE_AT + 7_200_000, true)),
    );
    foreign.env = "other-env-9z8y".into();
    out.push(("another_env", snapshot_file::write(&foreign)));
    out.push(("largest", snapshot_file::write(&largest())));

    // Refused: unknown version, a bad checksum, too short.
    let mut v2 = stored(&h);
    v2[0] = 2;
    snapshot_file::reseal(&mut v2);
    out.push(("version_2", v2));
    let mut flipped = stored(&h);
    flipped[10] ^= 0x20;
    out.push(("bad_checksum", flipped));
    out.push(("too_short", vec![1, 0, 0, 0]));
    out
}

/// Every field at capacity, with this harness's env (so the engine accepts it).
fn largest() -> SnapshotFile {
    let token = |n: usize, c: char| c.to_string().repeat(n);
    let mut f = crafted(
        LoginState::WeChat,
        Some(SessionFields {
            token_type: token(TOKEN_TYPE_MAX, 'B'),
            access_token: token(ACCESS_TOKEN_MAX, 'a'),
            refresh_token: Some(token(REFRESH_TOKEN_MAX, 'r')),
            expires_at: u64::MAX,
            refresh_at: u64::MAX - DEFAULT_REFRESH_MARGIN_MS,
            uid: token(UID_MAX, 'u'),
        }),
    );
    f.device_id = token(DEVICE_ID_MAX, 'd');
    f.profile = ProfileFields {
        name: "😀".repeat(NAME_MAX / 4),
        avatar: token(AVATAR_MAX, 'p'),
        email: token(EMAIL_MAX - 12, 'm') + "@example.com",
        openid: token(OPENID_MAX, 'o'),
        appid: token(APPID_MAX, 'w'),
    };
    f.generation = u32::MAX - 1;
    f
}

/// A `response_parse` input: kind byte (0 credentials, 1 provider token, 2 user,
/// 3 error), status little-endian, body.
pub fn response_input(kind: u8, status: u16, body: &str) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&status.to_le_bytes());
    v.extend_from_slice(body.as_bytes());
    v
}

/// Seeds of `response_parse`: the reference's JSON shapes with their statuses.
pub fn response_seeds() -> Vec<Seed> {
    let jwt = format!(
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjlkMWRjMzFlIn0.{}.c2lnbmF0dXJl",
        "eyJpc3MiOiJodHRwczovL3Rlc3QtZW52LmFwLXNoYW5naGFpLnRjYi1hcGkudGVuY2VudGNsb3VkYXBpLmNvbSIsInN1YiI6IjE5MDAwMDAwMDA3ODE2NDgwMjEifQ"
    );
    let seeds: [(&'static str, u8, u16, String); 24] = [
        (
            "credentials_anonymous",
            0,
            200,
            format!(
                r#"{{"token_type":"Bearer","access_token":"{jwt}","refresh_token":"MeZYkq3x7Yc1","expires_in":7200,"scope":"anonymous","sub":"1900000000781648021","groups":["anonymous"]}}"#
            ),
        ),
        (
            "credentials_wechat",
            0,
            200,
            format!(
                r#"{{"token_type":"Bearer","access_token":"{jwt}","refresh_token":"rt-2","expires_in":7200,"scope":"user","sub":"1900000000781648022","groups":["user"]}}"#
            ),
        ),
        (
            "credentials_minimal",
            0,
            200,
            r#"{"access_token":"at-1","expires_in":0}"#.into(),
        ),
        (
            "credentials_null_refresh_extra_fields",
            0,
            201,
            r#"{ "access_token" : "at-2", "refresh_token": null, "expires_in": 60, "groups": null, "version": "v1", "extra": {"nested": [1, 2.5e3, true, null, "x\u00e9\n"]} }"#.into(),
        ),
        (
            "credentials_invalid_grant",
            0,
            400,
            r#"{"error":"invalid_grant","error_code":3,"error_description":"refresh token invalid"}"#.into(),
        ),
        (
            "credentials_error_in_200",
            0,
            200,
            r#"{"error_code":4019,"error":"provider_error","access_token":"x","expires_in":1}"#.into(),
        ),
        (
            "provider_token",
            1,
            200,
            r#"{"provider_token":"pt:openid-alice","expires_in":300}"#.into(),
        ),
        (
            "provider_token_with_profile",
            1,
            200,
            r#"{"provider_token":"eyJwdCI6IjEifQ.pt","expires_in":600,"provider_profile":{"provider_id":"wx0123456789abcdef","name":"\u5fae\u4fe1\u7528\u6237","picture":"https://thirdwx.qlogo.cn/mmopen/vi_32/x/132"}}"#.into(),
        ),
        (
            "provider_token_bad_code",
            1,
            400,
            r#"{"error":"invalid_grant","error_code":3,"error_description":"invalid code"}"#.into(),
        ),
        (
            "user_anonymous",
            2,
            200,
            r#"{"sub":"1900000000781648021","name":"anonymous","groups":[{"id":"anonymous"}],"created_from":"anonymous"}"#.into(),
        ),
        (
            "user_wechat",
            2,
            200,
            r#"{"sub":"1900000000781648022","name":"\u5fae\u4fe1\u7528\u6237\ud83d\ude00","picture":"https://thirdwx.qlogo.cn/mmopen/vi_32/avatar/132","providers":[{"id":"wx0123456789abcdef","provider_user_id":"oA1b2C3d4E5f6G7h8","name":"WeChat"}],"groups":[{"id":"user","expires_at":"2026-01-01T00:00:00Z"}]}"#.into(),
        ),
        (
            "user_every_field",
            2,
            200,
            r#"{"sub":"u-1","name":"n","picture":"https://p","username":"user1","email":"a@example.com","email_verified":true,"phone_number":"+86 13800000000","gender":"MALE","birthdate":"2000-01-01","zoneinfo":"Asia/Shanghai","locale":"zh-CN","created_from":"wx","created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-02T00:00:00Z","loginType":"WECHAT-OPEN","hasPassword":false,"providers":[{"id":"wx_other","provider_user_id":"oOther","name":"x"},{"id":"wx0123456789abcdef","provider_user_id":"oMe"}],"groups":[]}"#.into(),
        ),
        ("user_empty", 2, 200, "{}".into()),
        (
            "user_unauthenticated",
            2,
            401,
            r#"{"error":"unauthenticated","error_code":16,"error_description":"invalid access token"}"#.into(),
        ),
        (
            "user_truthy_code",
            2,
            200,
            r#"{"code":"SIGN_PARAM_INVALID","message":"x","sub":"u"}"#.into(),
        ),
        (
            "error_unauthenticated",
            3,
            401,
            r#"{"error":"unauthenticated","error_code":16,"error_description":"invalid access token"}"#.into(),
        ),
        (
            "error_invalid_argument",
            3,
            400,
            r#"{"error":"invalid_argument","error_code":3,"error_description":"bad body"}"#.into(),
        ),
        (
            "error_code_as_string",
            3,
            429,
            r#"{"error":"resource_exhausted","error_code":"8","error_description":"slow down"}"#.into(),
        ),
        (
            "error_symbolic_code",
            3,
            403,
            r#"{"error":"permission_denied","error_code":"PERMISSION_DENIED","error_description":"\u6743\u9650\u4e0d\u8db3"}"#.into(),
        ),
        (
            "error_business_code",
            3,
            400,
            r#"{"error":"captcha_required","error_code":4001,"error_description":"captcha required","details":[{"k":"v"}]}"#.into(),
        ),
        (
            "error_already_exists",
            3,
            409,
            r#"{"error":"already_exists","error_code":6,"error_description":"openid bound to another user"}"#.into(),
        ),
        (
            "error_html_502",
            3,
            502,
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>".into(),
        ),
        ("error_empty_503", 3, 503, String::new()),
        ("revoke_ok", 3, 200, "{}".into()),
    ];
    seeds
        .into_iter()
        .map(|(name, kind, status, body)| (name, response_input(kind, status, &body)))
        .collect()
}

/// Writes `ops` as the bytes `fuzz_engine_ops` decodes back into them: per op a "more"
/// byte (1), the variant as a little-endian `u32` that `arbitrary`'s derive maps to its
/// index (`(u64::from(tag) * VARIANTS) >> 32`), then its fields (integers
/// little-endian, a `bool` as 0/1, a `Vec<u8>` as `1, byte` pairs ended by 0); a final 0
/// ends the sequence. `tests/seeds.rs` checks the round trip for every variant.
pub fn encode_ops(ops: &[Op]) -> Vec<u8> {
    encode_run(Setup::default(), ops)
}

/// [`encode_ops`], followed by the host settings when they are not the defaults (a
/// byte with bit 0 set: anonymous recovery off), as [`crate::fuzz::decode_run`] reads
/// them.
pub fn encode_run(setup: Setup, ops: &[Op]) -> Vec<u8> {
    const VARIANTS: u64 = 24;
    let mut out = Vec::new();
    for op in ops {
        out.push(1);
        let mut tag = |i: u64| {
            let v = ((i << 32).div_ceil(VARIANTS)) as u32;
            out.extend_from_slice(&v.to_le_bytes());
        };
        match op {
            Op::GetLoginState => tag(0),
            Op::GetUserInfo => tag(1),
            Op::SignInAnonymously => tag(2),
            Op::SignInWeChat { openid_idx } => {
                tag(3);
                out.push(*openid_idx);
            }
            Op::SignInWeChatBadCode => tag(4),
            Op::LinkWeChat { openid_idx } => {
                tag(5);
                out.push(*openid_idx);
            }
            Op::SignOut => tag(6),
            Op::ReplyGood { oldest } => {
                tag(7);
                out.push(u8::from(*oldest));
            }
            Op::ReplyError {
                status_idx,
                kind_idx,
            } => {
                tag(8);
                out.extend_from_slice(&[*status_idx, *kind_idx]);
            }
            Op::ReplyGarbage { status_idx, bytes } => {
                tag(9);
                out.push(*status_idx);
                for b in bytes {
                    out.extend_from_slice(&[1, *b]);
                }
                out.push(0);
            }
            Op::ReplyLateDuplicate { idx } => {
                tag(10);
                out.push(*idx);
            }
            Op::TransportFail => tag(11),
            Op::Advance { ms } => {
                tag(12);
                out.extend_from_slice(&ms.to_le_bytes());
            }
            Op::AdvanceToDeadline => tag(13),
            Op::Elapse { ms } => {
                tag(14);
                out.extend_from_slice(&ms.to_le_bytes());
            }
            Op::Backwards { ms } => {
                tag(15);
                out.extend_from_slice(&ms.to_le_bytes());
            }
            Op::Restore => tag(16),
            Op::RestoreCorrupted { flip } => {
                tag(17);
                out.extend_from_slice(&flip.to_le_bytes());
            }
            Op::ServerRevokesRefreshTokens => tag(18),
            Op::ServerExpiresAccessTokens => tag(19),
            Op::ShortTokens { secs } => {
                tag(20);
                out.push(*secs);
            }
            Op::NoRefreshTokens => tag(21),
            Op::UpdateProfile { change_idx } => {
                tag(22);
                out.push(*change_idx);
            }
            Op::DeleteAccount => tag(23),
        }
    }
    out.push(0);
    if setup != Setup::default() {
        out.push(u8::from(!setup.anonymous_recovery));
    }
    out
}

/// A named run: host settings and operation sequence.
pub type Run = (&'static str, Setup, Vec<Op>);

/// Named runs: the flows users run, and the paths that broke before.
pub fn op_sequences() -> Vec<Run> {
    use Op::*;
    let good = ReplyGood { oldest: false };
    let mut runs: Vec<Run> = named_sequences()
        .into_iter()
        .map(|(name, ops)| (name, Setup::default(), ops))
        .collect();
    runs.push((
        "refused_anonymous_session_without_recovery",
        Setup {
            anonymous_recovery: false,
        },
        vec![
            SignInAnonymously,
            good.clone(),
            good.clone(),
            ServerRevokesRefreshTokens,
            AdvanceToDeadline,
            GetUserInfo,
            good.clone(),
            GetUserInfo,
            SignInAnonymously,
            good.clone(),
            good,
        ],
    ));
    runs
}

/// The runs with the default settings.
fn named_sequences() -> Vec<(&'static str, Vec<Op>)> {
    use Op::*;
    let good = ReplyGood { oldest: false };
    vec![
        (
            "account",
            vec![
                SignInWeChat { openid_idx: 1 },
                good.clone(),
                good.clone(),
                good.clone(),
                UpdateProfile { change_idx: 2 },
                DeleteAccount, // busy: the update is in flight
                good.clone(),
                UpdateProfile { change_idx: 0 },
                ReplyError {
                    status_idx: 0,
                    kind_idx: 2,
                },
                Restore,
                DeleteAccount,
                GetUserInfo, // waits behind the deletion, then not signed in
                good.clone(),
                UpdateProfile { change_idx: 1 }, // not signed in
                SignInAnonymously,
                good.clone(),
                good.clone(),
                AdvanceToDeadline,
                DeleteAccount, // due: refreshes first
                good.clone(),
                good.clone(),
            ],
        ),
        (
            "full_flow",
            vec![
                SignInAnonymously,
                good.clone(),
                good.clone(),
                GetUserInfo,
                good.clone(),
                LinkWeChat { openid_idx: 0 },
                good.clone(),
                good.clone(),
                good.clone(),
                good.clone(),
                AdvanceToDeadline,
                GetLoginState,
                good.clone(),
                Restore,
                SignOut,
                good.clone(),
            ],
        ),
        (
            "refresh_rejected_recovers",
            vec![
                SignInAnonymously,
                good.clone(),
                good.clone(),
                ServerRevokesRefreshTokens,
                AdvanceToDeadline,
                GetUserInfo,
                good.clone(),
                good.clone(),
                good.clone(),
                good.clone(),
            ],
        ),
        (
            "wechat_sign_in_then_expiry_without_refresh",
            vec![
                NoRefreshTokens,
                ShortTokens { secs: 90 },
                SignInWeChat { openid_idx: 1 },
                good.clone(),
                good.clone(),
                good.clone(),
                GetLoginState,
                Advance { ms: 95_000 },
                GetUserInfo,
                Restore,
            ],
        ),
        (
            "joined_user_info_on_rejected_session",
            vec![
                SignInAnonymously,
                good.clone(),
                good.clone(),
                GetUserInfo,
                GetUserInfo,
                ReplyError {
                    status_idx: 0,
                    kind_idx: 1,
                },
                ReplyError {
                    status_idx: 0,
                    kind_idx: 0,
                },
                good.clone(),
                good.clone(),
            ],
        ),
        (
            "late_replies_and_time_jumps",
            vec![
                SignInAnonymously,
                Elapse { ms: 15_001 },
                LinkWeChat { openid_idx: 2 },
                ReplyGood { oldest: true },
                SignInAnonymously,
                good.clone(),
                ReplyLateDuplicate { idx: 0 },
                Backwards { ms: 9_000_000 },
                good.clone(),
                Advance { ms: 7_200_000 },
                TransportFail,
                AdvanceToDeadline,
                good.clone(),
            ],
        ),
        (
            "garbage_errors_and_corrupt_restore",
            vec![
                SignInWeChat { openid_idx: 0 },
                ReplyGarbage {
                    status_idx: 0,
                    bytes: b"html>oops</html>".to_vec(),
                },
                SignInWeChatBadCode,
                good.clone(),
                SignInAnonymously,
                ReplyError {
                    status_idx: 6,
                    kind_idx: 7,
                },
                SignInAnonymously,
                good.clone(),
                good.clone(),
                ServerExpiresAccessTokens,
                GetUserInfo,
                good.clone(),
                good.clone(),
                good.clone(),
                RestoreCorrupted { flip: 0x0b07 },
                SignInAnonymously,
                good.clone(),
                SignOut,
                TransportFail,
            ],
        ),
    ]
}

/// Seeds of `engine_ops`: [`op_sequences`] encoded with [`encode_run`].
pub fn engine_ops_seeds() -> Vec<Seed> {
    op_sequences()
        .into_iter()
        .map(|(name, setup, ops)| (name, encode_run(setup, &ops)))
        .collect()
}
