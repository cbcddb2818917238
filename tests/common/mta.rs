//! Shared by the real-MTA tests (tests/real_mta*.rs): where the lab's
//! scripts are, and whether the MTAs are required (CI) or may be skipped.

use std::path::{Path, PathBuf};

/// A script of the real-MTA lab, tests/mta/NAME.
pub fn mta_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mta")
        .join(name)
}

/// `RELAYSCAN_REAL_MTA=1` (CI): a missing MTA fails the test instead of
/// skipping it.
pub fn required() -> bool {
    std::env::var("RELAYSCAN_REAL_MTA").is_ok_and(|v| v == "1")
}
