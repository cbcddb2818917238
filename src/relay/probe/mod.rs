//! The probe: one target, one careful SMTP session (or a few, to stay under
//! the server's error budget), every relay test of the plan. It records facts
//! and decides nothing; [`super::classify`] does.
//!
//! Politeness rules: EHLO with a real name, HELO on 5xx (RFC 5321 §4.1.1.1),
//! RSET between tests, reconnect before the server's error limit (Postfix
//! tarpits after 10 errors, Exim drops after 3 syntax errors), QUIT at the
//! end, no more than three connections to a host at once, and never DATA.
//!
//! This module does the I/O; every decision about what to do next is asked
//! of [`policy`]. TLS and AUTH live in the child modules: `secure` (STARTTLS
//! and implicit TLS, redone on every connection) and `authenticated` (the
//! `--auth` tests); `confirm` sends the one message `check --confirm` asks for.

mod authenticated;
mod confirm;
pub mod policy;
mod secure;

use crate::dns::MxHost;
use crate::relay::model::auth::PasswordRules;
use crate::relay::model::catalogue::{self, Kind, Placeholders, RelayTest, RenderedTest};
use crate::relay::model::facts::{Connect, Facts, Hello, Step, TestFacts};
use crate::relay::model::failure::SessionFailure;
use crate::relay::model::outcome::{Failure, NoReply, Outcome};
use crate::relay::model::reply_class::{classify_reply, ReplyClass};
use crate::smtp::dial::{self, DialError};
use crate::smtp::sasl::Credentials;
use crate::smtp::tls::StartTlsMode;
use crate::smtp::{
    hostname, Capabilities, Command, Connection, Limits, Reply, ReplyBudget, SessionError,
    TranscriptEntry,
};
use policy::{Budget, Next, Spent, Stop, Verb};
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// One thing to probe: an address, and the name it was found by (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub name: Option<String>,
    /// The MX record that led here: its domain is `{TD}` for this target.
    pub mx: Option<MxHost>,
    /// The address's PTR name: `{H}` when the greeting names no valid host.
    pub ptr: Option<String>,
    /// Time this host's probe spent waiting for our own resources (a file
    /// descriptor, its turn under `--rate`): not the host's, so its deadline
    /// moves by it, and so does the engine's hard stop, which reads it here.
    pub local_wait: LocalWait,
}

/// Shared between a probe and the engine's hard stop: milliseconds the
/// probe's deadline was moved by waits of our own.
#[derive(Debug, Clone, Default)]
pub struct LocalWait(std::sync::Arc<std::sync::atomic::AtomicU64>);

/// Bookkeeping, not part of what a target is: two targets that differ only
/// in it are the same target.
impl PartialEq for LocalWait {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LocalWait {}

impl LocalWait {
    pub fn add(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn total(&self) -> Duration {
        Duration::from_millis(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Target {
    /// An address known by no name (yet).
    pub fn new(addr: SocketAddr) -> Target {
        Target {
            addr,
            name: None,
            mx: None,
            ptr: None,
            local_wait: LocalWait::default(),
        }
    }
}

/// Settings for every probe of a scan.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Our EHLO name (`{T}`): a real FQDN.
    pub ehlo: String,
    /// `{s}`: sender local part.
    pub sender: String,
    /// `{u}`: recipient local part.
    pub recipient: String,
    /// `{D}`: the foreign domain a relay would forward to.
    pub foreign_domain: String,
    /// `{TD}` when the user knows it.
    pub target_domain: Option<String>,
    pub tests: Vec<&'static RelayTest>,
    /// Run every test even after a direct test was accepted.
    pub all_tests: bool,
    /// Run the C1/C2 controls.
    pub controls: bool,
    pub limits: Limits,
    pub connect_timeout: Duration,
    pub host_timeout: Duration,
    /// Refusals on one connection before we reconnect (Postfix's soft limit is 10).
    pub error_budget: u32,
    /// Syntax errors on one connection before we reconnect (Exim drops at 3).
    pub syntax_budget: u32,
    /// Connections to one host at most.
    pub max_connections: u32,
    /// Keep the whole dialogue in the facts.
    pub transcript: bool,
    /// Connect from this local address (`--source-ip`).
    pub source_ip: Option<std::net::IpAddr>,
    /// When to use STARTTLS.
    pub starttls: StartTlsMode,
    /// Implicit TLS on every port (it is automatic on 465).
    pub implicit_tls: bool,
    /// Run the authenticated relay tests with these credentials.
    pub auth: Option<Credentials>,
    /// Where the password may go.
    pub auth_rules: PasswordRules,
    /// `check --confirm`: send one message through the first accepted relay
    /// test to this address (the user's own).
    pub confirm: Option<String>,
    /// `--catch`, `--catch-maildir`: told each confirmation token before DATA.
    pub canaries: Option<std::sync::Arc<dyn crate::relay::model::facts::Canaries>>,
    /// `--rate`: every connection waits its turn before it is dialled.
    pub pace: Option<crate::smtp::pacer::Pace>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            ehlo: "relayscan.invalid".into(),
            sender: "relayscan".into(),
            recipient: "relaytest".into(),
            foreign_domain: "example.net".into(),
            target_domain: None,
            tests: catalogue::CATALOGUE.iter().collect(),
            all_tests: false,
            controls: true,
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(5),
            host_timeout: Duration::from_secs(60),
            error_budget: 9,
            syntax_budget: 2,
            max_connections: 8,
            transcript: false,
            source_ip: None,
            starttls: StartTlsMode::Auto,
            implicit_tls: false,
            auth: None,
            auth_rules: PasswordRules::default(),
            confirm: None,
            canaries: None,
            pace: None,
        }
    }
}

/// One open SMTP session and the errors it has collected.
struct Session {
    conn: Connection,
    /// Its place among the host's connections (see [`policy::CONNECTIONS_AT_ONCE`]):
    /// held until the socket is closed, QUIT included.
    slot: OwnedSemaphorePermit,
    number: u32,
    errors: u32,
    syntax_errors: u32,
    /// The session runs over TLS.
    encrypted: bool,
    /// What its TLS handshake established (the certificate chain included).
    peer: Option<crate::smtp::tls::TlsInfo>,
    /// What this session's last EHLO advertised (after TLS, the TLS one).
    capabilities: Capabilities,
    /// Tests answered on this session (MAIL refused, or MAIL and RCPT).
    tests_done: u32,
    /// Its replies came out of step with the commands (an extra reply, one
    /// left over after a group, an RSET answered with a refusal): none of
    /// the group's replies can be paired with its command.
    out_of_step: bool,
    /// Where its QUIT stands.
    quit: Quit,
}

/// Where a session's QUIT stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quit {
    /// Not said: closing the session says it.
    NotSaid,
    /// Sent at the end of a group, its `221` not read yet: closing the
    /// session leaves the wait to a task of its own (Exim answers QUIT only
    /// after 200 ms; the verdict does not wait for it).
    Said,
    /// Sent and answered: closing the session only closes the socket.
    Answered,
}

/// What becomes of the session after a run of tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionUse {
    /// The probe goes on with it.
    Again,
    /// It is closed right after: the run's last group ends with QUIT (RFC
    /// 2920 lets QUIT end a group) on a plaintext session, which saves a
    /// write and a round trip.
    Last,
}

