//! One target as the user writes it: an address, a CIDR block, a range, a
//! `host:port`, or a host name.

use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A parsed target specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// An inclusive address range (a single address, a CIDR block or `a-b`).
    Range {
        start: IpAddr,
        end: IpAddr,
        port: Option<u16>,
    },
    /// A host name, resolved when it is probed.
    Name { host: String, port: Option<u16> },
    /// A mail domain (`mx:example.org`): its MX hosts are probed (RFC 5321 §5.1).
    Mx { domain: String, port: Option<u16> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target {input:?}: {why}")]
pub struct SpecError {
    pub input: String,
    pub why: String,
}

fn err(input: &str, why: impl Into<String>) -> SpecError {
    SpecError {
        input: input.chars().take(100).collect(),
        why: why.into(),
    }
}

impl Spec {
    /// How many addresses it stands for (a name counts as one). Saturates at
    /// `u128::MAX`: only `::/0` (2^128 addresses) would overflow.
    pub fn len(&self) -> u128 {
        match self {
            Spec::Range { start, end, .. } => {
                (ip_to_u128(*end) - ip_to_u128(*start)).saturating_add(1)
            }
            Spec::Name { .. } | Spec::Mx { .. } => 1,
        }
    }

    /// Never true: every spec stands for at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn port(&self) -> Option<u16> {
        match self {
            Spec::Range { port, .. } | Spec::Name { port, .. } | Spec::Mx { port, .. } => *port,
        }
    }
}

pub(crate) fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn parse_port(input: &str, s: &str) -> Result<u16, SpecError> {
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(err(
            input,
            format!("port {s:?} is not a number from 1 to 65535"),
        )),
        Ok(p) => Ok(p),
    }
}

/// A host name per RFC 1123: labels of letters, digits and hyphens.
fn valid_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        // All-numeric dotted strings are malformed addresses, not names.
        && !s.split('.').all(|l| l.chars().all(|c| c.is_ascii_digit()))
}

/// One part of an address as `inet_aton(3)` reads it: decimal, `0x` hex or
/// `0` octal.
fn numeric_label(l: &str) -> bool {
    let hex = l
        .strip_prefix("0x")
        .or_else(|| l.strip_prefix("0X"))
        .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
    hex || (!l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
}

/// The address `inet_aton(3)` makes of `s` (`127.1`, `0x7f.0.0.1`,
/// `0177.0.0.1`, `2130706433`), if it makes one.
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let value = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            if hex.is_empty() {
                0
            } else {
                u32::from_str_radix(hex, 16).ok()?
            }
        } else if part.len() > 1 && part.starts_with('0') {
            u32::from_str_radix(&part[1..], 8).ok()?
        } else {
            part.parse::<u32>().ok()?
        };
        values.push(value);
    }
    let (last, head) = values.split_last()?;
    let last_bits = 32 - 8 * head.len() as u32;
    if head.iter().any(|&v| v > 255) || (last_bits < 32 && *last >= 1 << last_bits) {
        return None;
    }
    let mut ip = *last;
    for (i, &v) in head.iter().enumerate() {
        ip |= v << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from(ip))
}

/// Refuse what looks like an address but is not one in dotted-quad form:
/// `inet_aton(3)` users expect `0x7f.0.0.1` or `127.1` to be an address,
/// and as a host name it would be sent to a resolver. A name whose last
/// label is all digits is no host name either (RFC 3696 §2: top-level
/// domains are never all-numeric).
fn refuse_numeric(input: &str, host: &str) -> Result<(), SpecError> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return Ok(());
    }
    if host.split('.').all(numeric_label) {
        return Err(match inet_aton(host) {
            Some(ip) => err(
                input,
                format!("not an address in dotted-quad form: write {ip}"),
            ),
            None => err(
                input,
                "not an address in dotted-quad form (four numbers from 0 to 255, like 192.0.2.1)",
            ),
        });
    }
    if host.contains('.')
        && host
            .rsplit('.')
            .next()
            .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(err(
            input,
            "not an address in dotted-quad form, nor a host name (a top-level domain is never all-numeric)",
        ));
    }
    Ok(())
}

