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
