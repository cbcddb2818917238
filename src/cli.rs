//! The command line (clap derive). Option names are a contract that the
//! tests and the README rely on.

use crate::output::Format;
use crate::targets::{Order, Shard};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "relayscan",
    version,
    about = "Find SMTP servers that relay mail for strangers",
    long_about = "relayscan connects to SMTP servers, runs the standard open-relay tests \
                  (MAIL FROM / RCPT TO to foreign domains and the classic address tricks) \
                  and records, with evidence, whether each accepts unauthenticated relay. \
                  It sends no message (no DATA) unless asked for one confirmation with check --confirm.\n\n\
                  Scan only networks and servers you are allowed to test.",
    after_help = "Exit codes: 0 every target tested and none relays, 1 a relay found, 2 a usage or runtime error or a target that could not be tested, 130 interrupted.",
    styles = crate::output::style::HELP
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Colour the verdicts and the help: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto"
    )]
    #[arg(help_heading = "Output")]
    pub color: crate::output::style::ColorWhen,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Scan addresses, ranges and host names for open relays.
    #[command(after_help = SCAN_EXAMPLES)]
    Scan(ScanArgs),
    /// Check one server with every test and print a readable report (for CI).
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Start the built-in lab of simulated servers on loopback and scan it.
    Demo(DemoArgs),
    /// Run the lab's simulated servers until Ctrl-C, to try relayscan (or any SMTP client) on.
    Lab(LabArgs),
    /// Combine the JSON Lines outputs of a sharded or resumed scan into one file and a summary.
    Merge(MergeArgs),
    /// Write a report to read or hand on (one self-contained HTML file, or Markdown) from scan results.
    Report(ReportArgs),
    /// Show what changed between two scans' results; exit 1 when a new relay appeared.
    Diff(DiffArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to standard output, or write one page per command into DIR.
    Man(ManArgs),
}

/// The EXAMPLES section of `scan --help`.
const SCAN_EXAMPLES: &str = "\
Examples:
  relayscan scan 192.0.2.0/24                      one /24 on port 25, a CSV on stdout
  relayscan scan -i hosts.txt -p 25,465,587 -o results.jsonl
                                                   a list of hosts on three ports, JSON Lines
  relayscan scan --mx example.org --format table   the mail servers of a domain, as a table
  relayscan scan 198.51.100.0/22 --rate 50 --resume scan.ckpt -o scan.csv
                                                   50 connections/s, resumable after Ctrl-C
  relayscan scan 192.0.2.0/24 --scope 192.0.2.0/24 never send a packet outside the scope

Exit codes: 0 every target tested and none relays, 1 a relay found, 2 a usage or runtime error or a target that could not be tested, 130 interrupted.";

/// The EXAMPLES section of `check --help`.
const CHECK_EXAMPLES: &str = "\
Examples:
  relayscan check mx.example.org                   every test on port 25, a readable report
  relayscan check example.org                      each MX host of the domain, then one overall line
  relayscan check 192.0.2.25 -p 587 --transcript   port 587, with the SMTP dialogue (C:/S: lines)
  relayscan check [2001:db8::25]:2525 --format json
                                                   the JSON Lines result instead of the report
  relayscan check mx.example.org -q && echo clean  for CI: only the exit code

Exit codes: 0 every target tested and none relays, 1 a relay found, 2 a usage or runtime error or a target that could not be tested, 130 interrupted.";

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write relayscan.1 and relayscan-COMMAND.1 into this directory instead.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
}

