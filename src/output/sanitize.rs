//! Neutralising text that came from a server before it reaches a terminal or
//! a spreadsheet. A banner is attacker-controlled: it may carry ANSI/OSC
//! escape sequences (colour, cursor moves, hyperlinks, clipboard writes) or a
//! spreadsheet formula (`=HYPERLINK(…)`).

use std::borrow::Cow;

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidirectional marks, embeddings, overrides and isolates
            // (U+061C ARABIC LETTER MARK, U+200E/F, U+202A–E, U+2066–9) can
            // reorder what a reader sees.
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators break a line where a terminal,
            // an editor or a JavaScript parser sees one.
            | '\u{2028}' | '\u{2029}'
            // Zero-width space, non-joiner, joiner, word joiner, invisible
            // operators and the BOM hide text or make two strings look alike.
            | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
        )
}

/// Replace every control character (C0, DEL, C1) and bidi control with a
/// visible escape (`\x1B`, `\u{202E}`). Printable text is untouched.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02X}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:X}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A CSV cell: control characters escaped as for the terminal, and a cell that
/// a spreadsheet would run as a formula (starting with `= + - @`, or a tab or
/// CR) is prefixed with `'` so it stays inert text (OWASP's advice).
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let risky = matches!(s.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    let clean = terminal(s);
    if risky {
        Cow::Owned(format!("'{clean}"))
    } else {
        clean
    }
}

/// A JSON value on one line, safe to print on a terminal: serde_json already
/// escapes C0 controls; this also escapes DEL, the C1 controls (U+0080–U+009F,
/// among them the 8-bit CSI) and bidi controls as `\uXXXX`. Every such
/// character can only be inside a JSON string (the syntax is ASCII), where
/// the escape means the same character: the value is unchanged.
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let text = serde_json::to_string(value)?;
    if !text
        .chars()
        .any(|c| c == '\u{7f}' || (c as u32 >= 0x80 && is_unsafe(c)))
    {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c == '\u{7f}' || (c as u32 >= 0x80 && is_unsafe(c)) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Shorten to at most `max` characters for a table column, marking the cut.
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        Cow::Borrowed(s)
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        Cow::Owned(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences() {
        assert_eq!(
            terminal("220 \x1b[31mred\x1b[0m"),
            "220 \\x1B[31mred\\x1B[0m"
        );
        assert_eq!(
            terminal("a\x1b]52;c;ZXZpbA==\x07b"),
            "a\\x1B]52;c;ZXZpbA==\\x07b"
        );
        assert_eq!(terminal("\u{9b}31m"), "\\x9B31m");
        assert_eq!(terminal("abc\u{202E}fed"), "abc\\u{202E}fed");
        assert!(matches!(terminal("plain ESMTP"), Cow::Borrowed(_)));
    }

    /// Invisible and line-breaking characters a reader cannot see are made
    /// visible in every output: terminal, CSV and JSON Lines.
    #[test]
    fn separators_zero_width_and_bidi_marks_are_escaped() {
        for (raw, shown) in [
            ("a\u{2028}b", "a\\u{2028}b"),
            ("a\u{2029}b", "a\\u{2029}b"),
            ("a\u{200B}b", "a\\u{200B}b"),
            ("a\u{061C}b", "a\\u{61C}b"),
            ("a\u{FEFF}b", "a\\u{FEFF}b"),
        ] {
            assert_eq!(terminal(raw), shown);
            assert_eq!(csv_cell(raw), shown);
            let line = json_line(&serde_json::json!({ "banner": raw })).unwrap();
            assert!(line.is_ascii(), "{line}");
            let back: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(back["banner"], raw);
        }
        // Ordinary non-ASCII text stays as it is.
        assert_eq!(terminal("Grüße 你好"), "Grüße 你好");
    }

    #[test]
    fn defuses_formulas() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "'=HYPERLINK(\"http://x\",\"y\")"
        );
        for s in ["+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert!(csv_cell(s).starts_with('\''), "{s:?}");
        }
        assert_eq!(csv_cell("220 mx ESMTP"), "220 mx ESMTP");
    }

    #[test]
    fn json_lines_escape_what_json_leaves_raw() {
        let v = serde_json::json!({"banner": "a\u{1b}[31m b\u{9b}6n c\u{202e}d \u{7f} é"});
        let line = json_line(&v).unwrap();
        assert_eq!(
            line,
            r#"{"banner":"a\u001b[31m b\u009b6n c\u202ed \u007f é"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, v);
    }

    proptest::proptest! {
        /// Any text in a JSON string: one line, no raw control character,
        /// and it parses back to the same value.
        #[test]
        fn json_lines_are_valid_and_inert(s in ".*|[\\x00-\\x1f\\x7f-\\u{9f}\\u{202a}-\\u{202e}\\u{2028}\\u{2029}\\u{200b}\\u{61c}a-z\"\\\\]*") {
            let v = serde_json::json!({"text": s, "list": [s.clone()]});
            let line = json_line(&v).unwrap();
            proptest::prop_assert!(!line.contains('\n'));
            proptest::prop_assert!(!line.chars().any(|c| c == '\u{7f}' || is_unsafe(c)), "{:?}", line);
            let back: serde_json::Value = serde_json::from_str(&line).unwrap();
            proptest::prop_assert_eq!(back, v);
        }

        #[test]
        fn no_control_character_survives(s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}a-z]*") {
            let t = terminal(&s);
            proptest::prop_assert!(!t.chars().any(is_unsafe));
            let c = csv_cell(&s);
            proptest::prop_assert!(!c.chars().any(is_unsafe));
            proptest::prop_assert!(!matches!(c.chars().next(), Some('=' | '+' | '-' | '@')));
        }
    }
}
