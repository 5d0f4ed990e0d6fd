//! A small, allocation-free JSON reader for CloudBase replies.
//!
//! Why not serde-json-core's deserializer: it cannot read `error_code` as "number or
//! string" (no `deserialize_any`), rejects escaped surrogate pairs (emoji nicknames from
//! servers that escape non-ASCII), and its per-capacity generic visitors dominated the
//! wasm size of a prototype (see the wasm size notes). This reader is one non-generic
//! walker: known keys are matched by the caller, unknown values are skipped with a depth
//! limit, and every failure is a [`WireError`] with a byte offset, never a panic.

use crate::capacity::{JSON_DEPTH_MAX, RESPONSE_BODY_MAX};
use crate::error::WireError;

/// Cursor over one JSON document.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    /// The same bytes as text (checked once in [`Reader::new`]), so string runs are
    /// sliced out without validating them again.
    text: &'a str,
    pos: usize,
    depth: usize,
}

type Result<T> = core::result::Result<T, WireError>;

/// The JSON type of the next value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl<'a> Reader<'a> {
    /// Checks size and UTF-8 up front, so later steps only deal with syntax.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() > RESPONSE_BODY_MAX {
            return Err(WireError::BodyTooLarge);
        }
        let text = core::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8)?;
        Ok(Self {
            bytes,
            text,
            pos: 0,
            depth: 0,
        })
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Result<u8> {
        self.skip_ws();
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or(WireError::Truncated)
    }

    fn syntax(&self) -> WireError {
        if self.pos >= self.bytes.len() {
            WireError::Truncated
        } else {
            WireError::Syntax { at: self.pos }
        }
    }

    fn eat(&mut self, c: u8) -> Result<()> {
        if self.peek()? == c {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    /// The type of the next value, without consuming it.
    pub(crate) fn kind(&mut self) -> Result<Kind> {
        Ok(match self.peek()? {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b'-' | b'0'..=b'9' => Kind::Number,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            _ => return Err(self.syntax()),
        })
    }

    /// After the top-level value only whitespace may follow.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.skip_ws();
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > JSON_DEPTH_MAX {
            Err(WireError::TooDeep)
        } else {
            Ok(())
        }
    }

    /// Walks an object; `member` is called with each key (unescaped; keys longer than 32
    /// bytes arrive as `""`, which matches no known field) and must consume the value.
    pub(crate) fn object(
        &mut self,
        member: &mut dyn FnMut(&mut Self, &str) -> Result<()>,
    ) -> Result<()> {
        self.enter()?;
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if self.peek()? != b'"' {
                return Err(self.syntax());
            }
            let mut key = heapless::String::<32>::new();
            let fits = self.string_with(&mut |run| key.push_str(run).is_ok())?;
            if !fits {
                key.clear();
            }
            self.eat(b':')?;
            member(self, &key)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    /// Walks an array; `element` must consume each value.
    pub(crate) fn array(&mut self, element: &mut dyn FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.enter()?;
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    /// Reads a string, handing its unescaped text to `push` in pieces: each run of
    /// plain characters as one slice of the document, each escape as its character;
    /// returns whether every `push` accepted (false = did not fit). The whole string is
    /// consumed either way.
    pub(crate) fn string_with(&mut self, push: &mut dyn FnMut(&str) -> bool) -> Result<bool> {
        self.eat(b'"')?;
        let mut fits = true;
        loop {
            let start = self.pos;
            self.pos += plain_run(&self.bytes[start..]);
            let len = self.pos - start;
            if len > 0 {
                // The document is UTF-8 and a run stops only at an ASCII byte or at the
                // end, so it is whole characters; `get` re-checks just the two ends.
                let run = self.text.get(start..self.pos).ok_or(WireError::NotUtf8)?;
                fits &= push(run);
            }
            match self.bytes.get(self.pos) {
                None => return Err(WireError::Truncated),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(fits);
                }
                Some(b'\\') => {
                    let at = self.pos;
                    self.pos += 1;
                    let c = self.escape(at)?;
                    fits &= push(c.encode_utf8(&mut [0; 4]));
                }
                Some(_) => return Err(WireError::Syntax { at: self.pos }),
            }
        }
    }

    fn escape(&mut self, at: usize) -> Result<char> {
        let e = *self.bytes.get(self.pos).ok_or(WireError::Truncated)?;
        self.pos += 1;
        Ok(match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4(at)?;
                match hi {
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by `\u` + a low surrogate.
                        match (self.bytes.get(self.pos), self.bytes.get(self.pos + 1)) {
                            (Some(b'\\'), Some(b'u')) => {}
                            (Some(b'\\'), None) | (None, _) => return Err(WireError::Truncated),
                            _ => return Err(WireError::BadEscape { at }),
                        }
                        self.pos += 2;
                        let lo = self.hex4(at)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(WireError::BadEscape { at });
                        }
                        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        char::from_u32(c).ok_or(WireError::BadEscape { at })?
                    }
                    0xDC00..=0xDFFF => return Err(WireError::BadEscape { at }),
                    _ => char::from_u32(hi).ok_or(WireError::BadEscape { at })?,
                }
            }
            _ => return Err(WireError::BadEscape { at }),
        })
    }

    fn hex4(&mut self, at: usize) -> Result<u32> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or(WireError::Truncated)?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .ok_or(WireError::BadEscape { at })?;
            v = v * 16 + n;
        }
        self.pos += 4;
        Ok(v)
    }

    /// Reads a string into `out`; `TooLong` names `field` when it does not fit.
    pub(crate) fn str_into(
        &mut self,
        field: &'static str,
        out: &mut heapless::string::StringView,
    ) -> Result<()> {
        if self.kind()? != Kind::String {
            return Err(WireError::WrongType { field });
        }
        out.clear();
        if self.string_with(&mut |run| out.push_str(run).is_ok())? {
            Ok(())
        } else {
            Err(WireError::TooLong { field })
        }
    }

    /// Like [`Self::str_into`] but `null` leaves `out` empty.
    pub(crate) fn opt_str_into(
        &mut self,
        field: &'static str,
        out: &mut heapless::string::StringView,
    ) -> Result<()> {
        if self.kind()? == Kind::Null {
            out.clear();
            return self.skip_value();
        }
        self.str_into(field, out)
    }

    /// Reads a string and keeps as much as fits, cut at a character boundary. Only for
    /// human-readable text (error descriptions), never for ids or tokens.
    pub(crate) fn str_lossy(
        &mut self,
        field: &'static str,
        out: &mut heapless::string::StringView,
    ) -> Result<()> {
        match self.kind()? {
            Kind::String => {
                out.clear();
                let mut full = false;
                self.string_with(&mut |run| {
                    if !full && out.push_str(run).is_err() {
                        // Keep the longest prefix of this piece that fits, then nothing
                        // more: the text stays a prefix of the original.
                        let mut cut = out.capacity() - out.len();
                        while !run.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        full = true;
                        // Fits: `cut` is at most the room left.
                        return out.push_str(&run[..cut]).is_ok();
                    }
                    true
                })
                .map(|_| ())
            }
            Kind::Null => self.skip_value(),
            _ => Err(WireError::WrongType { field }),
        }
    }

    /// Reads a JSON integer (no fraction or exponent) within `i64`.
    pub(crate) fn integer(&mut self, field: &'static str) -> Result<i64> {
        if self.kind()? != Kind::Number {
            return Err(WireError::WrongType { field });
        }
        let start = self.pos;
        self.skip_number()?;
        parse_i64(&self.bytes[start..self.pos]).ok_or(WireError::WrongType { field })
    }

    /// Reads a non-negative integer (`expires_in`).
    pub(crate) fn unsigned(&mut self, field: &'static str) -> Result<u64> {
        let v = self.integer(field)?;
        u64::try_from(v).map_err(|_| WireError::WrongType { field })
    }

    /// `error_code` arrives as a number or as a string of digits (the SDK accepts both).
    pub(crate) fn integer_or_numeric_string(&mut self, field: &'static str) -> Result<i64> {
        match self.kind()? {
            Kind::Number => self.integer(field),
            Kind::String => {
                let mut s = heapless::String::<20>::new();
                self.str_into(field, &mut s)?;
                parse_i64(s.trim().as_bytes()).ok_or(WireError::WrongType { field })
            }
            Kind::Null => self.skip_value().map(|()| 0),
            // Consumed, so a caller that tolerates the wrong type can go on.
            _ => self.skip_value().and(Err(WireError::WrongType { field })),
        }
    }

    /// Whether the next value is "truthy" in the JavaScript sense the SDK applies to
    /// `code`/`error`/`error_code` on success bodies; consumes it.
    pub(crate) fn truthy(&mut self) -> Result<bool> {
        let truthy = match self.kind()? {
            Kind::Null => false,
            Kind::Bool => self.bytes.get(self.pos) == Some(&b't'),
            Kind::Number => {
                let start = self.pos;
                self.skip_number()?;
                return Ok(self.bytes[start..self.pos]
                    .iter()
                    .any(|b| (b'1'..=b'9').contains(b))
                    && !is_zero_with_exponent(&self.bytes[start..self.pos]));
            }
            Kind::String => {
                let mut any = false;
                self.string_with(&mut |_| {
                    any = true;
                    true
                })?;
                return Ok(any);
            }
            Kind::Object | Kind::Array => true,
        };
        self.skip_value()?;
        Ok(truthy)
    }

    fn skip_number(&mut self) -> Result<()> {
        let start = self.pos;
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let digits = |r: &mut Self| {
            let s = r.pos;
            while let Some(b'0'..=b'9') = r.bytes.get(r.pos) {
                r.pos += 1;
            }
            r.pos > s
        };
        if !digits(self) {
            return Err(self.syntax());
        }
        // JSON forbids leading zeros such as `012`.
        let int = &self.bytes[start..self.pos];
        let int = int.strip_prefix(b"-").unwrap_or(int);
        if int.len() > 1 && int[0] == b'0' {
            return Err(WireError::Syntax { at: start });
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.syntax());
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.syntax());
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        match self.bytes.get(self.pos..self.pos + word.len()) {
            Some(w) if w == word => {
                self.pos += word.len();
                Ok(())
            }
            Some(_) => Err(WireError::Syntax { at: self.pos }),
            None => Err(WireError::Truncated),
        }
    }

    /// Consumes any value (unknown fields), bounded by the depth limit.
    pub(crate) fn skip_value(&mut self) -> Result<()> {
        match self.kind()? {
            Kind::Object => self.object(&mut |r, _| r.skip_value()),
            Kind::Array => self.array(&mut |r| r.skip_value()),
            Kind::String => self.string_with(&mut |_| true).map(|_| ()),
            Kind::Number => self.skip_number(),
            Kind::Bool => {
                let word: &[u8] = if self.bytes[self.pos] == b't' {
                    b"true"
                } else {
                    b"false"
                };
                self.literal(word)
            }
            Kind::Null => self.literal(b"null"),
        }
    }
}

