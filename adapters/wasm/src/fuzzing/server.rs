//! The fake CloudBase server: what [`Call::Answer`](super::grammar::Call::Answer) replies
//! to each endpoint, in the JSON CloudBase sends.

use super::APPID;
use super::grammar::Reply;
use cloudbase_auth_core::wire::Endpoint;

/// The server's memory between replies.
#[derive(Default)]
pub(super) struct Server {
    /// A bind was answered and no refresh since: that refresh gets the `user` scope.
    bound: bool,
}

impl Server {
    /// Forgets the session (a new engine).
    pub(super) fn reset(&mut self) {
        self.bound = false;
    }

    /// `(status, body)` of `reply` to a request for `endpoint` (`None`: not a request
    /// the harness polled). `anonymous` says whether the client is signed in
    /// anonymously (a refresh keeps its scope).
    pub(super) fn reply(
        &mut self,
        endpoint: Option<Endpoint>,
        reply: &Reply,
        anonymous: bool,
    ) -> (u32, Vec<u8>) {
        let err = |status, error: &str, code: u32| {
            let body =
                format!(r#"{{"error":"{error}","error_code":{code},"error_description":"fuzz"}}"#);
            (status, body.into_bytes())
        };
        let (mut expires, mut refresh, mut flip) = (7200, true, false);
        match reply {
            Reply::Good => {}
            Reply::FlipScope => flip = true,
            Reply::NoRefresh => refresh = false,
            Reply::Expires(s) => expires = *s,
            Reply::Unauthenticated => return err(401, "unauthenticated", 16),
            Reply::InvalidGrant => return err(400, "invalid_grant", 3),
            Reply::Unavailable => return err(503, "unavailable", 14),
            Reply::EmptyObject => return (200, b"{}".to_vec()),
        }
        let creds = |anonymous: bool| {
            let (sub, scope) = if anonymous ^ flip {
                ("100", "anonymous")
            } else {
                ("200", "user")
            };
            let rt = if refresh {
                format!(r#""refresh_token":"rt-{sub}","#)
            } else {
                String::new()
            };
            let body = format!(
                r#"{{"token_type":"Bearer","access_token":"at-{sub}",{rt}"expires_in":{expires},"scope":"{scope}","sub":"{sub}"}}"#
            );
            (200, body.into_bytes())
        };
        match endpoint {
            Some(Endpoint::SignInAnonymously) => creds(true),
            Some(Endpoint::SignInWithProvider | Endpoint::SignInWeChatNoAuth) => creds(false),
            Some(Endpoint::Token) => {
                let bound = core::mem::take(&mut self.bound);
                creds(anonymous && !bound)
            }
            Some(Endpoint::ProviderToken) => (
                200,
                br#"{"provider_token":"pt-1","expires_in":300}"#.to_vec(),
            ),
            // `user/profile` answers the updated user, as `user/me` does.
            Some(Endpoint::UserMe | Endpoint::UserProfile) => (
                200,
                format!(
                    r#"{{"sub":"100","name":"微信用户😀","picture":"https://a/b.png","email":"a@b.c","providers":[{{"id":"{APPID}","provider_user_id":"oOPENID"}}]}}"#
                )
                .into_bytes(),
            ),
            Some(Endpoint::ProviderBind) => {
                self.bound = true;
                (200, b"{}".to_vec())
            }
            _ => (200, b"{}".to_vec()),
        }
    }
}
