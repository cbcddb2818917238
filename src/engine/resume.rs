//! Picking up an interrupted scan: what the output file already holds.
//!
//! Every record of this scan is read back once, streaming: its verdict is
//! counted (so the resumed run's summary and exit code describe the whole
//! scan, not the remainder), and the targets written at or after the
//! checkpoint's offset are kept, so that they are not written again.

use crate::output::checkpoint::{Checkpoint, Written};
use crate::output::lines::Lines;
use crate::output::schema::{LineType, ResultKey, TypeOnly};
use crate::output::Summary;
use crate::relay::{Confidence, Status};
use std::collections::HashSet;
use std::io::BufReader;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// What resuming found in the output file.
#[derive(Debug, Default)]
pub struct Earlier {
    /// Targets with a record at or after the checkpoint's offset: these
    /// jobs may not be marked done, and their records are not written again.
    pub tail: HashSet<Written>,
    /// Bytes of a record cut short by the crash, removed from the end.
    pub torn_bytes: u64,
    /// Every record of this scan already in the file.
    pub summary: Summary,
}

/// Check the output file against the checkpoint, drop a torn last line (a
/// record the crash cut in half: it is probed again), count every record of
/// this scan and collect the targets written after the checkpoint.
pub fn read_back(output: &Path, cp: &Checkpoint) -> anyhow::Result<Earlier> {
    let cannot = |e: std::io::Error| {
        anyhow::anyhow!(
            "cannot open the output file {} to resume: {e}",
            output.display()
        )
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(output)
        .map_err(cannot)?;
    let len = file.metadata().map_err(cannot)?.len();
    if len < cp.output_bytes || cp.output_bytes < cp.output_start {
        anyhow::bail!(
            "{} is shorter ({len} bytes) than when the checkpoint was taken ({} bytes): it was changed, refusing to resume",
            output.display(),
            cp.output_bytes
        );
    }
    let mut reader = BufReader::new(&file);
    std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(cp.output_start)).map_err(cannot)?;
    let mut lines = Lines::new(reader, output);
    let mut earlier = Earlier::default();
    let mut offset = cp.output_start;
    while let Some(line) = lines.next_line()? {
        if !line.terminated {
            if offset < cp.output_bytes {
                anyhow::bail!(
                    "{}:{}: a line before the checkpoint's offset has no end: the file was changed, refusing to resume",
                    output.display(),
                    lines.number
                );
            }
            earlier.torn_bytes = line.text.len() as u64;
            file.set_len(offset)
                .map_err(|e| anyhow::anyhow!("cannot repair {}: {e}", output.display()))?;
            break;
        }
        let at = offset;
        offset += line.text.len() as u64 + 1;
        let Some((written, verdict, accepted, proven)) = parse(&line.text) else {
            continue;
        };
        let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
        earlier
            .summary
            .add_result(verdict, written.addr, &accepted, proven);
        if at >= cp.output_bytes {
            earlier.tail.insert(written);
        }
    }
    earlier.summary.earlier = earlier.summary.total;
    Ok(earlier)
}

