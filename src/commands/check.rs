//! `relayscan check HOST[:PORT]`: one server, every test, a readable report.

use super::{check_output, exit_code, open_output, runtime, OutputRules};
use crate::cli::CheckArgs;
use crate::config::CheckSettings;
use crate::dns;
use crate::engine::{self, EngineConfig};
use crate::output::sanitize::json_line;
use crate::output::{report, Event, Format};
use crate::targets::Plan;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::mpsc;

pub(crate) fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let CheckSettings {
        spec,
        mut probe,
        catch,
        mut dns,
        scope,
    } = CheckSettings::from_args(&args)?;
    // The output file is checked before any packet, with scan's rules: an
    // existing file needs --force, a missing directory is refused.
    let dest = check_output(
        args.output.as_deref(),
        &OutputRules {
            force: args.force,
            can_append: false,
            ..OutputRules::new(if args.json() {
                Format::Jsonl
            } else {
                Format::Table
            })
        },
    )?;
    let plan = Plan::new(std::slice::from_ref(&spec), &[], &[args.port.unwrap_or(25)])?;
    // The scope, before any packet: the server (if an address) and DNS.
    if let Some(scope) = &scope {
        scope.check_plan(&plan, std::slice::from_ref(&spec))?;
        dns.check_scope(scope, dns.may_query(&plan))?;
    }
    dns.scope = scope.clone();
    let guard = Arc::new(engine::Guard {
        scope,
        ..engine::Guard::default()
    });
    let mut engine_cfg = EngineConfig {
        concurrency: 1,
        resolve_timeout: dns::resolve_timeout(&dns, args.probe.host_timeout),
        dns: dns::Dns::new(dns),
        grace: crate::engine::DEFAULT_GRACE,
        guard,
        catch: None,
        // The records themselves are collected (no writer).
        lines: None,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let records = runtime()?.block_on(async {
        engine_cfg.catch = super::start_catcher(catch.as_ref(), &mut probe).await?;
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
        anyhow::Ok(collect.await.unwrap_or_default())
    })?;
    // -q without -o: nothing on standard output, the exit code says it all.
    let mut sink = if args.quiet && dest.path().is_none() {
        None
    } else {
        Some(open_output(&dest, false)?.sink)
    };
    let layout = report::Layout {
        width: report_width(dest.path().is_none()),
        color: crate::output::style::on_for(dest.path()),
        transcript: args.probe.transcript,
    };
    let mut summary = crate::output::Summary::default();
    for (i, record) in records.iter().enumerate() {
        if let Some(sink) = sink.as_mut() {
            let text = if args.json() {
                json_line(&record.json(args.probe.transcript))? + "\n"
            } else if i > 0 {
                format!("\n{}", report::render_with(record, &layout))
            } else {
                report::render_with(record, &layout)
            };
            sink.write_all(text.as_bytes())?;
            sink.flush()?;
        }
        summary.add_result(
            record.verdict.verdict,
            record.facts.addr,
            &record.verdict.accepted,
            record.verdict.confidence == Some(crate::relay::Confidence::Delivered),
        );
    }
    // A domain's several MX hosts: one line for all of them.
    if let (Some(sink), false) = (sink.as_mut(), args.json()) {
        if let Some(line) = report::overall(&records, layout.color) {
            sink.write_all(line.as_bytes())?;
            sink.flush()?;
        }
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

/// The report's width: `COLUMNS`, else the terminal's when the report goes
/// to one, else [`report::DEFAULT_WIDTH`].
fn report_width(to_stdout: bool) -> usize {
    let columns = std::env::var("COLUMNS").ok();
    let terminal = to_stdout
        .then(|| terminal_size::terminal_size_of(std::io::stdout()))
        .flatten()
        .map(|(w, _)| usize::from(w.0));
    report::width(columns.as_deref(), terminal)
}
