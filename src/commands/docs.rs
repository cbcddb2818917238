//! `relayscan completions SHELL` and `relayscan man`: generated from the
//! same clap definition that parses the command line, so they cannot drift
//! from it (clap_complete, clap_mangen).

use super::out;
use crate::cli::{Cli, CompletionsArgs, ManArgs};
use clap::CommandFactory;

pub(crate) fn completions(args: CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "relayscan", &mut script);
    out(String::from_utf8_lossy(&script))?;
    Ok(super::EXIT_CLEAN)
}

pub(crate) fn man(args: ManArgs) -> anyhow::Result<i32> {
    let cmd = Cli::command();
    match args.output {
        None => out(String::from_utf8_lossy(&page(&cmd)?))?,
        Some(dir) => {
            if !dir.is_dir() {
                anyhow::bail!("--output {} is not a directory", dir.display());
            }
            // relayscan.1 for the tool, relayscan-COMMAND.1 for each command,
            // as git and cargo ship theirs.
            write_page(&dir.join("relayscan.1"), &page(&cmd)?)?;
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let name = format!("relayscan-{}", sub.get_name());
                let sub = sub
                    .clone()
                    .display_name(name.clone())
                    .bin_name(name.replace('-', " "));
                write_page(&dir.join(format!("{name}.1")), &sub_page(sub)?)?;
            }
        }
    }
    Ok(super::EXIT_CLEAN)
}

/// The tool's page: the top-level options and, with clap_mangen's
/// SUBCOMMANDS section, every command; each command's own options follow
/// under its name, so one page on standard output is complete.
fn page(cmd: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let sub = sub
            .clone()
            .bin_name(format!("relayscan {}", sub.get_name()));
        let man = clap_mangen::Man::new(sub.clone());
        buf.extend_from_slice(format!(".SH \"RELAYSCAN {}\"\n", sub_title(&sub)).as_bytes());
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part)?;
        man.render_description_section(&mut part)?;
        man.render_options_section(&mut part)?;
        // Its sections are subsections of the command's (roff .SS).
        let part = String::from_utf8_lossy(&part).replace(".SH ", ".SS ");
        buf.extend_from_slice(part.as_bytes());
    }
    Ok(buf)
}

fn sub_title(sub: &clap::Command) -> String {
    sub.get_name().to_uppercase()
}

fn sub_page(sub: clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(sub).render(&mut buf)?;
    Ok(buf)
}

fn write_page(path: &std::path::Path, page: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, page).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
