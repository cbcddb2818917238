//! `relayscan check HOST[:PORT]`: one server, every test, a readable report.

use super::{exit_code, out, runtime};
use crate::cli::CheckArgs;
use crate::config::probe_config;
use crate::dns;
use crate::engine::{self, EngineConfig};
use crate::output::sanitize::json_line;
use crate::output::{report, Event, Record};
use crate::targets::{Plan, Scope, Spec};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::mpsc;

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let spec: Spec = match args.target.parse()? {
        // A name without a port is a mail domain: its MX hosts are checked
        // (a host without MX records is its own, RFC 5321 §5.1).
        Spec::Name { host, port: None } => Spec::Mx {
            domain: host,
            port: None,
        },
        other => other,
    };
    if spec.len() != 1 {
        anyhow::bail!("check takes one server; use `relayscan scan` for ranges");
    }
    if args.port == 0 {
        anyhow::bail!("--port must be from 1 to 65535");
    }
    let mut probe = probe_config(&args.probe, true)?;
    if let Some(address) = &args.confirm {
        probe.confirm = Some(crate::config::confirm_address(address)?);
    }
    let mut dns = dns::Settings::from_args(&args.dns)?.for_check();
    let plan = Plan::new(std::slice::from_ref(&spec), &[], &[args.port])?;
    // The scope, before any packet: the server (if an address) and DNS.
    let scope = Scope::parse(&args.scope.scope)?;
    if let Some(scope) = &scope {
        scope.check_plan(&plan, std::slice::from_ref(&spec))?;
        dns.check_scope(scope, dns.may_query(&plan))?;
    }
    dns.scope = scope.clone();
    let guard = Arc::new(engine::Guard {
        scope,
        ..engine::Guard::default()
    });
    let engine_cfg = EngineConfig {
        concurrency: 1,
        rate: None,
        resolve_timeout: dns::resolve_timeout(&dns, args.probe.host_timeout),
        dns: dns::Dns::new(dns),
        grace: crate::engine::DEFAULT_GRACE,
        guard,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let records = runtime()?.block_on(async {
        let (tx, mut rx) = mpsc::channel::<Event>(16);
        let collect = tokio::spawn(async move {
            let mut records = Vec::new();
            while let Some(event) = rx.recv().await {
                if let Event::Record { record, .. } = event {
                    records.push(*record);
                }
            }
            records
        });
        let work = super::Work::sequential(plan);
        let schedule = Arc::new(work.schedule);
        let (probe, interrupted) = (Arc::new(probe), interrupted.clone());
        engine::run(schedule, 0, work.skip, probe, engine_cfg, tx, interrupted).await;
        collect.await.unwrap_or_default()
    });
    let mut summary = crate::output::Summary::default();
    for (i, record) in records.iter().enumerate() {
        if args.json {
            out(json_line(&record.json(args.probe.transcript)) + "\n")?;
        } else {
            if i > 0 {
                out("\n")?;
            }
            out(report::render(record))?;
        }
        *summary.counts.entry(record.verdict.verdict).or_default() += 1;
        if record.verdict.verdict.is_relay() {
            summary.relay_count += 1;
        }
    }
    summary.interrupted = interrupted.load(std::sync::atomic::Ordering::SeqCst);
    let untested = |r: &Record| {
        use crate::relay::Status::*;
        matches!(r.verdict.verdict, Refused | Timeout | Error | NotSmtp)
    };
    if summary.interrupted {
        // 130 (or 1 if a relay was proven before the interrupt), not "could not be tested".
        return Ok(exit_code(&summary));
    }
    if summary.relay_count == 0 && records.iter().all(untested) {
        // Nothing could be tested (down, not SMTP, name did not resolve):
        // in CI that must fail, not pass as "no relay".
        eprintln!(
            "relayscan: error: {} could not be tested",
            crate::output::sanitize::terminal(&args.target)
        );
        return Ok(super::EXIT_ERROR);
    }
    Ok(exit_code(&summary))
}
