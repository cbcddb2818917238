//! The SMTP client side: replies, commands, EHLO capabilities, the connection.

pub mod budget;
pub mod code;
pub mod command;
pub mod connection;
pub mod dial;
pub mod ehlo;
pub mod hostname;
pub mod pacer;
pub mod reply;
pub mod sasl;
pub mod step_timer;
pub mod tls;

pub use budget::{RepliesCut, ReplyBudget};
pub use command::Command;
pub use connection::{Connection, Limits, SessionError, Stream, TranscriptEntry};
pub use ehlo::Capabilities;
pub use reply::{Reply, ReplyBuilder, ReplyError};
