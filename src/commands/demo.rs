//! `relayscan demo`: start the lab on loopback, scan it, show that every
//! profile got the verdict it should, and write the results as CSV.

use super::Destination;
use super::{execute, out, runtime, EXIT_CLEAN, EXIT_ERROR};
use crate::catch::{Catcher, Place as CatchPlace};
use crate::cli::DemoArgs;
use crate::engine::{CatchWait, EngineConfig, Guard};
use crate::lab::{Lab, Profile, DEFAULT_BASE, LAB_PASSWORD, LAB_USER, PROFILES};
use crate::output::sanitize::terminal;
use crate::output::{Format, Writer};
use crate::relay::auth::PasswordRules;
use crate::relay::{ProbeConfig, Status};
use crate::smtp::sasl::{Credentials, Password};
use crate::targets::{Plan, Scope, Spec};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// address, verdict, confidence, deciding reply
type Row = (SocketAddr, Status, String, String);

/// The demo's canary address: the catcher takes mail for its domain only.
const CANARY: &str = "canary@proof.relayscan.example";
/// How long each relaying server's canary is waited for: the lab hands a
/// message on within milliseconds, so what has not come by then stayed
/// where it was (a sink, a catch-all).
const CANARY_WAIT: Duration = Duration::from_secs(3);

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    rt.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<i32> {
    // The output is checked and opened before the lab starts: a bad path
    // is refused up front, not after the scan.
    if super::is_stdout(Some(&args.output)) {
        anyhow::bail!("demo prints its table on standard output: give -o a file for the CSV");
    }
    let dest = super::check_output(
        Some(&args.output),
        &super::OutputRules {
            force: args.force,
            can_append: false,
            replaceable: args.output == std::path::Path::new(crate::cli::DEMO_OUTPUT),
            ..super::OutputRules::new(Format::Csv)
        },
    )?;
    let output = CsvFile::open(&dest)?;
    let profiles: Vec<&'static Profile> = PROFILES
        .iter()
        .filter(|p| args.hostile || !p.is_hostile())
        .collect();
    // The lab's addresses are known before it starts: check them against
    // the scope first, so a scope without them sends nothing.
    let scope = Scope::parse(&args.scope.scope)?;
    if let Some(scope) = &scope {
        let last = u32::from(DEFAULT_BASE).saturating_add(profiles.len().saturating_sub(1) as u32);
        let (first, last) = (
            IpAddr::V4(DEFAULT_BASE),
            IpAddr::V4(std::net::Ipv4Addr::from(last)),
        );
        if let Some(outside) = scope.first_outside(first, last) {
            anyhow::bail!(
                "the demo's lab ({first}-{last}) is outside --scope {scope} ({outside} is not in it): \
                 nothing was started; add 127.0.0.0/8 to --scope (or RELAYSCAN_SCOPE)"
            );
        }
    }
    // Proof by delivery, on loopback: relayscan's catcher plays the mail
    // server of the canary's domain, the lab's relays hand on what they
    // accept (each like its real counterpart), and every server that
    // accepted a relay path gets one canary. Its arrival is the proof.
    let catcher = Arc::new(Catcher::listen(SocketAddr::from(([127, 0, 0, 1], 0)), CANARY).await?);
    let CatchPlace::Listen(catch_addr) = catcher.place else {
        anyhow::bail!("the demo's catcher listens on loopback");
    };
    let lab = Lab::start_forwarding(
        DEFAULT_BASE,
        0,
        &profiles,
        crate::lab::tls::Identity::SelfSigned,
        Some(catch_addr),
    )
    .await?;
    out(format!(
        "relayscan demo: {} simulated servers on {}-{} port {} (loopback only)\n\
         proof by delivery: one canary per relaying server, caught for {CANARY} on {catch_addr}\n",
        lab.servers.len(),
        lab.servers
            .first()
            .map(|(a, _)| a.ip().to_string())
            .unwrap_or_default(),
        lab.servers
            .last()
            .map(|(a, _)| a.ip().to_string())
            .unwrap_or_default(),
        lab.port()
    ) + "\n")?;
    let specs: Vec<Spec> = lab
        .servers
        .iter()
        .map(|(a, _)| Spec::Range {
            start: a.ip(),
            end: a.ip(),
            port: Some(a.port()),
        })
        .collect();
    let plan = Plan::new(&specs, &[], &[lab.port()])?;
    if let Some(scope) = &scope {
        scope.check_plan(&plan, &specs)?;
    }
    // The demo knows the lab's one account, so it also runs the
    // authenticated relay tests (A1, A2). The lab is loopback only and its
    // certificate self-signed: the password goes there under the explicit
    // `--auth-insecure` rule, which every record shows.
    let mut probe = ProbeConfig {
        ehlo: "scanner.relayscan.example".into(),
        connect_timeout: Duration::from_secs(2),
        // Generous for the tarpit; the hostile slowloris runs to it.
        host_timeout: Duration::from_secs(10),
        auth: Some(Credentials {
            user: LAB_USER.into(),
            password: Password::new(LAB_PASSWORD),
        }),
        auth_rules: PasswordRules {
            insecure: true,
            ..PasswordRules::default()
        },
        confirm: Some(CANARY.into()),
        canaries: Some(catcher.clone()),
        ..ProbeConfig::default()
    };
    // Short enough that the silent web server is found out quickly, long
    // enough for the tarpit's banner.
    probe.limits.read_timeout = Duration::from_secs(2);

    let seen: Arc<Mutex<Vec<Row>>> = Arc::default();
    let tap_seen = seen.clone();
    let writer = Writer {
        tap: Some(Box::new(move |r| {
            if let Ok(mut seen) = tap_seen.lock() {
                let conf = r
                    .verdict
                    .confidence
                    .map(|c| c.as_str())
                    .unwrap_or("")
                    .to_string();
                let reply = r
                    .verdict
                    .reply
                    .clone()
                    .or_else(|| r.error())
                    .unwrap_or_default();
                seen.push((r.facts.addr, r.verdict.verdict, conf, reply));
            }
        })),
        ..Writer::plain(Format::Csv)
    };
    let engine = EngineConfig {
        concurrency: 64,
        resolve_timeout: Duration::from_secs(1),
        // Addresses only: no PTR, no blocklists.
        dns: crate::dns::Dns::default(),
        grace: crate::engine::DEFAULT_GRACE,
        guard: Arc::new(Guard {
            scope,
            ..Guard::default()
        }),
        catch: Some(CatchWait::new(catcher, CANARY_WAIT)),
        // None: the demo's writer shows every record to its tap.
        lines: writer.lines(),
    };
    let sink = output.sink()?;
    let summary = execute(super::Work::sequential(plan), probe, engine, writer, sink).await?;
    output.finish()?;

    let mut rows = seen.lock().map(|s| s.clone()).unwrap_or_default();
    rows.sort_by_key(|r| r.0);
    out(format!(
        "{:<18} {:<24} {:<15} {:<15} {:<12} {:<3} reply",
        "address", "profile", "expected", "verdict", "confidence", "ok"
    ) + "\n")?;
    let mut wrong = 0;
    for (addr, verdict, conf, reply) in &rows {
        let Some(profile) = lab.profile_at(*addr) else {
            continue;
        };
        let expected = profile.expected_with_catcher(true);
        let ok = *verdict == expected;
        wrong += usize::from(!ok);
        let reply: String = terminal(reply).chars().take(60).collect();
        out(format!(
            "{:<18} {:<24} {:<15} {:<15} {:<12} {:<3} {reply}",
            addr.ip().to_string(),
            profile.name,
            expected.as_str(),
            verdict.as_str(),
            conf,
            if ok { "✓" } else { "✗" }
        ) + "\n")?;
    }
    out(summary.render())?;
    out(format!("Results written to {}", args.output.display()) + "\n")?;
    if wrong > 0 || rows.len() != lab.servers.len() {
        eprintln!("relayscan: error: {wrong} lab profile(s) got the wrong verdict");
        return Ok(EXIT_ERROR);
    }
    out("Every lab profile got its expected verdict.\n")?;
    Ok(EXIT_CLEAN)
}

