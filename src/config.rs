//! Validated settings: the command line turned into what the engine and the
//! probe need, with every check done before any socket or file is opened.

use crate::cli::{parse_ports, CheckArgs, ConfirmArgs, DnsArgs, ProbeArgs, ScanArgs};
use crate::dns::{self, resolver, Blocklists, Switch};
use crate::output::Format;
use crate::relay::auth::{AuthHost, PasswordRules};
use crate::relay::{catalogue, ProbeConfig};
use crate::smtp::sasl::{Credentials, Password};
use crate::smtp::tls::Trust;
use crate::smtp::{hostname, Limits};
use crate::targets::{self, Scope, Shard, Spec};
use anyhow::{bail, Context};
use std::path::Path;

/// Most hosts probed at once; beyond this the network, not relayscan, is the bottleneck.
const MAX_CONCURRENCY: usize = 20_000;

/// `relayscan scan`'s command line, validated. Building it opens no file
/// and no socket (list files and standard input are read): every mistake
/// the command line can hold is refused here, before anything runs.
pub(crate) struct ScanSettings {
    /// The targets: addresses, ranges, names, `mx:` domains.
    pub(crate) include: Vec<Spec>,
    /// The user's exclusions (reserved space is the plan's business).
    pub(crate) exclude: Vec<Spec>,
    pub(crate) scope: Option<Scope>,
    pub(crate) ports: Vec<u16>,
    pub(crate) concurrency: usize,
    pub(crate) probe: ProbeConfig,
    /// `--catch`, `--catch-maildir`.
    pub(crate) catch: Option<CatchSettings>,
    pub(crate) dns: dns::Settings,
    pub(crate) format: Format,
    pub(crate) shard: Shard,
}

impl ScanSettings {
    pub(crate) fn from_args(args: &ScanArgs) -> anyhow::Result<ScanSettings> {
        let mut include: Vec<Spec> = Vec::new();
        for t in &args.targets {
            include.push(t.parse()?);
        }
        let mut empty_lists = Vec::new();
        for file in &args.input {
            let listed = targets::read_list(file)?;
            if listed.is_empty() {
                empty_lists.push(if file == "-" { "standard input" } else { file });
            }
            include.extend(listed);
        }
        for domain in &args.mx {
            include.push(format!("mx:{domain}").parse().context("--mx")?);
        }
        let mut exclude: Vec<Spec> = Vec::new();
        for e in &args.exclude {
            exclude.push(e.parse().context("--exclude")?);
        }
        for file in &args.exclude_file {
            exclude.extend(targets::read_list(file)?);
        }
        if let Some(e) = exclude.iter().find(|e| e.port().is_some()) {
            bail!("--exclude {e}: exclusions take addresses or names, not ports");
        }
        if include.is_empty() && !empty_lists.is_empty() {
            bail!(
                "{} holds no targets (only blank lines and # comments): nothing to scan",
                empty_lists.join(", ")
            );
        }
        let scope = Scope::parse(&args.scope.scope)?;
        let ports = parse_ports(&args.ports).map_err(|e| anyhow::anyhow!("--ports: {e}"))?;
        if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
            bail!("--concurrency must be from 1 to {MAX_CONCURRENCY}");
        }
        let mut probe = probe_config(&args.probe, args.all_tests)?;
        if let Some(ip) = args.source_ip {
            crate::smtp::dial::check_source(ip).map_err(|e| {
                anyhow::anyhow!("--source-ip {ip} is not an address of this machine: {e}")
            })?;
            source_family_matches(ip, &include)?;
        }
        probe.source_ip = args.source_ip;
        probe.pace = args.rate.map(crate::smtp::pacer::Pace::new);
        let catch = confirm_settings(&args.confirm, &mut probe)?;
        let dns = dns_settings(&args.dns)?;
        let format = format_for(args.format, args.output.as_deref())?;
        if args.probe.transcript && format != Format::Jsonl {
            bail!("--transcript keeps the dialogue in JSON Lines only: add --format jsonl (or an -o FILE.jsonl)");
        }
        if args.resume.is_some() {
            if is_stdout(args.output.as_deref()) {
                bail!("--resume needs an output file (-o FILE): it reads what was written back");
            }
            if format == Format::Table {
                bail!(
                    "--resume reads its output back: write csv or jsonl (--format), not the table"
                );
            }
        }
        Ok(ScanSettings {
            include,
            exclude,
            scope,
            ports,
            concurrency: args.concurrency,
            probe,
            catch,
            dns,
            format,
            shard: args.shard.unwrap_or_default(),
        })
    }
}

