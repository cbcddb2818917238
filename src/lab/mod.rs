//! The lab: simulated SMTP servers on loopback, one profile per address.
//! Used by `relayscan demo`, `relayscan lab`, the tests and the benchmarks.
//! It binds loopback addresses only, so nothing outside this machine can
//! reach it and nothing it does leaves the machine.

mod forward;
pub mod hostile;
mod line;
pub mod profile;
pub mod server;
pub mod tls;

pub use profile::{Profile, PROFILES};

use anyhow::{bail, Context};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The lab's one SASL account (PLAIN and LOGIN). It guards nothing: the lab
/// is simulated servers on loopback.
pub const LAB_USER: &str = "labuser";
/// The password of [`LAB_USER`].
pub const LAB_PASSWORD: &str = "labpass";

/// The first lab address: profiles take 127.0.0.11, .12, … in order.
pub const DEFAULT_BASE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// The lab's default port: high, so no root is needed.
pub const DEFAULT_PORT: u16 = 2525;

/// A running lab. Dropping it stops the servers.
pub struct Lab {
    pub servers: Vec<(SocketAddr, &'static Profile)>,
    shutdown: watch::Sender<bool>,
}

impl Lab {
    /// Bind every profile to consecutive loopback addresses from `base`, all on
    /// one port. Port 0 picks a free port (retrying when another process holds
    /// it on one of the addresses), so parallel tests never collide.
    pub async fn start(
        base: Ipv4Addr,
        port: u16,
        profiles: &[&'static Profile],
    ) -> anyhow::Result<Lab> {
        Self::start_as(base, port, profiles, tls::Identity::SelfSigned).await
    }

    /// Like [`Lab::start`], the servers presenting the certificate of `identity`.
    pub async fn start_as(
        base: Ipv4Addr,
        port: u16,
        profiles: &[&'static Profile],
        identity: tls::Identity,
    ) -> anyhow::Result<Lab> {
        Self::start_forwarding(base, port, profiles, identity, None).await
    }

    /// Like [`Lab::start_as`], the relaying servers handing what they accept
    /// for foreign domains on to `forward` over SMTP, each the way its real
    /// counterpart would (`open-relay`, `percent-hack`, `source-route` and
    /// `backup-mx` forward; the `accept-all` sink and `catch-all-closed`
    /// keep it). `forward` must be a loopback address.
    pub async fn start_forwarding(
        base: Ipv4Addr,
        port: u16,
        profiles: &[&'static Profile],
        identity: tls::Identity,
        forward: Option<SocketAddr>,
    ) -> anyhow::Result<Lab> {
        if let Some(f) = forward.filter(|f| !f.ip().is_loopback()) {
            bail!("the lab forwards to loopback only, not {f}");
        }
        if !base.is_loopback() {
            bail!("the lab binds loopback addresses only, not {base}");
        }
        let last = u32::from(base).saturating_add(profiles.len().saturating_sub(1) as u32);
        if !Ipv4Addr::from(last).is_loopback() {
            bail!(
                "{} profiles do not fit in 127.0.0.0/8 from {base}",
                profiles.len()
            );
        }
        let attempts = if port == 0 { 20 } else { 1 };
        let mut last_error = None;
        for _ in 0..attempts {
            match Self::bind_all(base, port, profiles).await {
                Ok(listeners) => return Ok(Self::spawn(listeners, identity, forward)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("could not bind the lab")))
    }

    /// Start with every profile.
    pub async fn start_all(base: Ipv4Addr, port: u16) -> anyhow::Result<Lab> {
        let all: Vec<&'static Profile> = PROFILES.iter().collect();
        Self::start(base, port, &all).await
    }

    async fn bind_all(
        base: Ipv4Addr,
        port: u16,
        profiles: &[&'static Profile],
    ) -> anyhow::Result<Vec<(TcpListener, &'static Profile)>> {
        let mut listeners = Vec::with_capacity(profiles.len());
        let mut port = port;
        for (i, profile) in profiles.iter().enumerate() {
            let addr = server::addr_for(base, i, port);
            let listener = TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} for lab profile {}", profile.name)
            })?;
            if port == 0 {
                port = listener.local_addr()?.port();
            }
            listeners.push((listener, *profile));
        }
        Ok(listeners)
    }

    fn spawn(
        listeners: Vec<(TcpListener, &'static Profile)>,
        identity: tls::Identity,
        forward: Option<SocketAddr>,
    ) -> Lab {
        let (shutdown, rx) = watch::channel(false);
        let mut servers = Vec::new();
        for (listener, profile) in listeners {
            if let Ok(addr) = listener.local_addr() {
                servers.push((addr, profile));
            }
            tokio::spawn(server::serve(
                listener,
                profile,
                identity,
                forward,
                rx.clone(),
            ));
        }
        Lab { servers, shutdown }
    }

    /// The port every server listens on.
    pub fn port(&self) -> u16 {
        self.servers.first().map_or(0, |(a, _)| a.port())
    }

    /// The profile at an address.
    pub fn profile_at(&self, addr: SocketAddr) -> Option<&'static Profile> {
        self.servers
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, p)| *p)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// One listener on `0.0.0.0:port` that plays every loopback address, the
/// profile chosen per dialled address (benchmarks scan a whole /16 this
/// way). It refuses any connection not made to a loopback address.
pub struct WideLab {
    pub port: u16,
    shutdown: watch::Sender<bool>,
}

impl WideLab {
    pub async fn start<F>(
        port: u16,
        latency: std::time::Duration,
        pick: F,
    ) -> anyhow::Result<WideLab>
    where
        F: Fn(std::net::IpAddr) -> Option<&'static Profile> + Send + Sync + 'static,
    {
        Self::start_forwarding(port, latency, pick, None).await
    }

    /// Like [`WideLab::start`], the relaying profiles handing what they
    /// accept on to `forward` (see [`Lab::start_forwarding`]).
    pub async fn start_forwarding<F>(
        port: u16,
        latency: std::time::Duration,
        pick: F,
        forward: Option<SocketAddr>,
    ) -> anyhow::Result<WideLab>
    where
        F: Fn(std::net::IpAddr) -> Option<&'static Profile> + Send + Sync + 'static,
    {
        if let Some(f) = forward.filter(|f| !f.ip().is_loopback()) {
            bail!("the lab forwards to loopback only, not {f}");
        }
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
        let listener = socket.listen(4096)?;
        let port = listener.local_addr()?.port();
        let (shutdown, rx) = watch::channel(false);
        tokio::spawn(server::serve_with(
            listener,
            pick,
            latency,
            tls::Identity::SelfSigned,
            forward,
            rx,
        ));
        Ok(WideLab { port, shutdown })
    }
}

impl Drop for WideLab {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
