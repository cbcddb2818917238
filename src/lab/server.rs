//! The simulated SMTP server: plays one [`Profile`] per listening address.
//!
//! It understands enough SMTP to be scanned (EHLO/HELO, MAIL, RCPT, RSET,
//! NOOP, QUIT, DATA) and judges recipients the way a real MTA does: a domain
//! is local if it is the server's own name, its address literal, its mail
//! domain or `localhost`; anything else is relaying, which the profile's
//! policy decides.

use super::line::{read_line, IDLE};
use super::profile::{AuthPolicy, Greeting, MailPolicy, Profile, RelayPolicy, TlsPolicy};
use super::tls::Identity;
use crate::smtp::code;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;

/// The mail domain every lab server belongs to (RFC 2606: never resolves).
pub const LAB_DOMAIN: &str = "lab.example";
/// The mailboxes every lab server has.
const LOCAL_USERS: &[&str] = &["postmaster", "abuse", "root"];
/// Like Postfix's smtpd_hard_error_limit: drop the client after this many errors.
const HARD_ERROR_LIMIT: u32 = 20;

/// The host name a profile's server announces.
pub fn host_name(profile: &Profile) -> String {
    format!("{}.{LAB_DOMAIN}", profile.name)
}

/// Accept connections until `shutdown` changes, one task per client.
pub async fn serve(
    listener: TcpListener,
    profile: &'static Profile,
    identity: Identity,
    forward: Option<SocketAddr>,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(
        listener,
        move |_| Some(profile),
        Duration::ZERO,
        identity,
        forward,
        shutdown,
    )
    .await
}

