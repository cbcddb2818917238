//! Any bytes, split into lines as the connection does, through the reply
//! parser: no panic, and every reply it completes is well formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relayscan::smtp::reply::decode;
use relayscan::smtp::ReplyBuilder;

fuzz_target!(|data: &[u8]| {
    let mut builder = ReplyBuilder::new(64 * 1024, 512);
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match builder.push(&decode(line)) {
            Ok(Some(reply)) => {
                assert!((200..=599).contains(&reply.code));
                assert!(!reply.lines.is_empty() && reply.lines.len() <= 512);
                builder = ReplyBuilder::new(64 * 1024, 512);
            }
            Ok(None) => {}
            Err(_) => builder = ReplyBuilder::new(64 * 1024, 512),
        }
    }
});
