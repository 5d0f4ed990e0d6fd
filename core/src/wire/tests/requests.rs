//! Request bodies: the exact JSON the SDK sends (§3 of docs/wire.md).

use super::*;

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
