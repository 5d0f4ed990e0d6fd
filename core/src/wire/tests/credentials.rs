//! The credentials reply (§4 of docs/wire.md): fields, types, capacities, and
//! damaged bodies.

use super::*;

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
