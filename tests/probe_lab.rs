//! The probe and classifier against every lab profile, in process.

use relayscan::lab::{Lab, DEFAULT_BASE, LAB_PASSWORD, LAB_USER, PROFILES};
use relayscan::relay::auth::{AuthHost, PasswordRules};
use relayscan::relay::{
    audit, classify, probe, Audit, Facts, FindingId, Outcome, ProbeConfig, ReplyClass, Status,
    Target, Verdict,
};
use relayscan::smtp::sasl::{Credentials, Password};
use relayscan::smtp::tls::StartTlsMode;
use std::time::Duration;

mod common;

use common::probe_profile;

fn config() -> ProbeConfig {
    common::quick_config(Duration::from_secs(2), Duration::from_secs(20))
}

/// The lab account, for the authenticated relay tests, sent to the lab's
/// self-signed and plaintext servers under the explicit insecure rule.
fn with_lab_credentials(mut cfg: ProbeConfig) -> ProbeConfig {
    cfg.auth = Some(Credentials {
        user: LAB_USER.into(),
        password: Password::new(LAB_PASSWORD),
    });
    cfg.auth_rules = PasswordRules {
        insecure: true,
        ..PasswordRules::default()
    };
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

/// The password goes nowhere (no host named, nothing verified): A1 is
/// skipped everywhere, A2 still runs, and no verdict changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_gets_its_expected_verdict_when_the_password_stays_home() {
    let mut cfg = with_lab_credentials(config());
    cfg.auth_rules = PasswordRules::default();
    every_profile_gets(cfg, true).await;
}

