//! Which MTA software a server runs, guessed from what it says about itself:
//! the 220 banner, the EHLO replies (before and after TLS) and, as weaker
//! evidence, the wording of its refusals. Pure: facts in, a guess out. The
//! guess picks the remediation advice, so it names the product the admin
//! will recognise.

use crate::relay::model::facts::Facts;
use crate::relay::model::phrases::PhraseSet;
use crate::smtp::Reply;
use serde::Serialize;
use std::sync::LazyLock;

/// The products relayscan can tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub enum Software {
    Postfix,
    Exim,
    Sendmail,
    Opensmtpd,
    /// The SMTP service of IIS 6 (Windows Server 2003) and later.
    IisSmtp,
    Exchange,
    Qmail,
    Mailenable,
    Hmailserver,
    Courier,
    Unknown,
}

impl Software {
    /// The stable id used in CSV and JSON (`postfix`, `iis-smtp`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Software::Postfix => "postfix",
            Software::Exim => "exim",
            Software::Sendmail => "sendmail",
            Software::Opensmtpd => "opensmtpd",
            Software::IisSmtp => "iis-smtp",
            Software::Exchange => "exchange",
            Software::Qmail => "qmail",
            Software::Mailenable => "mailenable",
            Software::Hmailserver => "hmailserver",
            Software::Courier => "courier",
            Software::Unknown => "unknown",
        }
    }

    /// The product's name, for people.
    pub fn name(self) -> &'static str {
        match self {
            Software::Postfix => "Postfix",
            Software::Exim => "Exim",
            Software::Sendmail => "Sendmail",
            Software::Opensmtpd => "OpenSMTPD",
            Software::IisSmtp => "Microsoft IIS SMTP",
            Software::Exchange => "Microsoft Exchange",
            Software::Qmail => "qmail",
            Software::Mailenable => "MailEnable",
            Software::Hmailserver => "hMailServer",
            Software::Courier => "Courier",
            Software::Unknown => "unknown",
        }
    }
}

/// A guess, with the version when the server announced one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    pub software: Software,
    pub version: Option<String>,
}

/// Extensions only Exchange advertises (IIS SMTP with Exchange 2003 on top,
/// and Exchange 2007+ receive connectors).
const EXCHANGE_EXTENSIONS: &[&str] = &[
    "XEXCH50",
    "X-EXPS",
    "X-ANONYMOUSTLS",
    "X-LINK2STATE",
    "XRDST",
    "XSHADOW",
    "XSHADOWREQUEST",
    "XPROXYFROM",
];

/// Guess the software from the facts. `None` when the server never spoke SMTP.
pub fn fingerprint(facts: &Facts) -> Option<Fingerprint> {
    let banner = facts.greeting.banner.as_ref()?;
    if banner.code != 220 {
        // A refusal at the greeting still often names the software.
        return Some(from_texts(&banner.text(), false, || None));
    }
    // The greeting starts with the server's own name (RFC 5321 §4.2), which
    // says nothing about the software: `postfix.example.org ESMTP Exim`.
    let text = banner.text();
    let banner_words = text.split_once(' ').map_or("", |(_, rest)| rest);
    let tls_caps = facts.tls.as_ref().and_then(|t| t.capabilities.as_ref());
    let exchange_ext = facts
        .greeting
        .capabilities
        .keywords
        .iter()
        .chain(tls_caps.iter().flat_map(|c| c.keywords.iter()))
        .any(|k| EXCHANGE_EXTENSIONS.contains(&k.as_str()));
    Some(from_texts(banner_words, exchange_ext, || {
        weaker_evidence(facts)
    }))
}

