//! What the DNS module asks, of whom, and how fast: `--resolver`,
//! `--dns-timeout`, `--dns-rate`, `--dns-concurrency`, `--ptr`, `--dnsbl`.

use super::dnsbl::DEFAULT_ZONES;
use super::resolver;
use crate::cli::DnsArgs;
use crate::smtp::hostname;
use anyhow::bail;
use std::net::SocketAddr;
use std::time::Duration;

/// Whether a lookup is made for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// For every target.
    On,
    /// For none.
    Off,
    /// For targets found through a domain's MX records only: a range scan
    /// of a /16 would otherwise cost hundreds of thousands of queries.
    Auto,
}

impl Switch {
    /// Is the lookup made for a target (`mx`: found through MX records)?
    pub fn wanted(self, mx: bool) -> bool {
        match self {
            Switch::On => true,
            Switch::Off => false,
            Switch::Auto => mx,
        }
    }

    /// `check` looks at one server: `Auto` means on there.
    pub fn or_on(self) -> Switch {
        match self {
            Switch::Auto => Switch::On,
            other => other,
        }
    }
}

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
        }
    }
}

/// Most DNS queries in flight; hickory multiplexes at most 32 per connection.
const MAX_DNS_CONCURRENCY: usize = 1024;

impl Settings {
    /// Validate the DNS options.
    pub fn from_args(args: &DnsArgs) -> anyhow::Result<Settings> {
        let mut servers = Vec::new();
        for s in &args.resolver {
            servers.push(resolver::parse_server(s).map_err(|e| anyhow::anyhow!("--resolver {e}"))?);
        }
        if args.dns_concurrency == 0 || args.dns_concurrency > MAX_DNS_CONCURRENCY {
            bail!("--dns-concurrency must be from 1 to {MAX_DNS_CONCURRENCY}");
        }
        let ptr = match (args.ptr, args.no_ptr) {
            (true, _) => Switch::On,
            (_, true) => Switch::Off,
            _ => Switch::Auto,
        };
        let dnsbl = match &args.dnsbl {
            Some(list) => Blocklists::parse(list)?,
            None => Blocklists::default(),
        };
        Ok(Settings {
            servers,
            timeout: args.dns_timeout,
            rate: args.dns_rate,
            concurrency: args.dns_concurrency,
            ptr,
            dnsbl,
        })
    }

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

    /// `check`: PTR and the default blocklists unless switched off.
    pub fn for_check(mut self) -> Settings {
        self.ptr = self.ptr.or_on();
        self.dnsbl.when = self.dnsbl.when.or_on();
        self
    }
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
        assert_eq!(default.zones.len(), DEFAULT_ZONES.len());
        assert!(!default.named);
        assert!(Blocklists::parse("none,bl.example.org").is_err());
        assert!(Blocklists::parse("not a zone").is_err());
        assert!(Blocklists::parse(",").is_err());
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
