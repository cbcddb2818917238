//! Why a test was cut short, typed: no rule has to parse error text. Written
//! out as the text of its `Display`, the same words as ever.

use crate::smtp::Reply;
use serde::{Serialize, Serializer};
use std::fmt;

/// Why a test got no reply of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoReply {
    /// Lock step: an earlier test ended the session.
    SessionEnded,
    /// Pipelined: the session ended earlier in the group, for this reason.
    EndedEarlierInGroup(String),
    /// The connection went away while the reply was awaited.
    ConnectionGone(String),
    /// The group's replies came out of step with its commands (an extra
    /// reply, an RSET answered with a refusal): these were read, but none
    /// can be paired with its command.
    OutOfStep { read: String },
}

/// Why a test was cut short: typed, so that no rule has to parse text.
/// Written out as the text of its [`fmt::Display`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server never answered the test (see `Outcome::unanswered`).
    NoReply(NoReply),
    /// The session failed while the test ran (a timeout, a protocol error).
    Session(String),
    /// RFC 5321 §4.1.1.5: RSET is always answered 250; this one was not.
    RsetRefused(Reply),
    /// RSET got no reply.
    Rset(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoReply(NoReply::SessionEnded) => {
                write!(f, "no reply: the session ended before this test")
            }
            Failure::NoReply(NoReply::EndedEarlierInGroup(why)) => {
                write!(
                    f,
                    "no reply: the session ended earlier in the group ({why})"
                )
            }
            Failure::NoReply(NoReply::ConnectionGone(e)) => write!(f, "no reply: {e}"),
            Failure::NoReply(NoReply::OutOfStep { read }) => write!(
                f,
                "no reply: replies out of step in a pipelined group (read: {read})"
            ),
            Failure::Session(e) => f.write_str(e),
            Failure::RsetRefused(reply) => write!(f, "RSET refused: {reply}"),
            Failure::Rset(e) => write!(f, "RSET: {e}"),
        }
    }
}

impl Serialize for Failure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What ended a probe's session early (the record's `error`), typed where a
/// rule depends on it; written out as the text of its [`fmt::Display`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionFailure {
    /// No greeting on the first connection: the reason, typed (a read
    /// timeout is told from a closed connection by its variant, not its text).
    NoGreeting(crate::smtp::SessionError),
    /// The user interrupted the scan before the probe finished.
    Interrupted,
    /// The probe overran its host deadline and was stopped by force.
    HostDeadline,
    /// Any other step that failed, described (no rule reads it).
    Other(String),
}

impl fmt::Display for SessionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionFailure::NoGreeting(e) => write!(f, "no greeting: {e}"),
            SessionFailure::Interrupted => f.write_str("interrupted"),
            SessionFailure::HostDeadline => f.write_str("host-deadline"),
            SessionFailure::Other(text) => f.write_str(text),
        }
    }
}

impl From<String> for SessionFailure {
    fn from(text: String) -> Self {
        SessionFailure::Other(text)
    }
}

impl From<&str> for SessionFailure {
    fn from(text: &str) -> Self {
        SessionFailure::Other(text.to_string())
    }
}

impl Serialize for SessionFailure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
