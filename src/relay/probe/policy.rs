//! The probe's policy: every decision about what to do next, as pure
//! functions of what has been recorded so far. The I/O loop in the parent
//! module asks; it never decides on its own. No I/O, no clock: unit-tested
//! below on recorded replies.
//!
//! The rules come from the SMTP RFCs and from how real servers behave:
//! RSET is always answered 250 (RFC 5321 §4.1.1.5), 421 closes the session
//! (RFC 5321 §3.8), a pipelined group's replies come back in command order
//! (RFC 2920 §3.1); Postfix tarpits after 10 errors, Exim drops after three
//! syntax errors.

use crate::relay::model::address;
use crate::relay::model::catalogue::{self, Kind, RelayTest};
use crate::relay::model::facts::TestFacts;
use crate::relay::model::outcome::Outcome;
use crate::smtp::Reply;
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// Connections to one host open at any moment, the ones still saying QUIT
/// included: the main session and two helpers for the address tricks.
pub const CONNECTIONS_AT_ONCE: usize = 3;

/// Why the probe runs no more tests of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The host deadline (`--host-timeout`) has passed.
    Deadline,
    /// The direct tests ran and no MAIL FROM was ever accepted: tricks only
    /// vary the recipient, so every one would be refused at MAIL again.
    EveryMailRefused,
    /// A direct test was accepted: the verdict is open-relay (`--all-tests`
    /// runs the rest anyway).
    DirectAccepted,
    /// This probe has opened all the connections it may.
    ConnectionLimit(u32),
    /// A new connection could not be opened or greeted.
    NoSession(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Deadline => f.write_str("host deadline reached"),
            Stop::EveryMailRefused => f.write_str("every MAIL FROM was refused"),
            Stop::DirectAccepted => f.write_str("a direct test was accepted"),
            Stop::ConnectionLimit(n) => write!(f, "connection limit ({n}) reached"),
            Stop::NoSession(why) => f.write_str(why),
        }
    }
}

impl Stop {
    /// Why a test was not run: `not run: ` and the reason, a fixed text
    /// for the reasons without data (most of them).
    pub fn not_run(&self) -> Cow<'static, str> {
        match self {
            Stop::Deadline => Cow::Borrowed("not run: host deadline reached"),
            Stop::EveryMailRefused => Cow::Borrowed("not run: every MAIL FROM was refused"),
            Stop::DirectAccepted => Cow::Borrowed("not run: a direct test was accepted"),
            other => Cow::Owned(format!("not run: {other}")),
        }
    }
}

/// The stop rules before the next address trick, from every test decided so far.
pub fn stop_before_trick<'a>(
    decided: impl Iterator<Item = &'a TestFacts> + Clone,
    all_tests: bool,
) -> Option<Stop> {
    let mut direct = decided.clone().filter(|t| t.kind == Kind::Direct);
    let direct_ran = direct.clone().any(|t| t.mail_reply.is_some());
    let mail_ok = decided
        .clone()
        .any(|t| t.mail_reply.as_ref().is_some_and(Reply::is_positive));
    if direct_ran && !mail_ok {
        Some(Stop::EveryMailRefused)
    } else if !all_tests && direct.any(|t| Outcome::of(t) == Outcome::Accepted) {
        Some(Stop::DirectAccepted)
    } else {
        None
    }
}

/// Whether a just-finished test stops the group (the direct tests only).
pub fn stop_after(t: &TestFacts, all_tests: bool) -> Option<Stop> {
    (!all_tests && t.kind == Kind::Direct && Outcome::of(t) == Outcome::Accepted)
        .then_some(Stop::DirectAccepted)
}

/// What the target itself is called in the tests, for the C3 controls.
#[derive(Debug, Clone, Copy)]
pub struct SelfNames<'a> {
    pub ip: IpAddr,
    pub host: Option<&'a str>,
    pub target_domain: Option<&'a str>,
}

