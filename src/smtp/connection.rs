//! A connection to an SMTP server: owns the socket, the read buffer and the
//! framing (lines → replies), with a timeout on every read and write and one
//! deadline for the whole host. Modelled on mini-redis's `Connection`.

use super::budget::ReplyBudget;
use super::step_timer::StepTimer;
use super::{Command, Reply, ReplyBuilder, ReplyError};
use serde::Serialize;
use std::cell::RefCell;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{timeout_at, Instant};

/// Any byte stream: plain TCP, or TLS over it after STARTTLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What a connection holds while its stream is being handed to the TLS
/// handshake, and after a failed one: reads see EOF, writes fail.
struct Detached;

impl AsyncRead for Detached {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Detached {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Limits that keep a hostile server from using up memory or time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest reply line accepted, in bytes (RFC 5321 §4.5.3.1.5 says 512).
    pub max_line: usize,
    /// Largest multiline reply, in bytes.
    pub max_reply: usize,
    /// Most lines in one reply.
    pub max_reply_lines: usize,
    /// Wait for each reply (and each write) at most this long.
    pub read_timeout: Duration,
    /// Transcript entries kept (0 = no transcript).
    pub transcript_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 4096,
            max_reply: 64 * 1024,
            max_reply_lines: 512,
            read_timeout: Duration::from_secs(10),
            transcript_entries: 0,
        }
    }
}

/// How a session step failed. The names follow zgrab2's status vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("io-timeout: no reply within the read timeout")]
    Timeout,
    #[error("host-deadline: the per-host deadline expired")]
    Deadline,
    #[error("connection-closed: the server closed the connection")]
    Closed,
    #[error("io-error: {0}")]
    Io(String),
    #[error("protocol-error: {0}")]
    Protocol(#[from] ReplyError),
    /// The server sent a reply before it had the command: replies out of
    /// step (a "pipelining liar"), which would pair every later reply with
    /// the wrong command.
    #[error("protocol-error: the server sent {0:?} before the command (replies out of step)")]
    Unsolicited(String),
    #[error("tls-error: {0}")]
    Tls(String),
}

impl SessionError {
    /// The short status word, e.g. `io-timeout`.
    pub fn status(&self) -> &'static str {
        match self {
            SessionError::Timeout => "io-timeout",
            SessionError::Deadline => "host-deadline",
            SessionError::Closed => "connection-closed",
            SessionError::Io(_) => "io-error",
            SessionError::Protocol(_) | SessionError::Unsolicited(_) => "protocol-error",
            SessionError::Tls(_) => "tls-error",
        }
    }
}

/// One line of the dialogue, for `--transcript`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranscriptEntry {
    /// Milliseconds since the probe of this host started.
    pub ms: u64,
    /// `C` for what we sent, `S` for what the server sent, `*` for events
    /// (connect, close) noted by the probe.
    pub dir: char,
    pub line: String,
}

pub struct Connection {
    stream: Box<dyn Stream>,
    /// What the server sent and we have not read yet. Empty (no allocation)
    /// while nothing is pending: every read goes through a per-thread
    /// scratch buffer, and only the bytes received are copied here.
    buf: Vec<u8>,
    /// Start of unread data in `buf`.
    pos: usize,
    limits: Limits,
    deadline: Instant,
    opened: Instant,
    transcript: Vec<TranscriptEntry>,
    /// Bytes of text in `transcript`.
    transcript_bytes: usize,
    /// Set when the transcript cap was reached.
    pub transcript_truncated: bool,
    /// The host's budget for reply text, shared by its connections.
    budget: Option<Arc<ReplyBudget>>,
    /// The deadline of each read and write, one timer for all of them.
    timer: StepTimer,
}

/// Size of the per-thread buffer every socket read goes through.
const SCRATCH: usize = 8 * 1024;

/// Unread bytes above this are not kept in a buffer's spare capacity once
/// read: a hostile server's long reply does not pin its size for the rest
/// of the connection.
const KEEP_CAPACITY: usize = 1024;

thread_local! {
    /// The buffer reads land in before their bytes are copied to the
    /// connection's own: a connection waiting for its server holds no read
    /// buffer at all.
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH].into_boxed_slice());
}

