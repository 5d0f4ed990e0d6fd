//! The ABI's tables: the facade's copy matches them, and every code has a name.

use crate::abi::{self, CLASS_NAMES, MISUSE_NAMES, OUTPUT_NAMES, STATE_NAMES};
use cloudbase_auth_core::{ApiMisuse, Error, LoginState};
use std::path::PathBuf;

const REGENERATE: &str = "cargo test -p cloudbase-auth-wasm -- --ignored write_js_tables";
const OPEN: &str = "// <abi>\n";
const CLOSE: &str = "// </abi>\n";

fn index_js() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js/index.js")
}

/// `index.js` split around its generated block: (before, block, after).
fn split(js: &str) -> (&str, &str, &str) {
    let start = js.find(OPEN).expect("index.js has a `// <abi>` line") + OPEN.len();
    let end = js.find(CLOSE).expect("index.js has a `// </abi>` line");
    (&js[..start], &js[start..end], &js[end..])
}

#[test]
fn the_facade_carries_the_abi_tables() {
    let js = std::fs::read_to_string(index_js()).expect("js/index.js");
    let (_, block, _) = split(&js);
    assert!(
        block == abi::js_tables(),
        "js/index.js's ABI block is not what abi.rs declares; regenerate: {REGENERATE}\n\
         --- expected\n{}--- found\n{block}",
        abi::js_tables()
    );
}

/// Rewrites the block between `// <abi>` and `// </abi>` in `js/index.js`.
#[test]
#[ignore = "rewrites js/index.js (REGENERATE)"]
fn write_js_tables() {
    let js = std::fs::read_to_string(index_js()).expect("js/index.js");
    let (before, _, after) = split(&js);
    let out = format!("{before}{}{after}", abi::js_tables());
    std::fs::write(index_js(), out).expect("write js/index.js");
}

#[test]
fn every_code_has_one_name() {
    let named = |names: &[&str], codes: core::ops::RangeInclusive<u8>, what: &str| {
        for c in codes {
            assert!(!names[usize::from(c)].is_empty(), "{what} {c} has no name");
        }
    };
    named(&STATE_NAMES, 0..=LoginState::CODE_MAX, "state");
    named(
        &OUTPUT_NAMES,
        0..=cloudbase_auth_core::Output::CODE_MAX,
        "output",
    );
    named(&MISUSE_NAMES, 1..=ApiMisuse::CODE_MAX, "misuse");
    for class in Error::CLASS_HOST..=Error::CLASS_MAX {
        // API misuse is named by its sub-code.
        let named = !CLASS_NAMES[usize::from(class)].is_empty();
        assert_eq!(named, class != Error::CLASS_API_MISUSE, "class {class}");
    }
    let mut states = STATE_NAMES.to_vec();
    states.dedup();
    assert_eq!(states.len(), STATE_NAMES.len(), "distinct state names");
    // The names hosts have seen: the facade's loginType and AuthError codes.
    assert_eq!(
        STATE_NAMES[usize::from(LoginState::Anonymous.code())],
        "ANONYMOUS"
    );
    assert_eq!(
        STATE_NAMES[usize::from(LoginState::WeChat.code())],
        "WECHAT"
    );
    let misuse = |m: ApiMisuse| MISUSE_NAMES[usize::from(m.code())];
    assert_eq!(misuse(ApiMisuse::Busy), "BUSY");
    assert_eq!(
        misuse(ApiMisuse::InputInvalid { field: "f" }),
        "INVALID_ARGUMENT"
    );
    assert_eq!(misuse(ApiMisuse::OutputQueueFull), "OUTPUT_QUEUE_FULL");
    let class = |c: u8| CLASS_NAMES[usize::from(c)];
    assert_eq!(class(Error::CLASS_HOST), "INVALID_ARGUMENT");
    assert_eq!(class(Error::CLASS_TRANSPORT), "NETWORK_ERROR");
    assert_eq!(class(Error::CLASS_WIRE), "BAD_REPLY");
}