/// Probe one target and return what happened.
pub async fn probe(target: &Target, cfg: &ProbeConfig) -> Facts {
    probe_until(target, cfg, std::future::pending::<()>())
        .await
        .0
}

/// Probe one target, but stop as soon as `stop` resolves (the user
/// interrupted; a hard deadline passed). The facts gathered until then are
/// kept — a relay already proven stays proven — and returned with what
/// `stop` gave. The connection open at that moment is dropped without QUIT.
pub async fn probe_until<T>(
    target: &Target,
    cfg: &ProbeConfig,
    stop: impl std::future::Future<Output = T>,
) -> (Facts, Option<T>) {
    let started = Instant::now();
    let mut run = Probe {
        cfg,
        target,
        started,
        deadline: started + cfg.host_timeout,
        facts: Facts::new(target.addr, target.name.clone()),
        transcript: Vec::new(),
        greeted: false,
        tls: secure::TlsState::new(cfg, target),
        number_base: 0,
        max_connections: cfg.max_connections,
        cost: 2,
        step: Step::Connect,
        lockstep: false,
        per_connection: None,
        slots: Arc::new(Semaphore::new(policy::CONNECTIONS_AT_ONCE)),
        budget: Arc::new(ReplyBudget::default()),
    };
    let cut = tokio::select! {
        biased;
        why = stop => Some(why),
        () = run.run() => None,
    };
    // The step stops moving once the deadline has passed (see `enter`): it
    // is the one the deadline cut. A cut during QUIT lost nothing.
    if Instant::now() >= run.deadline && run.step != Step::Quit {
        run.facts.deadline_cut = Some(run.step);
    }
    let mut facts = run.facts;
    facts.transcript = run.transcript;
    facts.replies_cut = run.budget.cut();
    facts.duration_ms = started.elapsed().as_millis() as u64;
    (facts, cut)
}

struct Probe<'a> {
    cfg: &'a ProbeConfig,
    target: &'a Target,
    started: Instant,
    deadline: Instant,
    facts: Facts,
    transcript: Vec<TranscriptEntry>,
    /// The greeting has been recorded (the first connection, or the first
    /// after implicit TLS was detected).
    greeted: bool,
    /// What this probe has learnt about TLS with the target.
    tls: secure::TlsState,
    /// Added to this probe's connection count to number its connections
    /// (a helper running a share of the tests in parallel counts on).
    number_base: u32,
    /// Connections this probe may open.
    max_connections: u32,
    /// Errors one pipelined test may cost: two until the server has shown
    /// that it refuses at RCPT time (a refused MAIL earns its RCPT a 503 too).
    cost: u32,
    /// Where the probe is; frozen once the host deadline has passed.
    step: Step,
    /// Set once a pipelined group came back out of step: later sessions
    /// run one command at a time, where every reply can be checked.
    lockstep: bool,
    /// The most tests this server answers on one connection, once it has
    /// hung up on us without a 421 (learnt, never guessed).
    per_connection: Option<u32>,
    /// The host's connection slots, shared with the helpers: a connection
    /// takes one before it dials and gives it back when its socket closes.
    slots: Arc<Semaphore>,
    /// What is kept of the host's replies, shared with the helpers.
    budget: Arc<ReplyBudget>,
}

