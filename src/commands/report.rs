//! `relayscan report RESULTS… -o FILE`: the results as a page to read or
//! hand on (HTML), or as a CI job summary (Markdown), with the changes
//! since `--baseline` when one is given.

use super::{check_output, open_output, OutputRules, EXIT_CLEAN};
use crate::cli::{ReportArgs, ReportFormat};
use crate::output::html::{html, markdown, Report};
use crate::output::results::Results;
use crate::output::{diff, Format};
use std::io::Write;
use std::path::Path;

/// `--format`, else from the output's extension (`.md`, `.markdown`), else HTML.
fn format_of(args: &ReportArgs) -> ReportFormat {
    args.format.unwrap_or_else(|| {
        match Path::new(&args.output)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("md" | "markdown") => ReportFormat::Markdown,
            _ => ReportFormat::Html,
        }
    })
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<i32> {
    let format = format_of(&args);
    // The output is checked before any input is read, as for scan and merge.
    let dest = check_output(
        Some(&args.output),
        &OutputRules {
            force: args.force,
            can_append: false,
            ..OutputRules::new(Format::Table)
        },
    )?;
    let results = Results::read(&args.files)?;
    let baseline = match &args.baseline {
        Some(path) => {
            let old = Results::read(std::slice::from_ref(path))?;
            Some((
                path.display().to_string(),
                diff::diff(&old.hosts, &results.hosts),
            ))
        }
        None => None,
    };
    let report = Report {
        results: &results,
        baseline: baseline.as_ref().map(|(n, c)| (n.as_str(), c.as_slice())),
        generated: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    let text = match format {
        ReportFormat::Html => html(&report),
        ReportFormat::Markdown => markdown(&report),
    };
    let mut sink = open_output(&dest, false)?.sink;
    sink.write_all(text.as_bytes())?;
    sink.flush()?;
    Ok(EXIT_CLEAN)
}
