//! The model: what a relay test is (the catalogue and its placeholders),
//! what a probe records (facts), and the one rule for what a test showed
//! (`Outcome`, `Failure`, the reply classes). Data and pure rules only; it
//! imports nothing else from `relay`.

pub mod address;
pub mod auth;
pub mod catalogue;
pub mod facts;
pub mod failure;
pub mod outcome;
pub mod phrases;
pub mod reply_class;
