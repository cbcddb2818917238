//! The one rule for what a test showed ([`Outcome`]). The probe and the
//! judge both read a test through it (and the typed [`Failure`]), never
//! through reply codes or error text of their own.

use super::facts::TestFacts;
pub use super::failure::{Failure, NoReply};
use super::reply_class::{classify_reply, ReplyClass};
use crate::smtp::Reply;

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
