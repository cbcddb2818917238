//! DNS, the way a careful mail tool uses it: a domain's mail servers (MX,
//! RFC 5321 §5.1), the names of addresses (PTR), and the blocklists that list
//! them (DNSBL, RFC 5782).
//!
//! Everything goes through one [`Dns`] handle: one resolver (hickory-resolver,
//! pointed at `--resolver` servers or the system's), one rate limit and one
//! concurrency limit of its own, so a scan of many names or a blocklist check
//! of many addresses stays polite to the resolver and to the list operators.
//! DNS answers are data: nothing an answer names is dialled, except the
//! addresses of a target's own name.

pub mod dnsbl;
pub mod error;
pub mod mx;
pub mod pace;
pub mod ptr;
pub mod resolver;
pub mod reverse;
pub mod settings;
pub mod switch;

pub use dnsbl::{BlocklistCheck, Blocklists};
pub use error::DnsError;
pub use mx::MxHost;
pub use settings::{resolve_timeout, Settings};
pub use switch::Switch;

use crate::targets::Job;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::{OnceCell, Semaphore};

/// The shared DNS handle: cheap to clone, safe to use from every probe task.
#[derive(Clone)]
pub struct Dns {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    /// Built on first use: a scan of addresses alone never reads the
    /// system's resolver configuration.
    resolver: OnceCell<Result<TokioResolver, String>>,
    pacer: pace::Pacer,
    slots: Semaphore,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Default for Dns {
    fn default() -> Self {
        Dns::new(Settings::default())
    }
}

/// A name that led to no address: it is recorded, and nothing is dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The name that failed: the target's name, the mail domain, or an exchange.
    pub name: String,
    pub port: u16,
    /// The MX record that named it, for an exchange that did not resolve.
    pub mx: Option<MxHost>,
    /// `dns: NXDOMAIN for …`, `dns: null MX for …`, …
    pub message: String,
}

impl Dns {
    pub fn new(settings: Settings) -> Dns {
        Dns {
            inner: Arc::new(Inner {
                pacer: pace::Pacer::new(settings.rate),
                slots: Semaphore::new(settings.concurrency.max(1)),
                resolver: OnceCell::new(),
                settings,
            }),
        }
    }

