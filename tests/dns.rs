//! The DNS module against a DNS server on loopback that the tests start
//! themselves (tests/common/dns.rs): MX with preference, implicit and null
//! MX, PTR, DNSBL (IPv4 and IPv6), and each failure in its own words.
//! Documentation addresses (192.0.2.x, 2001:db8::) are only looked up in
//! DNS here; nothing is ever sent to them.

mod common;

use common::dns::{
    lab_world, TestDns, BL_ZONE, DOC_CLEAN, DOC_LISTED, DOC_LISTED_V6, DOC_PTR, DOC_PTR_V6,
};
use relayscan::dns::{self, Blocklists, Dns, DnsError, Settings, Switch};
use relayscan::targets::Job;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const MX1: &str = "127.0.0.11";
const MX2: &str = "127.0.0.12";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn world() -> TestDns {
    TestDns::start(lab_world(ip(MX1), ip(MX2)))
}

fn dns_for(server: &TestDns) -> Dns {
    Dns::new(Settings {
        servers: vec![server.addr],
        timeout: Duration::from_millis(500),
        rate: 0,
        ..Settings::default()
    })
}

#[tokio::test]
async fn mx_hosts_come_in_preference_order() {
    let server = world();
    let dns = dns_for(&server);
    let hosts = dns::mx::exchangers(&dns, "lab.example").await.unwrap();
    let got: Vec<(u16, &str)> = hosts
        .iter()
        .map(|h| (h.preference, h.exchange.as_str()))
        .collect();
    assert_eq!(got, [(10, "mx1.lab.example"), (20, "mx2.lab.example")]);
    assert!(hosts
        .iter()
        .all(|h| h.domain == "lab.example" && !h.implicit));
    let targets = dns
        .targets(&Job::Mx {
            domain: "lab.example".into(),
            port: 2525,
        })
        .await;
    let addrs: Vec<String> = targets
        .iter()
        .map(|t| t.as_ref().unwrap().addr.to_string())
        .collect();
    assert_eq!(addrs, ["127.0.0.11:2525", "127.0.0.12:2525"]);
    let first = targets[0].as_ref().unwrap();
    assert_eq!(first.name.as_deref(), Some("mx1.lab.example"));
    assert_eq!(first.mx.as_ref().unwrap().domain, "lab.example");
}

#[tokio::test]
async fn a_domain_without_mx_is_its_own_mail_server() {
    let server = world();
    let dns = dns_for(&server);
    let hosts = dns::mx::exchangers(&dns, "implicit.lab.example")
        .await
        .unwrap();
    assert_eq!(hosts.len(), 1);
    assert!(hosts[0].implicit);
    assert_eq!(hosts[0].exchange, "implicit.lab.example");
    let targets = dns
        .targets(&Job::Mx {
            domain: "implicit.lab.example".into(),
            port: 25,
        })
        .await;
    assert_eq!(targets.len(), 1);
    assert_eq!(
        targets[0].as_ref().unwrap().addr.to_string(),
        "127.0.0.11:25"
    );
}

/// Every way a name can fail, each in its own words, each as one result.
#[tokio::test]
async fn failures_are_distinct() {
    let server = world();
    let dns = dns_for(&server);
    let cases = [
        (
            "nullmx.lab.example",
            "dns: null MX for nullmx.lab.example (the domain accepts no mail)",
        ),
        ("nosuch.lab.example", "dns: NXDOMAIN for nosuch.lab.example"),
        ("empty.lab.example", "dns: no records for empty.lab.example"),
        ("broken.example", "dns: SERVFAIL for broken.example"),
        ("slow.example", "dns: timeout for slow.example"),
    ];
    for (domain, want) in cases {
        let started = Instant::now();
        let targets = dns
            .targets(&Job::Mx {
                domain: domain.into(),
                port: 25,
            })
            .await;
        assert_eq!(targets.len(), 1, "{domain}");
        let failure = targets[0].as_ref().unwrap_err();
        assert_eq!(failure.message, want);
        assert_eq!(failure.name, domain);
        // The timeout is --dns-timeout (500 ms here), not hickory's default.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{domain}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        dns.addresses("nosuch.lab.example").await,
        Err(DnsError::NxDomain)
    );
    assert_eq!(
        dns.addresses("empty.lab.example").await,
        Err(DnsError::NoRecords)
    );
}