impl Probe<'_> {
    /// Move on to `step`, unless the host deadline has already passed: then
    /// the step it cut stays recorded.
    fn enter(&mut self, step: Step) {
        if Instant::now() < self.deadline {
            self.step = step;
        }
    }

    async fn run(&mut self) {
        let mut current = self.open_session().await;
        if current.is_none() {
            return;
        }
        let placeholders = self.placeholders();
        let mut paths = catalogue::Paths::new(&placeholders);

        // Render every test first: one whose placeholder is unknown is skipped.
        let tests = self.cfg.tests.clone();
        let mut results: Vec<Option<TestFacts>> = Vec::with_capacity(tests.len());
        // C2 rides with the first group: it costs no round trip of its own.
        let mut first: Vec<(usize, RenderedTest)> = Vec::with_capacity(tests.len() + 1);
        if self.cfg.controls {
            if let Ok(c2) = catalogue::CONTROL_POSTMASTER.render_in(&mut paths) {
                first.push((usize::MAX, c2));
            }
        }
        let mut tricks: Vec<(usize, RenderedTest)> = Vec::with_capacity(tests.len());
        for test in &tests {
            match test.render_in(&mut paths) {
                Ok(r) => {
                    let into = if r.test.kind == Kind::Trick {
                        &mut tricks
                    } else {
                        &mut first
                    };
                    into.push((results.len(), r));
                    results.push(None);
                }
                Err(missing) => results.push(Some(TestFacts::skipped(
                    test.id,
                    test.kind,
                    catalogue::unknown_placeholder(missing),
                ))),
            }
        }
        let mut controls_done: Vec<TestFacts> = Vec::new();
        self.enter(Step::DirectTests);
        // The steps after the connection are boxed: a probe still dialling
        // (most of them, in unreachable space) holds only the dial's state,
        // not the largest state of every step after it.
        for (i, facts) in
            Box::pin(self.run_batches(&mut current, first, &mut results, true, SessionUse::Again))
                .await
        {
            match results.get_mut(i) {
                Some(slot) => *slot = Some(facts),
                None => controls_done.push(facts),
            }
        }
        self.enter(Step::Tricks);
        for (i, facts) in Box::pin(self.run_tricks(&mut current, tricks, &mut results)).await {
            results[i] = Some(facts);
        }
        self.facts.tests = results
            .into_iter()
            .zip(&tests)
            .map(|(r, t)| r.unwrap_or_else(|| TestFacts::skipped(t.id, t.kind, "not run")))
            .collect();

        self.facts.controls.append(&mut controls_done);
        self.enter(Step::Controls);
        if self.cfg.controls && Instant::now() < self.deadline {
            let controls = policy::controls(
                &self.facts.tests,
                policy::SelfNames {
                    ip: self.target.addr.ip(),
                    host: placeholders.host.as_deref(),
                    target_domain: placeholders.target_domain.as_deref(),
                },
            );
            let rendered: Vec<(usize, RenderedTest)> = controls
                .iter()
                .filter_map(|c| c.render_in(&mut paths).ok())
                .enumerate()
                .collect();
            let mut slots: Vec<Option<TestFacts>> = rendered.iter().map(|_| None).collect();
            // Only a message sent to confirm a relay uses the session after
            // the controls.
            let then = if self.cfg.confirm.is_none() {
                SessionUse::Last
            } else {
                SessionUse::Again
            };
            let mut done =
                Box::pin(self.run_batches(&mut current, rendered, &mut slots, false, then)).await;
            done.sort_by_key(|(i, _)| *i);
            self.facts.controls.extend(done.into_iter().map(|(_, f)| f));
        }
        self.facts
            .controls
            .sort_by_key(|c| catalogue::control_rank(c.id));
        self.enter(Step::Confirmation);
        Box::pin(self.run_confirmation(&mut current, &placeholders)).await;
        self.enter(Step::Auth);
        Box::pin(self.run_auth_tests(&mut current, &placeholders)).await;
        self.enter(Step::Quit);
        self.close(&mut current, true).await;
    }

    /// Open a session; when the first attempt showed that TLS must be done
    /// differently (implicit TLS detected, or STARTTLS failed and plaintext
    /// is worth a try), once more.
    async fn open_session(&mut self) -> Option<Session> {
        let session = self.open().await;
        if session.is_some() || !self.retry_with_new_tls() {
            return session;
        }
        self.open().await
    }

    /// Connect, read the greeting, say EHLO (or HELO). The first connection's
    /// greeting is recorded in the facts; later ones only need to succeed.
    async fn open(&mut self) -> Option<Session> {
        let first = !self.greeted;
        self.greeted = true;
        self.facts.connections += 1;
        let number = self.number_base + self.facts.connections;
        // The opening is noted in the connection's own transcript, so that
        // connections that overlap (a trick batch shared out) each read as
        // one block: connect, dialogue, close. Formatted only when kept.
        let connect_note = self
            .cfg
            .transcript
            .then(|| format!("connect {} (connection {number})", self.target.addr));
        // At most three connections to the host at once, counting the ones
        // still saying QUIT: wait for a slot, but not past the deadline.
        let slot = match tokio::time::timeout_at(self.deadline, self.slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(slot)) => slot,
            _ => {
                if let Some(note) = connect_note {
                    self.note(note);
                }
                return self.connect_failed(first, Connect::Timeout, "host deadline reached");
            }
        };
        if let Some(pace) = &self.cfg.pace {
            // `--rate` counts connection starts; the wait for our turn is
            // ours, not the host's, so it does not eat its deadline.
            let asked = Instant::now();
            pace.turn().await;
            self.deadline += asked.elapsed();
            self.target.local_wait.add(asked.elapsed());
        }
        let dialed = dial::dial(
            self.target.addr,
            self.cfg.source_ip,
            self.cfg.connect_timeout,
            self.deadline,
        )
        .await;
        if let (Err(_), Some(note)) = (&dialed, &connect_note) {
            self.note(note.clone());
        }
        let stream = match dialed {
            Err(DialError::Timeout) => {
                return self.connect_failed(first, Connect::Timeout, "connect timeout")
            }
            Err(DialError::Refused) => {
                return self.connect_failed(first, Connect::Refused, "connection refused")
            }
            Err(DialError::Other(message) | DialError::Local(message)) => {
                let connect = Connect::Error {
                    message: message.clone(),
                };
                return self.connect_failed(first, connect, &message);
            }
            Ok((stream, local_wait)) => {
                // Time spent waiting for our own resources is not the host's.
                self.deadline += local_wait;
                self.target.local_wait.add(local_wait);
                stream
            }
        };
        let _ = stream.set_nodelay(true);
        if first {
            self.facts.source = stream.local_addr().ok();
        }
        let mut limits = self.cfg.limits;
        if !self.cfg.transcript {
            limits.transcript_entries = 0;
        }
        let mut conn = Connection::new(Box::new(stream), limits, self.deadline);
        conn.set_epoch(self.started);
        conn.set_budget(self.budget.clone());
        if let Some(note) = &connect_note {
            conn.note(note);
        }
        if first {
            self.enter(Step::Greeting);
        }
        let mut encrypted = false;
        let mut peer = None;
        if self.tls.implicit.is_some() {
            let Some(info) = Box::pin(self.implicit_tls(&mut conn, first)).await else {
                self.keep_transcript(&mut conn);
                return None;
            };
            encrypted = true;
            peer = Some(info);
        }

        let banner = match conn.read_reply().await {
            Ok(reply) => reply,
            Err(e) => {
                if first {
                    Box::pin(self.no_greeting(&mut conn, e)).await;
                } else {
                    self.facts.error = Some(format!("greeting on connection {number}: {e}").into());
                }
                self.keep_transcript(&mut conn);
                return None;
            }
        };
        if first {
            self.facts.greeting.banner = Some(banner.clone());
        }
        if banner.code != 220 {
            if !first {
                self.facts.error =
                    Some(format!("greeting on connection {number}: {banner}").into());
            }
            let transcript = conn.quit().await;
            self.transcript.extend(transcript);
            return None;
        }

        if first {
            self.enter(Step::Hello);
        }
        let mut hello_command = Hello::Ehlo;
        let mut hello = conn.command(&Command::Ehlo(self.cfg.ehlo.clone())).await;
        if let Ok(reply) = &hello {
            if reply.is_permanent() {
                hello_command = Hello::Helo;
                hello = conn.command(&Command::Helo(self.cfg.ehlo.clone())).await;
            }
        }
        let reply = match hello {
            Ok(reply) => reply,
            Err(e) => {
                self.facts.error = Some(format!("{hello_command}: {e}").into());
                self.keep_transcript(&mut conn);
                return None;
            }
        };
        if first {
            self.facts.greeting.hello_command = Some(hello_command);
            if hello_command == Hello::Ehlo && reply.is_positive() {
                self.facts.greeting.capabilities = Capabilities::from_reply(&reply);
            }
            self.facts.greeting.hello = Some(reply.clone());
        }
        if !reply.is_positive() {
            self.facts.error = Some(format!("{hello_command} refused: {reply}").into());
            let transcript = conn.quit().await;
            self.transcript.extend(transcript);
            return None;
        }
        let mut capabilities = if hello_command == Hello::Ehlo {
            Capabilities::from_reply(&reply)
        } else {
            Capabilities::default()
        };
        if !encrypted && self.wants_starttls(&capabilities) {
            if first {
                self.enter(Step::StartTls);
            }
            match Box::pin(self.starttls(&mut conn)).await {
                secure::Upgrade::Done(caps, info) => {
                    encrypted = true;
                    capabilities = caps;
                    peer = Some(*info);
                }
                secure::Upgrade::Plaintext => {}
                secure::Upgrade::Failed => {
                    let transcript = conn.quit().await;
                    self.transcript.extend(transcript);
                    return None;
                }
            }
        }
        Some(Session {
            conn,
            slot,
            number,
            errors: 0,
            syntax_errors: 0,
            encrypted,
            peer,
            capabilities,
            tests_done: 0,
            out_of_step: false,
            quit: Quit::NotSaid,
        })
    }

    fn connect_failed(&mut self, first: bool, connect: Connect, message: &str) -> Option<Session> {
        self.note(format!("connect failed: {message}"));
        if first {
            self.facts.connect = connect;
        } else {
            self.facts.error = Some(format!("reconnect failed: {message}").into());
        }
        None
    }

    /// The first connection sent no SMTP greeting. Tell a silent service
    /// (an HTTP server waits for its client) from a slow SMTP server: say
    /// EHLO once and look at what comes back.
    async fn no_greeting(&mut self, conn: &mut Connection, error: SessionError) {
        match error {
            SessionError::Protocol(e) => {
                self.facts.greeting.not_smtp = Some(not_smtp_sample(e));
            }
            SessionError::Timeout if Instant::now() < self.deadline => {
                self.facts.error = Some(SessionFailure::NoGreeting(error));
                if conn
                    .send(&Command::Ehlo(self.cfg.ehlo.clone()))
                    .await
                    .is_ok()
                {
                    let answer = conn.read_reply().await;
                    if self.speaks_tls(conn) {
                        // A TLS-only service (SMTPS on another port) answers
                        // plaintext with a TLS alert: not "not SMTP" yet.
                    } else if let Err(SessionError::Protocol(e)) = answer {
                        self.facts.greeting.not_smtp = Some(not_smtp_sample(e));
                    }
                }
            }
            other => self.facts.error = Some(SessionFailure::NoGreeting(other)),
        }
    }

    /// Reuse the open session, or open a new one when the last was closed or
    /// has used up its error budget.
    async fn ensure_session<'s>(
        &mut self,
        current: &'s mut Option<Session>,
    ) -> Result<&'s mut Session, Stop> {
        let budget = self.budget();
        if current
            .as_ref()
            .is_some_and(|s| policy::over_budget(s.spent(), budget))
        {
            if let Some(session) = current.take() {
                let number = session.number;
                self.quit(session).await;
                self.note(format!("close connection {number} (error budget)"));
            }
        }
        if current.is_none() {
            if self.facts.connections >= self.max_connections {
                return Err(Stop::ConnectionLimit(self.max_connections));
            }
            if Instant::now() >= self.deadline {
                return Err(Stop::Deadline);
            }
            match self.open_session().await {
                Some(mut s) => {
                    if self.lockstep {
                        s.capabilities.pipelining = false;
                    }
                    *current = Some(s)
                }
                None => {
                    return Err(Stop::NoSession(
                        self.facts
                            .error
                            .as_ref()
                            .map_or_else(|| "reconnect failed".into(), ToString::to_string),
                    ))
                }
            }
        }
        current
            .as_mut()
            .ok_or_else(|| Stop::NoSession("no session".into()))
    }

    fn budget(&self) -> Budget {
        Budget {
            errors: self.cfg.error_budget,
            syntax_errors: self.cfg.syntax_budget,
            per_connection: self.per_connection,
        }
    }

    /// Run tests in as few round trips as the server allows: with
    /// PIPELINING (RFC 2920) a whole group of MAIL/RCPT/RSET goes out in one
    /// write, as many tests as fit in the connection's error budget; without
    /// it, one test at a time. `results` holds what is already decided (the
    /// stop rules read it); returns the facts of every test run or skipped
    /// here. With `stop_rules`, direct tests come first and decide whether
    /// the tricks run at all.
    async fn run_batches(
        &mut self,
        current: &mut Option<Session>,
        items: Vec<(usize, RenderedTest)>,
        results: &mut [Option<TestFacts>],
        stop_rules: bool,
        then: SessionUse,
    ) -> Vec<(usize, TestFacts)> {
        let mut done: Vec<(usize, TestFacts)> = Vec::with_capacity(items.len());
        let mut queue: VecDeque<(usize, RenderedTest, u8)> =
            items.into_iter().map(|(i, r)| (i, r, 0)).collect();
        let mut stop: Option<Stop> = None;
        while let Some((_, front, _)) = queue.front() {
            let kind = front.test.kind;
            if stop.is_none() && Instant::now() >= self.deadline {
                stop = Some(Stop::Deadline);
            }
            if stop.is_none() && stop_rules && kind == Kind::Trick {
                let decided = results.iter().flatten().chain(done.iter().map(|(_, f)| f));
                stop = policy::stop_before_trick(decided, self.cfg.all_tests);
            }
            if let Some(why) = &stop {
                for (i, r, _) in queue.drain(..) {
                    done.push((i, TestFacts::skipped(r.test.id, r.test.kind, why.not_run())));
                }
                break;
            }
            let budget = self.budget();
            let cost = self.cost;
            let session = match self.ensure_session(current).await {
                Ok(session) => session,
                Err(why) => {
                    stop = Some(why);
                    continue;
                }
            };
            let size = policy::group_size(
                session.capabilities.pipelining,
                session.spent(),
                budget,
                cost,
            );
            let mut batch = Vec::with_capacity(size.min(queue.len()));
            while batch.len() < size
                && queue
                    .front()
                    .is_some_and(|(_, r, _)| policy::same_group(r.test.kind, kind))
            {
                if let Some(item) = queue.pop_front() {
                    batch.push(item);
                }
            }
            let tests: Vec<&RenderedTest> = batch.iter().map(|(_, r, _)| r).collect();
            let quit = then == SessionUse::Last && queue.is_empty();
            let facts = exchange(session, &tests, quit).await;
            session.tests_done += policy::answered(&facts);
            let (number, tests_done, out_of_step) =
                (session.number, session.tests_done, session.out_of_step);
            if out_of_step && !self.lockstep {
                self.lockstep = true;
                self.note(format!(
                    "connection {number}: replies out of step; the group runs again, one command at a time",
                ));
            } else {
                let learnt = policy::learn_limit(&facts, tests_done, self.per_connection);
                if learnt != self.per_connection {
                    self.per_connection = learnt;
                    let limit = learnt.unwrap_or(tests_done);
                    self.note(format!(
                        "connection {number} ended without a 421 after {limit} test(s): at most {limit} per connection from now on",
                    ));
                }
            }
            // A server that demands STARTTLS without advertising it: switch
            // to TLS and run the group again there.
            if facts
                .iter()
                .any(|f| self.switch_to_tls(f, current.as_ref()))
            {
                self.close(current, true).await;
                for item in batch.into_iter().rev() {
                    queue.push_front(item);
                }
                continue;
            }
            let mut alive = true;
            let mut retry = Vec::new();
            for ((i, r, attempts), f) in batch.into_iter().zip(facts) {
                alive &= Outcome::session_alive(&f);
                self.cost = policy::cost_after(&f, self.cost);
                // No reply at all: the server dropped the connection earlier
                // in the group (Exim after three syntax errors), or its
                // replies came out of step. Once more, on a fresh connection.
                if policy::retry(&f, attempts) {
                    retry.push((i, r, attempts + 1));
                    continue;
                }
                if stop_rules {
                    stop = stop.or(policy::stop_after(&f, self.cfg.all_tests));
                }
                done.push((i, f));
            }
            for item in retry.into_iter().rev() {
                queue.push_front(item);
            }
            let said_quit = current.as_ref().is_some_and(|s| s.quit != Quit::NotSaid);
            if !alive {
                self.close(current, false).await;
            } else if said_quit {
                self.close(current, true).await;
            }
        }
        done
    }

    /// The address tricks, after the direct tests. They need a few
    /// connections (each gets at most an error budget of refusals), so the
    /// shares beyond the open session's run at the same time, each on a
    /// connection of its own: a closed server's whole suite then costs the
    /// round trips of two connections, not of four. Run in turn when the
    /// server does not pipeline, or refuses senders (then the stop rules
    /// skip them anyway).
    async fn run_tricks(
        &mut self,
        current: &mut Option<Session>,
        tricks: Vec<(usize, RenderedTest)>,
        results: &mut [Option<TestFacts>],
    ) -> Vec<(usize, TestFacts)> {
        let decided: Vec<&TestFacts> = results.iter().flatten().collect();
        let pipelining = current.as_ref().is_some_and(|s| s.capabilities.pipelining);
        if !policy::tricks_in_parallel(
            pipelining,
            &decided,
            self.cfg.all_tests,
            tricks.len(),
            self.cfg.error_budget,
        ) {
            return self
                .run_batches(current, tricks, results, true, SessionUse::Again)
                .await;
        }
        let errors = current.as_ref().map_or(self.cfg.error_budget, |s| s.errors);
        let split = policy::split_tricks(
            tricks.len(),
            self.cfg.error_budget,
            errors,
            self.cost,
            self.cfg
                .max_connections
                .saturating_sub(self.facts.connections),
        );
        let mut mine = tricks;
        let rest = mine.split_off(split.mine);
        let by_index: std::collections::HashMap<usize, RenderedTest> =
            rest.iter().cloned().collect();
        let shares: Vec<Vec<(usize, RenderedTest)>> =
            rest.chunks(split.per_share).map(<[_]>::to_vec).collect();
        let each = split.connections_each;
        let mut helpers: Vec<Probe<'_>> = (0..shares.len() as u32)
            .map(|k| Probe {
                cfg: self.cfg,
                target: self.target,
                started: self.started,
                deadline: self.deadline,
                facts: Facts::new(self.target.addr, self.target.name.clone()),
                transcript: Vec::new(),
                greeted: true,
                tls: self.tls.clone(),
                number_base: self.facts.connections + each * k,
                max_connections: each,
                cost: self.cost,
                step: Step::Tricks,
                lockstep: self.lockstep,
                per_connection: self.per_connection,
                slots: self.slots.clone(),
                budget: self.budget.clone(),
            })
            .collect();
        let base_used = self.facts.connections + each * shares.len() as u32;
        let mut none: Vec<Option<TestFacts>> = Vec::new();
        let own = async {
            if mine.is_empty() {
                Vec::new()
            } else {
                self.run_batches(current, mine, &mut none, false, SessionUse::Again)
                    .await
            }
        };
        let others = join_all(helpers.iter_mut().zip(shares).map(|(h, share)| async move {
            let mut slots: Vec<Option<TestFacts>> = Vec::new();
            let mut session = None;
            let done = h
                .run_batches(&mut session, share, &mut slots, false, SessionUse::Last)
                .await;
            h.close(&mut session, true).await;
            done
        }));
        let (mut done, others) = tokio::join!(own, others);
        let mut opened = 0;
        let mut again: Vec<(usize, RenderedTest)> = Vec::new();
        for (helper, theirs) in helpers.into_iter().zip(others) {
            // A share whose connection was turned away (a server that takes
            // one session per client at a time answers 421) runs afterwards,
            // in turn, on the main connection.
            for (i, f) in theirs {
                match by_index.get(&i) {
                    Some(r) if f.skipped.is_some() => again.push((i, r.clone())),
                    _ => done.push((i, f)),
                }
            }
            opened += helper.facts.connections;
            self.transcript.extend(helper.transcript);
        }
        self.facts.connections += opened;
        // Later connections are numbered after the helpers' ones.
        self.number_base = base_used.saturating_sub(self.facts.connections);
        if !again.is_empty() {
            again.sort_by_key(|(i, _)| *i);
            self.note(format!(
                "{} test(s) again, one connection at a time",
                again.len()
            ));
            let mut none: Vec<Option<TestFacts>> = Vec::new();
            done.extend(
                self.run_batches(current, again, &mut none, false, SessionUse::Again)
                    .await,
            );
        }
        done
    }
}

