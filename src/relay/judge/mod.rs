//! The judge: pure functions from a probe's facts to the verdict, the audit
//! and its findings (with remediation), the software fingerprint and the
//! vantage point; and the verdicts of probes cut short. No I/O, no clock.
//! It reads the model and never the probe.

pub mod audit;
pub mod auth;
pub mod classify;
pub mod cut;
pub mod finding;
pub mod fingerprint;
pub mod remediation;
pub mod vantage;