/// Length of the leading run of `bytes` that a JSON string holds as is: up to the first
/// `"`, `\` or control byte. Tested 16 bytes at a time without an early exit inside a
/// block, which the compiler turns into vector compares: tokens are hundreds of bytes
/// and byte-by-byte scanning was the largest item of a reply's parse in `perf`.
fn plain_run(bytes: &[u8]) -> usize {
    let stops = |b: u8| (b == b'"') | (b == b'\\') | (b < 0x20);
    // The Mini Program budget counts every byte of the module: the 16-byte blocks below
    // (vector compares on native) cost it 153 bytes, so wasm32 scans byte by byte.
    if cfg!(target_arch = "wasm32") {
        return bytes.iter().position(|&b| stops(b)).unwrap_or(bytes.len());
    }
    let mut len = 0;
    for block in bytes.chunks_exact(16) {
        if block.iter().fold(false, |any, &b| any | stops(b)) {
            break;
        }
        len += 16;
    }
    let rest = &bytes[len..];
    len + rest.iter().position(|&b| stops(b)).unwrap_or(rest.len())
}

fn is_zero_with_exponent(n: &[u8]) -> bool {
    // `0e5`, `0.0E1`: digits 1-9 appear only in the exponent.
    let mantissa_end = n
        .iter()
        .position(|b| *b == b'e' || *b == b'E')
        .unwrap_or(n.len());
    !n[..mantissa_end].iter().any(|b| (b'1'..=b'9').contains(b))
}

