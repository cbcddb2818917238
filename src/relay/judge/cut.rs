//! Verdicts for probes that did not run to their end: cut by the user's
//! interrupt or by the hard stop behind the host deadline, or lost (the task
//! panicked or was aborted). A probe cut short says so in `error`; its
//! verdict stands only when it had already proven a relay.

use super::classify::{classify, Status, Verdict};
use crate::relay::model::facts::Facts;
pub use crate::relay::model::failure::SessionFailure;
use std::net::SocketAddr;

/// Why a probe was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The user interrupted the scan (after the grace period).
    Interrupted,
    /// The probe outlived its host deadline (a bug the hard stop catches).
    Overran,
}

impl Cut {
    /// The `error` a cut record carries.
    pub fn error(self) -> SessionFailure {
        match self {
            Cut::Interrupted => SessionFailure::Interrupted,
            Cut::Overran => SessionFailure::HostDeadline,
        }
    }
}

/// Judge a probe's facts, and the cut that ended it, if one did.
pub fn judge(mut facts: Facts, cut: Option<Cut>) -> (Facts, Verdict) {
    let mut verdict = classify(&facts);
    let Some(cut) = cut else {
        return (facts, verdict);
    };
    let (status, why) = match cut {
        Cut::Interrupted => (Status::Error, "interrupted before the tests could finish"),
        Cut::Overran => (Status::Timeout, "stopped: the host overran its deadline"),
    };
    // The session's own error gives way to the cut's; it stays as a note.
    if let Some(earlier) = facts.error.replace(cut.error()) {
        let note = format!("session: {earlier}");
        if !verdict.notes.contains(&note) {
            verdict.notes.push(note);
        }
    }
    if verdict.verdict.is_relay() {
        verdict
            .notes
            .push(format!("{why}; the remaining tests did not run"));
    } else {
        verdict.verdict = status;
        verdict.confidence = None;
        verdict.deciding_test = None;
        verdict.reply = None;
        verdict.reason = why.to_string();
    }
    (facts, verdict)
}

/// The verdict for a target whose probe ended without facts (it panicked,
/// or was aborted): what is known is the address (unspecified when a name
/// never resolved), the name, and why.
pub fn lost(addr: SocketAddr, name: Option<String>, why: SessionFailure) -> (Facts, Verdict) {
    let mut facts = Facts::new(addr, name);
    let why_text = why.to_string();
    facts.error = Some(why);
    let mut verdict = classify(&facts);
    verdict.verdict = Status::Error;
    verdict.reason = why_text;
    (facts, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::model::catalogue;
    use crate::relay::model::facts::TestFacts;
    use crate::smtp::Reply;

    fn addr() -> SocketAddr {
        "127.0.0.1:25".parse().unwrap()
    }

    fn relay() -> Facts {
        let mut facts = Facts::new(addr(), None);
        facts.greeting.banner = Some(Reply::new(220, "lab ESMTP"));
        facts.greeting.hello = Some(Reply::new(250, "lab"));
        let s1 = catalogue::find("S1").unwrap();
        let mut t = TestFacts::skipped(s1.id, s1.kind, "");
        t.skipped = None;
        t.mail_reply = Some(Reply::new(250, "ok"));
        t.rcpt_reply = Some(Reply::new(250, "ok"));
        facts.tests.push(t);
        facts
    }

    #[test]
    fn a_proven_relay_survives_a_cut() {
        let (facts, v) = judge(relay(), Some(Cut::Interrupted));
        assert_eq!(v.verdict, Status::OpenRelay);
        assert_eq!(facts.error, Some(SessionFailure::Interrupted));
        assert!(v.notes.iter().any(|n| n.contains("remaining tests")));
    }

    #[test]
    fn anything_else_cut_is_error_or_timeout_and_keeps_the_session_error() {
        let mut facts = Facts::new(addr(), None);
        facts.greeting.banner = Some(Reply::new(220, "lab ESMTP"));
        facts.greeting.hello = Some(Reply::new(250, "lab"));
        facts.error = Some("reconnect failed".into());
        let (f, v) = judge(facts.clone(), Some(Cut::Overran));
        assert_eq!(v.verdict, Status::Timeout);
        assert_eq!(f.error, Some(SessionFailure::HostDeadline));
        let once = v.notes.iter().filter(|n| *n == "session: reconnect failed");
        assert_eq!(once.count(), 1, "{:?}", v.notes);
        let (_, v) = judge(facts, Some(Cut::Interrupted));
        assert_eq!(v.verdict, Status::Error);
        assert!(v.confidence.is_none() && v.deciding_test.is_none());
    }

    #[test]
    fn lost_is_error() {
        let (f, v) = lost(
            addr(),
            Some("mx.test".into()),
            "internal-error: the probe panicked".into(),
        );
        assert_eq!(v.verdict, Status::Error);
        assert_eq!(v.reason, "internal-error: the probe panicked");
        assert_eq!(f.name.as_deref(), Some("mx.test"));
    }
}
