//! Ground truth: relayscan against real Postfix, Exim and OpenSMTPD from
//! Debian, each on its own loopback address (tests/mta/ starts them). Every
//! instance must get its expected verdict, and a message sent through each
//! open one by relayscan's own confirmation test (`check --confirm`) must
//! reach the loopback sink: proof that "open" means relayed.
//!
//! Without the MTAs installed these tests print how to enable them and pass;
//! with RELAYSCAN_REAL_MTA=1 (set by .ci/run) they must run.

mod common;

use common::mta::{installed_or_skip, mta_script, tsv, up};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Instance {
    name: String,
    addr: String,
    port: String,
    software: String,
    version: String,
    policy: String,
    expected: String,
    sink_relays: bool,
}

/// The running instances; stops them (and removes the state) when dropped.
struct Mtas {
    state: PathBuf,
    instances: Vec<Instance>,
}

impl Drop for Mtas {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(mta_script("down.sh"))
            .arg(&self.state)
            .status();
    }
}

/// Start the MTAs, or explain why not: `None` means skip (never in CI).
fn start() -> Option<Mtas> {
    if !installed_or_skip("real_mta") {
        return None;
    }
    // The MTAs drop root, so the state directory must be world-traversable.
    let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mta-{}", std::process::id()));
    let mut mtas = Mtas {
        state: state.clone(),
        instances: Vec::new(),
    };
    up(&state);
    mtas.instances = tsv(&state.join("instances.tsv"), 9)
        .into_iter()
        .map(|f| Instance {
            name: f[0].clone(),
            addr: f[1].clone(),
            port: f[2].clone(),
            software: f[3].clone(),
            version: f[4].clone(),
            policy: f[5].clone(),
            expected: f[6].clone(),
            sink_relays: f[7] == "yes",
        })
        .collect();
    Some(mtas)
}

/// Files in `dir` that contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(needle)))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn real_mtas_get_their_expected_verdicts_and_open_ones_really_relay() {
    let Some(mtas) = start() else { return };
    assert!(
        mtas.instances.len() >= 12,
        "expected Postfix, Exim and OpenSMTPD instances, the backup-MX pair and the catch-alls"
    );

    let mut table = vec![
        "| instance | software | policy | expected | relayscan | accepted tests | time to verdict |".to_string(),
        "|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut wrong = Vec::new();
    for i in &mtas.instances {
        let target = format!("{}:{}", i.addr, i.port);
        let started = Instant::now();
        let out = common::relayscan()
            .args([
                "check",
                &target,
                "--json",
                "--ehlo",
                "scanner.relayscan.example",
            ])
            .output()
            .expect("relayscan runs");
        let elapsed = started.elapsed();
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: no JSON ({e}): {}",
                i.name,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let verdict = result["verdict"].as_str().unwrap_or("?").to_string();
        let accepted: Vec<&str> = result["accepted"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let expected_exit = if verdict == "open-relay" || verdict == "possible-relay" {
            1
        } else {
            0
        };
        assert_eq!(
            out.status.code(),
            Some(expected_exit),
            "{}: exit code",
            i.name
        );
        let expected = i.expected.as_str();
        if verdict != expected {
            wrong.push(format!(
                "{}: expected {expected}, got {verdict}: {}",
                i.name, result["reason"]
            ));
        }
        table.push(format!(
            "| {} | {} {} | {} | {} | {} | {} | {:.2} s |",
            i.name,
            i.software,
            i.version,
            i.policy,
            expected,
            verdict,
            if accepted.is_empty() {
                "—".to_string()
            } else {
                accepted.join(" ")
            },
            elapsed.as_secs_f64()
        ));
    }
    eprintln!("\n{}\n", table.join("\n"));
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));

    // Proof that open means relayed: relayscan's own confirmation test
    // (`check --confirm`) sends one message through each open relay, to a
    // foreign domain, and it must arrive at the loopback sink. So must the
    // one through the backup MX's accepted trick (via the primary), although
    // RCPT replies alone cannot prove it.
    let sink = mtas.state.join("sink");
    for i in mtas.instances.iter().filter(|i| i.sink_relays) {
        let target = format!("{}:{}", i.addr, i.port);
        let out = common::relayscan()
            .args([
                "check",
                &target,
                "--json",
                "--confirm",
                "victim@example.com",
            ])
            .args(["--ehlo", "scanner.relayscan.example"])
            .output()
            .expect("relayscan runs");
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(
            result["confirmation"]["accepted"], true,
            "{}: {:#}",
            i.name, result["confirmation"]
        );
        if i.expected == "open-relay" {
            assert_eq!(
                result["confidence"], "data",
                "{}: {:#}",
                i.name, result["confirmation"]
            );
        }
        let token = result["confirmation"]["token"]
            .as_str()
            .expect("a token")
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        while files_containing(&sink, &token) == 0 {
            assert!(
                Instant::now() < deadline,
                "{}: the confirmation message never reached the sink {}",
                i.name,
                sink.display()
            );
            let _ = Command::new("bash")
                .arg(mta_script("flush.sh"))
                .arg(&mtas.state)
                .output();
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // Nothing but the confirmations reached anyone: the scans sent no DATA.
    let total: usize = std::fs::read_dir(&sink).map(|d| d.count()).unwrap_or(0);
    let proofs = mtas.instances.iter().filter(|i| i.sink_relays).count();
    assert_eq!(total, proofs, "the sink holds a message the scans sent");
    assert_eq!(
        files_containing(&mtas.state.join("mailbox"), "relayscan"),
        0,
        "relayscan delivered a message locally"
    );
}
