//! What the DNS module asks, of whom, and how fast: `--resolver`,
//! `--dns-timeout`, `--dns-rate`, `--dns-concurrency`, `--ptr`, `--dnsbl`.

use super::dnsbl::{self, Blocklists};
use super::switch::Switch;
use super::{ptr, resolver};
use crate::targets::{Plan, Scope};
use anyhow::bail;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Name servers to ask; empty: the system's.
    pub servers: Vec<SocketAddr>,
    /// Give up one query after this long.
    pub timeout: Duration,
    /// Queries a second at most; 0: no limit.
    pub rate: u32,
    /// Queries in flight at most.
    pub concurrency: usize,
    pub ptr: Switch,
    pub dnsbl: Blocklists,
    /// `--scope`: no name server outside it is ever asked.
    pub scope: Option<Scope>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            servers: Vec::new(),
            timeout: Duration::from_secs(5),
            rate: 100,
            concurrency: 32,
            ptr: Switch::Auto,
            dnsbl: Blocklists::default(),
            scope: None,
        }
    }
}

impl Settings {
    /// The DNS part of the JSON Lines meta line.
    pub fn meta(&self) -> serde_json::Value {
        let switch = |s: Switch| match s {
            Switch::On => "on",
            Switch::Off => "off",
            Switch::Auto => "mx-hosts",
        };
        serde_json::json!({
            "resolvers": if self.servers.is_empty() {
                vec!["system".to_string()]
            } else {
                self.servers.iter().map(SocketAddr::to_string).collect()
            },
            "ptr": switch(self.ptr),
            "dnsbl": switch(self.dnsbl.when),
            "dnsbl_zones": if self.dnsbl.when == Switch::Off { Vec::new() } else { self.dnsbl.zones.clone() },
            "rate": self.rate,
        })
    }

    /// Will a run of `plan` ask DNS anything? Host names and mail domains
    /// need it; so do PTR and blocklist lookups for the addresses they ask
    /// about. A range is judged whole where it lies in one block that the
    /// lookups treat alike, else it is taken to need DNS.
    pub fn may_query(&self, plan: &Plan) -> bool {
        if plan.has_names() {
            return true;
        }
        let ptr = self.ptr.wanted(false);
        let dnsbl = self.dnsbl.when.wanted(false);
        plan.address_ranges().any(|(start, end)| {
            (ptr && range_may(start, end, ptr::asks_about))
                || (dnsbl && range_may(start, end, |ip| dnsbl::asks_about(ip, &self.dnsbl)))
        })
    }

    /// Refuse, before any query, a name server outside `scope`: those named
    /// with `--resolver` always, the system's when the run needs DNS
    /// (`needed`, see [`Settings::may_query`]).
    pub fn check_scope(&self, scope: &Scope, needed: bool) -> anyhow::Result<()> {
        for server in &self.servers {
            if let Some(why) = resolver::out_of_scope("--resolver", server.ip(), scope) {
                bail!(why);
            }
        }
        if self.servers.is_empty() && needed {
            let system = resolver::system_servers().map_err(anyhow::Error::msg)?;
            for ip in system {
                if let Some(why) = resolver::out_of_scope("the system resolver", ip, scope) {
                    bail!(
                        "{why} (this run needs DNS: host names, mx:, PTR or blocklist lookups; \
                         the system resolvers are read from /etc/resolv.conf)"
                    );
                }
            }
        }
        Ok(())
    }

    /// `check`: PTR and the default blocklists unless switched off.
    pub fn for_check(mut self) -> Settings {
        self.ptr = self.ptr.or_on();
        self.dnsbl.when = self.dnsbl.when.or_on();
        self
    }
}

/// Blocks that the PTR and blocklist lookups treat alike throughout: each
/// is loopback, or private, link-local, documentation or benchmarking space
/// that the default blocklists are never asked about (`dnsbl::is_public`).
const UNIFORM_BLOCKS: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "198.18.0.0/15",
    "fc00::/7",
    "fe80::/10",
    "2001:db8::/32",
];

/// May a lookup that asks about the addresses where `asks` holds ask about
/// one from `start` to `end`? Exact for one address and for a range inside
/// one of [`UNIFORM_BLOCKS`]; otherwise yes.
fn range_may(start: IpAddr, end: IpAddr, asks: impl Fn(IpAddr) -> bool) -> bool {
    if start == end {
        return asks(start);
    }
    let uniform = UNIFORM_BLOCKS.iter().any(|b| {
        b.parse::<ipnet::IpNet>()
            .is_ok_and(|net| net.contains(&start) && net.contains(&end))
    });
    !uniform || asks(start)
}

