//! The catcher's SMTP server (RFC 5321, server side): 220, EHLO/HELO, MAIL,
//! RCPT (only for the `--confirm` address's domain: 550 otherwise, so it is
//! no relay itself), DATA, RSET, NOOP, QUIT. Whoever connects may be
//! hostile, so everything has a limit: line length, message size, recipients,
//! errors, time per line and per session, sessions at once.

use super::Registry;
use crate::smtp::code;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::{timeout, timeout_at, Instant};

/// Longest command line (RFC 5321 §4.5.3.1.4: 512 octets with CRLF).
const MAX_COMMAND: usize = 512;
/// Longest text line (RFC 5321 §4.5.3.1.6: 1000 octets with CRLF).
const MAX_TEXT: usize = 1000;
/// The largest message kept: a canary is a few hundred bytes plus headers.
pub(super) const MAX_MESSAGE: usize = 64 * 1024;
/// Recipients per transaction (RFC 5321 §4.5.3.1.8 asks for 100 at least).
const MAX_RCPTS: u32 = 100;
/// Errors before the client is dropped (as Postfix's hard error limit).
const MAX_ERRORS: u32 = 10;
/// Waiting for one command line (RFC 5321 §4.5.3.2.7 allows 5 minutes; a
/// relay that means to deliver is quicker).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole DATA phase, and the whole session.
const DATA_TIMEOUT: Duration = Duration::from_secs(120);
const SESSION_TIMEOUT: Duration = Duration::from_secs(300);
/// Sessions served at once (each holds at most a line buffer and one
/// message of `MAX_MESSAGE`); one more is told 421, and a relay retries.
const MAX_SESSIONS: usize = 256;

pub(super) async fn serve(
    listener: TcpListener,
    domain: String,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
) {
    let sessions = Arc::new(Semaphore::new(MAX_SESSIONS));
    let domain: Arc<str> = domain.into();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => {
                let Ok((mut stream, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let Ok(permit) = sessions.clone().try_acquire_owned() else {
                    tokio::spawn(async move {
                        let busy = code::line(code::SERVICE_NOT_AVAILABLE, "4.3.2 Too many connections, try again later");
                        let _ = timeout(Duration::from_secs(5), stream.write_all(busy.as_bytes())).await;
                    });
                    continue;
                };
                let (registry, domain, mut stop) = (registry.clone(), domain.clone(), shutdown.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let _ = stream.set_nodelay(true);
                    tokio::select! {
                        _ = stop.changed() => {}
                        _ = timeout(SESSION_TIMEOUT, session(stream, Some(peer), &domain, &registry)) => {}
                    }
                });
            }
        }
    }
}

/// One line read under a length limit.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Text(Vec<u8>),
    /// Longer than the limit: read to its end and dropped.
    TooLong,
    Eof,
}

/// Read one line (up to LF; a trailing CR is dropped) keeping at most `max`
/// bytes: a line without end costs no memory beyond the reader's buffer.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let end = chunk.len() < done;
        if !too_long && line.len() + chunk.len() <= max {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        r.consume(done);
        if end {
            if too_long {
                return Ok(Line::TooLong);
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Line::Text(line));
        }
    }
}

