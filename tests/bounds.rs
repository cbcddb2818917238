//! Memory and time bounds of one SMTP connection against hostile byte
//! streams, in process (no sockets): endless lines and replies, a server that
//! drips one byte a second, and replies sent before the command.
//!
//! The streams count the bytes the client pulls: a client that reads at most
//! N bytes cannot hold more than N, whatever the server sends.

use relayscan::smtp::{Command, Connection, Limits, ReplyError, SessionError};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

/// A server that never stops talking: `head` once, then `pattern` forever.
/// Whatever the client writes is swallowed.
struct Endless {
    head: &'static [u8],
    pattern: &'static [u8],
    served: Arc<AtomicUsize>,
}

impl AsyncRead for Endless {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let done = self.served.load(Ordering::SeqCst);
        let mut n = 0;
        while buf.remaining() > 0 {
            let i = done + n;
            let byte = if i < self.head.len() {
                self.head[i]
            } else {
                self.pattern[(i - self.head.len()) % self.pattern.len()]
            };
            buf.put_slice(&[byte]);
            n += 1;
        }
        self.served.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Endless {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn endless(head: &'static [u8], pattern: &'static [u8]) -> (Connection, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let stream = Endless {
        head,
        pattern,
        served: served.clone(),
    };
    let conn = Connection::new(
        Box::new(stream),
        Limits::default(),
        Instant::now() + Duration::from_secs(60),
    );
    (conn, served)
}

/// What the client may read beyond a cap: one read chunk.
const CHUNK: usize = 4096;

#[tokio::test]
async fn a_line_that_never_ends_is_cut_at_the_line_cap() {
    let (mut conn, served) = endless(b"220 ", b"A");
    let limits = Limits::default();
    assert_eq!(
        conn.read_reply().await,
        Err(SessionError::Protocol(ReplyError::LineTooLong(
            limits.max_line
        )))
    );
    let read = served.load(Ordering::SeqCst);
    assert!(
        read <= limits.max_line + 2 * CHUNK,
        "read {read} bytes of an endless line"
    );
}

#[tokio::test]
async fn a_multiline_reply_that_never_ends_is_cut_at_the_reply_caps() {
    let (mut conn, served) = endless(b"", b"250-ENDLESS-EXTENSION\r\n");
    let limits = Limits::default();
    let err = conn.read_reply().await.unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Protocol(ReplyError::TooManyLines(_) | ReplyError::ReplyTooLong(_))
        ),
        "{err:?}"
    );
    let read = served.load(Ordering::SeqCst);
    assert!(
        read <= limits.max_reply + 2 * CHUNK,
        "read {read} bytes of an endless reply"
    );

    // Long lines reach the byte cap before the line cap.
    let (mut conn, served) = endless(
        b"",
        b"250-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n",
    );
    assert_eq!(
        conn.read_reply().await,
        Err(SessionError::Protocol(ReplyError::ReplyTooLong(
            limits.max_reply
        )))
    );
    assert!(served.load(Ordering::SeqCst) <= limits.max_reply + 2 * CHUNK);
}

