//! TLS for the probe: implicit TLS on connect, STARTTLS after EHLO, redone on
//! every connection of a host (the error-budget reconnects too), and the
//! fallbacks that keep a broken TLS setup from hiding the relay verdict.
//!
//! - `--starttls auto`: STARTTLS when EHLO advertises it, or when a reply
//!   demands it (`530 5.7.0 Must issue a STARTTLS command first`) — then the
//!   test that was refused runs again over TLS, so a server that relays only
//!   after STARTTLS is an `open-relay`, not `tls-required`. A refused STARTTLS
//!   or a failed handshake is recorded and the probe goes on in plaintext.
//! - `--starttls always`: a server that refuses STARTTLS is not tested.
//! - `--starttls never`: plaintext only.
//! - Implicit TLS on port 465, with `--tls`, or when a silent service answers
//!   our EHLO with a TLS alert (SMTPS on another port).

use super::{Probe, ProbeConfig, Session, Target};
use crate::relay::model::facts::{TestFacts, TlsFacts, TlsMode, TlsReason};
use crate::relay::model::reply_class::{classify_reply, ReplyClass};
use crate::smtp::tls::{self, StartTlsMode};
use crate::smtp::{hostname, Capabilities, Command, Connection, Reply};

/// What the probe has learnt about TLS with one target.
#[derive(Debug, Default, Clone)]
pub(super) struct TlsState {
    /// Implicit TLS, and why (`port-465`, `option`, `detected`).
    pub implicit: Option<TlsReason>,
    /// A plaintext connection got a TLS alert back: retry with implicit TLS.
    detected: bool,
    /// STARTTLS was refused or its handshake failed: stay in plaintext.
    failed: bool,
    /// A failed handshake killed the connection: one more, in plaintext.
    retry_plaintext: bool,
    /// The reply that demanded STARTTLS, when one did.
    demanded_by: Option<Reply>,
}

impl TlsState {
    pub(super) fn new(cfg: &ProbeConfig, target: &Target) -> Self {
        let implicit = if cfg.implicit_tls {
            Some(TlsReason::Option)
        } else if target.addr.port() == 465 {
            Some(TlsReason::Port465)
        } else {
            None
        };
        TlsState {
            implicit,
            ..TlsState::default()
        }
    }
}

/// How a STARTTLS attempt ended.
pub(super) enum Upgrade {
    /// TLS is up and EHLO was said again: the capabilities over TLS, and
    /// what the handshake established.
    Done(Capabilities, Box<tls::TlsInfo>),
    /// Refused (`454`) in auto mode: the session goes on in plaintext.
    Plaintext,
    /// The connection cannot be used.
    Failed,
}