/// The target, verdict and accepted tests of one CSV or JSON Lines record
/// line; `None` for anything else (the CSV header, meta and summary lines).
fn parse(line: &[u8]) -> Option<(Written, Status, Vec<String>, bool)> {
    if line.starts_with(b"{") {
        let kind: TypeOnly = serde_json::from_slice(line).ok()?;
        if kind.kind != LineType::Result {
            return None;
        }
        let r: ResultKey = serde_json::from_slice(line).ok()?;
        let ip = r.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        return Some((
            Written {
                name: r.name,
                addr: SocketAddr::new(ip, r.port),
            },
            r.verdict,
            r.accepted,
            r.confidence == Some(Confidence::Delivered),
        ));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let row = rdr.records().next()?.ok()?;
    let port: u16 = row.get(1)?.parse().ok()?;
    let verdict: Status =
        serde_json::from_value(serde_json::Value::String(row.get(3)?.into())).ok()?;
    let (ip, name) = match row.get(0)? {
        "" => (
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(row.get(2)?.to_string()).filter(|n| !n.is_empty()),
        ),
        ip => (ip.parse().ok()?, None),
    };
    let accepted = row
        .get(5)
        .unwrap_or_default()
        .split(';')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    Some((
        Written {
            name,
            addr: SocketAddr::new(ip, port),
        },
        verdict,
        accepted,
        row.get(4) == Some("delivered"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(output_bytes: u64) -> Checkpoint {
        Checkpoint {
            version: crate::output::checkpoint::VERSION,
            config_hash: String::new(),
            seed: 0,
            order: crate::targets::Order::Random,
            shard: crate::targets::Shard::default(),
            total: 10,
            next: 0,
            done_above: vec![],
            output_bytes,
            output_start: 0,
            pending: vec![],
            complete: false,
            updated: String::new(),
        }
    }

    fn addr(a: &str) -> Written {
        Written {
            name: None,
            addr: a.parse().unwrap(),
        }
    }

    #[test]
    fn reads_records_after_the_checkpoint_counts_all_and_drops_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.csv");
        let head = format!(
            "{}\n192.0.2.1,25,,open-relay,rcpt,S1;S2,250 ok\n",
            crate::output::CSV_HEADER.join(",")
        );
        std::fs::write(
            &out,
            format!("{head}192.0.2.2,25,,closed\n\"2001:db8::1\",587,,open-relay,rcpt,S1\n,25,mail.example,error\n192.0.2.9,2"),
        )
        .unwrap();
        let earlier = read_back(&out, &checkpoint(head.len() as u64)).unwrap();
        let want: HashSet<Written> = [
            addr("192.0.2.2:25"),
            addr("[2001:db8::1]:587"),
            Written {
                name: Some("mail.example".into()),
                addr: "0.0.0.0:25".parse().unwrap(),
            },
        ]
        .into_iter()
        .collect();
        assert_eq!(earlier.tail, want);
        assert_eq!(earlier.torn_bytes, 11);
        assert!(std::fs::read_to_string(&out)
            .unwrap()
            .ends_with("mail.example,error\n"));
        // The whole scan is counted, before the checkpoint too.
        let s = &earlier.summary;
        assert_eq!((s.total, s.relay_count), (4, 2));
        assert_eq!(s.counts[&Status::Closed], 1);
        assert_eq!(s.relays[0].2, "S1 S2");
    }

    #[test]
    fn jsonl_tail_names_and_shortened_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.jsonl");
        std::fs::write(
            &out,
            "{\"type\":\"meta\"}\n\
             {\"type\":\"result\",\"ip\":\"192.0.2.3\",\"port\":25,\"verdict\":\"closed\"}\n\
             {\"type\":\"result\",\"ip\":\"192.0.2.4\",\"port\":25,\"name\":\"mx.example\",\"verdict\":\"open-relay\",\"accepted\":[\"S1\"]}\n\
             {\"type\":\"summary\",\"total\":2}\n",
        )
        .unwrap();
        let earlier = read_back(&out, &checkpoint(16)).unwrap();
        assert_eq!(earlier.tail.len(), 2);
        assert!(earlier.tail.contains(&Written {
            name: Some("mx.example".into()),
            addr: "192.0.2.4:25".parse().unwrap()
        }));
        assert_eq!(earlier.summary.total, 2);
        assert_eq!(earlier.summary.relay_count, 1);
        let err = read_back(&out, &checkpoint(10_000)).unwrap_err();
        assert!(err.to_string().contains("shorter"));
    }

    #[test]
    fn a_line_without_end_is_an_error_not_unbounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.jsonl");
        let mut data = b"{\"type\":\"meta\"}\n".to_vec();
        data.extend(std::iter::repeat(b'{').take(crate::output::lines::MAX_LINE + 10));
        data.push(b'\n');
        std::fs::write(&out, data).unwrap();
        let err = read_back(&out, &checkpoint(0)).unwrap_err().to_string();
        assert!(err.contains("r.jsonl:2: line longer than 1 MiB"), "{err}");
    }
}
