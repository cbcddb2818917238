//! SMTP replies (RFC 5321 §4.2): a three-digit code and one or more text lines.
//!
//! A multiline reply is `NNN-text` lines followed by one `NNN text` line. The
//! parser here is pure: it takes one line (already split off the wire, without
//! CRLF) and says whether the reply continues. It never panics on hostile input;
//! anything that is not a well-formed reply line is a [`ReplyError`].

use serde::Serialize;
use smallvec::SmallVec;
use std::fmt;

/// A reply's lines. Most replies have one: it is kept inline, so a reply
/// costs one allocation (its text), not two.
pub type Lines = SmallVec<[String; 1]>;

/// One complete SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The three-digit reply code, e.g. 250.
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Lines,
}

/// Why a line could not be read as part of an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply line does not start with a three-digit code: {0:?}")]
    BadCode(String),
    #[error("reply code {0} is outside the range 200-599")]
    CodeOutOfRange(u16),
    #[error("multiline reply changed its code from {first} to {now}")]
    CodeChanged { first: u16, now: u16 },
    #[error("reply line is longer than {0} bytes")]
    LineTooLong(usize),
    #[error("reply is longer than {0} bytes")]
    ReplyTooLong(usize),
    #[error("reply has more than {0} lines")]
    TooManyLines(usize),
}

/// One parsed reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub code: u16,
    /// True for `NNN-text`: more lines follow.
    pub more: bool,
    pub text: String,
}

/// Parse one reply line (without its line ending).
///
/// Accepts `NNN`, `NNN text` and `NNN-text`. The code's first digit must be
/// 2-5 (RFC 5321 §4.2: 1yz is not used by SMTP; anything else is not SMTP).
pub fn parse_line(line: &str) -> Result<ReplyLine, ReplyError> {
    let head = parse_head(line)?;
    Ok(ReplyLine {
        code: head.code,
        more: head.more,
        text: line[head.text_at..].to_string(),
    })
}

/// A reply line's code, whether more lines follow, and where its text starts.
struct Head {
    code: u16,
    more: bool,
    text_at: usize,
}

fn parse_head(line: &str) -> Result<Head, ReplyError> {
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        return Err(ReplyError::BadCode(truncate(line, 80)));
    }
    let code = u16::from(bytes[0] - b'0') * 100
        + u16::from(bytes[1] - b'0') * 10
        + u16::from(bytes[2] - b'0');
    if !(200..=599).contains(&code) {
        return Err(ReplyError::CodeOutOfRange(code));
    }
    let (more, text_at) = match bytes.get(3) {
        None => (false, 3),
        Some(b' ') => (false, 4),
        Some(b'-') => (true, 4),
        Some(_) => return Err(ReplyError::BadCode(truncate(line, 80))),
    };
    Ok(Head {
        code,
        more,
        text_at,
    })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Decode a line's bytes as text without losing information: valid UTF-8 is
