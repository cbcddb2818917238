//! Addresses written backwards, the way DNS looks them up: the PTR name of an
//! address (RFC 1035 §3.5, RFC 3596 §2.5) and the same labels under a
//! blocklist zone (RFC 5782 §2.1, §2.4).

use std::net::IpAddr;

/// The address's labels in reverse: `192.0.2.25` → `25.2.0.192`;
/// `2001:db8::1` → the 32 nibbles, last first (`1.0.0.0.…​.8.b.d.0.1.0.0.2`).
pub fn labels(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(63);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
            out
        }
    }
}

/// The fully qualified PTR name: `25.2.0.192.in-addr.arpa.`.
pub fn ptr_name(ip: IpAddr) -> String {
    let zone = match ip {
        IpAddr::V4(_) => "in-addr.arpa",
        IpAddr::V6(_) => "ip6.arpa",
    };
    format!("{}.{zone}.", labels(ip))
}

/// The fully qualified query name for a blocklist: `25.2.0.192.zen.spamhaus.org.`.
pub fn under_zone(ip: IpAddr, zone: &str) -> String {
    format!("{}.{}.", labels(ip), zone.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_is_octets_reversed() {
        assert_eq!(ptr_name(ip("192.0.2.25")), "25.2.0.192.in-addr.arpa.");
        // RFC 5782 §5: the IPv4 test point.
        assert_eq!(
            under_zone(ip("127.0.0.2"), "bl.example."),
            "2.0.0.127.bl.example."
        );
    }

    #[test]
    fn ipv6_is_nibbles_reversed() {
        // RFC 5782 §2.4's example.
        assert_eq!(
            under_zone(ip("2001:db8:1:2:3:4:567:89ab"), "ugly.example.com"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com."
        );
        assert_eq!(
            ptr_name(ip("::1")),
            format!("1{}.ip6.arpa.", ".0".repeat(31))
        );
    }

    proptest::proptest! {
        #[test]
        fn v6_always_has_32_nibbles(bits: u128) {
            let l = labels(IpAddr::V6(bits.into()));
            proptest::prop_assert_eq!(l.split('.').count(), 32);
            proptest::prop_assert!(l.split('.').all(|n| n.len() == 1));
        }
    }
}