/// The one exchange routine: run a group of tests (MAIL FROM, RCPT TO,
/// RSET each) on one session, pipelined when the server offers PIPELINING
/// (RFC 2920), else one command at a time.
/// Both ways read every reply through the same rule
/// ([`policy::after_reply`]) and count refusals against the budget.
///
/// With `quit`, a pipelined group on a plaintext session ends with QUIT,
/// and our side closes for writing (a FIN): the session is over once its
/// replies are read. Not over TLS: its close is a `close_notify`, which a
/// server may take for the end of everything; there QUIT goes alone.
async fn exchange(session: &mut Session, tests: &[&RenderedTest], quit: bool) -> Vec<TestFacts> {
    let pipelined = policy::pipelines(session.capabilities.pipelining, tests.len());
    let quit = quit && pipelined && !session.encrypted;
    let mut out: Vec<TestFacts> = tests
        .iter()
        .map(|t| TestFacts::started(t, session.number))
        .collect();
    // Why the rest of the group gets no reply.
    let mut dead: Option<NoReply> = None;
    let ended = |why: String| {
        if pipelined {
            NoReply::EndedEarlierInGroup(why)
        } else {
            NoReply::SessionEnded
        }
    };
    if pipelined {
        let mut commands = Vec::with_capacity(tests.len() * 3 + 1);
        for t in tests {
            commands.extend(Verb::EXCHANGE.map(|verb| command(verb, t)));
        }
        if quit {
            commands.push(Command::Quit);
        }
        match session.conn.send_pipelined(&commands).await {
            Ok(None) if quit => {
                session.quit = Quit::Said;
                session.conn.close_sending().await;
            }
            Ok(None) => {}
            Ok(Some(goodbye)) => {
                dead = Some(ended(goodbye.one_line()));
                out[0].mail_reply = Some(goodbye);
            }
            Err(e) => {
                // Something the server sent before the group: a reply too
                // many from the last one.
                session.out_of_step |= matches!(e, SessionError::Unsolicited(_));
                dead = Some(ended(e.to_string()));
            }
        }
    }
    for (f, t) in out.iter_mut().zip(tests) {
        if let Some(why) = &dead {
            if f.mail_reply.is_none() {
                f.error = Some(Failure::NoReply(why.clone()));
            }
            continue;
        }
        for verb in Verb::EXCHANGE {
            let answer = if pipelined {
                session.conn.read_reply().await
            } else {
                session.conn.command(&command(verb, t)).await
            };
            let reply = match answer {
                Ok(reply) => reply,
                Err(e) => {
                    f.error = Some(if verb == Verb::Rset {
                        Failure::Rset(e.to_string())
                    } else {
                        read_failed(&e)
                    });
                    dead = Some(ended(e.to_string()));
                    break;
                }
            };
            if policy::counts_against_budget(verb, &reply) {
                session.count(&reply);
            }
            let next = policy::after_reply(verb, &reply, pipelined);
            if let Next::Goodbye = next {
                dead = Some(ended(reply.one_line()));
            }
            // The reply is kept once, where it belongs: no copy.
            let reply = match verb {
                Verb::Mail => {
                    f.mail_reply = Some(reply);
                    None
                }
                Verb::Rcpt => {
                    f.rcpt_reply = Some(reply);
                    None
                }
                Verb::Rset => Some(reply),
            };
            match next {
                Next::Go => {}
                Next::TestDone | Next::Goodbye => break,
                Next::RsetRefused { out_of_step } => {
                    session.out_of_step |= out_of_step;
                    if let Some(reply) = reply {
                        f.error = Some(Failure::RsetRefused(reply));
                    }
                    if !pipelined {
                        dead = Some(NoReply::SessionEnded);
                    }
                    break;
                }
            }
        }
    }
    // The reply to QUIT comes last, read if it is already here (the group's
    // replies mostly come in one write, the 221 with them). Anything but 221
    // (or a 421, closing anyway) in its place is a reply of the group read
    // one step late.
    if session.quit == Quit::Said && dead.is_none() && !session.out_of_step {
        let until = (Instant::now() + QUIT_WAIT).min(session.conn.deadline());
        if let Some(goodbye) = session.conn.goodbye_if_here(until).await {
            session.quit = Quit::Answered;
            session.out_of_step = !matches!(goodbye.code, 221 | 421);
        }
    }
    // Every reply of the group read: anything more the server already sent
    // is a reply too many (unless it is the 221 still to come).
    if pipelined && dead.is_none() && !session.out_of_step && session.quit != Quit::Said {
        session.out_of_step = session.conn.has_unread().await.unwrap_or(false);
    }
    if session.out_of_step {
        // No reply can be paired with its command: none counts, and the
        // group runs again (the probe switches to lock step).
        for f in out.iter_mut() {
            let read = [&f.mail_reply, &f.rcpt_reply]
                .iter()
                .filter_map(|r| r.as_ref().map(Reply::one_line))
                .collect::<Vec<_>>()
                .join(" / ");
            f.error = Some(Failure::NoReply(NoReply::OutOfStep { read }));
            f.mail_reply = None;
            f.rcpt_reply = None;
        }
    }
    out
}

