//! The probe and classifier against every lab profile, in process.

use relayscan::lab::{Lab, DEFAULT_BASE, LAB_PASSWORD, LAB_USER, PROFILES};
use relayscan::relay::{classify, probe, ProbeConfig, Status, Target};
use relayscan::smtp::sasl::{Credentials, Password};
use std::time::Duration;

fn config() -> ProbeConfig {
    let mut cfg = ProbeConfig::default();
    cfg.limits.read_timeout = Duration::from_secs(2);
    cfg.host_timeout = Duration::from_secs(20);
    cfg.ehlo = "scanner.relayscan.test".into();
    cfg
}

/// The lab account, for the authenticated relay tests.
fn with_lab_credentials(mut cfg: ProbeConfig) -> ProbeConfig {
    cfg.auth = Some(Credentials {
        user: LAB_USER.into(),
        password: Password::new(LAB_PASSWORD),
    });
    cfg.auth_plaintext = true;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_gets_its_expected_verdict() {
    every_profile_gets(config(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_gets_its_expected_verdict_with_credentials() {
    every_profile_gets(with_lab_credentials(config()), true).await;
}

async fn every_profile_gets(cfg: ProbeConfig, with_auth: bool) {
    let lab = Lab::start_all(DEFAULT_BASE, 0).await.expect("lab starts");
    assert_eq!(lab.servers.len(), PROFILES.len());
    let mut handles = Vec::new();
    for (addr, profile) in lab.servers.clone() {
        let cfg = cfg.clone();
        handles.push(tokio::spawn(async move {
            let facts = probe(&Target { addr, name: None }, &cfg).await;
            (profile, classify(&facts), facts)
        }));
    }
    let mut wrong = Vec::new();
    for h in handles {
        let (profile, verdict, facts) = h.await.unwrap();
        let expected = profile.expected_verdict(with_auth);
        if verdict.verdict != expected {
            wrong.push(format!(
                "{}: expected {}, got {} ({}) {:#?} {:#?} {:?}",
                profile.name,
                expected,
                verdict.verdict,
                verdict.reason,
                facts.tests,
                facts.tls,
                facts.error
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn open_relay_stops_at_first_direct_acceptance_and_runs_controls() {
    let profile = relayscan::lab::profile::find("open-relay").unwrap();
    let lab = Lab::start(DEFAULT_BASE, 0, &[profile]).await.unwrap();
    let (addr, _) = lab.servers[0];
    let facts = probe(&Target { addr, name: None }, &config()).await;
    let v = classify(&facts);
    assert_eq!(v.verdict, Status::OpenRelay);
    assert_eq!(v.accepted, vec!["S1"]);
    assert_eq!(v.deciding_test, Some("S1"));
    assert_eq!(v.reply.as_deref(), Some("250 2.1.5 Ok"));
    // The rest were not run, and say why.
    assert!(facts.tests[1]
        .skipped
        .as_deref()
        .unwrap()
        .contains("direct test was accepted"));
    // C1 refused (.invalid does not resolve) and C2 accepted: plain rcpt confidence.
    let ids: Vec<_> = facts.controls.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["C1", "C2"]);
    assert_eq!(v.confidence, Some(relayscan::relay::Confidence::Rcpt));
}

#[tokio::test]
async fn closed_postfix_full_suite_stays_under_the_error_budget() {
    let profile = relayscan::lab::profile::find("postfix-closed").unwrap();
    let lab = Lab::start(DEFAULT_BASE, 0, &[profile]).await.unwrap();
    let (addr, _) = lab.servers[0];
    let facts = probe(&Target { addr, name: None }, &config()).await;
    let v = classify(&facts);
    assert_eq!(v.verdict, Status::Closed);
    assert!(v.accepted.is_empty());
    let ran = facts.tests.iter().filter(|t| t.skipped.is_none()).count();
    assert_eq!(
        ran, 26,
        "every test runs against a closed server: {:#?}",
        facts.tests
    );
    // No connection collected more than 8 refusals.
    for n in 1..=facts.connections {
        let refusals = facts.tests.iter().filter(|t| t.connection == n).count();
        assert!(refusals <= 8, "connection {n} had {refusals} refusals");
    }
    assert!(facts.connections >= 4);
}

#[tokio::test]
async fn accept_all_sink_lowers_confidence() {
    let profile = relayscan::lab::profile::find("accept-all").unwrap();
    let lab = Lab::start(DEFAULT_BASE, 0, &[profile]).await.unwrap();
    let (addr, _) = lab.servers[0];
    let v = classify(&probe(&Target { addr, name: None }, &config()).await);
    assert_eq!(v.verdict, Status::OpenRelay);
    assert_eq!(v.confidence, Some(relayscan::relay::Confidence::AcceptsAll));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn timing() {
    let lab = Lab::start_all(DEFAULT_BASE, 0).await.expect("lab starts");
    let cfg = config();
    for (addr, profile) in lab.servers.clone() {
        let facts = probe(&Target { addr, name: None }, &cfg).await;
        eprintln!(
            "{:20} {:6}ms conns={}",
            profile.name, facts.duration_ms, facts.connections
        );
    }
}
