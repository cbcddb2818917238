//! The relay test catalogue as data (the README's "Relay tests" section
//! lists it for users).
//!
//! Each test is a sender path and a recipient path with placeholders. A test
//! whose placeholders cannot all be filled for a target is skipped, and the
//! record says which placeholder was missing.

use super::address::SelfForm;
use serde::Serialize;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

/// What kind of evidence acceptance of a test is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub enum Kind {
    /// Recipient `<{u}@{D}>`: acceptance is strong evidence of relaying.
    Direct,
    /// An address trick that routes through the target; to the server it may
    /// look like a local part, so acceptance alone is weaker evidence.
    Trick,
    /// Not a relay test: calibrates the verdict.
    Control,
    /// A relay test run after AUTH (`--auth`): after a deliberately wrong
    /// password it must be refused; after the right one it may be accepted.
    Auth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayTest {
    pub id: &'static str,
    pub kind: Kind,
    /// Sender path templates: the first whose placeholders are all known is used.
    pub sender: &'static [&'static str],
    pub recipient: &'static str,
}

const TRICK_SENDER: &[&str] = &["<{s}@{TD}>", "<{s}@[{IP}]>"];

macro_rules! direct {
    ($id:literal, $sender:literal) => {
        RelayTest {
            id: $id,
            kind: Kind::Direct,
            sender: &[$sender],
            recipient: "<{u}@{D}>",
        }
    };
}
macro_rules! trick {
    ($id:literal, $rcpt:literal) => {
        RelayTest {
            id: $id,
            kind: Kind::Trick,
            sender: TRICK_SENDER,
            recipient: $rcpt,
        }
    };
}

/// Every relay test, in the order they are run.
pub const CATALOGUE: &[RelayTest] = &[
    direct!("S1", "<>"),
    direct!("S2", "<{s}@{D}>"),
    direct!("S3", "<{s}@{H}>"),
    direct!("S4", "<{s}@[{IP}]>"),
    direct!("S5", "<{s}>"),
    direct!("S6", "<{s}@localhost>"),
    direct!("S7", "<{s}@{TD}>"),
    direct!("S8", "<{s}@{T}>"),
    trick!("R1", "<{u}%{D}@[{IP}]>"),
    trick!("R2", "<{u}%{D}@{H}>"),
    trick!("R3", "<{u}%{D}@{TD}>"),
    trick!("R4", "<\"{u}@{D}\">"),
    trick!("R5", "<\"{u}%{D}\">"),
    trick!("R6", "<{u}@{D}@[{IP}]>"),
    trick!("R7", "<\"{u}@{D}\"@[{IP}]>"),
    trick!("R8", "<{u}@{D}@{H}>"),
    trick!("R9", "<\"{u}@{D}\"@{H}>"),
    trick!("R10", "<@[{IP}]:{u}@{D}>"),
    trick!("R11", "<@{H}:{u}@{D}>"),
    trick!("R12", "<{D}!{u}>"),
    trick!("R13", "<{D}!{u}@[{IP}]>"),
    trick!("R14", "<{D}!{u}@{H}>"),
    trick!("R15", "<{u}@{D}@>"),
    trick!("R16", "<{u}%[{D}]@>"),
    trick!("R17", "<{u}@[{D}]@>"),
    trick!("R18", "{u}@{D}"),
];

/// C1: a recipient in a domain that cannot exist. A server that accepts it
/// accepts everything (a sink, a honeypot, a development server).
pub const CONTROL_ACCEPT_ALL: RelayTest = RelayTest {
    id: "C1",
    kind: Kind::Control,
    sender: &["<{s}@{D}>"],
    recipient: "<{random}@relay-control.invalid>",
};

/// C2: the target's own postmaster (RFC 5321 §4.5.1 requires it). A server that
/// refuses it takes no mail from this vantage point at all.
pub const CONTROL_POSTMASTER: RelayTest = RelayTest {
    id: "C2",
    kind: Kind::Control,
    sender: &["<{s}@{D}>"],
    recipient: "<postmaster@{TD}>",
};