#[tokio::test]
async fn nul_bytes_and_invalid_utf8_are_kept_as_text_not_a_panic() {
    let (client, mut server) = duplex(4096);
    tokio::spawn(async move {
        server
            .write_all(b"220 mx.example.org \x00\xff\xfe\xc3\x28 junk\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let mut conn = Connection::new(
        Box::new(client),
        Limits::default(),
        Instant::now() + Duration::from_secs(60),
    );
    let banner = conn.read_reply().await.unwrap();
    assert_eq!(banner.code, 220);
    assert_eq!(banner.lines[..], ["mx.example.org \0\\xFF\\xFE\\xC3( junk"]);
}

/// One byte a second: every read succeeds well within the read timeout, so
/// only the host deadline stops it. Paused clock: exact, and instant.
#[tokio::test(start_paused = true)]
async fn slowloris_is_stopped_by_the_host_deadline_not_the_read_timeout() {
    let (client, mut server) = duplex(64);
    tokio::spawn(async move {
        for byte in b"220 slowloris.example.org ESMTP but very, very slowly\r\n"
            .iter()
            .cycle()
        {
            if server.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let limits = Limits {
        read_timeout: Duration::from_secs(10),
        ..Limits::default()
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let mut conn = Connection::new(Box::new(client), limits, deadline);
    assert_eq!(conn.read_reply().await, Err(SessionError::Deadline));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(31),
        "stopped after {took:?}"
    );
    // After the deadline, every step fails at once.
    let before = Instant::now();
    assert_eq!(
        conn.command(&Command::Noop).await,
        Err(SessionError::Deadline)
    );
    assert!(before.elapsed() < Duration::from_millis(1));
}

/// A server script on the other end of a duplex: what it sends first, then
/// one answer per command line it receives.
fn scripted(
    first: &'static [u8],
    answers: &'static [&'static [u8]],
) -> (Connection, Arc<AtomicUsize>) {
    let (client, mut server) = duplex(1 << 16);
    let commands = Arc::new(AtomicUsize::new(0));
    let seen = commands.clone();
    tokio::spawn(async move {
        server.write_all(first).await.unwrap();
        let mut buf = [0u8; 1024];
        let mut answers = answers.iter();
        loop {
            match server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
                    seen.fetch_add(lines, Ordering::SeqCst);
                    for _ in 0..lines {
                        if let Some(a) = answers.next() {
                            server.write_all(a).await.unwrap();
                        }
                    }
                }
            }
        }
    });
    let conn = Connection::new(
        Box::new(client),
        Limits::default(),
        Instant::now() + Duration::from_secs(60),
    );
    (conn, commands)
}

#[tokio::test]
async fn lock_step_exchange_works_with_an_honest_server() {
    let (mut conn, commands) = scripted(
        b"220 mx ESMTP\r\n",
        &[b"250-mx\r\n250 PIPELINING\r\n", b"250 2.1.0 Ok\r\n"],
    );
    assert_eq!(conn.read_reply().await.unwrap().code, 220);
    let ehlo = conn
        .command(&Command::Ehlo("scanner.example.org".into()))
        .await
        .unwrap();
    assert_eq!(ehlo.lines[..], ["mx", "PIPELINING"]);
    let mail = conn.command(&Command::MailFrom("<>".into())).await.unwrap();
    assert_eq!(mail.code, 250);
    assert_eq!(commands.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_reply_sent_before_the_command_is_caught() {
    // The liar answers "accepted" ahead: read in lock step, this would pair
    // every later reply with the wrong command (a refused RCPT would read 250).
    let (mut conn, commands) = scripted(b"220 mx ESMTP\r\n250 2.1.5 Ok\r\n", &[b"250 mx\r\n"]);
    assert_eq!(conn.read_reply().await.unwrap().code, 220);
    let err = conn
        .command(&Command::Ehlo("scanner.example.org".into()))
        .await
        .unwrap_err();
    assert_eq!(err, SessionError::Unsolicited("250 2.1.5 Ok".into()));
    assert_eq!(err.status(), "protocol-error");
    // The command was not sent to a server that is out of step.
    tokio::task::yield_now().await;
    assert_eq!(commands.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_reply_that_arrives_later_but_unasked_is_caught_too() {
    let (client, mut server) = duplex(4096);
    tokio::spawn(async move {
        server.write_all(b"220 mx ESMTP\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.write_all(b"250 2.1.5 Ok\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let mut conn = Connection::new(
        Box::new(client),
        Limits::default(),
        Instant::now() + Duration::from_secs(60),
    );
    assert_eq!(conn.read_reply().await.unwrap().code, 220);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(
        conn.command(&Command::Noop).await,
        Err(SessionError::Unsolicited(_))
    ));
}

#[tokio::test]
async fn an_unasked_421_is_the_servers_goodbye() {
    let (mut conn, commands) = scripted(
        b"220 mx ESMTP\r\n421 4.3.2 Service shutting down\r\n",
        &[b"250 mx\r\n"],
    );
    assert_eq!(conn.read_reply().await.unwrap().code, 220);
    let reply = conn.command(&Command::MailFrom("<>".into())).await.unwrap();
    assert_eq!(reply.code, 421);
    tokio::task::yield_now().await;
    assert_eq!(commands.load(Ordering::SeqCst), 0, "MAIL was not sent");
}

#[tokio::test]
async fn a_huge_transcript_is_capped() {
    let (client, mut server) = duplex(1 << 16);
    tokio::spawn(async move {
        for _ in 0..10_000 {
            if server.write_all(b"250 ok\r\n").await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let limits = Limits {
        transcript_entries: 100,
        ..Limits::default()
    };
    let mut conn = Connection::new(
        Box::new(client),
        limits,
        Instant::now() + Duration::from_secs(60),
    );
    for _ in 0..10_000 {
        conn.read_reply().await.unwrap();
    }
    let transcript = conn.take_transcript();
    assert_eq!(transcript.len(), 101, "100 lines and the truncation mark");
    assert_eq!(transcript[100].line, "transcript truncated: cap reached");
    assert!(conn.transcript_truncated);
}

#[tokio::test]
async fn a_transcript_of_long_lines_is_capped_in_bytes() {
    // Replies of one 1000-byte line, forever: the entry cap (2000) would
    // keep 2 MB; the byte cap keeps 256 KiB.
    let line = format!("250 {}\r\n", "L".repeat(996));
    let pattern: &'static [u8] = Box::leak(line.into_bytes().into_boxed_slice());
    let mut conn = Connection::new(
        Box::new(Endless {
            head: b"",
            pattern,
            served: Arc::default(),
        }),
        Limits {
            transcript_entries: 2000,
            ..Limits::default()
        },
        Instant::now() + Duration::from_secs(60),
    );
    for _ in 0..2000 {
        conn.read_reply().await.unwrap();
    }
    let transcript = conn.take_transcript();
    let bytes: usize = transcript.iter().map(|e| e.line.len()).sum();
    assert!(bytes <= 256 * 1024 + 64, "{bytes} bytes kept");
    assert!(transcript.len() < 300, "{} entries", transcript.len());
    assert!(conn.transcript_truncated);
}
