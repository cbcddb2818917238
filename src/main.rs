//! The `relayscan` binary: parse the command line, run, exit with the code
//! the README promises. All the work is in the library.

use clap::Parser;
use relayscan::cli::{Cli, Command};
use relayscan::commands::{self, EXIT_ERROR};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => commands::scan::run(args),
        Command::Check(args) => commands::check::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Lab(args) => commands::lab::run(args),
        Command::Merge(args) => commands::merge::run(args),
    };
    let code = match result {
        Ok(code) => code,
        // `relayscan scan … | head`: the reader left; that is not an error.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!(
                "relayscan: error: {}",
                relayscan::output::sanitize::terminal(&msg)
            );
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
