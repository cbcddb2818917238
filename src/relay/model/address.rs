//! Just enough of RFC 5321 path syntax to tell where an address points:
//! the domain after the last `@` outside quotes, past any source route.

use std::net::IpAddr;

/// The domain of a path like `<"u@x"@[192.0.2.1]>` (`[192.0.2.1]`), `<@h:u@d>`
/// (`d`), `<u@d@>` (empty), or `None` for an unqualified `<u>` / `<"u@d">`.
pub fn domain(path: &str) -> Option<&str> {
    let mut p = path.trim();
    p = p.strip_prefix('<').unwrap_or(p);
    p = p.strip_suffix('>').unwrap_or(p);
    // An obsolete source route: <@hop1,@hop2:mailbox>.
    if p.starts_with('@') {
        if let Some((_, rest)) = p.split_once(':') {
            p = rest;
        }
    }
    let mut in_quotes = false;
    let mut escaped = false;
    let mut at = None;
    for (i, c) in p.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '@' if !in_quotes => at = Some(i),
            _ => {}
        }
    }
    at.map(|i| &p[i + 1..])
}

/// The inside of an address literal (RFC 5321 §4.1.3): `192.0.2.1`, `IPv6:2001:db8::1`.
pub fn literal_inner(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("IPv6:{v6}"),
    }
}

/// How a recipient names the target itself, when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SelfForm {
    /// `…@[192.0.2.1]`
    Literal,
    /// `…@{H}`
    Host,
    /// `…@{TD}`
    TargetDomain,
    /// No domain at all (`<"u@d">`, `<d!u>`, `<u@d@>`).
    Unqualified,
}

/// Whether a recipient path points at the target itself (so a server may
/// take everything before the domain as a local mailbox name), and how.
pub fn self_form(
    rcpt: &str,
    ip: IpAddr,
    host: Option<&str>,
    target_domain: Option<&str>,
) -> Option<SelfForm> {
    let d = match domain(rcpt) {
        None | Some("") => return Some(SelfForm::Unqualified),
        Some(d) => d,
    };
    let same = |name: Option<&str>| name.is_some_and(|n| n.eq_ignore_ascii_case(d));
    if d.eq_ignore_ascii_case(&format!("[{}]", literal_inner(ip))) {
        Some(SelfForm::Literal)
    } else if same(host) {
        Some(SelfForm::Host)
    } else if same(target_domain) {
        Some(SelfForm::TargetDomain)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(domain("<v@example.net>"), Some("example.net"));
        assert_eq!(domain("v@example.net"), Some("example.net"));
        assert_eq!(domain("<v%example.net@[192.0.2.1]>"), Some("[192.0.2.1]"));
        assert_eq!(domain("<\"v@example.net\">"), None);
        assert_eq!(
            domain("<\"v@example.net\"@mx.example.org>"),
            Some("mx.example.org")
        );
        assert_eq!(
            domain("<@mx.example.org:v@example.net>"),
            Some("example.net")
        );
        assert_eq!(domain("<v@example.net@>"), Some(""));
        assert_eq!(domain("<example.net!v>"), None);
        assert_eq!(domain("<\"a\\\"@b\"@c>"), Some("c"));
    }

    #[test]
    fn self_forms() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let f = |r: &str| self_form(r, ip, Some("mx.example.org"), Some("example.org"));
        assert_eq!(f("<v%example.net@[192.0.2.1]>"), Some(SelfForm::Literal));
        assert_eq!(f("<v%example.net@MX.example.org>"), Some(SelfForm::Host));
        assert_eq!(
            f("<v%example.net@example.org>"),
            Some(SelfForm::TargetDomain)
        );
        assert_eq!(f("<example.net!v>"), Some(SelfForm::Unqualified));
        assert_eq!(f("<v@example.net@>"), Some(SelfForm::Unqualified));
        assert_eq!(f("<v@example.net>"), None);
        assert_eq!(f("<@mx.example.org:v@example.net>"), None);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            self_form("<a@[IPv6:2001:db8::1]>", v6, None, None),
            Some(SelfForm::Literal)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = domain(&s);
        }
    }
}