/// The EHLO replies (before and after TLS) and the wording of refusals,
/// read when the banner named nothing: the first of [`WORDING`] found.
fn weaker_evidence(facts: &Facts) -> Option<Software> {
    let set = &*WORDING_SET;
    let mut found = 0u32;
    for reply in facts
        .greeting
        .hello
        .iter()
        .chain(facts.tls.iter().filter_map(|t| t.hello.as_ref()))
    {
        // The first line is the server's name, not its software; each
        // line is a text of its own (no phrase spans two).
        for line in reply.lines.iter().skip(1) {
            found |= set.scan(std::slice::from_ref(line), false);
        }
    }
    let mut last: Option<&Reply> = None;
    for reply in facts
        .tests
        .iter()
        .chain(facts.controls.iter())
        .flat_map(|t| t.mail_reply.iter().chain(t.rcpt_reply.iter()))
        .filter(|r| !r.is_positive())
        .take(32)
    {
        // The same words as the refusal before (most servers word every
        // refusal alike) find the same phrases: not read again.
        if last.is_some_and(|l| l.lines == reply.lines) {
            continue;
        }
        found |= set.scan(&reply.lines, true);
        last = Some(reply);
    }
    WORDING
        .iter()
        .enumerate()
        .find(|(i, _)| found & (1 << i) != 0)
        .map(|(_, (_, software))| *software)
}

/// Weaker evidence, in order: the first found wins.
const WORDING: &[(&str, Software)] = &[
    ("isn't in my list of allowed rcpthosts", Software::Qmail),
    ("postfix", Software::Postfix),
    ("relay not permitted", Software::Exim),
    ("exim", Software::Exim),
    ("... relaying denied", Software::Sendmail),
    ("unable to relay for", Software::IisSmtp),
    ("hmailserver", Software::Hmailserver),
    ("mailenable", Software::Mailenable),
];