/// C3: a random local part at the target itself, one per form an accepted
/// address trick took: `C3-ip` (`@[IP]`), `C3-host` (`@{H}`), `C3-domain`
/// (`@{TD}`) and `C3-local` (no domain), in [`SelfForm`] order. A server that
/// accepts any local part there takes `user%foreign@target` or
/// `foreign!user` for a local mailbox name, so the trick proves nothing
/// (OpenSMTPD with a catch-all does exactly this).
pub const CONTROL_LOCAL_PART: [RelayTest; 4] = [
    RelayTest {
        id: "C3-ip",
        kind: Kind::Control,
        sender: &["<{s}@{D}>"],
        recipient: "<{random}@[{IP}]>",
    },
    RelayTest {
        id: "C3-host",
        kind: Kind::Control,
        sender: &["<{s}@{D}>"],
        recipient: "<{random}@{H}>",
    },
    RelayTest {
        id: "C3-domain",
        kind: Kind::Control,
        sender: &["<{s}@{D}>"],
        recipient: "<{random}@{TD}>",
    },
    RelayTest {
        id: "C3-local",
        kind: Kind::Control,
        sender: &["<{s}@{D}>"],
        recipient: "<{random}>",
    },
];

/// The C3 control for the place an accepted trick names.
pub fn local_part_control(form: SelfForm) -> &'static RelayTest {
    match form {
        SelfForm::Literal => &CONTROL_LOCAL_PART[0],
        SelfForm::Host => &CONTROL_LOCAL_PART[1],
        SelfForm::TargetDomain => &CONTROL_LOCAL_PART[2],
        SelfForm::Unqualified => &CONTROL_LOCAL_PART[3],
    }
}

/// Where a control goes among a record's controls: C1, C2, then the C3
/// controls in [`SelfForm`] order (ip, host, domain, local).
pub fn control_rank(id: &str) -> usize {
    [&CONTROL_ACCEPT_ALL, &CONTROL_POSTMASTER]
        .into_iter()
        .chain(CONTROL_LOCAL_PART.iter())
        .position(|c| c.id == id)
        .unwrap_or(usize::MAX)
}

/// One of the C3 controls.
pub fn is_local_part_control(id: &str) -> bool {
    CONTROL_LOCAL_PART.iter().any(|c| c.id == id)
}

/// Look a test up by id (case-insensitive), controls included.
pub fn find(id: &str) -> Option<&'static RelayTest> {
    CATALOGUE
        .iter()
        .chain([&CONTROL_ACCEPT_ALL, &CONTROL_POSTMASTER])
        .chain(CONTROL_LOCAL_PART.iter())
        .find(|t| t.id.eq_ignore_ascii_case(id))
}

/// The values the placeholders stand for, for one target.
#[derive(Debug, Clone)]
pub struct Placeholders {
    /// `{s}` sender local part.
    pub sender: String,
    /// `{u}` recipient local part.
    pub recipient: String,
    /// `{D}` foreign domain.
    pub foreign_domain: String,
    /// `{IP}` the target's address.
    pub ip: IpAddr,
    /// `{H}` the target's validated host name.
    pub host: Option<String>,
    /// `{TD}` the target's mail domain.
    pub target_domain: Option<String>,
    /// `{T}` our own EHLO name.
    pub ehlo: String,
    /// `{random}` a random token, for the C1 control.
    pub random: String,
}

impl Placeholders {
    /// Append the value of placeholder `name` to `out`; false when it has none.
    fn write_value(&self, name: &str, out: &mut String) -> bool {
        let value = match name {
            "s" => &self.sender,
            "u" => &self.recipient,
            "D" => &self.foreign_domain,
            // The inside of an address literal (RFC 5321 §4.1.3).
            "IP" => {
                match self.ip {
                    IpAddr::V4(v4) => push_ipv4(out, v4),
                    IpAddr::V6(v6) => {
                        use std::fmt::Write;
                        let _ = write!(out, "IPv6:{v6}");
                    }
                }
                return true;
            }
            "H" => match &self.host {
                Some(h) => h,
                None => return false,
            },
            "TD" => match &self.target_domain {
                Some(d) => d,
                None => return false,
            },
            "T" => &self.ehlo,
            "random" => &self.random,
            _ => return false,
        };
        out.push_str(value);
        true
    }

