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

/// Whether the MTAs are installed (`tests/mta/install.sh`). When they are
/// not, `test` says why and skips, except under `RELAYSCAN_REAL_MTA=1`,
/// where it fails.
pub fn installed_or_skip(test: &str) -> bool {
    let installed =
        Path::new("/usr/sbin/postfix").exists() && Path::new("/opt/relayscan-mta").exists();
    if !installed {
        let why = "real MTAs not installed: run `bash tests/mta/install.sh` (root, Debian) or `bash .ci/run`";
        assert!(!required(), "RELAYSCAN_REAL_MTA=1 but {why}");
        println!("{test}: skipped: {why}");
    }
    installed
}

/// Start every instance with `tests/mta/up.sh` on `state` (which the caller
/// stops with down.sh); a failure shows up.sh's output.
pub fn up(state: &Path) {
    let out = std::process::Command::new("bash")
        .arg(mta_script("up.sh"))
        .arg(state)
        .env("RELAYSCAN_MTA_INSTALL", "0")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "tests/mta/up.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rows of a tab-separated file with a header line, each `width` wide.
pub fn tsv(path: &Path, width: usize) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<String> = l.split('\t').map(String::from).collect();
            assert_eq!(f.len(), width, "bad line in {}: {l:?}", path.display());
            f
        })
        .collect()
}