/// The command of `verb` for test `t`.
fn command(verb: Verb, t: &RenderedTest) -> Command {
    match verb {
        Verb::Mail => Command::MailFrom(t.mail_from.clone()),
        Verb::Rcpt => Command::RcptTo(t.rcpt_to.clone()),
        Verb::Rset => Command::Rset,
    }
}

impl Probe<'_> {
    /// Close the session: QUIT when `polite` (the server is still talking to us).
    async fn close(&mut self, current: &mut Option<Session>, polite: bool) {
        if let Some(mut session) = current.take() {
            let number = session.number;
            match (polite, session.quit) {
                (true, Quit::NotSaid) => self.quit(session).await,
                (true, Quit::Said) => self.await_goodbye(session),
                _ => self.keep_transcript(&mut session.conn),
            }
            if self.cfg.transcript {
                self.note(format!("close connection {number}"));
            }
        }
    }

    /// QUIT goes out now; its 221 is awaited by a task of its own, so the
    /// verdict does not wait one more round trip for it. That task keeps
    /// the session's connection slot until the socket is closed: a host
    /// never has more than three connections open, however slow its QUIT.
    async fn quit(&mut self, mut session: Session) {
        if session.conn.send(&Command::Quit).await.is_ok() {
            self.await_goodbye(session);
        } else {
            self.keep_transcript(&mut session.conn);
        }
    }

    /// The `221` to a QUIT already sent is awaited by a task of its own,
    /// which holds the session's slot until the socket closes.
    fn await_goodbye(&mut self, session: Session) {
        let Session { mut conn, slot, .. } = session;
        self.transcript.extend(conn.take_transcript());
        tokio::spawn(async move {
            // RFC 5321 §4.5.3.2.8 (the 221 may take up to 5 minutes): we
            // wait 2 s at most, the server's answer changes nothing.
            conn.read_goodbye(Instant::now() + QUIT_WAIT).await;
            drop(conn);
            drop(slot);
        });
    }

    fn keep_transcript(&mut self, conn: &mut Connection) {
        self.transcript.extend(conn.take_transcript());
    }

    fn note(&mut self, line: String) {
        if self.cfg.transcript {
            self.transcript.push(TranscriptEntry {
                ms: self.started.elapsed().as_millis() as u64,
                dir: '*',
                line,
            });
        }
    }

    /// Fill the placeholders from what the greeting told us.
    fn placeholders(&mut self) -> Placeholders {
        let greeting = &self.facts.greeting;
        let host = greeting
            .banner
            .as_ref()
            .and_then(|b| b.lines.first())
            .and_then(|l| hostname::announced(l))
            .or_else(|| {
                greeting
                    .hello
                    .as_ref()
                    .and_then(|r| r.lines.first())
                    .and_then(|l| hostname::announced(l))
            })
            .or_else(|| self.target.ptr.as_deref().and_then(hostname::fqdn))
            .or_else(|| self.target.name.as_deref().and_then(hostname::fqdn));
        let target_domain = self
            .cfg
            .target_domain
            .clone()
            .or_else(|| self.target.mx.as_ref().map(|mx| mx.domain.clone()))
            .or_else(|| host.as_deref().map(hostname::mail_domain));
        self.facts.host = host.clone();
        self.facts.target_domain = target_domain.clone();
        Placeholders {
            sender: self.cfg.sender.clone(),
            recipient: self.cfg.recipient.clone(),
            foreign_domain: self.cfg.foreign_domain.clone(),
            ip: self.target.addr.ip(),
            host,
            target_domain,
            ehlo: self.cfg.ehlo.clone(),
            random: random_token(),
        }
    }
}