/// `relayscan check`'s command line, validated.
pub(crate) struct CheckSettings {
    /// The one server: an address, a host name, or a mail domain's MX hosts.
    pub(crate) spec: Spec,
    pub(crate) probe: ProbeConfig,
    /// `--catch`, `--catch-maildir`.
    pub(crate) catch: Option<CatchSettings>,
    pub(crate) dns: dns::Settings,
    pub(crate) scope: Option<Scope>,
}

/// Where the canaries of `--confirm` are watched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CatchPlace {
    /// `--catch ADDR:PORT`: relayscan listens as the address's mail server.
    /// It only receives, so it needs no scope check.
    Listen(std::net::SocketAddr),
    /// `--catch-maildir DIR`.
    Maildir(std::path::PathBuf),
}

/// `--catch`/`--catch-maildir` with `--catch-wait`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatchSettings {
    pub(crate) place: CatchPlace,
    pub(crate) wait: std::time::Duration,
    /// The `--confirm` address: the catcher takes mail for its domain only.
    pub(crate) address: String,
}

/// `--confirm` into the probe, and where its messages are watched for.
fn confirm_settings(
    args: &ConfirmArgs,
    probe: &mut ProbeConfig,
) -> anyhow::Result<Option<CatchSettings>> {
    let Some(address) = &args.confirm else {
        return Ok(None);
    };
    let address = confirm_address(address)?;
    probe.confirm = Some(address.clone());
    let place = match (&args.catch, &args.catch_maildir) {
        (Some(addr), _) => CatchPlace::Listen(*addr),
        (None, Some(dir)) => {
            for sub in ["new", "cur"] {
                if !dir.join(sub).is_dir() {
                    bail!(
                        "--catch-maildir {}: no {sub}/ directory there (a Maildir has new/ and cur/)",
                        dir.display()
                    );
                }
            }
            CatchPlace::Maildir(dir.clone())
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(CatchSettings {
        place,
        wait: args.catch_wait,
        address,
    }))
}

impl CheckSettings {
    pub(crate) fn from_args(args: &CheckArgs) -> anyhow::Result<CheckSettings> {
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
            bail!("check takes one server; use `relayscan scan` for ranges");
        }
        if let (Some(named), Some(flag)) = (spec.port(), args.port) {
            if named != flag {
                bail!(
                    "{} names port {named} and --port says {flag}: give the port once",
                    crate::output::sanitize::terminal(&args.target)
                );
            }
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
        let catch = confirm_settings(&args.confirm, &mut probe)?;
        if let Some(ip) = args.source_ip {
            crate::smtp::dial::check_source(ip).map_err(|e| {
                anyhow::anyhow!("--source-ip {ip} is not an address of this machine: {e}")
            })?;
            source_family_matches(ip, std::slice::from_ref(&spec))?;
        }
        probe.source_ip = args.source_ip;
        let dns = dns_settings(&args.dns)?.for_check();
        Ok(CheckSettings {
            spec,
            probe,
            catch,
            dns,
            scope: Scope::parse(&args.scope.scope)?,
        })
    }
}

/// Every address target must be of `--source-ip`'s family: a socket bound to
/// an IPv4 address cannot reach an IPv6 one. (Names are checked per address
/// when they resolve.)
fn source_family_matches(source: std::net::IpAddr, include: &[Spec]) -> anyhow::Result<()> {
    let family = |ip: std::net::IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    for spec in include {
        if let Spec::Range { start, .. } = spec {
            if start.is_ipv4() != source.is_ipv4() {
                bail!(
                    "--source-ip {source} is {} but target {spec} is {}: connect from an address \
                     of the target's family, or scan IPv4 and IPv6 in separate runs",
                    family(source),
                    family(*start)
                );
            }
        }
    }
    Ok(())
}

/// The output format: `--format` when given, else from the `-o` extension
/// (`.csv`, `.jsonl`/`.json`/`.ndjson`, `.txt`; none, or standard output:
/// CSV). Any other extension (`x.xlsx`) needs `--format`: writing CSV into
/// a file named for another format would lie about its content.
pub(crate) fn format_for(explicit: Option<Format>, path: Option<&Path>) -> anyhow::Result<Format> {
    if let Some(f) = explicit {
        return Ok(f);
    }
    let Some(path) = path.filter(|p| !is_stdout(Some(p))) else {
        return Ok(Format::Csv);
    };
    let Some(ext) = path.extension() else {
        return Ok(Format::Csv);
    };
    // A device or FIFO stores nothing under its name: its name cannot lie.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return Ok(Format::Csv);
    }
    match ext.to_string_lossy().to_ascii_lowercase().as_str() {
        "csv" => Ok(Format::Csv),
        "jsonl" | "json" | "ndjson" => Ok(Format::Jsonl),
        "txt" => Ok(Format::Table),
        other => anyhow::bail!(
            "--output {}: relayscan writes csv, jsonl or a text table, not .{other}: \
             pass --format csv|jsonl|table to write that format under this name",
            path.display()
        ),
    }
}