/// Settings of the SMTP dialogue, shared by `scan` and `check`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Probe")]
pub(crate) struct ProbeArgs {
    /// Give up a connection attempt after this long (e.g. 5s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: std::time::Duration,
    /// Wait at most this long for each reply.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub read_timeout: std::time::Duration,
    /// Finish each host within this long, whatever it does.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub host_timeout: std::time::Duration,
    /// Our name in EHLO/HELO: use the scanner's real host name (default: this machine's FQDN, else relayscan.invalid).
    #[arg(long, value_name = "NAME")]
    pub ehlo: Option<String>,
    /// Local part of the test sender ({s}).
    #[arg(long = "from", value_name = "LOCAL", default_value = "relayscan")]
    pub from: String,
    /// Local part of the test recipient ({u}).
    #[arg(long = "to", value_name = "LOCAL", default_value = "relaytest")]
    pub to: String,
    /// The foreign domain a relay would forward to ({D}). Use a real domain you control when servers check DNS.
    #[arg(long, value_name = "DOMAIN", default_value = "example.net")]
    pub foreign_domain: String,
    /// The target's own mail domain ({TD}); default: derived from the name it announces.
    #[arg(long, value_name = "DOMAIN")]
    pub target_domain: Option<String>,
    /// Which tests to run: all, direct, tricks, or ids like S1,S2,R10.
    #[arg(long, value_name = "LIST", default_value = "all")]
    pub tests: String,
    /// Keep the whole SMTP dialogue: in the JSON Lines output, and in check's report as
    /// C:/S: lines (AUTH payloads are redacted).
    #[arg(long)]
    pub transcript: bool,
    /// STARTTLS: auto (when advertised, or demanded with a 530), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    #[arg(help_heading = "TLS/AUTH")]
    pub starttls: crate::smtp::tls::StartTlsMode,
    /// Implicit TLS (SMTPS) on every port; it is automatic on port 465.
    #[arg(long, conflicts_with = "starttls")]
    #[arg(help_heading = "TLS/AUTH")]
    pub tls: bool,
    /// Also test relaying after AUTH as USER: after a wrong password (must be refused) and the right one.
    /// The password comes from --auth-password-file or the RELAYSCAN_AUTH_PASSWORD environment variable.
    #[arg(long, value_name = "USER")]
    #[arg(help_heading = "TLS/AUTH")]
    pub auth: Option<String>,
    /// Read the --auth password from the first line of FILE (never echoed or written out).
    #[arg(long, value_name = "FILE", requires = "auth")]
    #[arg(help_heading = "TLS/AUTH")]
    pub auth_password_file: Option<PathBuf>,
    /// Send the --auth password to this host (name or address; repeatable). `check` names its
    /// own host; a `scan` without it sends the password nowhere.
    #[arg(long, value_name = "HOST|ADDR", requires = "auth")]
    #[arg(help_heading = "TLS/AUTH")]
    pub auth_host: Vec<String>,
    /// Also trust the CA certificates in FILE (PEM) when verifying a server for the --auth password.
    #[arg(long, value_name = "FILE", requires = "auth")]
    #[arg(help_heading = "TLS/AUTH")]
    pub auth_ca: Vec<PathBuf>,
    /// Send the --auth password to a server whose certificate has this SHA-256 fingerprint
    /// (64 hex digits; repeatable).
    #[arg(long, value_name = "SHA256HEX", requires = "auth")]
    #[arg(help_heading = "TLS/AUTH")]
    pub auth_pin: Vec<String>,
    /// DANGEROUS: send the --auth password without a verified certificate, without TLS, and to
    /// any host that offers AUTH. Warned about and recorded in every result.
    #[arg(long, requires = "auth")]
    #[arg(help_heading = "TLS/AUTH")]
    pub auth_insecure: bool,
    /// Removed: see --auth-insecure.
    #[arg(long, hide = true)]
    #[arg(help_heading = "TLS/AUTH")]
    pub auth_plaintext: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Targets: addresses, CIDR blocks, ranges (192.0.2.10-20), host:port, host names.
    #[arg(value_name = "TARGET")]
    #[arg(help_heading = "Targets")]
    pub targets: Vec<String>,
    /// Read targets from FILE, one per line, # comments ('-' = standard input).
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    #[arg(help_heading = "Targets")]
    pub input: Vec<String>,
    /// Leave these out (same syntax as targets; repeatable).
    #[arg(long, value_name = "SPEC")]
    #[arg(help_heading = "Targets")]
    pub exclude: Vec<String>,
    /// Leave out the targets listed in FILE.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = "Targets")]
    pub exclude_file: Vec<String>,
    /// Ports to probe, e.g. 25,587 or 2525-2530.
    #[arg(short = 'p', long, value_name = "PORTS", default_value = "25")]
    #[arg(help_heading = "Targets")]
    pub ports: String,
    /// Hosts probed at the same time.
    #[arg(short = 'c', long, value_name = "N", default_value_t = 256)]
    #[arg(help_heading = "Run")]
    pub concurrency: usize,
    /// Run every test even after a direct test was accepted.
    #[arg(long)]
    #[arg(help_heading = "Probe")]
    pub all_tests: bool,
    /// Output format (default: from the --output extension, else csv).
    #[arg(long, value_enum)]
    #[arg(help_heading = "Output")]
    pub format: Option<Format>,
    /// Write results to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    #[arg(help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long, conflicts_with = "append", requires = "output")]
    #[arg(help_heading = "Output")]
    pub force: bool,
    /// Append to the output file if it exists.
    #[arg(long, requires = "output")]
    #[arg(help_heading = "Output")]
    pub append: bool,
    /// Scan more than 2^24 targets (a /8 on one port; e.g. 0.0.0.0/0 or an IPv6 /64):
    /// a safety catch against a mistyped prefix length.
    #[arg(long)]
    #[arg(help_heading = "Safety")]
    pub allow_huge: bool,
    /// After the first Ctrl-C, let the hosts in flight finish for this long before
    /// stopping them (they are then recorded as interrupted).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    #[arg(help_heading = "Run")]
    pub grace: std::time::Duration,
    /// No progress bar and no summary: only the results.
    #[arg(short = 'q', long)]
    #[arg(help_heading = "Output")]
    pub quiet: bool,
    /// Scan order: random spreads the load over networks (reproducible with --seed).
    #[arg(long, value_enum, default_value = "random")]
    #[arg(help_heading = "Run")]
    pub order: Order,
    /// Seed of the random order (default: random; with --shard, derived from the targets so every shard agrees).
    #[arg(long, value_name = "N", value_parser = parse_seed)]
    #[arg(help_heading = "Run")]
    pub seed: Option<u64>,
    /// Take one disjoint slice of the plan: K of N (K from 0 to N-1).
    #[arg(long, value_name = "K/N")]
    #[arg(help_heading = "Run")]
    pub shard: Option<Shard>,
    /// Start at most N connections per second, evenly spaced.
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    #[arg(help_heading = "Run")]
    pub rate: Option<f64>,
    /// Keep a checkpoint in FILE; run the same command again to finish an interrupted scan.
    #[arg(long, value_name = "FILE", requires = "output")]
    #[arg(help_heading = "Run")]
    pub resume: Option<PathBuf>,
    /// Connect from this local address.
    #[arg(long, value_name = "ADDR")]
    #[arg(help_heading = "Run")]
    pub source_ip: Option<std::net::IpAddr>,
    /// Print the number of jobs and the first targets in scan order, probe nothing.
    #[arg(long)]
    #[arg(help_heading = "Run")]
    pub dry_run: bool,
    /// Also scan reserved space (0.0.0.0/8, multicast, 240.0.0.0/4, ff00::/8).
    #[arg(long)]
    #[arg(help_heading = "Safety")]
    pub include_reserved: bool,
    /// Probe the mail servers (MX hosts) of DOMAIN (repeatable; DOMAIN[:PORT]).
    #[arg(long = "mx", value_name = "DOMAIN")]
    #[arg(help_heading = "Targets")]
    pub mx: Vec<String>,
    /// Write a record with verdict `excluded` for each address that --exclude or reserved
    /// space removed after resolution (a name's or mx: domain's address); else they are only counted.
    #[arg(long)]
    #[arg(help_heading = "Output")]
    pub show_excluded: bool,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// Proof by delivery: one message per relaying server, and where to see it arrive.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Proof by delivery")]
pub(crate) struct ConfirmArgs {
    /// If a server accepts a relay path, send ONE test message through it to ADDRESS (an
    /// address you control) to confirm it: the only time relayscan sends DATA.
    #[arg(long, value_name = "ADDRESS")]
    pub confirm: Option<String>,
    /// Listen on ADDR:PORT as the mail server of ADDRESS's domain (point its MX here) and wait
    /// for each message: one that arrives proves the relay (confidence `delivered`).
    #[arg(
        long,
        value_name = "ADDR:PORT",
        requires = "confirm",
        conflicts_with = "catch_maildir"
    )]
    pub catch: Option<std::net::SocketAddr>,
    /// How long to wait for each message to arrive (relays queue).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub catch_wait: std::time::Duration,
    /// Instead of listening, watch this Maildir (its new/ and cur/) for the messages: where your
    /// own MTA delivers ADDRESS.
    #[arg(long, value_name = "DIR", requires = "confirm")]
    pub catch_maildir: Option<PathBuf>,
}

