//! Colour, through clap's own styling stack (`anstyle` for the styles,
//! `anstream` for the decision): `--color auto|always|never`, `NO_COLOR`
//! (<https://no-color.org>) and `CLICOLOR_FORCE` honoured, `auto` colouring
//! only a terminal. Only text relayscan writes itself is styled: server text
//! goes through [`super::sanitize::terminal`] first, so the only escape
//! sequences in the output are the ones made here.

use crate::relay::Status;
use anstyle::{AnsiColor, Style};

/// `--color`: when to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

impl ColorWhen {
    /// The choice for clap's own output (help, errors).
    pub fn clap(self) -> clap::ColorChoice {
        match self {
            ColorWhen::Auto => clap::ColorChoice::Auto,
            ColorWhen::Always => clap::ColorChoice::Always,
            ColorWhen::Never => clap::ColorChoice::Never,
        }
    }

    /// Make this the process-wide choice `anstream` decides with.
    pub fn set_global(self) {
        anstream::ColorChoice::write_global(match self {
            ColorWhen::Auto => anstream::ColorChoice::Auto,
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
        });
    }
}

/// The `--color` value on a command line, read before clap parses it (clap
/// needs the choice to style its own help and errors). The last one counts,
/// as with clap; anything after `--` is an operand.
pub fn color_from_args<I, S>(args: I) -> ColorWhen
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut when = ColorWhen::Auto;
    let mut take_next = false;
    for arg in args {
        let Some(arg) = arg.as_ref().to_str() else {
            take_next = false;
            continue;
        };
        let value = if take_next {
            Some(arg)
        } else if arg == "--" {
            break;
        } else {
            arg.strip_prefix("--color=")
        };
        take_next = arg == "--color";
        if let Some(v) = value {
            when = match v {
                "always" => ColorWhen::Always,
                "never" => ColorWhen::Never,
                _ => ColorWhen::Auto,
            };
        }
    }
    when
}

/// Whether to colour standard output: the global choice, and for `auto` a
/// terminal without NO_COLOR (anstream's rules).
pub fn stdout_on() -> bool {
    anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
}

/// Whether to colour standard error (the progress bar, the summary).
pub fn stderr_on() -> bool {
    anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
}

/// Whether to colour output going to a file (`-o`): only when forced, a file
/// is no terminal.
pub fn file_on() -> bool {
    anstream::ColorChoice::global() == anstream::ColorChoice::Always
}

/// Whether to colour a destination: standard output, or the file at `path`.
pub fn on_for(path: Option<&std::path::Path>) -> bool {
    match path {
        None => stdout_on(),
        Some(_) => file_on(),
    }
}

/// The colour of a verdict: red for relays, green for servers that refuse
/// to relay, yellow for targets that could not be tested.
pub fn verdict(status: Status) -> Style {
    match status {
        Status::OpenRelay => AnsiColor::Red.on_default().bold(),
        Status::PossibleRelay => AnsiColor::Magenta.on_default().bold(),
        Status::Closed | Status::AuthRequired => AnsiColor::Green.on_default(),
        Status::Excluded => Style::new().dimmed(),
        _ => AnsiColor::Yellow.on_default(),
    }
}

/// `text` in `style` when `on`, as it is otherwise.
pub fn paint(text: &str, style: Style, on: bool) -> String {
    if on && style != Style::new() {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// `text` in `style`, padded with spaces to `width` characters outside the
/// colour (so columns line up whether or not it is coloured).
pub fn paint_padded(text: &str, width: usize, style: Style, on: bool) -> String {
    let pad = width.saturating_sub(text.chars().count());
    format!("{}{}", paint(text, style, on), " ".repeat(pad))
}

/// clap's help in the same palette as the verdicts.
pub const HELP: clap::builder::Styles = clap::builder::Styles::styled()
    .header(AnsiColor::Green.on_default().bold())
    .usage(AnsiColor::Green.on_default().bold())
    .literal(AnsiColor::Cyan.on_default().bold())
    .placeholder(AnsiColor::Cyan.on_default())
    .error(AnsiColor::Red.on_default().bold())
    .valid(AnsiColor::Green.on_default())
    .invalid(AnsiColor::Yellow.on_default().bold());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_is_read_before_clap() {
        let w = |a: &[&str]| color_from_args(a.iter().copied());
        assert_eq!(w(&["relayscan", "scan"]), ColorWhen::Auto);
        assert_eq!(
            w(&["relayscan", "--color", "always", "scan"]),
            ColorWhen::Always
        );
        assert_eq!(w(&["relayscan", "scan", "--color=never"]), ColorWhen::Never);
        assert_eq!(
            w(&["relayscan", "--color=never", "scan", "--color", "always"]),
            ColorWhen::Always
        );
        // An operand after `--` is not the option.
        assert_eq!(
            w(&["relayscan", "scan", "--", "--color=always"]),
            ColorWhen::Auto
        );
        // A value clap will refuse changes nothing here.
        assert_eq!(w(&["relayscan", "--color", "pink"]), ColorWhen::Auto);
    }

    #[test]
    fn painting_keeps_columns() {
        let red = verdict(Status::OpenRelay);
        assert_eq!(paint("open-relay", red, false), "open-relay");
        let painted = paint_padded("open-relay", 15, red, true);
        assert!(painted.starts_with("\x1b["), "{painted:?}");
        assert!(painted.ends_with("\x1b[0m     "), "{painted:?}");
        assert_eq!(
            paint_padded("closed", 8, verdict(Status::Closed), false),
            "closed  "
        );
    }
}
