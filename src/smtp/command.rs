//! The SMTP commands relayscan sends (RFC 5321 §4.1, STARTTLS from RFC 3207,
//! AUTH from RFC 4954). `DATA` is here for one caller only: the confirmation
//! test (`relay/probe/confirm.rs`), which runs when the user asks for it with
//! `check --confirm`; the scanner never sends a message otherwise.
//!
//! A command has two renderings: the wire form, and the `Display` form used in
//! transcripts and error messages, where every SASL credential is
//! `<redacted>`. Nothing but [`Command::to_wire`] ever sees a secret.

use std::fmt;
use std::sync::Arc;

/// `Debug` is the redacted `Display` form, so a credential cannot leak
/// through a debug print either.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// `MAIL FROM:` followed by the path exactly as given (normally `<...>`).
    MailFrom(Arc<str>),
    /// `RCPT TO:` followed by the path exactly as given. Some relay tricks send
    /// a path without angle brackets on purpose.
    RcptTo(Arc<str>),
    Rset,
    Noop,
    Quit,
    /// `DATA`: only the user-requested confirmation test sends it.
    Data,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954). The initial response
    /// carries credentials: it is redacted everywhere but on the wire.
    Auth {
        mechanism: String,
        initial_response: Option<String>,
    },
    /// A line answering a `334` challenge (base64 of a user name or password):
    /// redacted everywhere but on the wire.
    AuthResponse(String),
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
            Command::Data => "DATA",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
            Command::AuthResponse(_) => "AUTH-RESPONSE",
        }
    }

    /// The command line on the wire, with CRLF. Any CR or LF inside an argument
    /// is removed so that a hostile placeholder value cannot inject a command.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut wire = Vec::new();
        self.write_wire(&mut wire);
        wire
    }

    /// Append the wire form ([`Command::to_wire`]) to `wire`, without
    /// allocating for the common commands.
    pub fn write_wire(&self, wire: &mut Vec<u8>) {
        let (head, argument): (&str, Option<&str>) = match self {
            Command::Ehlo(name) => ("EHLO ", Some(name)),
            Command::Helo(name) => ("HELO ", Some(name)),
            Command::MailFrom(path) => ("MAIL FROM:", Some(path)),
            Command::RcptTo(path) => ("RCPT TO:", Some(path)),
            Command::Rset => ("RSET", None),
            Command::Noop => ("NOOP", None),
            Command::Quit => ("QUIT", None),
            Command::Data => ("DATA", None),
            Command::StartTls => ("STARTTLS", None),
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                let mut line = format!("AUTH {mechanism}");
                if let Some(response) = initial_response {
                    line.push(' ');
                    line.push_str(response);
                }
                clean_line(wire, "", &line);
                return;
            }
            Command::AuthResponse(response) => ("", Some(response)),
        };
        clean_line(wire, head, argument.unwrap_or(""));
    }
}

/// `head` and `argument` as one line with CRLF, every CR or LF inside
/// removed (no command injection through a placeholder value).
fn clean_line(wire: &mut Vec<u8>, head: &str, argument: &str) {
    for part in [head, argument] {
        let bytes = part.as_bytes();
        if has_line_break(bytes) {
            wire.extend(bytes.iter().filter(|&&b| b != b'\r' && b != b'\n'));
        } else {
            // The usual case, a path without line breaks: copied whole.
            wire.extend_from_slice(bytes);
        }
    }
    wire.extend_from_slice(b"\r\n");
}

/// Whether `bytes` hold a CR or an LF. No early exit: without one the
/// compiler compares many bytes at once, and a path is short.
fn has_line_break(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(false, |found, &b| found | (b == b'\r') | (b == b'\n'))
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({self})")
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
            Command::Data => f.write_str("DATA"),
            Command::StartTls => f.write_str("STARTTLS"),
            Command::Auth {
                mechanism,
                initial_response: None,
            } => write!(f, "AUTH {mechanism}"),
            Command::Auth { mechanism, .. } => write!(f, "AUTH {mechanism} <redacted>"),
            Command::AuthResponse(_) => f.write_str("<redacted>"),
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

    #[test]
    fn credentials_reach_the_wire_but_never_the_display_form() {
        let auth = Command::Auth {
            mechanism: "PLAIN".into(),
            initial_response: Some("AHVzZXIAc2VjcmV0".into()),
        };
        assert_eq!(auth.to_wire(), b"AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
        assert_eq!(auth.to_string(), "AUTH PLAIN <redacted>");
        let response = Command::AuthResponse("c2VjcmV0".into());
        assert_eq!(response.to_wire(), b"c2VjcmV0\r\n");
        assert_eq!(response.to_string(), "<redacted>");
        assert!(!format!("{auth:?} {response:?}").contains("c2VjcmV0"));
        let login = Command::Auth {
            mechanism: "LOGIN".into(),
            initial_response: None,
        };
        assert_eq!(login.to_string(), "AUTH LOGIN");
        assert_eq!(Command::StartTls.to_wire(), b"STARTTLS\r\n");
    }
}