/// One client.
pub(super) async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: Option<SocketAddr>,
    domain: &str,
    registry: &Registry,
) -> std::io::Result<()> {
    let mut io = BufReader::new(stream);
    let say = |c: u16, text: &str| code::line(c, text);
    io.get_mut()
        .write_all(
            say(
                code::SERVICE_READY,
                "relayscan-catcher ESMTP relayscan's catcher",
            )
            .as_bytes(),
        )
        .await?;
    let (mut helo, mut mail, mut rcpts, mut errors) = (false, false, 0u32, 0u32);
    loop {
        let line = match timeout(COMMAND_TIMEOUT, read_line(&mut io, MAX_COMMAND)).await {
            Err(_) => {
                let bye = say(code::SERVICE_NOT_AVAILABLE, "4.4.2 Timeout, closing");
                io.get_mut().write_all(bye.as_bytes()).await?;
                return Ok(());
            }
            Ok(line) => line?,
        };
        let line = match line {
            Line::Eof => return Ok(()),
            Line::TooLong => {
                errors += 1;
                say(code::SYNTAX_ERROR, "5.5.6 Line too long")
            }
            Line::Text(l) => {
                let l = String::from_utf8_lossy(&l).into_owned();
                let (verb, arg) = match l.split_once(' ') {
                    Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
                    None => (l.trim().to_ascii_uppercase(), String::new()),
                };
                let reply = match verb.as_str() {
                    "EHLO" => {
                        helo = true;
                        mail = false;
                        rcpts = 0;
                        "250-relayscan-catcher\r\n250-8BITMIME\r\n250-SIZE 65536\r\n250 ENHANCEDSTATUSCODES\r\n".to_string()
                    }
                    "HELO" => {
                        helo = true;
                        say(code::OK, "relayscan-catcher")
                    }
                    "MAIL" if !helo => say(code::BAD_SEQUENCE, "5.5.1 Send HELO/EHLO first"),
                    "MAIL" if mail => say(code::BAD_SEQUENCE, "5.5.1 Nested MAIL command"),
                    "MAIL" if !arg.to_ascii_uppercase().starts_with("FROM:") => say(
                        code::SYNTAX_ERROR_IN_PARAMETERS,
                        "5.5.4 Syntax: MAIL FROM:<address>",
                    ),
                    "MAIL" => {
                        mail = true;
                        say(code::OK, "2.1.0 Ok")
                    }
                    "RCPT" if !mail => say(code::BAD_SEQUENCE, "5.5.1 Need MAIL command"),
                    "RCPT" if rcpts >= MAX_RCPTS => {
                        say(code::INSUFFICIENT_STORAGE, "4.5.3 Too many recipients")
                    }
                    "RCPT" => match rcpt_domain(&arg) {
                        Some(d) if d.eq_ignore_ascii_case(domain) => {
                            rcpts += 1;
                            say(code::OK, "2.1.5 Ok")
                        }
                        Some(_) => say(
                            code::MAILBOX_UNAVAILABLE,
                            "5.7.1 Relay access denied: this catcher takes mail for one domain",
                        ),
                        None => say(
                            code::SYNTAX_ERROR_IN_PARAMETERS,
                            "5.1.3 Bad recipient address syntax",
                        ),
                    },
                    "DATA" if rcpts == 0 => say(code::BAD_SEQUENCE, "5.5.1 Need RCPT command"),
                    "DATA" => {
                        io.get_mut()
                            .write_all(
                                say(code::START_MAIL_INPUT, "End data with <CR><LF>.<CR><LF>")
                                    .as_bytes(),
                            )
                            .await?;
                        let reply = data(&mut io, peer, registry).await?;
                        mail = false;
                        rcpts = 0;
                        match reply {
                            Some(r) => r,
                            None => return Ok(()),
                        }
                    }
                    "RSET" => {
                        mail = false;
                        rcpts = 0;
                        say(code::OK, "2.0.0 Ok")
                    }
                    "NOOP" => say(code::OK, "2.0.0 Ok"),
                    "QUIT" => {
                        io.get_mut()
                            .write_all(say(code::SERVICE_CLOSING, "2.0.0 Bye").as_bytes())
                            .await?;
                        return Ok(());
                    }
                    _ => say(
                        code::COMMAND_NOT_IMPLEMENTED,
                        "5.5.2 Command not recognized",
                    ),
                };
                if reply.starts_with('5') || reply.starts_with('4') {
                    errors += 1;
                }
                reply
            }
        };
        io.get_mut().write_all(line.as_bytes()).await?;
        if errors >= MAX_ERRORS {
            let bye = say(
                code::SERVICE_NOT_AVAILABLE,
                "4.7.0 Too many errors, closing",
            );
            io.get_mut().write_all(bye.as_bytes()).await?;
            return Ok(());
        }
    }
}

/// The domain of `TO:<local@domain>` (parameters after the path ignored).
fn rcpt_domain(arg: &str) -> Option<String> {
    let rest = arg
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("TO:"))
        .map(|_| &arg[3..])?;
    let path = rest.trim_start().strip_prefix('<')?;
    let path = &path[..path.find('>')?];
    let (_, domain) = path.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_string())
}