/// Where a run may send packets.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Safety")]
pub(crate) struct ScopeArgs {
    /// Send packets only to these addresses: CIDR blocks, ranges and addresses, comma-separated,
    /// or a FILE of them (repeatable). Targets (after DNS) and DNS servers outside it are refused
    /// before any packet.
    #[arg(long, value_name = "SPEC|FILE", env = "RELAYSCAN_SCOPE")]
    pub scope: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The server: DOMAIN (each of its MX hosts), HOST:PORT, an address or [IPv6]:PORT.
    #[arg(value_name = "HOST[:PORT]")]
    #[arg(help_heading = "Target")]
    pub target: String,
    /// The ONE port to check, when the target does not name one (default 25). Unlike
    /// `scan -p`, no list: run check once per port, or use `scan -p 25,587`.
    #[arg(short = 'p', long, value_name = "PORT", value_parser = parse_port)]
    #[arg(help_heading = "Target")]
    pub port: Option<u16>,
    /// Output format: text (the report) or json (the JSON Lines result, as in `scan --format jsonl`).
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "json")]
    #[arg(help_heading = "Output")]
    pub format: Option<CheckFormat>,
    /// Print the JSON Lines result instead of the report (the same as --format json).
    #[arg(long)]
    #[arg(help_heading = "Output")]
    pub json: bool,
    /// Write the report (with --json, the JSON line) to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    #[arg(help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long, requires = "output")]
    #[arg(help_heading = "Output")]
    pub force: bool,
    /// No report on standard output: only the exit code, and errors on standard error.
    #[arg(short = 'q', long)]
    #[arg(help_heading = "Output")]
    pub quiet: bool,
    /// Connect from this local address.
    #[arg(long, value_name = "ADDR")]
    #[arg(help_heading = "Probe")]
    pub source_ip: Option<std::net::IpAddr>,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// What `check` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CheckFormat {
    /// The readable report.
    Text,
    /// The JSON Lines result (one line per server).
    Json,
}

