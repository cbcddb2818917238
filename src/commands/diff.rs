//! `relayscan diff OLD NEW`: what changed between two scans. Exit 1 when a
//! new relay appeared (so a cron job or a CI schedule can alert on it),
//! else 0; 2 on unreadable input.

use super::{check_output, open_output, OutputRules, EXIT_CLEAN, EXIT_RELAY};
use crate::cli::{DiffArgs, DiffFormat};
use crate::output::diff::{self, ChangeKind};
use crate::output::results::Results;
use crate::output::Format;
use std::io::Write;

pub(crate) fn run(args: DiffArgs) -> anyhow::Result<i32> {
    let dest = check_output(
        args.output.as_deref(),
        &OutputRules {
            force: args.force,
            can_append: false,
            ..OutputRules::new(Format::Table)
        },
    )?;
    let old = Results::read(std::slice::from_ref(&args.old))?;
    let new = Results::read(std::slice::from_ref(&args.new))?;
    let changes = diff::diff(&old.hosts, &new.hosts);
    let text = match args.format {
        DiffFormat::Table => diff::table(&changes),
        DiffFormat::Jsonl => diff::jsonl(&changes)?,
        DiffFormat::Markdown => diff::markdown(&changes),
    };
    let mut sink = open_output(&dest, false)?.sink;
    sink.write_all(text.as_bytes())?;
    sink.flush()?;
    Ok(
        if changes.iter().any(|c| c.change == ChangeKind::NewRelay) {
            EXIT_RELAY
        } else {
            EXIT_CLEAN
        },
    )
}