#[tokio::test]
async fn an_exchanger_that_does_not_resolve_gets_its_own_record() {
    let server = world();
    let dns = dns_for(&server);
    let targets = dns
        .targets(&Job::Mx {
            domain: "dangling.lab.example".into(),
            port: 25,
        })
        .await;
    assert_eq!(targets.len(), 2);
    let gone = targets[0].as_ref().unwrap_err();
    assert_eq!(gone.name, "gone.lab.example");
    assert_eq!(gone.message, "dns: NXDOMAIN for gone.lab.example");
    assert_eq!(gone.mx.as_ref().unwrap().preference, 10);
    let mx2 = targets[1].as_ref().unwrap();
    assert_eq!(mx2.addr.to_string(), "127.0.0.12:25");
}

#[tokio::test]
async fn host_names_resolve_through_the_named_server() {
    let server = world();
    let dns = dns_for(&server);
    let targets = dns
        .targets(&Job::Name {
            host: "mx2.lab.example".into(),
            port: 587,
        })
        .await;
    let t = targets[0].as_ref().unwrap();
    assert_eq!(t.addr.to_string(), "127.0.0.12:587");
    assert_eq!(t.name.as_deref(), Some("mx2.lab.example"));
    assert!(t.mx.is_none());
    assert!(server
        .questions()
        .iter()
        .any(|q| q.starts_with("mx2.lab.example. A")));
}

#[tokio::test]
async fn ptr_names_v4_and_v6() {
    let server = world();
    let dns = dns_for(&server);
    assert_eq!(
        dns::ptr::name(&dns, ip(DOC_PTR)).await.unwrap().as_deref(),
        Some("mail.lab.example")
    );
    assert_eq!(
        dns::ptr::name(&dns, ip(DOC_PTR_V6))
            .await
            .unwrap()
            .as_deref(),
        Some("mail6.lab.example")
    );
    // No PTR record: no name, and no error.
    assert_eq!(dns::ptr::name(&dns, ip(DOC_CLEAN)).await.unwrap(), None);
    // Loopback is never asked about.
    assert_eq!(dns::ptr::name(&dns, ip("127.0.0.11")).await.unwrap(), None);
    assert!(!server
        .questions()
        .iter()
        .any(|q| q.contains("127.in-addr.arpa")));
    assert!(server
        .questions()
        .iter()
        .any(|q| q.starts_with("25.2.0.192.in-addr.arpa. PTR")));
}

fn named_list() -> Blocklists {
    Blocklists::parse(BL_ZONE).unwrap()
}

#[tokio::test]
async fn dnsbl_listing_with_code_and_reason() {
    let server = world();
    let dns = dns_for(&server);
    let check = dns::dnsbl::check(&dns, ip(DOC_LISTED), &named_list()).await;
    assert_eq!(check.zones, [BL_ZONE]);
    assert!(check.errors.is_empty(), "{check:?}");
    assert_eq!(check.listed.len(), 1);
    assert_eq!(check.listed[0].zone, BL_ZONE);
    assert_eq!(check.listed[0].codes, ["127.0.0.4"]);
    assert_eq!(check.listed[0].reason.as_deref(), Some("spam trap hits"));

    let clean = dns::dnsbl::check(&dns, ip(DOC_CLEAN), &named_list()).await;
    assert!(
        clean.listed.is_empty() && clean.errors.is_empty(),
        "{clean:?}"
    );

    let v6 = dns::dnsbl::check(&dns, ip(DOC_LISTED_V6), &named_list()).await;
    assert_eq!(v6.listed.len(), 1, "{v6:?}");
    assert_eq!(v6.listed[0].codes, ["127.0.0.3"]);
    assert!(server.questions().iter().any(|q| q.starts_with(
        "9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.lab.example. A"
    )));
}

#[tokio::test]
async fn dnsbl_zone_failures_are_reported_not_hidden() {
    let server = world();
    let dns = dns_for(&server);
    let lists = Blocklists::parse(&format!("{BL_ZONE},broken.example,slow.example")).unwrap();
    let check = dns::dnsbl::check(&dns, ip(DOC_LISTED), &lists).await;
    assert_eq!(check.listed.len(), 1);
    let errors: Vec<(&str, &str)> = check
        .errors
        .iter()
        .map(|e| (e.zone.as_str(), e.error.as_str()))
        .collect();
    assert_eq!(
        errors,
        [("broken.example", "SERVFAIL"), ("slow.example", "timeout")]
    );
}