/// How long resolving one target's names may take in all: as long as a
/// host's probe may, and never less than a few queries' worth.
pub fn resolve_timeout(settings: &Settings, host_timeout: Duration) -> Duration {
    host_timeout.max(settings.timeout * 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnsbl_lists() {
        let none = Blocklists::parse("none").unwrap();
        assert_eq!(none.when, Switch::Off);
        let two = Blocklists::parse("bl.example.org, ZEN.spamhaus.org.,bl.example.org").unwrap();
        assert_eq!(two.zones, ["bl.example.org", "zen.spamhaus.org"]);
        assert!(two.named);
        assert_eq!(two.when, Switch::On);
        let default = Blocklists::parse("default").unwrap();
        assert_eq!(default.zones.len(), dnsbl::DEFAULT_ZONES.len());
        assert!(!default.named);
        assert!(Blocklists::parse("none,bl.example.org").is_err());
        assert!(Blocklists::parse("not a zone").is_err());
        assert!(Blocklists::parse(",").is_err());
    }

    #[test]
    fn uniform_blocks_are_uniform() {
        for block in UNIFORM_BLOCKS {
            let net: ipnet::IpNet = block.parse().unwrap();
            for ip in [net.network(), net.broadcast()] {
                assert!(!dnsbl::is_public(ip), "{ip}");
                assert_eq!(ptr::asks_about(ip), !block.starts_with("127."), "{ip}");
            }
        }
    }

    #[test]
    fn which_runs_need_dns() {
        let plan = |specs: &[&str]| {
            let specs: Vec<crate::targets::Spec> =
                specs.iter().map(|s| s.parse().unwrap()).collect();
            Plan::new(&specs, &[], &[25]).unwrap()
        };
        let scan = Settings::default();
        let check = Settings::default().for_check();
        assert!(!scan.may_query(&plan(&["127.0.0.1", "10.0.0.0/8", "192.0.2.1"])));
        assert!(scan.may_query(&plan(&["127.0.0.1", "mail.example.org"])));
        assert!(scan.may_query(&plan(&["mx:example.org"])));
        // check asks PTR and the default lists, but not about loopback.
        assert!(!check.may_query(&plan(&["127.0.0.1"])));
        assert!(!check.may_query(&plan(&["::1"])));
        assert!(
            check.may_query(&plan(&["10.0.0.1"])),
            "PTR of a private address"
        );
        // An IPv4-mapped loopback address is loopback: no PTR asked.
        assert!(!check.may_query(&plan(&["::ffff:127.0.0.1"])));
        let no_ptr = Settings {
            ptr: Switch::Off,
            ..Settings::default().for_check()
        };
        assert!(!no_ptr.may_query(&plan(&["10.0.0.1", "127.0.0.0/8", "10.0.0.0/8"])));
        assert!(
            no_ptr.may_query(&plan(&["8.8.8.8"])),
            "a public address on the default lists"
        );
        assert!(
            no_ptr.may_query(&plan(&["10.0.0.0-11.0.0.0"])),
            "a range across blocks"
        );
        let named = Settings {
            dnsbl: Blocklists::parse("bl.example.org").unwrap(),
            ..no_ptr.clone()
        };
        assert!(named.may_query(&plan(&["127.0.0.1"])));
        assert!(!Settings {
            dnsbl: Blocklists::parse("none").unwrap(),
            ..no_ptr
        }
        .may_query(&plan(&["8.8.8.8"])));
        let ptr_on = Settings {
            ptr: Switch::On,
            ..Settings::default()
        };
        assert!(!ptr_on.may_query(&plan(&["127.0.0.0/16"])));
        assert!(ptr_on.may_query(&plan(&["127.0.0.0/7"])));
    }

    #[test]
    fn auto_means_mx_targets_and_on_for_check() {
        assert!(Switch::Auto.wanted(true));
        assert!(!Switch::Auto.wanted(false));
        assert!(Switch::Auto.or_on().wanted(false));
        assert!(!Switch::Off.or_on().wanted(true));
        let check = Settings::default().for_check();
        assert_eq!(check.ptr, Switch::On);
        assert_eq!(check.dnsbl.when, Switch::On);
    }
}