impl Probe<'_> {
    /// The name to send as SNI: the name the target was given by, if any.
    fn sni(&self) -> rustls_pki_types::ServerName<'static> {
        let name = self.target.name.as_deref().and_then(hostname::fqdn);
        tls::server_name(name.as_deref(), self.target.addr.ip())
    }

    /// The TLS facts to fill in, only on the first attempt at TLS.
    fn first_tls_facts(&mut self, mode: TlsMode, reason: TlsReason) -> bool {
        if self.facts.tls.is_some() {
            return false;
        }
        self.facts.tls = Some(TlsFacts {
            mode,
            reason,
            demanded_by: self.tls.demanded_by.clone(),
            ..TlsFacts::default()
        });
        true
    }

    fn tls_facts(&mut self, record: bool) -> Option<&mut TlsFacts> {
        if record {
            self.facts.tls.as_mut()
        } else {
            None
        }
    }

    /// Implicit TLS, right after connecting. `None` when the handshake failed.
    pub(super) async fn implicit_tls(
        &mut self,
        conn: &mut Connection,
        first: bool,
    ) -> Option<tls::TlsInfo> {
        let reason = self.tls.implicit.unwrap_or(TlsReason::Option);
        let record = first && self.first_tls_facts(TlsMode::Implicit, reason);
        match conn.start_tls(self.sni()).await {
            Ok((_, info)) => {
                if let Some(t) = self.tls_facts(record) {
                    t.session = Some(info.clone());
                }
                Some(info)
            }
            Err(e) => {
                let e = e.to_string();
                let e = if e.contains(tls::NOT_TLS) {
                    // RFC 8314 §3: implicit TLS starts with the handshake; a
                    // plaintext SMTP service answers it with its banner.
                    let port = self.target.addr.port();
                    let fix = if reason == TlsReason::Port465 {
                        "implicit TLS is automatic on port 465; this one speaks plaintext: try --starttls always or another port".to_string()
                    } else {
                        "drop --tls or use --starttls".to_string()
                    };
                    format!("{}: is port {port} plaintext? {fix}", tls::NOT_TLS)
                } else {
                    e
                };
                if let Some(t) = self.tls_facts(record) {
                    t.error = Some(e.clone());
                }
                self.facts.error = Some(format!("implicit TLS: {e}").into());
                None
            }
        }
    }

    /// Whether this connection should say STARTTLS.
    pub(super) fn wants_starttls(&self, caps: &Capabilities) -> bool {
        match self.cfg.starttls {
            StartTlsMode::Never => false,
            StartTlsMode::Always => true,
            StartTlsMode::Auto => {
                !self.tls.failed && (caps.starttls || self.tls.demanded_by.is_some())
            }
        }
    }

    /// STARTTLS, the handshake, and EHLO again (RFC 3207 §4.2: everything
    /// learnt before TLS is forgotten).
    pub(super) async fn starttls(&mut self, conn: &mut Connection) -> Upgrade {
        let reason = match self.cfg.starttls {
            StartTlsMode::Always => TlsReason::Requested,
            _ if self.tls.demanded_by.is_some() => TlsReason::Demanded,
            _ => TlsReason::Advertised,
        };
        let record = self.first_tls_facts(TlsMode::StartTls, reason);
        let always = self.cfg.starttls == StartTlsMode::Always;
        let reply = match conn.command(&Command::StartTls).await {
            Ok(reply) => reply,
            Err(e) => {
                self.facts.error = Some(format!("STARTTLS: {e}").into());
                return Upgrade::Failed;
            }
        };
        if let Some(t) = self.tls_facts(record) {
            t.starttls_reply = Some(reply.clone());
        }
        if reply.code != 220 {
            let why = format!("STARTTLS refused: {}", reply.one_line());
            if let Some(t) = self.tls_facts(record) {
                t.error = Some(why.clone());
            }
            self.tls.failed = true;
            if always {
                self.facts.error = Some(why.into());
                return Upgrade::Failed;
            }
            return Upgrade::Plaintext;
        }
        let peer = match conn.start_tls(self.sni()).await {
            Ok((discarded, info)) => {
                if let Some(t) = self.tls_facts(record) {
                    t.injected_bytes = discarded;
                    t.session = Some(info.clone());
                }
                info
            }
            Err(e) => {
                if let Some(t) = self.tls_facts(record) {
                    t.error = Some(e.to_string());
                }
                self.tls.failed = true;
                if always {
                    self.facts.error = Some(format!("STARTTLS: {e}").into());
                } else {
                    // Like an opportunistic MTA: try again in plaintext.
                    self.tls.retry_plaintext = true;
                }
                return Upgrade::Failed;
            }
        };
        match conn.command(&Command::Ehlo(self.cfg.ehlo.clone())).await {
            Ok(reply) if reply.is_positive() => {
                let caps = Capabilities::from_reply(&reply);
                if let Some(t) = self.tls_facts(record) {
                    t.hello = Some(reply);
                    t.capabilities = Some(caps.clone());
                }
                Upgrade::Done(caps, Box::new(peer))
            }
            Ok(reply) => {
                self.facts.error =
                    Some(format!("EHLO over TLS refused: {}", reply.one_line()).into());
                Upgrade::Failed
            }
            Err(e) => {
                self.facts.error = Some(format!("EHLO over TLS: {e}").into());
                Upgrade::Failed
            }
        }
    }

    /// The silent service answered our EHLO with what looks like TLS.
    pub(super) fn speaks_tls(&mut self, conn: &Connection) -> bool {
        if self.tls.implicit.is_none() && tls::looks_like_tls(conn.unread()) {
            self.tls.detected = true;
            return true;
        }
        false
    }

    /// After a failed connection: should the next one do TLS differently?
    /// Implicit TLS when a TLS-only service was detected (the greeting is
    /// then recorded again), plaintext after a failed STARTTLS handshake.
    pub(super) fn retry_with_new_tls(&mut self) -> bool {
        if self.tls.detected && self.tls.implicit.is_none() {
            self.tls.detected = false;
            self.tls.implicit = Some(TlsReason::Detected);
            self.greeted = false;
            self.facts.greeting = Default::default();
            self.facts.error = None;
            self.note("the service answered in TLS: reconnecting with implicit TLS".into());
            return true;
        }
        if std::mem::take(&mut self.tls.retry_plaintext) {
            self.note("STARTTLS failed: reconnecting in plaintext".into());
            return true;
        }
        false
    }

    /// A plaintext test was refused because the server wants STARTTLS: in
    /// auto mode, remember the demand so the next connection does STARTTLS.
    pub(super) fn switch_to_tls(&mut self, test: &TestFacts, session: Option<&Session>) -> bool {
        if self.cfg.starttls != StartTlsMode::Auto
            || self.tls.failed
            || self.tls.demanded_by.is_some()
            || session.is_some_and(|s| s.encrypted)
        {
            return false;
        }
        let demand = test
            .mail_reply
            .iter()
            .chain(test.rcpt_reply.iter())
            .find(|r| !r.is_positive() && classify_reply(r) == ReplyClass::TlsRequired);
        match demand {
            Some(reply) => {
                self.tls.demanded_by = Some(reply.clone());
                true
            }
            None => false,
        }
    }
}
