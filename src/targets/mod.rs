//! Targets: what the user names (`spec`), the plan that expands it lazily
//! into jobs (`plan`), and the order and shard a run walks it in (`schedule`,
//! `permutation`).

pub mod permutation;
pub mod plan;
pub mod schedule;
pub mod scope;
pub mod spec;

pub use plan::{Job, Plan, PlanError};
pub use schedule::{random_seed, Order, Schedule, Shard};
pub use scope::{AddrSet, Scope};
pub use spec::Spec;

/// Address space nobody scans by accident: "this network", multicast, the
/// reserved class E block with the limited broadcast address, and IPv6
/// multicast. Excluded unless `--include-reserved`.
pub const RESERVED: &[&str] = &["0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "ff00::/8"];

/// [`RESERVED`] as specs.
pub fn reserved() -> Vec<Spec> {
    RESERVED.iter().filter_map(|s| s.parse().ok()).collect()
}

use anyhow::{bail, Context};
use std::io::{BufRead, Read};

/// Longest line accepted in a target list.
const MAX_LIST_LINE: usize = 4096;

/// Read target specs from a file (or `-` for standard input): one per line,
/// blank lines and `#` comments ignored. Errors name the file and line.
pub fn read_list(path: &str) -> anyhow::Result<Vec<Spec>> {
    let mut reader: Box<dyn BufRead> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read target file {path}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut specs = Vec::new();
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        // Read at most one byte more than a line may hold: `-i /dev/zero`
        // must be an error, not an endless line filling memory.
        let read = (&mut reader)
            .take(MAX_LIST_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read target file {path}"))?;
        if read == 0 {
            break;
        }
        let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if content.len() > MAX_LIST_LINE {
            bail!("{path}:{n}: line longer than {MAX_LIST_LINE} bytes");
        }
        let line = std::str::from_utf8(content)
            .map_err(|_| anyhow::anyhow!("{path}:{n}: not text (invalid UTF-8)"))?;
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        for word in text.split_whitespace() {
            specs.push(
                word.parse::<Spec>()
                    .with_context(|| format!("{path}:{n}"))?,
            );
        }
    }
    Ok(specs)
}