fn range(input: &str, start: IpAddr, end: IpAddr, port: Option<u16>) -> Result<Spec, SpecError> {
    if start.is_ipv4() != end.is_ipv4() {
        return Err(err(input, "a range cannot mix IPv4 and IPv6"));
    }
    if ip_to_u128(start) > ip_to_u128(end) {
        return Err(err(
            input,
            format!("range is reversed ({start} is after {end})"),
        ));
    }
    Ok(Spec::Range { start, end, port })
}

impl FromStr for Spec {
    type Err = SpecError;

    fn from_str(raw: &str) -> Result<Spec, SpecError> {
        let input = raw.trim();
        if input.is_empty() {
            return Err(err(raw, "empty target"));
        }
        // mx:DOMAIN[:PORT] (but `mx:25` is the host `mx`, port 25).
        if let Some(rest) = input
            .strip_prefix("mx:")
            .or_else(|| input.strip_prefix("MX:"))
            .filter(|r| r.is_empty() || !r.chars().all(|c| c.is_ascii_digit()))
        {
            return mx_spec(input, rest);
        }
        // [v6] or [v6]:port
        if let Some(rest) = input.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| err(input, "missing ']'"))?;
            let ip: Ipv6Addr = addr
                .parse()
                .map_err(|_| err(input, "not an IPv6 address inside [ ]"))?;
            let port = match after {
                "" => None,
                p => Some(parse_port(
                    input,
                    p.strip_prefix(':')
                        .ok_or_else(|| err(input, "expected :port after ]"))?,
                )?),
            };
            return range(input, IpAddr::V6(ip), IpAddr::V6(ip), port);
        }
        if let Ok(ip) = input.parse::<IpAddr>() {
            return range(input, ip, ip, None);
        }
        if input.contains('/') {
            let net: IpNet = input.parse().map_err(|_| {
                err(
                    input,
                    "not a CIDR block (like 192.0.2.0/24 or 2001:db8::/64)",
                )
            })?;
            return range(input, net.network(), net.broadcast(), None);
        }
        if let Some((a, b)) = input.split_once('-') {
            let start = a.trim().parse::<IpAddr>();
            if start.is_err() {
                refuse_numeric(input, a.trim())?;
            }
            if let Ok(start) = start {
                let b = b.trim();
                let end = match (start, b.parse::<IpAddr>(), b.parse::<u8>()) {
                    (_, Ok(end), _) => end,
                    // 192.0.2.10-20: the last octet.
                    (IpAddr::V4(v4), Err(_), Ok(last)) => {
                        let o = v4.octets();
                        IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], last))
                    }
                    _ => {
                        return Err(err(
                            input,
                            "the end of a range must be an address or a last octet (0-255)",
                        ))
                    }
                };
                return range(input, start, end, None);
            }
        }
        // host:port or a.b.c.d:port (one colon only: more would be IPv6).
        if let Some((host, port)) = input.rsplit_once(':') {
            if host.contains(':') {
                return Err(err(
                    input,
                    "not an IPv6 address (write [addr]:port to give a port)",
                ));
            }
            let port = parse_port(input, port)?;
            if let Ok(ip) = host.parse::<IpAddr>() {
                return range(input, ip, ip, Some(port));
            }
            refuse_numeric(input, host)?;
            if valid_host_name(host) {
                return Ok(Spec::Name {
                    host: host.to_ascii_lowercase(),
                    port: Some(port),
                });
            }
            return Err(err(input, "not an address or host name before the port"));
        }
        refuse_numeric(input, input)?;
        if valid_host_name(input) {
            return Ok(Spec::Name {
                host: input.to_ascii_lowercase(),
                port: None,
            });
        }
        Err(err(input, "not an address, CIDR block, range or host name"))
    }
}

