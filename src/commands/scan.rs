//! `relayscan scan`: many targets in, one record per target out.

use super::{
    check_output, execute, exit_code, is_stdout, open_output, out, runtime, Destination,
    OutputRules, Work,
};
use crate::cli::ScanArgs;
use crate::config::{self, ScanSettings};
use crate::dns;
use crate::engine::guard::ExcludedNames;
use crate::engine::{resume, EngineConfig, Guard, Skip};
use crate::output::checkpoint::{self, Checkpoint, Completion};
use crate::output::schema::{AuthPasswordRules, Meta, MetaTag, ScanMeta, SCHEMA_VERSION};
use crate::output::writer::{CheckpointWriter, Earlier};
use crate::output::{Format, Writer};
use crate::relay::ProbeConfig;
use crate::targets::{
    self, random_seed, AddrSet, Job, Order, Plan, PlanError, Schedule, Scope, Shard, Spec,
};
use anyhow::{bail, Context};
use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Targets `--dry-run` lists.
const DRY_RUN_LIST: u128 = 10;

/// Plans larger than this (a /8 on one port) need `--allow-huge`: a mistyped
/// prefix (`192.0.2.0/0`, `2001:db8::/0`) must not start scanning the world.
const HUGE_PLAN: u128 = 1 << 24;

pub(crate) fn run(args: ScanArgs) -> anyhow::Result<i32> {
    // Everything is validated before any file is created or socket opened.
    let settings = ScanSettings::from_args(&args)?;
    let planned = plan(&args, settings)?;
    if args.dry_run {
        return dry_run(&planned.schedule, planned.seed, planned.shard);
    }
    let (work, completion, earlier) = match resume(&args, &planned)? {
        Resumed::Complete(code) => return Ok(code),
        Resumed::Go(start) => *start,
    };

    let append = args.append || planned.checkpoint.is_some();
    let dest = check_output(
        args.output.as_deref(),
        &OutputRules {
            force: args.force,
            append,
            // A scan killed after creating its output, before its first
            // checkpoint, left an empty file: the same command takes it over.
            take_empty: args.resume.is_some(),
            ..OutputRules::new(planned.format)
        },
    )?;

    let concurrency = clamp_to_file_limit(planned.concurrency, args.quiet);
    let meta = meta_line(&args, &planned, &work);
    let Planned {
        mut probe,
        catch,
        dns,
        guard,
        checkpoint,
        seed,
        order,
        hash,
        shard,
        format,
        ..
    } = planned;

    let created = matches!(dest, Destination::File { replace: false, .. }) && !append;
    let opened = open_output(&dest, append)?;
    let output_start = checkpoint
        .as_ref()
        .map_or(opened.base, |cp| cp.output_start);
    let checkpoint_writer = args.resume.as_ref().map(|path| CheckpointWriter {
        path: path.clone(),
        template: Checkpoint {
            version: checkpoint::VERSION,
            config_hash: hash.clone(),
            seed,
            order,
            shard,
            total: work.schedule.len(),
            next: 0,
            done_above: Vec::new(),
            output_bytes: 0,
            output_start,
            pending: Vec::new(),
            complete: false,
            updated: String::new(),
        },
        completion,
        output_base: opened.base,
        earlier,
    });
    // The first checkpoint exists before the first record is written: a
    // crash at any moment from here on is resumed by the same command.
    if let Some(cp) = &checkpoint_writer {
        if let Err(e) = cp.save(0, cp.earlier.written.iter().cloned().collect(), false) {
            if created {
                if let Some(path) = dest.path() {
                    let _ = std::fs::remove_file(path);
                }
            }
            bail!("{e}");
        }
    }
    let interactive = !args.quiet && std::io::stderr().is_terminal();
    let progress = interactive.then(|| {
        let color = crate::output::style::stderr_on();
        crate::output::progress::bar(work.schedule.len(), work.start, color)
    });
    let writer = Writer {
        format,
        transcript: args.probe.transcript,
        meta: Some(meta),
        header: opened.header,
        progress: progress.clone(),
        interrupted: Arc::new(AtomicBool::new(false)),
        tap: None,
        checkpoint: checkpoint_writer,
        color: crate::output::style::on_for(dest.path()),
    };
    let mut engine = EngineConfig {
        concurrency,
        resolve_timeout: dns::resolve_timeout(&dns, args.probe.host_timeout),
        dns: dns::Dns::new(dns),
        grace: args.grace,
        guard,
        catch: None,
        lines: writer.lines(),
    };
    let sink = opened.sink;
    let summary = super::on_a_worker(&runtime()?, async move {
        // `--confirm … --catch …`: the catcher listens before the first probe.
        engine.catch = super::start_catcher(catch.as_ref(), &mut probe).await?;
        execute(work, probe, engine, writer, sink).await
    })??;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if !args.quiet {
        super::print_summary(&summary, is_stdout(args.output.as_deref()))?;
        if summary.interrupted {
            if let Some(path) = &args.resume {
                eprintln!(
                    "relayscan: interrupted; run the same command again to finish (checkpoint {})",
                    path.display()
                );
            }
        }
    }
    Ok(exit_code(&summary))
}