/// `-o -` and `-o /dev/stdout` mean standard output (as `-i -` means
/// standard input); so does no `-o` at all.
pub(crate) fn is_stdout(path: Option<&Path>) -> bool {
    match path {
        None => true,
        Some(p) => p == Path::new("-") || p == Path::new("/dev/stdout"),
    }
}

/// Most DNS queries in flight; hickory multiplexes at most 32 per connection.
const MAX_DNS_CONCURRENCY: usize = 1024;

/// Build the DNS settings from the command line (`--resolver`,
/// `--dns-timeout`, `--dns-rate`, `--dns-concurrency`, `--ptr`, `--dnsbl`).
pub(crate) fn dns_settings(args: &DnsArgs) -> anyhow::Result<dns::Settings> {
    let mut servers = Vec::new();
    for s in &args.resolver {
        servers.push(resolver::parse_server(s).map_err(|e| anyhow::anyhow!("--resolver {e}"))?);
    }
    if args.dns_concurrency == 0 || args.dns_concurrency > MAX_DNS_CONCURRENCY {
        bail!("--dns-concurrency must be from 1 to {MAX_DNS_CONCURRENCY}");
    }
    let ptr = match (args.ptr, args.no_ptr) {
        (true, _) => Switch::On,
        (_, true) => Switch::Off,
        _ => Switch::Auto,
    };
    let dnsbl = match &args.dnsbl {
        Some(list) => Blocklists::parse(list)?,
        None => Blocklists::default(),
    };
    Ok(dns::Settings {
        servers,
        timeout: args.dns_timeout,
        rate: args.dns_rate,
        concurrency: args.dns_concurrency,
        ptr,
        dnsbl,
        scope: None,
    })
}

/// Build the probe settings from the command line.
pub(crate) fn probe_config(args: &ProbeArgs, all_tests: bool) -> anyhow::Result<ProbeConfig> {
    let tests = catalogue::select(&args.tests).map_err(|e| anyhow::anyhow!("--tests: {e}"))?;
    let ehlo = match &args.ehlo {
        Some(name) => {
            if hostname::fqdn(name).is_none() {
                bail!(
                    "--ehlo {name:?} is not a fully qualified host name (like scanner.example.org)"
                );
            }
            name.clone()
        }
        None => default_ehlo(),
    };
    for (flag, local) in [("--from", &args.from), ("--to", &args.to)] {
        if !valid_local_part(local) {
            bail!("{flag} {local:?} is not a plain local part (letters, digits, . _ + -)");
        }
    }
    let foreign_domain = hostname::fqdn(&args.foreign_domain).with_context(|| {
        format!(
            "--foreign-domain {:?} is not a domain name",
            args.foreign_domain
        )
    })?;
    let target_domain = match &args.target_domain {
        Some(d) => Some(
            hostname::fqdn(d)
                .with_context(|| format!("--target-domain {d:?} is not a domain name"))?,
        ),
        None => None,
    };
    let auth = match &args.auth {
        Some(user) => Some(credentials(user, args.auth_password_file.as_deref())?),
        None => None,
    };
    let auth_rules = password_rules(args)?;
    if args.host_timeout < args.read_timeout.min(args.connect_timeout) {
        bail!("--host-timeout is shorter than the connect and read timeouts: no test could finish");
    }
    Ok(ProbeConfig {
        ehlo,
        sender: args.from.clone(),
        recipient: args.to.clone(),
        foreign_domain,
        target_domain,
        tests,
        all_tests,
        limits: Limits {
            read_timeout: args.read_timeout,
            transcript_entries: if args.transcript { 2000 } else { 0 },
            ..Limits::default()
        },
        connect_timeout: args.connect_timeout,
        host_timeout: args.host_timeout,
        transcript: args.transcript,
        starttls: args.starttls,
        implicit_tls: args.tls,
        auth,
        auth_rules,
        ..ProbeConfig::default()
    })
}