    /// Ask one question; the answers of that type (CNAMEs on the way are
    /// followed by the resolver and left out here).
    pub(crate) async fn query(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<Vec<RData>, DnsError> {
        let resolver = self
            .inner
            .resolver
            .get_or_init(|| async {
                let settings = &self.inner.settings;
                resolver::build(&settings.servers, settings.timeout, settings.scope.as_ref())
            })
            .await
            .as_ref()
            .map_err(|e| DnsError::Other(e.clone()))?;
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| DnsError::Other("the resolver was shut down".into()))?;
        self.inner.pacer.wait().await;
        // hickory has its own timeout; this one also bounds its retries.
        let answer =
            tokio::time::timeout(self.inner.settings.timeout, resolver.lookup(name, rtype)).await;
        match answer {
            Err(_) => Err(DnsError::Timeout),
            Ok(Err(e)) => Err(DnsError::from(&e)),
            Ok(Ok(lookup)) => {
                let found: Vec<RData> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| r.data.clone())
                    .collect();
                if found.is_empty() {
                    Err(DnsError::NoRecords)
                } else {
                    Ok(found)
                }
            }
        }
    }

    /// Every address of a host name (A and AAAA, asked at once), sorted.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = query_name(host);
        let (v4, v6) = tokio::join!(
            self.query(&name, RecordType::A),
            self.query(&name, RecordType::AAAA)
        );
        let mut found: Vec<IpAddr> = Vec::new();
        for rdata in v4.iter().flatten().chain(v6.iter().flatten()) {
            match rdata {
                RData::A(a) => found.push(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => found.push(IpAddr::V6(aaaa.0)),
                _ => {}
            }
        }
        found.sort();
        found.dedup();
        if !found.is_empty() {
            return Ok(found);
        }
        Err(worse(v4.err(), v6.err()))
    }

    /// The targets a job stands for: the address itself, every address of a
    /// name, or every address of every mail exchanger of a domain. A name
    /// that fails becomes an [`Unresolved`], so it still gets its record.
    pub async fn targets(&self, job: &Job) -> Vec<Result<Resolved, Unresolved>> {
        match job {
            Job::Addr(addr) => vec![Ok(Resolved::new(*addr))],
            Job::Name { host, port } => match self.addresses(host).await {
                Ok(ips) => ips
                    .into_iter()
                    .map(|ip| {
                        let mut t = Resolved::new(SocketAddr::new(ip, *port));
                        t.name = Some(host.clone());
                        Ok(t)
                    })
                    .collect(),
                Err(e) => vec![Err(Unresolved {
                    name: host.clone(),
                    port: *port,
                    mx: None,
                    message: e.describe(host),
                })],
            },
            Job::Mx { domain, port } => self.mail_targets(domain, *port).await,
        }
    }

    async fn mail_targets(&self, domain: &str, port: u16) -> Vec<Result<Resolved, Unresolved>> {
        let hosts = match mx::exchangers(self, domain).await {
            Ok(hosts) => hosts,
            Err(e) => {
                return vec![Err(Unresolved {
                    name: domain.to_string(),
                    port,
                    mx: None,
                    message: e.describe(domain),
                })]
            }
        };
        let mut out = Vec::new();
        let mut seen: Vec<IpAddr> = Vec::new();
        for host in hosts {
            match self.addresses(&host.exchange).await {
                Ok(ips) => {
                    // Two exchanges on one address: probe it once, under the
                    // first (most preferred) name.
                    for ip in ips {
                        if seen.contains(&ip) {
                            continue;
                        }
                        seen.push(ip);
                        let mut t = Resolved::new(SocketAddr::new(ip, port));
                        t.name = Some(host.exchange.clone());
                        t.mx = Some(host.clone());
                        out.push(Ok(t));
                    }
                }
                Err(e) => out.push(Err(Unresolved {
                    name: host.exchange.clone(),
                    port,
                    message: e.describe(&host.exchange),
                    mx: Some(host),
                })),
            }
        }
        out
    }

    /// The PTR name to use for a target, when this run looks them up
    /// (`--ptr`; by default for `check` and MX targets).
    /// `via_mx`: the address was found through a domain's MX records.
    pub async fn ptr_for(&self, ip: IpAddr, via_mx: bool) -> Option<String> {
        let wanted = self.inner.settings.ptr.wanted(via_mx);
        if !wanted {
            return None;
        }
        ptr::name(self, ip).await.ok().flatten()
    }

    /// The blocklist check for a target, when this run does them (`--dnsbl`;
    /// by default for `check` and MX targets).
    pub async fn blocklists_for(&self, ip: IpAddr, via_mx: bool) -> Option<BlocklistCheck> {
        let lists = &self.inner.settings.dnsbl;
        if !lists.when.wanted(via_mx) {
            return None;
        }
        Some(dnsbl::check(self, ip.to_canonical(), lists).await)
    }

    /// The blocklist check of a host whose time ran out before the zones
    /// answered: each zone asked, none answered in time.
    pub fn blocklists_unanswered(&self, why: &str) -> BlocklistCheck {
        let zones = self.inner.settings.dnsbl.zones.clone();
        BlocklistCheck {
            errors: zones
                .iter()
                .map(|zone| dnsbl::ZoneError {
                    zone: zone.clone(),
                    error: why.to_string(),
                })
                .collect(),
            zones,
            ..BlocklistCheck::default()
        }
    }
}

/// An address a job stands for, and the names that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub addr: SocketAddr,
    /// The host name it was found under: the name given, or the exchange.
    pub name: Option<String>,
    /// The MX record that led here.
    pub mx: Option<MxHost>,
}

impl Resolved {
    /// An address known by no name.
    pub fn new(addr: SocketAddr) -> Resolved {
        Resolved {
            addr,
            name: None,
            mx: None,
        }
    }
}

/// Names with a dot are asked as they are (`mail.example.org.`); a single
/// label goes through the resolver's search list like it does for `ping`.
fn query_name(host: &str) -> String {
    let host = host.trim_end_matches('.');
    if host.contains('.') {
        format!("{host}.")
    } else {
        host.to_string()
    }
}

/// Of the A and AAAA failures, the one that says most: a name that does not
/// exist beats an empty answer, and "could not find out" beats "nothing there".
fn worse(a: Option<DnsError>, b: Option<DnsError>) -> DnsError {
    match (a, b) {
        (Some(DnsError::NxDomain), _) | (_, Some(DnsError::NxDomain)) => DnsError::NxDomain,
        (Some(a), Some(b)) if a.is_negative() => b,
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => DnsError::NoRecords,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_telling_failure_wins() {
        use DnsError::*;
        assert_eq!(worse(Some(NoRecords), Some(NxDomain)), NxDomain);
        assert_eq!(worse(Some(NoRecords), Some(NoRecords)), NoRecords);
        assert_eq!(worse(Some(NoRecords), Some(ServFail)), ServFail);
        assert_eq!(worse(Some(Timeout), Some(NoRecords)), Timeout);
        assert_eq!(worse(Some(Timeout), Some(ServFail)), Timeout);
    }

    #[test]
    fn dotted_names_are_absolute() {
        assert_eq!(query_name("mail.example.org"), "mail.example.org.");
        assert_eq!(query_name("mail.example.org."), "mail.example.org.");
        assert_eq!(query_name("mailhost"), "mailhost");
    }
}