/// Parses `-?[0-9]+` into `i64`; `None` on anything else or overflow.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// Tracks which known fields were seen, to reject duplicates.
#[derive(Default)]
pub(crate) struct Seen(u32);

impl Seen {
    /// Marks field `bit` as seen; a second sighting is [`WireError::Duplicate`].
    pub(crate) fn mark(&mut self, bit: u32, field: &'static str) -> Result<()> {
        let mask = 1u32 << bit;
        if self.0 & mask != 0 {
            return Err(WireError::Duplicate { field });
        }
        self.0 |= mask;
        Ok(())
    }

    /// Whether field `bit` was seen.
    pub(crate) fn has(&self, bit: u32) -> bool {
        self.0 & (1u32 << bit) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(json: &str) -> core::result::Result<heapless::String<64>, WireError> {
        let mut r = Reader::new(json.as_bytes())?;
        let mut s = heapless::String::new();
        r.str_into("f", &mut s)?;
        r.finish()?;
        Ok(s)
    }

    #[test]
    fn strings_unescape_including_surrogate_pairs() {
        assert_eq!(read_str(r#""a\"b\\c\/d\n""#).unwrap(), "a\"b\\c/d\n");
        assert_eq!(read_str(r#""\u4e2d\u6587""#).unwrap(), "中文");
        assert_eq!(read_str(r#""\ud83d\ude00x""#).unwrap(), "😀x");
        assert_eq!(read_str(r#""\uD83D\uDE00""#).unwrap(), "😀");
        assert_eq!(read_str("\"中文😀\"").unwrap(), "中文😀");
    }

    #[test]
    fn lone_surrogates_and_bad_escapes_are_errors() {
        assert_eq!(read_str(r#""\ud83d""#), Err(WireError::BadEscape { at: 1 }));
        assert_eq!(read_str(r#""\ude00""#), Err(WireError::BadEscape { at: 1 }));
        assert_eq!(
            read_str(r#""\ud83d\u0041""#),
            Err(WireError::BadEscape { at: 1 })
        );
        assert_eq!(read_str(r#""\x""#), Err(WireError::BadEscape { at: 1 }));
        assert_eq!(read_str(r#""\u12g4""#), Err(WireError::BadEscape { at: 1 }));
        assert_eq!(read_str("\"a\u{1}\""), Err(WireError::Syntax { at: 2 }));
    }

    #[test]
    fn truncation_is_reported_as_such() {
        for cut in [r#""abc"#, r#""ab\"#, r#""\u12"#, r#""\ud83d\"#] {
            assert_eq!(read_str(cut), Err(WireError::Truncated), "{cut}");
        }
    }

    #[test]
    fn overlong_string_is_too_long() {
        let long = format!("\"{}\"", "x".repeat(65));
        assert_eq!(read_str(&long), Err(WireError::TooLong { field: "f" }));
    }

    #[test]
    fn runs_and_escapes_fill_the_capacity_exactly() {
        // 62 plain bytes + an escaped 2-byte char = 64: fits; one byte more does not,
        // whether the extra byte is in a run or an escape.
        let plain = "p".repeat(62);
        assert_eq!(
            read_str(&format!(r#""{plain}\u00e9""#)).unwrap(),
            format!("{plain}é").as_str()
        );
        assert_eq!(
            read_str(&format!(r#""{plain}\u00e9x""#)),
            Err(WireError::TooLong { field: "f" })
        );
        assert_eq!(
            read_str(&format!(r#""{plain}x\u00e9""#)),
            Err(WireError::TooLong { field: "f" })
        );
        assert_eq!(read_str(r#""a\nb\tc""#).unwrap(), "a\nb\tc");
    }

    #[test]
    fn a_plain_run_ends_at_the_first_stop_in_any_block() {
        for len in 0..50 {
            for stop in [b'"', b'\\', b'\n', 0x1f] {
                for at in 0..=len {
                    let mut bytes = [b'a'; 50];
                    if at < len {
                        bytes[at] = stop;
                        // A second stop later must not matter.
                        bytes[len - 1] = b'"';
                    }
                    assert_eq!(
                        plain_run(&bytes[..len]),
                        at,
                        "len {len}, stop {stop} at {at}"
                    );
                }
            }
        }
        assert_eq!(plain_run("中文😀 ~\x7f".as_bytes()), 13);
    }

    #[test]
    fn lossy_text_is_a_prefix_cut_at_a_char_boundary() {
        let lossy = |json: &str| {
            let mut r = Reader::new(json.as_bytes()).unwrap();
            let mut s = heapless::String::<8>::new();
            r.str_lossy("d", &mut s).unwrap();
            r.finish().unwrap();
            s
        };
        assert_eq!(lossy(r#""abcdefgh""#), "abcdefgh");
        assert_eq!(lossy(r#""abcdefghij""#), "abcdefgh");
        // The 3-byte char does not fit whole; nothing after it is kept either.
        assert_eq!(lossy(r#""abcdef中xy""#), "abcdef");
        assert_eq!(lossy(r#""abcdef\u4e2dxy""#), "abcdef");
        assert_eq!(lossy(r#""ab\ncde中""#), "ab\ncde");
    }

    #[test]
    fn long_keys_arrive_empty_and_short_escaped_keys_unescaped() {
        let doc = format!(r#"{{"{}":1,"k\u0065y":2}}"#, "k".repeat(33));
        let mut r = Reader::new(doc.as_bytes()).unwrap();
        let mut keys = heapless::Vec::<heapless::String<8>, 4>::new();
        r.object(&mut |r, k| {
            keys.push(k.try_into().unwrap()).unwrap();
            r.skip_value()
        })
        .unwrap();
        assert_eq!(keys, ["", "key"]);
    }

    #[test]
    fn skips_every_kind_of_unknown_value() {
        let doc = r#"{"a":[1,-2.5e3,{"b":null,"c":[true,false]}],"d":"\"}","e":0}"#;
        let mut r = Reader::new(doc.as_bytes()).unwrap();
        let mut keys = heapless::Vec::<heapless::String<8>, 8>::new();
        r.object(&mut |r, k| {
            keys.push(k.try_into().unwrap()).unwrap();
            r.skip_value()
        })
        .unwrap();
        r.finish().unwrap();
        assert_eq!(keys, ["a", "d", "e"]);
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        let mut r = Reader::new(deep.as_bytes()).unwrap();
        assert_eq!(r.skip_value(), Err(WireError::TooDeep));
    }

    #[test]
    fn numbers_follow_json_grammar() {
        let int = |s: &str| Reader::new(s.as_bytes()).unwrap().integer("n");
        assert_eq!(int("7200"), Ok(7200));
        assert_eq!(int("-16"), Ok(-16));
        assert_eq!(int("1.5"), Err(WireError::WrongType { field: "n" }));
        assert_eq!(int("012"), Err(WireError::Syntax { at: 0 }));
        assert_eq!(
            int("99999999999999999999"),
            Err(WireError::WrongType { field: "n" })
        );
        assert_eq!(int("-"), Err(WireError::Truncated));
    }

    #[test]
    fn truthiness_matches_javascript() {
        let truthy = |s: &str| Reader::new(s.as_bytes()).unwrap().truthy().unwrap();
        for t in ["1", "\"x\"", "true", "{}", "[]", "-0.5"] {
            assert!(truthy(t), "{t}");
        }
        for f in ["0", "\"\"", "false", "null", "0.0", "0e5"] {
            assert!(!truthy(f), "{f}");
        }
    }
}
