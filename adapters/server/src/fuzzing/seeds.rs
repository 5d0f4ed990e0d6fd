//! The seeds of `server_request`: every flow of the API and its error paths, written
//! with the core's request types.

use super::Seed;
use super::input::{
    FUZZ_APPID, FuzzRequest, METHODS, Pick, encode_requests, known_headers, known_paths,
};
use crate::demo::{DEMO_DIR, DEMO_PATH};
use crate::emulator_api::{DATA_PATH, EXPORT_PATH, USERS_PATH};
use crate::routes::JWKS_PATH;
use crate::wechat::JSCODE2SESSION_PATH;
use axum::http::Method;
use cloudbase_auth_core::wire::{
    self, DEFAULT_API_PATH, Endpoint, HEADER_AUTHORIZATION, HEADER_CONTENT_TYPE, HEADER_DEVICE_ID,
};
use cloudbase_auth_server_api::{HEALTH_PATH, LOGIN_CODE_PATH};

/// The env the seeds sign in to.
const SEED_ENV: &str = "fuzz-env";

fn req(
    method: &Method,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> FuzzRequest {
    // The table entry equal to `raw`, else the raw bytes.
    fn pick<T: AsRef<str>>(table: &[T], raw: &str) -> Pick {
        table.iter().position(|t| t.as_ref() == raw).map_or_else(
            || Pick::Raw(raw.as_bytes().to_vec()),
            |i| Pick::Known(i as u8),
        )
    }
    FuzzRequest {
        method: pick(&METHODS, method.as_str()),
        path: pick(known_paths(), path),
        query: query.as_bytes().to_vec(),
        headers: headers
            .iter()
            .map(|(n, v)| (pick(known_headers(), n), v.as_bytes().to_vec()))
            .collect(),
        body: body.as_bytes().to_vec(),
        pad_kib: 0,
    }
}

fn api(endpoint: Endpoint) -> String {
    format!("{DEFAULT_API_PATH}{}", endpoint.path())
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serializable")
}

/// The requests of a real session, as the SDK sends them (bodies from the core's types).
fn sign_in_anonymously() -> FuzzRequest {
    let body = json(&wire::AnonymousSignInRequest::<&str>::default());
    req(
        &Method::POST,
        &api(Endpoint::SignInAnonymously),
        &client_id(),
        &[
            (HEADER_CONTENT_TYPE, "application/json"),
            (HEADER_DEVICE_ID, "0123456789abcdef0123456789abcdef"),
        ],
        &body,
    )
}

fn client_id() -> String {
    format!("{}={SEED_ENV}", wire::CLIENT_ID_PARAM)
}

fn user_me() -> FuzzRequest {
    user_me_with("Bearer $A")
}

fn user_me_with(authorization: &str) -> FuzzRequest {
    req(
        &Method::GET,
        &api(Endpoint::UserMe),
        "",
        &[(HEADER_AUTHORIZATION, authorization)],
        "",
    )
}

/// `token/introspect` of the session's access token, naming the env the inputs sign in to.
fn introspect() -> FuzzRequest {
    req(
        &Method::GET,
        &api(Endpoint::TokenIntrospect),
        &client_id(),
        &[(HEADER_AUTHORIZATION, "Bearer $A")],
        "",
    )
}

fn refresh() -> FuzzRequest {
    let body = json(&wire::RefreshRequest::new(
        SEED_ENV,
        "",
        wire::GRANT_REFRESH_TOKEN,
        "$R",
    ));
    req(
        &Method::POST,
        &api(Endpoint::Token),
        &client_id(),
        &[],
        &body,
    )
}

fn login_code(extra: &str) -> FuzzRequest {
    let body =
        format!(r#"{{"appid":"{FUZZ_APPID}","openid":"oFuzzUser0123456789abcdefgh"{extra}}}"#);
    req(&Method::POST, LOGIN_CODE_PATH, "", &[], &body)
}

fn provider_token() -> FuzzRequest {
    let params = wire::ProviderParams::new(wire::PROVIDER_CODE_TYPE_OPEN_ID, FUZZ_APPID);
    let body = json(&wire::ProviderTokenRequest::new(FUZZ_APPID, "$C", params));
    req(
        &Method::POST,
        &api(Endpoint::ProviderToken),
        &client_id(),
        &[],
        &body,
    )
}

fn with_provider(endpoint: Endpoint, bearer: bool) -> FuzzRequest {
    let body = json(&wire::ProviderTokenBody::new("$P"));
    let (query, headers): (String, &[(&str, &str)]) = if bearer {
        (String::new(), &[(HEADER_AUTHORIZATION, "Bearer $A")])
    } else {
        (client_id(), &[])
    };
    req(&Method::POST, &api(endpoint), &query, headers, &body)
}

fn admin(method: &Method, path: &str, token: &str) -> FuzzRequest {
    req(
        method,
        path,
        "",
        &[(HEADER_AUTHORIZATION, &format!("Bearer {token}"))],
        "",
    )
}

/// Seeds of `server_request`: every flow of the API reference and its error paths.
pub fn server_request_seeds() -> Vec<Seed> {
    let revoke = req(
        &Method::POST,
        &api(Endpoint::Revoke),
        &client_id(),
        &[],
        &json(&wire::RevokeRequest::new("$A")),
    );
    let sign_out = req(
        &Method::POST,
        &api(Endpoint::UserSignOut),
        "",
        &[(HEADER_AUTHORIZATION, "Bearer $A")],
        "{}",
    );
    let jscode2session = req(
        &Method::GET,
        JSCODE2SESSION_PATH,
        &format!("appid={FUZZ_APPID}&secret=fuzz-secret&js_code=$C&grant_type=authorization_code"),
        &[],
        "",
    );
    let mut too_large = req(
        &Method::POST,
        &api(Endpoint::SignInAnonymously),
        &client_id(),
        &[],
        "{}",
    );
    too_large.pad_kib = 70;
    let preflight = req(
        &Method::OPTIONS,
        &api(Endpoint::Token),
        "",
        &[
            ("origin", "https://servicewechat.com"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type, x-request-id",
            ),
        ],
        "",
    );
    let seeds: Vec<(&'static str, Vec<FuzzRequest>)> = vec![
        (
            "anonymous_session",
            vec![
                sign_in_anonymously(),
                user_me(),
                introspect(),
                refresh(),
                user_me(),
                revoke.clone(),
                user_me(),
                introspect(),
            ],
        ),
        (
            "refresh_reuse",
            vec![
                sign_in_anonymously(),
                refresh(),
                refresh(),
                sign_out.clone(),
                refresh(),
            ],
        ),
        (
            "wechat_sign_in",
            vec![
                login_code(""),
                provider_token(),
                with_provider(Endpoint::SignInWithProvider, false),
                user_me(),
                sign_out,
            ],
        ),
        (
            "link_anonymous_to_wechat",
            vec![
                sign_in_anonymously(),
                login_code(r#","unionid":"uFuzzUnion""#),
                provider_token(),
                with_provider(Endpoint::ProviderBind, true),
                refresh(),
                user_me(),
            ],
        ),
        (
            "code_reused",
            vec![
                login_code(""),
                provider_token(),
                provider_token(),
                jscode2session.clone(),
            ],
        ),
        (
            "jscode2session",
            vec![login_code(""), jscode2session.clone(), jscode2session],
        ),
        (
            "wechat_busy",
            vec![
                login_code(r#","fault":"busy""#),
                provider_token(),
                login_code(r#","fault":"blocked""#),
                provider_token(),
            ],
        ),
        (
            "account",
            vec![
                sign_in_anonymously(),
                req(
                    &Method::PATCH,
                    &api(Endpoint::UserProfile),
                    "",
                    &[(HEADER_AUTHORIZATION, "Bearer $A")],
                    &json(&wire::ProfileUpdateRequest::new(
                        Some("小明"),
                        Some("https://a.example/m.png"),
                    )),
                ),
                req(
                    &Method::PATCH,
                    &api(Endpoint::UserProfile),
                    "",
                    &[(HEADER_AUTHORIZATION, "Bearer $A")],
                    r#"{"name":""}"#,
                ),
                user_me_with("Bearer $A"),
                req(
                    &Method::DELETE,
                    &api(Endpoint::DeleteMe),
                    "",
                    &[(HEADER_AUTHORIZATION, "Bearer $A")],
                    "",
                ),
                user_me_with("Bearer $A"),
            ],
        ),
        (
            "wechat_noauth",
            vec![
                req(
                    &Method::POST,
                    &api(Endpoint::SignInWeChatNoAuth),
                    &client_id(),
                    &[],
                    "{}",
                ),
                with_provider(Endpoint::SignInWeChatNoAuth, false),
            ],
        ),
        (
            "admin_routes",
            vec![
                sign_in_anonymously(),
                admin(&Method::GET, USERS_PATH, "$K"),
                admin(&Method::GET, &format!("{USERS_PATH}?env={SEED_ENV}"), "$K"),
                admin(&Method::GET, EXPORT_PATH, "$K"),
                admin(&Method::DELETE, DATA_PATH, "$A"),
                admin(&Method::DELETE, DATA_PATH, "$K"),
            ],
        ),
        (
            "static_routes",
            vec![
                req(&Method::GET, HEALTH_PATH, "", &[], ""),
                req(&Method::GET, JWKS_PATH, "", &[], ""),
                req(&Method::GET, DEMO_PATH, "", &[], ""),
                req(&Method::GET, &format!("{DEMO_DIR}index.js"), "", &[], ""),
                req(&Method::HEAD, DEMO_DIR, "", &[], ""),
            ],
        ),
        (
            "bad_requests",
            vec![
                req(&Method::GET, "/auth/v1/nothing", "", &[], ""),
                req(&Method::PUT, &api(Endpoint::UserMe), "", &[], ""),
                req(
                    &Method::POST,
                    &api(Endpoint::SignInAnonymously),
                    "",
                    &[],
                    "{}",
                ),
                req(
                    &Method::POST,
                    &api(Endpoint::SignInAnonymously),
                    "client_id=bad%20env",
                    &[],
                    "{}",
                ),
                req(
                    &Method::POST,
                    &api(Endpoint::Token),
                    &client_id(),
                    &[],
                    r#"{"grant_type":7}"#,
                ),
                req(
                    &Method::POST,
                    &api(Endpoint::Token),
                    &client_id(),
                    &[],
                    "{\"refresh_token\":\"\\ud800\"}",
                ),
                user_me_with("Bearer eyJhbGciOiJub25lIn0.e30."),
                too_large,
                preflight,
                req(
                    &Method::from_bytes(b"BREW").expect("a token"),
                    HEALTH_PATH,
                    "",
                    &[("x-custom", "1")],
                    "",
                ),
            ],
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, requests)| (name, encode_requests(&requests)))
        .collect()
}
