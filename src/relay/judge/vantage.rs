//! The vantage point: a verdict holds for the address relayscan connected
//! from. A server trusts some clients more (Postfix `mynetworks`, Exim
//! `relay_from_hosts`, IIS's "only the list below"), so a scan from the same
//! host or subnet may see relaying that strangers would not, and the other
//! way round. This says when the target is likely to trust us.

use super::classify::Verdict;
use crate::relay::model::facts::{Connect, Facts};
use crate::relay::model::outcome::Outcome;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Vantage {
    /// Our address and port for the first connection.
    pub source: Option<String>,
    /// Why the verdict may not hold for a stranger.
    pub warnings: Vec<String>,
}

/// Judge the vantage point of one probe (pure).
pub fn vantage(facts: &Facts, verdict: &Verdict) -> Vantage {
    let mut v = Vantage {
        source: facts.source.map(|s| s.to_string()),
        warnings: Vec::new(),
    };
    if facts.connect != Connect::Connected {
        return v;
    }
    // An IPv4-mapped IPv6 address (`::ffff:127.0.0.12`, RFC 4291 §2.5.5.2)
    // is the IPv4 address it carries: loopback is loopback.
    let target = facts.addr.ip().to_canonical();
    if let Some(source) = facts.source.map(|s| s.ip().to_canonical()) {
        if same_host(source, target) {
            v.warnings.push(format!(
                "same host: the target ({target}) is this machine, which it may trust as a local \
                 client (mynetworks, relay lists): scan from outside to see what strangers see"
            ));
        } else if same_subnet(source, target) {
            v.warnings.push(format!(
                "same subnet: we connect from {source}, in the target's own /{} — it may trust \
                 its neighbours: scan from outside to see what strangers see",
                if source.is_ipv4() { 24 } else { 64 }
            ));
        }
    }
    let postmaster_refused = facts
        .controls
        .iter()
        .find(|c| c.id == "C2")
        .map(Outcome::of)
        .is_some_and(|o| o.refusal().is_some());
    if verdict.verdict.is_relay() && postmaster_refused {
        v.warnings.push(
            "accepts relaying but refuses its own postmaster (C2): it treats this vantage \
             point specially"
                .into(),
        );
    }
    v
}

fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a == b || (a.is_loopback() && b.is_loopback())
}

fn same_subnet(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..4] == b.segments()[..4],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::judge::classify::classify;

    fn facts(target: &str, source: &str) -> Facts {
        let mut f = Facts::new(target.parse().unwrap(), None);
        f.source = Some(source.parse().unwrap());
        f
    }

    #[test]
    fn same_host_and_subnet() {
        let f = facts("127.0.0.12:25", "127.0.0.1:40000");
        let v = vantage(&f, &classify(&f));
        assert!(v.warnings[0].starts_with("same host"), "{v:?}");
        let f = facts("192.0.2.25:25", "192.0.2.7:40000");
        let v = vantage(&f, &classify(&f));
        assert!(v.warnings[0].starts_with("same subnet"), "{v:?}");
        let f = facts("192.0.2.25:25", "198.51.100.7:40000");
        assert!(vantage(&f, &classify(&f)).warnings.is_empty());
        let f = facts("[2001:db8::25]:25", "[2001:db8::7]:40000");
        assert!(!vantage(&f, &classify(&f)).warnings.is_empty());
        assert_eq!(
            vantage(&f, &classify(&f)).source.as_deref(),
            Some("[2001:db8::7]:40000")
        );
    }

    #[test]
    fn ipv4_mapped_loopback_is_loopback() {
        // `[::ffff:127.0.0.12]` reached over an IPv6 socket: the same machine.
        let f = facts("[::ffff:127.0.0.12]:25", "[::ffff:127.0.0.1]:40000");
        let v = vantage(&f, &classify(&f));
        assert!(v.warnings[0].starts_with("same host"), "{v:?}");
        let f = facts("[::ffff:127.0.0.12]:25", "[::1]:40000");
        let v = vantage(&f, &classify(&f));
        assert!(v.warnings[0].starts_with("same host"), "{v:?}");
        let f = facts("[::ffff:192.0.2.25]:25", "192.0.2.7:40000");
        let v = vantage(&f, &classify(&f));
        assert!(v.warnings[0].starts_with("same subnet"), "{v:?}");
    }
}
