//! After every step: the outputs a host saw from the engine against the model's
//! (state changes, `SessionReplaced`, completions, storage persisted or cleared, the
//! request put on the wire with its credential, query, headers and body), then the
//! invariants.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cloudbase_auth_core::testing::{APPID, ENV, Sent};
use cloudbase_auth_core::wire::{CLIENT_ID_PARAM, DEFAULT_API_PATH, Endpoint};
use serde_json::{Value, json};

use super::answer::Failure;
use super::invariants::check_invariants;
use super::state::{Outcome, Purpose, StepOutputs, UserSession};
use super::world::World;
use crate::snapshot_file;

impl World {
    /// Compares what the step produced, then checks the invariants.
    pub(crate) fn after_step(&mut self) {
        let out = self.m.end_step();
        self.compare_outputs(&out);
        self.compare_storage(&out);
        self.compare_request();
        check_invariants(&self.h, &self.m, self.clock_max);
        self.h.changes.clear();
        self.h.completions.clear();
    }

    fn compare_outputs(&self, out: &StepOutputs) {
        let (h, before) = (&self.h, &self.before);
        assert_eq!(
            h.changes.as_slice(),
            out.changes.as_slice(),
            "state changes"
        );
        assert_eq!(
            h.replacements - before.replacements,
            out.replaced,
            "sessions replaced"
        );
        assert_eq!(
            h.clears - before.clears,
            u32::from(out.cleared),
            "storage cleared"
        );
        let mut got: Vec<(u32, Outcome)> = h
            .completions
            .iter()
            .map(|(op, r)| (op.0, r.map_err(|e| Failure::of(&e))))
            .collect();
        let mut want: Vec<(u32, Outcome)> =
            out.completions.iter().map(|(op, r)| (op.0, *r)).collect();
        got.sort_by_key(|c| c.0);
        want.sort_by_key(|c| c.0);
        assert_eq!(got, want, "completions");
    }

    /// A persisted snapshot describes the session as it is after the step, saved now;
    /// otherwise storage is as it was (or cleared).
    fn compare_storage(&self, out: &StepOutputs) {
        let stored = self.h.stored.as_ref().map(|s| s.to_vec());
        if !out.persisted {
            let expected = if out.cleared {
                None
            } else {
                self.before.stored.clone()
            };
            assert_eq!(stored, expected, "storage untouched by this step");
            return;
        }
        let bytes = stored.expect("the step persisted a snapshot");
        let file = snapshot_file::read(&bytes).expect("the engine wrote a readable snapshot");
        let m = &self.m;
        assert_eq!(file.env, ENV, "snapshot env");
        assert_eq!(
            file.device_id,
            self.h.engine.device_id(),
            "snapshot device id"
        );
        assert_eq!(file.state, m.login, "snapshot state");
        assert_eq!(file.saved_at, m.now, "snapshot saved now");
        let session = file.session.map(|s| UserSession {
            uid: s.uid,
            token_type: s.token_type,
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_at: s.expires_at,
            refresh_at: s.refresh_at,
        });
        assert_eq!(session, m.session, "snapshot session");
    }

    /// The request the step put on the wire, if the model expects one: endpoint,
    /// credential, `client_id` query, headers, body.
    fn compare_request(&mut self) {
        let new: Vec<Sent> = self
            .h
            .sent
            .iter()
            .filter(|s| !self.before.held.contains(&s.request))
            .cloned()
            .collect();
        let Some(f) = self.m.in_flight.as_mut().filter(|f| f.id.is_none()) else {
            let endpoints: Vec<Endpoint> = new.iter().map(|s| s.endpoint).collect();
            assert_eq!(endpoints, [], "no request expected");
            return;
        };
        let endpoints: Vec<Endpoint> = new.iter().map(|s| s.endpoint).collect();
        assert_eq!(endpoints, [f.on_the_wire()], "request sent");
        let sent = &new[0];
        f.id = Some(sent.request);
        let purpose = f.purpose.clone();
        self.check_request(sent, &purpose);
    }

