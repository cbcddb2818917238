//! Lab profiles: simulated SMTP servers as data. Each profile is one way a
//! real server behaves, with the verdict relayscan must reach against it.
//! A new behaviour is a new row.

use super::hostile::Hostile;
use crate::relay::Status;
use crate::smtp::code;
use std::time::Duration;

/// How the server greets a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// `220 {host} {text}`.
    Banner(&'static str),
    /// The banner, after a delay (a tarpit).
    Slow(Duration, &'static str),
    /// A refusal at the greeting (e.g. `554 …`), then 503 to everything until QUIT.
    Reject(u16, &'static str),
    /// The banner, then close the connection at once.
    CloseAfterBanner(&'static str),
    /// Say nothing; answer the first line like a web server does.
    Http,
    /// A raw non-SMTP line (e.g. an SSH banner).
    Raw(&'static str),
    /// A hostile server ([`Hostile`]): it plays the whole session its own
    /// way, and the profile's other fields are not used.
    Hostile(Hostile),
}

/// What the server does with a recipient in a foreign domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayPolicy {
    /// Relays anything whose domain could exist (refuses `.invalid` as a DNS-checking MTA would).
    Open,
    /// Accepts every recipient, even in domains that cannot exist.
    AcceptAll,
    /// Refuses with this reply; `{rcpt}` is replaced by the recipient.
    Deny(u16, &'static str),
    /// Answers 451 greylisting to every attempt.
    Greylist,
    /// Refuses direct relay, but relays `user%foreign@local` addresses.
    PercentHack,
    /// Refuses direct relay, but relays `@local:user@foreign` source routes.
    SourceRoute,
    /// A backup MX: refuses direct relay, takes any local part at its own
    /// names (with `catch_all`) and hands everything to its primary, which
    /// applies the percent hack: `user%foreign@self` goes on to `foreign`.
    BackupMx,
}

/// What the server says to MAIL FROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailPolicy {
    Accept,
    /// Refuse every sender with this reply until the client has authenticated
    /// (IIS with anonymous access cleared).
    Refuse(u16, &'static str),
}

/// What the server does about TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// No STARTTLS: `454 TLS not available`.
    None,
    /// STARTTLS offered, not required.
    Offered,
    /// STARTTLS offered, and MAIL refused with `530 5.7.0 Must issue a
    /// STARTTLS command first` until it is done (Postfix `smtpd_tls_security_level = encrypt`).
    Required,
    /// Like `Required`, but STARTTLS is not advertised in EHLO: only the
    /// `530` to MAIL says it is needed.
    RequiredUnadvertised,
    /// STARTTLS offered, but the `220` to it is followed by these extra
    /// plaintext bytes before the handshake (a STARTTLS response injection).
    Injecting(&'static str),
    /// Like `Required`, but the handshake after `220` always fails (a TLS
    /// alert, then the connection is closed): a server nobody can send to.
    RequiredBroken,
    /// TLS from the first byte (SMTPS, port 465): no STARTTLS.
    Implicit,
}

/// What the server does with AUTH (PLAIN and LOGIN against the lab account,
/// [`super::LAB_USER`] / [`super::LAB_PASSWORD`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPolicy {
    /// Every AUTH fails with 535.
    None,
    /// The lab account authenticates, and an authenticated client may relay.
    Check,
    /// Like `Check`, but a failed AUTH unlocks relaying too (a real bug class).
    RelayAfterAnyAttempt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Short name; also the first label of the server's host name.
    pub name: &'static str,
    pub description: &'static str,
    /// The verdict relayscan must reach.
    pub expected: Status,
    pub greeting: Greeting,
    /// Answer EHLO (false: `500` to EHLO, only HELO works).
    pub ehlo: bool,
    /// EHLO extension lines.
    pub extensions: &'static [&'static str],
    pub mail: MailPolicy,
    pub relay: RelayPolicy,
    /// Accept any local part at the server's own names (a catch-all domain),
    /// so `user%foreign@self` and `foreign!user` land in a local mailbox.
    pub catch_all: bool,
    /// Sessions served at once (per listener); one more is told
    /// `421 Too many connections` at the greeting, as many small MTAs do.
    pub max_sessions: Option<usize>,
    pub tls: TlsPolicy,
    /// EHLO extension lines after TLS (empty: the same as before, without STARTTLS).
    pub tls_extensions: &'static [&'static str],
    pub auth: AuthPolicy,
    /// The verdict when probed with the lab account's credentials (`--auth`),
    /// when it differs from `expected`.
    pub expected_with_auth: Option<Status>,
}

impl Profile {
    /// Hostile servers are in `relayscan lab`, the tests and `demo
    /// --hostile`, but not in the plain demo: their tricks cost time (the
    /// slowloris holds each probe to its host deadline).
    pub fn is_hostile(&self) -> bool {
        matches!(self.greeting, Greeting::Hostile(_))
    }

    /// The verdict relayscan must reach, with or without the lab's credentials.
    pub fn expected_verdict(&self, with_auth: bool) -> Status {
        match self.expected_with_auth {
            Some(status) if with_auth => status,
            _ => self.expected,
        }
    }

    /// Whether an address trick this server accepts is handed on to the
    /// foreign domain (percent hack, source route, a backup MX's primary):
    /// its canary arrives, where a catch-all keeps the trick local.
    pub fn forwards_tricks(&self) -> bool {
        match self.relay {
            RelayPolicy::SourceRoute | RelayPolicy::BackupMx => true,
            RelayPolicy::PercentHack => !self.catch_all,
            _ => false,
        }
    }

    /// The verdict with a catcher running (`demo`, `--confirm … --catch …`):
    /// a server that hands an accepted trick on is proven an open relay by
    /// its canary; every other server keeps its verdict (a catch-all stays
    /// `possible-relay`, its canary not delivered).
    pub fn expected_with_catcher(&self, with_auth: bool) -> Status {
        match self.expected_verdict(with_auth) {
            Status::PossibleRelay if self.forwards_tricks() => Status::OpenRelay,
            other => other,
        }
    }
}

const POSTFIX_EXT: &[&str] = &[
    "PIPELINING",
    "SIZE 10240000",
    "VRFY",
    "ETRN",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "SMTPUTF8",
    "CHUNKING",
];
const EXIM_EXT: &[&str] = &[
    "SIZE 52428800",
    "8BITMIME",
    "PIPELINING",
    "CHUNKING",
    "PRDR",
    "HELP",
];
const SENDMAIL_EXT: &[&str] = &[
    "ENHANCEDSTATUSCODES",
    "PIPELINING",
    "8BITMIME",
    "SIZE",
    "DSN",
    "ETRN",
    "DELIVERBY",
    "HELP",
];
const OPENSMTPD_EXT: &[&str] = &[
    "8BITMIME",
    "ENHANCEDSTATUSCODES",
    "SIZE 36700160",
    "DSN",
    "HELP",
];
const IIS_EXT: &[&str] = &[
    "TURN",
    "SIZE 2097152",
    "ETRN",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "8bitmime",
    "BINARYMIME",
    "CHUNKING",
    "VRFY",
    "OK",
];

const IIS_AUTH_EXT: &[&str] = &[
    "TURN",
    "SIZE 2097152",
    "ETRN",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "8bitmime",
    "BINARYMIME",
    "CHUNKING",
    "VRFY",
    "AUTH GSSAPI NTLM LOGIN",
    "AUTH=LOGIN",
    "OK",
];
const EXCHANGE_EXT: &[&str] = &[
    "SIZE 37748736",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "X-ANONYMOUSTLS",
    "AUTH NTLM",
    "X-EXPS GSSAPI NTLM",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "XRDST",
];
const EXCHANGE_TLS_EXT: &[&str] = &[
    "SIZE 37748736",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "AUTH NTLM LOGIN",
    "X-EXPS GSSAPI NTLM",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "XRDST",
];

const fn profile(
    name: &'static str,
    description: &'static str,
    expected: Status,
    greeting: Greeting,
    extensions: &'static [&'static str],
    relay: RelayPolicy,
) -> Profile {
    Profile {
        name,
        description,
        expected,
        greeting,
        ehlo: true,
        extensions,
        mail: MailPolicy::Accept,
        relay,
        catch_all: false,
        max_sessions: None,
        tls: TlsPolicy::None,
        tls_extensions: &[],
        auth: AuthPolicy::None,
        expected_with_auth: None,
    }
}

