//! Any bytes from a server: the terminal, CSV and JSON Lines forms carry
//! nothing a terminal or a spreadsheet would act on, and JSON keeps the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relayscan::output::sanitize::{csv_cell, json_line, terminal};
use relayscan::smtp::reply::decode;

fuzz_target!(|data: &[u8]| {
    let text = decode(data);
    assert!(!terminal(&text).chars().any(char::is_control));
    let cell = csv_cell(&text);
    assert!(!cell.chars().any(char::is_control));
    assert!(!cell.starts_with(['=', '+', '-', '@']));
    let value = serde_json::json!({ "text": text });
    let line = json_line(&value);
    assert!(!line.chars().any(char::is_control));
    let back: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
    assert_eq!(back, value);
});
