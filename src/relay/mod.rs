//! Relay testing in three layers, imported one way:
//!
//! - [`model`]: the test catalogue, placeholders, facts, and the one rule
//!   for what a test showed. Imports nothing else from `relay`.
//! - [`probe`]: I/O only. Runs the catalogue against one target and records
//!   facts; a pure policy module (`probe::policy`) tells it what to do next.
//! - [`judge`]: pure. Turns facts into a verdict, an audit and findings.
//!
//! `probe` and `judge` never import each other; both use the model.

pub mod judge;
pub mod model;
pub mod probe;

// The paths the rest of the crate uses.
pub use judge::{audit, classify, fingerprint, remediation, vantage};
pub use model::{address, catalogue, facts, reply_class};

/// AUTH: the data (model) and what it means (judge), under one name.
pub mod auth {
    pub use super::judge::auth::*;
    pub use super::model::auth::*;
    pub use super::model::facts::{AuthAttempt, AuthFacts, PasswordFacts};
}

pub use judge::audit::{audit, Audit, Finding, FindingId, Severity};
pub use judge::classify::{classify, Confidence, Status, Verdict};
pub use judge::cut::Cut;
pub use model::catalogue::{Kind, RelayTest, CATALOGUE};
pub use model::facts::{Connect, Facts, Step, TestFacts};
pub use model::outcome::{Failure, Outcome};
pub use model::reply_class::{classify_reply, ReplyClass};
pub use probe::{probe, probe_until, ProbeConfig, Target};