/// The controls to run after the relay tests: C1 once anything was
/// accepted (does it accept a domain that cannot exist?), and one C3 per
/// place an accepted trick named the target itself (does it take any local
/// part there?).
pub fn controls(tests: &[TestFacts], names: SelfNames<'_>) -> Vec<&'static RelayTest> {
    let accepted = |t: &&TestFacts| Outcome::of(t) == Outcome::Accepted;
    let mut out: Vec<&'static RelayTest> = Vec::new();
    if tests.iter().any(|t| accepted(&t)) {
        out.push(&catalogue::CONTROL_ACCEPT_ALL);
    }
    let mut forms: Vec<address::SelfForm> = tests
        .iter()
        .filter(|t| t.kind == Kind::Trick)
        .filter(accepted)
        .filter_map(|t| {
            address::self_form(
                t.rcpt_to.as_deref()?,
                names.ip,
                names.host,
                names.target_domain,
            )
        })
        .collect();
    forms.sort();
    forms.dedup();
    out.extend(forms.into_iter().map(catalogue::local_part_control));
    out
}

/// Whether two tests may share a pipelined group: tricks with tricks, the
/// rest (direct tests and controls) with each other.
pub fn same_group(a: Kind, b: Kind) -> bool {
    a == b || (a != Kind::Trick && b != Kind::Trick)
}

/// What one session has cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// Refusals counted against the error budget.
    pub errors: u32,
    /// Syntax errors among them.
    pub syntax_errors: u32,
    /// Tests answered on the session.
    pub tests_done: u32,
}

/// The budgets a session must stay under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Refusals before we reconnect (Postfix's soft limit is 10).
    pub errors: u32,
    /// Syntax errors before we reconnect (Exim drops at 3).
    pub syntax_errors: u32,
    /// Tests per connection, once the server has shown that it hangs up
    /// after that many without a 421 (learnt, never guessed).
    pub per_connection: Option<u32>,
}

/// The session has used up a budget: QUIT and reconnect.
pub fn over_budget(spent: Spent, budget: Budget) -> bool {
    spent.errors >= budget.errors
        || spent.syntax_errors >= budget.syntax_errors
        || budget.per_connection.is_some_and(|l| spent.tests_done >= l)
}

/// How many tests go into the next group on this session: as many as fit
/// in what is left of the error budget (each may cost `cost` refusals),
/// never more than the learnt per-connection limit; one at a time without
/// PIPELINING (RFC 2920).
pub fn group_size(pipelining: bool, spent: Spent, budget: Budget, cost: u32) -> usize {
    if !pipelining {
        return 1;
    }
    let room = (budget.errors.saturating_sub(spent.errors) / cost.max(1)).max(1) as usize;
    match budget.per_connection {
        Some(limit) => room.min(limit.saturating_sub(spent.tests_done).max(1) as usize),
        None => room,
    }
}

/// Refusals one pipelined test may cost, learnt from the last test: two
/// while MAIL may be refused (a refused MAIL earns its RCPT a 503 too), one
/// once the server has shown it refuses at RCPT time.
pub fn cost_after(t: &TestFacts, cost: u32) -> u32 {
    match (&t.mail_reply, &t.rcpt_reply) {
        (Some(m), _) if !m.is_positive() => 2,
        (Some(_), Some(r)) if r.code != 503 => 1,
        _ => cost,
    }
}

/// Run a test again on a fresh connection: the server never answered it
/// (the connection ended, a 421, replies out of step), and it has not been
/// retried yet.
pub fn retry(t: &TestFacts, attempts: u8) -> bool {
    Outcome::unanswered(t) && attempts == 0
}

/// After a group: the per-connection limit learnt from a server that hung
/// up without a 421 (`answered` tests of this session were answered before).
pub fn learn_limit(group: &[TestFacts], tests_done: u32, known: Option<u32>) -> Option<u32> {
    let answered = group.iter().take_while(|f| !Outcome::unanswered(f)).count();
    if answered < group.len() && group.iter().any(Outcome::hung_up) && tests_done > 0 {
        Some(known.map_or(tests_done, |l| l.min(tests_done)))
    } else {
        known
    }
}

