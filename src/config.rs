//! Validated settings: the command line turned into what the engine and the
//! probe need, with every check done before any socket or file is opened.

use crate::cli::ProbeArgs;
use crate::relay::{catalogue, ProbeConfig};
use crate::smtp::{hostname, Limits};
use anyhow::{bail, Context};

/// Build the probe settings from the command line.
pub fn probe_config(args: &ProbeArgs, all_tests: bool) -> anyhow::Result<ProbeConfig> {
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
        ..ProbeConfig::default()
    })
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
pub fn config_hash(parts: &[&str]) -> String {
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