    /// Fill one template into `out` (cleared first). `Err` names the first
    /// placeholder with no value.
    pub fn render<'t>(&self, template: &'t str, out: &mut String) -> Result<(), &'t str> {
        out.clear();
        let mut rest = template;
        // `{` and `}` are ASCII: byte positions are character boundaries.
        while let Some(open) = rest.bytes().position(|b| b == b'{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.bytes().position(|b| b == b'}') else {
                out.push_str(&rest[open..]);
                return Ok(());
            };
            let name = &after[..close];
            if !self.write_value(name, out) {
                return Err(name);
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(())
    }
}

/// `a.b.c.d` without the formatting machinery: every test's paths hold it.
fn push_ipv4(out: &mut String, ip: std::net::Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
}

/// A test with its paths filled in for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedTest {
    pub test: &'static RelayTest,
    /// Shared, not copied, with the facts of every run of the test.
    pub mail_from: Arc<str>,
    pub rcpt_to: Arc<str>,
}

/// The paths of one target's tests, each template filled in once: the
/// direct tests share their recipient template and the tricks their sender
/// templates, so a host's suite has about 30 templates for its 55 paths,
/// and every test with the same template (the same static string) shares
/// the one path.
pub struct Paths<'p> {
    placeholders: &'p Placeholders,
    filled: Vec<(&'static str, Result<Arc<str>, &'static str>)>,
    buf: String,
}

impl<'p> Paths<'p> {
    pub fn new(placeholders: &'p Placeholders) -> Self {
        Paths {
            placeholders,
            // Room for every template of the catalogue and the controls.
            filled: Vec::with_capacity(48),
            buf: String::with_capacity(96),
        }
    }

    /// `template` filled in, or the first placeholder it has no value for.
    fn path(&mut self, template: &'static str) -> Result<Arc<str>, &'static str> {
        // The same template is the same static string: its address and
        // length tell, without reading it. (The same text at another address
        // would be filled in again: the same path, not shared.)
        let same = |t: &&str| t.as_ptr() == template.as_ptr() && t.len() == template.len();
        if let Some((_, done)) = self.filled.iter().find(|(t, _)| same(t)) {
            return done.clone();
        }
        let done = self
            .placeholders
            .render(template, &mut self.buf)
            .map(|()| Arc::from(self.buf.as_str()));
        self.filled.push((template, done.clone()));
        done
    }
}

impl RelayTest {
    /// Fill in the paths, or name the missing placeholder.
    pub fn render(&'static self, p: &Placeholders) -> Result<RenderedTest, &'static str> {
        self.render_in(&mut Paths::new(p))
    }

    /// [`RelayTest::render`] with the paths of the target's other tests.
    pub fn render_in(&'static self, paths: &mut Paths<'_>) -> Result<RenderedTest, &'static str> {
        let mut missing = None;
        let mut mail_from = None;
        for template in self.sender {
            match paths.path(template) {
                Ok(path) => {
                    mail_from = Some(path);
                    break;
                }
                Err(name) => {
                    missing.get_or_insert(name);
                }
            }
        }
        let mail_from = mail_from.ok_or(missing.unwrap_or_default())?;
        let rcpt_to = paths.path(self.recipient)?;
        Ok(RenderedTest {
            test: self,
            mail_from,
            rcpt_to,
        })
    }
}

/// Why a test was skipped whose placeholder `name` is not known for the
/// target: a fixed text for the two that can be unknown (`{H}`, `{TD}`).
pub fn unknown_placeholder(name: &str) -> Cow<'static, str> {
    match name {
        "H" => Cow::Borrowed("placeholder {H} unknown"),
        "TD" => Cow::Borrowed("placeholder {TD} unknown"),
        other => Cow::Owned(format!("placeholder {{{other}}} unknown")),
    }
}

