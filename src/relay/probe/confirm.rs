//! The confirmation test (`check --confirm ADDRESS`): the only place
//! relayscan sends a message, and only when the user asks. The paths of the
//! first accepted relay test are run once more with the user's own address
//! as the recipient, and a short message carrying a token goes through DATA.
//! A 250 after the final dot raises the verdict's confidence to `data`; the
//! token, in the subject and headers, is what to look for in that mailbox.

use super::{random_token, Probe, Session};
use crate::relay::model::catalogue::{Kind, Placeholders};
use crate::relay::model::facts::Confirmation;
use crate::relay::model::outcome::Outcome;
use crate::smtp::{Command, Reply};
use tokio::time::Instant;

impl Probe<'_> {
    pub(super) async fn run_confirmation(
        &mut self,
        current: &mut Option<Session>,
        placeholders: &Placeholders,
    ) {
        let Some(address) = self.cfg.confirm.clone() else {
            return;
        };
        let Some((local, domain)) = address.rsplit_once('@') else {
            return;
        };
        // The first accepted direct test, else the first accepted trick.
        let accepted = |kind: Kind| {
            self.facts
                .tests
                .iter()
                .find(|t| t.kind == kind && Outcome::of(t) == Outcome::Accepted)
        };
        let Some(test) = accepted(Kind::Direct).or_else(|| accepted(Kind::Trick)) else {
            return;
        };
        let Some(relay_test) = crate::relay::model::catalogue::find(test.id) else {
            return;
        };
        let mut ours = placeholders.clone();
        ours.recipient = local.to_string();
        ours.foreign_domain = domain.to_string();
        let Ok(rendered) = relay_test.render(&ours) else {
            return;
        };
        let token = random_token();
        let mut facts = Confirmation {
            test: relay_test.id,
            mail_from: rendered.mail_from.to_string(),
            rcpt_to: rendered.rcpt_to.to_string(),
            token: token.clone(),
            replies: Vec::new(),
            accepted: false,
            error: None,
            delivery: None,
        };
        if Instant::now() >= self.deadline {
            facts.error = Some("host deadline reached".into());
            self.facts.confirmation = Some(facts);
            return;
        }
        // A fresh connection: nothing of the tests' session state carries over.
        self.close(current, true).await;
        let session = match self.ensure_session(current).await {
            Ok(session) => session,
            Err(why) => {
                facts.error = Some(why.to_string());
                self.facts.confirmation = Some(facts);
                return;
            }
        };
        let message = format!(
            "From: <{from}>\nTo: <{address}>\nSubject: relayscan relay confirmation {token}\n\
             Message-ID: <{token}@{ehlo}>\nX-Relayscan-Token: {token}\n\n\
             This message was sent by relayscan to confirm that {target} relays mail\n\
             for strangers (test {id}: MAIL FROM:{from} RCPT TO:{rcpt}).\n\
             The scanner's operator asked for it with --confirm {address}; delete it at will.\n",
            from = rendered.mail_from.trim_matches(|c| c == '<' || c == '>'),
            ehlo = self.cfg.ehlo,
            target = self.target.addr,
            id = relay_test.id,
            rcpt = rendered.rcpt_to,
        );
        let steps = [
            Command::MailFrom(rendered.mail_from.clone()),
            Command::RcptTo(rendered.rcpt_to.clone()),
            Command::Data,
        ];
        for (i, command) in steps.iter().enumerate() {
            match session.conn.command(command).await {
                Ok(reply) => {
                    let expected = if i == 2 {
                        reply.code == 354
                    } else {
                        reply.is_positive()
                    };
                    facts.replies.push(reply);
                    if !expected {
                        facts.error = Some(format!("{} refused", command.verb()));
                        self.facts.confirmation = Some(facts);
                        return;
                    }
                }
                Err(e) => {
                    facts.error = Some(e.to_string());
                    self.facts.confirmation = Some(facts);
                    return;
                }
            }
        }
        if let Some(canaries) = &self.cfg.canaries {
            canaries.expect(&token);
        }
        let sent = session.conn.send_message(&message).await;
        match sent {
            Err(e) => facts.error = Some(e.to_string()),
            Ok(()) => match session.conn.read_reply().await {
                Ok(reply) => {
                    facts.accepted = reply.code == 250;
                    if !facts.accepted {
                        facts.error = Some(format!("message refused: {}", Reply::one_line(&reply)));
                    }
                    facts.replies.push(reply);
                }
                Err(e) => facts.error = Some(e.to_string()),
            },
        }
        self.facts.confirmation = Some(facts);
    }
}
