//! The `--auth` tests (see [`crate::relay::auth`]): A2 (a wrong password,
//! then a relay attempt: must be refused) and A1 (the right password, then
//! the same attempt), each on a fresh connection that redoes STARTTLS. The
//! real password goes only where [`PasswordRules::clearance`] allows it, asked
//! on the very connection that would carry it.
//!
//! [`PasswordRules::clearance`]: crate::relay::auth::PasswordRules::clearance

use super::{exchange, random_token, Probe, Session};
use crate::relay::model::auth::{
    checked_for, Clearance, AUTHENTICATED_RELAY, RELAY_AFTER_FAILED_AUTH,
};
use crate::relay::model::catalogue::{Kind, Placeholders};
use crate::relay::model::facts::{AuthAttempt, AuthFacts, PasswordFacts, TestFacts};
use crate::smtp::sasl::{self, Mechanism, Password};
use tokio::time::Instant;

impl Probe<'_> {
    pub(super) async fn run_auth_tests(
        &mut self,
        current: &mut Option<Session>,
        placeholders: &Placeholders,
    ) {
        let Some(creds) = self.cfg.auth.clone() else {
            return;
        };
        let mut facts = AuthFacts {
            user: creds.user.clone(),
            ..AuthFacts::default()
        };
        let mut wrong = Password::new(format!("relayscan-wrong-{}", random_token()));
        if wrong.same_as(&creds.password) {
            wrong = Password::new(format!("{}-not", random_token()));
        }
        // A fresh connection for each attempt: an authenticated (or failed)
        // session state must not leak into the other test.
        self.close(current, true).await;
        for (password, right) in [(&wrong, false), (&creds.password, true)] {
            let test = if right {
                &AUTHENTICATED_RELAY
            } else {
                &RELAY_AFTER_FAILED_AUTH
            };
            if Instant::now() >= self.deadline {
                facts
                    .skipped
                    .push(format!("{}: host deadline reached", test.id));
                break;
            }
            let Ok(rendered) = test.render(placeholders) else {
                continue;
            };
            let session = match self.ensure_session(current).await {
                Ok(s) => s,
                Err(why) => {
                    facts.skipped.push(format!("{}: {why}", test.id));
                    break;
                }
            };
            let Some(mechanism) = Mechanism::choose(&session.capabilities.auth) else {
                let why = if session.capabilities.auth.is_empty() {
                    "the server offers no AUTH".to_string()
                } else {
                    format!(
                        "the server offers no AUTH PLAIN or LOGIN (only {})",
                        session.capabilities.auth.join(" ")
                    )
                };
                facts.skipped.push(format!("A1, A2: {why}"));
                break;
            };
            let peer = session.peer.as_ref().filter(|_| session.encrypted);
            let clearance = self.cfg.auth_rules.clearance(
                self.target.name.as_deref(),
                self.target.addr.ip(),
                peer,
            );
            if right {
                let checked_for = checked_for(self.target.name.as_deref(), self.target.addr.ip());
                match &clearance {
                    Clearance::Refused(why) => {
                        facts.password = Some(PasswordFacts {
                            sent: false,
                            rule: None,
                            checked_for,
                            waived: None,
                        });
                        facts.authenticated_relay =
                            Some(TestFacts::skipped(test.id, Kind::Auth, why.clone()));
                        self.close(current, true).await;
                        break;
                    }
                    Clearance::Allowed { rule, waived } => {
                        facts.password = Some(PasswordFacts {
                            sent: true,
                            rule: Some(rule.as_str()),
                            checked_for,
                            waived: waived.clone(),
                        });
                    }
                }
            }
            // A2 carries the user's name only where the password could go too.
            let (user, user_name) = match clearance {
                Clearance::Allowed { .. } => (creds.user.clone(), "given"),
                Clearance::Refused(_) => (format!("relayscan-{}", random_token()), "random"),
            };
            let encrypted = session.encrypted;
            let outcome = sasl::authenticate(&mut session.conn, mechanism, &user, password).await;
            let attempt = AuthAttempt {
                mechanism: mechanism.as_str(),
                user_name,
                encrypted,
                reply: outcome.as_ref().ok().cloned(),
                error: outcome.as_ref().err().map(ToString::to_string),
            };
            let alive = outcome.is_ok();
            let authenticated = attempt.succeeded();
            if right {
                facts.login = Some(attempt);
            } else {
                facts.wrong_password = Some(attempt);
            }
            if !alive {
                self.close(current, false).await;
                continue;
            }
            if right && !authenticated {
                facts
                    .skipped
                    .push("A1: AUTH with the given password failed".into());
                self.close(current, true).await;
                break;
            }
            let Some(session) = current.as_mut() else {
                continue;
            };
            // After a failed AUTH the relay attempt is the point of the test.
            let Some(result) = exchange(session, &[&rendered], false).await.pop() else {
                continue;
            };
            if right {
                facts.authenticated_relay = Some(result);
            } else {
                facts.after_failed_auth = Some(result);
            }
            self.close(current, true).await;
        }
        self.facts.auth = Some(facts);
    }
}