/// The tests of a group the server answered before it stopped answering.
pub fn answered(group: &[TestFacts]) -> u32 {
    group.iter().take_while(|f| !Outcome::unanswered(f)).count() as u32
}

/// Whether the address tricks run in parallel shares, each on a connection
/// of its own: only when the server pipelines, takes senders, the tricks
/// are still needed, and there are more than one session's budget of them.
pub fn tricks_in_parallel(
    pipelining: bool,
    decided: &[&TestFacts],
    all_tests: bool,
    tricks: usize,
    error_budget: u32,
) -> bool {
    let direct_accepted = decided
        .iter()
        .any(|t| t.kind == Kind::Direct && Outcome::of(t) == Outcome::Accepted);
    let mail_refused = decided
        .iter()
        .any(|t| t.mail_reply.as_ref().is_some_and(|m| !m.is_positive()));
    pipelining && !mail_refused && (all_tests || !direct_accepted) && tricks > error_budget as usize
}

/// How the address tricks are shared out when they run in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrickSplit {
    /// The first this many run on the open session.
    pub mine: usize,
    /// The rest go in shares of this many, each to a helper connection.
    pub per_share: usize,
    /// Connections each helper may open.
    pub connections_each: u32,
}

/// Share out `tricks` address tricks on as few connections as the error
/// budget allows: helpers take shares of one budget each (`per_share`), as
/// few helpers as the open session's room lets, and the open session keeps
/// only what those helpers cannot take. Each test may cost `cost` refusals
/// on the open session. Its room left over stays for the controls that
/// follow. Each helper may open an equal part of the connections left (at
/// least two).
pub fn split_tricks(
    tricks: usize,
    error_budget: u32,
    errors: u32,
    cost: u32,
    connections_left: u32,
) -> TrickSplit {
    let per_share = (error_budget as usize).max(1);
    let room = (error_budget.saturating_sub(errors) / cost.max(1)) as usize;
    let shares = tricks.saturating_sub(room).div_ceil(per_share);
    let mine = tricks.saturating_sub(shares * per_share);
    TrickSplit {
        mine,
        per_share,
        connections_each: (connections_left / (shares as u32 + 1)).max(2),
    }
}

/// A command of one test's exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Mail,
    Rcpt,
    Rset,
}

impl Verb {
    pub const EXCHANGE: [Verb; 3] = [Verb::Mail, Verb::Rcpt, Verb::Rset];
}

/// What a reply means for the exchange it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Go on with the test's next command (or the next test).
    Go,
    /// The test is over, the session goes on: in lock step a refused MAIL
    /// gets no RCPT.
    TestDone,
    /// 421: the server closes the session (RFC 5321 §3.8).
    Goodbye,
    /// RSET was refused, which RFC 5321 §4.1.1.5 does not allow. In a
    /// pipelined group it is the RCPT's reply read one step late: every
    /// pairing of the group is suspect (`out_of_step`). In lock step the
    /// session is not to be trusted with more tests.
    RsetRefused { out_of_step: bool },
}

/// The one rule for a reply in the MAIL/RCPT/RSET exchange, lock step and
/// pipelined alike.
pub fn after_reply(verb: Verb, reply: &Reply, pipelined: bool) -> Next {
    match verb {
        _ if reply.code == 421 && (verb != Verb::Rset || pipelined) => Next::Goodbye,
        Verb::Mail if !reply.is_positive() && !pipelined => Next::TestDone,
        Verb::Mail | Verb::Rcpt => Next::Go,
        Verb::Rset if reply.is_positive() => Next::Go,
        Verb::Rset => Next::RsetRefused {
            out_of_step: pipelined,
        },
    }
}

/// A refusal of MAIL or RCPT counts against the session's error budget.
pub fn counts_against_budget(verb: Verb, reply: &Reply) -> bool {
    verb != Verb::Rset && !reply.is_positive()
}

