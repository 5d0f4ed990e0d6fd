//! The `code2session_reply` target: arbitrary bytes as WeChat's `jscode2session` reply
//! against an oracle that reads the body independently, and its seeds.

use super::Seed;
use crate::wechat::{REPLY_MAX, WxError, WxUser, is_valid_wx_id, parse_reply};

/// `data`: bytes 0–1 the HTTP status (little-endian, any `u16`), the rest WeChat's body.
///
/// Asserts that [`parse_reply`] never panics and agrees with an independent reading of
/// the body through `serde_json::Value` (keeping every key, so duplicates are seen):
/// a non-2xx status, an oversized or non-object body, a wrongly typed or duplicated
/// `openid`/`unionid`/`errcode` give [`WxError::Upstream`]; else a non-zero `errcode`
/// gives its classification ([`WxError::from_errcode`]); else a valid `openid` gives the
/// user, with a valid non-empty `unionid` or none; anything else is `Upstream`.
pub fn code2session_reply(data: &[u8]) {
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = u16::from_le_bytes(*status);
    let got = parse_reply(status, body);
    let expected = expected_reply(status, body);
    match (&got, &expected) {
        (Err(WxError::Upstream(_)), Err(WxError::Upstream(_))) => {}
        _ => assert_eq!(got, expected, "status {status}, body {body:?}"),
    }
    if let Ok(user) = &got {
        assert!(is_valid_wx_id(&user.openid));
        assert!(user.unionid.as_deref().is_none_or(is_valid_wx_id));
    }
}

/// The oracle of [`code2session_reply`].
fn expected_reply(status: u16, body: &[u8]) -> Result<WxUser, WxError> {
    use serde_json::Value;
    let upstream = || Err(WxError::Upstream(String::new()));
    if !(200..300).contains(&status) || body.len() > REPLY_MAX {
        return upstream();
    }
    let Ok(Entries(entries)) = serde_json::from_slice::<Entries>(body) else {
        return upstream();
    };
    let field = |name: &str| -> Result<Option<&Value>, ()> {
        let mut found = entries.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (found.next(), found.next()) {
            (_, Some(_)) => Err(()),
            (Some(Value::Null) | None, _) => Ok(None),
            (Some(v), _) => Ok(Some(v)),
        }
    };
    let (Ok(openid), Ok(unionid), Ok(errcode)) =
        (field("openid"), field("unionid"), field("errcode"))
    else {
        return upstream();
    };
    let text = |v: Option<&Value>| match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    };
    let (Ok(openid), Ok(unionid)) = (text(openid), text(unionid)) else {
        return upstream();
    };
    let errcode = match errcode {
        None => 0,
        Some(v) => match v.as_i64() {
            Some(code) => code,
            None => return upstream(),
        },
    };
    if errcode != 0 {
        return Err(WxError::from_errcode(errcode));
    }
    let unionid = unionid.filter(|u| !u.is_empty());
    match openid {
        Some(openid)
            if is_valid_wx_id(&openid) && unionid.as_deref().is_none_or(is_valid_wx_id) =>
        {
            Ok(WxUser { openid, unionid })
        }
        _ => upstream(),
    }
}

/// A JSON object as its list of members, duplicates kept. Only the three members the
/// client reads keep their value; the others are skipped as `serde` skips unknown fields
/// (without checking the UTF-8 of their strings, as the parser under test does).
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if ["openid", "unionid", "errcode"].contains(&key.as_str()) {
                        members.push((key, map.next_value()?));
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Entries(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Seeds of `code2session_reply`: WeChat's documented replies (wechat-miniprogram
/// reference §3.2), the emulator's, and what a broken proxy sends.
pub fn code2session_reply_seeds() -> Vec<Seed> {
    let with = |status: u16, body: &str| {
        let mut bytes = status.to_le_bytes().to_vec();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    };
    vec![
        (
            "ok",
            with(
                200,
                r#"{"openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}"#,
            ),
        ),
        (
            "ok_unionid",
            with(
                200,
                r#"{"openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","session_key":"tiihtNczf5v6AKRyjwEUhQ==","unionid":"oFz8xuFv0bEXAMPLEunionid0000"}"#,
            ),
        ),
        (
            "ok_errcode_0",
            with(
                200,
                r#"{"session_key":"k","openid":"o1","errcode":0,"errmsg":"ok"}"#,
            ),
        ),
        (
            "invalid_code",
            with(
                200,
                r#"{"errcode":40029,"errmsg":"invalid code, rid: 6543a1b2-1c2d3e4f-5a6b7c8d"}"#,
            ),
        ),
        (
            "code_used",
            with(
                200,
                r#"{"errcode":40163,"errmsg":"code been used, rid: 6543a1b2"}"#,
            ),
        ),
        (
            "busy",
            with(200, r#"{"errcode":-1,"errmsg":"system error"}"#),
        ),
        (
            "quota",
            with(
                200,
                r#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#,
            ),
        ),
        (
            "bad_secret",
            with(200, r#"{"errcode":40125,"errmsg":"invalid appsecret"}"#),
        ),
        (
            "blocked",
            with(200, r#"{"errcode":40226,"errmsg":"high risk user"}"#),
        ),
        (
            "html_502",
            with(502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        ),
        ("empty_200", with(200, "")),
        (
            "unicode_escapes",
            with(
                200,
                r#"{"openid":"o\u0041\u0062","unionid":"","extra":{"nested":[1,2,{"k":null}]}}"#,
            ),
        ),
    ]
}
