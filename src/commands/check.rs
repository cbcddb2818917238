//! `relayscan check HOST[:PORT]`: one server, every test, a readable report.

use super::{exit_code, out, runtime};
use crate::cli::CheckArgs;
use crate::config::probe_config;
use crate::dns;
use crate::engine::{self, EngineConfig};
use crate::output::sanitize::json_line;
use crate::output::{report, Event};
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
    if let (Some(named), Some(flag)) = (spec.port(), args.port) {
        if named != flag {
            anyhow::bail!(
                "{} names port {named} and --port says {flag}: give the port once",
                crate::output::sanitize::terminal(&args.target)
            );
        }
    }
    if args.probe.transcript && !args.json {
        anyhow::bail!("--transcript shows the dialogue in the JSON result: add --json");
    }
    let mut probe = probe_config(&args.probe, true)?;
    if probe.auth.is_some() {
        // `check` names its one host for the password: the address, the
        // host name, or the mail domain as typed (its MX hosts are other
        // names: they need --auth-host).
        let named = match &spec {
            Spec::Range { start, .. } => Some(crate::relay::auth::AuthHost::Addr(*start)),
            Spec::Name { host, .. } | Spec::Mx { domain: host, .. } => {
                crate::relay::auth::AuthHost::parse(host)
            }
        };
        probe.auth_rules.hosts.extend(named);
    }
    if let Some(address) = &args.confirm {
        probe.confirm = Some(crate::config::confirm_address(address)?);
    }
    let mut dns = dns::Settings::from_args(&args.dns)?.for_check();
    let plan = Plan::new(std::slice::from_ref(&spec), &[], &[args.port.unwrap_or(25)])?;
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
            out(json_line(&record.json(args.probe.transcript))? + "\n")?;
        } else {
            if i > 0 {
                out("\n")?;
            }
            out(report::render(record))?;
        }
        summary.add_result(
            record.verdict.verdict,
            record.facts.addr,
            &record.verdict.accepted,
        );
    }
    summary.interrupted = interrupted.load(std::sync::atomic::Ordering::SeqCst);
    let code = exit_code(&summary);
    if code == super::EXIT_ERROR {
        // Nothing proven and something not tested (down, not SMTP, refused
        // us, could not decide): in CI that must fail, not pass as "no relay".
        let untested: Vec<String> = records
            .iter()
            .filter(|r| r.verdict.verdict.is_untested())
            .map(|r| format!("{} ({})", r.target_label(), r.verdict.verdict))
            .collect();
        eprintln!(
            "relayscan: error: {} could not be tested: {}",
            crate::output::sanitize::terminal(&args.target),
            crate::output::sanitize::terminal(&untested.join(", "))
        );
    }
    Ok(code)
}
