//! Building the resolver: the name servers named with `--resolver`, or the
//! system's (`/etc/resolv.conf`).
//!
//! hickory-resolver is an in-process stub resolver: it asks the configured
//! name servers itself instead of going through libc, which is what lets
//! relayscan tell NXDOMAIN from NODATA from SERVFAIL, ask for MX, PTR and TXT
//! records, and be pointed at a test server on loopback.

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

/// A resolver asking `servers` (UDP, and TCP for truncated answers), or the
/// system's name servers when `servers` is empty.
pub fn build(servers: &[SocketAddr], timeout: Duration) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = if servers.is_empty() {
        TokioResolver::builder(provider).map_err(|e| {
            format!(
                "cannot read the system's DNS configuration ({e}); name a server with --resolver"
            )
        })?
    } else {
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
}
