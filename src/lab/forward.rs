//! Handing on what a relaying lab server accepted: like its real
//! counterpart, it delivers the message over SMTP to the next hop, the
//! lab's forward address (in tests and the demo, relayscan's own catcher),
//! after adding its `Received:` line (RFC 5321 §4.4). Loopback only.

use super::line::read_line;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The largest message a lab server keeps to forward.
pub(super) const MAX_MESSAGE: usize = 64 * 1024;
/// One delivery attempt, at most.
const ATTEMPT: Duration = Duration::from_secs(15);

/// One message to hand on.
#[derive(Debug, Clone)]
pub(super) struct Outgoing {
    pub(super) mail_from: String,
    /// The recipient as the next hop must see it (`user%foreign@here` is
    /// `user@foreign` by now).
    pub(super) rcpt_to: String,
    /// Header lines to prepend (the newest first), each without CRLF.
    pub(super) received: Vec<String>,
    /// The message as received, dot-unstuffed, lines ending in CRLF.
    pub(super) message: Vec<u8>,
}

/// A `Received:` line: `from <helo> ([ip]) by <host> … for <rcpt>; date`.
pub(super) fn received(helo: &str, peer: Option<SocketAddr>, by: &str, rcpt: &str) -> String {
    let ip = peer.map(|p| format!(" ([{}])", p.ip())).unwrap_or_default();
    format!(
        "Received: from {helo}{ip} by {by} (relayscan lab) with ESMTP for <{rcpt}>; {}",
        httpdate_now()
    )
}

/// The date in RFC 5322 §3.3 form is not needed by anyone reading the hops:
/// the lab writes RFC 3339, which a reader understands as well.
fn httpdate_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Deliver in the background, retrying a refusal or a failed connection
/// for a while as a relay's queue would; what still fails is dropped, as a
/// relay would bounce it to a sender that does not exist.
pub(super) fn spawn(to: SocketAddr, ehlo: String, out: Outgoing) {
    if !to.ip().is_loopback() {
        return;
    }
    tokio::spawn(async move {
        let _ = timeout(ATTEMPT, async {
            let mut pause = Duration::from_millis(50);
            while !matches!(deliver(to, &ehlo, &out).await, Ok(true)) {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        })
        .await;
    });
}

/// One attempt: `Ok(true)` once it is done with (delivered, or refused for
/// good with a 5xx), `Ok(false)` when it is worth another try (a 4xx).
async fn deliver(to: SocketAddr, ehlo: &str, out: &Outgoing) -> std::io::Result<bool> {
    let stream = TcpStream::connect(to).await?;
    let mut io = BufReader::new(stream);
    let step = |code: u8, want: u8| match code {
        c if c == want => None,
        b'5' => Some(true),
        _ => Some(false),
    };
    if let Some(done) = step(reply(&mut io).await?, b'2') {
        return Ok(done);
    }
    for (command, want) in [
        (format!("EHLO {ehlo}"), b'2'),
        (format!("MAIL FROM:{}", out.mail_from), b'2'),
        (format!("RCPT TO:<{}>", out.rcpt_to), b'2'),
        ("DATA".to_string(), b'3'),
    ] {
        io.get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await?;
        if let Some(done) = step(reply(&mut io).await?, want) {
            return Ok(done);
        }
    }
    let mut data = Vec::with_capacity(out.message.len() + 512);
    for line in &out.received {
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
    }
    for line in out.message.split_inclusive(|&b| b == b'\n') {
        // RFC 5321 §4.5.2: a line starting with a dot gets one more.
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    data.extend_from_slice(b".\r\n");
    io.get_mut().write_all(&data).await?;
    let done = step(reply(&mut io).await?, b'2').unwrap_or(true);
    let _ = io.get_mut().write_all(b"QUIT\r\n").await;
    Ok(done)
}

/// Read one reply (every line of a multi-line one): the first digit of its
/// code (`0` when the connection ended).
async fn reply(io: &mut BufReader<TcpStream>) -> std::io::Result<u8> {
    loop {
        let Some(line) = read_line(io).await? else {
            return Ok(b'0');
        };
        let b = line.as_bytes();
        if b.len() < 4 || b[3] != b'-' {
            return Ok(b.first().copied().unwrap_or(b'0'));
        }
    }
}
