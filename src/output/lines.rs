//! Reading relayscan's own output back (`merge`, `report`, `diff`, `--resume`) one line at a
//! time, with a cap on the line length: a file that is not ours
//! (`/dev/zero`, a binary) must end in an error naming the file and line,
//! never in unbounded memory.

use super::schema::{Line as Typed, LineType, Meta, TypeOnly};
use anyhow::{bail, Context};
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// The longest line read back. A record with every test and its replies is a
/// few KiB; a transcript a few dozen.
pub const MAX_LINE: usize = 1 << 20;

/// One line as read: its bytes without the newline, and whether it ended in
/// one (a last line without it was cut short by a crash).
pub struct Line {
    pub text: Vec<u8>,
    pub terminated: bool,
}

/// Lines of a reader, each at most [`MAX_LINE`] bytes.
pub struct Lines<R> {
    reader: R,
    /// 1-based number of the line last returned.
    pub number: u64,
    path: String,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, path: &Path) -> Self {
        Lines {
            reader,
            number: 0,
            path: path.display().to_string(),
        }
    }

    /// The next line, `None` at the end. A line longer than [`MAX_LINE`] is
    /// an error that names the file and the line.
    pub fn next_line(&mut self) -> anyhow::Result<Option<Line>> {
        let mut text = Vec::new();
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => anyhow::bail!("cannot read {}: {e}", self.path),
            };
            if buf.is_empty() {
                if text.is_empty() {
                    return Ok(None);
                }
                self.number += 1;
                return Ok(Some(Line {
                    text,
                    terminated: false,
                }));
            }
            let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], Some(i)),
                None => (buf, None),
            };
            if text.len() + chunk.len() > MAX_LINE {
                anyhow::bail!(
                    "{}:{}: line longer than {} MiB: not a relayscan output file",
                    self.path,
                    self.number + 1,
                    MAX_LINE >> 20
                );
            }
            text.extend_from_slice(chunk);
            let used = found.map_or(chunk.len(), |i| i + 1);
            self.reader.consume(used);
            if found.is_some() {
                self.number += 1;
                return Ok(Some(Line {
                    text,
                    terminated: true,
                }));
            }
        }
    }
}

/// Read every line of a file as a typed line, naming file and line on bad
/// JSON, a line of no known type or shape, or a line longer than any record
/// (`merge /dev/zero`). A torn last line (an interrupted write, no newline)
/// is skipped with a warning. `want` picks the line types to decode; the
/// others are skipped after reading their `type`.
pub fn each_line(
    path: &Path,
    want: LineType,
    mut f: impl FnMut(Typed) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = Lines::new(BufReader::new(file), path);
    while let Some(line) = lines.next_line()? {
        if line.text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let decoded = serde_json::from_slice::<TypeOnly>(&line.text).and_then(|t| {
            Ok(match t.kind {
                k if k != want => None,
                LineType::Meta => Some(Typed::Meta(Meta::from_slice(&line.text)?)),
                LineType::Result => Some(Typed::Result(serde_json::from_slice(&line.text)?)),
                LineType::Summary => Some(Typed::Summary(serde_json::from_slice(&line.text)?)),
                LineType::Other => None,
            })
        });
        match decoded {
            Ok(Some(l)) => f(l)?,
            Ok(None) => {}
            Err(_) if !line.terminated => {
                eprintln!(
                    "relayscan: {}:{}: skipping a torn last line",
                    path.display(),
                    lines.number
                )
            }
            Err(e) => bail!(
                "{}:{}: not a relayscan JSON Lines file ({e})",
                path.display(),
                lines.number
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_capped() {
        let data = b"one\n\ntwo\nthree".to_vec();
        let mut lines = Lines::new(&data[..], Path::new("x"));
        let mut got = Vec::new();
        while let Some(l) = lines.next_line().unwrap() {
            got.push((String::from_utf8(l.text).unwrap(), l.terminated));
        }
        assert_eq!(
            got,
            [
                ("one".into(), true),
                (String::new(), true),
                ("two".into(), true),
                ("three".into(), false)
            ]
        );

        let mut long = b"ok\n".to_vec();
        long.extend(std::iter::repeat(b'0').take(MAX_LINE + 1));
        let mut lines = Lines::new(io::BufReader::new(&long[..]), Path::new("big.jsonl"));
        assert!(lines.next_line().unwrap().is_some());
        let err = lines.next_line().err().unwrap().to_string();
        assert!(
            err.starts_with("big.jsonl:2: line longer than 1 MiB"),
            "{err}"
        );
        // Exactly the cap is still a line.
        let mut edge = vec![b'x'; MAX_LINE];
        edge.push(b'\n');
        let mut lines = Lines::new(&edge[..], Path::new("e"));
        assert_eq!(lines.next_line().unwrap().unwrap().text.len(), MAX_LINE);
    }
}
