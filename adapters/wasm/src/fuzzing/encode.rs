//! Writing steps in the input format (the seeds; shrunk and generated inputs).

use super::grammar::*;

/// Writes steps in the input format: `decode(&encode(s)) == s` for steps whose numbers
/// are in the ranges the format gives them (seeds; decoded steps).
pub fn encode(steps: &[Step]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in steps {
        encode_step(&mut out, s);
    }
    out
}

fn enc_time(o: &mut Vec<u8>, t: &Time) {
    match t {
        Time::Clock => o.push(0),
        Time::Special(i) => o.push(0xF0 + i % 8),
        Time::Raw(bits) => {
            o.push(0xF8);
            o.extend_from_slice(&bits.to_le_bytes());
        }
        Time::Back(ms) => {
            o.push(0xF9);
            o.extend_from_slice(&ms.to_le_bytes());
        }
        Time::Frac => o.push(0xFA),
        Time::Deadline => o.push(0xFB),
    }
}

fn enc_pair(o: &mut Vec<u8>, p: &Pair) {
    match p {
        Pair::Placed => o.push(0),
        Pair::Hostile { ptr, len, extra } => {
            o.extend_from_slice(&[0xC0, *ptr, *len]);
            o.extend_from_slice(&extra.to_le_bytes());
        }
    }
}

fn enc_text(o: &mut Vec<u8>, t: &Text) {
    match t {
        Text::Good => o.push(0),
        Text::Canned(i) => o.push(1 + i % 0x7F),
        Text::Bytes(b) => {
            let b = &b[..b.len().min(255)];
            o.extend_from_slice(&[0x80, b.len() as u8]);
            o.extend_from_slice(b);
        }
    }
}

fn enc_snap_bytes(o: &mut Vec<u8>, tag: u8, b: &[u8]) {
    let b = &b[..b.len().min(usize::from(u16::MAX))];
    o.push(tag);
    o.extend_from_slice(&(b.len() as u16).to_le_bytes());
    o.extend_from_slice(b);
}

fn enc_id(o: &mut Vec<u8>, id: &Id) {
    match id {
        Id::Recent(k) => o.push(k % 0x80),
        Id::Raw(g, s) => {
            o.push(0x80);
            o.extend_from_slice(&g.to_le_bytes());
            o.extend_from_slice(&s.to_le_bytes());
        }
    }
}

fn enc_wechat(o: &mut Vec<u8>, w: &WeChat) {
    enc_time(o, &w.time);
    o.push(w.at);
    enc_text(o, &w.code);
    enc_pair(o, &w.code_pair);
    enc_text(o, &w.appid);
    enc_pair(o, &w.appid_pair);
}

fn encode_step(o: &mut Vec<u8>, s: &Step) {
    let (call, drain) = match s {
        Step::Input { call, drain } => (call, *drain),
        Step::Poll => return o.push(12),
        Step::Drain => return o.push(13),
        Step::LoginState => return o.push(14),
        Step::Session => return o.push(15),
        Step::User => return o.push(16),
        Step::Write { at, bytes } => {
            let b = &bytes[..bytes.len().min(255)];
            o.push(17);
            o.extend_from_slice(&at.to_le_bytes());
            o.push(b.len() as u8);
            return o.extend_from_slice(b);
        }
        Step::Advance(ms) => {
            o.push(18);
            return o.extend_from_slice(&ms.to_le_bytes());
        }
        Step::Reset => return o.push(19),
        Step::Buf => return o.push(20),
    };
    let flag = if drain { 0 } else { 0x80 };
    match call {
        Call::Init {
            time,
            at,
            env,
            env_pair,
            client,
            client_pair,
            seed,
            seed_pair,
        } => {
            o.push(flag);
            enc_time(o, time);
            o.push(*at);
            enc_text(o, env);
            enc_pair(o, env_pair);
            enc_text(o, client);
            enc_pair(o, client_pair);
            o.push(*seed);
            enc_pair(o, seed_pair);
        }
        Call::Restore {
            time,
            at,
            snap,
            pair,
        } => {
            o.push(flag | 1);
            enc_time(o, time);
            o.push(*at);
            match snap {
                Snap::Last => o.push(0),
                Snap::Flipped { at, mask } => {
                    o.push(0x80);
                    o.extend_from_slice(&at.to_le_bytes());
                    o.push(*mask);
                }
                Snap::Bytes(b) => enc_snap_bytes(o, 0xC0, b),
                Snap::Text(b) => enc_snap_bytes(o, 0xE0, b),
            }
            enc_pair(o, pair);
        }
        Call::GetLoginState(t) => {
            o.push(flag | 2);
            enc_time(o, t);
        }
        Call::GetUserInfo(t) => {
            o.push(flag | 3);
            enc_time(o, t);
        }
        Call::SignInAnonymously(t) => {
            o.push(flag | 4);
            enc_time(o, t);
        }
        Call::SignOut(t) => {
            o.push(flag | 5);
            enc_time(o, t);
        }
        Call::SignInWithWeChat(w) => {
            o.push(flag | 6);
            enc_wechat(o, w);
        }
        Call::LinkWeChat(w) => {
            o.push(flag | 7);
            enc_wechat(o, w);
        }
        Call::Answer {
            time,
            at,
            id,
            reply,
            pair,
        } => {
            o.push(flag | 8);
            enc_time(o, time);
            o.push(*at);
            enc_id(o, id);
            match reply {
                Reply::Good => o.push(0),
                Reply::FlipScope => o.push(1),
                Reply::NoRefresh => o.push(2),
                Reply::Expires(s) => {
                    o.push(3);
                    o.extend_from_slice(&s.to_le_bytes());
                }
                Reply::Unauthenticated => o.push(4),
                Reply::InvalidGrant => o.push(5),
                Reply::Unavailable => o.push(6),
                Reply::EmptyObject => o.push(7),
            }
            enc_pair(o, pair);
        }
        Call::Respond {
            time,
            at,
            id,
            status,
            body,
            pair,
        } => {
            o.push(flag | 9);
            enc_time(o, time);
            o.push(*at);
            enc_id(o, id);
            match status {
                Status::Table(i) => o.push(i % 0xF0),
                Status::Raw(s) => {
                    o.push(0xF0);
                    o.extend_from_slice(&s.to_le_bytes());
                }
            }
            let b = &body[..body.len().min(usize::from(u16::MAX))];
            o.extend_from_slice(&(b.len() as u16).to_le_bytes());
            o.extend_from_slice(b);
            enc_pair(o, pair);
        }
        Call::TransportError { time, id } => {
            o.push(flag | 10);
            enc_time(o, time);
            enc_id(o, id);
        }
        Call::Timeout(t) => {
            o.push(flag | 11);
            enc_time(o, t);
        }
        Call::UpdateProfile {
            time,
            at,
            nickname,
            nickname_pair,
            avatar,
            avatar_pair,
            fields,
        } => {
            o.push(flag | 21);
            enc_time(o, time);
            o.push(*at);
            enc_text(o, nickname);
            enc_pair(o, nickname_pair);
            enc_text(o, avatar);
            enc_pair(o, avatar_pair);
            o.push(*fields);
        }
        Call::DeleteAccount(t) => {
            o.push(flag | 22);
            enc_time(o, t);
        }
    }
}
