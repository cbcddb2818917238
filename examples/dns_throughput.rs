//! How fast the DNS module resolves names and checks blocklists, against the
//! tests' DNS server on loopback (nothing leaves the machine):
//! `cargo run --release --example dns_throughput`.

#[path = "../tests/common/dns.rs"]
#[allow(dead_code)]
mod test_dns;

use relayscan::dns::{self, Blocklists, Dns, Settings};
use relayscan::targets::Job;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use test_dns::{TestDns, Zones};

const NAMES: u32 = 2000;

fn main() {
    let mut zones = Zones::new().zone("bench.example");
    for i in 0..NAMES {
        let ip = IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + 11 + i));
        zones = zones.addr(&format!("h{i}.bench.example"), ip);
        if i % 10 == 0 {
            zones = zones.listed("bl.bench.example", ip, [127, 0, 0, 2], "bench");
        }
    }
    let server = TestDns::start(zones);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{:<40} {:>8} {:>10} {:>12}",
        "what", "items", "seconds", "items/s"
    );
    for concurrency in [1usize, 8, 32, 128] {
        let dns = Dns::new(Settings {
            servers: vec![server.addr],
            rate: 0,
            concurrency,
            timeout: Duration::from_secs(2),
            ..Settings::default()
        });
        let (n, secs) = rt.block_on(resolve_all(&dns, NAMES));
        row(
            &format!("names (A+AAAA), --dns-concurrency {concurrency}"),
            n,
            secs,
        );
    }
    let dns = Dns::new(Settings {
        servers: vec![server.addr],
        rate: 100,
        ..Settings::default()
    });
    let (n, secs) = rt.block_on(resolve_all(&dns, 100));
    row("names at --dns-rate 100 (2 q/name)", n, secs);

    let dns = Dns::new(Settings {
        servers: vec![server.addr],
        rate: 0,
        concurrency: 32,
        ..Settings::default()
    });
    let lists = Blocklists::parse("bl.bench.example").expect("zone");
    let (n, listed, secs) = rt.block_on(async {
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..NAMES {
            let (dns, lists) = (dns.clone(), lists.clone());
            let ip = IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + 11 + i));
            set.spawn(async move { dns::dnsbl::check(&dns, ip, &lists).await });
        }
        let mut listed = 0;
        while let Some(done) = set.join_next().await {
            listed += usize::from(!done.expect("task").listed.is_empty());
        }
        (NAMES, listed, started.elapsed().as_secs_f64())
    });
    row(&format!("DNSBL checks, 1 zone ({listed} listed)"), n, secs);
}

async fn resolve_all(dns: &Dns, count: u32) -> (u32, f64) {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..count {
        let dns = dns.clone();
        set.spawn(async move {
            let job = Job::Name {
                host: format!("h{i}.bench.example"),
                port: 25,
            };
            dns.targets(&job).await
        });
    }
    let mut ok = 0;
    while let Some(done) = set.join_next().await {
        ok += done.expect("task").iter().filter(|t| t.is_ok()).count() as u32;
    }
    assert_eq!(ok, count, "every name resolves");
    (count, started.elapsed().as_secs_f64())
}

fn row(what: &str, n: u32, secs: f64) {
    println!(
        "{what:<40} {n:>8} {secs:>10.2} {:>12.0}",
        f64::from(n) / secs
    );
}
