//! What a refusal means, read from its code, its enhanced status code
//! (RFC 3463) and its text. Each phrase list is matched against the text of
//! one reply, lower-cased: never against a whole session buffer.

use super::phrases::PhraseSet;
use crate::smtp::Reply;
use serde::Serialize;
use std::sync::LazyLock;

/// The meaning of one reply to MAIL or RCPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub enum ReplyClass {
    /// 2xx.
    Accepted,
    /// The server refuses to relay (`554 5.7.1 Relay access denied`,
    /// `550 relay not permitted`, Postfix's default `454 4.7.1 … Relay access denied`).
    RelayDenied,
    /// The server wants AUTH first (`530 5.7.0 Authentication required`).
    AuthRequired,
    /// The server wants STARTTLS first (`530 5.7.0 Must issue a STARTTLS command first`).
    TlsRequired,
    /// A domain does not resolve or accepts no mail (`450 4.1.2 … Domain not found`,
    /// null MX). Says nothing about relaying.
    DomainUnknown,
    /// The address was taken as local and there is no such user.
    UserUnknown,
    /// The address or command was not understood (500, 501, 5.1.3, 5.5.x).
    Syntax,
    /// Greylisting or another temporary failure: inconclusive.
    TempFail,
    /// 421: the server is closing the session.
    SessionEnd,
    /// Any other permanent refusal.
    Refused,
}

const TLS_PHRASES: &[&str] = &[
    "starttls",
    "tls required",
    "tls is required",
    "encryption required",
    "must use tls",
    "requires tls",
    "requires encryption",
];

const AUTH_PHRASES: &[&str] = &[
    "authentication required",
    "authentication is required",
    "requires authentication",
    "must authenticate",
    "not authenticated",
    "please authenticate",
    "auth required",
    "authenticate first",
    "authentication needed",
    "smtp auth required",
];

const RELAY_PHRASES: &[&str] = &[
    "relay access denied",
    "relaying denied",
    "relay denied",
    "relay rejected",
    "unable to relay",
    "relay not permitted",
    "relaying not permitted",
    "not permitted to relay",
    "not allowed to relay",
    "relaying not allowed",
    "relaying disallowed",
    "relaying is prohibited",
    "relay prohibited",
    "relaying prohibited",
    "we do not relay",
    "no relaying",
    "relay not allowed",
    "cannot relay",
    "can't relay",
    "isn't in my list of allowed rcpthosts",
    "not in my list of allowed rcpthosts",
    "delivery not authorized",
    "non-accepted domain",
    "not a local domain",
    "no such domain here",
];

const DOMAIN_PHRASES: &[&str] = &[
    "domain not found",
    "host or domain name not found",
    "unrouteable address",
    "unroutable address",
    "does not accept mail",
    "nullmx",
    "null mx",
    "domain does not exist",
    "no mx record",
    "name service error",
];

const USER_PHRASES: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "mailbox unavailable",
    "mailbox not found",
    "no mailbox",
    "invalid mailbox",
];

/// The phrase lists, in the order [`classify_reply`] reads them.
const PHRASE_LISTS: [(&[&str], u8); 5] = [
    (TLS_PHRASES, TLS),
    (AUTH_PHRASES, AUTH),
    (RELAY_PHRASES, RELAY),
    (DOMAIN_PHRASES, DOMAIN),
    (USER_PHRASES, USER),
];
const TLS: u8 = 1;
const AUTH: u8 = 2;
const RELAY: u8 = 4;
const DOMAIN: u8 = 8;
const USER: u8 = 16;

