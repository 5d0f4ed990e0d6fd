//! Codec tests against the literal JSON shapes of the wire reference
//! (`/work/shared/reference/cloudbase-auth-wire.md`, §3–§6 and the HARNESS log of §10).

extern crate std;

use super::*;
use crate::capacity::*;
use crate::error::{Error, ServerError, ServerErrorKind, WireError};
use std::format;
use std::string::{String as StdString, ToString};
use std::vec::Vec as StdVec;

// ----- fixtures -------------------------------------------------------------------------

/// A JWT-shaped access token of `len` characters (base64url segments and dots), like
/// the 1,027-character RS256 token of the reference's harness.
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

/// The anonymous sign-in reply of the reference's HARNESS log (§10).
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

// ----- Credentials ----------------------------------------------------------------------

#[test]
fn credentials_parse_the_harness_reply() {
    let token = jwt(1027);
    assert_eq!(token.len(), 1027);
    let c = creds(&harness_credentials(&token)).unwrap();
    assert_eq!(c.token_type, "Bearer");
    assert_eq!(c.access_token, token.as_str());
    assert_eq!(c.refresh_token.as_deref(), Some("MeZYq0b5nBx2lQzFhR8sVt"));
    assert_eq!(c.expires_in, 7200);
    assert_eq!(c.scope, "anonymous");
    assert!(c.is_anonymous());
    assert_eq!(c.sub, "1900000000781648021");
    assert_eq!(c.groups.len(), 1);
    assert_eq!(c.groups[0], "anonymous");
}

