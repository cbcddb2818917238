//! The catcher (`--catch ADDR:PORT`, `--catch-maildir DIR`): relayscan as
//! the receiving end of its own canaries. A message sent through a server
//! with `--confirm` carries a token; when the server really relays it, the
//! message arrives here, and the arrival (time, peer, `Received:` hops) is
//! recorded as a fact, a [`Delivery`]. The judge decides what it means.
//!
//! It keeps a message only if it carries one of this run's tokens (the probe
//! names each one before it sends DATA, [`Canaries::expect`]); anything else
//! is refused after the final dot and dropped. Every input is hostile until
//! proven otherwise: line, message, connection and time limits in
//! `server.rs`, sanitised hops in `received.rs`.

mod maildir;
pub mod received;
mod server;

use crate::relay::model::facts::{Canaries, Delivery, DeliveryStatus};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// Tokens watched at once at most: beyond, a canary is not watched for
/// (its host is recorded `not-delivered` with a note, never held).
const MAX_TOKENS: usize = 100_000;

/// A canary's arrival, as the catcher saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub at: SystemTime,
    pub instant: Instant,
    /// The SMTP client that handed it over; none for a Maildir file.
    pub peer: Option<SocketAddr>,
    pub hops: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    since: Instant,
    arrival: Option<Arrival>,
}

/// The tokens of this run and what became of them, shared by the listener
/// (or the Maildir watcher) and the waiting hosts.
#[derive(Debug)]
struct Registry {
    tokens: Mutex<HashMap<String, Entry>>,
    arrived: Notify,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first of this run's tokens that `message` carries, if any, and
    /// record its arrival. A token that arrived before keeps its first
    /// arrival (a relay may deliver twice).
    fn deliver(&self, message: &[u8], peer: Option<SocketAddr>) -> bool {
        let candidates = tokens_in(message);
        if candidates.is_empty() {
            return false;
        }
        let mut map = self.lock();
        let Some(token) = candidates.iter().find(|t| map.contains_key(t.as_str())) else {
            return false;
        };
        let fresh = match map.get_mut(token.as_str()) {
            Some(entry) if entry.arrival.is_none() => {
                entry.arrival = Some(Arrival {
                    at: SystemTime::now(),
                    instant: Instant::now(),
                    peer,
                    hops: received::hops(message),
                });
                true
            }
            _ => false,
        };
        drop(map);
        if fresh {
            self.arrived.notify_waiters();
        }
        true
    }
}

/// The canary tokens in a message: `rs` and 16 hex digits (the probe's
/// `random_token`), at most 16 distinct ones.
fn tokens_in(message: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    let mut i = 0;
    while i + 18 <= message.len() && out.len() < 16 {
        let boundary = i == 0 || !message[i - 1].is_ascii_alphanumeric();
        if boundary
            && &message[i..i + 2] == b"rs"
            && message[i + 2..i + 18].iter().all(hex)
            && !message.get(i + 18).is_some_and(u8::is_ascii_alphanumeric)
        {
            let token = String::from_utf8_lossy(&message[i..i + 18]).into_owned();
            if !out.contains(&token) {
                out.push(token);
            }
            i += 18;
        } else {
            i += 1;
        }
    }
    out
}

/// A running catcher. Dropping it stops the listener or the watcher.
#[derive(Debug)]
pub struct Catcher {
    registry: Arc<Registry>,
    /// Where it listens (`--catch`), or the Maildir it watches.
    pub place: Place,
    shutdown: watch::Sender<bool>,
}

/// What the catcher watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Listen(SocketAddr),
    Maildir(PathBuf),
}

impl Catcher {
    fn new(place: Place) -> (Catcher, watch::Receiver<bool>) {
        let (shutdown, rx) = watch::channel(false);
        let registry = Arc::new(Registry {
            tokens: Mutex::new(HashMap::new()),
            arrived: Notify::new(),
        });
        (
            Catcher {
                registry,
                place,
                shutdown,
            },
            rx,
        )
    }

