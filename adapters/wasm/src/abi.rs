//! The ABI's definition: sizes, the host-argument error codes, the record layouts and
//! the names the JS facade gives to codes. The numbers of the engine's own enums are the
//! core's stable codes ([`cloudbase_auth_core::code`]); the tables here are sized by the
//! core's `CODE_MAX`es, so a new core code does not compile until it is named here.
//!
//! `js/index.js` carries a copy of the tables and layouts between its `// <abi>` and
//! `// </abi>` lines, written by [`js_tables`] and checked by this crate's tests.

use cloudbase_auth_core::capacity::{POLL_BUFFER_MIN, RESPONSE_BODY_MAX};
use cloudbase_auth_core::snapshot::SNAPSHOT_MAX;
use cloudbase_auth_core::{ApiMisuse, Error, LoginState, Output};

/// Size of the exchange buffer: a reply body at the core's limit plus 1 KiB, so a host
/// that copies `min(len, EXCHANGE_LEN)` bytes of a larger body still gets the core's
/// "body too large" error.
pub const EXCHANGE_LEN: usize = RESPONSE_BODY_MAX + 1024;

// The transmit record (request + lengths) always fits, and so does a snapshot as base64.
const _: () = assert!(EXCHANGE_LEN >= POLL_BUFFER_MIN + 256);
const _: () = assert!(EXCHANGE_LEN >= crate::stored::text_len(SNAPSHOT_MAX) + 4);
// The poll buffer doubles as the space `cba_restore` decodes base64 into: it holds any
// snapshot, and a text that decodes to more than it is too long for the engine.
const _: () = assert!(POLL_BUFFER_MIN > SNAPSHOT_MAX);

/// Latest host time, 2^53 ms (the last integer an `f64` holds exactly; the year 285,616).
pub const TIME_MAX: u64 = 1 << 53;

/// Sub-codes of the host-argument class ([`Error::CLASS_HOST`]): a value from the host
/// is invalid.
pub mod arg {
    /// A `(ptr, len)` pair is not inside the exchange buffer.
    pub const RANGE: u8 = 1;
    /// A string is not UTF-8.
    pub const UTF8: u8 = 2;
    /// A time is NaN, negative, infinite or above 2^53.
    pub const TIME: u8 = 3;
    /// An HTTP status above 65535.
    pub const STATUS: u8 = 4;
    /// An input came before the outputs of the previous one were drained (poll until
    /// it returns the timeout kind `0` after every input).
    pub const NOT_DRAINED: u8 = 5;
    /// A flags argument has bits the export does not define.
    pub const FLAGS: u8 = 6;
    /// The highest sub-code.
    pub const CODE_MAX: u8 = 6;
}

/// The bits of `cba_update_profile`'s `fields` argument: which of its two strings are
/// given (a string whose bit is clear is not changed, and its pair is not read).
pub mod profile {
    /// The nickname is given.
    pub const NICKNAME: u32 = 1;
    /// The avatar URL is given.
    pub const AVATAR_URL: u32 = 2;
}

/// What an export returns for an error of `class` and `sub`: `-(class * 256 + sub)`.
pub fn error_return(class: u8, sub: u8) -> f64 {
    -f64::from(u32::from(class) * 256 + u32::from(sub))
}

// ----- records ---------------------------------------------------------------------------

/// How one item of a record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums, reason = "the record format has these three")]
pub enum Item {
    /// An `f64`, 8 bytes little-endian.
    Num,
    /// A `u32` byte length (little-endian), then that many bytes of UTF-8.
    Text,
    /// A `u32` byte length (little-endian), then that many bytes.
    Bytes,
}

/// A record's items in order, each with its name (as the JS facade calls it). Items follow each other with no
/// padding; records start at the beginning of the exchange buffer.
pub type Layout = &'static [(&'static str, Item)];

use Item::{Bytes, Num, Text};

/// `cba_poll` kind 0: when to call `cba_handle_timeout` next (host ms, at most 2^53;
/// `-1`: no deadline).
pub const TIMEOUT: Layout = &[("deadline", Num)];
/// `cba_poll` kind 1: a request to send. `headers`: `name: value` lines, each ending in
/// `\n`; `hasBody` 0/1.
pub const TRANSMIT: Layout = &[
    ("generation", Num),
    ("seq", Num),
    ("method", Text),
    ("path", Text),
    ("headers", Text),
    ("hasBody", Num),
    ("body", Bytes),
];
/// `cba_poll` kind 2: the snapshot to store, as base64 text (standard alphabet, padded).
pub const PERSIST: Layout = &[("snapshot", Text)];
/// `cba_poll` kind 3: clear the stored snapshot.
pub const CLEAR: Layout = &[];
/// `cba_poll` kind 4: the login state changed (state codes).
pub const CHANGED: Layout = &[("from", Num), ("to", Num)];
/// `cba_poll` kind 5: an operation completed; [`COMPLETION`] follows if `ok` is 1, an
/// [`ERROR`] record if it is 0.
pub const COMPLETED: Layout = &[("op", Num), ("ok", Num)];
/// `cba_poll` kind 6: a refused anonymous user was replaced by a new one (the state
/// change to anonymous that follows is that new user).
pub const REPLACED: Layout = &[];
/// After a successful [`COMPLETED`]: the completion's kind and detail.
pub const COMPLETION: Layout = &[("kind", Num), ("detail", Num)];
/// The error record: of an export that returned a negative value, or of a failed
/// operation. `serverKind`, `status` and `errorCode` are 0 except for server errors;
/// `field` names the refused input or reply field, else it is empty. `error` and
/// `errorDescription` are the server's `error` name and `error_description` as the
/// core keeps them (cut to its capacities; empty when absent and for other errors).
pub const ERROR: Layout = &[
    ("class", Num),
    ("sub", Num),
    ("status", Num),
    ("serverKind", Num),
    ("errorCode", Num),
    ("field", Text),
    ("error", Text),
    ("errorDescription", Text),
];
/// `cba_session` returned 1.
pub const SESSION: Layout = &[
    ("uid", Text),
    ("tokenType", Text),
    ("accessToken", Text),
    ("expiresAt", Num),
    ("refreshAt", Num),
    ("refreshable", Num),
];
/// `cba_user` returned 1 (profile fields are empty until fetched).
pub const USER: Layout = &[
    ("uid", Text),
    ("nickName", Text),
    ("avatarUrl", Text),
    ("email", Text),
    ("openid", Text),
];
/// `cba_default_origin` returned 1.
pub const ORIGIN: Layout = &[("origin", Text)];