/// Poll one read of `stream` into the per-thread scratch buffer and append
/// what it gave to `buf`: `Ready(Ok(0))` is the end of the stream.
fn poll_fill(
    stream: &mut Box<dyn Stream>,
    buf: &mut Vec<u8>,
    cx: &mut std::task::Context<'_>,
) -> Poll<std::io::Result<usize>> {
    SCRATCH_BUF.with(|scratch| {
        // A stream's poll_read never re-enters this function, so the borrow
        // cannot fail; a fresh buffer is the fallback all the same.
        let mut own;
        let mut guard = scratch.try_borrow_mut();
        let bytes: &mut [u8] = match &mut guard {
            Ok(g) => &mut g[..],
            Err(_) => {
                own = vec![0u8; SCRATCH];
                &mut own[..]
            }
        };
        let mut read_buf = ReadBuf::new(bytes);
        match Pin::new(&mut **stream).poll_read(cx, &mut read_buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let filled = read_buf.filled();
                buf.extend_from_slice(filled);
                Poll::Ready(Ok(filled.len()))
            }
        }
    })
}

/// Most bytes of text kept in one connection's transcript: with at most
/// `transcript_entries` lines, each of at most `max_line` characters, a
/// server sending long lines could otherwise fill megabytes per connection.
const TRANSCRIPT_BYTES: usize = 256 * 1024;

impl Connection {
    pub fn new(stream: Box<dyn Stream>, limits: Limits, deadline: Instant) -> Self {
        Connection {
            stream,
            buf: Vec::new(),
            pos: 0,
            limits,
            deadline,
            opened: Instant::now(),
            transcript: Vec::new(),
            transcript_bytes: 0,
            transcript_truncated: false,
            budget: None,
            timer: StepTimer::default(),
        }
    }

    /// Cut the replies read from now on to what is left of `budget` (the
    /// host's, shared by all its connections).
    pub fn set_budget(&mut self, budget: Arc<ReplyBudget>) {
        self.budget = Some(budget);
    }

