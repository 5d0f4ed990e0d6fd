//! One full session against the scripted CloudBase server, printed as a transcript:
//! init → getLoginState → signInAnonymously → getUserInfo → refresh → linkWeChat →
//! getUserInfo → signOut → restore into a fresh engine.
//!
//! `cargo run -p cloudbase-auth-core --features testing --example session`
//!
//! Requests are held (`auto_reply = false`) so each one is printed before the scripted
//! server answers it. Tokens are never printed: only which `authorization` scheme a
//! request carries, and body sizes.

use cloudbase_auth_core::testing::{APPID, ENV, Harness, T0};
use cloudbase_auth_core::{Config, Engine, Error, OpId};

/// How much of the harness's records has been printed.
#[derive(Default)]
struct Seen {
    changes: usize,
    completions: usize,
    stored: Option<Vec<u8>>,
}

fn stamp(h: &Harness) -> String {
    let ms = h.now - T0;
    format!("[t+{:>5}.{:03}s]", ms / 1000, ms % 1000)
}

/// `println!` with the harness clock in front.
macro_rules! say {
    ($h:expr, $($fmt:tt)*) => { println!("{} {}", stamp($h), format!($($fmt)*)) };
}

/// Prints the state changes, completions and storage writes not printed yet.
fn report(h: &Harness, seen: &mut Seen) {
    for (from, to) in &h.changes[seen.changes..] {
        say!(h, "  state  {from:?} -> {to:?}");
    }
    for (op, result) in &h.completions[seen.completions..] {
        say!(h, "  done   op#{} {result:?}", op.0);
    }
    (seen.changes, seen.completions) = (h.changes.len(), h.completions.len());
    let stored = h.stored.as_deref().map(<[u8]>::to_vec);
    if stored != seen.stored {
        match &stored {
            Some(b) => say!(h, "  store  snapshot, {} bytes", b.len()),
            None => say!(h, "  store  cleared"),
        }
        seen.stored = stored;
    }
}

/// Answers every held request with the scripted server, printing both sides.
fn serve(h: &mut Harness, seen: &mut Seen) {
    report(h, seen);
    while let Some(sent) = h.sent.first().cloned() {
        let auth = match sent.authorization.as_deref() {
            Some(a) => a.split(' ').next().unwrap_or("?"),
            None => "-",
        };
        let (method, path) = (sent.endpoint.method().as_str(), &sent.path);
        let body = match method {
            "GET" => String::new(),
            _ => format!(", body {} bytes", sent.body.len()),
        };
        say!(h, "→ {method} {path} (authorization: {auth}{body})");
        let reply = h.server.handle(&sent);
        say!(h, "← {}, {} bytes", reply.status, reply.body.len());
        let _ = h.reply_next_with(reply.status, &reply.body);
        report(h, seen);
    }
}

/// Starts an operation, runs it to the end, and prints what the host can read then.
fn call<F>(h: &mut Harness, seen: &mut Seen, name: &str, start: F)
where
    F: FnOnce(&mut Engine, u64) -> Result<OpId, Error>,
{
    let op = start(&mut h.engine, h.now).expect("call accepted");
    println!();
    say!(h, "{name}  (op#{})", op.0);
    h.run();
    serve(h, seen);
    show(h);
}

fn show(h: &Harness) {
    let e = &h.engine;
    let mut line = format!("  now    {:?}", e.login_state());
    if let Some(s) = e.session() {
        let left = s.expires_at_ms.saturating_sub(h.now) / 1000;
        line += &format!(", uid {}, token expires in {left} s", s.uid);
    }
    if let Some(u) = e.user().filter(|u| !u.nick_name.is_empty()) {
        line += &format!(", nick {:?}", u.nick_name);
        if !u.openid.is_empty() {
            line += &format!(", openid {}", u.openid);
        }
    }
    say!(h, "{line}");
}

fn main() {
    let mut h = Harness::uninit();
    h.auto_reply = false;
    let mut seen = Seen::default();

    say!(&h, "init(env = {ENV})");
    let config = Config::new(ENV);
    h.engine.init(h.now, config, [7; 16]).expect("valid config");
    h.run();
    report(&h, &mut seen);
    say!(&h, "  device id {}", h.engine.device_id());

    call(
        &mut h,
        &mut seen,
        "getLoginState()",
        Engine::get_login_state,
    );
    call(
        &mut h,
        &mut seen,
        "signInAnonymously()",
        Engine::sign_in_anonymously,
    );
    call(&mut h, &mut seen, "getUserInfo()", Engine::get_user_info);

    let due = h.deadline.expect("a refresh is scheduled");
    println!();
    let wait = (due - h.now) / 1000;
    say!(&h, "time passes to the refresh point (+{wait} s)");
    h.advance_to_deadline();
    serve(&mut h, &mut seen);
    show(&h);

    let code = h.server.mint_code("oExampleOpenid0000000000001");
    let link = |e: &mut Engine, t| e.link_wechat(t, &code, APPID);
    call(&mut h, &mut seen, "linkWeChat(code, appid)", link);
    call(&mut h, &mut seen, "getUserInfo()", Engine::get_user_info);
    let linked = h.stored.as_deref().map(<[u8]>::to_vec);

    call(&mut h, &mut seen, "signOut()", Engine::sign_out);

    let signed_out = h.stored.as_deref().map(<[u8]>::to_vec);
    for (what, bytes) in [
        ("the stored snapshot", signed_out),
        ("the snapshot from before signOut", linked),
    ] {
        let bytes = bytes.expect("stored");
        println!();
        let n = bytes.len();
        say!(&h, "restart: fresh engine, restore {what} ({n} bytes)");
        let result = h.restart_with(&bytes);
        report(&h, &mut seen);
        say!(&h, "  restore -> {result:?}");
        show(&h);
    }
}