impl Session {
    fn spent(&self) -> Spent {
        Spent {
            errors: self.errors,
            syntax_errors: self.syntax_errors,
            tests_done: self.tests_done,
        }
    }

    fn count(&mut self, reply: &Reply) {
        self.errors += 1;
        if classify_reply(reply) == ReplyClass::Syntax {
            self.syntax_errors += 1;
        }
    }
}

/// What a non-SMTP service sent: its first line when we have it.
fn not_smtp_sample(e: crate::smtp::ReplyError) -> String {
    match e {
        crate::smtp::ReplyError::BadCode(line) => line,
        other => other.to_string(),
    }
}

/// Run futures at the same time (on this task) and collect their outputs in order.
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<(usize, std::pin::Pin<Box<F>>)> =
        futures.into_iter().map(Box::pin).enumerate().collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(out) => {
                outputs[*i] = Some(out);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// A read that failed because the connection is gone: the command got no
/// reply at all (not a refusal), so the test may run again elsewhere.
fn connection_gone(e: &SessionError) -> bool {
    matches!(e, SessionError::Closed | SessionError::Io(_))
}

/// The error of a test whose reply never came because of `e`.
fn read_failed(e: &SessionError) -> Failure {
    if connection_gone(e) {
        Failure::NoReply(NoReply::ConnectionGone(e.to_string()))
    } else {
        Failure::Session(e.to_string())
    }
}

/// How long a detached QUIT waits for the server's 221.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// A random token for the C1 control's local part: std's `RandomState` is
/// randomly keyed per process, which is all the randomness needed here.
fn random_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("rs{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    //! The exchange routine against recorded replies through an in-memory
    //! stream (`tokio::io::duplex`): no sockets. The server side answers
    //! like Postfix: a pipelined group in one write, once it has read it all.
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    const DENIED: &str = "554 5.7.1 <relaytest@example.net>: Relay access denied";

    /// A session over an in-memory stream whose other end answers each
    /// command line with `answer(line, n)` (n counts the lines); `None`
    /// hangs up. Returns the session and the commands the server saw.
    fn session(
        pipelining: bool,
        answer: impl Fn(&str, usize) -> Option<String> + Send + 'static,
    ) -> (Session, tokio::task::JoinHandle<Vec<String>>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let seen = tokio::spawn(async move {
            let mut server = BufReader::new(server);
            let mut seen = Vec::new();
            let mut pending = String::new();
            let mut line = String::new();
            loop {
                line.clear();
                if server.read_line(&mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                let command = line.trim_end().to_string();
                let reply = answer(&command, seen.len());
                seen.push(command);
                let Some(reply) = reply else { break };
                pending.push_str(&reply);
                if server.buffer().is_empty() {
                    let _ = server.get_mut().write_all(pending.as_bytes()).await;
                    pending.clear();
                }
            }
            let _ = server.get_mut().write_all(pending.as_bytes()).await;
            seen
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let conn = Connection::new(Box::new(client), Limits::default(), deadline);
        let slot = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a free slot");
        let capabilities = Capabilities {
            pipelining,
            ..Capabilities::default()
        };
        let session = Session {
            conn,
            slot,
            number: 1,
            errors: 0,
            syntax_errors: 0,
            encrypted: false,
            peer: None,
            capabilities,
            tests_done: 0,
            out_of_step: false,
            quit: Quit::NotSaid,
        };
        (session, seen)
    }

    /// A closed server: 250 to MAIL and RSET, a relay denial to RCPT.
    fn closed(line: &str) -> String {
        match &line[..4] {
            "RCPT" => format!("{DENIED}\r\n"),
            _ => "250 2.0.0 Ok\r\n".into(),
        }
    }

    fn tests(ids: &[&str]) -> Vec<RenderedTest> {
        let p = Placeholders {
            sender: "relayscan".into(),
            recipient: "relaytest".into(),
            foreign_domain: "example.net".into(),
            ip: "127.0.0.12".parse().unwrap(),
            host: Some("mx.lab.test".into()),
            target_domain: Some("lab.test".into()),
            ehlo: "scanner.test".into(),
            random: "rs0".into(),
        };
        ids.iter()
            .map(|id| catalogue::find(id).unwrap().render(&p).unwrap())
            .collect()
    }

    async fn run(
        pipelining: bool,
        ids: &[&str],
        answer: impl Fn(&str, usize) -> Option<String> + Send + 'static,
    ) -> (Vec<TestFacts>, Session, Vec<String>) {
        run_then(pipelining, ids, false, answer).await
    }

    /// [`run`], the group ending with QUIT when `quit`.
    async fn run_then(
        pipelining: bool,
        ids: &[&str],
        quit: bool,
        answer: impl Fn(&str, usize) -> Option<String> + Send + 'static,
    ) -> (Vec<TestFacts>, Session, Vec<String>) {
        let (mut s, seen) = session(pipelining, answer);
        let rendered = tests(ids);
        let refs: Vec<&RenderedTest> = rendered.iter().collect();
        let facts = exchange(&mut s, &refs, quit).await;
        // Close our end so that the server's loop ends.
        let _ = s.conn.send(&Command::Quit).await;
        drop(s.conn);
        let (client, _) = tokio::io::duplex(1);
        let s = Session {
            conn: Connection::new(Box::new(client), Limits::default(), Instant::now()),
            ..s
        };
        (facts, s, seen.await.unwrap())
    }

    #[tokio::test]
    async fn a_closed_server_pipelined_and_in_lock_step_reads_the_same() {
        for pipelining in [true, false] {
            let (facts, s, seen) = run(pipelining, &["S1", "S2"], |l, _| Some(closed(l))).await;
            assert_eq!(facts.len(), 2);
            for f in &facts {
                assert_eq!(
                    Outcome::of(f),
                    Outcome::RcptRefused(ReplyClass::RelayDenied),
                    "{f:?}"
                );
                assert!(f.error.is_none());
            }
            assert_eq!(s.errors, 2);
            assert!(!s.out_of_step);
            assert_eq!(seen.len(), 7, "MAIL, RCPT, RSET twice, QUIT: {seen:?}");
        }
    }

    /// A closed server that says goodbye to QUIT.
    fn closed_221(line: &str) -> String {
        if line == "QUIT" {
            "221 2.0.0 Bye\r\n".into()
        } else {
            closed(line)
        }
    }

    #[tokio::test]
    async fn a_last_group_ends_with_quit_and_reads_the_same() {
        let (facts, s, seen) =
            run_then(true, &["S1", "S2"], true, |l, _| Some(closed_221(l))).await;
        for f in &facts {
            assert_eq!(
                Outcome::of(f),
                Outcome::RcptRefused(ReplyClass::RelayDenied),
                "{f:?}"
            );
            assert!(f.error.is_none(), "{f:?}");
        }
        assert_eq!(s.errors, 2);
        assert_eq!(s.quit, Quit::Answered);
        assert!(!s.out_of_step);
        // QUIT ends the group; `run_then`'s own QUIT follows it.
        assert_eq!(seen[6], "QUIT", "{seen:?}");
        assert_eq!(seen[5], "RSET", "{seen:?}");
    }

    #[tokio::test]
    async fn a_goodbye_not_yet_here_is_left_to_the_closing() {
        // The server answers the group and hangs up without a 221: nothing
        // to read after the group, and nothing taken for a reply too many.
        let (facts, s, _) =
            run_then(true, &["S1"], true, |l, _| (l != "QUIT").then(|| closed(l))).await;
        assert_eq!(
            Outcome::of(&facts[0]),
            Outcome::RcptRefused(ReplyClass::RelayDenied)
        );
        assert_eq!(s.quit, Quit::Said);
        assert!(!s.out_of_step);
    }

    #[tokio::test]
    async fn over_tls_quit_does_not_join_the_group() {
        let (mut s, seen) = session(true, |l, _| Some(closed_221(l)));
        s.encrypted = true;
        let rendered = tests(&["S1"]);
        let refs: Vec<&RenderedTest> = rendered.iter().collect();
        let facts = exchange(&mut s, &refs, true).await;
        assert_eq!(
            Outcome::of(&facts[0]),
            Outcome::RcptRefused(ReplyClass::RelayDenied)
        );
        assert_eq!(s.quit, Quit::NotSaid);
        drop(s);
        let seen = seen.await.unwrap();
        assert_eq!(seen.len(), 3, "MAIL, RCPT, RSET and no QUIT: {seen:?}");
    }

    #[tokio::test]
    async fn in_lock_step_no_quit_joins_the_last_test() {
        let (facts, s, seen) = run_then(false, &["S1"], true, |l, _| Some(closed_221(l))).await;
        assert_eq!(
            Outcome::of(&facts[0]),
            Outcome::RcptRefused(ReplyClass::RelayDenied)
        );
        assert_eq!(
            s.quit,
            Quit::NotSaid,
            "QUIT is the caller's, after the test"
        );
        assert_eq!(
            seen[..3],
            ["MAIL FROM:<>", "RCPT TO:<relaytest@example.net>", "RSET"]
        );
    }

    #[tokio::test]
    async fn a_goodbye_other_than_221_puts_the_group_out_of_step() {
        // Every reply in place, but a 250 where the 221 belongs: the replies
        // cannot be trusted to pair with their commands.
        let (_, s, _) = run_then(true, &["S1"], true, |l, _| Some(closed(l))).await;
        assert!(s.out_of_step);
    }

    #[tokio::test]
    async fn in_lock_step_a_refused_mail_gets_no_rcpt() {
        let (facts, s, seen) = run(false, &["S1", "S2"], |l, _| {
            Some(if l.starts_with("MAIL") {
                "553 5.7.1 Sender refused\r\n".into()
            } else {
                closed(l)
            })
        })
        .await;
        assert!(facts
            .iter()
            .all(|f| matches!(Outcome::of(f), Outcome::MailRefused(_))));
        assert_eq!(s.errors, 2);
        assert!(seen.iter().all(|l| !l.starts_with("RCPT")), "{seen:?}");
    }

    #[tokio::test]
    async fn one_reply_too_many_puts_the_group_out_of_step() {
        // An extra 250 after the first MAIL reply: read naively, every
        // later reply pairs with the wrong command and S2 reads as accepted.
        // With QUIT at the end of the group, the last RSET's 250 then stands
        // where the 221 belongs: out of step too, not a goodbye.
        for quit in [false, true] {
            let (facts, s, _) = run_then(true, &["S1", "S2", "S3"], quit, |l, n| {
                Some(if n == 0 {
                    "250 2.1.0 Ok\r\n250 2.1.0 Ok\r\n".into()
                } else {
                    closed_221(l)
                })
            })
            .await;
            assert!(s.out_of_step, "quit: {quit}");
            for f in &facts {
                assert!(
                    matches!(f.error, Some(Failure::NoReply(NoReply::OutOfStep { .. }))),
                    "{f:?}"
                );
                assert_ne!(Outcome::of(f), Outcome::Accepted);
                assert!(policy::retry(f, 0), "runs again in lock step");
            }
        }
    }

    #[tokio::test]
    async fn an_rset_refused_in_a_group_is_out_of_step_in_lock_step_it_ends_the_session() {
        let rset_refused = |l: &str, _| {
            Some(if l == "RSET" {
                format!("{DENIED}\r\n")
            } else {
                closed(l)
            })
        };
        let (facts, s, _) = run(true, &["S1", "S2"], rset_refused).await;
        assert!(s.out_of_step);
        assert!(facts.iter().all(|f| f.mail_reply.is_none()));
        let (facts, s, _) = run(false, &["S1", "S2"], rset_refused).await;
        assert!(!s.out_of_step);
        assert!(matches!(facts[0].error, Some(Failure::RsetRefused(_))));
        assert_eq!(
            facts[1].error,
            Some(Failure::NoReply(NoReply::SessionEnded))
        );
        assert!(policy::retry(&facts[1], 0));
        assert!(!Outcome::session_alive(&facts[0]));
    }

    #[tokio::test]
    async fn a_hang_up_mid_group_leaves_the_rest_unanswered_not_refused() {
        // Answers one test (three lines), then hangs up without a 421.
        let (facts, _, _) = run(true, &["S1", "S2", "S3"], |l, n| (n < 3).then(|| closed(l))).await;
        assert_eq!(
            Outcome::of(&facts[0]),
            Outcome::RcptRefused(ReplyClass::RelayDenied)
        );
        for f in &facts[1..] {
            assert_eq!(Outcome::of(f), Outcome::Aborted, "{f:?}");
            assert!(Outcome::hung_up(f), "{f:?}");
            assert!(policy::retry(f, 0));
        }
        assert_eq!(policy::answered(&facts), 1);
        assert_eq!(policy::learn_limit(&facts, 1, None), Some(1));
    }

    #[tokio::test]
    async fn a_421_ends_the_group_and_is_no_refusal() {
        let (facts, _, _) = run(true, &["S1", "S2"], |l, _| {
            Some(if l.starts_with("RCPT") {
                "421 4.7.0 Try again later, closing connection\r\n".into()
            } else {
                closed(l)
            })
        })
        .await;
        assert_eq!(facts[0].rcpt_reply.as_ref().map(|r| r.code), Some(421));
        assert!(!Outcome::session_alive(&facts[0]));
        assert!(matches!(
            facts[1].error,
            Some(Failure::NoReply(NoReply::EndedEarlierInGroup(_)))
        ));
    }
}
