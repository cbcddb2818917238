//! Targets: what the user names (`spec`), and the plan that expands it
//! lazily into jobs (`plan`).

pub mod plan;
pub mod spec;

pub use plan::{Job, Plan, PlanError};
pub use spec::{Spec, SpecError};

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
