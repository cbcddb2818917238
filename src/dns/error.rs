//! Why a DNS question got no usable answer.
//!
//! The words are the ones `dig` and the RFCs use, so `dns: NXDOMAIN` in a
//! result file means what an admin expects, and "the name does not exist" is
//! never confused with "the server could not answer".

use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// RCODE 3, "Name Error" (RFC 1035 §4.1.1): the name does not exist.
    NxDomain,
    /// NOERROR with an empty answer ("NODATA", RFC 2308 §2.2): the name
    /// exists, but has no record of the type asked for.
    NoRecords,
    /// RCODE 2: the server could not answer (a broken delegation, a DNSSEC
    /// failure upstream, an unreachable authority).
    ServFail,
    /// RCODE 5: the server will not answer us.
    Refused,
    /// No answer within `--dns-timeout`.
    Timeout,
    /// The domain publishes a null MX, `0 .` (RFC 7505): it accepts no mail.
    NullMx,
    /// Anything else: another response code, a transport or configuration error.
    Other(String),
}

impl DnsError {
    /// The text for a result's `error` field: `dns: NXDOMAIN for nosuch.example.org`.
    pub fn describe(&self, name: &str) -> String {
        match self {
            DnsError::NullMx => format!("dns: null MX for {name} (the domain accepts no mail)"),
            other => format!("dns: {other} for {name}"),
        }
    }

    /// "There is nothing there", as opposed to "we could not find out".
    pub fn is_negative(&self) -> bool {
        matches!(self, DnsError::NxDomain | DnsError::NoRecords)
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::NxDomain => f.write_str("NXDOMAIN"),
            DnsError::NoRecords => f.write_str("no records"),
            DnsError::ServFail => f.write_str("SERVFAIL"),
            DnsError::Refused => f.write_str("REFUSED"),
            DnsError::Timeout => f.write_str("timeout"),
            DnsError::NullMx => f.write_str("null MX"),
            DnsError::Other(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for DnsError {}

impl From<&NetError> for DnsError {
    fn from(e: &NetError) -> Self {
        match e {
            NetError::Timeout => DnsError::Timeout,
            NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => {
                if no.response_code == ResponseCode::NXDomain {
                    DnsError::NxDomain
                } else {
                    DnsError::NoRecords
                }
            }
            NetError::Dns(HickoryDnsError::ResponseCode(code)) => match code {
                ResponseCode::ServFail => DnsError::ServFail,
                ResponseCode::Refused => DnsError::Refused,
                ResponseCode::NXDomain => DnsError::NxDomain,
                other => DnsError::Other(format!("response code {other}")),
            },
            NetError::NoConnections => DnsError::Other("no name server answered".into()),
            other => DnsError::Other(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_own_words() {
        let texts: Vec<String> = [
            DnsError::NxDomain,
            DnsError::NoRecords,
            DnsError::ServFail,
            DnsError::Refused,
            DnsError::Timeout,
            DnsError::NullMx,
        ]
        .iter()
        .map(|e| e.describe("x.example"))
        .collect();
        assert_eq!(texts[0], "dns: NXDOMAIN for x.example");
        assert_eq!(texts[1], "dns: no records for x.example");
        assert_eq!(texts[2], "dns: SERVFAIL for x.example");
        assert_eq!(texts[4], "dns: timeout for x.example");
        assert_eq!(
            texts[5],
            "dns: null MX for x.example (the domain accepts no mail)"
        );
        let mut unique = texts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), texts.len());
    }

    #[test]
    fn hickory_errors_map_to_our_words() {
        assert_eq!(DnsError::from(&NetError::Timeout), DnsError::Timeout);
        assert_eq!(
            DnsError::from(&NetError::Dns(HickoryDnsError::ResponseCode(
                ResponseCode::ServFail
            ))),
            DnsError::ServFail
        );
        let q = hickory_resolver::proto::op::Query::new();
        let nx = hickory_resolver::net::NoRecords::new(q.clone(), ResponseCode::NXDomain);
        assert_eq!(
            DnsError::from(&NetError::Dns(HickoryDnsError::NoRecordsFound(nx))),
            DnsError::NxDomain
        );
        let nodata = hickory_resolver::net::NoRecords::new(q, ResponseCode::NoError);
        assert_eq!(
            DnsError::from(&NetError::Dns(HickoryDnsError::NoRecordsFound(nodata))),
            DnsError::NoRecords
        );
    }
}