/// Pipeline a group (RFC 2920) when the server offers it: a lone test too,
/// whose MAIL, RCPT and RSET then cost one round trip, not three.
pub fn pipelines(pipelining: bool, tests: usize) -> bool {
    pipelining && tests > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::model::outcome::{Failure, NoReply};

    fn test(id: &str) -> TestFacts {
        let t = catalogue::find(id).unwrap();
        TestFacts {
            mail_from: Some("<>".into()),
            rcpt_to: Some("<relaytest@example.net>".into()),
            skipped: None,
            connection: 1,
            ..TestFacts::skipped(t.id, t.kind, "")
        }
    }

    fn replied(id: &str, mail: u16, rcpt: Option<u16>) -> TestFacts {
        let mut t = test(id);
        t.mail_reply = Some(Reply::new(mail, "mail"));
        t.rcpt_reply = rcpt.map(|c| Reply::new(c, "rcpt"));
        t
    }

    fn trick(id: &str, rcpt: &str, code: u16) -> TestFacts {
        let mut t = replied(id, 250, Some(code));
        t.rcpt_to = Some(rcpt.into());
        t
    }

    fn gone(id: &str) -> TestFacts {
        let mut t = test(id);
        t.error = Some(Failure::NoReply(NoReply::ConnectionGone(
            "connection-closed".into(),
        )));
        t
    }

    #[test]
    fn tricks_stop_when_every_sender_was_refused_or_a_direct_test_was_accepted() {
        let refused = [replied("S1", 554, None), replied("S2", 554, None)];
        assert_eq!(
            stop_before_trick(refused.iter(), false),
            Some(Stop::EveryMailRefused)
        );
        assert_eq!(
            stop_before_trick(refused.iter(), true),
            Some(Stop::EveryMailRefused)
        );
        let open = [replied("S1", 250, Some(554)), replied("S2", 250, Some(250))];
        assert_eq!(
            stop_before_trick(open.iter(), false),
            Some(Stop::DirectAccepted)
        );
        assert_eq!(stop_before_trick(open.iter(), true), None);
        let closed = [replied("S1", 250, Some(554))];
        assert_eq!(stop_before_trick(closed.iter(), false), None);
        // A 252 is no acceptance (the one Outcome rule).
        let cannot_verify = [replied("S1", 250, Some(252))];
        assert_eq!(stop_before_trick(cannot_verify.iter(), false), None);
        // Nothing ran yet: no rule applies.
        assert_eq!(stop_before_trick([gone("S1")].iter(), false), None);
        assert_eq!(stop_after(&open[1], false), Some(Stop::DirectAccepted));
        assert_eq!(stop_after(&open[1], true), None);
        assert_eq!(stop_after(&closed[0], false), None);
    }

    #[test]
    fn controls_follow_what_was_accepted() {
        let ip: IpAddr = "127.0.0.12".parse().unwrap();
        let names = SelfNames {
            ip,
            host: Some("mx.lab.test"),
            target_domain: Some("lab.test"),
        };
        assert!(controls(&[replied("S1", 250, Some(554))], names).is_empty());
        let tests = [
            replied("S1", 250, Some(554)),
            trick("R1", "<relaytest%example.net@[127.0.0.12]>", 250),
            trick("R2", "<relaytest%example.net@mx.lab.test>", 250),
            trick("R8", "<relaytest@example.net@mx.lab.test>", 250),
            trick("R4", "<\"relaytest@example.net\">", 250),
            trick("R3", "<relaytest%example.net@lab.test>", 554),
        ];
        let ids: Vec<&str> = controls(&tests, names).iter().map(|c| c.id).collect();
        assert_eq!(ids, ["C1", "C3-ip", "C3-host", "C3-local"]);
        let mut ranked = ["C3-local", "C2", "C3-ip", "C1", "C3-domain", "C3-host"];
        ranked.sort_by_key(|id| catalogue::control_rank(id));
        assert_eq!(
            ranked,
            ["C1", "C2", "C3-ip", "C3-host", "C3-domain", "C3-local"]
        );
    }

    #[test]
    fn budgets_and_group_sizes() {
        let budget = Budget {
            errors: 9,
            syntax_errors: 2,
            per_connection: None,
        };
        let fresh = Spent::default();
        assert_eq!(group_size(false, fresh, budget, 2), 1);
        assert_eq!(group_size(true, fresh, budget, 2), 4);
        assert_eq!(group_size(true, fresh, budget, 1), 9);
        let tired = Spent { errors: 8, ..fresh };
        assert_eq!(group_size(true, tired, budget, 2), 1);
        let limited = Budget {
            per_connection: Some(3),
            ..budget
        };
        let two_done = Spent {
            tests_done: 2,
            ..fresh
        };
        assert_eq!(group_size(true, two_done, limited, 1), 1);
        assert!(!over_budget(two_done, limited));
        assert!(over_budget(
            Spent {
                tests_done: 3,
                ..fresh
            },
            limited
        ));
        assert!(over_budget(Spent { errors: 9, ..fresh }, budget));
        assert!(over_budget(
            Spent {
                syntax_errors: 2,
                ..fresh
            },
            budget
        ));
    }

    #[test]
    fn cost_is_learnt_from_where_the_server_refuses() {
        assert_eq!(cost_after(&replied("S1", 554, Some(503)), 1), 2);
        assert_eq!(cost_after(&replied("S1", 250, Some(554)), 2), 1);
        assert_eq!(cost_after(&replied("S1", 250, Some(503)), 2), 2);
        assert_eq!(cost_after(&gone("S1"), 2), 2);
    }

    #[test]
    fn a_test_whose_connection_ended_is_retried_once() {
        assert!(retry(&gone("S1"), 0));
        assert!(!retry(&gone("S1"), 1));
        let mut goodbye = test("S1");
        goodbye.mail_reply = Some(Reply::new(421, "bye"));
        assert!(retry(&goodbye, 0));
        assert!(!retry(&replied("S1", 554, None), 0));
        let mut timed_out = test("S1");
        timed_out.error = Some(Failure::Session("io-timeout".into()));
        assert!(!retry(&timed_out, 0), "a timeout is an answer of sorts");
    }

    #[test]
    fn a_hang_up_without_421_sets_the_per_connection_limit() {
        let group = [
            replied("S1", 250, Some(554)),
            replied("S2", 250, Some(554)),
            gone("S3"),
            gone("S4"),
        ];
        assert_eq!(answered(&group), 2);
        assert_eq!(learn_limit(&group, 3, None), Some(3));
        assert_eq!(learn_limit(&group, 3, Some(2)), Some(2));
        let mut goodbye = test("S3");
        goodbye.mail_reply = Some(Reply::new(421, "bye"));
        let polite = [replied("S1", 250, Some(554)), goodbye];
        assert_eq!(learn_limit(&polite, 1, None), None);
        assert_eq!(learn_limit(&group[..2], 2, None), None);
    }

    #[test]
    fn the_exchange_rule() {
        let ok = Reply::new(250, "ok");
        let no = Reply::new(554, "5.7.1 Relay access denied");
        let bye = Reply::new(421, "bye");
        for pipelined in [false, true] {
            assert_eq!(after_reply(Verb::Mail, &ok, pipelined), Next::Go);
            assert_eq!(after_reply(Verb::Rcpt, &no, pipelined), Next::Go);
            assert_eq!(after_reply(Verb::Mail, &bye, pipelined), Next::Goodbye);
            assert_eq!(after_reply(Verb::Rcpt, &bye, pipelined), Next::Goodbye);
            assert_eq!(after_reply(Verb::Rset, &ok, pipelined), Next::Go);
            assert_eq!(
                after_reply(Verb::Rset, &no, pipelined),
                Next::RsetRefused {
                    out_of_step: pipelined
                }
            );
        }
        // In lock step a refused MAIL gets no RCPT; pipelined, its RCPT
        // and RSET were sent already and their replies must be read.
        assert_eq!(after_reply(Verb::Mail, &no, false), Next::TestDone);
        assert_eq!(after_reply(Verb::Mail, &no, true), Next::Go);
        assert_eq!(after_reply(Verb::Rset, &bye, true), Next::Goodbye);
        assert_eq!(
            after_reply(Verb::Rset, &bye, false),
            Next::RsetRefused { out_of_step: false }
        );
        assert!(counts_against_budget(Verb::Mail, &no));
        assert!(!counts_against_budget(Verb::Rset, &no));
        assert!(!counts_against_budget(Verb::Rcpt, &ok));
        assert!(pipelines(true, 1) && pipelines(true, 2) && !pipelines(false, 5));
        assert!(!pipelines(true, 0) && !pipelines(false, 1));
    }

    #[test]
    fn a_stop_says_why_a_test_was_not_run_in_fixed_text_where_it_can() {
        let stops = [
            Stop::Deadline,
            Stop::EveryMailRefused,
            Stop::DirectAccepted,
            Stop::ConnectionLimit(3),
            Stop::NoSession("connection refused".into()),
        ];
        for stop in &stops {
            assert_eq!(stop.not_run(), format!("not run: {stop}"));
            let fixed = matches!(stop.not_run(), Cow::Borrowed(_));
            let has_data = matches!(stop, Stop::ConnectionLimit(_) | Stop::NoSession(_));
            assert_eq!(fixed, !has_data, "{stop}");
        }
    }

    #[test]
    fn tricks_are_shared_out_by_error_budget() {
        // 12 tricks, 6 of a budget of 9 spent: one helper takes 9, the open
        // session the other 3 (two connections, not three).
        let s = split_tricks(12, 9, 6, 1, 6);
        assert_eq!((s.mine, s.per_share, s.connections_each), (3, 9, 3));
        // 18 tricks with room for 6: two helpers are needed either way, so
        // they take 9 each and the open session keeps its room.
        assert_eq!(split_tricks(18, 9, 3, 1, 6).mine, 0);
        // Room for 5 and 14 tricks: one helper and 5 here.
        assert_eq!(split_tricks(14, 9, 4, 1, 6).mine, 5);
        // Refusals that may cost two each halve the room: 3 tests, not 6.
        assert_eq!(split_tricks(15, 9, 3, 1, 6).mine, 6);
        assert_eq!(split_tricks(15, 9, 3, 2, 6).mine, 0);
        // No open session (errors = budget): everything goes to helpers.
        let none = split_tricks(18, 9, 9, 1, 8);
        assert_eq!((none.mine, none.connections_each), (0, 2));
        // A fresh session takes a whole budget; the rest is one share.
        let fresh = split_tricks(18, 9, 0, 1, 8);
        assert_eq!((fresh.mine, fresh.connections_each), (9, 4));
        // The open session never takes more than its room, and one helper
        // fewer could not take the rest.
        for tricks in 0..40 {
            for errors in 0..=9 {
                let s = split_tricks(tricks, 9, errors, 1, 8);
                let room = (9 - errors) as usize;
                assert!(s.mine <= room && s.mine <= tricks);
                let helpers = (tricks - s.mine).div_ceil(9);
                assert!(helpers == 0 || (helpers - 1) * 9 + room < tricks);
            }
        }
    }

    #[test]
    fn tricks_run_in_parallel_only_when_they_help() {
        let closed = replied("S1", 250, Some(554));
        let open = replied("S2", 250, Some(250));
        let refused = replied("S1", 554, None);
        assert!(tricks_in_parallel(true, &[&closed], false, 18, 9));
        assert!(!tricks_in_parallel(false, &[&closed], false, 18, 9));
        assert!(!tricks_in_parallel(true, &[&closed], false, 9, 9));
        assert!(!tricks_in_parallel(true, &[&open], false, 18, 9));
        assert!(tricks_in_parallel(true, &[&open], true, 18, 9));
        assert!(!tricks_in_parallel(true, &[&refused], true, 18, 9));
    }
}
