//! The core `Engine` over real HTTP against this server: init → anonymous sign-in →
//! user info → refresh → link WeChat → sign-out. Every request the engine writes is
//! sent with reqwest exactly as laid out (method, path, headers, body) and the status
//! and body are fed back, as the client session will do.

use cloudbase_auth_core::capacity::POLL_BUFFER_MIN;
use cloudbase_auth_core::wire::{Endpoint, Method};
use cloudbase_auth_core::{Completion, Config, Engine, Error, LoginState, OpId, Output, RequestId};
use cloudbase_auth_server::testing::{APPID, ENV, TestServer};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A request copied out of the engine's buffer.
struct Request {
    id: RequestId,
    endpoint: Endpoint,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

/// Drives an engine over HTTP. Its clock is the wall clock plus `skew_ms`, so a test
/// can jump to the refresh time without waiting for it.
struct Driver {
    engine: Engine,
    http: reqwest::Client,
    base: String,
    buf: Vec<u8>,
    skew_ms: u64,
    completions: Vec<(OpId, Result<Completion, Error>)>,
    sent: Vec<Endpoint>,
    deadline: Option<u64>,
}

impl Driver {
    fn new(base: String) -> Self {
        Self {
            engine: Engine::new(),
            http: reqwest::Client::new(),
            base,
            buf: vec![0; POLL_BUFFER_MIN],
            skew_ms: 0,
            completions: Vec::new(),
            sent: Vec::new(),
            deadline: None,
        }
    }

    fn now(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        wall + self.skew_ms
    }

    /// Drains every output; returns the request to send, if any.
    fn drain(&mut self) -> Option<Request> {
        let mut request = None;
        loop {
            match self
                .engine
                .poll_output(&mut self.buf)
                .expect("buffer is large enough")
            {
                Output::Transmit(t) => {
                    assert!(request.is_none(), "at most one request in flight");
                    request = Some(Request {
                        id: t.request,
                        endpoint: t.endpoint,
                        method: t.method,
                        path: t.path.to_owned(),
                        headers: t
                            .headers()
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect(),
                        body: t.body.map(<[u8]>::to_vec),
                    });
                }
                Output::OperationCompleted { op, result } => self.completions.push((op, result)),
                Output::Timeout(deadline) => {
                    self.deadline = deadline;
                    return request;
                }
                _ => {}
            }
        }
    }

    /// Runs until no request is pending: sends each, feeds the reply back.
    async fn run(&mut self) {
        for _ in 0..32 {
            let Some(req) = self.drain() else { return };
            self.sent.push(req.endpoint);
            let url = format!("{}{}", self.base, req.path);
            let mut builder = match req.method {
                Method::Get => self.http.get(url),
                _ => self.http.post(url),
            };
            for (k, v) in &req.headers {
                builder = builder.header(k, v);
            }
            if let Some(body) = req.body {
                builder = builder.body(body);
            }
            let now = self.now();
            match builder.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.expect("body");
                    let _ = self.engine.handle_response(now, req.id, status, &body);
                }
                Err(_) => {
                    let _ = self.engine.handle_transport_error(now, req.id);
                }
            }
        }
        panic!("the engine kept sending requests");
    }

    fn result(&self, op: OpId) -> Result<Completion, Error> {
        self.completions
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, r)| *r)
            .expect("operation completed")
    }

    fn access_token(&self) -> String {
        self.engine
            .session()
            .expect("signed in")
            .access_token
            .to_owned()
    }
}

fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn core_engine_completes_a_whole_session_over_http() {
    let s = TestServer::start_with(|c| c.access_token_ttl = Duration::from_secs(40)).await;
    let mut d = Driver::new(s.api.base.clone());

    let now = d.now();
    d.engine.init(now, Config::new(ENV), [9; 16]).unwrap();
    assert!(d.drain().is_none());
    assert_eq!(d.engine.login_state(), LoginState::Initialized);

    // Anonymous sign-in (the engine fetches user/me right after).
    let now = d.now();
    let op = d.engine.sign_in_anonymously(now).unwrap();
    d.run().await;
    assert_eq!(
        d.result(op),
        Ok(Completion::SignedIn(LoginState::Anonymous))
    );
    let uid = d.engine.session().unwrap().uid.to_owned();
    assert_eq!(uid.len(), 19);
    assert_eq!(s.api.me(&d.access_token()).await.str("sub"), uid);

    // User info.
    let now = d.now();
    let op = d.engine.get_user_info(now).unwrap();
    d.run().await;
    assert_eq!(d.result(op), Ok(Completion::UserInfo));
    assert_eq!(d.engine.user().unwrap().uid, uid);
    assert_eq!(d.engine.user().unwrap().nick_name, "anonymous");

    // Refresh: 40 s tokens are refreshed half-way; jump the engine's clock there.
    let before = d.access_token();
    let refresh_at = d.deadline.expect("a refresh is scheduled");
    let lead = refresh_at.saturating_sub(d.now());
    assert!(
        (15_000..=21_000).contains(&lead),
        "refresh planned {lead} ms ahead"
    );
    d.skew_ms += lead + 10;
    let now = d.now();
    d.engine.handle_timeout(now);
    d.run().await;
    let after = d.access_token();
    assert_ne!(before, after, "the engine refreshed");
    assert_eq!(d.sent.iter().filter(|e| **e == Endpoint::Token).count(), 1);
    assert_eq!(s.api.me(&after).await.status, 200, "the new token works");

    // Link WeChat: a code from the emulator, as the stand-in wx.login would get it.
    let (code, openid) = s.api.mint_code(APPID, Some("o-engine-over-http")).await;
    let now = d.now();
    let op = d.engine.link_wechat(now, &code, APPID).unwrap();
    d.run().await;
    assert_eq!(d.result(op), Ok(Completion::Linked));
    assert_eq!(d.engine.login_state(), LoginState::WeChat);
    assert_eq!(
        d.engine.session().unwrap().uid,
        uid,
        "linking keeps the uid"
    );
    let linked = d.access_token();
    assert_eq!(claims(&linked)["scope"], "user");
    assert_eq!(claims(&linked)["meta"]["wxOpenId"], openid.as_str());
    let now = d.now();
    let op = d.engine.get_user_info(now).unwrap();
    d.run().await;
    assert_eq!(d.result(op), Ok(Completion::UserInfo));
    assert_eq!(d.engine.user().unwrap().openid, openid);

    // Sign-out: the server revokes the session.
    let now = d.now();
    let op = d.engine.sign_out(now).unwrap();
    d.run().await;
    assert_eq!(d.result(op), Ok(Completion::SignedOut { revoked: true }));
    assert_eq!(d.engine.login_state(), LoginState::SignedOut);
    s.api.me(&linked).await.assert_error(401, "unauthenticated");

    println!("engine over HTTP sent: {:?}", d.sent);
    s.stop().await;
}