/// The demo's CSV. A regular file is written next to its place and renamed
/// there at the end, so a crash never leaves half a file; a device or FIFO
/// (`/dev/null`) is written as it is. Errors name the user's path.
struct CsvFile {
    dest: Destination,
    tmp: Option<(PathBuf, std::fs::File)>,
}

impl CsvFile {
    fn open(dest: &Destination) -> anyhow::Result<CsvFile> {
        let tmp = match dest {
            Destination::File { path, .. } => {
                // The process id keeps two demos writing into one directory
                // (one of them refused, say) off each other's temporary file.
                let mut name = path.file_name().unwrap_or_default().to_os_string();
                name.push(format!(".{}.tmp", std::process::id()));
                let tmp = path.with_file_name(name);
                let file = std::fs::File::create(&tmp)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                Some((tmp, file))
            }
            _ => None,
        };
        Ok(CsvFile {
            dest: dest.clone(),
            tmp,
        })
    }

    fn sink(&self) -> anyhow::Result<Box<dyn std::io::Write + Send>> {
        match &self.tmp {
            Some((_, file)) => Ok(Box::new(file.try_clone()?)),
            None => Ok(super::open_output(&self.dest, false)?.sink),
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        let (Some((tmp, _)), Some(path)) = (self.tmp.take(), self.dest.path()) else {
            return Ok(());
        };
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::anyhow!("cannot write {}: {e}", path.display())
        })
    }
}

impl Drop for CsvFile {
    fn drop(&mut self) {
        // A demo that failed leaves no temporary file behind.
        if let Some((tmp, _)) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
