//! Picking up an interrupted scan: what the output file already holds past
//! the last checkpoint.

use super::checkpoint::Checkpoint;
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// What resuming found in the output file.
#[derive(Debug, Default)]
pub struct Tail {
    /// Targets written after the checkpoint was taken: not probed again.
    pub addrs: HashSet<SocketAddr>,
    /// Bytes of a record cut short by the crash, removed from the end.
    pub torn_bytes: u64,
}

/// Check the output file against the checkpoint, drop a torn last line (a
/// record the crash cut in half: it is probed again), and read the targets
/// of the records written after the checkpoint.
pub fn read_tail(output: &Path, cp: &Checkpoint) -> anyhow::Result<Tail> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(output)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open the output file {} to resume: {e}",
                output.display()
            )
        })?;
    let len = file.metadata()?.len();
    if len < cp.output_bytes {
        anyhow::bail!(
            "{} is shorter ({len} bytes) than when the checkpoint was taken ({} bytes): it was changed, refusing to resume",
            output.display(),
            cp.output_bytes
        );
    }
    file.seek(SeekFrom::Start(cp.output_bytes))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut result = Tail {
        torn_bytes: (tail.len() - complete) as u64,
        ..Tail::default()
    };
    if result.torn_bytes > 0 {
        file.set_len(cp.output_bytes + complete as u64)?;
    }
    for line in String::from_utf8_lossy(&tail[..complete]).lines() {
        if let Some(addr) = record_addr(line) {
            result.addrs.insert(addr);
        }
    }
    Ok(result)
}

/// The target of one CSV or JSON Lines record line.
fn record_addr(line: &str) -> Option<SocketAddr> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v["type"] != "result" {
            return None;
        }
        let ip: IpAddr = v["ip"].as_str()?.parse().ok()?;
        let port = u16::try_from(v["port"].as_u64()?).ok()?;
        return Some(SocketAddr::new(ip, port));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    let row = rdr.records().next()?.ok()?;
    let ip: IpAddr = row.get(0)?.parse().ok()?;
    let port: u16 = row.get(1)?.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(output_bytes: u64) -> Checkpoint {
        Checkpoint {
            version: super::super::checkpoint::VERSION,
            config_hash: String::new(),
            seed: 0,
            order: "random".into(),
            shard: "0/1".into(),
            total: 10,
            next: 0,
            done_above: vec![],
            output_bytes,
            complete: false,
            updated: String::new(),
        }
    }

    #[test]
    fn reads_records_after_the_checkpoint_and_drops_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.csv");
        let head = "ip,port\n192.0.2.1,25,closed\n";
        std::fs::write(
            &out,
            format!("{head}192.0.2.2,25,closed\n\"2001:db8::1\",587,open-relay\n192.0.2.9,2"),
        )
        .unwrap();
        let tail = read_tail(&out, &checkpoint(head.len() as u64)).unwrap();
        let want: HashSet<SocketAddr> = ["192.0.2.2:25", "[2001:db8::1]:587"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(tail.addrs, want);
        assert_eq!(tail.torn_bytes, 11);
        assert!(std::fs::read_to_string(&out)
            .unwrap()
            .ends_with("open-relay\n"));
    }

    #[test]
    fn jsonl_tail_and_shortened_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.jsonl");
        std::fs::write(
            &out,
            "{\"type\":\"meta\"}\n{\"type\":\"result\",\"ip\":\"192.0.2.3\",\"port\":25}\n",
        )
        .unwrap();
        let tail = read_tail(&out, &checkpoint(16)).unwrap();
        assert_eq!(tail.addrs.len(), 1);
        let err = read_tail(&out, &checkpoint(10_000)).unwrap_err();
        assert!(err.to_string().contains("shorter"));
    }
}