    /// Forget the bytes consumed so far; give back a large buffer once it
    /// is empty.
    fn consumed(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::new();
            }
        }
    }

    /// The earlier of "now + read timeout" and the host deadline, and which one it is.
    fn step_deadline(&self) -> (Instant, SessionError) {
        let step = Instant::now() + self.limits.read_timeout;
        if step < self.deadline {
            (step, SessionError::Timeout)
        } else {
            (self.deadline, SessionError::Deadline)
        }
    }

    fn record(&mut self, dir: char, line: &str) {
        if self.limits.transcript_entries == 0 {
            return;
        }
        if self.transcript_truncated {
            return;
        }
        let line: String = line.chars().take(self.limits.max_line).collect();
        if self.transcript.len() >= self.limits.transcript_entries
            || self.transcript_bytes + line.len() > TRANSCRIPT_BYTES
        {
            // Say so once, so a cut transcript does not pass for a whole one.
            self.transcript_truncated = true;
            self.transcript.push(TranscriptEntry {
                ms: self.opened.elapsed().as_millis() as u64,
                dir: '*',
                line: "transcript truncated: cap reached".into(),
            });
            return;
        }
        self.transcript_bytes += line.len();
        self.transcript.push(TranscriptEntry {
            ms: self.opened.elapsed().as_millis() as u64,
            dir,
            line,
        });
    }

    /// Measure transcript times from `epoch` (the start of the host's probe)
    /// instead of from this connection's opening.
    pub fn set_epoch(&mut self, epoch: Instant) {
        self.opened = epoch;
    }

    /// An event of this connection (its opening, TLS), kept in order with
    /// its dialogue.
    pub fn note(&mut self, line: &str) {
        self.record('*', line);
    }

    /// Take the transcript recorded so far.
    pub fn take_transcript(&mut self) -> Vec<TranscriptEntry> {
        self.transcript_bytes = 0;
        std::mem::take(&mut self.transcript)
    }

    /// Discard anything the server sent that we have not read yet. Used before
    /// a TLS handshake (STARTTLS response injection) and to detect servers
    /// that talk before they are asked.
    pub fn discard_buffered(&mut self) -> usize {
        let n = self.buf.len() - self.pos;
        self.pos = self.buf.len();
        self.consumed();
        n
    }

    /// The bytes received but not (yet) read as a line: after a failed read,
    /// what the server sent that was not a reply (e.g. a TLS alert).
    pub fn unread(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Switch the connection to TLS: at once for implicit TLS, or after the
    /// server's `220` to STARTTLS. Whatever the server sent that we have not
    /// read yet is plaintext from before the handshake: it is discarded, never
    /// read as a reply after it (STARTTLS response injection), and the count
    /// of discarded bytes is returned with the session's facts. The handshake
    /// runs within the read timeout and the host deadline.
    pub async fn start_tls(
        &mut self,
        name: rustls_pki_types::ServerName<'static>,
    ) -> Result<(usize, super::tls::TlsInfo), SessionError> {
        let discarded = self.discard_buffered();
        let plain = std::mem::replace(&mut self.stream, Box::new(Detached));
        let (until, err) = self.step_deadline();
        match timeout_at(until, super::tls::handshake(plain, name)).await {
            Err(_) => Err(err),
            Ok(Err(e)) => {
                self.record('*', &format!("TLS handshake failed: {e}"));
                Err(SessionError::Tls(e))
            }
            Ok(Ok((stream, info))) => {
                self.stream = stream;
                self.record(
                    '*',
                    &format!("TLS established: {} {}", info.version, info.cipher),
                );
                Ok((discarded, info))
            }
        }
    }

    /// Read one line (without CRLF; a bare LF is accepted too).
    async fn read_line(&mut self) -> Result<String, SessionError> {
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let end = self.pos + i;
                let mut line = &self.buf[self.pos..end];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                if line.len() > self.limits.max_line {
                    return Err(ReplyError::LineTooLong(self.limits.max_line).into());
                }
                let text = super::reply::decode(line);
                self.pos = end + 1;
                self.consumed();
                return Ok(text);
            }
            if self.buf.len() - self.pos > self.limits.max_line {
                return Err(ReplyError::LineTooLong(self.limits.max_line).into());
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let (until, err) = self.step_deadline();
            let (stream, buf) = (&mut self.stream, &mut self.buf);
            let filled = std::future::poll_fn(|cx| poll_fill(stream, buf, cx));
            match self.timer.run(until, filled).await {
                Err(_) => return Err(err),
                Ok(Err(e)) => return Err(SessionError::Io(e.kind().to_string())),
                Ok(Ok(0)) => return Err(SessionError::Closed),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Read one complete (possibly multiline) reply.
    pub async fn read_reply(&mut self) -> Result<Reply, SessionError> {
        let mut builder = ReplyBuilder::new(self.limits.max_reply, self.limits.max_reply_lines);
        loop {
            let line = self.read_line().await?;
            self.record('S', &line);
            if let Some(mut reply) = builder.push_owned(line)? {
                if let Some(budget) = &self.budget {
                    budget.keep(&mut reply);
                }
                return Ok(reply);
            }
        }
    }

    /// Send one command.
    pub async fn send(&mut self, command: &Command) -> Result<(), SessionError> {
        self.write_commands(std::slice::from_ref(command)).await
    }

    /// Write commands in one write (one for a single command, a pipelined
    /// group for several), with the step deadline.
    async fn write_commands(&mut self, commands: &[Command]) -> Result<(), SessionError> {
        let mut wire = Vec::with_capacity(commands.len() * 48);
        for command in commands {
            if self.limits.transcript_entries > 0 {
                self.record('C', &command.to_string());
            }
            command.write_wire(&mut wire);
        }
        self.write_wire(&wire).await
    }

    /// Write bytes and flush them, within the step deadline.
    async fn write_wire(&mut self, wire: &[u8]) -> Result<(), SessionError> {
        let (until, err) = self.step_deadline();
        let stream = &mut self.stream;
        match self
            .timer
            .run(until, async {
                stream.write_all(wire).await?;
                stream.flush().await
            })
            .await
        {
            Err(_) => Err(err),
            Ok(Err(e)) => Err(SessionError::Io(e.kind().to_string())),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Send a command and read its reply, in lock step: every earlier reply
    /// has been read, so the server must be silent until it has the command.
    /// Anything it sent before would be taken as this command's reply (a
    /// server that answers ahead could make a refused RCPT look accepted),
    /// so it is an error, [`SessionError::Unsolicited`] — except a 421,
    /// which a server may send at any time before it closes (RFC 5321 §3.8):
    /// that is returned as the reply, and the command is not sent.
    ///
    /// Pipelined batches (RFC 2920) use [`Connection::send`] and
    /// [`Connection::read_reply`] instead.
    pub async fn command(&mut self, command: &Command) -> Result<Reply, SessionError> {
        if let Some(goodbye) = self.expect_silence().await? {
            return Ok(goodbye);
        }
        self.send(command).await?;
        self.read_reply().await
    }

    /// Before a command: the server must not have spoken. A 421 it sent is
    /// its goodbye (returned); anything else is replies out of step.
    async fn expect_silence(&mut self) -> Result<Option<Reply>, SessionError> {
        if !self.server_spoke_first().await? {
            return Ok(None);
        }
        let early = self.read_reply().await?;
        if early.code == super::code::SERVICE_NOT_AVAILABLE {
            return Ok(Some(early));
        }
        let text: String = early.one_line().chars().take(80).collect();
        Err(SessionError::Unsolicited(text))
    }

    /// Send a group of commands in one write (RFC 2920 PIPELINING: RSET,
    /// MAIL and RCPT may stand anywhere in a group); the caller reads the
    /// replies in order with [`Connection::read_reply`]. As for
    /// [`Connection::command`], the server must be silent first: an early
    /// 421 is returned (and nothing is sent), anything else is an error.
    pub async fn send_pipelined(
        &mut self,
        commands: &[Command],
    ) -> Result<Option<Reply>, SessionError> {
        if let Some(goodbye) = self.expect_silence().await? {
            return Ok(Some(goodbye));
        }
        self.write_commands(commands).await.map(|()| None)
    }

    /// Send a message after `354` (RFC 5321 §4.5.2): CRLF line ends, a dot
    /// doubled at the start of a line, and the final `.` line. The
    /// transcript gets one line about it, not the text.
    pub async fn send_message(&mut self, text: &str) -> Result<(), SessionError> {
        let mut wire = Vec::with_capacity(text.len() + 64);
        let mut lines = 0;
        for line in text.lines() {
            if line.starts_with('.') {
                wire.push(b'.');
            }
            wire.extend_from_slice(line.as_bytes());
            wire.extend_from_slice(b"\r\n");
            lines += 1;
        }
        wire.extend_from_slice(b".\r\n");
        self.record('C', &format!("<message: {lines} lines, then .>"));
        self.write_wire(&wire).await
    }

    /// After every expected reply was read: has the server sent more? (A
    /// reply too many puts every later reply one step out of place.)
    pub async fn has_unread(&mut self) -> Result<bool, SessionError> {
        self.server_spoke_first().await
    }

    /// Whether the server sent bytes we have not asked for: already buffered,
    /// or waiting in the socket now (looked at once, without waiting).
    async fn server_spoke_first(&mut self) -> Result<bool, SessionError> {
        if self.pos < self.buf.len() {
            return Ok(true);
        }
        let (stream, buf) = (&mut self.stream, &mut self.buf);
        let polled = std::future::poll_fn(|cx| Poll::Ready(poll_fill(stream, buf, cx))).await;
        match polled {
            // Quiet, as it should be; or the stream ended, which the
            // command's own read reports.
            Poll::Pending | Poll::Ready(Ok(0)) => Ok(false),
            Poll::Ready(Ok(_)) => Ok(true),
            Poll::Ready(Err(e)) => Err(SessionError::Io(e.kind().to_string())),
        }
    }

    /// Read the reply to a QUIT already sent, until `until` at most (RFC
    /// 5321 §4.5.3.2.8 gives the server 5 minutes; the verdict does not
    /// depend on the answer). `None` when none came: the connection is done
    /// either way.
    pub async fn read_goodbye(&mut self, until: Instant) -> Option<Reply> {
        // Every read of the reply ends by `until`.
        self.deadline = until;
        self.limits.read_timeout = until.saturating_duration_since(Instant::now());
        self.read_reply().await.ok()
    }

    /// Close our side for writing, within the step deadline: a TCP FIN (a
    /// `close_notify` first over TLS); the replies can still be read. At
    /// the end of [`Connection::quit`], and after a plaintext group that
    /// ended with QUIT: Exim waits up to 200 ms after its `221` for the
    /// client to close first, and holds the group's replies back while it
    /// waits; the FIN ends that wait.
    pub async fn close_sending(&mut self) {
        let until = self.step_deadline().0;
        let stream = &mut self.stream;
        let _ = self.timer.run(until, stream.shutdown()).await;
    }

    /// The reply to a QUIT sent at the end of a pipelined group, if it is
    /// here: buffered, or waiting in the socket now (looked at once). Once
    /// its first bytes are here, the rest is read until `until` at most.
    /// `None` when nothing is here yet (or the connection has ended).
    pub async fn goodbye_if_here(&mut self, until: Instant) -> Option<Reply> {
        if !self.server_spoke_first().await.unwrap_or(false) {
            return None;
        }
        self.read_goodbye(until).await
    }

    /// The host's deadline, which bounds every step of the connection.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Say QUIT and close, politely but without waiting long: the verdict is
    /// already known, so a server that does not answer QUIT costs at most one
    /// short wait.
    pub async fn quit(mut self) -> Vec<TranscriptEntry> {
        self.limits.read_timeout = self.limits.read_timeout.min(Duration::from_secs(2));
        if self.send(&Command::Quit).await.is_ok() {
            let _ = self.read_reply().await;
        }
        self.close_sending().await;
        self.take_transcript()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn conn(server_bytes: &'static [u8], limits: Limits) -> Connection {
        let (client, mut server) = duplex(1 << 20);
        tokio::spawn(async move {
            server.write_all(server_bytes).await.unwrap();
            // Keep the server side open until the test ends.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        Connection::new(
            Box::new(client),
            limits,
            Instant::now() + Duration::from_secs(60),
        )
    }

    #[tokio::test]
    async fn reads_multiline_and_bare_lf() {
        let mut c = conn(b"220 hi\r\n250-a\n250 b\r\n", Limits::default());
        assert_eq!(c.read_reply().await.unwrap(), Reply::new(220, "hi"));
        let r = c.read_reply().await.unwrap();
        assert_eq!(r.lines[..], ["a", "b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn endless_line_is_a_protocol_error_not_a_hang() {
        static BIG: [u8; 100_000] = [b'A'; 100_000];
        let mut c = conn(&BIG, Limits::default());
        assert_eq!(
            c.read_reply().await,
            Err(SessionError::Protocol(ReplyError::LineTooLong(4096)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silence_times_out() {
        let limits = Limits {
            read_timeout: Duration::from_secs(5),
            ..Limits::default()
        };
        let mut c = conn(b"", limits);
        assert_eq!(c.read_reply().await, Err(SessionError::Timeout));
    }

    /// A server that trickles its goodbye a line at a time, each within the
    /// read timeout, is still left after `wait` in all.
    #[tokio::test(start_paused = true)]
    async fn a_trickled_goodbye_is_waited_for_at_most_the_wait_in_all() {
        let (client, mut server) = duplex(1 << 16);
        tokio::spawn(async move {
            loop {
                if server.write_all(b"221-still here\r\n").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
        });
        let mut c = Connection::new(
            Box::new(client),
            Limits::default(),
            Instant::now() + Duration::from_secs(60),
        );
        let start = Instant::now();
        c.read_goodbye(start + Duration::from_secs(2)).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn host_deadline_wins_over_read_timeout() {
        let (client, _server) = duplex(64);
        let mut c = Connection::new(
            Box::new(client),
            Limits::default(),
            Instant::now() + Duration::from_secs(1),
        );
        assert_eq!(c.read_reply().await, Err(SessionError::Deadline));
    }

    #[tokio::test]
    async fn no_read_buffer_until_bytes_arrive_and_a_long_reply_gives_it_back() {
        let mut long = String::new();
        for _ in 0..10 {
            long.push_str(&format!("250-{}\r\n", "x".repeat(2000)));
        }
        long.push_str("250 end\r\n220 short\r\n");
        let bytes: &'static [u8] = Box::leak(long.into_bytes().into_boxed_slice());
        let mut c = conn(bytes, Limits::default());
        assert_eq!(c.buf.capacity(), 0, "nothing read yet, nothing held");
        let r = c.read_reply().await.unwrap();
        assert_eq!((r.code, r.lines.len()), (250, 11));
        assert_eq!(c.read_reply().await.unwrap(), Reply::new(220, "short"));
        // Everything read: a buffer grown past KEEP_CAPACITY is released.
        assert_eq!(c.unread(), b"");
        assert!(c.buf.capacity() <= KEEP_CAPACITY, "{}", c.buf.capacity());
    }

    #[tokio::test]
    async fn a_reply_over_the_hosts_budget_is_cut() {
        let mut c = conn(
            b"550-5.7.1 Relaying denied\r\n550 and a second line\r\n250 next\r\n",
            Limits::default(),
        );
        let budget = Arc::new(ReplyBudget::new(10));
        c.set_budget(budget.clone());
        let r = c.read_reply().await.unwrap();
        assert_eq!(
            r.lines[..],
            ["5.7.1 Relaying denied"],
            "kept: the first line's start"
        );
        assert_eq!(budget.cut().map(|c| c.replies), Some(1));
        assert_eq!(c.read_reply().await.unwrap(), Reply::new(250, "next"));
    }

    #[tokio::test]
    async fn transcript_is_capped() {
        let limits = Limits {
            transcript_entries: 2,
            ..Limits::default()
        };
        let mut c = conn(b"250 a\r\n250 b\r\n250 c\r\n", limits);
        for _ in 0..3 {
            c.read_reply().await.unwrap();
        }
        let t = c.take_transcript();
        assert_eq!(t.len(), 3, "two entries and the truncation mark");
        assert_eq!(t[2].dir, '*');
        assert!(c.transcript_truncated);
    }
}
