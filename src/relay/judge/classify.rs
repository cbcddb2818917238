//! The classifier: a pure function from [`Facts`] to a [`Verdict`] (the
//! verdict table is in the README).
//! No I/O, no clock: unit-tested on recorded transcripts.

use crate::relay::model::address::{self, SelfForm};
use crate::relay::model::catalogue::{self, Kind};
use crate::relay::model::facts::{Connect, Delivery, DeliveryStatus, Facts, TestFacts};
use crate::relay::model::failure::SessionFailure;
pub use crate::relay::model::outcome::Outcome;
use crate::relay::model::reply_class::ReplyClass;
use crate::smtp::Reply;
use crate::smtp::SessionError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One verdict per target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(schemars::JsonSchema)]
pub enum Status {
    OpenRelay,
    PossibleRelay,
    Closed,
    AuthRequired,
    TlsRequired,
    TempFail,
    Inconclusive,
    Rejected,
    NotSmtp,
    Refused,
    Timeout,
    Error,
    /// Not dialled: excluded after resolution (`--show-excluded` only).
    Excluded,
}

impl Status {
    pub const ALL: [Status; 13] = [
        Status::OpenRelay,
        Status::PossibleRelay,
        Status::Closed,
        Status::AuthRequired,
        Status::TlsRequired,
        Status::TempFail,
        Status::Inconclusive,
        Status::Rejected,
        Status::NotSmtp,
        Status::Refused,
        Status::Timeout,
        Status::Error,
        Status::Excluded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::OpenRelay => "open-relay",
            Status::PossibleRelay => "possible-relay",
            Status::Closed => "closed",
            Status::AuthRequired => "auth-required",
            Status::TlsRequired => "tls-required",
            Status::TempFail => "temp-fail",
            Status::Inconclusive => "inconclusive",
            Status::Rejected => "rejected",
            Status::NotSmtp => "not-smtp",
            Status::Refused => "refused",
            Status::Timeout => "timeout",
            Status::Error => "error",
            Status::Excluded => "excluded",
        }
    }

    /// A relay was found: the scan exits 1.
    pub fn is_relay(self) -> bool {
        matches!(self, Status::OpenRelay | Status::PossibleRelay)
    }

    /// The target could not be tested for relaying: the connection failed,
    /// the server was not SMTP or turned us away, or the tests could not
    /// decide. A CI gate must not pass on such a target (exit code 2).
    pub fn is_untested(self) -> bool {
        matches!(
            self,
            Status::Refused
                | Status::Timeout
                | Status::Error
                | Status::NotSmtp
                | Status::Rejected
                | Status::Inconclusive
                | Status::TempFail
                | Status::TlsRequired
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How sure the verdict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub enum Confidence {
    /// The relay test's canary message arrived at the catcher (`--catch`,
    /// `--catch-maildir`): proven.
    Delivered,
    /// The message was accepted after the final dot (confirmation mode).
    Data,
    /// RCPT TO a foreign domain was accepted.
    Rcpt,
    /// RCPT was accepted, but so was a domain that cannot exist (C1): the
    /// server accepts everything and may be a sink that never forwards.
    AcceptsAll,
    /// Possible relay: only address tricks were accepted, at a place where
    /// the server accepts any local part (C3), so they may be local
    /// mailboxes. Only a delivered canary settles it.
    Unproven,
    /// Closed: the refusals named relaying (or authentication / TLS).
    Explicit,
    /// Closed: the refusals were permanent but did not say why.
    Implicit,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Delivered => "delivered",
            Confidence::Data => "data",
            Confidence::Rcpt => "rcpt",
            Confidence::AcceptsAll => "accepts-all",
            Confidence::Unproven => "unproven",
            Confidence::Explicit => "explicit",
            Confidence::Implicit => "implicit",
        }
    }
}

/// The decision for one target, with the evidence behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub verdict: Status,
    pub confidence: Option<Confidence>,
    /// Ids of the accepted relay tests.
    pub accepted: Vec<&'static str>,
    /// The test whose reply decided the verdict.
    pub deciding_test: Option<&'static str>,
    /// The reply that decided the verdict, on one line.
    pub reply: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
    /// Caveats: controls, vantage point, tests that could not run.
    pub notes: Vec<String>,
}

impl Verdict {
    fn new(verdict: Status, reason: impl Into<String>) -> Self {
        Verdict {
            verdict,
            confidence: None,
            accepted: Vec::new(),
            deciding_test: None,
            reply: None,
            reason: reason.into(),
            notes: Vec::new(),
        }
    }