    fn check_request(&mut self, sent: &Sent, purpose: &Purpose) {
        let endpoint = sent.endpoint;
        let engine = &self.h.engine;
        // core/README.md: `user/me` and `user/provider/bind` carry the session's access
        // token, and so do a profile update and an account deletion (§3 of
        // docs/wire.md: "withCredentials"); refresh, sign-in, provider-token and revoke
        // requests never do. The
        // automatic anonymous sign-in authenticates the client as the SDK does (§2 of
        // docs/wire.md): `Basic base64("{client_id}:")`.
        let bearer = matches!(
            endpoint,
            Endpoint::UserMe | Endpoint::ProviderBind | Endpoint::UserProfile | Endpoint::DeleteMe
        );
        let session = self.m.session.as_ref();
        let authorization = if bearer {
            let s = session.expect("a request with the access token needs a session");
            Some(format!("{} {}", s.token_type, s.access_token))
        } else if *purpose == (Purpose::AnonymousSignIn { automatic: true }) {
            Some(format!("Basic {}", BASE64.encode(format!("{ENV}:"))))
        } else {
            None
        };
        assert_eq!(
            sent.authorization.as_deref(),
            authorization.as_deref(),
            "{endpoint:?} credential"
        );
        // §2: a request without the access token names the client in its query.
        let query = if bearer {
            String::new()
        } else {
            format!("?{CLIENT_ID_PARAM}={ENV}")
        };
        let path = format!("{DEFAULT_API_PATH}{}{query}", endpoint.path());
        assert_eq!(sent.path.as_str(), path, "{endpoint:?} path");
        // §2: a stable device id, a fresh 32-hex request id per request.
        assert_eq!(
            sent.device_id_header.as_str(),
            engine.device_id(),
            "x-device-id"
        );
        let request_id = sent.request_id_header.as_str();
        assert!(
            request_id.len() == 32
                && request_id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "x-request-id {request_id:?}"
        );
        assert_ne!(
            self.last_request_id.as_deref(),
            Some(request_id),
            "x-request-id reused"
        );
        self.last_request_id = Some(request_id.to_owned());
        check_body(
            sent,
            purpose,
            session.and_then(|s| s.refresh_token.as_deref()),
        );
    }
}

/// The body fields that matter (§3 of docs/wire.md).
fn check_body(sent: &Sent, purpose: &Purpose, refresh_token: Option<&str>) {
    let endpoint = sent.endpoint;
    if matches!(endpoint, Endpoint::UserMe | Endpoint::DeleteMe) {
        assert!(sent.body.is_empty(), "{endpoint:?} has no body");
        return;
    }
    let body: Value = serde_json::from_slice(&sent.body).expect("a JSON request body");
    let exchange = match purpose {
        Purpose::WeChatSignIn(x) | Purpose::Link(x) => Some(x),
        _ => None,
    };
    match endpoint {
        Endpoint::SignInAnonymously => assert_eq!(body, json!({}), "anonymous sign-in body"),
        Endpoint::ProviderToken => {
            let code = &exchange.expect("an exchange").code;
            assert_eq!(body["provider_id"], APPID, "provider_id is the appId");
            assert_eq!(body["provider_code"], code.as_str(), "provider_code");
            assert_eq!(body["provider_params"]["provider_code_type"], "open_id");
            assert_eq!(body["provider_params"]["appid"], APPID);
        }
        Endpoint::SignInWithProvider | Endpoint::ProviderBind => {
            let token = exchange.and_then(|x| x.provider_token.as_deref());
            assert_eq!(
                body["provider_token"].as_str(),
                Some(token.expect("a provider token")),
                "{endpoint:?} provider_token"
            );
        }
        Endpoint::Token => {
            assert_eq!(body["client_id"], ENV);
            assert_eq!(body["client_secret"], "");
            assert_eq!(body["grant_type"], "refresh_token");
            assert_eq!(
                body["refresh_token"].as_str(),
                Some(refresh_token.expect("a refresh needs a refresh token")),
                "refresh_token"
            );
        }
        Endpoint::Revoke => {
            let Purpose::SignOut { access_token } = purpose else {
                panic!("model bug: revoke outside a sign-out");
            };
            assert_eq!(
                body["token"].as_str(),
                Some(access_token.as_str()),
                "revoke token"
            );
        }
        Endpoint::UserProfile => {
            let Purpose::UpdateProfile { name, picture } = purpose else {
                panic!("model bug: user/profile outside a profile update");
            };
            // §3.2: only the fields given, as the user object names them.
            let mut want = serde_json::Map::new();
            if let Some(n) = name {
                want.insert("name".into(), json!(n));
            }
            if let Some(p) = picture {
                want.insert("picture".into(), json!(p));
            }
            assert_eq!(body, Value::Object(want), "user/profile body");
        }
        other => panic!("model bug: no flow sends {other:?}"),
    }
}