/// One listener playing many servers: the profile is chosen by the address
/// the client dialled (`local_addr()`), so a listener on `0.0.0.0` plays a
/// whole /16 of loopback. Only loopback addresses are ever served. `latency`
/// is added once per round trip (before each burst of replies), to measure
/// how many round trips a scan needs. A relaying profile hands what it
/// accepts on to `forward`, when given (see `lab/forward.rs`).
pub async fn serve_with<F>(
    listener: TcpListener,
    pick: F,
    latency: Duration,
    identity: Identity,
    forward: Option<SocketAddr>,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(std::net::IpAddr) -> Option<&'static Profile> + Send + Sync + 'static,
{
    let pick = std::sync::Arc::new(pick);
    let mut accepted_so_far: u64 = 0;
    let active = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let local = match stream.local_addr() {
                    Ok(a) if a.ip().is_loopback() => a,
                    _ => continue,
                };
                let Some(profile) = pick(local.ip()) else { continue };
                let n = accepted_so_far;
                accepted_so_far += 1;
                let sessions = active.clone();
                tokio::spawn(async move {
                    let now = sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if profile.max_sessions.is_some_and(|max| now >= max) {
                        let mut stream = stream;
                        let _ = stream.write_all(code::line(code::SERVICE_NOT_AVAILABLE, "4.7.0 Too many connections, try again later").as_bytes()).await;
                    } else {
                        let _ = timeout(Duration::from_secs(300), session(stream, profile, latency, identity, n, forward)).await;
                    }
                    sessions.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        }
    }
}

/// What a recipient address means to this server.
#[derive(Debug, PartialEq, Eq)]
enum Rcpt {
    Syntax,
    Local { local_part: String },
    Foreign { domain: String },
    SourceRoute,
}

fn parse_rcpt(arg: &str, local_names: &[String]) -> Rcpt {
    let arg = arg.trim();
    let path = match (arg.strip_prefix('<'), arg.ends_with('>')) {
        (Some(inner), true) => &inner[..inner.len() - 1],
        (None, false) => arg,
        _ => return Rcpt::Syntax,
    };
    // A source route: <@hop1,@hop2:user@domain> (RFC 5321 §4.1.2, obsolete).
    if path.starts_with('@') {
        return match path.split_once(':') {
            Some((_, rest)) if rest.contains('@') => Rcpt::SourceRoute,
            _ => Rcpt::Syntax,
        };
    }
    let (local_part, domain) = if let Some(quoted) = path.strip_prefix('"') {
        match quoted.split_once('"') {
            Some((local, rest)) => match rest.strip_prefix('@') {
                Some(domain) => (format!("\"{local}\""), Some(domain)),
                None if rest.is_empty() => (format!("\"{local}\""), None),
                None => return Rcpt::Syntax,
            },
            None => return Rcpt::Syntax,
        }
    } else {
        match path.rsplit_once('@') {
            Some((local, domain)) => (local.to_string(), Some(domain)),
            None => (path.to_string(), None),
        }
    };
    if local_part.is_empty() {
        return Rcpt::Syntax;
    }
    match domain {
        // An unqualified address is local (Postfix appends $myorigin).
        None => Rcpt::Local { local_part },
        Some("") => Rcpt::Syntax,
        Some(d) if local_names.iter().any(|n| n.eq_ignore_ascii_case(d)) => {
            Rcpt::Local { local_part }
        }
        Some(d) if d.contains('@') || local_part.contains('@') && !local_part.starts_with('"') => {
            Rcpt::Syntax
        }
        Some(d) => Rcpt::Foreign {
            domain: d.to_ascii_lowercase(),
        },
    }
}

struct State {
    mail: bool,
    rcpts: u32,
    errors: u32,
    helo: bool,
    /// The session runs over TLS (after STARTTLS, or implicit).
    tls: bool,
    /// The client authenticated with the lab account.
    authenticated: bool,
    /// Relaying was unlocked (authenticated, or any AUTH attempt under
    /// [`AuthPolicy::RelayAfterAnyAttempt`]).
    may_relay: bool,
    /// The client's EHLO/HELO name, for the `Received:` line.
    helo_name: String,
    /// The reverse-path of the current transaction.
    from: String,
    /// Accepted recipients this server would hand on: (as given, next hop's
    /// recipient, through the primary).
    forwards: Vec<(String, String, bool)>,
}

impl State {
    fn new(tls: bool, errors: u32) -> State {
        State {
            mail: false,
            rcpts: 0,
            errors,
            helo: false,
            tls,
            authenticated: false,
            may_relay: false,
            helo_name: String::new(),
            from: String::new(),
            forwards: Vec::new(),
        }
    }
}

/// The connection as the lab sees it: TCP, or TLS over it.
type Io = BufReader<Box<dyn crate::smtp::Stream>>;

/// One client. `n` counts this server's connections from 0; `latency` is
/// added once per round trip.
async fn session(
    stream: TcpStream,
    profile: &'static Profile,
    latency: Duration,
    identity: Identity,
    n: u64,
    forward: Option<SocketAddr>,
) -> std::io::Result<()> {
    if let Greeting::Hostile(hostile) = profile.greeting {
        return super::hostile::play(hostile, stream, &host_name(profile), n).await;
    }
    let local = stream.local_addr()?;
    let peer = stream.peer_addr().ok();
    stream.set_nodelay(true)?;
    let host = host_name(profile);
    let mut st = State::new(false, 0);
    let mut io: Io = if profile.tls == TlsPolicy::Implicit {
        st.tls = true;
        BufReader::new(Box::new(accept_tls(Box::new(stream), identity).await?))
    } else {
        BufReader::new(Box::new(stream))
    };

    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match profile.greeting {
        Greeting::Hostile(_) => return Ok(()),
        Greeting::Banner(text) => {
            io.write_all(code::line(code::SERVICE_READY, &format!("{host} {text}")).as_bytes())
                .await?
        }
        Greeting::Slow(delay, text) => {
            tokio::time::sleep(delay).await;
            io.write_all(code::line(code::SERVICE_READY, &format!("{host} {text}")).as_bytes())
                .await?;
        }
        Greeting::CloseAfterBanner(text) => {
            io.write_all(code::line(code::SERVICE_READY, &format!("{host} {text}")).as_bytes())
                .await?;
            return io.shutdown().await;
        }
        Greeting::Reject(code, text) => {
            io.write_all(format!("{code} {text}\r\n").as_bytes())
                .await?;
            // RFC 5321 §3.1: after a 554 greeting, answer 503 until QUIT.
            while let Some(line) = read_line(&mut io).await? {
                if line.eq_ignore_ascii_case("QUIT") {
                    io.write_all(code::line(code::SERVICE_CLOSING, "2.0.0 Bye").as_bytes())
                        .await?;
                    break;
                }
                io.write_all(code::line(code::BAD_SEQUENCE, "5.5.1 No service").as_bytes())
                    .await?;
            }
            return Ok(());
        }
        Greeting::Http => {
            if read_line(&mut io).await?.is_some() {
                io.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await?;
            }
            return Ok(());
        }
        Greeting::Raw(text) => {
            io.write_all(format!("{text}\r\n").as_bytes()).await?;
            let _ = read_line(&mut io).await;
            return Ok(());
        }
    }

    let literal = match local.ip() {
        std::net::IpAddr::V4(v4) => format!("[{v4}]"),
        std::net::IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    };
    let local_names = vec![
        host.clone(),
        LAB_DOMAIN.to_string(),
        literal,
        "localhost".to_string(),
    ];

    let mut pending = String::new();
    while let Some(line) = read_line(&mut io).await? {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        let reply: String = match verb.as_str() {
            "EHLO" if !profile.ehlo => {
                reply(code::SYNTAX_ERROR, "5.5.2 Command unrecognized: \"EHLO\"")
            }
            "EHLO" => {
                st.helo = true;
                st.helo_name = arg.chars().take(64).collect();
                ehlo_reply(profile, &host, st.tls)
            }
            "HELO" => {
                st.helo = true;
                st.helo_name = arg.chars().take(64).collect();
                reply(code::OK, format_args!("{host} Hello"))
            }
            "STARTTLS" if st.tls => reply(code::BAD_SEQUENCE, "5.5.1 Error: TLS already active"),
            "STARTTLS" if matches!(profile.tls, TlsPolicy::None | TlsPolicy::Implicit) => {
                reply(code::TLS_NOT_AVAILABLE, "4.7.0 TLS not available")
            }
            "STARTTLS" if profile.tls == TlsPolicy::RequiredBroken => {
                io.write_all(std::mem::take(&mut pending).as_bytes())
                    .await?;
                // A fatal internal_error alert instead of a ServerHello.
                io.write_all(
                    code::line(code::SERVICE_READY, "2.0.0 Ready to start TLS").as_bytes(),
                )
                .await?;
                io.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50])
                    .await?;
                return io.shutdown().await;
            }
            "STARTTLS" => {
                let mut ready = std::mem::take(&mut pending).into_bytes();
                ready.extend_from_slice(
                    code::line(code::SERVICE_READY, "2.0.0 Ready to start TLS").as_bytes(),
                );
                if let TlsPolicy::Injecting(extra) = profile.tls {
                    // One write, so the extra bytes travel with the 220.
                    ready.extend_from_slice(extra.as_bytes());
                }
                io.write_all(&ready).await?;
                // RFC 3207 §4.2: forget what the client sent before the
                // handshake (and everything learnt in plaintext).
                let plain = io.into_inner();
                io = BufReader::new(Box::new(accept_tls(plain, identity).await?));
                st = State::new(true, st.errors);
                continue;
            }
            "AUTH" if !st.helo => reply(code::BAD_SEQUENCE, "5.5.1 Error: send HELO/EHLO first"),
            "AUTH" if st.authenticated => {
                reply(code::BAD_SEQUENCE, "5.5.1 Error: already authenticated")
            }
            "AUTH" => {
                io.write_all(std::mem::take(&mut pending).as_bytes())
                    .await?;
                let ok = sasl_exchange(&mut io, &arg, local, st.tls).await?;
                if profile.auth == AuthPolicy::RelayAfterAnyAttempt {
                    st.may_relay = true;
                }
                if ok && profile.auth != AuthPolicy::None {
                    st.authenticated = true;
                    st.may_relay = true;
                    reply(code::AUTH_SUCCEEDED, "2.7.0 Authentication successful")
                } else {
                    reply(
                        code::AUTH_CREDENTIALS_INVALID,
                        "5.7.8 Error: authentication failed",
                    )
                }
            }
            "MAIL" if !st.helo => reply(code::BAD_SEQUENCE, "5.5.1 Error: send HELO/EHLO first"),
            "MAIL" if st.mail => reply(code::BAD_SEQUENCE, "5.5.1 Error: nested MAIL command"),
            "MAIL"
                if matches!(
                    profile.tls,
                    TlsPolicy::Required
                        | TlsPolicy::RequiredUnadvertised
                        | TlsPolicy::RequiredBroken
                ) && !st.tls =>
            {
                reply(
                    code::AUTH_REQUIRED,
                    "5.7.0 Must issue a STARTTLS command first",
                )
            }
            "MAIL" => match profile.mail {
                MailPolicy::Refuse(code, text) if !st.authenticated => format!("{code} {text}"),
                _ if !arg.to_ascii_uppercase().starts_with("FROM:") => reply(
                    code::SYNTAX_ERROR_IN_PARAMETERS,
                    "5.5.4 Syntax: MAIL FROM:<address>",
                ),
                _ => {
                    st.mail = true;
                    st.from = arg[5..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("<>")
                        .chars()
                        .take(256)
                        .collect();
                    st.forwards.clear();
                    reply(code::OK, "2.1.0 Ok")
                }
            },
            "RCPT" if !st.mail => reply(code::BAD_SEQUENCE, "5.5.1 Error: need MAIL command"),
            "RCPT" => match arg.get(..3).map(str::to_ascii_uppercase).as_deref() {
                Some("TO:") => {
                    let reply = judge_rcpt(profile, &arg[3..], &local_names, st.may_relay);
                    if reply.starts_with('2') {
                        st.rcpts += 1;
                        if let Some((to, primary)) =
                            route(profile, &arg[3..], &local_names, st.may_relay)
                        {
                            let given = arg[3..].trim().trim_matches(|c| c == '<' || c == '>');
                            st.forwards.push((given.to_string(), to, primary));
                        }
                    }
                    reply
                }
                _ => reply(
                    code::SYNTAX_ERROR_IN_PARAMETERS,
                    "5.5.4 Syntax: RCPT TO:<address>",
                ),
            },
            "DATA" if st.rcpts == 0 => reply(code::BAD_SEQUENCE, "5.5.1 Error: need RCPT command"),
            "DATA" => {
                pending.push_str(&code::line(
                    code::START_MAIL_INPUT,
                    "End data with <CR><LF>.<CR><LF>",
                ));
                io.write_all(pending.as_bytes()).await?;
                pending.clear();
                let mut message: Vec<u8> = Vec::new();
                while let Some(l) = read_line(&mut io).await? {
                    if l == "." {
                        break;
                    }
                    let l = if l.starts_with("..") { &l[1..] } else { &l[..] };
                    if message.len() + l.len() + 2 <= super::forward::MAX_MESSAGE {
                        message.extend_from_slice(l.as_bytes());
                        message.extend_from_slice(b"\r\n");
                    }
                }
                if let Some(to) = forward {
                    for (given, rcpt, primary) in std::mem::take(&mut st.forwards) {
                        let mut received =
                            vec![super::forward::received(&st.helo_name, peer, &host, &given)];
                        let ehlo = if primary {
                            // The primary applies the percent hack and relays.
                            let primary = format!("primary.{LAB_DOMAIN}");
                            received
                                .insert(0, super::forward::received(&host, None, &primary, &rcpt));
                            primary
                        } else {
                            host.clone()
                        };
                        super::forward::spawn(
                            to,
                            ehlo,
                            super::forward::Outgoing {
                                mail_from: st.from.clone(),
                                rcpt_to: rcpt,
                                received,
                                message: message.clone(),
                            },
                        );
                    }
                }
                st.forwards.clear();
                st.mail = false;
                st.rcpts = 0;
                reply(code::OK, "2.0.0 Ok: queued as LAB0001")
            }
            "RSET" => {
                st.mail = false;
                st.rcpts = 0;
                st.forwards.clear();
                reply(code::OK, "2.0.0 Ok")
            }
            "NOOP" => reply(code::OK, "2.0.0 Ok"),
            "VRFY" => reply(code::CANNOT_VRFY, "2.0.0 Cannot VRFY user"),
            "QUIT" => {
                pending.push_str(&code::line(code::SERVICE_CLOSING, "2.0.0 Bye"));
                io.write_all(pending.as_bytes()).await?;
                return io.shutdown().await;
            }
            _ => reply(
                code::COMMAND_NOT_IMPLEMENTED,
                "5.5.2 Error: command not recognized",
            ),
        };
        if reply.starts_with('4') || reply.starts_with('5') {
            st.errors += 1;
        }
        // Like Postfix: answer a pipelined group in one write, once the
        // client's commands are all read.
        pending.push_str(&reply);
        pending.push_str("\r\n");
        if io.buffer().is_empty() {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            io.write_all(pending.as_bytes()).await?;
            pending.clear();
        }
        if st.errors >= HARD_ERROR_LIMIT {
            pending.push_str(&code::line(
                code::SERVICE_NOT_AVAILABLE,
                "4.7.0 Error: too many errors",
            ));
            io.write_all(pending.as_bytes()).await?;
            return Ok(());
        }
    }
    Ok(())
}