/// The record of each `cba_poll` kind (the core's output codes).
pub const OUTPUTS: [Layout; Output::CODE_MAX as usize + 1] = [
    TIMEOUT, TRANSMIT, PERSIST, CLEAR, CHANGED, COMPLETED, REPLACED,
];

/// The name of each output kind in the JS facade.
pub const OUTPUT_NAMES: [&str; Output::CODE_MAX as usize + 1] = [
    "TIMEOUT",
    "TRANSMIT",
    "PERSIST",
    "CLEAR",
    "CHANGED",
    "COMPLETED",
    "REPLACED",
];

// ----- names the JS facade gives to codes --------------------------------------------------

/// `LoginState` codes as the facade's `loginType` strings.
pub const STATE_NAMES: [&str; LoginState::CODE_MAX as usize + 1] = [
    "UNINITIALIZED",
    "INITIALIZED",
    "ANONYMOUS",
    "WECHAT",
    "SIGNED_OUT",
];

/// The facade's `AuthError` code for each error class; the API misuse class (2) is
/// named by its sub-code ([`MISUSE_NAMES`]).
pub const CLASS_NAMES: [&str; Error::CLASS_MAX as usize + 1] = [
    "",
    "INVALID_ARGUMENT", // a bad value from the host
    "",                 // API misuse: by sub-code
    "SERVER_ERROR",
    "BAD_REPLY",
    "NETWORK_ERROR",
    "BAD_SNAPSHOT",
    "NOT_SIGNED_IN",
    "SESSION_EXPIRED",
    "CANCELLED",
];

/// The facade's `AuthError` code for each API misuse sub-code.
pub const MISUSE_NAMES: [&str; ApiMisuse::CODE_MAX as usize + 1] = [
    "",
    "NOT_INITIALIZED",
    "ALREADY_INITIALIZED",
    "RESTORE_TOO_LATE",
    "BUSY",
    "NOT_ANONYMOUS",
    "INPUT_TOO_LONG",
    "INVALID_ARGUMENT",
    "BUFFER_TOO_SMALL",
    "OUTPUT_QUEUE_FULL",
];

/// The JS facade's copy of the tables and layouts: the lines between `// <abi>` and
/// `// </abi>` in `js/index.js`. Output kinds become constants, layouts strings of item
/// letters (`n` num, `s` text, `b` bytes) with their field names in a comment.
#[cfg(not(target_arch = "wasm32"))]
pub fn js_tables() -> String {
    use core::fmt::Write;
    // `const NAME = ['A', 'B', …];`, wrapped before 100 columns.
    let array = |js: &mut String, name: &str, names: &[&str]| {
        let mut line = format!("const {name} = [");
        for (i, n) in names.iter().enumerate() {
            let item = format!("'{n}'{}", if i + 1 < names.len() { "," } else { "];" });
            if line.len() + 1 + item.len() > 96 {
                js.push_str(line.trim_end());
                js.push('\n');
                line = String::from("  ");
            } else if !line.ends_with('[') && !line.ends_with("  ") {
                line.push(' ');
            }
            line.push_str(&item);
        }
        js.push_str(&line);
        js.push('\n');
    };
    let mut js = String::from(
        "// Generated from adapters/wasm/src/abi.rs (cargo test -p cloudbase-auth-wasm checks it;\n\
         // `-- --ignored write_js_tables` rewrites it). Do not edit by hand.\n",
    );
    array(&mut js, "STATES", &STATE_NAMES);
    array(&mut js, "CLASSES", &CLASS_NAMES);
    array(&mut js, "MISUSE", &MISUSE_NAMES);
    let _ = writeln!(
        js,
        "const MISUSE_CLASS = {}; // named by its sub-code",
        Error::CLASS_API_MISUSE
    );
    let kinds: Vec<String> = OUTPUT_NAMES
        .iter()
        .enumerate()
        .map(|(k, n)| format!("{n} = {k}"))
        .collect();
    let _ = writeln!(js, "const {};", kinds.join(", "));
    let _ = writeln!(js, "// Records: n num, s text, b bytes.");
    js.push_str("const REC = {\n");
    for (name, layout) in [
        ("timeout", TIMEOUT),
        ("transmit", TRANSMIT),
        ("persist", PERSIST),
        ("changed", CHANGED),
        ("completed", COMPLETED),
        ("completion", COMPLETION),
        ("error", ERROR),
        ("session", SESSION),
        ("user", USER),
        ("origin", ORIGIN),
    ] {
        let letters: String = layout
            .iter()
            .map(|(_, item)| match item {
                Num => 'n',
                Text => 's',
                Bytes => 'b',
            })
            .collect();
        let fields: Vec<&str> = layout.iter().map(|(field, _)| *field).collect();
        let _ = writeln!(js, "  {name}: '{letters}', // {}", fields.join(", "));
    }
    js.push_str("};\n");
    js
}
