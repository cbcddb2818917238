//! The command line, parsed and dispatched: clap's errors in the
//! project's one-line style, a broken pipe as a quiet exit.

use super::EXIT_ERROR;
use crate::cli::{Cli, Command};
use clap::{CommandFactory, FromArgMatches};

/// Parse the command line, run the command, and return the exit code the
/// README promises.
pub fn run() -> i32 {
    // The colour choice first: clap styles its own help and errors with it.
    let color = crate::output::style::color_from_args(std::env::args_os());
    color.set_global();
    let parsed = Cli::command()
        .color(color.clap())
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        // --help and --version go to stdout and exit 0, as clap does.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            eprint!("{}", usage_error(&e.render().to_string()));
            std::process::exit(EXIT_ERROR);
        }
    };
    let result = match cli.command {
        Command::Scan(args) => super::scan::run(args),
        Command::Check(args) => super::check::run(args),
        Command::Demo(args) => super::demo::run(args),
        Command::Lab(args) => super::lab::run(args),
        Command::Merge(args) => super::merge::run(args),
        Command::Report(args) => super::report::run(args),
        Command::Diff(args) => super::diff::run(args),
        Command::Completions(args) => super::docs::completions(args),
        Command::Man(args) => super::docs::man(args),
    };
    let code = match result {
        Ok(code) => code,
        // `relayscan scan … | head`: the reader left; that is not an error.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!(
                "relayscan: error: {}",
                crate::output::sanitize::terminal(&msg)
            );
            EXIT_ERROR
        }
    };
    code
}

/// A command-line error in the same one-line style as every other error
/// (`relayscan: error: …`), with clap's tips kept and its usage block left
/// out (`--help` has it).
fn usage_error(clap_text: &str) -> String {
    let mut message = String::new();
    let mut tips = String::new();
    for line in clap_text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if let Some(tip) = line.strip_prefix("tip: ") {
            tips.push_str(&format!("relayscan: tip: {tip}\n"));
        } else {
            // "the following required arguments were not provided:" is
            // followed by the arguments, one a line: keep them on this one.
            let line = line.strip_prefix("error: ").unwrap_or(line);
            if !message.is_empty() {
                message.push(' ');
            }
            message.push_str(line);
        }
    }
    if message.is_empty() {
        message.push_str("invalid command line");
    }
    format!("relayscan: error: {message}\n{tips}")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
