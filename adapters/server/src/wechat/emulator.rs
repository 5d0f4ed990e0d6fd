//! The emulated WeChat: single-use login codes valid for a few minutes, minted on
//! request (what a test's stand-in `wx.login` calls), and `code2Session` with WeChat's
//! checks and error codes. Codes live in memory: a restart forgets them, as a real
//! code would have expired by then anyway. When several servers share a PostgreSQL
//! store, codes live there instead ([`SharedCodes`]), so a code minted through one
//! instance is redeemed once, on any of them. The minute quota and the console's list
//! of recent exchanges stay per instance.

use super::{Code2Session, GRANT_TYPE, WxError, WxUser, errcode, is_valid_wx_id};
use crate::config::{WeChatApps, is_valid_appid};
use crate::secrets::{b64url, hash_token, random_bytes};
use crate::store::{CodeRedemption, SharedCodes, StoreError, WeChatCode};
use cloudbase_auth_server_api::Fault;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most codes held at once (unused and used ones until they expire).
const CODES_MAX: usize = 100_000;
/// How many recent `code2Session` exchanges are kept for the console.
pub(crate) const EXCHANGES_MAX: usize = 100;

/// One `code2Session` exchange, as the console lists it (never the code itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ExchangeRecord {
    /// Unix seconds.
    pub(crate) at: i64,
    /// The Mini Program.
    pub(crate) appid: String,
    /// The openid the code was minted for (`None`: no such code).
    pub(crate) openid: Option<String>,
    /// WeChat's `errcode`: 0 when the exchange succeeded.
    pub(crate) errcode: i64,
}

#[derive(Debug)]
struct Code {
    appid: String,
    openid: String,
    unionid: Option<String>,
    /// The WeChat error this code's exchange answers instead (fault injection).
    fault: Option<i64>,
    issued: Instant,
    used: bool,
}

/// The WeChat error a [`Fault`] makes its code's exchange answer.
fn fault_errcode(fault: Fault) -> i64 {
    match fault {
        Fault::Busy => errcode::BUSY,
        Fault::Blocked => errcode::BLOCKED,
    }
}

#[derive(Debug, Default)]
struct State {
    codes: HashMap<String, Code>,
    /// appid → (minute index, calls in that minute).
    quota: HashMap<String, (u64, u32)>,
    /// The most recent exchanges, oldest first (at most [`EXCHANGES_MAX`]).
    exchanges: VecDeque<ExchangeRecord>,
}

/// Why a code could not be minted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MintError {
    #[error("appid must be 1..=32 characters of [A-Za-z0-9_-]")]
    BadAppid,
    #[error("appid is not configured on this server")]
    UnknownApp,
    #[error(
        "openid and unionid must be 1..=64 visible ASCII characters without quotes or backslashes"
    )]
    BadOpenid,
    #[error("too many outstanding codes; wait for some to expire")]
    Full,
    #[error("the operating system's random source failed")]
    Random,
    #[error(transparent)]
    Store(StoreError),
}

/// A successful emulated `code2Session` (the HTTP reply also carries a session key).
#[derive(Debug)]
pub(crate) struct Exchanged {
    pub(crate) user: WxUser,
}

/// The in-process WeChat.
pub(crate) struct WeChatEmulator {
    apps: WeChatApps,
    quota_per_minute: u32,
    code_ttl: Duration,
    started: Instant,
    state: Mutex<State>,
    /// Where codes live when several servers share the store (else in `state`).
    shared: Option<Arc<dyn SharedCodes>>,
}

impl std::fmt::Debug for WeChatEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatEmulator")
            .field("apps", &self.apps)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// Unix time in milliseconds (a shared store's code expiry).
fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl WeChatEmulator {
    /// An emulator that knows `apps` (empty: any well-formed appid, any secret),
    /// keeping its codes in `shared` if given, else in memory.
    pub(crate) fn new(
        apps: WeChatApps,
        quota_per_minute: u32,
        code_ttl: Duration,
        shared: Option<Arc<dyn SharedCodes>>,
    ) -> Self {
        Self {
            apps,
            quota_per_minute,
            code_ttl,
            started: Instant::now(),
            state: Mutex::new(State::default()),
            shared,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves only plain data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn knows(&self, appid: &str) -> bool {
        is_valid_appid(appid) && (self.apps.is_empty() || self.apps.secret(appid).is_some())
    }

    /// `wx.login` for `openid` (a fresh one when `None`): a new single-use code.
    pub(crate) async fn mint(
        &self,
        appid: &str,
        openid: Option<&str>,
        unionid: Option<&str>,
        fault: Option<Fault>,
    ) -> Result<(String, String), MintError> {
        if !is_valid_appid(appid) {
            return Err(MintError::BadAppid);
        }
        if !self.knows(appid) {
            return Err(MintError::UnknownApp);
        }
        if !openid.is_none_or(is_valid_wx_id) || !unionid.is_none_or(is_valid_wx_id) {
            return Err(MintError::BadOpenid);
        }
        let openid = match openid {
            Some(o) => o.to_owned(),
            // Real openids are 28 URL-safe characters starting with `o`.
            None => format!(
                "o{}",
                b64url(&random_bytes::<20>().map_err(|_| MintError::Random)?)
            ),
        };
        let code = b64url(&random_bytes::<24>().map_err(|_| MintError::Random)?);
        if let Some(shared) = &self.shared {
            let ttl = i64::try_from(self.code_ttl.as_millis()).unwrap_or(i64::MAX);
            let record = WeChatCode::new(
                appid.to_owned(),
                openid.clone(),
                unionid.map(str::to_owned),
                fault.map(fault_errcode),
                unix_now_ms().saturating_add(ttl),
            );
            shared
                .put_wechat_code(&hash_token(&code), &record)
                .await
                .map_err(MintError::Store)?;
            return Ok((code, openid));
        }
        let mut state = self.lock();
        if state.codes.len() >= CODES_MAX {
            let ttl = self.code_ttl;
            state.codes.retain(|_, c| c.issued.elapsed() < ttl);
            if state.codes.len() >= CODES_MAX {
                return Err(MintError::Full);
            }
        }
        state.codes.insert(
            code.clone(),
            Code {
                appid: appid.to_owned(),
                openid: openid.clone(),
                unionid: unionid.map(str::to_owned),
                issued: Instant::now(),
                fault: fault.map(fault_errcode),
                used: false,
            },
        );
        Ok((code, openid))
    }

    /// Forgets every code (the admin reset).
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.codes.clear();
        state.quota.clear();
        state.exchanges.clear();
    }

    /// The most recent exchanges, newest first.
    pub(crate) fn recent_exchanges(&self) -> Vec<ExchangeRecord> {
        self.lock().exchanges.iter().rev().cloned().collect()
    }

    /// Counts one call against the appid's minute quota.
    fn charge(&self, state: &mut State, appid: &str) -> Result<(), i64> {
        if self.quota_per_minute == 0 {
            return Ok(());
        }
        let minute = self.started.elapsed().as_secs() / 60;
        let entry = state.quota.entry(appid.to_owned()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.quota_per_minute {
            return Err(errcode::QUOTA);
        }
        entry.1 += 1;
        Ok(())
    }

    /// Redeems `code` of `appid`, wherever codes live (a shared store that cannot be
    /// reached is WeChat being busy), and records the exchange.
    async fn redeem(&self, appid: &str, code: &str) -> Result<WxUser, i64> {
        let Some(shared) = &self.shared else {
            let mut state = self.lock();
            let result = self.redeem_locked(&mut state, appid, code);
            let openid = match &result {
                Ok(user) => Some(user.openid.clone()),
                Err(_) => state.codes.get(code).map(|c| c.openid.clone()),
            };
            record_exchange(&mut state, appid, openid, &result);
            return result;
        };
        let charged = self.charge(&mut self.lock(), appid);
        let (result, openid) = match charged {
            Err(e) => (Err(e), None),
            Ok(()) => match shared
                .redeem_wechat_code(&hash_token(code), appid, unix_now_ms())
                .await
            {
                Ok(CodeRedemption::Redeemed(entry)) => {
                    let openid = Some(entry.openid.clone());
                    let result = match entry.fault {
                        Some(code) => Err(code),
                        None => Ok(WxUser {
                            openid: entry.openid,
                            unionid: entry.unionid,
                        }),
                    };
                    (result, openid)
                }
                Ok(CodeRedemption::Used) => (Err(errcode::CODE_USED), None),
                Ok(_) => (Err(errcode::INVALID_CODE), None),
                Err(e) => {
                    tracing::warn!(error = %e, "redeeming an emulated login code failed");
                    (Err(errcode::BUSY), None)
                }
            },
        };
        record_exchange(&mut self.lock(), appid, openid, &result);
        result
    }

    fn redeem_locked(&self, state: &mut State, appid: &str, code: &str) -> Result<WxUser, i64> {
        self.charge(state, appid)?;
        let Some(entry) = state.codes.get_mut(code) else {
            return Err(errcode::INVALID_CODE);
        };
        if entry.appid != appid || entry.issued.elapsed() >= self.code_ttl {
            return Err(errcode::INVALID_CODE);
        }
        if entry.used {
            return Err(errcode::CODE_USED);
        }
        entry.used = true;
        if let Some(code) = entry.fault {
            return Err(code);
        }
        Ok(WxUser {
            openid: entry.openid.clone(),
            unionid: entry.unionid.clone(),
        })
    }

    /// WeChat's `GET /sns/jscode2session` with all its checks, in WeChat's order.
    pub(crate) async fn jscode2session(
        &self,
        appid: Option<&str>,
        secret: Option<&str>,
        code: Option<&str>,
        grant_type: Option<&str>,
    ) -> Result<Exchanged, i64> {
        fn present(v: Option<&str>) -> Option<&str> {
            v.filter(|s| !s.is_empty())
        }
        let appid = present(appid).ok_or(errcode::MISSING_APPID)?;
        let secret = present(secret).ok_or(errcode::MISSING_SECRET)?;
        let code = present(code).ok_or(errcode::MISSING_CODE)?;
        if grant_type != Some(GRANT_TYPE) {
            return Err(errcode::BAD_GRANT_TYPE);
        }
        if !self.knows(appid) {
            return Err(errcode::BAD_APPID);
        }
        if let Some(expected) = self.apps.secret(appid)
            && !crate::secrets::ct_eq(expected.as_bytes(), secret.as_bytes())
        {
            return Err(errcode::BAD_SECRET);
        }
        let user = self.redeem(appid, code).await?;
        Ok(Exchanged { user })
    }
}

/// Appends an exchange to the console's list (the oldest goes beyond
/// [`EXCHANGES_MAX`]).
fn record_exchange(
    state: &mut State,
    appid: &str,
    openid: Option<String>,
    result: &Result<WxUser, i64>,
) {
    if state.exchanges.len() >= EXCHANGES_MAX {
        state.exchanges.pop_front();
    }
    state.exchanges.push_back(ExchangeRecord {
        at: crate::state::unix_now(),
        appid: appid.to_owned(),
        openid,
        errcode: result.as_ref().err().copied().unwrap_or(0),
    });
}

/// The in-process exchange skips the secret (the server is its own WeChat).
#[async_trait::async_trait]
impl Code2Session for WeChatEmulator {
    async fn exchange(&self, appid: &str, code: &str) -> Result<WxUser, WxError> {
        if !self.knows(appid) {
            return Err(WxError::UnknownApp);
        }
        self.redeem(appid, code)
            .await
            .map_err(WxError::from_errcode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emulator(quota: u32, ttl: Duration) -> WeChatEmulator {
        WeChatEmulator::new(
            WeChatApps::parse_list("wxapp1:secret1").unwrap(),
            quota,
            ttl,
            None,
        )
    }

    #[tokio::test]
    async fn codes_are_single_use_and_checked() {
        let e = emulator(0, Duration::from_secs(300));
        let (code, openid) = e.mint("wxapp1", None, None, None).await.unwrap();
        assert_eq!(openid.len(), 28);
        let ok = async |a, s, c| {
            e.jscode2session(Some(a), Some(s), Some(c), Some(GRANT_TYPE))
                .await
        };
        assert_eq!(
            ok("wxapp1", "bad", &code).await.err(),
            Some(errcode::BAD_SECRET)
        );
        assert_eq!(
            ok("wxother", "secret1", &code).await.err(),
            Some(errcode::BAD_APPID)
        );
        assert_eq!(
            ok("wxapp1", "secret1", "nope").await.err(),
            Some(errcode::INVALID_CODE)
        );
        assert_eq!(
            ok("wxapp1", "secret1", &code).await.unwrap().user.openid,
            openid
        );
        assert_eq!(
            ok("wxapp1", "secret1", &code).await.err(),
            Some(errcode::CODE_USED)
        );
        let missing = e
            .jscode2session(None, Some("s"), Some("c"), Some(GRANT_TYPE))
            .await;
        assert_eq!(missing.err(), Some(errcode::MISSING_APPID));
        let missing = e
            .jscode2session(Some("wxapp1"), None, Some("c"), Some(GRANT_TYPE))
            .await;
        assert_eq!(missing.err(), Some(errcode::MISSING_SECRET));
        let missing = e
            .jscode2session(Some("wxapp1"), Some("s"), None, Some(GRANT_TYPE))
            .await;
        assert_eq!(missing.err(), Some(errcode::MISSING_CODE));
        assert!(matches!(
            e.mint("wxother", None, None, None).await,
            Err(MintError::UnknownApp)
        ));
        assert!(matches!(
            e.mint("wx app", None, None, None).await,
            Err(MintError::BadAppid)
        ));
        assert!(matches!(
            e.mint("wxapp1", Some("a\"b"), None, None).await,
            Err(MintError::BadOpenid)
        ));
    }

    #[tokio::test]
    async fn expiry_and_quota() {
        let e = emulator(2, Duration::ZERO);
        let (code, _) = e.mint("wxapp1", Some("o1"), None, None).await.unwrap();
        assert_eq!(e.redeem("wxapp1", &code).await, Err(errcode::INVALID_CODE));
        assert_eq!(e.redeem("wxapp1", &code).await, Err(errcode::INVALID_CODE));
        assert_eq!(e.redeem("wxapp1", &code).await, Err(errcode::QUOTA));
    }
}
