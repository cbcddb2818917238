//! Targets: what the user names (`spec`), the plan that expands it lazily
//! into jobs (`plan`), and the order and shard a run walks it in (`schedule`,
//! `permutation`).

pub mod permutation;
pub mod plan;
pub mod schedule;
pub mod spec;

pub use plan::{Job, Plan, PlanError};
pub use schedule::{random_seed, Order, Schedule, Shard};
pub use spec::{Spec, SpecError};

/// Address space nobody scans by accident: "this network", multicast, the
/// reserved class E block with the limited broadcast address, and IPv6
/// multicast. Excluded unless `--include-reserved`.
pub const RESERVED: &[&str] = &["0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "ff00::/8"];

/// [`RESERVED`] as specs.
pub fn reserved() -> Vec<Spec> {
    RESERVED.iter().filter_map(|s| s.parse().ok()).collect()
}

use anyhow::Context;
use std::io::BufRead;

/// Read target specs from a file (or `-` for standard input): one per line,
/// blank lines and `#` comments ignored. Errors name the file and line.
pub fn read_list(path: &str) -> anyhow::Result<Vec<Spec>> {
    let reader: Box<dyn BufRead> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read target file {path}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut specs = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read target file {path}"))?;
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        for word in text.split_whitespace() {
            specs.push(
                word.parse::<Spec>()
                    .with_context(|| format!("{path}:{}", n + 1))?,
            );
        }
    }
    Ok(specs)
}
