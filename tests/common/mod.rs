//! Shared test support: the lab on a background runtime, and the binary.
#![allow(dead_code)]

pub mod dns;
pub mod mta;

use relayscan::lab::{profile, Lab, Profile, DEFAULT_BASE};
use relayscan::relay::{probe, Facts, ProbeConfig, Target};
use std::net::SocketAddr;
use std::time::Duration;

/// The lab profiles of these names (a name that is none is a test bug).
fn named(names: &[&str]) -> Vec<&'static Profile> {
    names
        .iter()
        .map(|n| profile::find(n).unwrap_or_else(|| panic!("no profile {n}")))
        .collect()
}

/// A lab running on its own runtime for the length of a test.
pub struct TestLab {
    lab: Option<Lab>,
    rt: Option<tokio::runtime::Runtime>,
}

impl TestLab {
    /// Start the named profiles (every one but the hostile servers when
    /// `names` is empty) on a free port.
    pub fn start(names: &[&str]) -> TestLab {
        let profiles: Vec<&'static Profile> = if names.is_empty() {
            relayscan::lab::PROFILES
                .iter()
                .filter(|p| !p.is_hostile())
                .collect()
        } else {
            named(names)
        };
        Self::start_with(profiles)
    }

    /// Start every hostile server.
    pub fn hostile() -> TestLab {
        Self::start_with(
            relayscan::lab::PROFILES
                .iter()
                .filter(|p| p.is_hostile())
                .collect(),
        )
    }

    pub fn start_with(profiles: Vec<&'static Profile>) -> TestLab {
        Self::start_as(profiles, relayscan::lab::tls::Identity::SelfSigned)
    }

    /// Start the named profiles presenting the certificate the lab CA
    /// (`src/lab/tls/ca.pem`) issued for `*.lab.example`.
    pub fn start_ca_signed(names: &[&str]) -> TestLab {
        let profiles = named(names);
        Self::start_as(profiles, relayscan::lab::tls::Identity::CaSigned)
    }

    /// Start the named profiles on `port`: a lab that plays other
    /// profiles on the addresses and port of one stopped before.
    pub fn start_on(names: &[&str], port: u16) -> TestLab {
        let profiles = named(names);
        Self::start_port(
            profiles,
            relayscan::lab::tls::Identity::SelfSigned,
            port,
            None,
        )
    }

    pub fn start_as(
        profiles: Vec<&'static Profile>,
        identity: relayscan::lab::tls::Identity,
    ) -> TestLab {
        Self::start_port(profiles, identity, 0, None)
    }

    /// Start the named profiles, the relaying ones handing what they accept
    /// on to `forward` (a `--catch` address on loopback).
    pub fn start_forwarding(names: &[&str], forward: SocketAddr) -> TestLab {
        let profiles = named(names);
        Self::start_port(
            profiles,
            relayscan::lab::tls::Identity::SelfSigned,
            0,
            Some(forward),
        )
    }

    fn start_port(
        profiles: Vec<&'static Profile>,
        identity: relayscan::lab::tls::Identity,
        port: u16,
        forward: Option<SocketAddr>,
    ) -> TestLab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        // A lab stopped just before may still hold the port for a moment
        // (its runtime shuts down in the background): try again for a while.
        let mut tries = 0;
        let lab = loop {
            match rt.block_on(Lab::start_forwarding(
                DEFAULT_BASE,
                port,
                &profiles,
                identity,
                forward,
            )) {
                Ok(lab) => break lab,
                Err(e) if port != 0 && tries < 50 => {
                    tries += 1;
                    eprintln!("lab on port {port} not up yet ({e}); retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("lab starts: {e:?}"),
            }
        };
        TestLab {
            lab: Some(lab),
            rt: Some(rt),
        }
    }

    pub fn servers(&self) -> &[(SocketAddr, &'static Profile)] {
        &self.lab.as_ref().expect("lab").servers
    }

    pub fn port(&self) -> u16 {
        self.lab.as_ref().expect("lab").port()
    }

    /// Every server's address, as `ip:port`, in the order the profiles were given.
    pub fn addrs(&self) -> Vec<String> {
        self.servers().iter().map(|(a, _)| a.to_string()).collect()
    }

    /// The address of a profile, as `ip:port`.
    pub fn addr(&self, name: &str) -> String {
        self.servers()
            .iter()
            .find(|(_, p)| p.name == name)
            .map(|(a, _)| a.to_string())
            .unwrap_or_else(|| panic!("profile {name} not in this lab"))
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        drop(self.lab.take());
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The scope every test run of the binary gets: loopback only (a test
/// that needs another passes `--scope`, which takes precedence).
pub const TEST_SCOPE: &str = "127.0.0.0/8,::1";

/// The relayscan binary, with settings that keep tests quick, scoped to
/// loopback.
pub fn relayscan() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("relayscan").expect("binary built");
    cmd.env("NO_COLOR", "1");
    cmd.env("RELAYSCAN_SCOPE", TEST_SCOPE);
    cmd.timeout(std::time::Duration::from_secs(120));
    cmd
}

/// Probe options for the lab: our EHLO name, and timeouts short enough for
/// the silent web-server profile.
pub const FAST: &[&str] = &[
    "--ehlo",
    "scanner.relayscan.example",
    "--read-timeout",
    "2s",
    "--host-timeout",
    "30s",
];

/// Probe options that keep scans of slow or hostile servers short.
pub const QUICK: &[&str] = &[
    "--ehlo",
    "scanner.relayscan.example",
    "--connect-timeout",
    "1s",
    "--read-timeout",
    "1s",
    "--host-timeout",
    "3s",
];

/// Probe settings for the lab, in process: our EHLO name, each reply
/// awaited `read_timeout` at most, the host given up after `host_timeout`.
pub fn quick_config(read_timeout: Duration, host_timeout: Duration) -> ProbeConfig {
    let mut cfg = ProbeConfig::default();
    cfg.limits.read_timeout = read_timeout;
    cfg.host_timeout = host_timeout;
    cfg.ehlo = "scanner.relayscan.test".into();
    cfg
}

/// Start a lab of one profile, probe it once with `cfg`, stop the lab.
pub async fn probe_profile(name: &str, cfg: &ProbeConfig) -> Facts {
    let profile = profile::find(name).unwrap_or_else(|| panic!("no profile {name}"));
    let lab = Lab::start(DEFAULT_BASE, 0, &[profile])
        .await
        .expect("lab starts");
    probe(&Target::new(lab.servers[0].0), cfg).await
}

/// A CSV document as its header and one name → value map per row.
pub fn csv_rows(text: &str) -> (Vec<String>, Vec<std::collections::HashMap<String, String>>) {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .expect("a CSV header")
        .iter()
        .map(String::from)
        .collect();
    let rows = rdr
        .records()
        .map(|r| {
            let r = r.expect("a valid CSV row");
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

/// Wait for a child to exit, at most `limit`; kill it and fail if it does
/// not. Returns its exit code (-1 for a signal) and how long it took.
pub fn wait_at_most(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> (i32, std::time::Duration) {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status.code().unwrap_or(-1), started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Poll `path` until `pred` holds on its text (or fail after 30 s).
pub fn wait_for_file(path: &std::path::Path, what: &str, pred: impl Fn(&str) -> bool) {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        if let Ok(text) = std::fs::read_to_string(path) {
            if pred(&text) {
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{what} never appeared in {}", path.display());
}