#[test]
fn credentials_optional_fields_default() {
    let c = creds(r#"{"access_token":"at","expires_in":0}"#).unwrap();
    assert_eq!(
        c.token_type, "Bearer",
        "absent token_type defaults to Bearer"
    );
    assert_eq!(c.refresh_token, None);
    assert!(c.scope.is_empty() && c.sub.is_empty() && c.groups.is_empty());
    assert!(!c.is_anonymous());
    let c = creds(
        r#"{"access_token":"at","expires_in":1,"refresh_token":null,"groups":null,"scope":null,"sub":null}"#,
    )
    .unwrap();
    assert_eq!(c.refresh_token, None);
    assert!(c.groups.is_empty());
    // Whitespace of any JSON kind around tokens.
    let c = creds("\r\n\t{ \"access_token\" :\n\"at\" , \"expires_in\" : 5 }\n ").unwrap();
    assert_eq!((c.access_token.as_str(), c.expires_in), ("at", 5));
}

#[test]
fn credentials_required_fields() {
    assert_eq!(
        creds(r#"{"token_type":"Bearer","expires_in":7200,"scope":"anonymous"}"#),
        Err(WireError::Missing {
            field: "access_token"
        })
    );
    assert_eq!(
        creds(r#"{"token_type":"Bearer","access_token":"at","refresh_token":"rt"}"#),
        Err(WireError::Missing {
            field: "expires_in"
        })
    );
    assert_eq!(
        creds("{}"),
        Err(WireError::Missing {
            field: "access_token"
        })
    );
    // null is not a value for the required ones.
    assert_eq!(
        creds(r#"{"access_token":null,"expires_in":1}"#),
        Err(WireError::WrongType {
            field: "access_token"
        })
    );
    assert_eq!(
        creds(r#"{"access_token":"at","expires_in":null}"#),
        Err(WireError::WrongType {
            field: "expires_in"
        })
    );
}

#[test]
fn credentials_wrong_types() {
    let wrong = |json: &str, field: &'static str| {
        assert_eq!(creds(json), Err(WireError::WrongType { field }), "{json}");
    };
    wrong(r#"{"access_token":"at","expires_in":"7200"}"#, "expires_in");
    wrong(r#"{"access_token":"at","expires_in":7200.5}"#, "expires_in");
    wrong(r#"{"access_token":"at","expires_in":7.2e3}"#, "expires_in");
    wrong(r#"{"access_token":"at","expires_in":-1}"#, "expires_in");
    wrong(r#"{"access_token":"at","expires_in":true}"#, "expires_in");
    wrong(
        r#"{"access_token":"at","expires_in":99999999999999999999}"#,
        "expires_in",
    );
    wrong(
        r#"{"access_token":12345,"expires_in":7200}"#,
        "access_token",
    );
    wrong(
        r#"{"access_token":["at"],"expires_in":7200}"#,
        "access_token",
    );
    wrong(
        r#"{"access_token":"at","expires_in":1,"groups":"anonymous"}"#,
        "groups",
    );
    wrong(
        r#"{"access_token":"at","expires_in":1,"groups":{"0":"a"}}"#,
        "groups",
    );
    wrong(
        r#"{"access_token":"at","expires_in":1,"groups":[1]}"#,
        "groups",
    );
    wrong(r#"{"access_token":"at","expires_in":1,"scope":7}"#, "scope");
    wrong(r#"{"access_token":"at","expires_in":1,"sub":12345}"#, "sub");
    wrong(
        r#"{"access_token":"at","expires_in":1,"token_type":5}"#,
        "token_type",
    );
    // A null or empty token_type means "not given": the scheme defaults to Bearer.
    for absent in ["null", r#""""#] {
        let json = format!(r#"{{"access_token":"at","expires_in":1,"token_type":{absent}}}"#);
        assert_eq!(creds(&json).unwrap().token_type, "Bearer", "{json}");
    }
    wrong(
        r#"{"access_token":"at","expires_in":1,"refresh_token":5}"#,
        "refresh_token",
    );
}

#[test]
fn credentials_capacities() {
    let at_cap = jwt(ACCESS_TOKEN_MAX);
    let c = creds(&harness_credentials(&at_cap)).unwrap();
    assert_eq!(c.access_token.len(), ACCESS_TOKEN_MAX);
    assert_eq!(
        creds(&harness_credentials(&jwt(ACCESS_TOKEN_MAX + 1))),
        Err(WireError::TooLong {
            field: "access_token"
        })
    );
    let long = |field: &'static str, n: usize| {
        let json = format!(
            r#"{{"access_token":"at","expires_in":1,"{field}":"{}"}}"#,
            "r".repeat(n)
        );
        creds(&json)
    };
    assert!(long("refresh_token", REFRESH_TOKEN_MAX).is_ok());
    assert_eq!(
        long("refresh_token", REFRESH_TOKEN_MAX + 1),
        Err(WireError::TooLong {
            field: "refresh_token"
        })
    );
    assert!(long("token_type", TOKEN_TYPE_MAX).is_ok());
    assert_eq!(
        long("token_type", TOKEN_TYPE_MAX + 1),
        Err(WireError::TooLong {
            field: "token_type"
        })
    );
    assert!(long("sub", UID_MAX).is_ok());
    assert_eq!(
        long("sub", UID_MAX + 1),
        Err(WireError::TooLong { field: "sub" })
    );
    assert!(long("scope", SCOPE_MAX).is_ok());
    assert_eq!(
        long("scope", SCOPE_MAX + 1),
        Err(WireError::TooLong { field: "scope" })
    );
    let groups = |n: usize| {
        let list: StdVec<StdString> = (0..n).map(|i| format!("\"g{i}\"")).collect();
        creds(&format!(
            r#"{{"access_token":"at","expires_in":1,"groups":[{}]}}"#,
            list.join(",")
        ))
    };
    assert_eq!(groups(GROUPS_MAX).unwrap().groups.len(), GROUPS_MAX);
    assert_eq!(
        groups(GROUPS_MAX + 1),
        Err(WireError::TooLong { field: "groups" })
    );
    // Capacity is in bytes: 4-byte characters count four times.
    let json = format!(
        r#"{{"access_token":"at","expires_in":1,"sub":"{}"}}"#,
        "😀".repeat(UID_MAX / 4 + 1)
    );
    assert_eq!(creds(&json), Err(WireError::TooLong { field: "sub" }));
}

#[test]
fn credentials_tokens_must_be_header_safe() {
    for bad in [
        "a b",     // space
        r#"a\"b"#, // quote (escaped in JSON, a real `"` after unescaping)
        r"a\\b",   // backslash
        r"a\tb",   // control character via escape
        r"a\u0000b",
        r"a\u007fb", // DEL
        "a\u{e9}b",  // non-ASCII
        r"a\u00e9b",
        "", // empty
    ] {
        for field in ["access_token", "refresh_token", "token_type"] {
            if bad.is_empty() && field == "token_type" {
                continue; // empty token_type defaults to Bearer (tested above)
            }
            let json = if field == "access_token" {
                format!(r#"{{"access_token":"{bad}","expires_in":1}}"#)
            } else {
                format!(r#"{{"access_token":"at","expires_in":1,"{field}":"{bad}"}}"#)
            };
            assert_eq!(
                creds(&json),
                Err(WireError::InvalidValue { field }),
                "{field} = {bad:?}"
            );
        }
    }
    // A raw control character inside a JSON string is a syntax error, not a value.
    assert!(matches!(
        creds("{\"access_token\":\"a\u{1}b\",\"expires_in\":1}"),
        Err(WireError::Syntax { .. })
    ));
    // Escapes that decode to safe characters are fine.
    let c = creds(r#"{"access_token":"a\/b\u0041","expires_in":1}"#).unwrap();
    assert_eq!(c.access_token, "a/bA");
}

#[test]
fn credentials_duplicate_keys() {
    for (json, field) in [
        (
            r#"{"access_token":"a","expires_in":1,"access_token":"b"}"#,
            "access_token",
        ),
        (
            r#"{"access_token":"a","expires_in":1,"expires_in":2}"#,
            "expires_in",
        ),
        (
            r#"{"access_token":"a","expires_in":1,"refresh_token":null,"refresh_token":"r"}"#,
            "refresh_token",
        ),
        (
            r#"{"access_token":"a","expires_in":1,"groups":[],"groups":[]}"#,
            "groups",
        ),
        (
            r#"{"access_token":"a","expires_in":1,"scope":"x","scope":"x"}"#,
            "scope",
        ),
        // The same key written with an escape is the same key.
        (
            r#"{"access_token":"a","expires_in":1,"access\u005ftoken":"b"}"#,
            "access_token",
        ),
    ] {
        assert_eq!(creds(json), Err(WireError::Duplicate { field }), "{json}");
    }
    // Unknown keys may repeat.
    assert!(creds(r#"{"x":1,"access_token":"a","x":2,"expires_in":1}"#).is_ok());
}

#[test]
fn every_truncation_is_an_error_never_ok_never_a_panic() {
    let bodies = [
        harness_credentials(&jwt(64)),
        // Unknown fields of every kind and a multi-byte character, so some cuts split it.
        r#"{"a":[1,-2.5e-3,{"b":null,"c":[true,false]}],"d":"\"}😀","access_token":"at","expires_in":7200,"e":{}}"#
            .to_string(),
    ];
    for body in &bodies {
        assert!(creds(body).is_ok());
        for n in 0..body.len() {
            let r = Credentials::parse(&body.as_bytes()[..n]);
            assert!(r.is_err(), "prefix {n} of {body} parsed: {r:?}");
        }
    }
    let user = USER_JSON.as_bytes();
    assert!(User::parse(user).is_ok());
    for n in 0..user.len() {
        assert!(User::parse(&user[..n]).is_err(), "user prefix {n}");
    }
    let err = br#"{"error":"unauthenticated","error_code":16,"error_description":"invalid access token"}"#;
    for n in 0..err.len() {
        assert!(ErrorBody::parse(&err[..n]).is_err(), "error prefix {n}");
    }
    let pt =
        br#"{"provider_token":"pt:abc","expires_in":1800,"provider_profile":{"provider_id":"wx"}}"#;
    for n in 0..pt.len() {
        assert!(
            ProviderTokenReply::parse(&pt[..n]).is_err(),
            "provider prefix {n}"
        );
    }
}

#[test]
fn truncation_errors_are_typed() {
    assert_eq!(creds(""), Err(WireError::Truncated));
    assert_eq!(creds("   "), Err(WireError::Truncated));
    assert_eq!(creds(r#"{"access_token":"a"#), Err(WireError::Truncated));
    assert_eq!(
        creds(r#"{"access_token":"at","expires_in":72"#),
        Err(WireError::Truncated)
    );
    // A cut inside a multi-byte character is not UTF-8 any more.
    let body = "{\"x\":\"😀\"}";
    assert_eq!(
        Credentials::parse(&body.as_bytes()[..8]),
        Err(WireError::NotUtf8)
    );
}

#[test]
fn not_utf8_too_large_not_an_object() {
    assert_eq!(
        Credentials::parse(b"{\"access_token\":\"\xff\",\"expires_in\":1}"),
        Err(WireError::NotUtf8)
    );
    assert_eq!(
        User::parse(b"{\"name\":\"\xc3\x28\"}"),
        Err(WireError::NotUtf8)
    );
    // Over-long encodings and lone surrogates in UTF-8 are rejected by the check too.
    assert_eq!(
        User::parse(b"{\"name\":\"\xc0\xaf\"}"),
        Err(WireError::NotUtf8)
    );
    assert_eq!(
        User::parse(b"{\"name\":\"\xed\xa0\x80\"}"),
        Err(WireError::NotUtf8)
    );

    let ok = r#"{"access_token":"at","expires_in":1}"#;
    let mut big = ok.as_bytes().to_vec();
    big.resize(RESPONSE_BODY_MAX, b' ');
    assert!(
        Credentials::parse(&big).is_ok(),
        "exactly RESPONSE_BODY_MAX is fine"
    );
    big.push(b' ');
    assert_eq!(Credentials::parse(&big), Err(WireError::BodyTooLarge));
    assert_eq!(User::parse(&big), Err(WireError::BodyTooLarge));
    assert_eq!(ErrorBody::parse(&big), Err(WireError::BodyTooLarge));

    for top in [
        r#"[{"access_token":"at","expires_in":1}]"#,
        r#""{\"access_token\":\"at\"}""#,
        "7200",
        "null",
        "true",
    ] {
        assert_eq!(creds(top), Err(WireError::NotAnObject), "{top}");
        assert_eq!(User::parse(top.as_bytes()), Err(WireError::NotAnObject));
        assert_eq!(
            ErrorBody::parse(top.as_bytes()),
            Err(WireError::NotAnObject)
        );
        assert_eq!(
            ProviderTokenReply::parse(top.as_bytes()),
            Err(WireError::NotAnObject)
        );
    }
    for junk in [
        "<html>",
        "{'a':1}",
        "{a:1}",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "{\"a\":01}",
    ] {
        assert!(
            matches!(creds(junk), Err(WireError::Syntax { .. })),
            "{junk}: {:?}",
            creds(junk)
        );
    }
    // Trailing content after the object.
    assert!(matches!(
        creds(r#"{"access_token":"at","expires_in":1} {}"#),
        Err(WireError::Syntax { .. })
    ));
}

#[test]
fn unknown_fields_are_skipped() {
    let json = r#"{
        "nested": {"a": {"b": {"c": [1, 2, {"d": "}"}]}}},
        "list": [[], [[]], {}, "x", null, true, false],
        "float": 1.5e3, "neg": -0.25E-2, "big": 123456789012345678901234567890,
        "tricky": "a \"}] , \\\" \u0022 still a string",
        "access_token": "at-1",
        "unicode": "\ud83d\ude00 中文",
        "expires_in": 7200,
        "a_key_longer_than_thirty_two_bytes_is_just_unknown": {"access_token": "x"},
        "version": "v1",
        "expires_at": "2030-01-01T00:00:00.000Z"
    }"#;
    let c = creds(json).unwrap();
    assert_eq!(c.access_token, "at-1");
    assert_eq!(c.expires_in, 7200);
    // Depth limit applies to unknown values too.
    let deep = format!(
        r#"{{"access_token":"at","expires_in":1,"x":{}{}}}"#,
        "[".repeat(JSON_DEPTH_MAX + 1),
        "]".repeat(JSON_DEPTH_MAX + 1)
    );
    assert_eq!(creds(&deep), Err(WireError::TooDeep));
    let ok_depth = format!(
        r#"{{"access_token":"at","expires_in":1,"x":{}{}}}"#,
        "[".repeat(JSON_DEPTH_MAX - 1),
        "]".repeat(JSON_DEPTH_MAX - 1)
    );
    assert!(creds(&ok_depth).is_ok());
}

// ----- ProviderTokenReply -------------------------------------------------------------

#[test]
fn provider_token_reply() {
    let with_profile = br#"{"provider_token":"pt:oAbCdEf","expires_in":1800,"provider_profile":{"provider_id":"wx0123456789abcdef","name":"\u5f20\u4e09","picture":"https://x/y.png","phone_number":"+86 13800000000","email":null}}"#;
    let p = ProviderTokenReply::parse(with_profile).unwrap();
    assert_eq!(p.provider_token, "pt:oAbCdEf");
    assert_eq!(p.expires_in, 1800);

    let p = ProviderTokenReply::parse(br#"{"provider_token":"pt:x"}"#).unwrap();
    assert_eq!((p.provider_token.as_str(), p.expires_in), ("pt:x", 0));

    assert_eq!(
        ProviderTokenReply::parse(br#"{"expires_in":1800,"provider_profile":{}}"#),
        Err(WireError::Missing {
            field: "provider_token"
        })
    );
    assert_eq!(
        ProviderTokenReply::parse(br#"{"provider_token":"p t"}"#),
        Err(WireError::InvalidValue {
            field: "provider_token"
        })
    );
    assert_eq!(
        ProviderTokenReply::parse(br#"{"provider_token":"a","provider_token":"b"}"#),
        Err(WireError::Duplicate {
            field: "provider_token"
        })
    );
    let long = format!(
        r#"{{"provider_token":"{}"}}"#,
        "p".repeat(PROVIDER_TOKEN_MAX + 1)
    );
    assert_eq!(
        ProviderTokenReply::parse(long.as_bytes()),
        Err(WireError::TooLong {
            field: "provider_token"
        })
    );
}

// ----- User -----------------------------------------------------------------------------

#[test]
fn user_parses_the_reference_shape() {
    let u = User::parse(USER_JSON.as_bytes()).unwrap();
    assert_eq!(u.sub, "1900000000781648021");
    assert_eq!(
        u.name, "😀 微信用户",
        "surrogate pair and \\u escapes decode"
    );
    assert_eq!(
        u.picture,
        "https://thirdwx.qlogo.cn/mmopen/vi_32/avatar/132"
    );
    assert_eq!(u.email, "user@example.com");
    assert_eq!(u.phone_number, "+86 13800000000");
    assert_eq!(u.username, "");
    assert_eq!(u.gender, "MALE");
    assert_eq!(u.created_at, "2024-01-01T00:00:00Z");
    assert_eq!(u.updated_at, "2024-01-02T00:00:00Z");
    let groups: StdVec<&str> = u.groups.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(groups, ["user", "wechat"]);
    assert_eq!(u.providers.len(), 2);
    assert_eq!(u.providers[1].id, APPID);
    assert_eq!(u.providers[1].provider_user_id, OPENID);
    assert_eq!(u.providers[1].name, "WeChat");

    assert_eq!(
        u.openid_for(APPID),
        Some(OPENID),
        "picks the entry of the appid"
    );
    assert_eq!(u.openid_for("wx_other_app"), Some("oOtherOpenid"));
    assert_eq!(u.openid_for("wxffffffffffffffff"), None);
    assert_eq!(
        u.openid_for(""),
        Some("oOtherOpenid"),
        "no appid: first entry"
    );
}

#[test]
fn user_edge_cases() {
    let u = User::parse(b"{}").unwrap();
    assert_eq!(u, User::default());
    assert_eq!(u.openid_for(APPID), None);
    let u = User::parse(br#"{"name":null,"groups":null,"providers":null,"sub":null}"#).unwrap();
    assert_eq!(u, User::default());
    // The anonymous user of our server.
    let u = User::parse(br#"{"sub":"uid-1","name":"anonymous"}"#).unwrap();
    assert_eq!((u.sub.as_str(), u.name.as_str()), ("uid-1", "anonymous"));

    let err = |json: &str| User::parse(json.as_bytes());
    assert_eq!(
        err(r#"{"groups":["user"]}"#),
        Err(WireError::WrongType { field: "groups" }),
        "groups are objects in the user reply"
    );
    assert_eq!(
        err(r#"{"providers":{"id":"x"}}"#),
        Err(WireError::WrongType { field: "providers" })
    );
    assert_eq!(
        err(r#"{"providers":["x"]}"#),
        Err(WireError::WrongType { field: "providers" })
    );
    assert_eq!(
        err(r#"{"providers":[{"id":1}]}"#),
        Err(WireError::WrongType {
            field: "providers.id"
        })
    );
    assert_eq!(
        err(r#"{"name":5}"#),
        Err(WireError::WrongType { field: "name" })
    );
    assert_eq!(
        err(r#"{"name":"a","name":"b"}"#),
        Err(WireError::Duplicate { field: "name" })
    );
    assert_eq!(
        err(&format!(r#"{{"name":"{}"}}"#, "n".repeat(NAME_MAX + 1))),
        Err(WireError::TooLong { field: "name" })
    );
    assert!(err(&format!(r#"{{"name":"{}"}}"#, "😀".repeat(NAME_MAX / 4))).is_ok());
    assert_eq!(
        err(&format!(
            r#"{{"picture":"{}"}}"#,
            "p".repeat(AVATAR_MAX + 1)
        )),
        Err(WireError::TooLong { field: "picture" })
    );
    let providers = |n: usize| {
        let list: StdVec<StdString> = (0..n)
            .map(|i| format!(r#"{{"id":"wx{i}","provider_user_id":"o{i}"}}"#))
            .collect();
        err(&format!(r#"{{"providers":[{}]}}"#, list.join(",")))
    };
    assert_eq!(
        providers(PROVIDERS_MAX).unwrap().providers.len(),
        PROVIDERS_MAX
    );
    assert_eq!(
        providers(PROVIDERS_MAX + 1),
        Err(WireError::TooLong { field: "providers" })
    );
    // Lone surrogates are refused, not replaced.
    assert!(matches!(
        err(r#"{"name":"\ud83d"}"#),
        Err(WireError::BadEscape { .. })
    ));
    assert!(matches!(
        err(r#"{"name":"\ude00\ud83d"}"#),
        Err(WireError::BadEscape { .. })
    ));
}

// ----- ErrorBody ------------------------------------------------------------------------

#[test]
fn error_body_shapes() {
    let e = ErrorBody::parse(
        br#"{"error":"unauthenticated","error_code":16,"error_description":"invalid access token"}"#,
    )
    .unwrap();
    assert_eq!(
        e,
        ErrorBody::new("unauthenticated", 16, "invalid access token")
    );
    assert_eq!(e.error, "unauthenticated");
    assert_eq!(e.error_code, 16);
    assert_eq!(e.error_description, "invalid access token");

    let e = ErrorBody::parse(br#"{"error":"unauthenticated","error_code":"16"}"#).unwrap();
    assert_eq!(e.error_code, 16, "error_code as a string");
    let e = ErrorBody::parse(br#"{"error_code":" 4001 "}"#).unwrap();
    assert_eq!(e.error_code, 4001);
    let e =
        ErrorBody::parse(br#"{"error_code":null,"error":null,"error_description":null}"#).unwrap();
    assert_eq!(e, ErrorBody::default());

    let e = ErrorBody::parse(b"{}").unwrap();
    assert_eq!(e, ErrorBody::default());
    let e = ErrorBody::parse(br#"{"error":"invalid_grant"}"#).unwrap();
    assert_eq!((e.error.as_str(), e.error_code), ("invalid_grant", 0));
    let e = ErrorBody::parse(br#"{"error_code":3}"#).unwrap();
    assert_eq!((e.error.as_str(), e.error_code), ("", 3));

    // A symbolic or fractional error_code keeps the rest of the body; the code is 0.
    for odd in [r#""sixteen""#, "1.5", "true"] {
        let body = format!(r#"{{"error":"unauthenticated","error_code":{odd}}}"#);
        let e = ErrorBody::parse(body.as_bytes()).unwrap();
        assert_eq!(
            (e.error.as_str(), e.error_code),
            ("unauthenticated", 0),
            "{body}"
        );
    }
    assert_eq!(
        ErrorBody::parse(br#"{"error":"a","error":"b"}"#),
        Err(WireError::Duplicate { field: "error" })
    );
}

#[test]
fn error_body_overlong_text_is_cut_not_an_error() {
    let long = "说明".repeat(ERROR_DESCRIPTION_MAX); // 6 bytes per repeat
    let e = ErrorBody::parse(
        format!(r#"{{"error":"internal","error_code":13,"error_description":"{long}"}}"#)
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(e.error, "internal");
    assert_eq!(e.error_code, 13);
    assert!(e.error_description.len() <= ERROR_DESCRIPTION_MAX);
    assert!(e.error_description.len() > ERROR_DESCRIPTION_MAX - 3);
    assert!(
        long.starts_with(e.error_description.as_str()),
        "cut at a char boundary"
    );
    // The same cut as the server-side constructor.
    assert_eq!(e, ErrorBody::new("internal", 13, &long));
    // An over-long error name is dropped (the status still classifies), not an error.
    let name = "e".repeat(ERROR_NAME_MAX + 1);
    let e = ErrorBody::parse(format!(r#"{{"error":"{name}","error_code":3}}"#).as_bytes()).unwrap();
    assert_eq!((e.error.as_str(), e.error_code), ("", 3));
    // A non-string error name (some gateways send objects) is skipped.
    let e = ErrorBody::parse(br#"{"error":{"message":"x"},"error_code":14}"#).unwrap();
    assert_eq!((e.error.as_str(), e.error_code), ("", 14));
}

/// §6 names the error in `error`; `error_code` is "number or string" and some gateways
/// put a symbolic code there. One odd `error_code` should not discard the `error` name.
#[test]
fn error_body_keeps_the_name_when_error_code_is_symbolic() {
    let body = br#"{"error":"invalid_grant","error_code":"INVALID_GRANT"}"#;
    assert_eq!(
        decode_reply(400, body, Credentials::parse).err(),
        Some(Error::Server(ServerError::new(
            400,
            ServerErrorKind::InvalidGrant,
            0
        )))
    );
    // On a 200 the status cannot stand in for the lost name.
    let body = br#"{"error":"unauthenticated","error_code":"UNAUTHENTICATED"}"#;
    let kind = match decode_reply(200, body, Credentials::parse) {
        Err(Error::Server(s)) => s.kind,
        other => panic!("{other:?}"),
    };
    assert_eq!(kind, ServerErrorKind::Unauthenticated);
}

// ----- decode_reply ---------------------------------------------------------------------

fn server(r: Result<Credentials, Error>) -> ServerError {
    match r {
        Err(Error::Server(s)) => s,
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[test]
fn decode_reply_success_and_errors() {
    let ok = harness_credentials("at-1");
    let c = decode_reply(200, ok.as_bytes(), Credentials::parse).unwrap();
    assert_eq!(c.access_token, "at-1");
    assert!(decode_reply(204, ok.as_bytes(), Credentials::parse).is_ok());

    let s = server(decode_reply(
        400,
        br#"{"error":"invalid_grant","error_code":3,"error_description":"refresh token invalid"}"#,
        Credentials::parse,
    ));
    assert_eq!(s, ServerError::new(400, ServerErrorKind::InvalidGrant, 3));

    let s = server(decode_reply(
        401,
        br#"{"error":"unauthenticated","error_code":16,"error_description":"invalid access token"}"#,
        Credentials::parse,
    ));
    assert_eq!(
        s,
        ServerError::new(401, ServerErrorKind::Unauthenticated, 16)
    );

    // Kinds come from the name first, then from the status.
    for (status, name, kind) in [
        (400, "invalid_argument", ServerErrorKind::InvalidArgument),
        (403, "permission_denied", ServerErrorKind::PermissionDenied),
        (404, "not_found", ServerErrorKind::NotFound),
        (409, "already_exists", ServerErrorKind::Conflict),
        (400, "failed_precondition", ServerErrorKind::Conflict),
        (
            429,
            "resource_exhausted",
            ServerErrorKind::ResourceExhausted,
        ),
        (500, "internal", ServerErrorKind::Unavailable),
        (503, "unavailable", ServerErrorKind::Unavailable),
        (400, "captcha_required", ServerErrorKind::InvalidArgument),
        (418, "captcha_required", ServerErrorKind::Other),
        (401, "", ServerErrorKind::Unauthenticated),
        (404, "", ServerErrorKind::NotFound),
    ] {
        let body = format!(r#"{{"error":"{name}","error_code":7}}"#);
        let s = server(decode_reply(status, body.as_bytes(), Credentials::parse));
        assert_eq!(
            (s.status, s.kind, s.code),
            (status, kind, 7),
            "{status} {name}"
        );
    }

    // A 200 whose body carries a truthy error_code or code is an error (§6).
    let s = server(decode_reply(
        200,
        br#"{"error":"unauthenticated","error_code":16,"error_description":"x"}"#,
        Credentials::parse,
    ));
    assert_eq!(
        s,
        ServerError::new(200, ServerErrorKind::Unauthenticated, 16)
    );
    let with_code = format!(
        r#"{{"code":"INVALID_ACCESS_TOKEN","message":"x",{}"#,
        &ok[1..]
    );
    let s = server(decode_reply(200, with_code.as_bytes(), Credentials::parse));
    assert_eq!((s.status, s.kind), (200, ServerErrorKind::Other));
    let s = server(decode_reply(
        200,
        br#"{"error_code":"16","access_token":"at","expires_in":1}"#,
        Credentials::parse,
    ));
    assert_eq!(s.code, 16);
    let s = server(decode_reply(200, br#"{"code":1}"#, Credentials::parse));
    assert_eq!(s.status, 200);

    // A proxy's HTML error page classifies by status.
    let s = server(decode_reply(
        502,
        b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        Credentials::parse,
    ));
    assert_eq!(s, ServerError::new(502, ServerErrorKind::Unavailable, 0));
    let s = server(decode_reply(404, b"", Credentials::parse));
    assert_eq!(s.kind, ServerErrorKind::NotFound);
    let s = server(decode_reply(301, ok.as_bytes(), Credentials::parse));
    assert_eq!(s.status, 301, "3xx is not success");

    // Falsy markers are not errors.
    for falsy in [
        r#""code":0"#,
        r#""code":"""#,
        r#""code":null"#,
        r#""code":false"#,
        r#""error_code":0"#,
        r#""error":"""#,
        r#""error":null"#,
    ] {
        let body = format!("{{{falsy},{}", &ok[1..]);
        let c = decode_reply(200, body.as_bytes(), Credentials::parse);
        assert!(c.is_ok(), "{body}: {c:?}");
    }

    // 2xx with a body that is not the expected shape is a wire error.
    assert_eq!(
        decode_reply(200, b"<html>", Credentials::parse).err(),
        Some(Error::Wire(WireError::Syntax { at: 0 }))
    );
    assert_eq!(
        decode_reply(200, b"{}", Credentials::parse).err(),
        Some(Error::Wire(WireError::Missing {
            field: "access_token"
        }))
    );
}

// ----- serde round trips ----------------------------------------------------------------

#[test]
fn credentials_round_trip_through_serde_json() {
    let mut c = Credentials {
        token_type: hs("Bearer"),
        access_token: hs(&jwt(1060)),
        refresh_token: Some(hs("MeZYq0b5nBx2lQzFhR8sVt")),
        expires_in: 7200,
        scope: hs("user"),
        sub: hs("1900000000781648021"),
        groups: heapless::Vec::new(),
    };
    c.groups.push(hs("user")).unwrap();
    c.groups.push(hs("wechat \"vip\"")).unwrap();
    let json = serde_json::to_vec(&c).unwrap();
    assert_eq!(Credentials::parse(&json).unwrap(), c);
    let pretty = serde_json::to_vec_pretty(&c).unwrap();
    assert_eq!(Credentials::parse(&pretty).unwrap(), c);

    // Optional parts skipped on the wire come back as their defaults.
    let minimal = Credentials {
        token_type: hs("Bearer"),
        access_token: hs("at"),
        expires_in: 0,
        ..Default::default()
    };
    let json = serde_json::to_string(&minimal).unwrap();
    assert_eq!(
        json,
        r#"{"token_type":"Bearer","access_token":"at","expires_in":0}"#
    );
    assert_eq!(Credentials::parse(json.as_bytes()).unwrap(), minimal);
}

#[test]
fn user_round_trips_through_serde_json() {
    let mut u = User {
        sub: hs("uid-7"),
        name: hs("微信用户😀 \"q\" \\ \n\t\u{1}\u{7f}"),
        picture: hs("https://thirdwx.qlogo.cn/mmopen/vi_32/a/132"),
        email: hs("a@b.c"),
        phone_number: hs("+86 13800000000"),
        username: hs("user_7"),
        gender: hs("FEMALE"),
        created_at: hs("2024-01-01T00:00:00Z"),
        updated_at: hs("2024-01-02T00:00:00Z"),
        ..Default::default()
    };
    u.groups.push(UserGroup { id: hs("user") }).unwrap();
    u.providers
        .push(ProviderIdentity::new(hs(APPID), hs(OPENID)))
        .unwrap();
    let mut named = ProviderIdentity::new(hs("wx_other"), hs("oOther"));
    named.name = hs("昵称");
    u.providers.push(named).unwrap();
    for json in [
        serde_json::to_vec(&u).unwrap(),
        serde_json::to_vec_pretty(&u).unwrap(),
    ] {
        assert_eq!(User::parse(&json).unwrap(), u);
    }
    assert_eq!(
        User::parse(&serde_json::to_vec(&User::default()).unwrap()).unwrap(),
        User::default()
    );
    // serde_json escapes control characters as \u00XX; the reader turns them back.
    let json = serde_json::to_string(&u).unwrap();
    assert!(json.contains(r"\u0001"));
}

#[test]
fn error_body_round_trips_through_serde_json() {
    for e in [
        ErrorBody::new("unauthenticated", 16, "invalid access token"),
        ErrorBody::new("captcha_required", 4001, "请输入验证码 \"now\""),
        ErrorBody::new("", 0, ""),
        ErrorBody::new("internal", -1, &"x".repeat(500)),
    ] {
        let json = serde_json::to_vec(&e).unwrap();
        assert_eq!(ErrorBody::parse(&json).unwrap(), e);
        // And what the client makes of it as a reply.
        let s = server(decode_reply(400, &json, Credentials::parse));
        assert_eq!(s.code, e.error_code);
    }
}

#[test]
fn provider_token_reply_round_trips() {
    let p = ProviderTokenReply {
        provider_token: hs("pt:oAbCdEf"),
        expires_in: 1800,
    };
    let json = serde_json::to_vec(&p).unwrap();
    assert_eq!(ProviderTokenReply::parse(&json).unwrap(), p);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn text(max_chars: usize) -> impl Strategy<Value = StdString> {
        proptest::collection::vec(any::<char>(), 0..max_chars)
            .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn any_user_text_round_trips(name in text(NAME_MAX / 4), email in text(EMAIL_MAX / 4),
                                     openid in "[!-~]{0,64}") {
            let mut u = User { name: hs(&name), email: hs(&email), ..Default::default() };
            u.providers.push(ProviderIdentity::new(hs(APPID), hs(&openid))).unwrap();
            let json = serde_json::to_vec(&u).unwrap();
            prop_assert_eq!(User::parse(&json).unwrap(), u);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Credentials::parse(&bytes);
            let _ = User::parse(&bytes);
            let _ = ErrorBody::parse(&bytes);
            let _ = ProviderTokenReply::parse(&bytes);
            let _ = ErrorBody::is_error_shaped(&bytes);
            let _ = decode_reply(200, &bytes, Credentials::parse);
        }

        #[test]
        fn mutated_replies_never_panic(pos in 0usize..200, byte in any::<u8>()) {
            let mut body = harness_credentials("at-1").into_bytes();
            let i = pos % body.len();
            body[i] = byte;
            let _ = decode_reply(200, &body, Credentials::parse);
            let mut user = USER_JSON.as_bytes().to_vec();
            let j = (pos * 7) % user.len();
            user[j] = byte;
            let _ = decode_reply(200, &user, User::parse);
        }
    }
}

// ----- request bodies -------------------------------------------------------------------

fn write<T: serde::Serialize>(value: &T) -> StdString {
    let mut buf = [0u8; REQUEST_BODY_MAX];
    let n = serde_json_core::to_slice(value, &mut buf).unwrap();
    StdString::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn request_bodies_are_the_exact_sdk_json() {
    assert_eq!(
        write(&RefreshRequest::new(
            "peer-test-1g2h3i4j5k",
            "",
            GRANT_REFRESH_TOKEN,
            "MeZYq0b5nBx2lQzFhR8sVt"
        )),
        r#"{"client_id":"peer-test-1g2h3i4j5k","client_secret":"","grant_type":"refresh_token","refresh_token":"MeZYq0b5nBx2lQzFhR8sVt"}"#
    );
    let params = ProviderParams::new(PROVIDER_CODE_TYPE_OPEN_ID, APPID);
    assert_eq!(
        write(&ProviderTokenRequest::new(APPID, "wxlogin-code-1", params)),
        r#"{"provider_id":"wx0123456789abcdef","provider_code":"wxlogin-code-1","provider_params":{"provider_code_type":"open_id","appid":"wx0123456789abcdef"}}"#
    );
    assert_eq!(
        write(&ProviderTokenBody::new("pt:oAbCdEf")),
        r#"{"provider_token":"pt:oAbCdEf"}"#
    );
    let token = jwt(ACCESS_TOKEN_MAX);
    assert_eq!(
        write(&RevokeRequest::new(token.as_str())),
        format!(r#"{{"token":"{token}"}}"#)
    );
    assert_eq!(write(&AnonymousSignInRequest::<&str>::default()), "{}");
    assert_eq!(
        write(&AnonymousSignInRequest {
            provider_token: Some("pt:x")
        }),
        r#"{"provider_token":"pt:x"}"#
    );
}

#[test]
fn request_body_max_is_enough_for_the_largest_body() {
    // The largest body is `revoke` with an access token at capacity; the refresh body
    // with a refresh token and client id at capacity is smaller.
    let revoke = write(&RevokeRequest::new(jwt(ACCESS_TOKEN_MAX).as_str()));
    let refresh = write(&RefreshRequest::new(
        "e".repeat(ENV_ID_MAX).as_str(),
        "",
        GRANT_REFRESH_TOKEN,
        "r".repeat(REFRESH_TOKEN_MAX).as_str(),
    ));
    let provider = write(&ProviderTokenRequest::new(
        "a".repeat(APPID_MAX).as_str(),
        "c".repeat(PROVIDER_TOKEN_MAX).as_str(),
        ProviderParams::new(PROVIDER_CODE_TYPE_OPEN_ID, "a".repeat(APPID_MAX).as_str()),
    ));
    for body in [&revoke, &refresh, &provider] {
        assert!(body.len() <= REQUEST_BODY_MAX, "{}", body.len());
    }
}

#[test]
fn request_bodies_deserialize_as_the_server_will() {
    let r: RefreshRequest<StdString> = serde_json::from_str(
        r#"{"client_id":"env-1","client_secret":"","grant_type":"refresh_token","refresh_token":"rt-1"}"#,
    )
    .unwrap();
    assert_eq!(
        r,
        RefreshRequest::new(
            "env-1".to_string(),
            StdString::new(),
            "refresh_token".to_string(),
            "rt-1".to_string()
        )
    );
    // The browser path sends text/plain with whatever whitespace; extra fields appear
    // (`version` from stored v2 credentials, for instance); client_secret may be absent.
    let r: RefreshRequest<StdString> = serde_json::from_str(
        "\n  { \"refresh_token\" : \"rt-1\" ,\r\n\t\"grant_type\":\"refresh_token\", \"client_id\" : \"env-1\", \"version\": \"v1\", \"extra\": {\"a\": [1, 2.5]} }  \n",
    )
    .unwrap();
    assert_eq!(r.client_secret, "");
    assert_eq!(r.refresh_token, "rt-1");
    assert_eq!(r.client_id, "env-1");

    let p: ProviderTokenRequest<StdString> = serde_json::from_str(
        r#" {"provider_id": "wx0123456789abcdef", "provider_code": "wxlogin-code-1",
             "provider_params": {"provider_code_type": "open_id", "appid": "wx0123456789abcdef", "code": "phone-code"},
             "sync_profile": true} "#,
    )
    .unwrap();
    assert_eq!(
        p,
        ProviderTokenRequest::new(
            APPID.to_string(),
            "wxlogin-code-1".to_string(),
            ProviderParams::new("open_id".to_string(), APPID.to_string())
        )
    );

    let b: ProviderTokenBody<StdString> =
        serde_json::from_str("{ \"provider_token\" : \"pt:x\", \"provider_id\": \"wx\" }").unwrap();
    assert_eq!(b.provider_token, "pt:x");
    let v: RevokeRequest<StdString> =
        serde_json::from_str("\t{\"token\":\"eyJ.x.y\" , \"token_type_hint\": \"access_token\"}")
            .unwrap();
    assert_eq!(v.token, "eyJ.x.y");
    let a: AnonymousSignInRequest<StdString> = serde_json::from_str(" { } ").unwrap();
    assert_eq!(a.provider_token, None);
    let a: AnonymousSignInRequest<StdString> =
        serde_json::from_str(r#"{"provider_token":"pt:y","unknown":null}"#).unwrap();
    assert_eq!(a.provider_token.as_deref(), Some("pt:y"));

    // Whatever the core writes, the server reads back to the same values.
    let written = write(&RefreshRequest::new(
        "env-1",
        "",
        GRANT_REFRESH_TOKEN,
        "rt-1",
    ));
    let read: RefreshRequest<StdString> = serde_json::from_str(&written).unwrap();
    assert_eq!(read.refresh_token, "rt-1");
    let written = write(&ProviderTokenRequest::new(
        APPID,
        "code-1",
        ProviderParams::new(PROVIDER_CODE_TYPE_OPEN_ID, APPID),
    ));
    let read: ProviderTokenRequest<StdString> = serde_json::from_str(&written).unwrap();
    assert_eq!(read.provider_params.appid, APPID);

    // Missing required fields are refused (the server answers invalid_argument).
    assert!(serde_json::from_str::<RefreshRequest<StdString>>(r#"{"client_id":"e"}"#).is_err());
    assert!(serde_json::from_str::<RevokeRequest<StdString>>("{}").is_err());
    assert!(
        serde_json::from_str::<ProviderTokenRequest<StdString>>(
            r#"{"provider_id":"wx","provider_code":"c"}"#
        )
        .is_err()
    );
}
