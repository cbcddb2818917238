//! The EHLO reply (RFC 5321 §4.1.1.1): the server's name on the first line,
//! then one service extension per line (`PIPELINING`, `STARTTLS`, `AUTH PLAIN LOGIN`,
//! `SIZE 10240000`, …).

use super::Reply;
use serde::Serialize;

/// At most this many extension lines are kept; a hostile server may send thousands.
const MAX_EXTENSIONS: usize = 64;
/// At most this many SASL mechanisms are kept: `AUTH` may be repeated on
/// every line, each listing hundreds of names.
const MAX_AUTH: usize = 32;

/// The service extensions a server advertised in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub pipelining: bool,
    pub starttls: bool,
    /// SASL mechanisms from `AUTH` (and the old `AUTH=` form), upper-cased, deduplicated.
    pub auth: Vec<String>,
    /// `SIZE` limit, when given.
    pub size: Option<u64>,
    /// Every extension keyword, upper-cased, in order (capped).
    pub keywords: Vec<String>,
}

impl Capabilities {
    /// Read capabilities from a positive EHLO reply. The first line is the
    /// greeting, not an extension.
    pub fn from_reply(reply: &Reply) -> Self {
        let mut caps = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            if caps.keywords.len() >= MAX_EXTENSIONS {
                break;
            }
            let mut words = line.split_whitespace();
            let Some(first) = words.next() else { continue };
            let (keyword, inline) = match first.split_once('=') {
                Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
                None => (first.to_ascii_uppercase(), None),
            };
            if keyword.is_empty()
                || !keyword
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                continue;
            }
            match keyword.as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "SIZE" => caps.size = words.next().and_then(|w| w.parse().ok()),
                "AUTH" => {
                    for mech in inline.into_iter().chain(words) {
                        let mech = mech.to_ascii_uppercase();
                        let valid = !mech.is_empty()
                            && mech.len() <= 20
                            && mech
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                        if caps.auth.len() >= MAX_AUTH {
                            break;
                        }
                        if valid && !caps.auth.contains(&mech) {
                            caps.auth.push(mech);
                        }
                    }
                }
                _ => {}
            }
            if !caps.keywords.contains(&keyword) {
                caps.keywords.push(keyword);
            }
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lines: &[&str]) -> Reply {
        Reply {
            code: 250,
            lines: lines.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn postfix_ehlo() {
        let caps = Capabilities::from_reply(&reply(&[
            "mx.example.org",
            "PIPELINING",
            "SIZE 10240000",
            "VRFY",
            "ETRN",
            "STARTTLS",
            "AUTH PLAIN LOGIN",
            "AUTH=PLAIN LOGIN",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
        ]));
        assert!(caps.pipelining && caps.starttls);
        assert_eq!(caps.size, Some(10_240_000));
        assert_eq!(caps.auth, vec!["PLAIN", "LOGIN"]);
        assert!(caps.keywords.contains(&"DSN".to_string()));
        assert!(!caps.keywords.contains(&"MX.EXAMPLE.ORG".to_string()));
    }

    #[test]
    fn iis_style_auth() {
        let caps = Capabilities::from_reply(&reply(&[
            "mail Hello [192.0.2.1]",
            "AUTH GSSAPI NTLM LOGIN",
        ]));
        assert_eq!(caps.auth, vec!["GSSAPI", "NTLM", "LOGIN"]);
        assert!(!caps.starttls);
    }

    #[test]
    fn huge_capability_lists_are_capped() {
        let lines: Vec<String> = (0..10_000).map(|i| format!("X-EXT{i}")).collect();
        let mut all = vec!["host".to_string()];
        all.extend(lines);
        let r = Reply {
            code: 250,
            lines: all.into(),
        };
        assert_eq!(Capabilities::from_reply(&r).keywords.len(), MAX_EXTENSIONS);
    }

    #[test]
    fn endless_auth_lists_are_capped() {
        let mut lines = vec!["host".to_string()];
        for l in 0..500 {
            let mechs: Vec<String> = (0..100).map(|m| format!("M{l}X{m}")).collect();
            lines.push(format!("AUTH {}", mechs.join(" ")));
        }
        let caps = Capabilities::from_reply(&Reply {
            code: 250,
            lines: lines.into(),
        });
        assert_eq!(caps.auth.len(), MAX_AUTH);
        assert_eq!(caps.keywords, vec!["AUTH"]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(lines in proptest::collection::vec("\\PC{0,40}", 0..20)) {
            let r = Reply { code: 250, lines: lines.into() };
            let caps = Capabilities::from_reply(&r);
            proptest::prop_assert!(caps.keywords.len() <= MAX_EXTENSIONS);
        }

        /// Any text at all (control characters, escapes, NUL): kept
        /// keywords and mechanisms are plain tokens, within their caps.
        #[test]
        fn any_text_gives_only_plain_tokens(lines in proptest::collection::vec(".{0,60}", 0..40)) {
            let caps = Capabilities::from_reply(&Reply { code: 250, lines: lines.into() });
            proptest::prop_assert!(caps.keywords.len() <= MAX_EXTENSIONS);
            proptest::prop_assert!(caps.auth.len() <= MAX_AUTH);
            for word in caps.keywords.iter().chain(caps.auth.iter()) {
                proptest::prop_assert!(!word.is_empty());
                proptest::prop_assert!(word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{:?}", word);
            }
        }
    }
}