/// The EHLO reply: the profile's extensions, or after TLS its TLS extensions
/// (by default the same without STARTTLS).
fn ehlo_reply(profile: &Profile, host: &str, tls: bool) -> String {
    let mut r = format!("{}-{host}", code::OK);
    let extensions: Vec<&str> = if tls && !profile.tls_extensions.is_empty() {
        profile.tls_extensions.to_vec()
    } else {
        let mut ext = profile.extensions.to_vec();
        if matches!(
            profile.tls,
            TlsPolicy::Offered
                | TlsPolicy::Required
                | TlsPolicy::RequiredBroken
                | TlsPolicy::Injecting(_)
        ) && !ext.contains(&"STARTTLS")
        {
            ext.push("STARTTLS");
        }
        if tls {
            ext.retain(|e| *e != "STARTTLS");
        }
        ext
    };
    for ext in extensions {
        r.push_str(&format!("\r\n{}-{ext}", code::OK));
    }
    r.push_str(&format!("\r\n{} HELP", code::OK));
    r
}

async fn accept_tls(
    stream: Box<dyn crate::smtp::Stream>,
    identity: Identity,
) -> std::io::Result<tokio_rustls::server::TlsStream<Box<dyn crate::smtp::Stream>>> {
    let acceptor = super::tls::acceptor(identity).map_err(std::io::Error::other)?;
    timeout(IDLE, acceptor.accept(stream))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// One AUTH exchange (PLAIN with or without an initial response, LOGIN).
/// True when the lab account's user name and password were given.
async fn sasl_exchange(
    io: &mut Io,
    arg: &str,
    server: SocketAddr,
    tls: bool,
) -> std::io::Result<bool> {
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;
    let decode = |s: &str| {
        BASE64
            .decode(s.trim())
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let mut words = arg.split_whitespace();
    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
    let initial = words.next().map(str::to_string);
    let (user, password) = match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(r) => r,
                None => {
                    io.write_all(code::line(code::AUTH_CHALLENGE, "").as_bytes())
                        .await?;
                    read_line(io).await?.unwrap_or_default()
                }
            };
            let Some(text) = decode(&response) else {
                return Ok(false);
            };
            let mut parts = text.split('\0').skip(1);
            (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            )
        }
        "LOGIN" => {
            io.write_all(code::line(code::AUTH_CHALLENGE, "VXNlcm5hbWU6").as_bytes())
                .await?;
            let user = read_line(io).await?.unwrap_or_default();
            if user.trim() == "*" {
                return Ok(false);
            }
            io.write_all(code::line(code::AUTH_CHALLENGE, "UGFzc3dvcmQ6").as_bytes())
                .await?;
            let password = read_line(io).await?.unwrap_or_default();
            (
                decode(&user).unwrap_or_default(),
                decode(&password).unwrap_or_default(),
            )
        }
        _ => return Ok(false),
    };
    let password_matched = password == super::LAB_PASSWORD;
    log_auth(AuthSeen {
        server,
        mechanism,
        user: user.clone(),
        password_matched,
        tls,
    });
    Ok(user == super::LAB_USER && password_matched)
}

