//! What the probe saw at one target: every command's reply, timings and
//! errors. No judgement here: the judge (`crate::relay::judge`) decides.

use super::catalogue::Kind;
use super::failure::Failure;
use crate::dns::{BlocklistCheck, MxHost};
use crate::smtp::tls::TlsInfo;
use crate::smtp::{Capabilities, Reply, TranscriptEntry};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// The steps of a probe, in order: where a host deadline can cut it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub enum Step {
    Connect,
    Greeting,
    Hello,
    StartTls,
    DirectTests,
    Tricks,
    Controls,
    Confirmation,
    Auth,
    Quit,
}

impl Step {
    /// For a reader: "the greeting", "the address tricks".
    pub fn describe(self) -> &'static str {
        match self {
            Step::Connect => "connecting",
            Step::Greeting => "waiting for the greeting",
            Step::Hello => "EHLO/HELO",
            Step::StartTls => "STARTTLS",
            Step::DirectTests => "the direct relay tests",
            Step::Tricks => "the address tricks",
            Step::Controls => "the control tests",
            Step::Confirmation => "the confirmation message",
            Step::Auth => "the authenticated tests",
            Step::Quit => "QUIT",
        }
    }
}

/// How the TCP connection attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Connect {
    Connected,
    /// RST: nothing listens there.
    Refused,
    /// No answer within the connect timeout.
    Timeout,
    /// Any other failure (unreachable, local error), with its text.
    Error {
        message: String,
    },
    /// The name did not resolve (`dns: NXDOMAIN for …`): nothing was dialled.
    Unresolved {
        message: String,
    },
    /// The address is outside `--scope` (`out-of-scope: …`): nothing was dialled.
    OutOfScope {
        message: String,
    },
    /// The address was excluded after resolution (`excluded: …`): nothing
    /// was dialled.
    Excluded {
        message: String,
    },
}

/// The greeting stage: banner, then EHLO (or HELO).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Greeting {
    pub banner: Option<Reply>,
    /// What came instead of a banner, when it was not SMTP (first bytes, decoded).
    pub not_smtp: Option<String>,
    /// `EHLO` or `HELO`: the command whose reply is in `hello`.
    pub hello_command: Option<Hello>,
    pub hello: Option<Reply>,
    pub capabilities: Capabilities,
}

/// The greeting command (RFC 5321 §4.1.1.1): EHLO, or HELO after EHLO
/// was refused. Written `EHLO` / `HELO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Hello {
    Ehlo,
    Helo,
}

impl Hello {
    pub fn as_str(self) -> &'static str {
        match self {
            Hello::Ehlo => "EHLO",
            Hello::Helo => "HELO",
        }
    }
}

impl fmt::Display for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How TLS was started: `starttls` (RFC 3207) or `implicit` (RFC 8314 §3,
/// TLS from the first byte).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    StartTls,
    Implicit,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::StartTls => "starttls",
            TlsMode::Implicit => "implicit",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why TLS was used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsReason {
    /// STARTTLS was in the EHLO reply.
    #[default]
    Advertised,
    /// A reply asked for STARTTLS (`530 5.7.0 Must issue a STARTTLS command first`).
    Demanded,
    /// `--starttls always`.
    Requested,
    /// Implicit TLS on port 465 (RFC 8314 §3.3).
    #[serde(rename = "port-465")]
    Port465,
    /// `--tls`.
    Option,
    /// The service answered a plaintext greeting in TLS.
    Detected,
}

impl TlsReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsReason::Advertised => "advertised",
            TlsReason::Demanded => "demanded",
            TlsReason::Requested => "requested",
            TlsReason::Port465 => "port-465",
            TlsReason::Option => "option",
            TlsReason::Detected => "detected",
        }
    }
}

