//! relayscan: find SMTP servers that relay mail for strangers.
//!
//! The data flow runs one way: targets → plan → engine → probe →
//! classify → record → output. The probe records facts; a pure classifier
//! decides; one writer task owns the output.

#![warn(unreachable_pub)]

pub mod catch;
mod cli;
mod commands;
mod config;
pub mod dns;
pub mod engine;
pub mod interrupt;
pub mod lab;
pub mod output;
pub mod relay;
pub mod smtp;
pub mod targets;

pub use commands::dispatch::run;
