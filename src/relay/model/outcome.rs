//! The one rule for what a test showed ([`Outcome`]), and the typed reason a
//! test got no verdict-worthy reply ([`Failure`]). The probe and the judge
//! both read a test through these, never through reply codes or error text.

use super::facts::TestFacts;
use super::reply_class::{classify_reply, ReplyClass};
use crate::smtp::Reply;
use serde::{Serialize, Serializer};
use std::fmt;

/// What one test showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// MAIL 2xx and RCPT 250/251.
    Accepted,
    /// MAIL FROM was refused.
    MailRefused(ReplyClass),
    /// RCPT TO was refused.
    RcptRefused(ReplyClass),
    /// Not run (placeholder unknown, or the probe had stopped).
    Skipped,
    /// The session failed during the test.
    Aborted,
}

impl Outcome {
    pub fn of(t: &TestFacts) -> Outcome {
        if t.skipped.is_some() {
            return Outcome::Skipped;
        }
        match (&t.mail_reply, &t.rcpt_reply) {
            (Some(m), _) if !m.is_positive() => Outcome::MailRefused(classify_reply(m)),
            (Some(_), Some(r)) if r.code == 250 || r.code == 251 => Outcome::Accepted,
            (Some(_), Some(r)) => Outcome::RcptRefused(match classify_reply(r) {
                // A 2xx other than 250/251 (e.g. 252) is not an acceptance.
                ReplyClass::Accepted => ReplyClass::Refused,
                class => class,
            }),
            _ => Outcome::Aborted,
        }
    }

    /// The class of the refusal, if it was one.
    pub fn refusal(self) -> Option<ReplyClass> {
        match self {
            Outcome::MailRefused(c) | Outcome::RcptRefused(c) => Some(c),
            _ => None,
        }
    }

    /// `accepted`, `rcpt-refused`, `mail-refused`, `skipped`, `aborted`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::MailRefused(_) => "mail-refused",
            Outcome::RcptRefused(_) => "rcpt-refused",
            Outcome::Skipped => "skipped",
            Outcome::Aborted => "aborted",
        }
    }
}

impl Outcome {
    /// The session is still usable after this test: it did not fail, and
    /// no reply was the server's 421 goodbye (RFC 5321 §3.8).
    pub fn session_alive(t: &TestFacts) -> bool {
        let goodbye = |r: &Option<Reply>| r.as_ref().is_some_and(|r| r.code == 421);
        t.error.is_none() && !goodbye(&t.mail_reply) && !goodbye(&t.rcpt_reply)
    }

    /// The server never answered the test: the session ended before it, or
    /// its MAIL got the server's 421 goodbye. Such a test says nothing about
    /// relaying and may run again on a fresh connection.
    pub fn unanswered(t: &TestFacts) -> bool {
        let no_reply = matches!(t.error, Some(Failure::NoReply(_)));
        t.rcpt_reply.is_none()
            && match &t.mail_reply {
                None => no_reply,
                Some(r) => r.code == 421 || (r.is_positive() && no_reply),
            }
    }

    /// Unanswered because the connection ended without a 421.
    pub fn hung_up(t: &TestFacts) -> bool {
        Outcome::unanswered(t) && !t.mail_reply.as_ref().is_some_and(|r| r.code == 421)
    }
}

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
    /// The server never answered the test (see [`Outcome::unanswered`]).
    NoReply(NoReply),
    /// The session failed while the test ran (a timeout, a protocol error).
    Session(String),
    /// RFC 5321 §4.1.1.5: RSET is always answered 250; this one was not.
    RsetRefused(Reply),
    /// RSET got no reply.
    Rset(String),
    /// TLS could not be set up for the test.
    Tls(String),
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
            Failure::Session(e) | Failure::Tls(e) => f.write_str(e),
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
