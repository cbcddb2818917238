//! Any text as a target: no panic, and what it prints is what it parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relayscan::targets::Spec;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = String::from_utf8_lossy(data).parse::<Spec>() {
        assert_ne!(spec.len(), 0);
        let again: Spec = spec.to_string().parse().expect("printed spec parses");
        assert_eq!(again, spec);
    }
});