async fn every_profile_gets(cfg: ProbeConfig, with_auth: bool) {
    // The hostile servers have their own tests (tests/hostile.rs).
    let standard: Vec<_> = PROFILES.iter().filter(|p| !p.is_hostile()).collect();
    let lab = Lab::start(DEFAULT_BASE, 0, &standard)
        .await
        .expect("lab starts");
    assert_eq!(lab.servers.len(), standard.len());
    let mut handles = Vec::new();
    for (addr, profile) in lab.servers.clone() {
        let cfg = cfg.clone();
        handles.push(tokio::spawn(async move {
            let facts = probe(&Target::new(addr), &cfg).await;
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
    let facts = probe_profile("open-relay", &config()).await;
    let v = classify(&facts);
    assert_eq!(v.verdict, Status::OpenRelay);
    // C2 and S1-S3 went out as one pipelined group; nothing after it ran.
    assert_eq!(v.accepted, vec!["S1", "S2", "S3"]);
    assert_eq!(v.deciding_test, Some("S1"));
    assert_eq!(v.reply.as_deref(), Some("250 2.1.5 Ok"));
    assert_eq!(facts.connections, 1);
    // The rest were not run, and say why.
    assert!(facts.tests[3]
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
    let facts = probe_profile("postfix-closed", &config()).await;
    let v = classify(&facts);
    assert_eq!(v.verdict, Status::Closed);
    assert!(v.accepted.is_empty());
    let ran = facts.tests.iter().filter(|t| t.skipped.is_none()).count();
    assert_eq!(
        ran, 26,
        "every test runs against a closed server: {:#?}",
        facts.tests
    );
    // No connection collected more than 9 refusals (Postfix's tarpit starts at 10).
    let mut numbers: Vec<u32> = facts.tests.iter().map(|t| t.connection).collect();
    numbers.dedup();
    for n in numbers {
        let refusals = facts.tests.iter().filter(|t| t.connection == n).count();
        assert!(refusals <= 9, "connection {n} had {refusals} refusals");
    }
    assert!(facts.connections >= 3);
}

#[tokio::test]
async fn accept_all_sink_lowers_confidence() {
    let v = classify(&probe_profile("accept-all", &config()).await);
    assert_eq!(v.verdict, Status::OpenRelay);
    assert_eq!(v.confidence, Some(relayscan::relay::Confidence::AcceptsAll));
}

/// Probe one lab profile and audit the result, as a record would.
async fn audited(name: &str, cfg: &ProbeConfig) -> (Facts, Verdict, Audit) {
    let facts = probe_profile(name, cfg).await;
    let verdict = classify(&facts);
    let audit = audit(&facts, &verdict, 1_800_000_000);
    (facts, verdict, audit)
}

fn ids(audit: &Audit) -> Vec<&'static str> {
    audit.findings.iter().map(|f| f.id.as_str()).collect()
}

fn fix(audit: &Audit, id: FindingId) -> &'static str {
    audit
        .findings
        .iter()
        .find(|f| f.id == id)
        .and_then(|f| f.remediation)
        .unwrap_or_else(|| panic!("no remediation for {id:?}: {audit:#?}"))
}

#[tokio::test]
async fn iis6_with_anonymous_access_cleared() {
    let cfg = with_lab_credentials(config());
    let (facts, v, audit) = audited("iis-auth", &cfg).await;
    assert_eq!(v.verdict, Status::AuthRequired);
    assert_eq!(
        v.reply.as_deref(),
        Some("530 5.7.1 Client was not authenticated")
    );
    assert_eq!(audit.software_id(), "iis-smtp");
    assert_eq!(
        audit.software.as_ref().unwrap().version.as_deref(),
        Some("6.0.3790.4675")
    );
    assert_eq!(
        facts.greeting.capabilities.auth,
        ["GSSAPI", "NTLM", "LOGIN"]
    );
    let found = ids(&audit);
    assert!(found.contains(&"plaintext-auth"), "{found:?}");
    assert!(found.contains(&"windows-integrated-auth"), "{found:?}");
    assert!(fix(&audit, FindingId::PlaintextAuth).contains("Requires TLS encryption"));
    // Authenticated clients may relay, a wrong password may not.
    let auth = facts.auth.as_ref().unwrap();
    assert_eq!(auth.login.as_ref().unwrap().mechanism, "LOGIN");
    assert_eq!(
        Outcome::of(auth.authenticated_relay.as_ref().unwrap()),
        Outcome::Accepted
    );
    assert_ne!(
        Outcome::of(auth.after_failed_auth.as_ref().unwrap()),
        Outcome::Accepted
    );
}

#[tokio::test]
async fn exchange_offers_login_only_after_starttls() {
    let cfg = with_lab_credentials(config());
    let (facts, v, audit) = audited("exchange-closed", &cfg).await;
    assert_eq!(v.verdict, Status::Closed);
    assert_eq!(audit.software_id(), "exchange");
    let tls = facts.tls.as_ref().unwrap();
    assert_eq!(
        (tls.mode.as_str(), tls.reason.as_str()),
        ("starttls", "advertised")
    );
    assert_eq!(facts.greeting.capabilities.auth, ["NTLM"]);
    assert_eq!(tls.capabilities.as_ref().unwrap().auth, ["NTLM", "LOGIN"]);
    let found = ids(&audit);
    assert!(!found.contains(&"plaintext-auth"), "{found:?}");
    assert!(found.contains(&"windows-integrated-auth"), "{found:?}");
    assert!(found.contains(&"self-signed-certificate"), "{found:?}");
    let login = facts.auth.as_ref().unwrap().login.as_ref().unwrap();
    assert!(login.encrypted && login.succeeded());
}

#[tokio::test]
async fn open_only_after_starttls_is_an_open_relay() {
    let (facts, v, audit) = audited("starttls-open", &config()).await;
    assert_eq!(v.verdict, Status::OpenRelay, "{:#?}", facts.tests);
    assert_eq!(v.accepted, ["S1", "S2", "S3"]);
    let session = facts.tls.as_ref().unwrap().session.as_ref().unwrap();
    assert!(session.version.starts_with("TLSv1."));
    let cert = session.certificate.as_ref().unwrap();
    assert!(cert.self_signed);
    assert!(cert.subject.as_deref().unwrap().contains("lab.example"));
    assert_eq!(audit.findings[0].id, FindingId::OpenRelay);
    assert!(fix(&audit, FindingId::OpenRelay).contains("smtpd_relay_restrictions"));
}

#[tokio::test]
async fn starttls_required_then_closed_and_never_mode() {
    let (facts, v, _) = audited("starttls-closed", &config()).await;
    assert_eq!(v.verdict, Status::Closed);
    // Every connection (the error budget needs several) redid STARTTLS.
    assert!(facts.connections >= 3);
    assert!(facts
        .tests
        .iter()
        .all(|t| Outcome::of(t).refusal() != Some(ReplyClass::TlsRequired)));

    let mut never = config();
    never.starttls = StartTlsMode::Never;
    let (facts, v, audit) = audited("starttls-closed", &never).await;
    assert_eq!(v.verdict, Status::TlsRequired);
    assert!(facts.tls.is_none());
    assert!(ids(&audit).contains(&"tls-untested"));
}

#[tokio::test]
async fn a_530_demand_switches_to_starttls_when_not_advertised() {
    let (facts, v, _) = audited("starttls-unadvertised", &config()).await;
    assert_eq!(v.verdict, Status::Closed, "{:#?}", facts.tests);
    let tls = facts.tls.as_ref().unwrap();
    assert_eq!(tls.reason.as_str(), "demanded");
    assert_eq!(tls.demanded_by.as_ref().unwrap().code, 530);
    assert!(tls.session.is_some());
    // S1 was run again over TLS: it shows the relay refusal, not the 530.
    assert_eq!(facts.tests[0].rcpt_reply.as_ref().unwrap().code, 554);
}

#[tokio::test]
async fn implicit_tls_detected_or_asked_for() {
    let (facts, v, _) = audited("implicit-tls", &config()).await;
    assert_eq!(v.verdict, Status::Closed);
    let tls = facts.tls.as_ref().unwrap();
    assert_eq!(
        (tls.mode.as_str(), tls.reason.as_str()),
        ("implicit", "detected")
    );

    let mut asked = config();
    asked.implicit_tls = true;
    let (facts, v, audit) = audited("implicit-tls", &with_lab_credentials(asked)).await;
    assert_eq!(v.verdict, Status::Closed);
    assert_eq!(facts.tls.as_ref().unwrap().reason.as_str(), "option");
    assert!(!ids(&audit).contains(&"plaintext-auth"));
    let login = facts.auth.as_ref().unwrap().login.as_ref().unwrap();
    assert!(login.encrypted && login.succeeded());
}

#[tokio::test]
async fn plaintext_auth_is_flagged_and_the_password_kept_back() {
    let mut cfg = with_lab_credentials(config());
    cfg.auth_rules = PasswordRules {
        // `audited` starts the one profile at DEFAULT_BASE.
        hosts: vec![AuthHost::Addr(DEFAULT_BASE.into())],
        ..PasswordRules::default()
    };
    let (facts, v, audit) = audited("plaintext-auth", &cfg).await;
    assert_eq!(v.verdict, Status::Closed);
    assert_eq!(audit.software_id(), "exim");
    assert!(fix(&audit, FindingId::PlaintextAuth).contains("auth_advertise_hosts"));
    assert!(ids(&audit).contains(&"no-tls"));
    let auth = facts.auth.as_ref().unwrap();
    assert!(auth.login.is_none(), "the password stayed home: {auth:#?}");
    let a1 = auth.authenticated_relay.as_ref().unwrap();
    assert_eq!(Outcome::of(a1), Outcome::Skipped);
    assert_eq!(a1.skipped.as_deref(), Some("no TLS"));
    let password = auth.password.as_ref().unwrap();
    assert!(!password.sent);
    assert_eq!(password.rule, None);
    // The wrong-password test carries no secret and still ran, under a
    // random user name: the account's is kept back with its password.
    assert!(auth.after_failed_auth.is_some());
    assert_eq!(auth.wrong_password.as_ref().unwrap().user_name, "random");
}

#[tokio::test]
async fn relaying_after_a_failed_auth_is_open() {
    let (_, v, _) = audited("relay-after-failed-auth", &config()).await;
    assert_eq!(v.verdict, Status::AuthRequired, "without --auth");
    let (_, v, audit) = audited("relay-after-failed-auth", &with_lab_credentials(config())).await;
    assert_eq!(v.verdict, Status::OpenRelay);
    assert_eq!(v.deciding_test, Some("A2"));
    assert_eq!(audit.software_id(), "mailenable");
    assert_eq!(audit.findings[0].id, FindingId::RelayAfterFailedAuth);
    assert!(fix(&audit, FindingId::RelayAfterFailedAuth).contains("MailEnable"));
}

#[tokio::test]
async fn plaintext_injected_after_starttls_is_discarded() {
    let (facts, v, audit) = audited("starttls-injection", &config()).await;
    assert_eq!(v.verdict, Status::Closed);
    let tls = facts.tls.as_ref().unwrap();
    assert_eq!(
        tls.injected_bytes,
        "250 2.0.0 injected before the handshake\r\n".len()
    );
    assert!(tls.session.is_some());
    // The injected "250" was never read as the reply to EHLO over TLS.
    assert_eq!(
        tls.hello.as_ref().unwrap().lines[0],
        "starttls-injection.lab.example"
    );
    assert!(ids(&audit).contains(&"starttls-injection"));
}

#[tokio::test]
async fn starttls_always_against_a_server_without_tls() {
    let mut cfg = config();
    cfg.starttls = StartTlsMode::Always;
    let (facts, v, audit) = audited("postfix-closed", &cfg).await;
    assert_eq!(v.verdict, Status::Inconclusive, "{v:#?}");
    assert!(facts
        .error
        .as_ref()
        .unwrap()
        .to_string()
        .contains("STARTTLS refused"));
    assert!(ids(&audit).contains(&"tls-failed"));
}

#[tokio::test]
async fn a_broken_handshake_falls_back_to_plaintext_and_says_tls_required() {
    let (facts, v, audit) = audited("starttls-broken", &config()).await;
    assert_eq!(v.verdict, Status::TlsRequired, "{v:#?}");
    let tls = facts.tls.as_ref().unwrap();
    assert!(tls.session.is_none());
    assert!(
        tls.error.as_deref().unwrap().starts_with("tls-error"),
        "{tls:#?}"
    );
    let found = ids(&audit);
    assert!(
        found.contains(&"tls-failed") && found.contains(&"tls-untested"),
        "{found:?}"
    );
    assert_eq!(audit.software_id(), "opensmtpd");
}

#[tokio::test]
async fn iis6_open_relay_gets_the_iis_fix() {
    let (facts, v, audit) = audited("iis-open", &with_lab_credentials(config())).await;
    assert_eq!(v.verdict, Status::OpenRelay);
    assert_eq!(v.deciding_test, Some("S1"));
    // It relays for anyone: relaying after a failed AUTH is no separate news.
    let a2 = facts
        .auth
        .as_ref()
        .unwrap()
        .after_failed_auth
        .as_ref()
        .unwrap();
    assert_eq!(Outcome::of(a2), Outcome::Accepted);
    assert!(!ids(&audit).contains(&"relay-after-failed-auth"));
    assert_eq!(audit.software_id(), "iis-smtp");
    let fix = fix(&audit, FindingId::OpenRelay);
    assert!(fix.contains("Only the list below"), "{fix}");
    assert!(fix.contains("successfully authenticate"), "{fix}");
}

#[tokio::test]
async fn a_server_that_takes_one_session_at_a_time_still_gets_every_test() {
    let facts = probe_profile("one-at-a-time", &config()).await;
    let v = classify(&facts);
    assert_eq!(v.verdict, Status::Closed);
    let ran = facts.tests.iter().filter(|t| t.skipped.is_none()).count();
    // The parallel connections were turned away with 421: their shares ran
    // afterwards, one connection at a time.
    assert_eq!(ran, 26, "{:#?}", facts.tests);
    assert!(
        facts.tests.iter().all(|t| t.error.is_none()),
        "{:#?}",
        facts.tests
    );
}

#[tokio::test]
async fn confirmation_sends_one_message_only_when_asked_and_only_through_a_relay() {
    let open = relayscan::lab::profile::find("open-relay").unwrap();
    let closed = relayscan::lab::profile::find("postfix-closed").unwrap();
    let lab = Lab::start(DEFAULT_BASE, 0, &[open, closed]).await.unwrap();
    let mut cfg = config();
    cfg.confirm = Some("canary@example.org".into());
    cfg.transcript = true;
    cfg.limits.transcript_entries = 2000;

    let facts = probe(&Target::new(lab.servers[0].0), &cfg).await;
    let c = facts
        .confirmation
        .as_ref()
        .expect("the relay was confirmed");
    assert_eq!(c.test, "S1");
    assert_eq!(c.rcpt_to, "<canary@example.org>");
    assert!(c.accepted, "{c:?}");
    assert_eq!(
        c.replies.iter().map(|r| r.code).collect::<Vec<_>>(),
        [250, 250, 354, 250]
    );
    let v = classify(&facts);
    assert_eq!(v.confidence, Some(relayscan::relay::Confidence::Data));
    let datas = facts.transcript.iter().filter(|t| t.line == "DATA").count();
    assert_eq!(datas, 1, "one message, no more");

    // A closed server gets no DATA at all.
    let facts = probe(&Target::new(lab.servers[1].0), &cfg).await;
    assert!(facts.confirmation.is_none());
    assert!(!facts.transcript.iter().any(|t| t.line == "DATA"));
    // Without --confirm, an open relay gets none either.
    let facts = probe(&Target::new(lab.servers[0].0), &config()).await;
    assert!(facts.confirmation.is_none());
}
