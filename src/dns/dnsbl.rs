//! DNS blocklists (RFC 5782): the price of an open relay is a place on them.
//!
//! An address is looked up as its reversed labels under each zone
//! (`25.2.0.192.zen.spamhaus.org`). An A record in 127.0.0.0/8 means listed
//! (the code says which sub-list); the TXT record at the same name says why.
//! NXDOMAIN means not listed. The answers are data: 127.0.0.x is never dialled.

use super::switch::Switch;
use super::{reverse, Dns, DnsError};
use crate::smtp::hostname;
use anyhow::bail;
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The lists consulted by default: widely used, free for low-volume,
/// non-commercial queries, and each documented by its operator.
/// - `zen.spamhaus.org`: Spamhaus SBL+XBL+PBL (refuses queries that come
///   through large public resolvers: answers 127.255.255.254).
/// - `bl.spamcop.net`: SpamCop, from user reports.
/// - `b.barracudacentral.org`: Barracuda's reputation list (asks users to
///   register their resolver's address).
/// - `psbl.surriel.com`: the Passive Spam Block List, from spam traps.
pub const DEFAULT_ZONES: &[&str] = &[
    "zen.spamhaus.org",
    "bl.spamcop.net",
    "b.barracudacentral.org",
    "psbl.surriel.com",
];

/// The DNS blocklists to consult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocklists {
    pub when: Switch,
    pub zones: Vec<String>,
    /// The user named the zones. The default, public lists are asked only
    /// about public addresses: they list none of 10/8, 127/8 or 192.0.2/24,
    /// and the question would tell their operators about the internal
    /// network. Zones the user names (an internal list, a test zone) are
    /// asked about every address.
    pub named: bool,
}

impl Default for Blocklists {
    fn default() -> Self {
        Blocklists {
            when: Switch::Auto,
            zones: DEFAULT_ZONES.iter().map(|z| z.to_string()).collect(),
            named: false,
        }
    }
}

impl Blocklists {
    /// `--dnsbl`: `none`, or zones separated by commas (`default` stands for
    /// the built-in list).
    pub fn parse(list: &str) -> anyhow::Result<Blocklists> {
        let words: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            bail!("--dnsbl: name zones (like zen.spamhaus.org), `default`, or `none`");
        }
        if words.iter().any(|w| w.eq_ignore_ascii_case("none")) {
            if words.len() > 1 {
                bail!("--dnsbl none cannot be combined with zones");
            }
            return Ok(Blocklists {
                when: Switch::Off,
                zones: Vec::new(),
                named: false,
            });
        }
        let mut zones: Vec<String> = Vec::new();
        let mut named = false;
        for word in words {
            let add: Vec<String> = if word.eq_ignore_ascii_case("default") {
                DEFAULT_ZONES.iter().map(|z| z.to_string()).collect()
            } else {
                named = true;
                match hostname::fqdn(word) {
                    Some(zone) => vec![zone],
                    None => bail!("--dnsbl: {word:?} is not a DNS zone (like zen.spamhaus.org)"),
                }
            };
            for zone in add {
                if !zones.contains(&zone) {
                    zones.push(zone);
                }
            }
        }
        Ok(Blocklists {
            when: Switch::On,
            zones,
            named,
        })
    }
}

/// Longest listing reason kept (TXT records can be long).
const MAX_REASON: usize = 300;

/// One zone that lists the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub zone: String,
    /// The A records returned (the list's return codes, e.g. `127.0.0.2`).
    pub codes: Vec<String>,
    /// The TXT record at the same name, when the zone publishes one.
    pub reason: Option<String>,
}

/// A zone that could not answer: the address may or may not be on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneError {
    pub zone: String,
    pub error: String,
}

/// The blocklist check of one address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlocklistCheck {
    /// The zones asked.
    pub zones: Vec<String>,
    pub listed: Vec<Listing>,
    pub errors: Vec<ZoneError>,
    /// Why no zone was asked, when none was.
    pub skipped: Option<String>,
}

/// Are the zones asked about `ip`? The default lists only about public
/// addresses (see [`Blocklists::named`]).
pub fn asks_about(ip: IpAddr, lists: &Blocklists) -> bool {
    !lists.zones.is_empty() && (lists.named || is_public(ip))
}

