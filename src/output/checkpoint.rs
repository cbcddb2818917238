//! `--resume FILE`: an atomic, periodic checkpoint of how far a scan got.
//!
//! The unit is the position in the shard's schedule. Probes finish out of
//! order, so the checkpoint keeps a low-water mark (`next`: every position
//! below it is written) plus the few positions above it that are done too.
//! It is written to a temporary file and renamed over the old one, so a crash
//! at any moment leaves either the old or the new checkpoint, never half.

use super::{Format, Record};
use crate::targets::{Order, Shard};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// Must match the resumed run's configuration hash.
    pub config_hash: String,
    pub seed: u64,
    /// `"random"` or `"sequential"`, as `--order` spells it.
    pub order: Order,
    /// `"K/N"`, as `--shard` spells it.
    pub shard: Shard,
    /// Jobs in this shard.
    pub total: u128,
    /// Every position below this is done.
    pub next: u128,
    /// Positions at or above `next` that are done too.
    pub done_above: Vec<u128>,
    /// Every record at or after this offset in the output file is read back
    /// on resume (a job not done yet may have written some of its records
    /// before it); records before it belong to jobs marked done above.
    pub output_bytes: u64,
    /// Where this scan's records begin in the output file (after what an
    /// `--append` found there): a resumed run reads them back for its summary.
    #[serde(default)]
    pub output_start: u64,
    /// Targets written for jobs not done yet (a host name's first
    /// addresses, when the crash came before its last): not written again.
    #[serde(default)]
    pub pending: Vec<Written>,
    pub complete: bool,
    pub updated: String,
}

/// A target as its record names it: the address, and the host name it was
/// given as. CSV has no column for that name, so there it is known only for
/// a name that did not resolve (its `hostname` cell, with no address).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Written {
    pub name: Option<String>,
    pub addr: SocketAddr,
}

impl Written {
    /// The key of a record about to be written in `format`.
    pub fn of(record: &Record, format: Format) -> Written {
        let addr = record.facts.addr;
        let name = match format {
            Format::Csv if addr.ip().is_unspecified() => record.hostname().map(String::from),
            Format::Csv => None,
            _ => record.facts.name.clone(),
        };
        Written { name, addr }
    }
}

impl Checkpoint {
    pub fn load(path: &Path) -> anyhow::Result<Checkpoint> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read checkpoint {}: {e}", path.display()))?;
        let cp: Checkpoint = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("checkpoint {} is damaged: {e}", path.display()))?;
        if cp.version != VERSION {
            anyhow::bail!(
                "checkpoint {} has version {}, this relayscan reads {VERSION}",
                path.display(),
                cp.version
            );
        }
        Ok(cp)
    }

    /// Write atomically: temporary file, fsync, rename. A temporary file
    /// left by a crash is simply overwritten; one this call could not
    /// finish (a full disk) is removed. The error names `path`, the file
    /// the user chose, not the temporary one.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = tmp_path(path);
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            serde_json::to_writer_pretty(&mut f, self)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, path)
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            std::io::Error::new(
                e.kind(),
                format!("cannot write the checkpoint {}: {e}", path.display()),
            )
        })
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Which positions are done: a low-water mark and the set above it.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    next: u128,
    above: BTreeSet<u128>,
}

impl Completion {
    pub fn starting_at(next: u128, above: impl IntoIterator<Item = u128>) -> Self {
        let mut c = Completion {
            next,
            above: BTreeSet::new(),
        };
        for p in above {
            c.done(p);
        }
        c
    }

    pub fn done(&mut self, position: u128) {
        if position == self.next {
            self.next += 1;
            while self.above.remove(&self.next) {
                self.next += 1;
            }
        } else if position > self.next {
            self.above.insert(position);
        }
    }

    /// Whether `position` is done.
    pub fn contains(&self, position: u128) -> bool {
        position < self.next || self.above.contains(&position)
    }

    pub fn next(&self) -> u128 {
        self.next
    }

    pub fn above(&self) -> Vec<u128> {
        self.above.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_water_mark_advances_over_out_of_order_completions() {
        let mut c = Completion::default();
        for p in [2, 0, 3, 5] {
            c.done(p);
        }
        assert_eq!(c.next(), 1);
        assert!(c.contains(0) && c.contains(2) && !c.contains(1) && !c.contains(4));
        assert_eq!(c.above(), vec![2, 3, 5]);
        c.done(1);
        assert_eq!(c.next(), 4);
        assert_eq!(c.above(), vec![5]);
        let resumed = Completion::starting_at(4, [5, 7]);
        assert_eq!((resumed.next(), resumed.above()), (4, vec![5, 7]));
    }

    #[test]
    fn save_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scan.checkpoint");
        let cp = Checkpoint {
            version: VERSION,
            config_hash: "0123456789abcdef".into(),
            seed: 42,
            order: Order::Random,
            shard: "2/3".parse().unwrap(),
            total: 1 << 100,
            next: (1 << 99) + 3,
            done_above: vec![(1 << 99) + 5],
            output_bytes: 1234,
            output_start: 17,
            pending: vec![Written {
                name: Some("mx.example".into()),
                addr: "192.0.2.7:25".parse().unwrap(),
            }],
            complete: false,
            updated: "2026-11-29T00:00:00Z".into(),
        };
        cp.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), cp);
        assert!(!tmp_path(&path).exists());
        // Order and shard are typed, their text what `--order`/`--shard` take.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"order\": \"random\""), "{text}");
        assert!(text.contains("\"shard\": \"2/3\""), "{text}");
        let bad = text.replace("\"2/3\"", "\"3/3\"");
        std::fs::write(&path, bad).unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("damaged") && err.contains("--shard"), "{err}");
        cp.save(&path).unwrap();
        // A temporary file left by a crash is no obstacle.
        std::fs::write(tmp_path(&path), "{ half a checkpo").unwrap();
        cp.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), cp);
        // A full disk: the error names the user's file, and no temporary is left.
        std::os::unix::fs::symlink("/dev/full", tmp_path(&path)).unwrap();
        let err = cp.save(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot write the checkpoint {}:", path.display())),
            "{err}"
        );
        assert!(!err.contains("checkpoint.tmp"), "{err}");
        assert!(std::fs::symlink_metadata(tmp_path(&path)).is_err());
        assert_eq!(
            Checkpoint::load(&path).unwrap(),
            cp,
            "the old checkpoint stands"
        );
        std::fs::write(&path, "{ not json").unwrap();
        assert!(Checkpoint::load(&path)
            .unwrap_err()
            .to_string()
            .contains("damaged"));
    }
}
