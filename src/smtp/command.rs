//! The SMTP commands relayscan sends (RFC 5321 §4.1). There is deliberately no
//! DATA here: the scanner never sends a message unless a confirmation test is
//! asked for, and that lives in its own module.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// `MAIL FROM:` followed by the path exactly as given (normally `<...>`).
    MailFrom(String),
    /// `RCPT TO:` followed by the path exactly as given. Some relay tricks send
    /// a path without angle brackets on purpose.
    RcptTo(String),
    Rset,
    Noop,
    Quit,
}

impl Command {
    /// The verb, for transcripts and error messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Helo(_) => "HELO",
            Command::MailFrom(_) => "MAIL",
            Command::RcptTo(_) => "RCPT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
        }
    }

    /// The command line on the wire, with CRLF. Any CR or LF inside an argument
    /// is removed so that a hostile placeholder value cannot inject a command.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut line = self.to_string();
        line.retain(|c| c != '\r' && c != '\n');
        line.push_str("\r\n");
        line.into_bytes()
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Ehlo(name) => write!(f, "EHLO {name}"),
            Command::Helo(name) => write!(f, "HELO {name}"),
            Command::MailFrom(path) => write!(f, "MAIL FROM:{path}"),
            Command::RcptTo(path) => write!(f, "RCPT TO:{path}"),
            Command::Rset => f.write_str("RSET"),
            Command::Noop => f.write_str("NOOP"),
            Command::Quit => f.write_str("QUIT"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        assert_eq!(
            Command::MailFrom("<a@b.example>".into()).to_wire(),
            b"MAIL FROM:<a@b.example>\r\n"
        );
        assert_eq!(Command::Rset.to_wire(), b"RSET\r\n");
    }

    #[test]
    fn line_breaks_in_arguments_cannot_inject_commands() {
        let wire = Command::RcptTo("<a@b>\r\nDATA".into()).to_wire();
        assert_eq!(wire, b"RCPT TO:<a@b>DATA\r\n");
    }
}