/// kept as is, each invalid byte becomes `\xNN`. Control characters are kept
/// here (the JSON writer escapes them); terminal and CSV output neutralise them.
pub fn decode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` is valid UTF-8 by construction.
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                let skip = e.error_len().unwrap_or(bad.len()).max(1);
                for b in &bad[..skip] {
                    out.push_str(&format!("\\x{b:02X}"));
                }
                rest = &bad[skip..];
            }
        }
    }
}

impl Reply {
    pub fn new(code: u16, text: &str) -> Self {
        Reply {
            code,
            lines: smallvec::smallvec![text.to_string()],
        }
    }

    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The enhanced status code (RFC 3463) at the start of the first line, e.g. `5.7.1`.
    pub fn enhanced_status(&self) -> Option<(u8, u16, u16)> {
        let first = self.lines.first()?;
        let word = first_word(first)?;
        status_digits(word).unwrap_or_else(|| status_parsed(word))
    }

    /// All lines joined with a space: for phrase matching and one-line display.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// The reply on one line as the server sent it: `550 5.7.1 Relaying denied`.
    pub fn one_line(&self) -> String {
        let text = self.text();
        if text.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {}", self.code, text)
        }
    }
}

/// `class.subject.detail` read from a word of digits and two dots, each
/// part one to three digits (RFC 3463 allows no more): `Some(answer)`.
/// `None` for anything else, which the general parser reads.
fn status_digits(word: &str) -> Option<Option<(u8, u16, u16)>> {
    let mut parts = [0u16; 3];
    let mut digits = [0u8; 3];
    let mut part = 0;
    for b in word.bytes() {
        match b {
            b'0'..=b'9' if digits[part] < 3 => {
                parts[part] = parts[part] * 10 + u16::from(b - b'0');
                digits[part] += 1;
            }
            b'.' if part < 2 && digits[part] > 0 => part += 1,
            _ => return None,
        }
    }
    if part < 2 || digits[2] == 0 {
        return None;
    }
    let [class, subject, detail] = parts;
    Some(matches!(class, 2 | 4 | 5).then_some((class as u8, subject, detail)))
}

/// `class.subject.detail` read by the general parser: what
/// [`status_digits`] leaves to it, and the reference it is tested against.
fn status_parsed(word: &str) -> Option<(u8, u16, u16)> {
    let mut parts = word.split('.');
    let class: u8 = parts.next()?.parse().ok()?;
    let subject: u16 = parts.next()?.parse().ok()?;
    let detail: u16 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !matches!(class, 2 | 4 | 5) {
        return None;
    }
    Some((class, subject, detail))
}

/// The first whitespace-separated word of `line`, as `split_whitespace`
/// gives it: without its Unicode machinery for the usual `5.7.1 text`
/// (digits and dots, then ASCII white space), through it for anything else.
fn first_word(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let len = bytes[start..]
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b'.'))
        .unwrap_or(bytes.len() - start);
    match bytes.get(start + len) {
        None => Some(&line[start..]),
        Some(b) if b.is_ascii_whitespace() && len > 0 => Some(&line[start..start + len]),
        Some(_) => line.split_whitespace().next(),
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// Accumulates reply lines until the final one, enforcing size limits.
#[derive(Debug)]
pub struct ReplyBuilder {
    max_reply: usize,
    max_lines: usize,
    code: Option<u16>,
    lines: Lines,
    size: usize,
}

impl ReplyBuilder {
    pub fn new(max_reply: usize, max_lines: usize) -> Self {
        ReplyBuilder {
            max_reply,
            max_lines,
            code: None,
            lines: Lines::new(),
            size: 0,
        }
    }

    /// Feed one line; returns the complete reply after the last line.
    pub fn push(&mut self, line: &str) -> Result<Option<Reply>, ReplyError> {
        self.push_owned(line.to_string())
    }

    /// [`ReplyBuilder::push`] for a line the caller owns: its text becomes
    /// the reply's line in place, without a copy.
    pub fn push_owned(&mut self, mut line: String) -> Result<Option<Reply>, ReplyError> {
        let parsed = parse_head(&line)?;
        let line_len = line.len();
        // The code and its separator go; the text stays where it is.
        line.drain(..parsed.text_at);
        match self.code {
            Some(first) if first != parsed.code => {
                return Err(ReplyError::CodeChanged {
                    first,
                    now: parsed.code,
                })
            }
            _ => self.code = Some(parsed.code),
        }
        self.size += line_len + 2;
        if self.size > self.max_reply {
            return Err(ReplyError::ReplyTooLong(self.max_reply));
        }
        if self.lines.len() >= self.max_lines {
            return Err(ReplyError::TooManyLines(self.max_lines));
        }
        self.lines.push(line);
        if parsed.more {
            Ok(None)
        } else {
            Ok(Some(Reply {
                code: parsed.code,
                lines: std::mem::take(&mut self.lines),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        let l = parse_line("250 OK").unwrap();
        assert_eq!((l.code, l.more, l.text.as_str()), (250, false, "OK"));
    }

    #[test]
    fn bare_code_is_a_final_line() {
        let l = parse_line("354").unwrap();
        assert_eq!((l.code, l.more, l.text.as_str()), (354, false, ""));
    }

    #[test]
    fn multiline_reply_is_assembled() {
        let mut b = ReplyBuilder::new(1024, 10);
        assert_eq!(b.push("250-mx.example.org").unwrap(), None);
        assert_eq!(b.push("250-PIPELINING").unwrap(), None);
        let r = b.push("250 8BITMIME").unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.lines[..], ["mx.example.org", "PIPELINING", "8BITMIME"]);
    }

    #[test]
    fn bad_codes_are_errors() {
        for bad in [
            "", "25", "2x0 hi", "abc", "999 x", "199 x", "250?x", "099 x",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn code_change_inside_multiline_is_an_error() {
        let mut b = ReplyBuilder::new(1024, 10);
        b.push("250-a").unwrap();
        assert_eq!(
            b.push("251 b"),
            Err(ReplyError::CodeChanged {
                first: 250,
                now: 251
            })
        );
    }

    #[test]
    fn limits_are_enforced() {
        let mut b = ReplyBuilder::new(20, 100);
        b.push("250-0123456789").unwrap();
        assert_eq!(b.push("250-0123456789"), Err(ReplyError::ReplyTooLong(20)));
        let mut b = ReplyBuilder::new(10_000, 2);
        b.push("250-a").unwrap();
        b.push("250-a").unwrap();
        assert_eq!(b.push("250 a"), Err(ReplyError::TooManyLines(2)));
    }

    #[test]
    fn enhanced_status_codes() {
        let r = Reply::new(454, "4.7.1 <a@b>: Relay access denied");
        assert_eq!(r.enhanced_status(), Some((4, 7, 1)));
        assert_eq!(Reply::new(250, "OK").enhanced_status(), None);
        assert_eq!(Reply::new(550, "1.2.3 x").enhanced_status(), None);
    }

    #[test]
    fn decode_escapes_invalid_utf8() {
        assert_eq!(decode(b"ok \xff\xfe z"), "ok \\xFF\\xFE z");
        assert_eq!(decode("héllo".as_bytes()), "héllo");
        assert_eq!(decode(b"\xe2\x82"), "\\xE2\\x82");
    }

    #[test]
    fn the_first_word_is_the_status_or_whatever_split_whitespace_gives() {
        for (line, word) in [
            ("5.7.1 Relaying denied", Some("5.7.1")),
            ("  5.7.1\tx", Some("5.7.1")),
            ("5.7.1", Some("5.7.1")),
            ("5.7.1x y", Some("5.7.1x")),
            ("\u{3000}5.7.1 y", Some("5.7.1")),
            ("5.7.1\u{a0}y", Some("5.7.1")),
            ("5.7.1\u{b}y", Some("5.7.1")),
            ("", None),
            ("   ", None),
        ] {
            assert_eq!(first_word(line), word, "{line:?}");
            assert_eq!(first_word(line), line.split_whitespace().next(), "{line:?}");
        }
    }

    /// The enhanced status as the general parser alone reads it.
    fn status_by_split(line: &str) -> Option<(u8, u16, u16)> {
        status_parsed(line.split_whitespace().next()?)
    }

    proptest::proptest! {
        #[test]
        fn the_fast_status_reads_what_the_general_parser_reads(
            s in "[ 0-9.+a]{0,14}|[245]\\.[0-9]{1,4}\\.[0-9]{1,6}( .*)?"
        ) {
            let reply = Reply { code: 550, lines: smallvec::smallvec![s.clone()] };
            proptest::prop_assert_eq!(reply.enhanced_status(), status_by_split(&s));
        }

        #[test]
        fn the_first_word_is_split_whitespaces(s in "[ \t\u{b}\u{a0}\u{3000}0-9.+a-z]{0,16}") {
            proptest::prop_assert_eq!(first_word(&s), s.split_whitespace().next());
        }

        #[test]
        fn parse_line_never_panics(s in "\\PC*") {
            let _ = parse_line(&s);
        }

        #[test]
        fn decode_never_panics_and_is_valid(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let s = decode(&bytes);
            // Valid UTF-8 input round-trips exactly.
            if let Ok(orig) = std::str::from_utf8(&bytes) {
                proptest::prop_assert_eq!(s, orig);
            }
        }

        #[test]
        fn well_formed_lines_round_trip(code in 200u16..600, more: bool, text in "[ -~]{0,60}") {
            let line = format!("{code}{}{text}", if more { '-' } else { ' ' });
            let parsed = parse_line(&line).unwrap();
            proptest::prop_assert_eq!(parsed.code, code);
            proptest::prop_assert_eq!(parsed.more, more);
            proptest::prop_assert_eq!(parsed.text, text);
        }
    }
}