/// One AUTH exchange as a lab server saw it: the tests check where
/// relayscan sent a password, and where it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSeen {
    /// The lab server (address and port) that was dialled.
    pub server: SocketAddr,
    /// `PLAIN` or `LOGIN`.
    pub mechanism: String,
    /// The user name the client gave.
    pub user: String,
    /// The client gave the lab password ([`super::LAB_PASSWORD`]); the
    /// password itself is not kept.
    pub password_matched: bool,
    /// The exchange ran over TLS.
    pub tls: bool,
}

/// The AUTH exchanges of this process's lab servers, oldest first (at most
/// [`AUTH_LOG_LIMIT`]: a long-running `relayscan lab` does not grow).
static AUTH_LOG: std::sync::Mutex<Vec<AuthSeen>> = std::sync::Mutex::new(Vec::new());
const AUTH_LOG_LIMIT: usize = 10_000;

fn log_auth(seen: AuthSeen) {
    if let Ok(mut log) = AUTH_LOG.lock() {
        if log.len() < AUTH_LOG_LIMIT {
            log.push(seen);
        }
    }
}

/// Every AUTH exchange the lab server at `server` has seen.
pub fn auth_log(server: SocketAddr) -> Vec<AuthSeen> {
    AUTH_LOG
        .lock()
        .map(|log| log.iter().filter(|a| a.server == server).cloned().collect())
        .unwrap_or_default()
}

