//! A domain's mail servers, found the way an SMTP client finds them
//! (RFC 5321 §5.1): the MX records in preference order; no MX records at all
//! means the domain itself is the mail server ("implicit MX"); and a single
//! MX record `0 .` (a "null MX", RFC 7505) means the domain accepts no mail.

use super::{Dns, DnsError};
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::Serialize;

/// Most exchangers probed for one domain: real domains list a handful, and a
/// hostile zone must not turn one target into thousands.
pub const MAX_EXCHANGERS: usize = 16;

/// One mail exchanger of a domain, as its MX record (or the implicit MX)
/// names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MxHost {
    /// The mail domain asked about: `{TD}` for the exchanger's tests.
    pub domain: String,
    /// The exchanger's host name (the domain itself for an implicit MX).
    pub exchange: String,
    /// Lower is tried first by senders.
    pub preference: u16,
    /// No MX records: the domain's own addresses receive its mail.
    pub implicit: bool,
}

/// The mail exchangers of `domain`, most preferred first.
///
/// Only an empty answer (NODATA) falls back to the implicit MX: after a
/// SERVFAIL or a timeout a sender must not guess, and neither does relayscan.
pub async fn exchangers(dns: &Dns, domain: &str) -> Result<Vec<MxHost>, DnsError> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    match dns.query(&format!("{domain}."), RecordType::MX).await {
        Ok(records) => {
            let found: Vec<(u16, String)> = records
                .iter()
                .filter_map(|r| match r {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect();
            from_records(&domain, found)
        }
        Err(DnsError::NoRecords) => Ok(vec![MxHost {
            exchange: domain.clone(),
            domain,
            preference: 0,
            implicit: true,
        }]),
        Err(e) => Err(e),
    }
}

/// The exchangers named by MX records `(preference, exchange)`.
fn from_records(domain: &str, records: Vec<(u16, String)>) -> Result<Vec<MxHost>, DnsError> {
    let is_null = |exchange: &str| exchange.trim_end_matches('.').is_empty();
    // RFC 7505 §3: a null MX is the only MX record of its domain. Where a
    // domain also lists real exchangers, those are what senders use.
    if !records.is_empty() && records.iter().all(|(_, x)| is_null(x)) {
        return Err(DnsError::NullMx);
    }
    let mut hosts: Vec<MxHost> = records
        .into_iter()
        .filter(|(_, x)| !is_null(x))
        .map(|(preference, exchange)| MxHost {
            domain: domain.to_string(),
            exchange: exchange.trim_end_matches('.').to_ascii_lowercase(),
            preference,
            implicit: false,
        })
        .collect();
    // Equal preferences are tried in random order by senders; relayscan
    // probes them all, in name order so that reports are reproducible.
    hosts.sort_by(|a, b| (a.preference, &a.exchange).cmp(&(b.preference, &b.exchange)));
    hosts.dedup_by(|a, b| a.exchange == b.exchange);
    hosts.truncate(MAX_EXCHANGERS);
    if hosts.is_empty() {
        return Err(DnsError::NoRecords);
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(list: &[(u16, &str)]) -> Vec<(u16, String)> {
        list.iter().map(|(p, x)| (*p, x.to_string())).collect()
    }

    #[test]
    fn preference_order_then_name() {
        let hosts = from_records(
            "example.org",
            rec(&[
                (20, "mx2.example.org."),
                (10, "MX1.example.org."),
                (20, "mx0.example.org."),
                (10, "mx1.example.org."),
            ]),
        )
        .unwrap();
        let names: Vec<(u16, &str)> = hosts
            .iter()
            .map(|h| (h.preference, h.exchange.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (10, "mx1.example.org"),
                (20, "mx0.example.org"),
                (20, "mx2.example.org")
            ]
        );
        assert!(hosts
            .iter()
            .all(|h| h.domain == "example.org" && !h.implicit));
    }

    #[test]
    fn null_mx_accepts_no_mail() {
        assert_eq!(
            from_records("example.org", rec(&[(0, ".")])),
            Err(DnsError::NullMx)
        );
        // A null MX beside real exchangers is ignored, as senders do.
        let hosts = from_records("example.org", rec(&[(0, "."), (10, "mx.example.org.")])).unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].exchange, "mx.example.org");
    }
}
