//! The engine: walks the plan, runs up to `concurrency` probes at once, and
//! hands every record to the writer through a bounded channel.
//!
//! Backpressure comes from two places: the semaphore (no more than N probes
//! in flight) and the channel (a slow writer blocks new records). Memory is
//! therefore bounded by the concurrency, not by the size of the plan.
//! Shutdown follows mini-redis: the first Ctrl-C (or SIGTERM) stops new
//! connections and lets the probes in flight finish within their deadline; a
//! second one aborts them, and they are recorded as interrupted.

pub mod checkpoint;
pub mod pacer;
pub mod resume;

use crate::output::{Event, Record};
use crate::relay::{classify, probe, Connect, Facts, ProbeConfig, Status, Target, Verdict};
use crate::targets::{Job, Schedule};
use pacer::Pacer;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{Id, JoinSet};

/// Settings for one run of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub concurrency: usize,
    /// How long a host name may take to resolve.
    pub resolve_timeout: Duration,
    /// Connection starts per second (`--rate`), if limited.
    pub rate: Option<f64>,
}

/// Jobs already done before a resumed run: by position, or (for the records
/// written after the last checkpoint) by address.
#[derive(Debug, Clone, Default)]
pub struct Skip {
    pub positions: HashSet<u128>,
    pub addrs: HashSet<SocketAddr>,
}

/// Run the schedule from position `start`. Returns when every job is
/// recorded, the writer has gone away (e.g. a closed pipe), or the user
/// interrupted twice.
pub async fn run(
    schedule: Arc<Schedule>,
    start: u128,
    skip: Skip,
    probe_cfg: Arc<ProbeConfig>,
    cfg: EngineConfig,
    tx: mpsc::Sender<Event>,
    interrupted: Arc<AtomicBool>,
) {
    let semaphore = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<Id, (u128, Job)> = HashMap::new();
    let mut signal = Box::pin(shutdown_signal());
    let mut pacer = cfg.rate.map(Pacer::new);

    for (position, job) in schedule.iter_from(start) {
        let skipped = skip.positions.contains(&position)
            || matches!(&job, Job::Addr(a) if skip.addrs.contains(a));
        if skipped {
            if tx.send(Event::Skipped { position }).await.is_err() {
                break;
            }
            continue;
        }
        let permit = tokio::select! {
            biased;
            _ = &mut signal => {
                interrupted.store(true, Ordering::SeqCst);
                break;
            }
            permit = semaphore.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        if let Some(p) = pacer.as_mut() {
            tokio::select! {
                biased;
                _ = &mut signal => {
                    interrupted.store(true, Ordering::SeqCst);
                    break;
                }
                _ = p.wait() => {}
            }
        }
        while let Some(done) = tasks.try_join_next_with_id() {
            reap(done, &mut running, &tx).await;
        }
        if tx.is_closed() {
            break;
        }
        let (probe_cfg, tx2, job2) = (probe_cfg.clone(), tx.clone(), job.clone());
        let resolve_timeout = cfg.resolve_timeout;
        let handle = tasks.spawn(async move {
            let _permit = permit;
            run_job(position, job2, &probe_cfg, resolve_timeout, &tx2).await;
        });
        running.insert(handle.id(), (position, job));
    }

    // Drain: let the probes in flight finish; a (further) signal aborts them.
    let mut aborted = false;
    loop {
        tokio::select! {
            biased;
            _ = &mut signal, if !aborted => {
                interrupted.store(true, Ordering::SeqCst);
                aborted = true;
                tasks.abort_all();
                signal = Box::pin(shutdown_signal());
            }
            done = tasks.join_next_with_id() => match done {
                Some(done) => reap(done, &mut running, &tx).await,
                None => break,
            },
        }
    }
}

/// Account for a finished task. A panic in a probe, or an abort, becomes an
/// `error` record for its target: the scan goes on and nothing is lost.
async fn reap(
    done: Result<(Id, ()), tokio::task::JoinError>,
    running: &mut HashMap<Id, (u128, Job)>,
    tx: &mpsc::Sender<Event>,
) {
    let (id, why) = match done {
        Ok((id, ())) => {
            running.remove(&id);
            return;
        }
        Err(e) if e.is_panic() => (e.id(), "internal error: the probe panicked".to_string()),
        Err(e) => (e.id(), "interrupted".to_string()),
    };
    if let Some((position, job)) = running.remove(&id) {
        let (addr, name) = match job {
            Job::Addr(a) => (a, None),
            Job::Name { host, port } => (unresolved(port), Some(host)),
        };
        let record = Box::new(failed(addr, name, why));
        let _ = tx
            .send(Event::Record {
                record,
                position,
                last: true,
            })
            .await;
    }
}

fn unresolved(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

/// A record for a target that could not be probed at all.
fn failed(addr: SocketAddr, name: Option<String>, why: String) -> Record {
    let mut facts = Facts::new(addr, name);
    facts.connect = Connect::Error {
        message: why.clone(),
    };
    let mut verdict = classify(&facts);
    verdict.verdict = Status::Error;
    verdict.reason = why;
    Record::new(facts, verdict)
}

async fn run_job(
    position: u128,
    job: Job,
    cfg: &ProbeConfig,
    resolve_timeout: Duration,
    tx: &mpsc::Sender<Event>,
) {
    let send = |record: Record, last: bool| {
        tx.send(Event::Record {
            record: Box::new(record),
            position,
            last,
        })
    };
    match job {
        Job::Addr(addr) => {
            let _ = send(probe_one(Target { addr, name: None }, cfg).await, true).await;
        }
        Job::Name { host, port } => {
            let resolved = tokio::time::timeout(
                resolve_timeout,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await;
            let mut addrs: Vec<SocketAddr> = match resolved {
                Ok(Ok(list)) => list.collect(),
                Ok(Err(e)) => {
                    let why = format!("dns: cannot resolve {host}: {e}");
                    let _ = send(failed(unresolved(port), Some(host.clone()), why), true).await;
                    return;
                }
                Err(_) => {
                    let why = format!("dns: timeout resolving {host}");
                    let _ = send(failed(unresolved(port), Some(host.clone()), why), true).await;
                    return;
                }
            };
            addrs.sort();
            addrs.dedup();
            let count = addrs.len();
            for (i, addr) in addrs.into_iter().enumerate() {
                let record = probe_one(
                    Target {
                        addr,
                        name: Some(host.clone()),
                    },
                    cfg,
                )
                .await;
                if send(record, i + 1 == count).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn probe_one(target: Target, cfg: &ProbeConfig) -> Record {
    let facts = probe(&target, cfg).await;
    let verdict: Verdict = classify(&facts);
    Record::new(facts, verdict)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