impl CheckArgs {
    /// `--format`, with `--json` as its alias; the report by default.
    pub(crate) fn json(&self) -> bool {
        self.json || self.format == Some(CheckFormat::Json)
    }
}

/// DNS: who answers, how fast we ask, and what we look up besides names.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "DNS")]
pub(crate) struct DnsArgs {
    /// Ask this name server, IP[:PORT] (repeatable; default: the system's).
    #[arg(long, value_name = "IP[:PORT]")]
    pub resolver: Vec<String>,
    /// Give up a DNS query after this long.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub dns_timeout: std::time::Duration,
    /// DNS queries per second at most (0 = no limit).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub dns_rate: u32,
    /// DNS queries in flight at most.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub dns_concurrency: usize,
    /// Look up every address's PTR name (default: for check and MX hosts).
    #[arg(long, conflicts_with = "no_ptr")]
    pub ptr: bool,
    /// Look up no PTR names.
    #[arg(long)]
    pub no_ptr: bool,
    /// DNS blocklists to check each address on: zones, `default`, or `none`
    /// (default: the built-in list, for check and MX hosts).
    #[arg(long, value_name = "ZONE,…")]
    pub dnsbl: Option<String>,
}

/// The demo's own output file, replaced on every run.
pub(crate) const DEMO_OUTPUT: &str = "relayscan-demo.csv";

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Where to write the demo's CSV. The default file is replaced on every
    /// run; any other existing file needs --force.
    #[arg(short = 'o', long, default_value = DEMO_OUTPUT)]
    pub output: PathBuf,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Add the hostile servers (endless lines, slowloris, escape codes, liars, …).
    #[arg(long)]
    pub hostile: bool,
    #[command(flatten)]
    pub scope: ScopeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// JSON Lines outputs of `relayscan scan` (one per shard, in any order).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Output format (default: from the --output extension, else csv).
    #[arg(long, value_enum)]
    pub format: Option<MergeFormat>,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// No summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Results of `relayscan scan` or `merge`: JSON Lines (full evidence) or CSV.
    #[arg(value_name = "RESULTS", required = true)]
    pub files: Vec<PathBuf>,
    /// Write the report to FILE (`-` for standard output).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// html: one self-contained page; markdown: a CI job summary (default: from the
    /// --output extension, else html).
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Older results to compare with: the report gets a "Changes" section.
    #[arg(long, value_name = "OLD")]
    pub baseline: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// What `report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    Html,
    Markdown,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The older results (JSON Lines or CSV).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The newer results (JSON Lines or CSV).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// How to show the changes.
    #[arg(long, value_enum, default_value = "table")]
    pub format: DiffFormat,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// What `diff` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DiffFormat {
    /// One line per change, for a terminal.
    Table,
    /// One JSON object per change, then a summary line.
    Jsonl,
    /// A Markdown table (a CI job summary).
    Markdown,
}