/// Read the message up to the final dot (RFC 5321 §4.1.1.4, dot-unstuffing
/// per §4.5.2) and judge it: the reply after the dot, or `None` when the
/// client went away or ran out of time.
async fn data<R: AsyncBufRead + Unpin>(
    io: &mut R,
    peer: Option<SocketAddr>,
    registry: &Registry,
) -> std::io::Result<Option<String>> {
    let until = Instant::now() + DATA_TIMEOUT;
    let mut message: Vec<u8> = Vec::new();
    let mut oversized = false;
    loop {
        let line = match timeout_at(until, read_line(io, MAX_TEXT)).await {
            Err(_) => return Ok(None),
            Ok(line) => line?,
        };
        match line {
            Line::Eof => return Ok(None),
            Line::TooLong => oversized = true,
            Line::Text(l) if l == b"." => break,
            Line::Text(l) => {
                let l = l
                    .strip_prefix(b".")
                    .filter(|_| l.starts_with(b".."))
                    .unwrap_or(&l);
                if message.len() + l.len() + 2 > super::server::MAX_MESSAGE {
                    oversized = true;
                } else if !oversized {
                    message.extend_from_slice(l);
                    message.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    if oversized {
        return Ok(Some(code::line(
            code::EXCEEDED_STORAGE,
            "5.3.4 Message too big for the catcher: dropped",
        )));
    }
    Ok(Some(if registry.deliver(&message, peer) {
        code::line(code::OK, "2.0.0 Ok: caught")
    } else {
        code::line(
            code::TRANSACTION_FAILED,
            "5.7.1 No token of this run: dropped",
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Catcher, Place};
    use super::*;
    use crate::relay::model::facts::Canaries;
    use tokio::io::{duplex, AsyncReadExt};

    const TOKEN: &str = "rs0123456789abcdef";

    /// Play `input` to a session and return everything it answered.
    async fn talk(catcher: &Catcher, input: &[u8]) -> String {
        let (mut client, server) = duplex(1 << 20);
        let registry = catcher.registry.clone();
        let task = tokio::spawn(async move {
            let _ = session(
                server,
                Some("127.0.0.2:2525".parse().unwrap()),
                "example.net",
                &registry,
            )
            .await;
        });
        client.write_all(input).await.unwrap();
        client.shutdown().await.unwrap();
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        task.await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    fn catcher() -> Catcher {
        Catcher::new(Place::Maildir(Default::default())).0
    }

    fn message(to: &str, body: &str) -> String {
        format!(
            "EHLO relay.test\r\nMAIL FROM:<>\r\nRCPT TO:<{to}>\r\nDATA\r\n{body}\r\n.\r\nQUIT\r\n"
        )
    }

    #[tokio::test]
    async fn keeps_a_canary_and_refuses_the_rest() {
        let c = catcher();
        c.expect(TOKEN);
        let body = format!("Received: from x by relay.test\r\nSubject: {TOKEN}\r\n\r\n..dot\r\n");
        let out = talk(&c, message("me@example.net", &body).as_bytes()).await;
        assert!(out.contains("250 2.0.0 Ok: caught"), "{out}");
        let d = c
            .wait(TOKEN, Duration::from_secs(1), std::future::pending())
            .await;
        assert_eq!(d.hops, vec!["from x by relay.test"]);
        assert_eq!(d.peer.as_deref(), Some("127.0.0.2:2525"));

        // No token, or a token of no one: refused after the dot.
        let out = talk(&c, message("me@example.net", "hello").as_bytes()).await;
        assert!(out.contains("554 5.7.1 No token"), "{out}");
        let out = talk(
            &c,
            message("me@example.net", "rs00000000000000ff").as_bytes(),
        )
        .await;
        assert!(out.contains("554 5.7.1"), "{out}");
        // Another domain: refused at RCPT, so no DATA either.
        let out = talk(&c, message("me@example.org", TOKEN).as_bytes()).await;
        assert!(out.contains("550 5.7.1 Relay access denied"), "{out}");
        assert!(out.contains("503 5.5.1 Need RCPT"), "{out}");
    }

    #[tokio::test]
    async fn hostile_input_meets_limits() {
        let c = catcher();
        c.expect(TOKEN);
        // A huge line without CRLF, then binary junk: no panic, bounded.
        let mut junk = vec![b'A'; 3 << 20];
        junk.extend_from_slice(b"\r\n\x00\xff\xfe\r\n");
        let out = talk(&c, &junk).await;
        assert!(out.contains("500 5.5.6 Line too long"), "{out}");
        // Errors drop the client.
        let out = talk(&c, "BOGUS\r\n".repeat(50).as_bytes()).await;
        assert!(out.contains("421 4.7.0 Too many errors"), "{out}");
        assert_eq!(out.matches("502").count(), MAX_ERRORS as usize);
        // An oversized message is refused even with the token in it.
        let big = format!("Subject: {TOKEN}\r\n\r\n{}", "x\r\n".repeat(MAX_MESSAGE));
        let out = talk(&c, message("me@example.net", &big).as_bytes()).await;
        assert!(out.contains("552 5.3.4"), "{out}");
        // A header flood within the size cap: caught, hops capped.
        let flood = format!(
            "{}Subject: {TOKEN}\r\n\r\nbody",
            "Received: from a by b\r\n".repeat(2000)
        );
        let out = talk(&c, message("me@example.net", &flood).as_bytes()).await;
        assert!(out.contains("250 2.0.0 Ok: caught"), "{out}");
        let d = c
            .wait(TOKEN, Duration::from_secs(1), std::future::pending())
            .await;
        assert_eq!(d.hops.len(), super::super::received::MAX_HOPS);
    }

    #[tokio::test]
    async fn a_line_without_end_is_read_without_keeping_it() {
        let (mut client, server) = duplex(4096);
        let mut r = BufReader::new(server);
        let writer = tokio::spawn(async move {
            for _ in 0..1000 {
                client.write_all(&[b'x'; 1024]).await.unwrap();
            }
            client.write_all(b"\nok\r\n").await.unwrap();
        });
        assert_eq!(read_line(&mut r, 100).await.unwrap(), Line::TooLong);
        assert_eq!(
            read_line(&mut r, 100).await.unwrap(),
            Line::Text(b"ok".to_vec())
        );
        writer.await.unwrap();
        assert_eq!(read_line(&mut r, 100).await.unwrap(), Line::Eof);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slowloris_is_cut_by_the_command_timeout() {
        let c = catcher();
        let (mut client, server) = duplex(4096);
        let registry = c.registry.clone();
        let task =
            tokio::spawn(async move { session(server, None, "example.net", &registry).await });
        let mut greeting = [0u8; 64];
        let _ = client.read(&mut greeting).await.unwrap();
        for _ in 0..100 {
            if client.write_all(b"E").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut out = Vec::new();
        let _ = client.read_to_end(&mut out).await;
        assert!(String::from_utf8_lossy(&out).contains("421 4.4.2 Timeout"));
        assert!(task.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_flood_of_connections_is_served_or_turned_away() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let c = catcher();
        let (_tx, rx) = watch::channel(false);
        tokio::spawn(serve(
            listener,
            "example.net".into(),
            c.registry.clone(),
            rx,
        ));
        let mut held = Vec::new();
        let mut busy = 0;
        let tries = MAX_SESSIONS + 100;
        for _ in 0..tries {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 128];
            let n = s.read(&mut buf).await.unwrap();
            if buf[..n].starts_with(b"421") {
                busy += 1;
            }
            held.push(s);
        }
        // At most MAX_SESSIONS are served at once; the rest hear 421.
        assert_eq!(busy, tries - MAX_SESSIONS);
        drop(held);
        // Many short connections in a row: the server keeps going.
        for _ in 0..2000 {
            let s = tokio::net::TcpStream::connect(addr).await.unwrap();
            drop(s);
        }
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 128];
        let mut n = 0;
        for _ in 0..50 {
            n = s.read(&mut buf).await.unwrap();
            if buf[..n].starts_with(b"220") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            s = tokio::net::TcpStream::connect(addr).await.unwrap();
        }
        assert!(buf[..n].starts_with(b"220"));
    }
}