#[tokio::test]
async fn default_lists_are_not_asked_about_private_addresses() {
    let server = world();
    let dns = dns_for(&server);
    let check = dns::dnsbl::check(&dns, ip(DOC_LISTED), &Blocklists::default()).await;
    assert!(check.zones.is_empty() && check.listed.is_empty());
    assert!(check
        .skipped
        .as_deref()
        .unwrap()
        .contains("not a public address"));
    assert!(server.questions().is_empty(), "{:?}", server.questions());
}

#[tokio::test]
async fn policy_decides_per_target() {
    let server = world();
    let settings = Settings {
        servers: vec![server.addr],
        rate: 0,
        ptr: Switch::Auto,
        dnsbl: named_list(),
        ..Settings::default()
    };
    let dns = Dns::new(Settings {
        dnsbl: Blocklists {
            when: Switch::Auto,
            ..named_list()
        },
        ..settings
    });
    let plain: std::net::IpAddr = DOC_PTR.parse().unwrap();
    assert_eq!(
        dns.ptr_for(plain, false).await,
        None,
        "range targets: no PTR by default"
    );
    assert_eq!(dns.blocklists_for(plain, false).await, None);
    assert!(server.questions().is_empty());
    // Found through an MX record: looked up by default.
    assert_eq!(
        dns.ptr_for(plain, true).await.as_deref(),
        Some("mail.lab.example")
    );
    let check = dns.blocklists_for(plain, true).await.unwrap();
    assert_eq!(check.zones, [BL_ZONE]);
}

#[tokio::test]
async fn the_rate_limit_spaces_queries() {
    let server = world();
    let dns = Dns::new(Settings {
        servers: vec![server.addr],
        rate: 50,
        ..Settings::default()
    });
    let started = Instant::now();
    let mut asks = tokio::task::JoinSet::new();
    for _ in 0..13 {
        let dns = dns.clone();
        asks.spawn(async move { dns.addresses("mx1.lab.example").await });
    }
    while let Some(done) = asks.join_next().await {
        assert_eq!(done.unwrap().unwrap(), [ip(MX1)]);
    }
    // 26 queries (A and AAAA) at 50/s: the last leaves 25 × 20 ms after the first.
    assert!(
        started.elapsed() >= Duration::from_millis(480),
        "{:?}",
        started.elapsed()
    );
}

/// A bare SMTP server on loopback whose greeting names no host (`220 ESMTP
/// ready`), refusing every recipient; it keeps the MAIL FROM lines it saw.
async fn nameless_smtp() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 ESMTP ready\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("MAIL") {
                        log.lock().unwrap().push(line.clone());
                        b"250 ok\r\n"
                    } else if upper.starts_with("RCPT") {
                        b"550 5.7.1 Relaying denied\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// When the greeting names no host, the PTR name stands for {H}; the MX
/// domain stands for {TD}; and the record's hostname shows the PTR name.
#[tokio::test]
async fn ptr_name_is_h_and_mx_domain_is_td() {
    use relayscan::output::Record;
    use relayscan::relay::{classify, probe, ProbeConfig, Target};
    let (addr, seen) = nameless_smtp().await;
    let cfg = ProbeConfig {
        ehlo: "scanner.relayscan.example".into(),
        tests: relayscan::relay::catalogue::select("S3,S7").unwrap(),
        ..ProbeConfig::default()
    };
    let mut target = Target::new(addr);
    target.ptr = Some("mail.lab.example".into());
    target.mx = Some(dns::MxHost {
        domain: "lab.example".into(),
        exchange: "mx.lab.example".into(),
        preference: 10,
        implicit: false,
    });
    let mut facts = probe(&target, &cfg).await;
    assert_eq!(facts.host.as_deref(), Some("mail.lab.example"));
    assert_eq!(facts.target_domain.as_deref(), Some("lab.example"));
    let mails = seen.lock().unwrap().clone();
    assert!(
        mails.contains(&"MAIL FROM:<relayscan@mail.lab.example>".to_string()),
        "{mails:?}"
    );
    assert!(
        mails.contains(&"MAIL FROM:<relayscan@lab.example>".to_string()),
        "{mails:?}"
    );

    // Not connected (no announced name): the hostname column falls back to the PTR name.
    facts.host = None;
    facts.ptr = target.ptr.clone();
    let verdict = classify(&facts);
    let record = Record::new(facts, verdict);
    assert_eq!(record.hostname(), Some("mail.lab.example"));
}
