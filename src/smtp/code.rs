//! SMTP reply codes, named after the texts RFC 5321 §4.2.2 and §4.2.3 give
//! them, and the extensions' codes after RFC 3207 (STARTTLS) and RFC 4954
//! (AUTH). The first digit is the class: 2 done, 3 go on, 4 try again
//! later, 5 do not try again (RFC 5321 §4.2.1).
//!
//! A server may send any code its class allows; these are the ones the
//! scanner reasons about and the lab sends.

/// 211 System status, or system help reply.
pub const SYSTEM_STATUS: u16 = 211;
/// 214 Help message.
pub const HELP_MESSAGE: u16 = 214;
/// 220 `<domain>` Service ready; also the answer to STARTTLS, "Ready to
/// start TLS" (RFC 3207 §4).
pub const SERVICE_READY: u16 = 220;
/// 221 `<domain>` Service closing transmission channel.
pub const SERVICE_CLOSING: u16 = 221;
/// 235 Authentication successful (RFC 4954 §6).
pub const AUTH_SUCCEEDED: u16 = 235;
/// 250 Requested mail action okay, completed.
pub const OK: u16 = 250;
/// 251 User not local; will forward to `<forward-path>`.
pub const USER_NOT_LOCAL_WILL_FORWARD: u16 = 251;
/// 252 Cannot VRFY user, but will accept message and attempt delivery.
pub const CANNOT_VRFY: u16 = 252;
/// 334 A server challenge during AUTH (RFC 4954 §4).
pub const AUTH_CHALLENGE: u16 = 334;
/// 354 Start mail input; end with `<CRLF>.<CRLF>`.
pub const START_MAIL_INPUT: u16 = 354;
/// 421 `<domain>` Service not available, closing transmission channel.
pub const SERVICE_NOT_AVAILABLE: u16 = 421;
/// 450 Requested mail action not taken: mailbox unavailable (busy, or
/// blocked for policy reasons; greylisting uses it).
pub const MAILBOX_BUSY: u16 = 450;
/// 451 Requested action aborted: local error in processing.
pub const LOCAL_ERROR: u16 = 451;
/// 452 Requested action not taken: insufficient system storage.
pub const INSUFFICIENT_STORAGE: u16 = 452;
/// 454 TLS not available due to temporary reason (RFC 3207 §4); also
/// Temporary authentication failure (RFC 4954 §6).
pub const TLS_NOT_AVAILABLE: u16 = 454;
/// 455 Server unable to accommodate parameters.
pub const PARAMETERS_NOT_ACCOMMODATED: u16 = 455;
/// 500 Syntax error, command unrecognized.
pub const SYNTAX_ERROR: u16 = 500;
/// 501 Syntax error in parameters or arguments.
pub const SYNTAX_ERROR_IN_PARAMETERS: u16 = 501;
/// 502 Command not implemented.
pub const COMMAND_NOT_IMPLEMENTED: u16 = 502;
/// 503 Bad sequence of commands.
pub const BAD_SEQUENCE: u16 = 503;
/// 504 Command parameter not implemented.
pub const PARAMETER_NOT_IMPLEMENTED: u16 = 504;
/// 530 Authentication required (RFC 4954 §6); also "Must issue a STARTTLS
/// command first" (RFC 3207 §4).
pub const AUTH_REQUIRED: u16 = 530;
/// 535 Authentication credentials invalid (RFC 4954 §6).
pub const AUTH_CREDENTIALS_INVALID: u16 = 535;
/// 550 Requested action not taken: mailbox unavailable (not found, no
/// access, or refused for policy reasons).
pub const MAILBOX_UNAVAILABLE: u16 = 550;
/// 551 User not local; please try `<forward-path>`.
pub const USER_NOT_LOCAL: u16 = 551;
/// 552 Requested mail action aborted: exceeded storage allocation.
pub const EXCEEDED_STORAGE: u16 = 552;
/// 553 Requested action not taken: mailbox name not allowed.
pub const MAILBOX_NAME_NOT_ALLOWED: u16 = 553;
/// 554 Transaction failed; at the greeting, "No SMTP service here".
pub const TRANSACTION_FAILED: u16 = 554;
/// 555 MAIL FROM/RCPT TO parameters not recognized or not implemented.
pub const PARAMETERS_NOT_RECOGNIZED: u16 = 555;

/// The reply line `code text` as sent on the wire, CRLF included.
pub fn line(code: u16, text: &str) -> String {
    format!("{code} {text}\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_sit_in_their_class() {
        for (code, class) in [
            (SERVICE_READY, 2),
            (OK, 2),
            (START_MAIL_INPUT, 3),
            (SERVICE_NOT_AVAILABLE, 4),
            (TLS_NOT_AVAILABLE, 4),
            (MAILBOX_UNAVAILABLE, 5),
            (TRANSACTION_FAILED, 5),
        ] {
            assert_eq!(code / 100, class, "{code}");
        }
        assert_eq!(line(OK, "2.1.0 Ok"), "250 2.1.0 Ok\r\n");
    }
}