/// The JSON Lines meta line: what this run is, for whoever reads its records.
fn meta_line(args: &ScanArgs, planned: &Planned, work: &Work) -> Meta {
    let probe = &planned.probe;
    Meta::Scan(Box::new(ScanMeta {
        argv: std::env::args().collect(),
        auth_password_rules: probe.auth.as_ref().map(|_| AuthPasswordRules {
            ca_files: args.probe.auth_ca.clone(),
            hosts: probe
                .auth_rules
                .hosts
                .iter()
                .map(ToString::to_string)
                .collect(),
            insecure: probe.auth_rules.insecure,
            pins: args.probe.auth_pin.clone(),
        }),
        auth_user: probe.auth.as_ref().map(|a| a.user.clone()),
        config_hash: planned.hash.clone(),
        dns: planned.dns.meta(),
        ehlo: probe.ehlo.clone(),
        foreign_domain: probe.foreign_domain.clone(),
        implicit_tls: probe.implicit_tls,
        jobs: work.schedule.len().to_string(),
        order: planned.order,
        ports: planned.ports.clone(),
        resumed_from: planned.checkpoint.as_ref().map(|cp| cp.next.to_string()),
        schema_version: Some(SCHEMA_VERSION),
        scope: planned.guard.scope.as_ref().map(Scope::to_string),
        // A string: jq and JavaScript read JSON numbers as doubles, which
        // round a 64-bit seed.
        seed: planned.seed.to_string(),
        shard: planned.shard,
        started: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        starttls: format!("{:?}", probe.starttls).to_lowercase(),
        tests: planned.test_ids.iter().map(|t| t.to_string()).collect(),
        tool: "relayscan".into(),
        kind: MetaTag::Tag,
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// What `scan` will do, planned: the validated settings, the schedule, and
/// the fingerprint a checkpoint must match.
struct Planned {
    probe: ProbeConfig,
    catch: Option<config::CatchSettings>,
    dns: dns::Settings,
    ports: Vec<u16>,
    format: Format,
    shard: Shard,
    concurrency: usize,
    guard: Arc<Guard>,
    test_ids: Vec<&'static str>,
    /// The checkpoint of the run this one resumes.
    checkpoint: Option<Checkpoint>,
    seed: u64,
    order: Order,
    hash: String,
    schedule: Schedule,
}

/// The plan: the targets less the exclusions and reserved space, checked
/// against the scope (every literal target, every DNS server), its
/// fingerprint, its seed and order.
fn plan(args: &ScanArgs, settings: ScanSettings) -> anyhow::Result<Planned> {
    let ScanSettings {
        include,
        exclude: user_excludes,
        scope,
        ports,
        concurrency,
        probe,
        catch,
        mut dns,
        format,
        shard,
    } = settings;
    let mut exclude = user_excludes.clone();
    if !args.include_reserved {
        exclude.extend(targets::reserved());
    }
    let plan = match Plan::new(&include, &exclude, &ports) {
        // Say what removed them: the user's exclusions, or reserved space.
        Err(PlanError::AllExcluded)
            if matches!(
                Plan::new(&include, &user_excludes, &ports),
                Err(PlanError::AllExcluded)
            ) =>
        {
            bail!("--exclude removed every target: nothing left to scan")
        }
        Err(PlanError::AllExcluded) => bail!(
            "every target{} is reserved space (0.0.0.0/8, multicast, 240.0.0.0/4, ff00::/8), \
             which is skipped unless --include-reserved",
            if user_excludes.is_empty() {
                ""
            } else {
                " left after --exclude"
            }
        ),
        other => other?,
    };
    refuse_huge(plan.len(), args.allow_huge)?;
    // The scope, before any packet: every literal target, every DNS server.
    if let Some(scope) = &scope {
        scope.check_plan(&plan, &include)?;
        dns.check_scope(scope, dns.may_query(&plan))?;
    }
    dns.scope = scope.clone();
    let guard = Arc::new(Guard {
        scope,
        exclude: AddrSet::from_specs(&user_excludes),
        exclude_names: ExcludedNames::new(user_excludes.iter().filter_map(|e| match e {
            Spec::Name { host, .. } => Some(host.as_str()),
            _ => None,
        })),
        reserved: (!args.include_reserved).then(|| AddrSet::from_specs(&targets::reserved())),
        show_excluded: args.show_excluded,
    });

    // The plan's fingerprint: targets, ports, tests and what the tests say.
    let test_ids: Vec<&'static str> = probe.tests.iter().map(|t| t.id).collect();
    let specs: Vec<String> = include.iter().map(Spec::to_string).collect();
    let excluded: Vec<String> = user_excludes.iter().map(Spec::to_string).collect();
    let plan_parts = [
        specs.join(","),
        excluded.join(","),
        format!("{ports:?} reserved={}", args.include_reserved),
        test_ids.join(","),
        probe.foreign_domain.clone(),
        probe.sender.clone(),
        probe.recipient.clone(),
        probe.target_domain.clone().unwrap_or_default(),
        format!("{:?} {}", probe.starttls, probe.implicit_tls),
        probe
            .auth
            .as_ref()
            .map_or(String::new(), |a| a.user.clone()),
    ];
    let plan_refs: Vec<&str> = plan_parts.iter().map(String::as_str).collect();
    let checkpoint = match &args.resume {
        Some(path) if path.exists() => Some(Checkpoint::load(path)?),
        _ => None,
    };
    // Every shard must walk the same order: without --seed, sharded runs
    // derive it from the plan; a resumed run takes the checkpoint's.
    let seed = match (args.seed, &checkpoint) {
        (Some(s), _) => s,
        (None, Some(cp)) => cp.seed,
        (None, None) if shard.count > 1 => {
            u64::from_str_radix(&config::config_hash(&plan_refs), 16).unwrap_or(0)
        }
        (None, None) => random_seed(),
    };
    let order = args.order;
    let mut hash_parts = plan_refs.clone();
    let seed_text = seed.to_string();
    // The scope decides which targets are probed and which are recorded as
    // out of scope: a resumed run must keep it (but the order does not
    // depend on it, so it is not part of the sharded seed above).
    let scope_text = guard
        .scope
        .as_ref()
        .map(Scope::to_string)
        .unwrap_or_default();
    hash_parts.extend([order.as_str(), seed_text.as_str(), scope_text.as_str()]);
    let hash = config::config_hash(&hash_parts);
    let schedule = Schedule::new(Arc::new(plan), args.order, seed, shard);
    Ok(Planned {
        probe,
        catch,
        dns,
        ports,
        format,
        shard,
        concurrency,
        guard,
        test_ids,
        checkpoint,
        seed,
        order,
        hash,
        schedule,
    })
}

/// Where a resumed run starts.
enum Resumed {
    /// The checkpoint says the scan is complete: this exit code, nothing to run.
    Complete(i32),
    /// The work left, the positions done, the records written before.
    Go(Box<(Work, Completion, Earlier)>),
}

/// Resume: the same plan, the same output, from the checkpoint on (a run
/// without one starts at the beginning).
fn resume(args: &ScanArgs, planned: &Planned) -> anyhow::Result<Resumed> {
    let mut work = Work {
        start: 0,
        skip: Skip::default(),
        schedule: planned.schedule.clone(),
    };
    let Some(cp) = &planned.checkpoint else {
        return Ok(Resumed::Go(Box::new((
            work,
            Completion::default(),
            Earlier::default(),
        ))));
    };
    if cp.config_hash != planned.hash || cp.shard != planned.shard || cp.order != planned.order {
        bail!(
            "the checkpoint was made by a different scan (targets, ports, tests, scope, order, seed or shard differ): \
             run the same command as before, or remove the checkpoint to start over"
        );
    }
    let output = args.output.as_deref().context("--resume needs --output")?;
    let found = resume::read_back(output, cp)?;
    if cp.complete {
        // Nothing left to do; the answer is still the whole scan's.
        eprintln!("relayscan: that scan is already complete");
        if !args.quiet {
            super::print_summary(&found.summary, false)?;
        }
        return Ok(Resumed::Complete(exit_code(&found.summary)));
    }
    if found.torn_bytes > 0 && !args.quiet {
        eprintln!("relayscan: removed a record cut short by the interruption ({} bytes); its target is probed again", found.torn_bytes);
    }
    let mut written = found.tail;
    written.extend(cp.pending.iter().cloned());
    work.start = cp.next;
    work.skip = Skip {
        positions: cp.done_above.iter().copied().collect(),
        // Jobs given as an address; a name's records are matched by the writer.
        addrs: written
            .iter()
            .filter(|w| w.name.is_none() && !w.addr.ip().is_unspecified())
            .map(|w| w.addr)
            .collect(),
    };
    let completion = Completion::starting_at(cp.next, cp.done_above.iter().copied());
    let earlier = Earlier {
        written,
        summary: found.summary,
        schedule: Some(work.schedule.clone()),
    };
    Ok(Resumed::Go(Box::new((work, completion, earlier))))
}

/// The safety catch for huge plans (see [`HUGE_PLAN`]).
fn refuse_huge(jobs: u128, allow_huge: bool) -> anyhow::Result<()> {
    if jobs > HUGE_PLAN && !allow_huge {
        bail!(
            "{jobs} targets is more than {HUGE_PLAN} (a /8 on one port): check the prefix lengths, \
             or pass --allow-huge if you really mean it"
        );
    }
    Ok(())
}

fn dry_run(schedule: &Schedule, seed: u64, shard: Shard) -> anyhow::Result<i32> {
    let mut text = format!(
        "{} job(s) in shard {shard}, seed {seed}; the first in scan order:\n",
        schedule.len()
    );
    for (_, job) in schedule.iter_from(0).take(DRY_RUN_LIST as usize) {
        match job {
            Job::Addr(a) => text.push_str(&format!("{a}\n")),
            Job::Name { host, port } => text.push_str(&format!("{host}:{port}\n")),
            Job::Mx { domain, port } => text.push_str(&format!("mx:{domain}:{port}\n")),
        }
    }
    out(text)?;
    Ok(super::EXIT_CLEAN)
}

/// Raise the open-file limit to its hard maximum and keep the concurrency
/// below it: running out of descriptors must slow the scan, never fail hosts.
fn clamp_to_file_limit(wanted: usize, quiet: bool) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let usable = hosts_within(limit);
    if (wanted as u64) > usable {
        if !quiet {
            eprintln!(
                "relayscan: --concurrency {wanted} lowered to {usable}: the open-file limit is {limit}, \
                 and each host may hold {} connections",
                crate::relay::probe::policy::CONNECTIONS_AT_ONCE
            );
        }
        usable as usize
    } else {
        wanted
    }
}

/// How many hosts may be probed at once under an open-file limit: each may
/// hold [`CONNECTIONS_AT_ONCE`](crate::relay::probe::policy::CONNECTIONS_AT_ONCE)
/// sockets, and some descriptors are kept for everything else (the output,
/// DNS, the runtime); a few more than that are taken anyway, and those
/// EMFILEs are retried.
fn hosts_within(limit: u64) -> u64 {
    let reserved = (limit / 8).clamp(8, 64);
    let per_host = crate::relay::probe::policy::CONNECTIONS_AT_ONCE as u64;
    (limit.saturating_sub(reserved) / per_host).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(spec: &str, ports: &[u16]) -> u128 {
        let spec: Spec = spec.parse().unwrap();
        Plan::new(&[spec], &[], ports).unwrap().len()
    }

    #[test]
    fn the_descriptor_clamp_counts_every_connection_of_a_host() {
        // 64 descriptors, 8 kept back: 56 sockets, 3 per host.
        assert_eq!(hosts_within(64), 18);
        assert_eq!(hosts_within(1024), 320);
        assert_eq!(hosts_within(20_000), 6_645);
        assert_eq!(hosts_within(3), 1);
    }

    #[test]
    fn huge_plans_need_the_safety_catch() {
        // Planning only: nothing here opens a socket.
        for (spec, ports) in [
            ("::/0", &[25][..]),
            ("2001:db8::/0", &[25][..]),
            ("0.0.0.0/0", &[25][..]),
            ("2001:db8::/64", &[25][..]),
            ("10.0.0.0/8", &[25, 587][..]),
        ] {
            let err = refuse_huge(jobs(spec, ports), false).unwrap_err();
            assert!(err.to_string().contains("--allow-huge"), "{spec}: {err}");
            assert!(refuse_huge(jobs(spec, ports), true).is_ok());
        }
        // A /8 on one port is the largest plan allowed without it.
        assert!(refuse_huge(jobs("10.0.0.0/8", &[25]), false).is_ok());
        assert!(refuse_huge(jobs("192.0.2.0/24", &[25, 465, 587]), false).is_ok());
    }
}