/// Where the `--auth` password may go: the hosts of `--auth-host`, the CAs
/// of `--auth-ca` (besides the public roots), the pins of `--auth-pin`, and
/// `--auth-insecure`, which waives them all and is warned about here, once,
/// before anything is sent. `check` adds its own host to the list.
pub(crate) fn password_rules(args: &ProbeArgs) -> anyhow::Result<PasswordRules> {
    if args.auth_plaintext {
        bail!(
            "--auth-plaintext is gone: the password now goes only over TLS verified for a host \
             named for it (--auth-host, --auth-ca, --auth-pin); --auth-insecure sends it anyway"
        );
    }
    if args.auth.is_none() {
        return Ok(PasswordRules::default());
    }
    let mut hosts = Vec::new();
    for h in &args.auth_host {
        match AuthHost::parse(h) {
            Some(host) => hosts.push(host),
            None => bail!("--auth-host {h:?} is not a host name or an address"),
        }
    }
    let mut cas = Vec::new();
    for path in &args.auth_ca {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read --auth-ca {}: {}", path.display(), e.kind())
        })?;
        cas.push((format!("--auth-ca {}", path.display()), text));
    }
    let trust = Trust::new(&cas, &args.auth_pin).map_err(|e| anyhow::anyhow!(e))?;
    if args.auth_insecure {
        eprintln!(
            "relayscan: WARNING: --auth-insecure: the --auth password will be sent to every host \
             that offers AUTH, over unverified TLS or none. Anyone who answers, or listens, can \
             collect it. Each result records where it went (auth_audit.password)."
        );
    }
    Ok(PasswordRules {
        hosts,
        trust: Some(std::sync::Arc::new(trust)),
        insecure: args.auth_insecure,
    })
}

/// The environment variable that may hold the `--auth` password.
pub(crate) const PASSWORD_ENV: &str = "RELAYSCAN_AUTH_PASSWORD";

/// The `--auth` user and its password, from `--auth-password-file` or
/// [`PASSWORD_ENV`]. Error messages name where the password was looked
/// for, never the password.
fn credentials(user: &str, file: Option<&std::path::Path>) -> anyhow::Result<Credentials> {
    if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
        bail!("--auth takes a user name (no control characters, at most 256 bytes)");
    }
    let password = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read --auth-password-file {}: {}", path.display(), e.kind())
            })?;
            text.lines().next().unwrap_or("").to_string()
        }
        None => match std::env::var(PASSWORD_ENV) {
            Ok(p) => p,
            Err(_) => bail!(
                "--auth {user:?} needs a password: --auth-password-file FILE or the {PASSWORD_ENV} environment variable"
            ),
        },
    };
    if password.is_empty() {
        bail!("the --auth password is empty");
    }
    if password
        .chars()
        .any(|c| c == '\0' || c == '\r' || c == '\n')
    {
        bail!("the --auth password contains a control character SASL cannot carry");
    }
    Ok(Credentials {
        user: user.to_string(),
        password: Password::new(password),
    })
}

/// `--confirm ADDRESS`: a plain `local@domain` the user controls.
pub(crate) fn confirm_address(address: &str) -> anyhow::Result<String> {
    let valid = address
        .rsplit_once('@')
        .is_some_and(|(local, domain)| valid_local_part(local) && hostname::fqdn(domain).is_some());
    if !valid {
        bail!("--confirm {address:?} is not a plain address like you@example.org (one you control: a message goes there)");
    }
    Ok(address.to_string())
}

fn valid_local_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
        && !s.starts_with('.')
        && !s.ends_with('.')
}

/// This machine's name when it is fully qualified, else a reserved name.
fn default_ehlo() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| hostname::fqdn(h.trim()))
        .unwrap_or_else(|| "relayscan.invalid".to_string())
}

/// A stable fingerprint of the settings that decide what a scan does (FNV-1a,
/// 64 bits): two result files with the same hash came from the same plan.
pub(crate) fn config_hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_separates_fields() {
        assert_eq!(config_hash(&["a", "b"]), config_hash(&["a", "b"]));
        assert_ne!(config_hash(&["ab", ""]), config_hash(&["a", "b"]));
        assert_eq!(config_hash(&[]).len(), 16);
    }

    #[test]
    fn local_parts() {
        assert!(valid_local_part("relay.test+1"));
        assert!(!valid_local_part("a b"));
        assert!(!valid_local_part("a@b"));
        assert!(!valid_local_part(""));
        assert!(!valid_local_part("<x>"));
    }
}