/// Which tests to run: parsed from `--tests all|direct|tricks|ID,…`.
pub fn select(spec: &str) -> Result<Vec<&'static RelayTest>, String> {
    let mut chosen: Vec<&'static RelayTest> = Vec::new();
    for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let add: Vec<&'static RelayTest> = match word.to_ascii_lowercase().as_str() {
            "all" => CATALOGUE.iter().collect(),
            "direct" => CATALOGUE
                .iter()
                .filter(|t| t.kind == Kind::Direct)
                .collect(),
            "tricks" => CATALOGUE.iter().filter(|t| t.kind == Kind::Trick).collect(),
            _ => match CATALOGUE.iter().find(|t| t.id.eq_ignore_ascii_case(word)) {
                Some(t) => vec![t],
                None => {
                    return Err(format!(
                        "unknown test {word:?} (use all, direct, tricks, or ids S1-S8, R1-R18)"
                    ))
                }
            },
        };
        for t in add {
            if !chosen.iter().any(|c| c.id == t.id) {
                chosen.push(t);
            }
        }
    }
    if chosen.is_empty() {
        return Err("no tests selected".into());
    }
    // Run in catalogue order whatever order they were named in.
    chosen.sort_by_key(|t| CATALOGUE.iter().position(|c| c.id == t.id));
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders() -> Placeholders {
        Placeholders {
            sender: "scan".into(),
            recipient: "victim".into(),
            foreign_domain: "example.net".into(),
            ip: "192.0.2.1".parse().unwrap(),
            host: Some("mx.example.org".into()),
            target_domain: Some("example.org".into()),
            ehlo: "scanner.example.com".into(),
            random: "r4nd0m".into(),
        }
    }

    #[test]
    fn an_ipv6_target_gets_an_ipv6_literal_and_a_missing_value_is_named() {
        let mut p = placeholders();
        p.ip = "2001:db8::25".parse().unwrap();
        assert_eq!(rendered("S4", &p).0, "<scan@[IPv6:2001:db8::25]>");
        let mut out = String::new();
        p.render("{s}@[{IP}]", &mut out).unwrap();
        assert_eq!(
            out,
            format!("scan@[{}]", super::super::address::literal_inner(p.ip))
        );
        p.host = None;
        assert_eq!(p.render("<{u}@{H}>", &mut out), Err("H"));
        assert_eq!(p.render("{nope}", &mut out), Err("nope"));
    }

    proptest::proptest! {
        #[test]
        fn an_ipv4_literal_is_what_display_writes(octets: [u8; 4]) {
            let ip = std::net::Ipv4Addr::from(octets);
            let mut out = String::from("x@[");
            push_ipv4(&mut out, ip);
            proptest::prop_assert_eq!(out, format!("x@[{ip}"));
        }
    }

    fn rendered(id: &str, p: &Placeholders) -> (String, String) {
        let t = find(id).unwrap().render(p).unwrap();
        (t.mail_from.to_string(), t.rcpt_to.to_string())
    }

    /// The first id that occurs twice, wherever the two stand.
    fn first_duplicate<'a>(ids: &[&'a str]) -> Option<&'a str> {
        let mut seen = std::collections::HashSet::new();
        ids.iter().copied().find(|id| !seen.insert(*id))
    }

    #[test]
    fn the_duplicate_check_finds_duplicates_apart() {
        assert_eq!(first_duplicate(&["S1", "S2", "R1", "S2"]), Some("S2"));
        assert_eq!(first_duplicate(&["S1", "S2"]), None);
    }

    #[test]
    fn catalogue_is_complete_and_unique() {
        assert_eq!(CATALOGUE.len(), 26);
        let ids: Vec<_> = CATALOGUE.iter().map(|t| t.id).collect();
        assert_eq!(first_duplicate(&ids), None, "{ids:?}");
        assert_eq!(
            CATALOGUE.iter().filter(|t| t.kind == Kind::Direct).count(),
            8
        );
        // Every id a record can carry, tests, controls and AUTH tests alike,
        // names one test: none is looked up by a shared id.
        let every: Vec<&RelayTest> = CATALOGUE
            .iter()
            .chain([&CONTROL_ACCEPT_ALL, &CONTROL_POSTMASTER])
            .chain(CONTROL_LOCAL_PART.iter())
            .chain([
                &super::super::auth::AUTHENTICATED_RELAY,
                &super::super::auth::RELAY_AFTER_FAILED_AUTH,
            ])
            .collect();
        let ids: std::collections::HashSet<String> =
            every.iter().map(|t| t.id.to_ascii_lowercase()).collect();
        assert_eq!(ids.len(), every.len(), "an id is used twice");
        for t in every.iter().filter(|t| t.kind != Kind::Auth) {
            assert_eq!(find(t.id), Some(*t), "{}", t.id);
        }
        for form in [
            SelfForm::Literal,
            SelfForm::Host,
            SelfForm::TargetDomain,
            SelfForm::Unqualified,
        ] {
            let c = local_part_control(form);
            assert!(is_local_part_control(c.id));
            let expected = match form {
                SelfForm::Literal => "[{IP}]",
                SelfForm::Host => "{H}",
                SelfForm::TargetDomain => "{TD}",
                SelfForm::Unqualified => "<{random}>",
            };
            assert!(c.recipient.ends_with(&format!("{expected}>")) || c.recipient == expected);
        }
    }

    /// A target's tests share each path filled in once, and read the same
    /// as tests rendered alone.
    #[test]
    fn the_tests_of_one_target_share_their_paths() {
        let p = placeholders();
        let mut paths = Paths::new(&p);
        let s1 = find("S1").unwrap().render_in(&mut paths).unwrap();
        let s2 = find("S2").unwrap().render_in(&mut paths).unwrap();
        assert!(Arc::ptr_eq(&s1.rcpt_to, &s2.rcpt_to), "one recipient path");
        let r1 = find("R1").unwrap().render_in(&mut paths).unwrap();
        let r4 = find("R4").unwrap().render_in(&mut paths).unwrap();
        assert!(
            Arc::ptr_eq(&r1.mail_from, &r4.mail_from),
            "one trick sender"
        );
        for test in CATALOGUE.iter() {
            assert_eq!(test.render_in(&mut paths), test.render(&p), "{}", test.id);
        }
        let unknown = Placeholders {
            host: None,
            target_domain: None,
            ..p.clone()
        };
        let mut paths = Paths::new(&unknown);
        for _ in 0..2 {
            assert_eq!(find("S3").unwrap().render_in(&mut paths), Err("H"));
        }
    }

    #[test]
    fn renders_every_form() {
        let p = placeholders();
        assert_eq!(
            rendered("S1", &p),
            ("<>".into(), "<victim@example.net>".into())
        );
        assert_eq!(rendered("S4", &p).0, "<scan@[192.0.2.1]>");
        assert_eq!(rendered("S7", &p).0, "<scan@example.org>");
        assert_eq!(rendered("S8", &p).0, "<scan@scanner.example.com>");
        assert_eq!(
            rendered("R1", &p),
            (
                "<scan@example.org>".into(),
                "<victim%example.net@[192.0.2.1]>".into()
            )
        );
        assert_eq!(rendered("R4", &p).1, "<\"victim@example.net\">");
        assert_eq!(rendered("R10", &p).1, "<@[192.0.2.1]:victim@example.net>");
        assert_eq!(
            rendered("R11", &p).1,
            "<@mx.example.org:victim@example.net>"
        );
        assert_eq!(rendered("R14", &p).1, "<example.net!victim@mx.example.org>");
        assert_eq!(rendered("R16", &p).1, "<victim%[example.net]@>");
        assert_eq!(rendered("R18", &p).1, "victim@example.net");
        assert_eq!(rendered("C1", &p).1, "<r4nd0m@relay-control.invalid>");
        assert_eq!(rendered("C2", &p).1, "<postmaster@example.org>");
    }

    #[test]
    fn ipv6_literal() {
        let mut p = placeholders();
        p.ip = "2001:db8::1".parse().unwrap();
        assert_eq!(rendered("S4", &p).0, "<scan@[IPv6:2001:db8::1]>");
    }

    #[test]
    fn unknown_host_skips_and_trick_sender_falls_back() {
        let mut p = placeholders();
        p.host = None;
        p.target_domain = None;
        assert_eq!(find("S3").unwrap().render(&p), Err("H"));
        assert_eq!(find("S7").unwrap().render(&p), Err("TD"));
        for name in ["H", "TD", "IP", "X"] {
            let why = unknown_placeholder(name);
            assert_eq!(why, format!("placeholder {{{name}}} unknown"));
            assert_eq!(matches!(why, Cow::Borrowed(_)), name == "H" || name == "TD");
        }
        assert_eq!(find("R2").unwrap().render(&p), Err("H"));
        assert_eq!(rendered("R1", &p).0, "<scan@[192.0.2.1]>");
    }

    #[test]
    fn selection() {
        assert_eq!(select("all").unwrap().len(), 26);
        assert_eq!(select("direct").unwrap().len(), 8);
        assert_eq!(select("tricks").unwrap().len(), 18);
        let ids: Vec<_> = select("r1,S2, s2").unwrap().iter().map(|t| t.id).collect();
        assert_eq!(ids, vec!["S2", "R1"]);
        assert!(select("S9").is_err());
        assert!(select(" , ").is_err());
    }
}
