//! Relay testing: the test catalogue, the probe that runs it against one
//! target and records facts, and the pure classifier that turns facts into a
//! verdict.

pub mod address;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod classify;
pub mod facts;
pub mod fingerprint;
pub mod probe;
pub mod remediation;
pub mod reply_class;
pub mod vantage;

pub use audit::{audit, Audit, Finding, FindingId, Severity};
pub use catalogue::{Kind, RelayTest, CATALOGUE};
pub use classify::{classify, Confidence, Outcome, Status, Verdict};
pub use facts::{Connect, Facts, Step, TestFacts};
pub use probe::{probe, probe_until, ProbeConfig, Target};
pub use reply_class::{classify_reply, ReplyClass};
