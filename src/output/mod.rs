//! Output: result records, the single writer task, and text sanitising.

pub mod checkpoint;
pub mod diff;
pub mod html;
pub mod lines;
pub mod progress;
pub mod record;
pub mod report;
pub mod results;
pub mod sanitize;
pub mod schema;
pub mod style;
pub mod writer;

pub use record::{Record, CSV_HEADER};
pub use writer::{Event, Format, Summary, Writer};
