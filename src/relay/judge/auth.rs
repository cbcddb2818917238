//! What the authenticated relay tests (`--auth`) mean for the verdict.

use crate::relay::model::facts::{Facts, TestFacts};
use crate::relay::model::outcome::Outcome;

/// A2 accepted: the server relays after a failed AUTH.
pub fn relay_after_failed_auth(facts: &Facts) -> Option<&TestFacts> {
    facts
        .auth
        .as_ref()
        .and_then(|a| a.after_failed_auth.as_ref())
        .filter(|t| Outcome::of(t) == Outcome::Accepted)
}

/// The AUTH mechanisms advertised before TLS and, when TLS was used, after it.
pub fn mechanisms(facts: &Facts) -> (Vec<String>, Option<Vec<String>>) {
    let before = facts.greeting.capabilities.auth.clone();
    let after = facts
        .tls
        .as_ref()
        .and_then(|t| t.capabilities.as_ref())
        .map(|c| c.auth.clone());
    (before, after)
}
