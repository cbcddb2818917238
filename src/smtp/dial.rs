//! Opening the TCP connection, and telling the target's failures (refused,
//! no answer) from our own (out of file descriptors, out of ephemeral ports).
//! Our own are retried: they must slow the scan down, never become a
//! verdict about somebody else's server.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};

/// How long local resource errors are retried before giving up.
const LOCAL_RETRY_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialError {
    /// RST: nothing listens there.
    Refused,
    /// No answer within the connect timeout.
    Timeout,
    /// Unreachable, or any other failure about the target's side.
    Other(String),
    /// Our own resources stayed exhausted for the whole retry limit.
    Local(String),
}

/// Errors that say something about this machine, not the target.
pub fn is_local(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL (no free ephemeral port).
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12 | 99))
}

async fn connect_once(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        if ip.is_ipv4() != addr.is_ipv4() {
            // The kernel's answer would be a bare EINVAL ("os error 22").
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "--source-ip {ip} is IPv{} but the target is IPv{}: connect from an address of its family",
                    if ip.is_ipv4() { 4 } else { 6 },
                    if addr.is_ipv4() { 4 } else { 6 }
                ),
            ));
        }
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

/// Connect to `addr` (from `source` when given) within `connect_timeout`
/// and before `deadline`. Returns the stream and the time spent waiting on
/// local resources, which the caller adds to the host's deadline.
pub async fn dial(
    addr: SocketAddr,
    source: Option<IpAddr>,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<(TcpStream, Duration), DialError> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(10);
    let mut local_wait = Duration::ZERO;
    loop {
        let until = (Instant::now() + connect_timeout).min(deadline + local_wait);
        match timeout_at(until, connect_once(addr, source)).await {
            Err(_) => return Err(DialError::Timeout),
            Ok(Ok(stream)) => return Ok((stream, local_wait)),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(DialError::Refused)
            }
            Ok(Err(e)) if is_local(&e) => {
                if started.elapsed() >= LOCAL_RETRY_LIMIT {
                    return Err(DialError::Local(format!("local resources exhausted: {e}")));
                }
                let t0 = Instant::now();
                tokio::time::sleep(backoff).await;
                local_wait += t0.elapsed();
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Ok(Err(e)) => return Err(DialError::Other(e.to_string())),
        }
    }
}

/// Check at start-up that `--source-ip` is an address of this machine.
pub fn check_source(ip: IpAddr) -> io::Result<()> {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_and_connected() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let far = Instant::now() + Duration::from_secs(5);
        assert!(dial(addr, None, Duration::from_secs(1), far).await.is_ok());
        assert!(dial(
            addr,
            Some("127.0.0.1".parse().unwrap()),
            Duration::from_secs(1),
            far
        )
        .await
        .is_ok());
        drop(listener);
        assert_eq!(
            dial(addr, None, Duration::from_secs(1), far)
                .await
                .unwrap_err(),
            DialError::Refused
        );
    }

    #[tokio::test]
    async fn a_source_of_the_other_family_is_named_not_einval() {
        let far = Instant::now() + Duration::from_secs(5);
        let err = dial(
            "[::1]:9".parse().unwrap(),
            Some("127.0.0.1".parse().unwrap()),
            Duration::from_secs(1),
            far,
        )
        .await
        .unwrap_err();
        let DialError::Other(text) = err else {
            panic!("{err:?}")
        };
        assert!(
            text.contains("--source-ip 127.0.0.1 is IPv4 but the target is IPv6"),
            "{text}"
        );
    }

    #[test]
    fn local_errors_are_ours() {
        assert!(is_local(&io::Error::from_raw_os_error(24)));
        assert!(!is_local(&io::Error::from_raw_os_error(111)));
        assert!(check_source("127.0.0.1".parse().unwrap()).is_ok());
        // A documentation address is no address of this machine (nothing is sent: bind only).
        assert!(check_source("192.0.2.1".parse().unwrap()).is_err());
    }
}