const fn hostile(
    name: &'static str,
    description: &'static str,
    expected: Status,
    hostile: Hostile,
) -> Profile {
    profile(
        name,
        description,
        expected,
        Greeting::Hostile(hostile),
        &[],
        RelayPolicy::Deny(code::TRANSACTION_FAILED, "unused"),
    )
}

/// Every profile the lab plays, in address order.
pub const PROFILES: &[Profile] = &[
    profile("open-relay", "relays for anyone (Postfix with smtpd_relay_restrictions = permit)", Status::OpenRelay,
        Greeting::Banner("ESMTP Postfix (Debian/GNU)"), POSTFIX_EXT, RelayPolicy::Open),
    profile("postfix-closed", "Postfix, reject_unauth_destination", Status::Closed,
        Greeting::Banner("ESMTP Postfix (Debian/GNU)"), POSTFIX_EXT,
        RelayPolicy::Deny(code::TRANSACTION_FAILED, "5.7.1 <{rcpt}>: Relay access denied")),
    profile("postfix-defer", "Postfix default since 3.x: defer_unauth_destination", Status::Closed,
        Greeting::Banner("ESMTP Postfix"), POSTFIX_EXT,
        RelayPolicy::Deny(code::TLS_NOT_AVAILABLE, "4.7.1 <{rcpt}>: Relay access denied")),
    profile("exim-closed", "Exim 4 default ACL", Status::Closed,
        Greeting::Banner("ESMTP Exim 4.96 Sun, 29 Nov 2026 03:00:00 +0000"), EXIM_EXT,
        RelayPolicy::Deny(code::MAILBOX_UNAVAILABLE, "relay not permitted")),
    profile("sendmail-closed", "Sendmail without relay rights in the access db", Status::Closed,
        Greeting::Banner("ESMTP Sendmail 8.17.1.9/8.17.1.9/Debian-2; Sun, 29 Nov 2026 03:00:00 GMT"), SENDMAIL_EXT,
        RelayPolicy::Deny(code::MAILBOX_UNAVAILABLE, "5.7.1 <{rcpt}>... Relaying denied")),
    profile("opensmtpd-closed", "OpenSMTPD with no match rule for foreign domains", Status::Closed,
        Greeting::Banner("ESMTP OpenSMTPD"), OPENSMTPD_EXT,
        RelayPolicy::Deny(code::MAILBOX_UNAVAILABLE, "Invalid recipient: <{rcpt}>")),
    profile("iis-closed", "Microsoft IIS 6 SMTP, relay restricted to a list", Status::Closed,
        Greeting::Banner("Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  Sun, 29 Nov 2026 03:00:00 +0000"), IIS_EXT,
        RelayPolicy::Deny(code::MAILBOX_UNAVAILABLE, "5.7.1 Unable to relay for {rcpt}")),
    Profile {
        max_sessions: Some(1),
        ..profile("one-at-a-time", "closed Postfix that serves one session per client at a time (421 to a second)", Status::Closed,
            Greeting::Banner("ESMTP Postfix"), POSTFIX_EXT,
            RelayPolicy::Deny(code::TRANSACTION_FAILED, "5.7.1 <{rcpt}>: Relay access denied"))
    },
    Profile {
        catch_all: true,
        ..profile("catch-all-closed", "OpenSMTPD-like: closed, but takes any local part, so address tricks land locally (unproven until a canary settles it)", Status::PossibleRelay,
            Greeting::Banner("ESMTP OpenSMTPD"), OPENSMTPD_EXT,
            RelayPolicy::Deny(code::MAILBOX_UNAVAILABLE, "Invalid recipient: <{rcpt}>"))
    },
    Profile {
        auth: AuthPolicy::Check,
        ..profile("auth-required", "relays only after AUTH", Status::AuthRequired,
            Greeting::Banner("ESMTP"), &["PIPELINING", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"],
            RelayPolicy::Deny(code::AUTH_REQUIRED, "5.7.0 Authentication required"))
    },
    Profile {
        tls: TlsPolicy::Required,
        ..profile("starttls-closed", "refuses mail until STARTTLS, then refuses relay (Postfix, TLS mandatory)", Status::Closed,
            Greeting::Banner("ESMTP Postfix"), &["PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES"],
            RelayPolicy::Deny(code::TRANSACTION_FAILED, "5.7.1 <{rcpt}>: Relay access denied"))
    },
    profile("greylist", "greylists every first attempt", Status::TempFail,
        Greeting::Banner("ESMTP"), POSTFIX_EXT, RelayPolicy::Greylist),
    profile("tarpit", "closed, but waits before its banner", Status::Closed,
        Greeting::Slow(Duration::from_millis(1000), "ESMTP"), POSTFIX_EXT,
        RelayPolicy::Deny(code::TRANSACTION_FAILED, "5.7.1 <{rcpt}>: Relay access denied")),
    profile("percent-hack", "refuses direct relay, relays user%foreign@local", Status::PossibleRelay,
        Greeting::Banner("ESMTP Sendmail 8.9.3"), SENDMAIL_EXT, RelayPolicy::PercentHack),
    profile("source-route", "refuses direct relay, relays @local:user@foreign", Status::PossibleRelay,
        Greeting::Banner("ESMTP Sendmail 8.9.3"), SENDMAIL_EXT, RelayPolicy::SourceRoute),
    profile("accept-all", "accepts every recipient, even in .invalid (a sink)", Status::OpenRelay,
        Greeting::Banner("ESMTP sink"), &["PIPELINING", "8BITMIME"], RelayPolicy::AcceptAll),
    profile("reject-greeting", "554 at the greeting", Status::Rejected,
        Greeting::Reject(code::TRANSACTION_FAILED, "5.7.1 Client host rejected: access denied"), &[], RelayPolicy::Deny(code::TRANSACTION_FAILED, "5.7.1 denied")),
    profile("not-smtp-http", "a web server: silent, then an HTTP error", Status::NotSmtp,
        Greeting::Http, &[], RelayPolicy::Deny(code::TRANSACTION_FAILED, "unused")),
    profile("not-smtp-ssh", "an SSH server", Status::NotSmtp,
        Greeting::Raw("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"), &[], RelayPolicy::Deny(code::TRANSACTION_FAILED, "unused")),
    profile("close-after-banner", "greets, then hangs up", Status::Inconclusive,
        Greeting::CloseAfterBanner("ESMTP"), &[], RelayPolicy::Deny(code::TRANSACTION_FAILED, "unused")),
    Profile {
        ehlo: false,
        ..profile("helo-only", "an old open relay that knows only HELO", Status::OpenRelay,
            Greeting::Banner("Sendmail 8.6.12 ready"), &[], RelayPolicy::Open)
    },
    Profile {
        mail: MailPolicy::Refuse(code::AUTH_REQUIRED, "5.7.1 Client was not authenticated"),
        auth: AuthPolicy::Check,
        ..profile("iis-auth", "Microsoft IIS 6 SMTP, anonymous access cleared, relay for authenticated clients", Status::AuthRequired,
            Greeting::Banner("Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  Sun, 29 Nov 2026 03:00:00 +0000"),
            IIS_AUTH_EXT, RelayPolicy::Deny(code::MAILBOX_UNAVAILABLE, "5.7.1 Unable to relay for {rcpt}"))
    },
    Profile {
        auth: AuthPolicy::Check,
        ..profile("iis-open", "Microsoft IIS 6 SMTP, relay restrictions \"All except the list below\" with an empty list", Status::OpenRelay,
            Greeting::Banner("Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  Sun, 29 Nov 2026 03:00:00 +0000"),
            IIS_AUTH_EXT, RelayPolicy::Open)
    },
    Profile {
        tls: TlsPolicy::Offered,
        tls_extensions: EXCHANGE_TLS_EXT,
        auth: AuthPolicy::Check,
        ..profile("exchange-closed", "Exchange 2016 receive connector, anonymous users may not relay", Status::Closed,
            Greeting::Banner("Microsoft ESMTP MAIL Service ready at Sun, 29 Nov 2026 03:00:00 +0000"), EXCHANGE_EXT,
            RelayPolicy::Deny(code::MAILBOX_UNAVAILABLE, "5.7.54 SMTP; Unable to relay recipient in non-accepted domain"))
    },
    Profile {
        tls: TlsPolicy::Required,
        ..profile("starttls-open", "refuses mail until STARTTLS, then relays for anyone", Status::OpenRelay,
            Greeting::Banner("ESMTP Postfix"), &["PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES"], RelayPolicy::Open)
    },
    Profile {
        tls: TlsPolicy::Implicit,
        tls_extensions: &["PIPELINING", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME"],
        auth: AuthPolicy::Check,
        ..profile("implicit-tls", "SMTPS (TLS from the first byte), relay only after AUTH", Status::Closed,
            Greeting::Banner("ESMTP Postfix"), &[],
            RelayPolicy::Deny(code::TRANSACTION_FAILED, "5.7.1 <{rcpt}>: Relay access denied"))
    },
    Profile {
        auth: AuthPolicy::Check,
        ..profile("plaintext-auth", "offers AUTH PLAIN LOGIN without any TLS", Status::Closed,
            Greeting::Banner("ESMTP Exim 4.96 Sun, 29 Nov 2026 03:00:00 +0000"), &["SIZE 52428800", "8BITMIME", "PIPELINING", "AUTH PLAIN LOGIN", "HELP"],
            RelayPolicy::Deny(code::MAILBOX_UNAVAILABLE, "relay not permitted"))
    },
    Profile {
        auth: AuthPolicy::RelayAfterAnyAttempt,
        expected_with_auth: Some(Status::OpenRelay),
        ..profile("relay-after-failed-auth", "relays for any client that tried AUTH, even with a wrong password", Status::AuthRequired,
            Greeting::Banner("ESMTP MailEnable Service, Version: 10.44-- ready at 11/29/26 03:00:00"), &["AUTH LOGIN", "SIZE 20480000", "HELP"],
            RelayPolicy::Deny(code::AUTH_REQUIRED, "5.7.0 Authentication required"))
    },
    Profile {
        tls: TlsPolicy::RequiredUnadvertised,
        ..profile("starttls-unadvertised", "demands STARTTLS with 530 without advertising it, then refuses relay", Status::Closed,
            Greeting::Banner("ESMTP Postfix"), &["PIPELINING", "ENHANCEDSTATUSCODES"],
            RelayPolicy::Deny(code::TRANSACTION_FAILED, "5.7.1 <{rcpt}>: Relay access denied"))
    },
    Profile {
        tls: TlsPolicy::RequiredBroken,
        ..profile("starttls-broken", "demands STARTTLS, but every handshake fails", Status::TlsRequired,
            Greeting::Banner("ESMTP OpenSMTPD"), &["8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 36700160", "DSN", "HELP"],
            RelayPolicy::Deny(code::MAILBOX_UNAVAILABLE, "Invalid recipient: <{rcpt}>"))
    },
    Profile {
        tls: TlsPolicy::Injecting("250 2.0.0 injected before the handshake\r\n"),
        ..profile("starttls-injection", "sends extra plaintext right after 220 Ready to start TLS", Status::Closed,
            Greeting::Banner("ESMTP Postfix"), &["PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES"],
            RelayPolicy::Deny(code::TRANSACTION_FAILED, "5.7.1 <{rcpt}>: Relay access denied"))
    },
    Profile {
        catch_all: true,
        ..profile("backup-mx", "a backup MX: takes any local part, hands it to a primary that applies the percent hack (relays user%foreign@self)", Status::PossibleRelay,
            Greeting::Banner("ESMTP Postfix (Debian/GNU)"), POSTFIX_EXT, RelayPolicy::BackupMx)
    },
    // Hostile servers (src/lab/hostile.rs): relayscan must reach a verdict,
    // within its deadline, with clean output.
    hostile("endless-line", "220 and then megabytes without a line end", Status::NotSmtp, Hostile::EndlessLine),
    hostile("endless-reply", "an EHLO reply whose 250- lines never end", Status::Inconclusive, Hostile::EndlessReply),
    hostile("slowloris", "one byte a second, forever", Status::Timeout, Hostile::Slowloris),
    hostile("binary-junk", "NUL bytes and invalid UTF-8 in every reply; closed", Status::Closed, Hostile::BinaryJunk),
    hostile("escape-codes", "terminal escapes (colour, cursor, title, OSC 8/52) in every reply; closed", Status::Closed, Hostile::EscapeCodes),
    hostile("formula-banner", "a spreadsheet formula for a banner (=, +, -, @, tab, CR in turn)", Status::NotSmtp, Hostile::FormulaBanner),
    hostile("bad-codes", "answers MAIL with 999, 2x0 or 25", Status::Inconclusive, Hostile::BadCodes),
    hostile("reset-mid-reply", "half an EHLO reply, then a TCP reset", Status::Inconclusive, Hostile::ResetMidReply),
    hostile("close-on-connect", "accepts, then closes at once", Status::Error, Hostile::CloseOnConnect),
    hostile("pipelining-liar", "answers before it is asked (a refused RCPT would read as accepted)", Status::Inconclusive, Hostile::PipeliningLiar),
    hostile("shutdown-421", "accepts MAIL, then 421 and hangs up", Status::TempFail, Hostile::Shutdown421),
    hostile("silent", "accepts, then never says a word", Status::Timeout, Hostile::Silent),
    hostile("tls-stall", "demands STARTTLS, then stalls the TLS handshake", Status::TlsRequired, Hostile::TlsStall),
    hostile("huge-ehlo", "480 EHLO extensions and 3000 AUTH mechanisms; closed", Status::Closed, Hostile::HugeEhlo),
    hostile("extra-reply", "closed, but one reply too many in a pipelined group (refusals would read as acceptances)", Status::Inconclusive, Hostile::ExtraReply),
    hostile("hang-up-after-one", "relays for MAIL FROM:<>, hangs up without a 421 after each test", Status::OpenRelay, Hostile::HangUpAfterOne),
    hostile("slow-quit", "closed; answers QUIT after 1.9 s (counts the connections it holds at once)", Status::Closed, Hostile::SlowQuit),
];

/// Look a profile up by name.
pub fn find(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_host_labels() {
        for (i, p) in PROFILES.iter().enumerate() {
            assert!(
                p.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                p.name
            );
            assert!(
                PROFILES[i + 1..].iter().all(|q| q.name != p.name),
                "duplicate {}",
                p.name
            );
        }
    }

    #[test]
    fn every_verdict_that_a_server_can_cause_is_covered() {
        // Every verdict but `refused`, which needs no server at all, and
        // `excluded`, given to addresses that are never dialled.
        for status in Status::ALL
            .into_iter()
            .filter(|s| !matches!(s, Status::Refused | Status::Excluded))
        {
            assert!(
                PROFILES.iter().any(|p| p.expected == status),
                "no profile for {status}"
            );
        }
    }
}
