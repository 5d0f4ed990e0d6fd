//! The committed seeds of `fuzz/corpus/wasm_abi/`: call sequences that reach every
//! export, signed in and out, with good and hostile values.

use super::encode;
use super::grammar::*;

fn input(call: Call) -> Step {
    Step::Input { call, drain: true }
}

fn undrained(call: Call) -> Step {
    Step::Input { call, drain: false }
}

fn init_call(time: Time, env: Text, env_pair: Pair, seed_pair: Pair) -> Call {
    Call::Init {
        time,
        at: 0,
        env,
        env_pair,
        client: Text::Good,
        client_pair: Pair::Placed,
        seed: 7,
        seed_pair,
    }
}

fn init() -> Step {
    input(init_call(
        Time::Clock,
        Text::Good,
        Pair::Placed,
        Pair::Placed,
    ))
}

fn answer(reply: Reply) -> Step {
    input(Call::Answer {
        time: Time::Clock,
        at: 8,
        id: Id::Recent(0),
        reply,
        pair: Pair::Placed,
    })
}

fn respond(status: Status, body: &[u8], pair: Pair) -> Step {
    input(Call::Respond {
        time: Time::Clock,
        at: 8,
        id: Id::Recent(0),
        status,
        body: body.to_vec(),
        pair,
    })
}

fn wechat(code: Text, code_pair: Pair) -> WeChat {
    WeChat {
        time: Time::Clock,
        at: 4,
        code,
        code_pair,
        appid: Text::Good,
        appid_pair: Pair::Placed,
    }
}

fn hostile(ptr: u8, len: u8, extra: u16) -> Pair {
    Pair::Hostile { ptr, len, extra }
}

fn restore(snap: Snap) -> Step {
    input(Call::Restore {
        time: Time::Clock,
        at: 16,
        snap,
        pair: Pair::Placed,
    })
}

/// Init, anonymous sign-in, its credentials and user replies.
fn signed_in_anonymously() -> Vec<Step> {
    vec![
        init(),
        input(Call::SignInAnonymously(Time::Clock)),
        answer(Reply::Good),
        answer(Reply::Good),
    ]
}

