//! The provider token reply, the user object, the error body, the reply classifier,
//! and serde round trips (§4–§6 of docs/wire.md).

use super::*;

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
fn server_error_keeps_the_texts_cut_on_a_char_boundary() {
    // 3-byte characters: the description capacity is not a multiple of 3.
    let long = "说".repeat(ERROR_DESCRIPTION_MAX);
    let body =
        format!(r#"{{"error":"invalid_argument","error_code":3,"error_description":"{long}"}}"#);
    let s = match decode_reply(400, body.as_bytes(), Credentials::parse) {
        Err(Error::Server(s)) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.name, "invalid_argument");
    assert!(s.description.len() <= ERROR_DESCRIPTION_MAX);
    assert!(s.description.len() > ERROR_DESCRIPTION_MAX - 3);
    assert!(long.starts_with(s.description.as_str()));
    assert_eq!(
        ErrorText::<4>::cut("ab说").as_str(),
        "ab",
        "a character that does not fit whole is left out"
    );
    assert_eq!(ErrorText::<4>::cut("abcdef").as_str(), "abcd");
    // Without a name the code is shown; the description follows the parenthesis.
    let s = ServerError::new(418, ServerErrorKind::Other, 4001).with_text("", "请输入验证码");
    assert_eq!(
        s.to_string(),
        "server refused (HTTP 418, error_code 4001): 请输入验证码"
    );
    assert_eq!(
        Error::Server(
            ServerError::new(400, ServerErrorKind::InvalidArgument, 3)
                .with_text("invalid_argument", "nickname too long")
        )
        .to_string(),
        "server refused (HTTP 400 invalid_argument): nickname too long"
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
        Some(Error::Server(
            ServerError::new(400, ServerErrorKind::InvalidGrant, 0).with_text("invalid_grant", "")
        ))
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
    assert_eq!(
        s,
        ServerError::new(400, ServerErrorKind::InvalidGrant, 3)
            .with_text("invalid_grant", "refresh token invalid")
    );
    assert_eq!(
        s.to_string(),
        "server refused (HTTP 400 invalid_grant): refresh token invalid"
    );

    let s = server(decode_reply(
        401,
        br#"{"error":"unauthenticated","error_code":16,"error_description":"invalid access token"}"#,
        Credentials::parse,
    ));
    assert_eq!(
        s,
        ServerError::new(401, ServerErrorKind::Unauthenticated, 16)
            .with_text("unauthenticated", "invalid access token")
    );

    // Kinds come from the name first, then from the status.
    for (status, name, kind) in [
        (400, "invalid_argument", ServerErrorKind::InvalidArgument),
        (403, "permission_denied", ServerErrorKind::PermissionDenied),
        // A disabled account, by the status this server sends it with.
        (403, "user_blocked", ServerErrorKind::PermissionDenied),
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
            .with_text("unauthenticated", "x")
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
    assert_eq!(s.to_string(), "server refused (HTTP 502)");
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

// ----- IntrospectReply ------------------------------------------------------------------

#[test]
fn introspect_reply_live_and_inactive() {
    // The documented live example (docs.cloudbase.net `auth-token-introspect`).
    let live = br#"{"token_type":"Bearer","client_id":"demo-app-2f8a9c3e1b4d","sub":"9876543210123456789","scope":"user sso"}"#;
    let p = IntrospectReply::parse(live).unwrap();
    assert!(p.is_active());
    assert!(!p.is_anonymous());
    assert_eq!(p.token_type, "Bearer");
    assert_eq!(p.client_id, "demo-app-2f8a9c3e1b4d");
    assert_eq!(p.sub, "9876543210123456789");
    assert_eq!((p.exp, p.iat), (0, 0));

    let p = IntrospectReply::parse(br#"{"sub":"1","scope":"anonymous","exp":20,"iat":10,"x":[1]}"#)
        .unwrap();
    assert!(p.is_anonymous());
    assert_eq!((p.exp, p.iat), (20, 10));

    // An inactive token answers `{}`, and `{}` is what the default serializes to.
    let inactive = IntrospectReply::parse(b"{}").unwrap();
    assert!(!inactive.is_active());
    assert_eq!(inactive, IntrospectReply::default());
    let mut buf = [0u8; 16];
    let n = serde_json_core::to_slice(&IntrospectReply::default(), &mut buf).unwrap();
    assert_eq!(&buf[..n], b"{}");

    assert!(IntrospectReply::parse(b"[]").is_err());
    assert!(IntrospectReply::parse(br#"{"sub":"a b"}"#).is_err());
    assert!(IntrospectReply::parse(br#"{"sub":"1","sub":"2"}"#).is_err());
}