/// Every phrase in one automaton: a reply's text is read once, not once
/// per phrase (most replies a scan reads are refusals, and each was matched
/// against every phrase in turn).
static PHRASES: LazyLock<PhraseSet> = LazyLock::new(|| {
    let tagged: Vec<(&'static str, u32)> = PHRASE_LISTS
        .iter()
        .flat_map(|(phrases, bit)| phrases.iter().map(|p| (*p, u32::from(*bit))))
        .collect();
    PhraseSet::new(&tagged)
});

/// Which phrase lists occur in the reply's text (lines joined by a space,
/// paths blanked out, lower-cased), as bits.
fn phrases_in(reply: &Reply) -> u8 {
    // Only the five list bits are ever set.
    PHRASES.scan(&reply.lines, true) as u8
}

/// Classify one reply to MAIL FROM or RCPT TO.
pub fn classify_reply(reply: &Reply) -> ReplyClass {
    if reply.is_positive() {
        return ReplyClass::Accepted;
    }
    if reply.code == 421 {
        return ReplyClass::SessionEnd;
    }
    RECENT.with(|recent| match recent.try_borrow_mut() {
        Ok(mut recent) => recent.class_of(reply),
        // Nothing classifies from inside a classification; if it ever did,
        // the reply is read again.
        Err(_) => read_refusal(reply),
    })
}

/// How many of the last refusals each thread remembers the class of.
const REMEMBERED: usize = 8;

/// Longer refusals are not remembered (nor copied): servers' usual ones
/// are a line of under a hundred bytes.
const REMEMBERED_BYTES: usize = 512;

thread_local! {
    /// The classes of the last refusals read on this thread. A server gives
    /// the same refusal to test after test, and each test's outcome is read
    /// several times (by the probe's policy, the judge and the writer): a
    /// refusal seen before costs a comparison, not a reading of its text.
    static RECENT: std::cell::RefCell<Recent> = const {
        std::cell::RefCell::new(Recent {
            replies: Vec::new(),
            next: 0,
        })
    };
}

/// Refusals with their classes; the oldest is replaced first.
struct Recent {
    replies: Vec<(Reply, ReplyClass)>,
    next: usize,
}

impl Recent {
    fn class_of(&mut self, reply: &Reply) -> ReplyClass {
        if let Some((_, class)) = self.replies.iter().find(|(r, _)| r == reply) {
            return *class;
        }
        let class = read_refusal(reply);
        if reply.lines.iter().map(String::len).sum::<usize>() > REMEMBERED_BYTES {
            return class;
        }
        if self.replies.len() < REMEMBERED {
            self.replies.push((reply.clone(), class));
        } else if let Some(slot) = self.replies.get_mut(self.next) {
            *slot = (reply.clone(), class);
            self.next = (self.next + 1) % REMEMBERED;
        }
        class
    }
}

/// The class of a refusal (not 2xx, not 421), from its text and codes.
fn read_refusal(reply: &Reply) -> ReplyClass {
    let found = phrases_in(reply);
    let status = reply.enhanced_status();
    let subject_detail = status.map(|(_, s, d)| (s, d));
    if found & TLS != 0 || subject_detail == Some((7, 11)) {
        return ReplyClass::TlsRequired;
    }
    if found & AUTH != 0 || reply.code == 530 || subject_detail == Some((7, 57)) {
        return ReplyClass::AuthRequired;
    }
    if found & RELAY != 0 {
        return ReplyClass::RelayDenied;
    }
    if found & DOMAIN != 0 || matches!(subject_detail, Some((1, 2)) | Some((1, 8)) | Some((1, 10)))
    {
        return ReplyClass::DomainUnknown;
    }
    if reply.is_transient() {
        return ReplyClass::TempFail;
    }
    if found & USER != 0 || subject_detail == Some((1, 1)) {
        return ReplyClass::UserUnknown;
    }
    if matches!(reply.code, 500 | 501 | 555)
        || matches!(subject_detail, Some((1, 3)) | Some((1, 7)) | Some((5, _)))
    {
        return ReplyClass::Syntax;
    }
    ReplyClass::Refused
}

#[cfg(test)]
mod tests {
    use super::super::phrases::without_paths;
    use super::*;

    /// The phrase lists read the way they were before the automaton: the
    /// joined text, paths blanked, lower-cased, each phrase looked for alone.
    fn phrases_one_by_one(reply: &Reply) -> u8 {
        let text = without_paths(&reply.text()).to_ascii_lowercase();
        PHRASE_LISTS
            .iter()
            .filter(|(phrases, _)| phrases.iter().any(|p| text.contains(p)))
            .fold(0, |bits, (_, bit)| bits | bit)
    }

    /// The remembered classes are the classes: replies in an order that
    /// fills, hits and overwrites the memory each get what reading them
    /// gives, long ones included.
    #[test]
    fn a_remembered_class_is_the_class_read() {
        let long = format!("5.7.1 {} relay access denied", "x".repeat(600));
        let pool: Vec<Reply> = [
            (550, "5.7.1 Relaying denied"),
            (554, "5.7.1 <a@example.net>: Relay access denied"),
            (530, "5.7.0 Must issue a STARTTLS command first"),
            (550, "5.1.1 User unknown"),
            (451, "4.3.0 Try again later"),
            (501, "5.5.4 Syntax error"),
            (550, "Denied"),
            (553, "5.7.1 Authentication required"),
            (550, "5.1.2 Domain not found"),
            (554, long.as_str()),
            (550, "5.7.1 relaying DENIED"),
        ]
        .into_iter()
        .map(|(code, text)| Reply::new(code, text))
        .collect();
        for round in 0..5 {
            for k in 0..pool.len() * 3 {
                let reply = &pool[(k * (round + 3)) % pool.len()];
                assert_eq!(classify_reply(reply), read_refusal(reply), "{reply:?}");
            }
        }
        // The same text under another code is another reply.
        assert_eq!(
            classify_reply(&Reply::new(451, "5.7.1 Relaying denied")),
            ReplyClass::RelayDenied
        );
        assert_eq!(
            classify_reply(&Reply::new(451, "try later")),
            ReplyClass::TempFail
        );
        assert_eq!(
            classify_reply(&Reply::new(550, "try later")),
            ReplyClass::Refused
        );
    }

    #[test]
    fn the_automaton_is_built() {
        assert!(PHRASES.has_automaton());
    }

    #[test]
    fn every_phrase_is_found_in_its_own_list_whatever_its_case() {
        for (phrases, bit) in PHRASE_LISTS {
            for phrase in phrases {
                let shouted = format!("550 5.7.1 <a@b> {}", phrase.to_ascii_uppercase());
                let found = phrases_in(&Reply::new(550, &shouted));
                assert_ne!(found & bit, 0, "{phrase:?}");
                // Inside a path it is an address, not a phrase.
                let quoted = format!("<x{phrase}@example.net> ok");
                assert_eq!(phrases_in(&Reply::new(550, &quoted)), 0, "{phrase:?}");
            }
        }
    }

    #[test]
    fn a_phrase_split_over_two_lines_is_found_across_a_path_it_is_not() {
        let split = Reply {
            code: 554,
            lines: vec!["5.7.1 relay access".into(), "denied".into()].into(),
        };
        assert_eq!(phrases_in(&split), RELAY);
        assert_eq!(phrases_in(&split), phrases_one_by_one(&split));
        let cut = Reply {
            code: 554,
            lines: vec!["relay <a@b> access denied".into()].into(),
        };
        assert_eq!(phrases_in(&cut), 0);
    }

    #[test]
    fn hostile_text_is_read_as_before() {
        let relay = "Relay access denied";
        let long = "x".repeat(64 * 1024);
        for lines in [
            // A very long line, the phrase at its end and cut by a line end.
            vec![format!("{long} {relay}")],
            vec![format!("{long} relay access"), "denied".into()],
            // Unbalanced brackets: an unclosed `<` hides the rest of the
            // reply, lines after it included; a stray `>` hides nothing.
            vec![format!("5.7.1 <a@b {relay}")],
            vec!["5.7.1 <a@b".into(), relay.into()],
            vec![format!("5.7.1 a@b> {relay}")],
            vec![format!("<<a> {relay}>"), relay.into()],
            vec![format!("<<a>> {relay}")],
            // Control bytes, escapes, non-ASCII text around and inside.
            vec![format!("\u{1b}[31m{relay}\u{0}\t\r")],
            vec![format!("Relay\u{0}access denied é {relay}")],
            vec!["RELAY ACCESS DENİED".into()],
            vec![format!("ünïcödé — {relay} — 拒否")],
            vec!["\\xE2\\x82 must use starttls".into()],
        ] {
            let reply = Reply {
                code: 554,
                lines: lines.into(),
            };
            assert_eq!(
                phrases_in(&reply),
                phrases_one_by_one(&reply),
                "{:?}",
                reply.lines
            );
        }
        // The cases above that must find the relay phrase do.
        let found = |l: &[&str]| {
            phrases_in(&Reply {
                code: 554,
                lines: l.iter().map(|x| x.to_string()).collect(),
            })
        };
        assert_eq!(found(&[&format!("{long} relay access"), "denied"]), RELAY);
        assert_eq!(found(&["5.7.1 <a@b", relay]), 0);
        assert_eq!(found(&[&format!("5.7.1 a@b> {relay}")]), RELAY);
        assert_eq!(found(&["RELAY ACCESS DENİED"]), 0);
    }

    proptest::proptest! {
        /// Any text at all (control bytes, any Unicode, stray brackets):
        /// the automaton reads what each phrase alone reads.
        #[test]
        fn any_text_is_read_as_each_phrase_alone_reads_it(
            lines in proptest::collection::vec("(?s).{0,80}|[<>\\x00-\\x1f a-zA-Z.]{0,80}", 1..4),
            code in proptest::sample::select(vec![421u16, 450, 451, 454, 530, 550, 553, 554]),
        ) {
            let reply = Reply { code, lines: lines.into() };
            proptest::prop_assert_eq!(phrases_in(&reply), phrases_one_by_one(&reply));
        }
    }

    fn class(code: u16, text: &str) -> ReplyClass {
        classify_reply(&Reply::new(code, text))
    }

    #[test]
    fn relay_denials_in_each_mtas_words() {
        use ReplyClass::RelayDenied;
        // Postfix: reject_unauth_destination and the default defer_unauth_destination.
        assert_eq!(
            class(554, "5.7.1 <v@example.net>: Relay access denied"),
            RelayDenied
        );
        assert_eq!(
            class(454, "4.7.1 <v@example.net>: Relay access denied"),
            RelayDenied
        );
        // Exim.
        assert_eq!(class(550, "relay not permitted"), RelayDenied);
        // Sendmail.
        assert_eq!(
            class(550, "5.7.1 <v@example.net>... Relaying denied"),
            RelayDenied
        );
        // IIS / Exchange.
        assert_eq!(
            class(550, "5.7.1 Unable to relay for v@example.net"),
            RelayDenied
        );
        assert_eq!(
            class(
                550,
                "5.7.54 SMTP; Unable to relay recipient in non-accepted domain"
            ),
            RelayDenied
        );
        // qmail.
        assert_eq!(
            class(
                553,
                "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
            ),
            RelayDenied
        );
    }

    #[test]
    fn auth_and_tls() {
        assert_eq!(
            class(530, "5.7.0 Authentication required"),
            ReplyClass::AuthRequired
        );
        assert_eq!(
            class(530, "5.7.1 Client was not authenticated"),
            ReplyClass::AuthRequired
        );
        assert_eq!(
            class(530, "5.7.0 Must issue a STARTTLS command first"),
            ReplyClass::TlsRequired
        );
    }

    #[test]
    fn greylisting_is_temporary_not_closed() {
        assert_eq!(
            class(451, "4.7.1 Greylisted, please try again later"),
            ReplyClass::TempFail
        );
        assert_eq!(
            class(
                450,
                "4.2.0 <v@example.net>: Recipient address rejected: Greylisted"
            ),
            ReplyClass::TempFail
        );
        assert_eq!(
            class(421, "4.3.2 Service shutting down"),
            ReplyClass::SessionEnd
        );
    }

    #[test]
    fn unknown_domains_say_nothing_about_relay() {
        assert_eq!(
            class(
                450,
                "4.1.2 <v@example.net>: Recipient address rejected: Domain not found"
            ),
            ReplyClass::DomainUnknown
        );
        assert_eq!(class(556, "5.1.10 <v@example.com>: Recipient address rejected: Domain example.com does not accept mail (nullMX)"), ReplyClass::DomainUnknown);
        assert_eq!(
            class(
                450,
                "4.1.8 <s@example.net>: Sender address rejected: Domain not found"
            ),
            ReplyClass::DomainUnknown
        );
    }

    #[test]
    fn other_refusals() {
        assert_eq!(class(550, "5.1.1 <v%example.net@mx>: Recipient address rejected: User unknown in local recipient table"), ReplyClass::UserUnknown);
        assert_eq!(
            class(501, "5.1.3 Bad recipient address syntax"),
            ReplyClass::Syntax
        );
        assert_eq!(
            class(550, "Invalid recipient: <v@example.net>"),
            ReplyClass::Refused
        );
        assert_eq!(class(250, "2.1.5 Ok"), ReplyClass::Accepted);
    }

    #[test]
    fn quoted_addresses_are_not_read_as_phrases() {
        assert_eq!(
            class(550, "5.1.1 <v%example.net@starttls-closed.lab.example>: Recipient address rejected: User unknown in local recipient table"),
            ReplyClass::UserUnknown
        );
        assert_eq!(
            class(
                554,
                "5.7.1 <relay-denied@example.net>: Recipient address rejected: Access denied"
            ),
            ReplyClass::Refused
        );
        assert_eq!(without_paths("a <b<c>> d <e"), "a <><> d ");
    }

    #[test]
    fn text_is_matched_per_reply_not_by_code_alone() {
        // "relay" inside a host name must not count as a denial.
        assert_eq!(
            class(550, "5.1.1 mailbox unavailable at relay.example.org"),
            ReplyClass::UserUnknown
        );
    }
}
