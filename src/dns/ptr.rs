//! The name of an address (its PTR record): shown in the `hostname` column
//! and used for `{H}` when a server's greeting names no valid host.

use super::{reverse, Dns, DnsError};
use crate::smtp::hostname;
use hickory_resolver::proto::rr::{RData, RecordType};
use std::net::IpAddr;

/// Is `ip` asked about? Loopback and unspecified addresses are not: every
/// resolver answers `localhost`. An IPv4-mapped IPv6 address
/// (`::ffff:127.0.0.12`) is judged, and asked about, as the IPv4 address it
/// carries.
pub fn asks_about(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    !(ip.is_loopback() || ip.is_unspecified())
}

/// The address's PTR name, when it has a valid one (see [`asks_about`]).
pub async fn name(dns: &Dns, ip: IpAddr) -> Result<Option<String>, DnsError> {
    if !asks_about(ip) {
        return Ok(None);
    }
    let ip = ip.to_canonical();
    let records = match dns.query(&reverse::ptr_name(ip), RecordType::PTR).await {
        Ok(records) => records,
        Err(e) if e.is_negative() => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = records
        .iter()
        .filter_map(|r| match r {
            RData::PTR(ptr) => hostname::fqdn(&ptr.0.to_ascii()),
            _ => None,
        })
        .collect();
    // Several PTR records are allowed; take one reproducibly.
    names.sort();
    Ok(names.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_loopback_is_loopback() {
        for ip in ["127.0.0.12", "::1", "::ffff:127.0.0.12", "0.0.0.0", "::"] {
            assert!(!asks_about(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.25", "2001:db8::25", "::ffff:192.0.2.25"] {
            assert!(asks_about(ip.parse().unwrap()), "{ip}");
        }
    }
}