fn judge_rcpt(profile: &Profile, arg: &str, local_names: &[String], may_relay: bool) -> String {
    let arg = arg.trim();
    let rcpt = arg.trim_start_matches('<').trim_end_matches('>');
    match parse_rcpt(arg, local_names) {
        Rcpt::Syntax => reply(
            code::SYNTAX_ERROR_IN_PARAMETERS,
            "5.1.3 Bad recipient address syntax",
        ),
        Rcpt::SourceRoute if profile.relay == RelayPolicy::SourceRoute => {
            reply(code::OK, "2.1.5 Ok")
        }
        Rcpt::SourceRoute => deny(profile, rcpt),
        Rcpt::Local { .. } if profile.catch_all => {
            reply(code::OK, "2.1.5 Destination address valid: Recipient ok")
        }
        Rcpt::Local { local_part } if local_part.contains('%') => {
            if profile.relay == RelayPolicy::PercentHack {
                reply(code::OK, "2.1.5 Ok")
            } else {
                reply(code::MAILBOX_UNAVAILABLE, format_args!("5.1.1 <{rcpt}>: Recipient address rejected: User unknown in local recipient table"))
            }
        }
        Rcpt::Local { local_part } if local_part.contains('!') || local_part.contains('@') => {
            reply(
                code::MAILBOX_UNAVAILABLE,
                format_args!(
                "5.1.1 <{rcpt}>: Recipient address rejected: User unknown in local recipient table"
            ),
            )
        }
        // Like Postfix with local_recipient_maps: only real mailboxes; a sink takes anything.
        Rcpt::Local { local_part }
            if profile.relay == RelayPolicy::AcceptAll
                || LOCAL_USERS
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(&local_part)) =>
        {
            reply(code::OK, "2.1.5 Ok")
        }
        Rcpt::Local { .. } => reply(
            code::MAILBOX_UNAVAILABLE,
            format_args!(
                "5.1.1 <{rcpt}>: Recipient address rejected: User unknown in local recipient table"
            ),
        ),
        Rcpt::Foreign { .. } if may_relay => reply(code::OK, "2.1.5 Ok"),
        Rcpt::Foreign { domain } => match profile.relay {
            RelayPolicy::AcceptAll => reply(code::OK, "2.1.5 Ok"),
            RelayPolicy::Open
                if domain.ends_with(".invalid")
                    || domain.starts_with('[') && !domain.ends_with(']') =>
            {
                reply(
                    code::MAILBOX_BUSY,
                    format_args!("4.1.2 <{rcpt}>: Recipient address rejected: Domain not found"),
                )
            }
            RelayPolicy::Open => reply(code::OK, "2.1.5 Ok"),
            RelayPolicy::Greylist => reply(
                code::LOCAL_ERROR,
                "4.7.1 Greylisted, please try again later",
            ),
            _ => deny(profile, rcpt),
        },
    }
}