/// What `merge` writes: records to keep, so no table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MergeFormat {
    /// One flat row per target.
    Csv,
    /// A meta line, one result object per target, a summary line.
    Jsonl,
}

impl From<MergeFormat> for Format {
    fn from(f: MergeFormat) -> Format {
        match f {
            MergeFormat::Csv => Format::Csv,
            MergeFormat::Jsonl => Format::Jsonl,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct LabArgs {
    /// First loopback address; each profile takes the next one.
    #[arg(long, default_value_t = crate::lab::DEFAULT_BASE)]
    pub base: std::net::Ipv4Addr,
    /// Port every simulated server listens on (0 = any free port).
    #[arg(long, default_value_t = crate::lab::DEFAULT_PORT)]
    pub port: u16,
    /// Only these profiles (comma-separated names; default: all).
    #[arg(long, value_name = "NAMES")]
    pub profiles: Option<String>,
    /// Relaying profiles hand what they accept for foreign domains on to this loopback
    /// ADDR:PORT over SMTP (e.g. a `--catch` of check or scan), as their real counterparts would.
    #[arg(long, value_name = "ADDR:PORT")]
    pub forward: Option<std::net::SocketAddr>,
}

/// The longest duration accepted: a day. Longer is a typo, and a deadline
/// far enough away (`584542046090years`) would overflow the clock.
const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `5s`, `500ms`, `2m`, or a bare number of seconds; more than zero, at most a day.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if (0.0..1e9).contains(&secs) => std::time::Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("{s:?} is not a usable number of seconds")),
        Err(_) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("{s:?}: {e} (try 5s or 500ms)"))?,
    };
    if d.is_zero() {
        return Err("a timeout must be longer than zero".into());
    }
    if d > MAX_DURATION {
        return Err(format!("{s:?} is longer than a day"));
    }
    Ok(d)
}