    /// Listen on `addr` as the mail server of `address`'s domain.
    pub async fn listen(addr: SocketAddr, address: &str) -> anyhow::Result<Catcher> {
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .ok_or_else(|| anyhow::anyhow!("{address:?} is not an address"))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("--catch {addr}: cannot listen: {e}"))?;
        let bound = listener.local_addr()?;
        let (catcher, rx) = Catcher::new(Place::Listen(bound));
        tokio::spawn(server::serve(
            listener,
            domain,
            catcher.registry.clone(),
            rx,
        ));
        Ok(catcher)
    }

    /// Watch `dir/new` and `dir/cur` for a file carrying a token.
    pub fn maildir(dir: PathBuf) -> anyhow::Result<Catcher> {
        for sub in ["new", "cur"] {
            let d = dir.join(sub);
            if !d.is_dir() {
                anyhow::bail!(
                    "--catch-maildir {}: {} is not a directory (a Maildir has new/ and cur/)",
                    dir.display(),
                    d.display()
                );
            }
        }
        let (catcher, rx) = Catcher::new(Place::Maildir(dir.clone()));
        tokio::spawn(maildir::watch(dir, catcher.registry.clone(), rx));
        Ok(catcher)
    }

    /// Wait up to `wait` for `token` (named before with [`Canaries::expect`])
    /// and forget it: what arrived, or that nothing did. `stop` ends the wait
    /// early (an interrupt).
    pub async fn wait(
        &self,
        token: &str,
        wait: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> Delivery {
        let started = Instant::now();
        let until = started + wait;
        tokio::pin!(stop);
        let outcome = loop {
            let notified = self.registry.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = self
                .registry
                .lock()
                .get(token)
                .map(|e| (e.since, e.arrival.clone()));
            match found {
                None => break None,
                Some((since, Some(a))) => break Some((since, a)),
                Some((_, None)) => {}
            }
            tokio::select! {
                biased;
                () = &mut stop => break None,
                () = tokio::time::sleep_until(until) => break None,
                () = &mut notified => {}
            }
        };
        self.registry.lock().remove(token);
        let waited_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Some((since, a)) => Delivery {
                status: DeliveryStatus::Delivered,
                at: Some(humantime::format_rfc3339_millis(a.at).to_string()),
                after_ms: Some(a.instant.saturating_duration_since(since).as_millis() as u64),
                peer: a.peer.map(|p| p.to_string()),
                hops: a.hops,
                waited_ms,
            },
            None => Delivery::not_delivered(waited_ms),
        }
    }

    /// Tokens being watched now.
    pub fn watching(&self) -> usize {
        self.registry.lock().len()
    }
}

impl Canaries for Catcher {
    fn expect(&self, token: &str) {
        let mut map = self.registry.lock();
        if map.len() < MAX_TOKENS {
            map.entry(token.to_string()).or_insert(Entry {
                since: Instant::now(),
                arrival: None,
            });
        }
    }
}

impl Drop for Catcher {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tokens_on_word_boundaries_only() {
        let t = "rs0123456789abcdef";
        assert_eq!(tokens_in(format!("Subject: x {t}\r\n").as_bytes()), vec![t]);
        assert_eq!(
            tokens_in(format!("<{t}@relayscan.invalid>").as_bytes()),
            vec![t]
        );
        assert!(tokens_in(format!("x{t}").as_bytes()).is_empty());
        assert!(tokens_in(format!("{t}0").as_bytes()).is_empty());
        assert!(tokens_in(b"rs0123456789ABCDEF").is_empty());
        let many: String = (0..100).map(|i| format!("rs{i:016x} ")).collect();
        assert_eq!(tokens_in(many.as_bytes()).len(), 16);
    }

    #[tokio::test]
    async fn a_registered_token_is_delivered_once_and_then_forgotten() {
        let (c, _rx) = Catcher::new(Place::Maildir(PathBuf::new()));
        let t = "rs00000000000000aa";
        assert!(!c.registry.deliver(t.as_bytes(), None), "not registered");
        c.expect(t);
        assert!(c
            .registry
            .deliver(format!("Received: from a by b\r\n\r\n{t}").as_bytes(), None));
        let d = c
            .wait(t, Duration::from_secs(5), std::future::pending())
            .await;
        assert_eq!(d.status, DeliveryStatus::Delivered);
        assert_eq!(d.hops, vec!["from a by b"]);
        assert!(d.at.is_some() && d.after_ms.is_some());
        assert_eq!(c.watching(), 0);
        assert!(!c.registry.deliver(t.as_bytes(), None), "forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_its_limit_or_at_the_stop() {
        let (c, _rx) = Catcher::new(Place::Maildir(PathBuf::new()));
        c.expect("rs00000000000000bb");
        let d = c
            .wait(
                "rs00000000000000bb",
                Duration::from_secs(120),
                std::future::pending(),
            )
            .await;
        assert_eq!(d.status, DeliveryStatus::NotDelivered);
        assert_eq!(d.waited_ms, 120_000);
        c.expect("rs00000000000000cc");
        let d = c
            .wait("rs00000000000000cc", Duration::from_secs(120), async {})
            .await;
        assert_eq!(d.waited_ms, 0);
    }

    #[tokio::test]
    async fn an_arrival_wakes_the_waiter() {
        let (c, _rx) = Catcher::new(Place::Maildir(PathBuf::new()));
        let c = Arc::new(c);
        let t = "rs00000000000000dd";
        c.expect(t);
        let r = c.registry.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            r.deliver(t.as_bytes(), Some("127.0.0.1:9".parse().unwrap()));
        });
        let d = c
            .wait(t, Duration::from_secs(10), std::future::pending())
            .await;
        assert_eq!(d.status, DeliveryStatus::Delivered);
        assert_eq!(d.peer.as_deref(), Some("127.0.0.1:9"));
        assert!(d.waited_ms < 5000);
    }
}
