//! The browser demo at `/demo/` (adapters/wasm/demo, driven by a real browser in
//! adapters/wasm/browser): every file's status, content type, headers and bytes, the
//! redirect from `/demo`, and no demo in real WeChat mode.

use cloudbase_auth_server::demo::{DEMO_DIR, DEMO_PATH, FILES};
use cloudbase_auth_server::testing::{APPID, TestServer};
use cloudbase_auth_server::{WeChatApps, WeChatMode};
use std::path::Path;

/// The repository's copy of a demo file (what `include_bytes!` embedded).
fn source(name: &str) -> Vec<u8> {
    let dir = if name.ends_with(".html") || name == "demo.js" {
        "demo"
    } else {
        "js"
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../wasm")
        .join(dir)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn serves_every_demo_file_with_its_content_type() {
    let s = TestServer::start().await;
    let mut paths: Vec<(String, &str, &str)> = FILES
        .iter()
        .map(|(name, ct, _)| (format!("{DEMO_DIR}{name}"), *name, *ct))
        .collect();
    paths.push((
        DEMO_DIR.to_owned(),
        "index.html",
        "text/html; charset=utf-8",
    ));
    assert_eq!(paths.len(), 5);
    for (path, name, content_type) in paths {
        let resp = s
            .api
            .http
            .get(format!("{}{path}", s.api.base))
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status(), 200, "{path}");
        let header = |h: &str| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        let csp = header("content-security-policy");
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval'") && !csp.contains(" 'unsafe-eval'"),
            "{path}: {csp}"
        );
        let body = resp.bytes().await.expect("body");
        assert_eq!(
            body.as_ref(),
            source(name).as_slice(),
            "{path}: stale bytes"
        );
    }
    let wasm = FILES
        .iter()
        .find(|(name, ..)| name.ends_with(".wasm"))
        .expect("the module");
    assert_eq!(&wasm.2[..4], b"\0asm");
    s.stop().await;
}

#[tokio::test]
async fn demo_redirects_to_the_directory_and_the_page_loads_its_files() {
    let s = TestServer::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = http
        .get(format!("{}{DEMO_PATH}", s.api.base))
        .send()
        .await
        .expect("request sent");
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert_eq!(resp.headers()["location"], DEMO_DIR);

    // The page loads the other files relatively, so they resolve under /demo/.
    let page = s.api.get(DEMO_DIR).await.text;
    for needle in [r#"src="demo.js""#, r#"src="index.js""#] {
        assert!(page.contains(needle), "index.html lacks {needle}");
    }
    assert!(String::from_utf8_lossy(&source("demo.js")).contains("'cloudbase_auth.wasm'"));

    // Not a file server: anything else under /demo/ is the usual 404.
    for path in ["/demo/../Cargo.toml", "/demo/index.d.ts", "/demo/x"] {
        s.api.get(path).await.assert_error(404, "not_found");
    }
    let post = s.api.post(DEMO_DIR, "").await;
    assert_eq!(post.status, 405, "{}", post.text);
    s.stop().await;
}

#[tokio::test]
async fn real_mode_serves_no_demo() {
    let apps = format!("{APPID}:real-mode-secret");
    let real = TestServer::start_with(|c| {
        c.wechat.mode = WeChatMode::Real;
        c.wechat.apps = WeChatApps::parse_list(&apps).unwrap();
    })
    .await;
    for path in [
        DEMO_PATH,
        DEMO_DIR,
        "/demo/index.js",
        "/demo/cloudbase_auth.wasm",
    ] {
        real.api.get(path).await.assert_error(404, "not_found");
    }
    real.stop().await;
}
