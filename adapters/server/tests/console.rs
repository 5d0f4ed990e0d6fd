//! The emulator console's admin routes (docs/emulator.md) and its page, in-process on
//! 127.0.0.1:0: each route without a token, with a wrong one, with bad input and with an
//! unknown uid; disabled users refused with `user_blocked`; sessions with device ids;
//! the paged search over 100,000 imported users; cross-origin changes refused.

use cloudbase_auth_server::testing::{APPID, ENV, Reply, TestServer};
use cloudbase_auth_server::transfer::Export;
use cloudbase_auth_server::{WeChatApps, WeChatMode};
use serde_json::{Value, json};

/// Sends `method path` with an optional bearer token, body and extra headers.
async fn call(
    s: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = s.api.http.request(method, format!("{}{path}", s.api.base));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        req = req.body(body.to_owned());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    s.api.send(req).await
}

async fn admin(s: &TestServer, method: &str, path: &str, body: Option<&str>) -> Reply {
    call(s, method, path, Some(&s.admin_token()), body, &[]).await
}

/// A WeChat user signed in through the emulator: its sign-in reply.
async fn wechat_user(s: &TestServer, openid: &str) -> Reply {
    let pt = s.api.wechat_provider_token(openid).await;
    let r = s.api.sign_in_with_provider(&pt).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

/// Every new admin route, with a body where it takes one.
fn routes(uid: &str) -> Vec<(&'static str, String, Option<&'static str>)> {
    vec![
        ("GET", "/emulator/v1/users?limit=10".to_owned(), None),
        ("GET", format!("/emulator/v1/users/{uid}"), None),
        (
            "PATCH",
            format!("/emulator/v1/users/{uid}"),
            Some(r#"{"name":"Ada"}"#),
        ),
        ("DELETE", format!("/emulator/v1/users/{uid}"), None),
        ("POST", format!("/emulator/v1/users/{uid}/disable"), None),
        ("POST", format!("/emulator/v1/users/{uid}/enable"), None),
        ("DELETE", format!("/emulator/v1/users/{uid}/sessions"), None),
        (
            "POST",
            "/emulator/v1/wechat/codes".to_owned(),
            Some(r#"{"appid":"wx0123456789abcdef","openid":"o-minted"}"#),
        ),
        ("GET", "/emulator/v1/wechat/exchanges".to_owned(), None),
        (
            "POST",
            "/emulator/v1/import".to_owned(),
            Some(r#"{"format":"cloudbase-auth-users","version":1,"users":[]}"#),
        ),
    ]
}

#[tokio::test]
async fn every_console_route_needs_the_admin_token() {
    let s = TestServer::start().await;
    let user = wechat_user(&s, "o-token-test").await;
    let uid = user.str("sub");
    for (method, path, body) in routes(&uid) {
        call(&s, method, &path, None, body, &[])
            .await
            .assert_error(401, "unauthenticated");
        call(&s, method, &path, Some("wrong-admin-token"), body, &[])
            .await
            .assert_error(401, "unauthenticated");
        // A user's access token is not the admin token.
        call(
            &s,
            method,
            &path,
            Some(&user.str("access_token")),
            body,
            &[],
        )
        .await
        .assert_error(401, "unauthenticated");
    }
    // Nothing changed: the user is still there, enabled, with its session.
    let me = s.api.me(&user.str("access_token")).await;
    assert_eq!(me.status, 200, "{}", me.text);
    s.stop().await;
}

#[tokio::test]
async fn unknown_uids_are_404_and_malformed_ones_400() {
    let s = TestServer::start().await;
    let long = "u".repeat(65);
    for (method, path, body) in routes("no-such-uid") {
        if !path.contains("no-such-uid") {
            continue;
        }
        admin(&s, method, &path, body)
            .await
            .assert_error(404, "not_found");
        for bad in ["bad%22uid", long.as_str()] {
            let path = path.replace("no-such-uid", bad);
            admin(&s, method, &path, body)
                .await
                .assert_error(400, "invalid_argument");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_invalid_argument() {
    let s = TestServer::start().await;
    let uid = wechat_user(&s, "o-bad-input").await.str("sub");
    for query in [
        "limit=0",
        "limit=501",
        "limit=ten",
        "q=o-bad-input",
        "after=x",
        "limit=5&env=x",
        "limit=5&after=bad%22uid",
        "limit=5&q=%01",
    ] {
        admin(&s, "GET", &format!("/emulator/v1/users?{query}"), None)
            .await
            .assert_error(400, "invalid_argument");
    }
    let user_path = format!("/emulator/v1/users/{uid}");
    for body in [
        "{}",
        "not json",
        r#"{"name":""}"#,
        r#"{"picture":"javascript:alert(1)"}"#,
        r#"{"name":"ok","uid":"other"}"#,
    ] {
        admin(&s, "PATCH", &user_path, Some(body))
            .await
            .assert_error(400, "invalid_argument");
    }
    for body in [
        "{}",
        r#"{"appid":"bad appid"}"#,
        r#"{"appid":"wx0123456789abcdef","openid":"has\"quote"}"#,
    ] {
        admin(&s, "POST", "/emulator/v1/wechat/codes", Some(body))
            .await
            .assert_error(400, "invalid_argument");
    }
    for body in [
        "[]",
        r#"{"format":"other","version":1,"users":[]}"#,
        r#"{"format":"cloudbase-auth-users","version":1,"users":[{"uid":"a b","env":"e","anonymous":true,"created_at":0,"updated_at":0}]}"#,
    ] {
        admin(&s, "POST", "/emulator/v1/import", Some(body))
            .await
            .assert_error(400, "invalid_argument");
    }
    // The user is untouched.
    let detail = admin(&s, "GET", &user_path, None).await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert!(detail.body["user"].get("name").is_none(), "{}", detail.text);
    s.stop().await;
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_refresh_or_use_its_token_until_enabled() {
    let s = TestServer::start().await;
    let first = wechat_user(&s, "o-disabled").await;
    let uid = first.str("sub");
    let access = first.str("access_token");
    let refresh = first.str("refresh_token");

    let disabled = admin(
        &s,
        "POST",
        &format!("/emulator/v1/users/{uid}/disable"),
        None,
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert!(
        disabled.body["user"]["disabled_at"].is_i64(),
        "{}",
        disabled.text
    );

    s.api.me(&access).await.assert_error(403, "user_blocked");
    s.api
        .refresh(&refresh)
        .await
        .assert_error(403, "user_blocked");
    let pt = s.api.wechat_provider_token("o-disabled").await;
    s.api
        .sign_in_with_provider(&pt)
        .await
        .assert_error(403, "user_blocked");
    let introspected = s
        .api
        .get(&format!("/auth/v1/token/introspect?token={access}"))
        .await;
    assert_eq!(introspected.body, json!({}), "{}", introspected.text);
    // The refused sign-in started no session; the disabled user's one is still there.
    let detail = admin(&s, "GET", &format!("/emulator/v1/users/{uid}"), None).await;
    assert_eq!(detail.body["sessions"].as_array().unwrap().len(), 1);
    // The listing shows it disabled.
    let page = admin(&s, "GET", "/emulator/v1/users?limit=10&q=o-disabled", None).await;
    assert_eq!(page.body["users"][0]["uid"], uid.as_str());
    assert!(page.body["users"][0]["disabled_at"].is_i64());

    let enabled = admin(
        &s,
        "POST",
        &format!("/emulator/v1/users/{uid}/enable"),
        None,
    )
    .await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert!(enabled.body["user"].get("disabled_at").is_none());
    assert_eq!(s.api.me(&access).await.status, 200);
    // The refresh token refused while disabled was not rotated: it works now.
    let refreshed = s.api.refresh(&refresh).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let again = wechat_user(&s, "o-disabled").await;
    assert_eq!(again.str("sub"), uid);
    s.stop().await;
}

#[tokio::test]
async fn sessions_show_their_device_and_last_use_and_revoke_ends_them_all() {
    let s = TestServer::start().await;
    let anon = call(
        &s,
        "POST",
        &format!("/auth/v1/signin/anonymously?client_id={ENV}"),
        None,
        Some("{}"),
        &[("x-device-id", "device-one")],
    )
    .await;
    assert_eq!(anon.status, 200, "{}", anon.text);
    let uid = anon.str("sub");
    let refreshed = s.api.refresh(&anon.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);

    let path = format!("/emulator/v1/users/{uid}");
    let detail = admin(&s, "GET", &path, None).await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    let sessions = detail.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{}", detail.text);
    assert_eq!(sessions[0]["device_id"], "device-one");
    assert!(sessions[0]["last_used_at"].is_i64(), "{}", detail.text);
    assert_eq!(detail.body["user"]["anonymous"], true);
    assert!(detail.body["user"]["last_sign_in_at"].is_i64());
    assert!(!detail.text.contains(&refreshed.str("refresh_token")));

    let revoked = admin(&s, "DELETE", &format!("{path}/sessions"), None).await;
    assert_eq!(revoked.body, json!({"revoked": 1}), "{}", revoked.text);
    s.api
        .me(&refreshed.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");
    s.api
        .refresh(&refreshed.str("refresh_token"))
        .await
        .assert_error(400, "invalid_grant");
    let detail = admin(&s, "GET", &path, None).await;
    assert_eq!(detail.body["sessions"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn profile_edit_and_delete() {
    let s = TestServer::start().await;
    let user = wechat_user(&s, "o-profile").await;
    let path = format!("/emulator/v1/users/{}", user.str("sub"));
    let edited = admin(
        &s,
        "PATCH",
        &path,
        Some(r#"{"name":"Ada","picture":"https://example.com/a.png"}"#),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["user"]["name"], "Ada");
    let me = s.api.me(&user.str("access_token")).await;
    assert_eq!(me.body["name"], "Ada", "{}", me.text);
    // Nickname search finds it.
    let page = admin(&s, "GET", "/emulator/v1/users?limit=5&q=Ada", None).await;
    assert_eq!(page.body["users"][0]["uid"], user.str("sub").as_str());

    let deleted = admin(&s, "DELETE", &path, None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    admin(&s, "GET", &path, None)
        .await
        .assert_error(404, "not_found");
    s.api
        .me(&user.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");
    s.stop().await;
}

#[tokio::test]
async fn minted_codes_sign_in_and_exchanges_are_listed_without_the_code() {
    let s = TestServer::start().await;
    let minted = admin(
        &s,
        "POST",
        "/emulator/v1/wechat/codes",
        Some(&json!({"appid": APPID, "openid": "o-console-minted"}).to_string()),
    )
    .await;
    assert_eq!(minted.status, 200, "{}", minted.text);
    assert_eq!(minted.str("openid"), "o-console-minted");
    let code = minted.str("code");
    let pt = s.api.provider_token(APPID, &code).await;
    assert_eq!(pt.status, 200, "{}", pt.text);
    let signed_in = s.api.sign_in_with_provider(&pt.str("provider_token")).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    // The same code again: WeChat's "code been used".
    let again = s.api.provider_token(APPID, &code).await;
    assert_eq!(again.status, 400, "{}", again.text);

    let listed = admin(&s, "GET", "/emulator/v1/wechat/exchanges", None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let exchanges = listed.body["exchanges"].as_array().unwrap();
    assert_eq!(exchanges.len(), 2, "{}", listed.text);
    // Newest first.
    assert_eq!(exchanges[0]["errcode"], 40163);
    assert_eq!(exchanges[1]["errcode"], 0);
    assert_eq!(exchanges[1]["openid"], "o-console-minted");
    assert_eq!(exchanges[1]["appid"], APPID);
    assert!(!listed.text.contains(&code), "codes are never listed");

    // A reset forgets them.
    assert_eq!(
        admin(&s, "DELETE", "/emulator/v1/data", None).await.status,
        200
    );
    let listed = admin(&s, "GET", "/emulator/v1/wechat/exchanges", None).await;
    assert_eq!(listed.body["exchanges"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn export_reset_import_restores_the_users() {
    let s = TestServer::start().await;
    let wx = wechat_user(&s, "o-round-trip").await;
    let uid = wx.str("sub");
    admin(
        &s,
        "POST",
        &format!("/emulator/v1/users/{uid}/disable"),
        None,
    )
    .await;
    let exported = admin(&s, "GET", "/emulator/v1/export", None).await;
    assert_eq!(exported.status, 200, "{}", exported.text);
    assert_eq!(
        admin(&s, "DELETE", "/emulator/v1/data", None).await.status,
        200
    );
    let empty = admin(&s, "GET", "/emulator/v1/users?limit=5", None).await;
    assert_eq!(empty.body["users"], json!([]));

    let imported = admin(&s, "POST", "/emulator/v1/import", Some(&exported.text)).await;
    assert_eq!(imported.body, json!({"imported": 1}), "{}", imported.text);
    let page = admin(&s, "GET", "/emulator/v1/users?limit=5", None).await;
    assert_eq!(page.body["users"][0]["uid"], uid.as_str());
    assert!(
        page.body["users"][0]["disabled_at"].is_i64(),
        "disabled survives"
    );
    // Importing the same openid under another uid is refused as a whole.
    let mut doc: Value = exported.body.clone();
    doc["users"][0]["uid"] = json!("another-uid");
    admin(&s, "POST", "/emulator/v1/import", Some(&doc.to_string()))
        .await
        .assert_error(400, "invalid_argument");
    s.stop().await;
}

#[tokio::test]
async fn admin_changes_from_another_origin_are_refused() {
    let s = TestServer::start().await;
    let uid = wechat_user(&s, "o-origin").await.str("sub");
    let token = s.admin_token();
    let host = s.api.base.trim_start_matches("http://").to_owned();
    let own = format!("http://{host}");
    let disable = format!("/emulator/v1/users/{uid}/disable");
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "null")],
        vec![("origin", own.as_str()), ("sec-fetch-site", "cross-site")],
    ] {
        call(&s, "POST", &disable, Some(&token), None, &headers)
            .await
            .assert_error(403, "permission_denied");
        call(
            &s,
            "DELETE",
            "/emulator/v1/data",
            Some(&token),
            None,
            &headers,
        )
        .await
        .assert_error(403, "permission_denied");
    }
    // Nothing was disabled or deleted.
    let detail = admin(&s, "GET", &format!("/emulator/v1/users/{uid}"), None).await;
    assert!(
        detail.body["user"].get("disabled_at").is_none(),
        "{}",
        detail.text
    );
    // The console's own origin is accepted.
    let ok = call(
        &s,
        "POST",
        &disable,
        Some(&token),
        None,
        &[("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    s.stop().await;
}

#[tokio::test]
async fn the_console_page_is_served_with_a_strict_csp_in_emulated_mode_only() {
    let s = TestServer::start().await;
    let page = s.api.get("/console/").await;
    assert_eq!(page.status, 200);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("style-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(
        page.text
            .contains(r#"<script src="console.js" defer></script>"#)
    );
    // No inline script, handler or style.
    assert_eq!(page.text.matches("<script").count(), 1);
    assert!(!page.text.contains(" onclick=") && !page.text.contains(" style="));
    assert!(!page.text.contains(&s.admin_token()));
    for file in ["console.js", "console.css", "index.html"] {
        let r = s.api.get(&format!("/console/{file}")).await;
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
    }
    assert_eq!(
        s.api.get("/console/console.js").await.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    s.stop().await;

    let apps = format!("{APPID}:real-mode-secret");
    let real = TestServer::start_with(|c| {
        c.wechat.mode = WeChatMode::Real;
        c.wechat.apps = WeChatApps::parse_list(&apps).unwrap();
        c.wechat.base_url = "http://127.0.0.1:9".into();
    })
    .await;
    for path in ["/console/", "/console/console.js", "/emulator/v1/users/x"] {
        real.api.get(path).await.assert_error(404, "not_found");
    }
    real.stop().await;
}

/// 100,000 users imported at start (the `--import` path), then paged through 500 at a
/// time: every user exactly once, in uid order, each page one keyset lookup (the store's
/// unit test checks that every page statement is an index search). A search finds one
/// user among them by openid, by nickname and by uid prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_users_page_through_by_keyset() {
    const USERS: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let users: Vec<Value> = (0..USERS)
        .map(|i| {
            json!({"uid": format!("u{i:07}"), "env": ENV, "anonymous": false,
                   "created_at": 1_700_000_000 + i, "updated_at": 1_700_000_000 + i,
                   "name": format!("user {i}"),
                   "identities": [{"appid": APPID, "openid": format!("o-{i:07}")}]})
        })
        .collect();
    let doc = json!({"format": "cloudbase-auth-users", "version": 1, "users": users});
    let file = dir.path().join("users.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let _: Export = serde_json::from_value(doc).unwrap();
    let s = TestServer::start_with(|c| c.import = Some(file)).await;

    let mut seen = 0usize;
    let mut last = String::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(a) => format!("/emulator/v1/users?limit=500&after={a}"),
            None => "/emulator/v1/users?limit=500".to_owned(),
        };
        let page = admin(&s, "GET", &path, None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for u in page.body["users"].as_array().unwrap() {
            let uid = u["uid"].as_str().unwrap().to_owned();
            assert!(uid > last, "uid order");
            last = uid;
            seen += 1;
        }
        pages += 1;
        assert!(pages <= USERS / 500 + 1, "paging terminates");
        match page.body["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, USERS);
    assert_eq!(pages, USERS / 500);

    for q in ["o-0054321", "user%2054321", "u0054321"] {
        let found = admin(
            &s,
            "GET",
            &format!("/emulator/v1/users?limit=10&q={q}"),
            None,
        )
        .await;
        let list = found.body["users"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{q}: {}", found.text);
        assert_eq!(list[0]["uid"], "u0054321");
    }
    // A uid prefix matching 10 users, paged 4 at a time.
    let first = admin(&s, "GET", "/emulator/v1/users?limit=4&q=u009999", None).await;
    assert_eq!(first.body["users"].as_array().unwrap().len(), 4);
    assert_eq!(first.body["next_after"], "u0099993");
    s.stop().await;
}
