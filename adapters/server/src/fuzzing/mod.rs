//! Fuzz entry points of the server (compiled for `cargo fuzz`, which builds with
//! `--cfg fuzzing`, and for this crate's unit tests only; the quinn-proto pattern).
//!
//! * [`server_request`]: scripted requests through the whole router in-process (no
//!   socket): CloudBase endpoints, health, JWKS, the emulator and admin routes, the demo
//!   files, and anything else.
//! * [`code2session_reply`]: arbitrary bytes as WeChat's `jscode2session` reply, read by
//!   the real-mode client's parser.
//!
//! The targets in `fuzz/fuzz_targets/` call these; the unit tests below replay every
//! committed seed and regression input through them.

mod code2session;
mod harness;
mod input;
mod seeds;

pub use code2session::{code2session_reply, code2session_reply_seeds};
pub use harness::server_request;
pub use input::{
    FUZZ_ADMIN_TOKEN, FUZZ_APPID, FuzzRequest, HEADERS_MAX, Pick, REQUESTS_MAX, decode_requests,
    encode_requests, known_headers, known_paths,
};
pub use seeds::server_request_seeds;

/// A named seed input.
pub type Seed = (&'static str, Vec<u8>);

#[cfg(test)]
mod tests {
    use super::*;
    use cloudbase_auth_testkit::corpus;
    use proptest::prelude::*;
    use proptest::{collection, sample};

    const REGENERATE: &str =
        "cargo test -p cloudbase-auth-server --lib -- --ignored write_seed_corpora";

    #[test]
    fn code2session_inputs_pass() {
        for (_, bytes) in code2session_reply_seeds() {
            code2session_reply(&bytes);
        }
        corpus::replay("corpus", "code2session_reply", code2session_reply);
        corpus::replay("regressions", "code2session_reply", code2session_reply);
        corpus::assert_seeds_committed(
            "code2session_reply",
            &code2session_reply_seeds(),
            REGENERATE,
        );
    }

    #[test]
    fn server_request_inputs_pass() {
        corpus::replay("corpus", "server_request", server_request);
        corpus::replay("regressions", "server_request", server_request);
        corpus::assert_seeds_committed("server_request", &server_request_seeds(), REGENERATE);
    }

    #[test]
    fn seeds_decode_back_and_reach_their_replies() {
        // What each seed's requests get: the flows go where they say.
        let expected: &[(&str, &[u16])] = &[
            (
                "anonymous_session",
                &[200, 200, 200, 200, 200, 200, 401, 200],
            ),
            ("refresh_reuse", &[200, 200, 200, 200, 400]),
            ("wechat_sign_in", &[200, 200, 200, 200, 200]),
            ("link_anonymous_to_wechat", &[200, 200, 200, 200, 200, 200]),
            ("code_reused", &[200, 200, 400, 200]),
            ("jscode2session", &[200, 200, 200]),
            ("wechat_busy", &[200, 503, 200, 400]),
            ("account", &[200, 200, 400, 200, 200, 401]),
            ("wechat_noauth", &[400, 400]),
            ("admin_routes", &[200, 200, 200, 200, 401, 200]),
            ("static_routes", &[200, 200, 303, 200, 200]),
            (
                "bad_requests",
                &[404, 405, 400, 400, 400, 400, 401, 413, 200, 405],
            ),
        ];
        let seeds = server_request_seeds();
        assert_eq!(seeds.len(), expected.len());
        for ((name, bytes), (want_name, want)) in seeds.iter().zip(expected) {
            assert_eq!(name, want_name);
            let requests = decode_requests(bytes);
            assert_eq!(encode_requests(&requests), *bytes, "{name}");
            let got: Vec<Option<u16>> = harness::run_requests(bytes);
            let want: Vec<Option<u16>> = want.iter().map(|&s| Some(s)).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    /// Regenerates `fuzz/corpus/{server_request,code2session_reply}/` (`REGENERATE`).
    #[test]
    #[ignore = "writes the seed corpora"]
    fn write_seed_corpora() {
        corpus::write_seeds("server_request", &server_request_seeds());
        corpus::write_seeds("code2session_reply", &code2session_reply_seeds());
    }

    /// A seed with 1 to 4 of its bytes overwritten (each edit: a position, wrapped to
    /// the seed's length, and the new byte).
    fn mutated(seeds: Vec<Seed>) -> impl Strategy<Value = Vec<u8>> {
        let seeds: Vec<Vec<u8>> = seeds.into_iter().map(|(_, bytes)| bytes).collect();
        (
            sample::select(seeds),
            collection::vec((any::<sample::Index>(), any::<u8>()), 1..=4),
        )
            .prop_map(|(mut bytes, edits)| {
                for (at, byte) in edits {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                bytes
            })
    }

    proptest! {
        /// Seeds with a few bytes changed pass the target's checks (they shrink to the
        /// fewest, smallest edits).
        #[test]
        fn mutated_server_requests_pass(input in mutated(server_request_seeds())) {
            server_request(&input);
        }

        /// The same for WeChat's replies.
        #[test]
        fn mutated_code2session_replies_pass(reply in mutated(code2session_reply_seeds())) {
            code2session_reply(&reply);
        }
    }
}