/// Ask every zone about `ip` (at once; the DNS handle's limits apply).
pub async fn check(dns: &Dns, ip: IpAddr, lists: &Blocklists) -> BlocklistCheck {
    if !lists.named && !is_public(ip) {
        return BlocklistCheck {
            skipped: Some(format!(
                "{ip} is not a public address: the default lists never list it (name a zone with --dnsbl to ask anyway)"
            )),
            ..BlocklistCheck::default()
        };
    }
    let mut asks = tokio::task::JoinSet::new();
    for (i, zone) in lists.zones.iter().enumerate() {
        let (dns, zone) = (dns.clone(), zone.clone());
        asks.spawn(async move { (i, lookup(&dns, ip, &zone).await) });
    }
    let mut answers: Vec<(usize, Result<Option<Listing>, String>)> = Vec::new();
    while let Some(done) = asks.join_next().await {
        match done {
            Ok(answer) => answers.push(answer),
            Err(e) => answers.push((usize::MAX, Err(format!("lookup failed: {e}")))),
        }
    }
    // Report in the order the zones were given.
    answers.sort_by_key(|(i, _)| *i);
    let mut out = BlocklistCheck {
        zones: lists.zones.clone(),
        ..BlocklistCheck::default()
    };
    for (i, answer) in answers {
        let zone = lists.zones.get(i).cloned().unwrap_or_default();
        match answer {
            Ok(Some(listing)) => out.listed.push(listing),
            Ok(None) => {}
            Err(error) => out.errors.push(ZoneError { zone, error }),
        }
    }
    out
}

/// One zone: `Ok(None)` not listed, `Ok(Some)` listed, `Err` no answer.
async fn lookup(dns: &Dns, ip: IpAddr, zone: &str) -> Result<Option<Listing>, String> {
    let name = reverse::under_zone(ip, zone);
    let records = match dns.query(&name, RecordType::A).await {
        Ok(records) => records,
        Err(e) if e.is_negative() => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let codes: Vec<Ipv4Addr> = records
        .iter()
        .filter_map(|r| match r {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    let codes = listing_codes(&codes)?;
    let reason = match dns.query(&name, RecordType::TXT).await {
        Ok(txts) => txts.iter().find_map(|r| match r {
            RData::TXT(txt) => {
                let text: String = txt
                    .txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<Vec<_>>()
                    .join("");
                Some(text.chars().take(MAX_REASON).collect())
            }
            _ => None,
        }),
        Err(_) => None,
    };
    Ok(Some(Listing {
        zone: zone.to_string(),
        codes: codes.iter().map(Ipv4Addr::to_string).collect(),
        reason,
    }))
}

/// The A records of a blocklist answer, checked: listings are in
/// 127.0.0.0/8 (RFC 5782 §2.1). Spamhaus answers 127.255.255.x when it
/// refuses the query; anything outside 127/8 is a resolver that rewrites
/// NXDOMAIN (ad-serving "search" pages), not a listing.
fn listing_codes(codes: &[Ipv4Addr]) -> Result<Vec<Ipv4Addr>, String> {
    if let Some(bad) = codes.iter().find(|c| c.octets()[0] != 127) {
        return Err(format!(
            "answer {bad} is outside 127.0.0.0/8: the resolver rewrites missing names, so no listing can be trusted"
        ));
    }
    let refusal = |c: &Ipv4Addr| c.octets()[..3] == [127, 255, 255];
    if let Some(r) = codes.iter().find(|c| refusal(c)) {
        let why = match r.octets()[3] {
            252 => "the zone name is misspelled",
            254 => "queries through public or open resolvers are refused; use your own resolver",
            255 => "too many queries from this resolver",
            _ => "the list refused the query",
        };
        return Err(format!("refused ({r}: {why})"));
    }
    let mut codes = codes.to_vec();
    codes.sort();
    codes.dedup();
    if codes.is_empty() {
        return Err(DnsError::NoRecords.to_string());
    }
    Ok(codes)
}

/// A globally routed address: only those can be on a public blocklist.
/// (std's `IpAddr::is_global` is not stable yet.)
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))) // benchmarking, RFC 2544
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, RFC 4193
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation, RFC 3849
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only, RFC 6666
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_routed_addresses_are_public() {
        for private in [
            "10.1.2.3",
            "127.0.0.2",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "0.1.2.3",
            "240.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "2001:db8::25",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
        for public in ["8.8.8.8", "192.0.3.1", "2a00:1450::1", "::ffff:8.8.4.4"] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn answers_are_checked() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            listing_codes(&[a("127.0.0.4"), a("127.0.0.2"), a("127.0.0.4")]).unwrap(),
            [a("127.0.0.2"), a("127.0.0.4")]
        );
        assert!(listing_codes(&[a("127.255.255.254")])
            .unwrap_err()
            .contains("public or open resolvers"));
        assert!(listing_codes(&[a("198.51.100.1")])
            .unwrap_err()
            .contains("outside 127.0.0.0/8"));
    }
}
