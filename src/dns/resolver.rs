//! Building the resolver: the name servers named with `--resolver`, or the
//! system's (`/etc/resolv.conf`).
//!
//! hickory-resolver is an in-process stub resolver: it asks the configured
//! name servers itself instead of going through libc, which is what lets
//! relayscan tell NXDOMAIN from NODATA from SERVFAIL, ask for MX, PTR and TXT
//! records, and be pointed at a test server on loopback.

use crate::targets::Scope;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The standard DNS port.
pub const DNS_PORT: u16 = 53;

/// `--resolver` values: `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53`,
/// `[2001:db8::53]:5353`. Addresses only: a resolver named by a name would
/// need a resolver first.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    match s.parse::<SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Ok(addr),
        Ok(_) => Err(format!("{s:?}: the port must be from 1 to 65535")),
        Err(_) => Err(format!(
            "{s:?} is not IP[:PORT] (like 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53)"
        )),
    }
}

/// The system's name servers (`/etc/resolv.conf`, read by hickory's own
/// reader: the servers it would ask), and the rest of its configuration.
fn system_conf() -> Result<(ResolverConfig, ResolverOpts), String> {
    hickory_resolver::system_conf::read_system_conf().map_err(|e| {
        format!("cannot read the system's DNS configuration ({e}); name a server with --resolver")
    })
}

/// The addresses of the system's name servers.
pub fn system_servers() -> Result<Vec<IpAddr>, String> {
    let (config, _) = system_conf()?;
    Ok(config.name_servers().iter().map(|ns| ns.ip).collect())
}

/// Why a name server may not be asked under `scope`, if it may not:
/// `what` says whose server it is (`--resolver`, `the system resolver`).
pub fn out_of_scope(what: &str, server: IpAddr, scope: &Scope) -> Option<String> {
    (!scope.allows(server)).then(|| {
        let fix = if what == "--resolver" {
            "name a resolver inside the scope"
        } else {
            "pass --resolver with a server inside the scope"
        };
        format!(
            "{what} {server} is outside --scope {scope}: nothing was sent; \
             add it to --scope (or RELAYSCAN_SCOPE), or {fix}"
        )
    })
}

/// A resolver asking `servers` (UDP, and TCP for truncated answers), or the
/// system's name servers when `servers` is empty. Under a scope, a server
/// outside it is refused here too, so no query can reach it.
pub fn build(
    servers: &[SocketAddr],
    timeout: Duration,
    scope: Option<&Scope>,
) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = if servers.is_empty() {
        let (config, options) = system_conf()?;
        if let Some(scope) = scope {
            for ns in config.name_servers() {
                if let Some(why) = out_of_scope("the system resolver", ns.ip, scope) {
                    return Err(why);
                }
            }
        }
        let mut builder = TokioResolver::builder_with_config(config, provider);
        *builder.options_mut() = options;
        builder
    } else {
        if let Some(scope) = scope {
            for server in servers {
                if let Some(why) = out_of_scope("--resolver", server.ip(), scope) {
                    return Err(why);
                }
            }
        }
        let config = ResolverConfig::from_name_servers(
            servers
                .iter()
                .map(|server| {
                    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                    for connection in &mut ns.connections {
                        connection.port = server.port();
                    }
                    ns
                })
                .collect(),
        );
        let mut builder = TokioResolver::builder_with_config(config, provider);
        // The servers the user named answer every name: /etc/hosts does not
        // get to override them.
        builder.options_mut().use_hosts_file = ResolveHosts::Never;
        builder
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.timeout = timeout;
    // Keep every answer as the server gave it (no CNAME chains hidden).
    opts.preserve_intermediates = true;
    builder
        .build()
        .map_err(|e| format!("cannot set up the resolver: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_forms() {
        assert_eq!(
            parse_server("192.0.2.53").unwrap(),
            "192.0.2.53:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("2001:db8::53").unwrap(),
            "[2001:db8::53]:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert!(parse_server("ns.example.org").is_err());
        assert!(parse_server("127.0.0.1:0").unwrap_err().contains("port"));
        assert!(parse_server("127.0.0.1:99999").is_err());
    }

    #[test]
    fn servers_outside_the_scope_are_refused_before_any_query() {
        let scope = Scope::parse(&["127.0.0.1/32".into()]).unwrap().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(out_of_scope("--resolver", ip("127.0.0.1"), &scope), None);
        let why = out_of_scope("--resolver", ip("127.0.0.53"), &scope).unwrap();
        assert!(
            why.contains("--resolver 127.0.0.53 is outside --scope 127.0.0.1/32"),
            "{why}"
        );
        let why = out_of_scope("the system resolver", ip("10.255.255.53"), &scope).unwrap();
        assert!(why.contains("pass --resolver"), "{why}");
        // build() refuses before it makes a resolver that could ask anyone.
        let servers = ["127.0.0.53:53".parse().unwrap()];
        let refused = build(&servers, Duration::from_secs(1), Some(&scope));
        assert!(refused.is_err_and(|e| e.contains("outside --scope")));
        assert!(build(&servers, Duration::from_secs(1), None).is_ok());
    }
}