    fn decided_by(mut self, t: &TestFacts) -> Self {
        self.deciding_test = Some(t.id);
        self.reply = t
            .rcpt_reply
            .as_ref()
            .filter(|_| t.mail_reply.as_ref().is_some_and(Reply::is_positive))
            .or(t.mail_reply.as_ref())
            .map(Reply::one_line);
        self
    }

    fn from_reply(verdict: Status, reason: impl Into<String>, reply: &Reply) -> Self {
        let mut v = Verdict::new(verdict, reason);
        v.reply = Some(reply.one_line());
        v
    }
}

/// Decide the verdict for one target from what the probe saw.
pub fn classify(facts: &Facts) -> Verdict {
    match &facts.connect {
        Connect::Connected => {}
        Connect::Refused => return Verdict::new(Status::Refused, "connection refused"),
        Connect::Timeout => {
            return Verdict::new(Status::Timeout, "no answer to the connection attempt")
        }
        Connect::Error { message } => {
            return Verdict::new(Status::Error, format!("connect failed: {message}"))
        }
        Connect::Unresolved { message } | Connect::OutOfScope { message } => {
            return Verdict::new(Status::Error, message.clone())
        }
        Connect::Excluded { message } => return Verdict::new(Status::Excluded, message.clone()),
    }
    let g = &facts.greeting;
    let Some(banner) = &g.banner else {
        if let Some(what) = &g.not_smtp {
            let mut v = Verdict::new(Status::NotSmtp, "the service does not speak SMTP");
            v.reply = Some(what.clone());
            return v;
        }
        let timed_out = matches!(
            facts.error,
            Some(SessionFailure::NoGreeting(
                SessionError::Timeout | SessionError::Deadline
            ))
        );
        let error = facts
            .error
            .as_ref()
            .map_or_else(|| "no greeting".into(), ToString::to_string);
        let status = if facts.deadline_cut.is_some() || timed_out {
            Status::Timeout
        } else {
            Status::Error
        };
        return Verdict::new(status, error);
    };
    if banner.code != 220 {
        if banner.is_transient() || banner.is_permanent() {
            return Verdict::from_reply(
                Status::Rejected,
                "the server refuses us at the greeting",
                banner,
            );
        }
        return Verdict::from_reply(Status::NotSmtp, "unexpected greeting code", banner);
    }
    match &g.hello {
        None => {
            let error = facts.error.clone().unwrap_or_else(|| "no reply".into());
            let status = if facts.deadline_cut.is_some() {
                Status::Timeout
            } else {
                Status::Inconclusive
            };
            return Verdict::new(status, format!("session ended at EHLO: {error}"));
        }
        Some(hello) if !hello.is_positive() => {
            let status = if hello.code == 421 || hello.code == 554 {
                Status::Rejected
            } else {
                Status::Inconclusive
            };
            return Verdict::from_reply(status, "the server refused EHLO and HELO", hello);
        }
        Some(_) => {}
    }

    // A trick accepted where the server also accepts a random local part in
    // the same place (C3) was taken for a local mailbox: no relay evidence.
    let form = |t: &TestFacts| {
        let rcpt = t.rcpt_to.as_deref()?;
        address::self_form(
            rcpt,
            facts.addr.ip(),
            facts.host.as_deref(),
            facts.target_domain.as_deref(),
        )
    };
    let catch_all: Vec<SelfForm> = facts
        .controls
        .iter()
        .filter(|c| catalogue::is_local_part_control(c.id) && Outcome::of(c) == Outcome::Accepted)
        .filter_map(form)
        .collect();
    let mut local_only: Vec<&'static str> = Vec::new();
    let outcomes: Vec<(&TestFacts, Outcome)> = facts
        .tests
        .iter()
        .map(|t| {
            let o = Outcome::of(t);
            if o == Outcome::Accepted
                && t.kind == Kind::Trick
                && form(t).is_some_and(|f| catch_all.contains(&f))
            {
                local_only.push(t.id);
                (t, Outcome::Skipped)
            } else {
                (t, o)
            }
        })
        .collect();
    let accepted: Vec<&'static str> = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Accepted)
        .map(|(t, _)| t.id)
        .collect();
    let control = |id: &str| facts.controls.iter().find(|c| c.id == id).map(Outcome::of);
    let accepts_all = control("C1") == Some(Outcome::Accepted);
    let postmaster = control("C2");

    let mut notes = Vec::new();
    if let Some(step) = facts.deadline_cut {
        let not_run = facts
            .tests
            .iter()
            .filter(|t| matches!(Outcome::of(t), Outcome::Skipped | Outcome::Aborted))
            .count();
        notes.push(format!(
            "host deadline: cut during {}; {not_run} of {} tests did not finish (raise --host-timeout)",
            step.describe(),
            facts.tests.len()
        ));
    }
    let aborted = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Aborted)
        .count();
    if aborted > 0 {
        notes.push(format!("{aborted} test(s) cut short by the session"));
    }
    if let Some(err) = &facts.error {
        notes.push(format!("session: {err}"));
    }
    if !local_only.is_empty() {
        notes.push(format!(
            "{} accepted, but maybe as local mailboxes: the server accepts any local part there (C3), so RCPT alone proves nothing either way",
            local_only.join(" ")
        ));
    }

    // A canary that arrived settles it, whatever RCPT suggested: the test
    // whose path carried it decides.
    let delivery = facts
        .confirmation
        .as_ref()
        .and_then(|c| c.delivery.as_ref().map(|d| (c, d)));
    if let Some((c, d)) = delivery.filter(|(_, d)| d.status == DeliveryStatus::Delivered) {
        let mut v = Verdict::new(
            Status::OpenRelay,
            format!(
                "the canary arrived: {} MAIL FROM:{} RCPT TO:{} was relayed",
                c.test, c.mail_from, c.rcpt_to
            ),
        );
        v.deciding_test = Some(c.test);
        v.reply = c.replies.last().map(Reply::one_line);
        // Every test RCPT accepted, the tricks C3 set aside included.
        v.accepted = facts
            .tests
            .iter()
            .filter(|t| accepted.contains(&t.id) || local_only.contains(&t.id) || t.id == c.test)
            .map(|t| t.id)
            .collect();
        v.confidence = Some(Confidence::Delivered);
        if !local_only.is_empty() {
            // The C3 caveat is settled: say so instead of repeating it.
            notes.retain(|n| !n.contains("(C3)"));
            notes.push(format!(
                "{} looked like local mailboxes (the server accepts any local part there, C3), but the canary through {} was relayed",
                local_only.join(" "),
                c.test
            ));
        }
        notes.push(delivered_note(d));
        v.notes = notes;
        return v;
    }
    let not_delivered = delivery
        .filter(|(_, d)| d.status == DeliveryStatus::NotDelivered)
        .map(|(c, d)| (c.test, wait_text(d)));

    let first = |pred: &dyn Fn(&TestFacts, Outcome) -> bool| {
        outcomes.iter().find(|(t, o)| pred(t, *o)).map(|(t, _)| *t)
    };

    // A relay attempt after a deliberately wrong password (`--auth`) was
    // accepted: anyone who tries AUTH with any password can relay. That is
    // stronger evidence than an address trick, weaker news than a plain open relay.
    let direct_accepted = first(&|t, o| o == Outcome::Accepted && t.kind == Kind::Direct);
    if let Some(t) =
        super::auth::relay_after_failed_auth(facts).filter(|_| direct_accepted.is_none())
    {
        let mut v = Verdict::new(
            Status::OpenRelay,
            format!(
                "relays after a failed AUTH: {} MAIL FROM:{} RCPT TO:{}",
                t.id,
                t.mail_from.as_deref().unwrap_or(""),
                t.rcpt_to.as_deref().unwrap_or("")
            ),
        )
        .decided_by(t);
        v.accepted = vec![t.id];
        v.confidence = Some(Confidence::Rcpt);
        v.notes = notes;
        return v;
    }

    if let Some(t) = direct_accepted.or_else(|| first(&|_, o| o == Outcome::Accepted)) {
        let direct = t.kind == Kind::Direct;
        let (status, what) = if direct {
            (Status::OpenRelay, "accepted mail for a foreign domain")
        } else {
            (
                Status::PossibleRelay,
                "accepted only an address trick; confirm to be sure",
            )
        };
        let mut v = Verdict::new(
            status,
            format!(
                "{what}: {} MAIL FROM:{} RCPT TO:{}",
                t.id,
                t.mail_from.as_deref().unwrap_or(""),
                t.rcpt_to.as_deref().unwrap_or("")
            ),
        )
        .decided_by(t);
        v.accepted = accepted;
        // A message accepted after the final dot, through one of the
        // accepted tests, outranks RCPT alone (`check --confirm`).
        let confirmed = facts
            .confirmation
            .as_ref()
            .is_some_and(|c| c.accepted && v.accepted.contains(&c.test));
        v.confidence = Some(if confirmed {
            Confidence::Data
        } else if accepts_all {
            Confidence::AcceptsAll
        } else {
            Confidence::Rcpt
        });
        if accepts_all {
            notes.push(
                "C1: accepts a recipient in a domain that cannot exist (sink or honeypot?)".into(),
            );
        }
        if let Some((test, waited)) = &not_delivered {
            notes.push(format!(
                "the canary sent through {test} did not arrive within {waited}: a sink that keeps what it accepts, or a queue that did not forward it in time"
            ));
        }
        if matches!(
            postmaster,
            Some(Outcome::RcptRefused(_)) | Some(Outcome::MailRefused(_))
        ) {
            notes.push(
                "C2: refuses its own postmaster yet accepts relaying: check the vantage point"
                    .into(),
            );
        }
        v.notes = notes;
        return v;
    }

    // Only tricks the server may take for local mailboxes (C3): not proof
    // of relaying, and not proof of the opposite either (a backup MX takes
    // any local part and hands it to a primary that may relay it).
    if let Some(t) = local_only
        .first()
        .and_then(|id| facts.tests.iter().find(|t| t.id == *id))
    {
        let mut v = Verdict::new(
            Status::PossibleRelay,
            format!(
                "accepted only address tricks the server may keep as local mailboxes (C3): {} MAIL FROM:{} RCPT TO:{}",
                t.id,
                t.mail_from.as_deref().unwrap_or(""),
                t.rcpt_to.as_deref().unwrap_or("")
            ),
        )
        .decided_by(t);
        v.accepted = local_only.clone();
        v.confidence = Some(Confidence::Unproven);
        match &not_delivered {
            Some((test, waited)) => notes.push(format!(
                "the canary sent through {test} did not arrive within {waited}: evidence that the trick stayed local"
            )),
            None => notes.push(SETTLE.into()),
        }
        v.notes = notes;
        return v;
    }

    // Nothing accepted: why?
    let refused = |class: ReplyClass| first(&|_, o| o.refusal() == Some(class));
    let direct_ran: Vec<Outcome> = outcomes
        .iter()
        .filter(|(t, o)| t.kind == Kind::Direct && !matches!(o, Outcome::Skipped))
        .map(|(_, o)| *o)
        .collect();
    // A relay denial to an address trick says nothing about the direct
    // tests: a host none of whose direct tests got an answer is never closed.
    let direct_answered = direct_ran.iter().any(|o| o.refusal().is_some());
    let mut v = if let Some(t) = refused(ReplyClass::TlsRequired) {
        let mut v = Verdict::new(
            Status::TlsRequired,
            "the server demands STARTTLS before mail",
        )
        .decided_by(t);
        v.confidence = Some(Confidence::Explicit);
        v
    } else if let Some(t) = refused(ReplyClass::AuthRequired) {
        let mut v = Verdict::new(
            Status::AuthRequired,
            "the server demands authentication before relaying",
        )
        .decided_by(t);
        v.confidence = Some(Confidence::Explicit);
        v
    } else if let Some(t) = refused(ReplyClass::RelayDenied).filter(|_| direct_answered) {
        let mut v = Verdict::new(Status::Closed, "relaying refused").decided_by(t);
        v.confidence = Some(Confidence::Explicit);
        v
    } else if let Some(t) = refused(ReplyClass::DomainUnknown) {
        Verdict::new(
            Status::Inconclusive,
            "the foreign domain was refused as unknown, which says nothing about relaying: \
             pass --foreign-domain with a real domain you control",
        )
        .decided_by(t)
    } else if let (true, Some(step)) = (direct_ran.is_empty(), facts.deadline_cut) {
        Verdict::new(
            Status::Timeout,
            format!(
                "the host deadline ran out during {}: no relay test could finish",
                step.describe()
            ),
        )
    } else if direct_ran.is_empty() {
        Verdict::new(
            Status::Inconclusive,
            facts
                .error
                .as_ref()
                .map_or_else(|| "no relay test could run".into(), ToString::to_string),
        )
    } else if let Some(t) = first(&|t, o| {
        t.kind == Kind::Direct
            && matches!(
                o.refusal(),
                Some(ReplyClass::TempFail | ReplyClass::SessionEnd)
            )
    }) {
        Verdict::new(
            Status::TempFail,
            "only temporary refusals (greylisting?): inconclusive, try again later",
        )
        .decided_by(t)
    } else if direct_ran.iter().all(|o| o.refusal().is_some()) {
        let t = first(&|t, o| t.kind == Kind::Direct && o.refusal().is_some());
        let v = Verdict::new(Status::Closed, "every relay test was refused");
        let mut v = match t {
            Some(t) => v.decided_by(t),
            None => v,
        };
        v.confidence = Some(Confidence::Implicit);
        v
    } else {
        Verdict::new(
            Status::Inconclusive,
            facts.error.as_ref().map_or_else(
                || "the session ended before the tests could decide".into(),
                ToString::to_string,
            ),
        )
    };
    if v.verdict == Status::Closed
        && matches!(postmaster, Some(Outcome::RcptRefused(c)) | Some(Outcome::MailRefused(c)) if c != ReplyClass::TempFail)
    {
        notes.push("C2: also refuses its own postmaster: this vantage point may be blocked; the verdict holds only from here".into());
    }
    v.notes = notes;
    v
}