/// The `DOMAIN[:PORT]` after `mx:`.
fn mx_spec(input: &str, rest: &str) -> Result<Spec, SpecError> {
    let (domain, port) = match rest.rsplit_once(':') {
        Some((d, p)) => (d, Some(parse_port(input, p)?)),
        None => (rest, None),
    };
    if domain.is_empty() {
        return Err(err(
            input,
            "mx: needs a mail domain after it (like mx:example.org)",
        ));
    }
    refuse_numeric(input, domain)?;
    if !valid_host_name(domain) {
        return Err(err(input, "not a mail domain after mx:"));
    }
    Ok(Spec::Mx {
        domain: domain.trim_end_matches('.').to_ascii_lowercase(),
        port,
    })
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (base, port) = match self {
            Spec::Range { start, end, port } if start == end => (start.to_string(), port),
            Spec::Range { start, end, port } => (format!("{start}-{end}"), port),
            Spec::Name { host, port } => (host.clone(), port),
            Spec::Mx { domain, port } => (format!("mx:{domain}"), port),
        };
        match port {
            Some(p) if base.contains(':') && !matches!(self, Spec::Mx { .. }) => {
                write!(f, "[{base}]:{p}")
            }
            Some(p) => write!(f, "{base}:{p}"),
            None => f.write_str(&base),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Spec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_form() {
        assert_eq!(
            p("192.0.2.1"),
            Spec::Range {
                start: ip("192.0.2.1"),
                end: ip("192.0.2.1"),
                port: None
            }
        );
        assert_eq!(p("192.0.2.0/24").len(), 256);
        assert_eq!(
            p("192.0.2.1/24"),
            Spec::Range {
                start: ip("192.0.2.0"),
                end: ip("192.0.2.255"),
                port: None
            }
        );
        assert_eq!(p("192.0.2.10-192.0.2.20").len(), 11);
        assert_eq!(p("192.0.2.10-20"), p("192.0.2.10-192.0.2.20"));
        assert_eq!(p("192.0.2.1:2525").port(), Some(2525));
        assert_eq!(
            p("[2001:db8::1]:25"),
            Spec::Range {
                start: ip("2001:db8::1"),
                end: ip("2001:db8::1"),
                port: Some(25)
            }
        );
        assert_eq!(p("2001:db8::/120").len(), 256);
        assert_eq!(p("2001:db8::1"), p("[2001:db8::1]"));
        assert_eq!(
            p("Mail.Example.org"),
            Spec::Name {
                host: "mail.example.org".into(),
                port: None
            }
        );
        assert_eq!(
            p("mail.example.org:587"),
            Spec::Name {
                host: "mail.example.org".into(),
                port: Some(587)
            }
        );
        assert_eq!(
            p("  localhost "),
            Spec::Name {
                host: "localhost".into(),
                port: None
            }
        );
    }

    #[test]
    fn mail_domains() {
        assert_eq!(
            p("mx:Example.ORG."),
            Spec::Mx {
                domain: "example.org".into(),
                port: None
            }
        );
        assert_eq!(
            p("mx:example.org:2525"),
            Spec::Mx {
                domain: "example.org".into(),
                port: Some(2525)
            }
        );
        // Still the host `mx` on port 25.
        assert_eq!(
            p("mx:25"),
            Spec::Name {
                host: "mx".into(),
                port: Some(25)
            }
        );
        assert!("mx:".parse::<Spec>().is_err());
        assert!("mx:bad_domain!".parse::<Spec>().is_err());
        assert!("mx:example.org:0".parse::<Spec>().is_err());
    }

    #[test]
    fn clear_errors() {
        for (bad, why) in [
            ("", "empty"),
            ("192.0.2.20-10", "reversed"),
            ("192.0.2.0/33", "CIDR"),
            ("192.0.2.1:0", "port"),
            ("192.0.2.1:70000", "port"),
            ("192.0.2.1-2001:db8::1", "mix"),
            ("2001:db8::1:25:x", "IPv6"),
            ("300.1.2.3", "not an address"),
            ("bad_host!", "not an address"),
            ("[2001:db8::1", "]"),
            ("192.0.2.1-300", "last octet"),
        ] {
            let e = bad.parse::<Spec>().unwrap_err();
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn numeric_forms_are_refused_not_resolved() {
        for (bad, want) in [
            ("0x7f.0.0.1", "write 127.0.0.1"),
            ("0x7f000001", "write 127.0.0.1"),
            ("127.1", "write 127.0.0.1"),
            ("0177.0.0.1", "write 127.0.0.1"),
            ("2130706433", "write 127.0.0.1"),
            ("127.0.0.1.", "write 127.0.0.1"),
            ("0x7f.1:25", "write 127.0.0.1"),
            ("mx:0x7f.0.0.1", "write 127.0.0.1"),
            ("0x7f.0.0.1-5", "write 127.0.0.1"),
            ("1.2.3.4.5", "dotted-quad"),
            ("0x100.0.0.1", "dotted-quad"),
            ("08.0.0.1", "dotted-quad"),
            ("7f.0.0.1", "top-level domain"),
            ("mail.example.123", "top-level domain"),
        ] {
            let e = bad.parse::<Spec>().unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
        // Names that merely contain hex or digits stay names.
        for name in [
            "cafe.babe",
            "0xdeadbeef.example",
            "mx1.example.org",
            "123.example.org",
        ] {
            assert!(matches!(p(name), Spec::Name { .. }), "{name}");
        }
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(inet_aton("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("10.1.2"), Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(
            inet_aton("0xc0.0250.2.1"),
            Some(Ipv4Addr::new(192, 168, 2, 1))
        );
        assert_eq!(inet_aton("4294967295"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(inet_aton("4294967296"), None);
        assert_eq!(inet_aton("1.16777216"), None);
        assert_eq!(inet_aton("256.0.0.1"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
    }

    #[test]
    fn mx_without_a_domain_says_so() {
        for bad in ["mx:", "MX:", "mx::25"] {
            let e = bad.parse::<Spec>().unwrap_err().to_string();
            assert!(e.contains("needs a mail domain"), "{bad}: {e}");
            assert!(!e.contains("port \"\""), "{bad}: {e}");
        }
    }

    #[test]
    fn whole_address_spaces() {
        assert_eq!(p("::/0").len(), u128::MAX, "2^128 saturates");
        assert_eq!(p("0.0.0.0/0").len(), 1 << 32);
        assert_eq!(
            p("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").len(),
            u128::MAX
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "192.0.2.1",
            "192.0.2.1:25",
            "[2001:db8::1]:25",
            "mail.example.org:587",
            "192.0.2.0-192.0.2.255",
            "mx:example.org",
            "mx:example.org:2525",
        ] {
            assert_eq!(p(s).to_string(), s);
            assert_eq!(p(&p(s).to_string()), p(s));
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = s.parse::<Spec>();
        }

        /// However its parts are written (decimal, hex, octal, how many),
        /// with or without a trailing dot or a port, an all-numeric dotted
        /// form is never taken for a name that would be resolved.
        #[test]
        fn no_numeric_form_is_ever_a_name(
            labels in proptest::collection::vec("[0-9]{1,12}|0[xX][0-9a-fA-F]{0,9}", 1..7),
            dot in proptest::bool::ANY,
            port in proptest::option::of(1u16..),
            mx in proptest::bool::ANY,
        ) {
            let mut s = labels.join(".");
            if dot { s.push('.'); }
            if let Some(port) = port { s = format!("{s}:{port}"); }
            if mx { s = format!("mx:{s}"); }
            match s.parse::<Spec>() {
                // `mx:25` is the host `mx` on port 25, a name the user wrote.
                Ok(Spec::Name { host, .. }) if mx && host == "mx" => {}
                Ok(Spec::Name { .. }) | Ok(Spec::Mx { .. }) => proptest::prop_assert!(false, "{s} became a name"),
                Ok(Spec::Range { .. }) | Err(_) => {}
            }
        }

        #[test]
        fn any_v4_range_parses_with_right_len(a: u32, b: u32) {
            let (lo, hi) = (a.min(b), a.max(b));
            let s = format!("{}-{}", Ipv4Addr::from(lo), Ipv4Addr::from(hi));
            proptest::prop_assert_eq!(p(&s).len(), u128::from(hi - lo) + 1);
        }

        #[test]
        fn any_cidr_parses(a: u32, len in 0u8..=32) {
            let s = format!("{}/{len}", Ipv4Addr::from(a));
            proptest::prop_assert_eq!(p(&s).len(), 1u128 << (32 - len));
        }
    }
}
