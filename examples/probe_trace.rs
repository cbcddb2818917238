//! Where a probe's time goes, against the lab on loopback (127.0.0.0/8
//! only). Two reports:
//!
//!     cargo run --example probe_trace             # every lab profile: duration, connections
//!     cargo run --example probe_trace -- trace    # a closed host's round trips, 50 ms away

use relayscan::lab::{profile, Lab, WideLab, DEFAULT_BASE};
use relayscan::relay::{probe, ProbeConfig, Target};
use std::time::Duration;

fn config() -> ProbeConfig {
    let mut cfg = ProbeConfig::default();
    cfg.limits.read_timeout = Duration::from_secs(2);
    cfg.host_timeout = Duration::from_secs(20);
    cfg.ehlo = "scanner.relayscan.test".into();
    cfg
}

/// Each profile's probe: how long it took and how many connections it used.
async fn timing() -> anyhow::Result<()> {
    let lab = Lab::start_all(DEFAULT_BASE, 0).await?;
    let cfg = config();
    for (addr, profile) in lab.servers.clone() {
        let facts = probe(&Target::new(addr), &cfg).await;
        println!(
            "{:20} {:6}ms conns={}",
            profile.name, facts.duration_ms, facts.connections
        );
    }
    Ok(())
}

/// A closed Postfix 50 ms away: every line of the transcript with the
/// millisecond it was sent or read.
async fn trace() -> anyhow::Result<()> {
    let closed = profile::find("postfix-closed").ok_or_else(|| anyhow::anyhow!("no profile"))?;
    let lab = WideLab::start(0, Duration::from_millis(50), move |_| Some(closed)).await?;
    let mut cfg = config();
    cfg.transcript = true;
    cfg.limits.transcript_entries = 2000;
    let addr = std::net::SocketAddr::from(([127, 1, 0, 1], lab.port));
    let facts = probe(&Target::new(addr), &cfg).await;
    for t in &facts.transcript {
        println!("{:5} {} {}", t.ms, t.dir, t.line);
    }
    println!("duration {} ms", facts.duration_ms);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("trace") => trace().await,
        None | Some("timing") => timing().await,
        Some(other) => anyhow::bail!("unknown report {other:?}: timing or trace"),
    }
}