impl fmt::Display for TlsReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How TLS went with the target: recorded on the first connection that
/// tried it (later connections only add an error if theirs failed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsFacts {
    pub mode: TlsMode,
    /// Why TLS was used.
    pub reason: TlsReason,
    /// The reply to STARTTLS.
    pub starttls_reply: Option<Reply>,
    /// The reply that demanded STARTTLS, when one did.
    pub demanded_by: Option<Reply>,
    /// Plaintext bytes the server sent after its `220` to STARTTLS and before
    /// the handshake: discarded, never read as replies (response injection).
    pub injected_bytes: usize,
    /// Version, cipher and certificate, when the handshake succeeded.
    pub session: Option<TlsInfo>,
    /// Why STARTTLS or the handshake failed.
    pub error: Option<String>,
    /// The EHLO reply over TLS.
    pub hello: Option<Reply>,
    /// The extensions advertised over TLS (AUTH mechanisms often change).
    pub capabilities: Option<Capabilities>,
}

/// One relay test (or control) as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestFacts {
    pub id: &'static str,
    pub kind: Kind,
    pub mail_from: Option<Arc<str>>,
    pub rcpt_to: Option<Arc<str>>,
    pub mail_reply: Option<Reply>,
    pub rcpt_reply: Option<Reply>,
    /// Why the test was not run (a missing placeholder, or the probe
    /// stopped): mostly one of a few fixed texts, not formatted per host.
    pub skipped: Option<Cow<'static, str>>,
    /// Why the test was cut short.
    pub error: Option<Failure>,
    /// Which connection of this host's session it ran on (1-based).
    pub connection: u32,
}

impl TestFacts {
    /// A test about to run on connection `connection`: its paths, no reply yet.
    pub fn started(t: &super::catalogue::RenderedTest, connection: u32) -> Self {
        TestFacts {
            mail_from: Some(t.mail_from.clone()),
            rcpt_to: Some(t.rcpt_to.clone()),
            skipped: None,
            connection,
            ..TestFacts::skipped(t.test.id, t.test.kind, "")
        }
    }

    pub fn skipped(id: &'static str, kind: Kind, why: impl Into<Cow<'static, str>>) -> Self {
        TestFacts {
            id,
            kind,
            mail_from: None,
            rcpt_to: None,
            mail_reply: None,
            rcpt_reply: None,
            skipped: Some(why.into()),
            error: None,
            connection: 0,
        }
    }
}

/// A message sent through an accepted relay test, on the user's request,
/// to an address the user controls: the strongest evidence short of seeing
/// it arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    /// The accepted test whose paths it re-ran.
    pub test: &'static str,
    pub mail_from: String,
    pub rcpt_to: String,
    /// In the subject, the `Message-ID` and an `X-Relayscan-Token` header:
    /// what to look for in the receiving mailbox.
    pub token: String,
    /// Replies to MAIL, RCPT, DATA and the final dot, as far as it got.
    pub replies: Vec<Reply>,
    /// The message was accepted after the final dot (250).
    pub accepted: bool,
    pub error: Option<String>,
    /// Whether the message reached the catcher (`--catch`, `--catch-maildir`):
    /// `None` when nothing watched for it.
    pub delivery: Option<Delivery>,
}

/// Whether a canary reached the catcher within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub enum DeliveryStatus {
    Delivered,
    NotDelivered,
}

/// What the catcher saw of one canary: the proof that a message crossed the
/// server, or that it did not arrive within the wait. Facts only: the judge
/// decides what they mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    pub status: DeliveryStatus,
    /// When it arrived (RFC 3339, UTC).
    pub at: Option<String>,
    /// Milliseconds from the message's DATA to its arrival.
    pub after_ms: Option<u64>,
    /// Who handed it to the catcher (`ip:port`); none for a Maildir file.
    pub peer: Option<String>,
    /// The path it travelled, from its `Received:` header fields (RFC 5321
    /// §4.4), oldest first: `from … by …`, sanitised and capped.
    pub hops: Vec<String>,
    /// How long the catcher waited for it, in milliseconds.
    pub waited_ms: u64,
}

impl Delivery {
    /// The canary did not arrive within `waited_ms`.
    pub fn not_delivered(waited_ms: u64) -> Delivery {
        Delivery {
            status: DeliveryStatus::NotDelivered,
            at: None,
            after_ms: None,
            peer: None,
            hops: Vec::new(),
            waited_ms,
        }
    }
}

/// Whoever watches for canaries (the catcher): the probe names each token
/// before it sends the message, so a fast relay cannot beat the watch.
pub trait Canaries: Send + Sync + fmt::Debug {
    /// A message carrying `token` is about to be sent.
    fn expect(&self, token: &str);
}