/// The committed seeds of `fuzz/corpus/wasm_abi/`: (file name, bytes).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = Vec::new();
    let mut seed = |name, steps: Vec<Step>| v.push((name, encode(&steps)));

    seed("anonymous_session", {
        let mut s = signed_in_anonymously();
        s.extend([
            Step::Session,
            Step::User,
            input(Call::GetUserInfo(Time::Clock)),
            answer(Reply::Good),
            input(Call::GetLoginState(Time::Clock)),
            input(Call::SignInAnonymously(Time::Clock)),
            // To the refresh time: the refresh goes out; answered.
            Step::Advance(7_170_000),
            input(Call::Timeout(Time::Deadline)),
            answer(Reply::Good),
            Step::Session,
            input(Call::SignOut(Time::Clock)),
            answer(Reply::Good),
            input(Call::GetUserInfo(Time::Clock)),
            Step::LoginState,
            Step::Buf,
        ]);
        s
    });

    seed("wechat_sign_in_and_link", {
        let mut s = signed_in_anonymously();
        s.extend([
            input(Call::LinkWeChat(wechat(Text::Good, Pair::Placed))),
            answer(Reply::Good), // provider token
            answer(Reply::Good), // bind
            answer(Reply::Good), // refresh: now WeChat
            answer(Reply::Good), // user
            Step::User,
            input(Call::SignInWithWeChat(wechat(
                Text::Canned(3),
                Pair::Placed,
            ))),
            answer(Reply::Good),
            answer(Reply::Good),
            answer(Reply::Good),
            Step::Session,
            input(Call::SignOut(Time::Clock)),
            input(Call::TransportError {
                time: Time::Clock,
                id: Id::Recent(0),
            }),
            // Link refused: not anonymous; a bad code and appId.
            input(Call::LinkWeChat(wechat(Text::Good, Pair::Placed))),
            input(Call::SignInWithWeChat(wechat(
                Text::Canned(5),
                Pair::Placed,
            ))),
            input(Call::SignInWithWeChat(WeChat {
                appid: Text::Canned(6),
                ..wechat(Text::Good, Pair::Placed)
            })),
        ]);
        s
    });

    seed("restore_snapshot", {
        let mut s = signed_in_anonymously();
        s.extend([
            Step::Reset,
            init(),
            restore(Snap::Last),
            Step::Session,
            Step::User,
            restore(Snap::Last), // too late
            Step::Reset,
            init(),
            restore(Snap::Flipped { at: 5, mask: 0x40 }),
            Step::Reset,
            init(),
            restore(Snap::Bytes(b"not a snapshot".to_vec())),
            Step::Reset,
            init(),
            restore(Snap::Bytes(Vec::new())),
            // Another env's snapshot is left alone.
            Step::Reset,
            input(init_call(
                Time::Clock,
                Text::Canned(4),
                Pair::Placed,
                Pair::Placed,
            )),
            restore(Snap::Last),
            input(Call::SignInAnonymously(Time::Clock)),
        ]);
        s
    });

    seed("hostile_pointers", {
        let mut s = Vec::new();
        // Every pointer choice, with the placed length and others.
        for (ptr, len) in [
            (1, 0),
            (2, 2),
            (3, 0),
            (4, 2),
            (5, 5),
            (6, 0),
            (7, 9),
            (8, 9),
        ] {
            s.push(input(init_call(
                Time::Clock,
                Text::Good,
                hostile(ptr, len, 40),
                Pair::Placed,
            )));
        }
        for len in [3, 4, 5, 6, 7, 8, 10, 11] {
            s.push(input(init_call(
                Time::Clock,
                Text::Good,
                hostile(0, len, 0),
                Pair::Placed,
            )));
        }
        // The seed cut at the buffer's end; an empty env at the very end.
        s.push(input(init_call(
            Time::Clock,
            Text::Good,
            Pair::Placed,
            hostile(5, 0, 0),
        )));
        s.push(input(init_call(
            Time::Clock,
            Text::Good,
            hostile(4, 1, 0),
            Pair::Placed,
        )));
        s.extend([
            init(),
            input(Call::SignInAnonymously(Time::Clock)),
            // The whole buffer as a body: over the core's limit.
            Step::Write {
                at: 0,
                bytes: vec![b' '; 200],
            },
            respond(Status::Table(0), b"{}", hostile(8, 4, 0)),
            input(Call::SignInAnonymously(Time::Clock)),
            respond(Status::Table(0), b"{}", hostile(9, 0, 1)),
            respond(Status::Table(0), b"{}", hostile(0, 11, 0)),
            input(Call::LinkWeChat(wechat(Text::Good, hostile(3, 3, 0)))),
            // A pointer into bytes the host wrote.
            Step::Write {
                at: 100,
                bytes: b"\xff\xfe not text".to_vec(),
            },
            input(Call::SignInWithWeChat(wechat(
                Text::Good,
                hostile(8, 9, 100),
            ))),
            input(Call::Restore {
                time: Time::Clock,
                at: 255,
                snap: Snap::Bytes(vec![0xAA; 300]),
                pair: hostile(0, 7, 0),
            }),
        ]);
        s
    });

    seed("undrained_inputs", {
        vec![
            undrained(init_call(
                Time::Clock,
                Text::Good,
                Pair::Placed,
                Pair::Placed,
            )),
            undrained(Call::SignInAnonymously(Time::Clock)),
            undrained(Call::Timeout(Time::Clock)),
            Step::Session,
            Step::Poll,
            Step::Poll,
            undrained(Call::SignInAnonymously(Time::Clock)),
            Step::Poll,
            undrained(Call::Answer {
                time: Time::Clock,
                at: 8,
                id: Id::Recent(0),
                reply: Reply::Good,
                pair: Pair::Placed,
            }),
            Step::Drain,
            undrained(Call::Answer {
                time: Time::Clock,
                at: 8,
                id: Id::Recent(0),
                reply: Reply::Good,
                pair: Pair::Placed,
            }),
            Step::Poll,
            Step::LoginState,
            input(Call::GetUserInfo(Time::Clock)),
            Step::Drain,
            undrained(Call::Timeout(Time::Special(0))),
            undrained(Call::SignOut(Time::Clock)),
        ]
    });

    seed("bad_times_and_statuses", {
        let mut s = Vec::new();
        for i in 0..8 {
            s.push(input(init_call(
                Time::Special(i),
                Text::Good,
                Pair::Placed,
                Pair::Placed,
            )));
            s.push(input(Call::Timeout(Time::Special(i))));
        }
        s.extend([
            input(Call::Timeout(Time::Raw(0x7FF0_0000_0000_0001))),
            input(Call::Timeout(Time::Frac)),
            input(Call::Timeout(Time::Back(1000))),
            input(Call::SignInAnonymously(Time::Clock)),
            respond(Status::Raw(70_000), b"{}", Pair::Placed),
            respond(Status::Raw(u32::MAX), b"{}", Pair::Placed),
            input(Call::TransportError {
                time: Time::Clock,
                id: Id::Raw(7, 9),
            }),
            respond(Status::Table(8), b"<html>502</html>", Pair::Placed),
        ]);
        s
    });

    seed("server_errors_and_refresh", {
        let mut s = signed_in_anonymously();
        s.extend([
            // The server says the token is bad: one refresh, then user/me again.
            input(Call::GetUserInfo(Time::Clock)),
            answer(Reply::Unauthenticated),
            answer(Reply::Good),
            answer(Reply::Good),
            input(Call::GetUserInfo(Time::Clock)),
            answer(Reply::Unavailable),
            // The refresh is refused: the anonymous session signs in again.
            Step::Advance(7_170_000),
            input(Call::Timeout(Time::Deadline)),
            answer(Reply::InvalidGrant),
            answer(Reply::Good),
            answer(Reply::Good),
            // A WeChat code refused; a garbage credentials reply.
            input(Call::SignInWithWeChat(wechat(Text::Good, Pair::Placed))),
            answer(Reply::InvalidGrant),
            input(Call::SignInWithWeChat(wechat(Text::Good, Pair::Placed))),
            answer(Reply::Good),
            respond(Status::Table(0), br#"{"access_token":1}"#, Pair::Placed),
        ]);
        s
    });

    seed("expiry_and_request_timeouts", {
        vec![
            init(),
            input(Call::SignInAnonymously(Time::Clock)),
            answer(Reply::NoRefresh),
            answer(Reply::Good),
            // No refresh token: the session expires at its deadline.
            Step::Advance(7_200_000),
            input(Call::Timeout(Time::Deadline)),
            Step::Session,
            // A request that times out, then its late reply (stale).
            input(Call::SignInAnonymously(Time::Clock)),
            Step::Advance(20_000),
            input(Call::Timeout(Time::Clock)),
            answer(Reply::Good),
            // A lifetime far past 2^53 ms.
            input(Call::SignInAnonymously(Time::Clock)),
            answer(Reply::Expires(u64::MAX / 1000)),
            answer(Reply::Good),
            input(Call::Timeout(Time::Deadline)),
        ]
    });

    seed("profile_and_deletion", {
        let update = |nickname, nickname_pair, avatar, fields| Call::UpdateProfile {
            time: Time::Clock,
            at: 2,
            nickname,
            nickname_pair,
            avatar,
            avatar_pair: Pair::Placed,
            fields,
        };
        let mut s = vec![
            init(),
            // Signed out: refused by the engine.
            input(update(Text::Good, Pair::Placed, Text::Good, 3)),
            input(Call::DeleteAccount(Time::Clock)),
        ];
        s.extend(signed_in_anonymously());
        s.extend([
            // Host values: unknown bits, a hostile pair, not UTF-8; an unread bad pair.
            input(update(Text::Good, Pair::Placed, Text::Good, 0x84)),
            input(update(Text::Good, hostile(3, 3, 0), Text::Good, 1)),
            input(update(Text::Canned(7), Pair::Placed, Text::Good, 3)),
            input(update(Text::Good, hostile(3, 3, 0), Text::Good, 2)),
            // The engine's checks: nothing given, empty, too long, not a URL.
            input(update(Text::Good, Pair::Placed, Text::Good, 0)),
            input(update(Text::Canned(0), Pair::Placed, Text::Good, 1)),
            input(update(Text::Canned(8), Pair::Placed, Text::Good, 1)),
            input(update(Text::Good, Pair::Placed, Text::Canned(1), 2)),
            // A change answered, one refused, one undrained.
            input(update(Text::Good, Pair::Placed, Text::Good, 3)),
            answer(Reply::Good),
            Step::User,
            input(update(Text::Canned(9), Pair::Placed, Text::Good, 1)),
            answer(Reply::Unavailable),
            undrained(update(Text::Good, Pair::Placed, Text::Good, 1)),
            input(Call::DeleteAccount(Time::Clock)),
            Step::Drain,
            answer(Reply::Good),
            // Deleted: signed out, a snapshot written; a deletion refused next time.
            Step::Session,
            input(Call::SignInAnonymously(Time::Clock)),
            answer(Reply::Good),
            answer(Reply::Good),
            input(Call::DeleteAccount(Time::Clock)),
            answer(Reply::Unauthenticated),
        ]);
        s
    });

    v
}
