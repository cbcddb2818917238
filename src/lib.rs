//! relayscan: find SMTP servers that relay mail for strangers.
//!
//! The data flow runs one way (DESIGN §2): targets → plan → engine → probe →
//! classify → record → output. The probe records facts; a pure classifier
//! decides; one writer task owns the output.

pub mod cli;
pub mod commands;
pub mod config;
pub mod dns;
pub mod engine;
pub mod interrupt;
pub mod lab;
pub mod output;
pub mod relay;
pub mod smtp;
pub mod targets;
