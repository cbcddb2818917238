//! Any bytes as an EHLO reply: no panic, capped, only plain tokens kept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relayscan::smtp::reply::decode;
use relayscan::smtp::{Capabilities, Reply};

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').map(decode).collect();
    let caps = Capabilities::from_reply(&Reply { code: 250, lines });
    assert!(caps.keywords.len() <= 64 && caps.auth.len() <= 32);
    for word in caps.keywords.iter().chain(caps.auth.iter()) {
        assert!(!word.is_empty());
        assert!(word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
});