/// [`WORDING`] in one automaton, each phrase's bit its place in the list.
static WORDING_SET: LazyLock<PhraseSet> = LazyLock::new(|| {
    let tagged: Vec<(&'static str, u32)> = WORDING
        .iter()
        .enumerate()
        .map(|(i, (phrase, _))| (*phrase, 1 << i))
        .collect();
    PhraseSet::new(&tagged)
});

/// The guess from a banner, whether the EHLO keywords include Exchange's,
/// and the weaker evidence, asked for only when the banner names nothing.
fn from_texts(
    banner: &str,
    exchange_ext: bool,
    weaker: impl FnOnce() -> Option<Software>,
) -> Fingerprint {
    let b = banner.to_ascii_lowercase();
    let found = |software, version| Fingerprint { software, version };

    if b.contains("microsoft esmtp mail service") || b.contains("microsoft smtp") {
        // IIS announces "Version: 6.0.3790.x"; Exchange 2007+ announces no
        // version, and any Exchange adds its own extensions.
        let version = word_after(banner, "Version:");
        if exchange_ext || b.contains("exchange") || version.is_none() {
            return found(Software::Exchange, version);
        }
        return found(Software::IisSmtp, version);
    }
    let rules: &[(&str, Software)] = &[
        ("postfix", Software::Postfix),
        ("exim", Software::Exim),
        ("sendmail", Software::Sendmail),
        ("opensmtpd", Software::Opensmtpd),
        ("mailenable", Software::Mailenable),
        ("hmailserver", Software::Hmailserver),
        ("courier", Software::Courier),
        ("qmail", Software::Qmail),
    ];
    for (needle, software) in rules {
        if let Some(at) = b.find(needle) {
            let version = match software {
                Software::Exim | Software::Sendmail => next_word(&banner[at + needle.len()..])
                    .map(|v| v.split('/').next().unwrap_or(v).to_string()),
                Software::Mailenable => word_after(banner, "Version:"),
                _ => None,
            };
            return found(
                *software,
                version.filter(|v| v.chars().any(|c| c.is_ascii_digit())),
            );
        }
    }
    if exchange_ext {
        return found(Software::Exchange, None);
    }
    found(weaker().unwrap_or(Software::Unknown), None)
}

/// The first word of `s`, trimmed of punctuation.
fn next_word(s: &str) -> Option<&str> {
    s.split_whitespace()
        .next()
        .map(|w| w.trim_matches(|c: char| c == ',' || c == ';' || c == ')' || c == '('))
        .filter(|w| !w.is_empty() && w.len() <= 40)
}

/// The word after `marker` (case-sensitive), e.g. the version after `Version:`.
fn word_after(s: &str, marker: &str) -> Option<String> {
    let at = s.find(marker)?;
    next_word(&s[at + marker.len()..])
        .map(|w| w.trim_end_matches('-').to_string())
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::model::facts::{Greeting, Hello};
    use proptest::strategy::Strategy;

    fn facts(banner: &str, ehlo: &[&str]) -> Facts {
        let mut f = Facts::new("192.0.2.1:25".parse().unwrap(), None);
        let mut lines = vec!["mx.example.org".to_string()];
        lines.extend(ehlo.iter().map(|s| s.to_string()));
        let hello = Reply {
            code: 250,
            lines: lines.into(),
        };
        f.greeting = Greeting {
            banner: Some(Reply::new(220, banner)),
            hello_command: Some(Hello::Ehlo),
            capabilities: crate::smtp::Capabilities::from_reply(&hello),
            hello: Some(hello),
            not_smtp: None,
        };
        f
    }

    fn guess(banner: &str, ehlo: &[&str]) -> (Software, Option<String>) {
        let fp = fingerprint(&facts(banner, ehlo)).unwrap();
        (fp.software, fp.version)
    }

    #[test]
    fn banners_of_each_product() {
        assert_eq!(
            guess("mx.example.org ESMTP Postfix (Debian/GNU)", &[]).0,
            Software::Postfix
        );
        assert_eq!(
            guess(
                "mx.example.org ESMTP Exim 4.96 Sun, 29 Nov 2026 03:00:00 +0000",
                &[]
            ),
            (Software::Exim, Some("4.96".into()))
        );
        assert_eq!(
            guess(
                "mx.example.org ESMTP Sendmail 8.17.1.9/8.17.1.9/Debian-2; Sun",
                &[]
            ),
            (Software::Sendmail, Some("8.17.1.9".into()))
        );
        assert_eq!(
            guess("mx.example.org ESMTP OpenSMTPD", &[]).0,
            Software::Opensmtpd
        );
        assert_eq!(
            guess(
                "mail Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  Sun",
                &["AUTH GSSAPI NTLM LOGIN"]
            ),
            (Software::IisSmtp, Some("6.0.3790.4675".into()))
        );
        // Exchange 2003 on IIS: the same banner, plus Exchange's extensions.
        assert_eq!(
            guess(
                "mail Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at",
                &["X-EXPS GSSAPI NTLM", "XEXCH50"]
            )
            .0,
            Software::Exchange
        );
        assert_eq!(
            guess(
                "mail.example.org Microsoft ESMTP MAIL Service ready at Sun, 29 Nov 2026",
                &[]
            )
            .0,
            Software::Exchange
        );
        assert_eq!(
            guess("mx ESMTP MailEnable Service, Version: 10.44-- ready", &[]),
            (Software::Mailenable, Some("10.44".into()))
        );
        assert_eq!(guess("mx ESMTP hMailServer", &[]).0, Software::Hmailserver);
        assert_eq!(
            guess("mx.example.org ESMTP Courier", &[]).0,
            Software::Courier
        );
        assert_eq!(guess("mx.example.org ESMTP", &[]).0, Software::Unknown);
    }

    #[test]
    fn refusal_wording_when_the_banner_says_nothing() {
        let mut f = facts("mx.example.org ESMTP", &[]);
        let mut t = crate::relay::TestFacts::skipped("S1", crate::relay::Kind::Direct, "");
        t.skipped = None;
        t.mail_reply = Some(Reply::new(250, "ok"));
        t.rcpt_reply = Some(Reply::new(
            553,
            "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
        ));
        f.tests.push(t);
        assert_eq!(fingerprint(&f).unwrap().software, Software::Qmail);
    }

    /// Facts whose banner names nothing, with these RCPT refusals.
    fn refused(ehlo: &[&str], refusals: &[&str]) -> Facts {
        let mut f = facts("mx.example.org ESMTP", ehlo);
        for text in refusals {
            let mut t = crate::relay::TestFacts::skipped("S1", crate::relay::Kind::Direct, "");
            t.skipped = None;
            t.mail_reply = Some(Reply::new(250, "ok"));
            t.rcpt_reply = Some(Reply {
                code: 550,
                lines: text.split('|').map(str::to_string).collect(),
            });
            f.tests.push(t);
        }
        f
    }

    #[test]
    fn weaker_evidence_in_list_order_never_inside_a_path() {
        let software = |ehlo: &[&str], refusals: &[&str]| {
            fingerprint(&refused(ehlo, refusals)).unwrap().software
        };
        // Sendmail's wording, in any case, over two lines of one reply.
        assert_eq!(
            software(&[], &["5.7.1 <v@example.net>...|Relaying denied"]),
            Software::Sendmail
        );
        // An address is not wording: `<postfix@…>` names nobody.
        assert_eq!(
            software(&[], &["5.1.1 <postfix@example.net>: unknown"]),
            Software::Unknown
        );
        // qmail's phrase comes before Postfix's name in the list, wherever
        // each was found.
        assert_eq!(
            software(
                &["XPOSTFIX-SOMETHING"],
                &["sorry, that domain isn't in my list of allowed rcpthosts"]
            ),
            Software::Qmail
        );
        // EHLO lines count (not the first, the server's name), paths and all.
        assert_eq!(software(&["X-<exim>"], &[]), Software::Exim);
        // Exchange's extensions outrank any wording.
        assert_eq!(
            software(&["X-EXPS GSSAPI NTLM", "XEXCH50"], &["relay not permitted"]),
            Software::Exchange
        );
        assert_eq!(software(&[], &["relay not permitted"]), Software::Exim);
    }

    /// The weaker evidence as it was read before the automaton: the EHLO
    /// lines (not the first) each ended by a line feed, then up to 32
    /// refusals with their paths blanked, joined by line feeds, lower-cased,
    /// each wording looked for alone in list order.
    fn weaker_evidence_as_before(facts: &Facts) -> Option<Software> {
        let mut ehlo_text = String::new();
        for reply in facts.greeting.hello.iter() {
            for line in reply.lines.iter().skip(1) {
                ehlo_text.push_str(line);
                ehlo_text.push('\n');
            }
        }
        let mut texts = vec![ehlo_text];
        texts.extend(
            facts
                .tests
                .iter()
                .flat_map(|t| t.mail_reply.iter().chain(t.rcpt_reply.iter()))
                .filter(|r| !r.is_positive())
                .map(|r| crate::relay::model::phrases::without_paths(&r.text()))
                .take(32),
        );
        let all = texts.join("\n").to_ascii_lowercase();
        WORDING
            .iter()
            .find(|(needle, _)| all.contains(needle))
            .map(|(_, software)| *software)
    }

    /// Server text: wordings in any case, cut by brackets, line breaks
    /// (`|`), control bytes and other text.
    fn server_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(
                    WORDING
                        .iter()
                        .flat_map(|(w, _)| [w.to_string(), w.to_ascii_uppercase()])
                        .collect::<Vec<_>>()
                ),
                proptest::sample::select(vec![
                    "<".to_string(),
                    ">".into(),
                    "|".into(),
                    "relay".into(),
                    " not permitted".into(),
                    "... ".into(),
                    "\u{1b}".into(),
                    "é".into(),
                ]),
                "[a-z <>.|]{0,10}",
                "(?s).{0,12}",
            ],
            0..6,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        /// Any EHLO lines and refusals: the one pass finds what the joined
        /// text did.
        #[test]
        fn weaker_evidence_reads_what_the_joined_text_did(
            ehlo in proptest::collection::vec(server_text(), 0..4),
            refusals in proptest::collection::vec(server_text(), 0..40),
        ) {
            let ehlo: Vec<&str> = ehlo.iter().map(String::as_str).collect();
            let refusals: Vec<&str> = refusals.iter().map(String::as_str).collect();
            let f = refused(&ehlo, &refusals);
            proptest::prop_assert_eq!(weaker_evidence(&f), weaker_evidence_as_before(&f));
        }
    }

    #[test]
    fn no_banner_no_guess() {
        let f = Facts::new("192.0.2.1:25".parse().unwrap(), None);
        assert_eq!(fingerprint(&f), None);
    }
}
