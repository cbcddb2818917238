//! SMTP AUTH (RFC 4954) with the two SASL mechanisms a user name and password
//! can be tested with directly: PLAIN (RFC 4616) and LOGIN.
//!
//! The password lives in [`Password`], whose `Debug` says `<redacted>` and
//! which has no `Display` and no `Serialize`: it can reach the wire (base64,
//! through [`Command::to_wire`]) and nothing else. Transcripts show
//! `AUTH PLAIN <redacted>`.

use super::{Command, Connection, Reply, SessionError};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::fmt;

/// A password that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The secret itself, for the SASL encoding only.
    fn expose(&self) -> &str {
        &self.0
    }

    /// True when two passwords are the same (used to make sure the
    /// deliberately wrong password is indeed wrong).
    pub fn same_as(&self, other: &Password) -> bool {
        self.0 == other.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user name and password for `--auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: Password,
}

/// The mechanisms relayscan can authenticate with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// PLAIN when offered (one round trip), else LOGIN.
    pub fn choose(advertised: &[String]) -> Option<Mechanism> {
        if advertised.iter().any(|m| m == "PLAIN") {
            Some(Mechanism::Plain)
        } else if advertised.iter().any(|m| m == "LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// The `AUTH PLAIN` initial response: base64 of `\0user\0password`.
fn plain_response(user: &str, password: &Password) -> String {
    BASE64.encode(format!("\0{user}\0{}", password.expose()))
}

/// Authenticate and return the server's final reply (`235` on success,
/// `535` for bad credentials, …). A server that keeps challenging beyond
/// what the mechanism needs is answered `*` (cancel, RFC 4954 §4).
pub async fn authenticate(
    conn: &mut Connection,
    mechanism: Mechanism,
    user: &str,
    password: &Password,
) -> Result<Reply, SessionError> {
    let mut answers: Vec<String> = match mechanism {
        Mechanism::Plain => Vec::new(),
        Mechanism::Login => vec![
            BASE64.encode(password.expose()),
            BASE64.encode(user.as_bytes()),
        ],
    };
    let first = Command::Auth {
        mechanism: mechanism.as_str().into(),
        initial_response: match mechanism {
            Mechanism::Plain => Some(plain_response(user, password)),
            Mechanism::Login => None,
        },
    };
    let mut reply = conn.command(&first).await?;
    // Each 334 asks for the next answer; at most three rounds, then cancel.
    for _ in 0..3 {
        if reply.code != super::code::AUTH_CHALLENGE {
            return Ok(reply);
        }
        let answer = answers.pop().unwrap_or_else(|| "*".into());
        reply = conn.command(&Command::AuthResponse(answer)).await?;
    }
    if reply.code == super::code::AUTH_CHALLENGE {
        reply = conn.command(&Command::AuthResponse("*".into())).await?;
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::Limits;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::time::{Duration, Instant};

    #[test]
    fn password_never_prints() {
        let c = Credentials {
            user: "relayuser".into(),
            password: Password::new("hunter2"),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("relayuser"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn plain_encoding() {
        // RFC 4616 §4's example, without an authorization identity.
        assert_eq!(
            plain_response("tim", &Password::new("tanstaaftanstaaf")),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
    }

    #[test]
    fn mechanism_choice() {
        let m =
            |v: &[&str]| Mechanism::choose(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(m(&["GSSAPI", "NTLM", "LOGIN"]), Some(Mechanism::Login));
        assert_eq!(m(&["LOGIN", "PLAIN"]), Some(Mechanism::Plain));
        assert_eq!(m(&["GSSAPI", "NTLM"]), None);
    }

    /// AUTH LOGIN against a scripted server: the server sees the credentials,
    /// the transcript does not.
    #[tokio::test]
    async fn login_exchange_is_redacted_in_the_transcript() {
        let (client, server) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let (r, mut w) = tokio::io::split(server);
            let mut lines = BufReader::new(r).lines();
            let mut seen = Vec::new();
            for reply in ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 2.7.0 ok"] {
                seen.push(lines.next_line().await.unwrap().unwrap());
                w.write_all(format!("{reply}\r\n").as_bytes())
                    .await
                    .unwrap();
            }
            seen
        });
        let limits = Limits {
            transcript_entries: 100,
            ..Limits::default()
        };
        let mut conn = Connection::new(
            Box::new(client),
            limits,
            Instant::now() + Duration::from_secs(10),
        );
        let reply = authenticate(&mut conn, Mechanism::Login, "user", &Password::new("pw"))
            .await
            .unwrap();
        assert_eq!(reply.code, super::super::code::AUTH_SUCCEEDED);
        let seen = server.await.unwrap();
        assert_eq!(seen, vec!["AUTH LOGIN", "dXNlcg==", "cHc="]);
        let transcript: Vec<String> = conn
            .take_transcript()
            .into_iter()
            .filter(|e| e.dir == 'C')
            .map(|e| e.line)
            .collect();
        assert_eq!(transcript, vec!["AUTH LOGIN", "<redacted>", "<redacted>"]);
    }
}