/// Where an accepted recipient goes next, if this server hands it on: the
/// next hop's recipient, and whether it goes through the backup MX's
/// primary. An open relay forwards foreign domains; the percent hack and
/// source routes rewrite the address; a backup MX passes everything to its
/// primary, which only relays `user%foreign`. A sink and a catch-all keep
/// what they take.
fn route(
    profile: &Profile,
    arg: &str,
    local_names: &[String],
    may_relay: bool,
) -> Option<(String, bool)> {
    let arg = arg.trim();
    let rcpt = arg.trim_start_matches('<').trim_end_matches('>');
    match parse_rcpt(arg, local_names) {
        Rcpt::Foreign { .. } if may_relay || profile.relay == RelayPolicy::Open => {
            Some((rcpt.to_string(), false))
        }
        Rcpt::SourceRoute if profile.relay == RelayPolicy::SourceRoute => {
            rcpt.split_once(':').map(|(_, to)| (to.to_string(), false))
        }
        Rcpt::Local { local_part }
            if !local_part.starts_with('"')
                && ((profile.relay == RelayPolicy::PercentHack && !profile.catch_all)
                    || profile.relay == RelayPolicy::BackupMx) =>
        {
            let (user, domain) = local_part.rsplit_once('%')?;
            Some((
                format!("{user}@{domain}"),
                profile.relay == RelayPolicy::BackupMx,
            ))
        }
        _ => None,
    }
}