/// The slowest `--rate`: one connection start every 1000 s. Slower is a
/// typo (and `1e-19` would overflow the pacer's interval).
pub(crate) const MIN_RATE: f64 = 0.001;
/// The fastest `--rate`: beyond this the pacer's interval rounds to nothing.
pub(crate) const MAX_RATE: f64 = 1_000_000.0;

/// A number of connections per second from [`MIN_RATE`] to [`MAX_RATE`].
pub(crate) fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if (MIN_RATE..=MAX_RATE).contains(&r) => Ok(r),
        Ok(r) if r.is_finite() && r > 0.0 => Err(format!(
            "{s} connections per second is out of range: use a rate from {MIN_RATE} to {MAX_RATE}"
        )),
        _ => Err(format!(
            "{s:?} is not a rate: give connections per second, a number from {MIN_RATE} to {MAX_RATE} (e.g. 50 or 0.5)"
        )),
    }
}

/// A `--seed`: a whole number that fits 64 bits.
pub(crate) fn parse_seed(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| {
        format!(
            "{s:?} is not a seed: give a whole number from 0 to {}",
            u64::MAX
        )
    })
}

/// One port, 1 to 65535 (`check -p`); a list is for `scan`.
pub(crate) fn parse_port(s: &str) -> Result<u16, String> {
    match parse_ports(s)?.as_slice() {
        [one] => Ok(*one),
        _ => Err(format!(
            "{s:?} names several ports: check takes one (run it once per port, or use `relayscan scan -p {s}`)"
        )),
    }
}

/// `25,587`, `2525-2530`, or a mix. Duplicates are dropped, order kept.
pub(crate) fn parse_ports(s: &str) -> Result<Vec<u16>, String> {
    let port = |p: &str| match p.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "unknown port {:?}: ports are numbers from 1 to 65535",
            p.trim()
        )),
        Ok(n) => Ok(n),
    };
    let mut ports = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(part)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("port range {part:?} is reversed"));
        }
        for p in lo..=hi {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
    }
    if ports.is_empty() {
        return Err("no ports given".into());
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ports() {
        assert_eq!(parse_ports("25,587").unwrap(), vec![25, 587]);
        assert_eq!(
            parse_ports("2525-2527,25,2526").unwrap(),
            vec![2525, 2526, 2527, 25]
        );
        assert!(parse_ports("0").unwrap_err().contains("unknown port"));
        assert!(parse_ports("smtp").unwrap_err().contains("unknown port"));
        assert!(parse_ports("30-20").unwrap_err().contains("reversed"));
        assert!(parse_ports(",").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("50").unwrap(), 50.0);
        assert_eq!(parse_rate("0.5").unwrap(), 0.5);
        for tiny_or_huge in ["1e-19", "0.0001", "1e7", "1e300"] {
            assert!(
                parse_rate(tiny_or_huge)
                    .unwrap_err()
                    .contains("out of range"),
                "{tiny_or_huge}"
            );
        }
        for junk in ["0", "-1", "NaN", "inf", "fast"] {
            assert!(parse_rate(junk).is_err(), "{junk}");
        }
        // The extremes make a pacer without a panic.
        let _ = crate::smtp::pacer::Pacer::new(MIN_RATE);
        let _ = crate::smtp::pacer::Pacer::new(MAX_RATE);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("5s").unwrap(),
            std::time::Duration::from_secs(5)
        );
        assert_eq!(
            parse_duration("250ms").unwrap(),
            std::time::Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("1.5").unwrap(),
            std::time::Duration::from_millis(1500)
        );
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        // Far deadlines would overflow the clock: refused, not a panic.
        assert!(parse_duration("584542046090years")
            .unwrap_err()
            .contains("longer than a day"));
        assert!(parse_duration("999999999").is_err());
        assert_eq!(
            parse_duration("24h").unwrap(),
            std::time::Duration::from_secs(86_400)
        );
    }
}
