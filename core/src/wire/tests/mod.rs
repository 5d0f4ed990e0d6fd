//! Codec tests against the literal JSON shapes of docs/wire.md (§3–§6 and the HARNESS
//! log of §10).

extern crate std;

use super::*;
use crate::capacity::*;
use crate::error::{Error, ErrorText, ServerError, ServerErrorKind, WireError};
use std::format;
use std::string::{String as StdString, ToString};
use std::vec::Vec as StdVec;

// ----- fixtures -------------------------------------------------------------------------

/// A JWT-shaped access token of `len` characters (base64url segments and dots), like
/// the 1,027-character RS256 token of the HARNESS log (§10 of docs/wire.md).
fn jwt(len: usize) -> StdString {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = StdString::from("eyJhbGciOiJSUzI1NiIsImtpZCI6IjkifQ.");
    let mut i = 0usize;
    while s.len() < len {
        if s.len() == len / 2 || Some(s.len()) == len.checked_sub(343) {
            s.push('.');
        } else {
            s.push(alphabet[(i * 7 + 3) % 64] as char);
            i += 1;
        }
    }
    s.truncate(len);
    s
}

/// The anonymous sign-in reply of the HARNESS log (§10 of docs/wire.md).
fn harness_credentials(access_token: &str) -> StdString {
    format!(
        r#"{{"token_type":"Bearer","access_token":"{access_token}","refresh_token":"MeZYq0b5nBx2lQzFhR8sVt","expires_in":7200,"scope":"anonymous","sub":"1900000000781648021","groups":["anonymous"]}}"#
    )
}

fn creds(json: &str) -> Result<Credentials, WireError> {
    Credentials::parse(json.as_bytes())
}

fn hs<const N: usize>(s: &str) -> heapless::String<N> {
    heapless::String::try_from(s).expect("fits")
}

const APPID: &str = "wx0123456789abcdef";
const OPENID: &str = "oAbCdEfGhIjKlMnOpQrStUvWxYz0";

/// The §5 user object as our server (and the real one, per the SDK types) sends it.
const USER_JSON: &str = r#"{
  "sub": "1900000000781648021",
  "name": "\ud83d\ude00 \u5fae\u4fe1\u7528\u6237",
  "picture": "https:\/\/thirdwx.qlogo.cn\/mmopen\/vi_32\/avatar\/132",
  "username": "",
  "email": "user@example.com",
  "email_verified": true,
  "phone_number": "+86 13800000000",
  "groups": [{"id": "user", "expires_at": "2030-01-01T00:00:00Z"}, {"id": "wechat"}],
  "providers": [
    {"id": "wx_other_app", "provider_user_id": "oOtherOpenid", "name": "other"},
    {"id": "wx0123456789abcdef", "provider_user_id": "oAbCdEfGhIjKlMnOpQrStUvWxYz0", "name": "WeChat"}
  ],
  "gender": "MALE",
  "birthdate": null,
  "zoneinfo": "Asia/Shanghai",
  "locale": "zh-CN",
  "created_from": "wx_mp",
  "created_at": "2024-01-01T00:00:00Z",
  "updated_at": "2024-01-02T00:00:00Z",
  "loginType": "WECHAT",
  "hasPassword": false,
  "location": {"lat": 31.23, "lng": 121.47, "tags": [[], {}, [1.5e3, -0.0]]}
}"#;

mod credentials;
mod replies;
mod requests;