/// Everything recorded about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub addr: SocketAddr,
    /// The name the target was given by (host name target or MX), if any.
    pub name: Option<String>,
    /// Our side of the connection: the vantage point the verdict holds for.
    pub source: Option<SocketAddr>,
    pub connect: Connect,
    pub greeting: Greeting,
    /// `{H}` as used: the validated host name.
    pub host: Option<String>,
    /// `{TD}` as used.
    pub target_domain: Option<String>,
    pub tests: Vec<TestFacts>,
    pub controls: Vec<TestFacts>,
    /// TLS, when it was tried (None: never, e.g. not offered or `--starttls never`).
    pub tls: Option<TlsFacts>,
    /// The authenticated relay tests (`--auth`), when asked for.
    pub auth: Option<AuthFacts>,
    /// The confirmation test (`check --confirm`), when it ran.
    pub confirmation: Option<Confirmation>,
    /// Connections opened to this target (reconnects stay under the error budget).
    pub connections: u32,
    /// The session error that ended the probe early, if any.
    pub error: Option<super::failure::SessionFailure>,
    /// The host deadline (`--host-timeout`) ran out before the probe was
    /// done: the step it was in. What was learnt before is kept.
    pub deadline_cut: Option<Step>,
    pub duration_ms: u64,
    /// The MX record the target was found by.
    pub mx: Option<MxHost>,
    /// The address's PTR name, when looked up.
    pub ptr: Option<String>,
    /// The DNS blocklist check, when made: alongside the probe, never sent to the target.
    pub dnsbl: Option<BlocklistCheck>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<TranscriptEntry>,
    /// Reply text not kept: the host's budget for it was spent (see
    /// `smtp::budget`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies_cut: Option<crate::smtp::RepliesCut>,
}

impl Facts {
    pub fn new(addr: SocketAddr, name: Option<String>) -> Self {
        Facts {
            addr,
            name,
            source: None,
            connect: Connect::Connected,
            greeting: Greeting::default(),
            host: None,
            target_domain: None,
            tests: Vec::new(),
            controls: Vec::new(),
            tls: None,
            auth: None,
            confirmation: None,
            connections: 0,
            error: None,
            deadline_cut: None,
            duration_ms: 0,
            mx: None,
            ptr: None,
            dnsbl: None,
            transcript: Vec::new(),
            replies_cut: None,
        }
    }
}

/// One AUTH attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthAttempt {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: &'static str,
    /// Whose name was sent: `given` (the `--auth` user) or `random` (A2 on
    /// a host the password may not go to).
    pub user_name: &'static str,
    /// The connection was encrypted (STARTTLS or implicit TLS).
    pub encrypted: bool,
    /// The server's final reply (`235` success, `535` bad credentials).
    pub reply: Option<Reply>,
    /// The session error that cut the exchange short.
    pub error: Option<String>,
}

impl AuthAttempt {
    pub fn succeeded(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| r.code == 235)
    }
}

/// What the authenticated relay tests saw. The password is never here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuthFacts {
    /// The user name given with `--auth`.
    pub user: String,
    /// AUTH with a deliberately wrong password.
    pub wrong_password: Option<AuthAttempt>,
    /// A2: the relay attempt after it.
    pub after_failed_auth: Option<TestFacts>,
    /// AUTH with the right password.
    pub login: Option<AuthAttempt>,
    /// A1: the relay attempt after it.
    pub authenticated_relay: Option<TestFacts>,
    /// Where the real password went (or would have gone) and under which rule.
    pub password: Option<PasswordFacts>,
    /// Why a test did not run.
    pub skipped: Vec<String>,
}

/// Where the `--auth` password was sent, and why that was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PasswordFacts {
    /// It was sent (A1 ran its AUTH).
    pub sent: bool,
    /// The rule that allowed it ([`Rule::as_str`]), or `None` where it was not sent.
    pub rule: Option<&'static str>,
    /// The name or address the certificate was checked for.
    pub checked_for: String,
    /// What `--auth-insecure` waived, when it was needed.
    pub waived: Option<String>,
}