/// What settles a relay by RCPT or a trick: a canary that arrives.
const SETTLE: &str = "unproven until a message arrives: settle it with --confirm ADDRESS --catch ADDR:PORT (or --catch-maildir DIR)";

/// `2.0 s`, `2 min`: how long the catcher waited.
fn wait_text(d: &Delivery) -> String {
    let ms = d.waited_ms;
    if ms >= 60_000 && ms % 60_000 < 1000 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// The note for a delivered canary: when, from whom, and the path.
fn delivered_note(d: &Delivery) -> String {
    let mut n = format!(
        "delivered {} after the message",
        match d.after_ms {
            Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
            None => "some time".into(),
        }
    );
    if let Some(peer) = &d.peer {
        n.push_str(&format!(", handed over by {peer}"));
    }
    if !d.hops.is_empty() {
        n.push_str(&format!("; hops: {}", d.hops.join(" → ")));
    }
    n
}

#[cfg(test)]
mod tests {
    //! Recorded dialogues (replies as real servers sent them) → verdicts.
    use super::*;
    use crate::relay::model::facts::{Greeting, Hello};
    use crate::relay::model::outcome::{Failure, NoReply};
    use crate::smtp::Reply;

    fn reply(line: &str) -> Reply {
        let (code, text) = line.split_at(3);
        Reply::new(code.parse().unwrap(), text.trim_start())
    }

    /// A session: banner, EHLO reply, then (test id, MAIL reply, RCPT reply).
    fn session(banner: &str, tests: &[(&str, &str, Option<&str>)]) -> Facts {
        let mut f = Facts::new("192.0.2.1:25".parse().unwrap(), None);
        f.greeting = Greeting {
            banner: Some(reply(banner)),
            hello_command: Some(Hello::Ehlo),
            hello: Some(reply("250 mx.example.org")),
            ..Greeting::default()
        };
        for (id, mail, rcpt) in tests {
            let t = catalogue::find(id).unwrap();
            let mut tf = TestFacts::skipped(t.id, t.kind, "");
            tf.skipped = None;
            tf.mail_from = Some("<>".into());
            tf.rcpt_to = Some("<relaytest@example.net>".into());
            tf.mail_reply = Some(reply(mail));
            tf.rcpt_reply = rcpt.map(reply);
            if t.kind == Kind::Control {
                f.controls.push(tf);
            } else {
                f.tests.push(tf);
            }
        }
        f
    }

    const OK: &str = "250 2.1.0 Ok";
    const POSTFIX: &str = "220 mx.example.org ESMTP Postfix (Debian/GNU)";

    #[test]
    fn open_relay_postfix_permit() {
        let f = session(POSTFIX, &[("S1", OK, Some("250 2.1.5 Ok")), ("C1", OK, Some("450 4.1.2 <x@relay-control.invalid>: Recipient address rejected: Domain not found")), ("C2", OK, Some("250 2.1.5 Ok"))]);
        let v = classify(&f);
        assert_eq!(v.verdict, Status::OpenRelay);
        assert_eq!(v.confidence, Some(Confidence::Rcpt));
        assert_eq!(v.accepted, vec!["S1"]);
        assert_eq!(v.reply.as_deref(), Some("250 2.1.5 Ok"));
        assert!(v.notes.is_empty());
    }

    /// The slowloris case: EHLO answered, then the host deadline ran out
    /// before any relay test finished. The record says so; not "inconclusive".
    #[test]
    fn a_host_deadline_before_any_test_is_a_timeout_that_names_the_step() {
        let mut f = session(POSTFIX, &[]);
        for id in ["S1", "S2", "R1"] {
            let t = catalogue::find(id).unwrap();
            f.tests.push(TestFacts::skipped(
                t.id,
                t.kind,
                "not run: host deadline reached",
            ));
        }
        f.deadline_cut = Some(crate::relay::Step::DirectTests);
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Timeout);
        assert!(v.reason.contains("the direct relay tests"), "{}", v.reason);
        assert!(
            v.notes[0].contains("3 of 3 tests did not finish"),
            "{:?}",
            v.notes
        );
        // Without the cut, the same facts are only inconclusive.
        f.deadline_cut = None;
        assert_eq!(classify(&f).verdict, Status::Inconclusive);
    }

    /// A cut after the direct tests were refused keeps what was learnt (closed)
    /// and says how much did not run.
    #[test]
    fn a_host_deadline_during_the_tricks_keeps_the_verdict_and_adds_a_note() {
        let mut f = session(
            POSTFIX,
            &[("S1", OK, Some("554 5.7.1 Relay access denied"))],
        );
        let t = catalogue::find("R1").unwrap();
        f.tests.push(TestFacts::skipped(
            t.id,
            t.kind,
            "not run: host deadline reached",
        ));
        f.deadline_cut = Some(crate::relay::Step::Tricks);
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Closed);
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("cut during the address tricks; 1 of 2")),
            "{:?}",
            v.notes
        );
    }

    #[test]
    fn sink_that_accepts_invalid_domains_is_flagged() {
        let f = session(
            POSTFIX,
            &[
                ("S1", OK, Some("250 Ok")),
                ("C1", OK, Some("250 Ok")),
                ("C2", OK, Some("550 5.1.1 no")),
            ],
        );
        let v = classify(&f);
        assert_eq!(v.verdict, Status::OpenRelay);
        assert_eq!(v.confidence, Some(Confidence::AcceptsAll));
        assert_eq!(v.notes.len(), 2, "{:?}", v.notes);
    }

    #[test]
    fn trick_only_is_possible_relay() {
        let f = session(
            POSTFIX,
            &[
                ("S1", OK, Some("554 5.7.1 Relay access denied")),
                ("R1", OK, Some("250 2.1.5 Ok")),
            ],
        );
        let v = classify(&f);
        assert_eq!(v.verdict, Status::PossibleRelay);
        assert_eq!(v.deciding_test, Some("R1"));
    }

    #[test]
    fn postfix_default_454_is_closed_not_temp_fail() {
        let f = session(
            POSTFIX,
            &[
                (
                    "S1",
                    OK,
                    Some("454 4.7.1 <relaytest@example.net>: Relay access denied"),
                ),
                (
                    "S2",
                    OK,
                    Some("454 4.7.1 <relaytest@example.net>: Relay access denied"),
                ),
            ],
        );
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Closed);
        assert_eq!(v.confidence, Some(Confidence::Explicit));
        assert_eq!(
            v.reply.as_deref(),
            Some("454 4.7.1 <relaytest@example.net>: Relay access denied")
        );
    }

    #[test]
    fn opensmtpd_invalid_recipient_is_implicitly_closed() {
        let f = session(
            "220 mx.example.org ESMTP OpenSMTPD",
            &[(
                "S1",
                OK,
                Some("550 Invalid recipient: <relaytest@example.net>"),
            )],
        );
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Closed);
        assert_eq!(v.confidence, Some(Confidence::Implicit));
    }

    #[test]
    fn closed_but_refusing_own_postmaster_gets_a_vantage_note() {
        let f = session(
            POSTFIX,
            &[
                ("S1", OK, Some("554 5.7.1 Relay access denied")),
                ("C2", OK, Some("554 5.7.1 Client host rejected")),
            ],
        );
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Closed);
        assert!(v.notes.iter().any(|n| n.contains("vantage")));
    }

    #[test]
    fn auth_and_tls_required() {
        let iis = session(
            "220 mail Microsoft ESMTP MAIL Service ready",
            &[("S1", "530 5.7.1 Client was not authenticated", None)],
        );
        assert_eq!(classify(&iis).verdict, Status::AuthRequired);
        let tls = session(
            POSTFIX,
            &[("S1", "530 5.7.0 Must issue a STARTTLS command first", None)],
        );
        assert_eq!(classify(&tls).verdict, Status::TlsRequired);
        let auth_rcpt = session(
            POSTFIX,
            &[("S1", OK, Some("530 5.7.0 Authentication required"))],
        );
        assert_eq!(classify(&auth_rcpt).verdict, Status::AuthRequired);
    }

    #[test]
    fn greylisting_is_temp_fail() {
        let f = session(
            POSTFIX,
            &[
                (
                    "S1",
                    OK,
                    Some("451 4.7.1 Greylisted, please try again later"),
                ),
                ("S2", OK, Some("451 4.7.1 Greylisted")),
            ],
        );
        let v = classify(&f);
        assert_eq!(v.verdict, Status::TempFail);
        assert_eq!(v.confidence, None);
    }

    #[test]
    fn unknown_foreign_domain_is_inconclusive_with_advice() {
        let f = session(POSTFIX, &[("S1", OK, Some("450 4.1.2 <relaytest@example.net>: Recipient address rejected: Domain not found"))]);
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Inconclusive);
        assert!(v.reason.contains("--foreign-domain"));
    }

    #[test]
    fn greeting_level_verdicts() {
        let f = session("554 5.7.1 You are not welcome", &[]);
        assert_eq!(classify(&f).verdict, Status::Rejected);
        let f = session("421 4.3.2 Too busy", &[]);
        assert_eq!(classify(&f).verdict, Status::Rejected);

        let mut f = Facts::new("192.0.2.1:25".parse().unwrap(), None);
        f.greeting.not_smtp = Some("SSH-2.0-OpenSSH_9.2".into());
        let v = classify(&f);
        assert_eq!(v.verdict, Status::NotSmtp);
        assert_eq!(v.reply.as_deref(), Some("SSH-2.0-OpenSSH_9.2"));

        let mut f = Facts::new("192.0.2.1:25".parse().unwrap(), None);
        f.error = Some(SessionFailure::NoGreeting(SessionError::Timeout));
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Timeout);
        assert_eq!(
            v.reason,
            "no greeting: io-timeout: no reply within the read timeout"
        );
        // A closed connection before the greeting is no timeout.
        f.error = Some(SessionFailure::NoGreeting(SessionError::Closed));
        assert_eq!(classify(&f).verdict, Status::Error);
    }

    #[test]
    fn connection_failures() {
        let mut f = Facts::new("192.0.2.1:25".parse().unwrap(), None);
        f.connect = Connect::Refused;
        assert_eq!(classify(&f).verdict, Status::Refused);
        f.connect = Connect::Timeout;
        assert_eq!(classify(&f).verdict, Status::Timeout);
        f.connect = Connect::Error {
            message: "network unreachable".into(),
        };
        assert_eq!(classify(&f).verdict, Status::Error);
    }

    #[test]
    fn session_cut_short_is_inconclusive() {
        let mut f = session(POSTFIX, &[]);
        f.greeting.hello = None;
        f.error = Some("EHLO: connection-closed".into());
        assert_eq!(classify(&f).verdict, Status::Inconclusive);

        let mut f = session(POSTFIX, &[("S1", OK, None)]);
        f.tests[0].error = Some(Failure::Session("io-timeout".into()));
        f.error = Some("reconnect failed".into());
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Inconclusive);
    }

    #[test]
    fn a_host_whose_direct_tests_were_never_answered_is_never_closed() {
        // Every direct test lost its connection before a reply (a server
        // that hangs up), the tricks were refused as relaying.
        let denied = Some("554 5.7.1 <relaytest@example.net>: Relay access denied");
        let mut f = session(
            POSTFIX,
            &[("S1", OK, None), ("S2", OK, None), ("R1", OK, denied)],
        );
        for t in &mut f.tests[..2] {
            t.mail_reply = None;
            t.error = Some(Failure::NoReply(NoReply::ConnectionGone(
                "connection-closed".into(),
            )));
        }
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Inconclusive, "{v:?}");
        // One direct test answered with the same denial: closed.
        f.tests[1].mail_reply = Some(reply(OK));
        f.tests[1].rcpt_reply = denied.map(reply);
        f.tests[1].error = None;
        let v = classify(&f);
        assert_eq!(v.verdict, Status::Closed, "{v:?}");
        assert_eq!(v.deciding_test, Some("S2"));
    }

    #[test]
    fn tricks_taken_as_local_mailboxes_are_not_evidence() {
        // OpenSMTPD with a catch-all local domain (recorded on Debian 12):
        // `relaytest%example.net@host` is a local part to it.
        let mut f = session(
            "220 opensmtpd-closed.test ESMTP OpenSMTPD",
            &[
                (
                    "S1",
                    OK,
                    Some("550 Invalid recipient: <relaytest@example.net>"),
                ),
                (
                    "R2",
                    OK,
                    Some("250 2.1.5 Destination address valid: Recipient ok"),
                ),
                (
                    "C3-host",
                    OK,
                    Some("250 2.1.5 Destination address valid: Recipient ok"),
                ),
            ],
        );
        f.host = Some("opensmtpd-closed.test".into());
        f.tests[1].rcpt_to = Some("<relaytest%example.net@opensmtpd-closed.test>".into());
        f.controls[0].rcpt_to = Some("<rs0123@opensmtpd-closed.test>".into());
        let v = classify(&f);
        // Not proof, but not "closed" either: a backup MX looks the same.
        assert_eq!(v.verdict, Status::PossibleRelay, "{v:?}");
        assert_eq!(v.confidence, Some(Confidence::Unproven));
        assert_eq!(v.accepted, vec!["R2"]);
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("R2") && n.contains("local")),
            "{:?}",
            v.notes
        );
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("--confirm") && n.contains("--catch")),
            "{:?}",
            v.notes
        );

        // A canary through the trick that did not arrive: it stayed local.
        f.confirmation = Some(confirmation("R2", not_delivered(2000)));
        let v = classify(&f);
        assert_eq!(v.verdict, Status::PossibleRelay);
        assert_eq!(v.confidence, Some(Confidence::Unproven));
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("did not arrive within 2.0 s") && n.contains("stayed local")),
            "{:?}",
            v.notes
        );
        // One that arrived: the backup MX forwarded it to a relaying primary.
        f.confirmation = Some(confirmation("R2", delivered()));
        let v = classify(&f);
        assert_eq!(v.verdict, Status::OpenRelay);
        assert_eq!(v.confidence, Some(Confidence::Delivered));
        assert_eq!(v.deciding_test, Some("R2"));
        assert_eq!(v.reply.as_deref(), Some("250 2.0.0 Ok: queued"));
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("from mx2.test by mx1.test")),
            "{:?}",
            v.notes
        );
        // The report never says "proves nothing" above a delivered canary.
        assert!(
            !v.notes.iter().any(|n| n.contains("proves nothing")),
            "{:?}",
            v.notes
        );
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("but the canary through R2 was relayed")),
            "{:?}",
            v.notes
        );

        // Without the catch-all (C3 refused) the same trick is a possible relay.
        f.confirmation = None;
        f.controls[0].rcpt_reply = Some(reply("550 Invalid recipient"));
        let v = classify(&f);
        assert_eq!(v.verdict, Status::PossibleRelay);
        assert_eq!(v.confidence, Some(Confidence::Rcpt));
    }

    fn confirmation(
        test: &'static str,
        delivery: Delivery,
    ) -> crate::relay::model::facts::Confirmation {
        crate::relay::model::facts::Confirmation {
            test,
            mail_from: "<relayscan@relayscan.invalid>".into(),
            rcpt_to: "<me%example.net@host>".into(),
            token: "rs0123456789abcdef".into(),
            replies: vec![reply("250 2.0.0 Ok: queued")],
            accepted: true,
            error: None,
            delivery: Some(delivery),
        }
    }

    fn not_delivered(waited_ms: u64) -> Delivery {
        Delivery::not_delivered(waited_ms)
    }

    fn delivered() -> Delivery {
        Delivery {
            status: DeliveryStatus::Delivered,
            at: Some("2026-12-02T03:00:00.000Z".into()),
            after_ms: Some(1200),
            peer: Some("127.0.25.1:40000".into()),
            hops: vec![
                "from relayscan.invalid by mx2.test".into(),
                "from mx2.test by mx1.test".into(),
            ],
            waited_ms: 1200,
        }
    }

    /// A sink: open by RCPT, but the canary never came out.
    #[test]
    fn an_open_relay_whose_canary_did_not_arrive_says_what_that_means() {
        let mut f = session(
            POSTFIX,
            &[("S1", OK, Some("250 Ok")), ("C1", OK, Some("250 Ok"))],
        );
        f.confirmation = Some(confirmation("S1", not_delivered(120_000)));
        let v = classify(&f);
        assert_eq!(v.verdict, Status::OpenRelay);
        assert_eq!(v.confidence, Some(Confidence::Data));
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("did not arrive within 2 min") && n.contains("sink")),
            "{:?}",
            v.notes
        );
        // Delivered outranks everything else.
        f.confirmation = Some(confirmation("S1", delivered()));
        let v = classify(&f);
        assert_eq!(v.confidence, Some(Confidence::Delivered));
        assert_eq!(v.deciding_test, Some("S1"));
    }

    #[test]
    fn a_252_to_rcpt_is_not_acceptance() {
        let f = session(POSTFIX, &[("S1", OK, Some("252 2.1.5 Cannot verify"))]);
        assert_ne!(classify(&f).verdict, Status::OpenRelay);
    }
}