/// A reply line without its CRLF: `code text`.
fn reply(code: u16, text: impl std::fmt::Display) -> String {
    format!("{code} {text}")
}

fn deny(profile: &Profile, rcpt: &str) -> String {
    match profile.relay {
        RelayPolicy::Deny(code, text) => format!("{code} {}", text.replace("{rcpt}", rcpt)),
        RelayPolicy::Greylist => reply(
            code::LOCAL_ERROR,
            "4.7.1 Greylisted, please try again later",
        ),
        _ => reply(
            code::TRANSACTION_FAILED,
            format_args!("5.7.1 <{rcpt}>: Relay access denied"),
        ),
    }
}

/// The address a listener of this lab is bound to, for a profile index.
pub fn addr_for(base: std::net::Ipv4Addr, index: usize, port: u16) -> SocketAddr {
    let ip = u32::from(base).wrapping_add(index as u32);
    SocketAddr::from((std::net::Ipv4Addr::from(ip), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec![
            "mx.lab.example".into(),
            "lab.example".into(),
            "[127.0.0.11]".into(),
            "localhost".into(),
        ]
    }

    /// Who hands what on, like the real servers the profiles stand for.
    #[test]
    fn relaying_profiles_route_like_their_real_counterparts() {
        let p = |name| super::super::profile::find(name).unwrap();
        let n = names();
        let route = |name, rcpt| route(p(name), rcpt, &n, false);
        let foreign = "<me@proof.example>";
        let percent = "<me%proof.example@[127.0.0.11]>";
        assert_eq!(
            route("open-relay", foreign),
            Some(("me@proof.example".into(), false))
        );
        assert_eq!(route("accept-all", foreign), None, "a sink keeps it");
        assert_eq!(route("postfix-closed", foreign), None);
        assert_eq!(
            route("percent-hack", percent),
            Some(("me@proof.example".into(), false))
        );
        assert_eq!(route("catch-all-closed", percent), None, "kept local");
        assert_eq!(
            route("backup-mx", percent),
            Some(("me@proof.example".into(), true)),
            "through the primary"
        );
        assert_eq!(
            route("backup-mx", "<\"me@proof.example\"@lab.example>"),
            None
        );
        assert_eq!(
            route("source-route", "<@[127.0.0.11]:me@proof.example>"),
            Some(("me@proof.example".into(), false))
        );
    }

    #[test]
    fn parses_the_relay_tricks_like_an_mta() {
        let n = names();
        assert_eq!(
            parse_rcpt("<v@example.net>", &n),
            Rcpt::Foreign {
                domain: "example.net".into()
            }
        );
        assert_eq!(
            parse_rcpt("v@example.net", &n),
            Rcpt::Foreign {
                domain: "example.net".into()
            }
        );
        assert_eq!(
            parse_rcpt("<v%example.net@[127.0.0.11]>", &n),
            Rcpt::Local {
                local_part: "v%example.net".into()
            }
        );
        assert_eq!(
            parse_rcpt("<\"v@example.net\">", &n),
            Rcpt::Local {
                local_part: "\"v@example.net\"".into()
            }
        );
        assert_eq!(
            parse_rcpt("<\"v@example.net\"@mx.lab.example>", &n),
            Rcpt::Local {
                local_part: "\"v@example.net\"".into()
            }
        );
        assert_eq!(
            parse_rcpt("<@[127.0.0.11]:v@example.net>", &n),
            Rcpt::SourceRoute
        );
        assert_eq!(
            parse_rcpt("<example.net!v>", &n),
            Rcpt::Local {
                local_part: "example.net!v".into()
            }
        );
        assert_eq!(parse_rcpt("<v@example.net@>", &n), Rcpt::Syntax);
        assert_eq!(
            parse_rcpt("<v@example.net@[127.0.0.11]>", &n),
            Rcpt::Local {
                local_part: "v@example.net".into()
            }
        );
        assert_eq!(parse_rcpt("<v", &n), Rcpt::Syntax);
    }
}
