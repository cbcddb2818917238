//! Scan results read back for `report` and `diff`: a JSON Lines file
//! (meta, result and summary lines, read with `merge`'s reader) or a CSV
//! file (one row per target, the columns of [`CSV_HEADER`]), both as
//! [`ResultLine`]s. A CSV row carries fewer facts: the fields it has no
//! column for are empty.

use super::lines::each_line;
use super::record::CSV_HEADER;
use super::schema::{Ehlo, Line, LineType, Meta, ResultLine, ResultTag};
use crate::relay::{Confidence, Status};
use anyhow::{bail, Context};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What a results file is, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jsonl,
    Csv,
}

/// One or more results files, read.
#[derive(Debug, Default)]
pub struct Results {
    pub files: Vec<PathBuf>,
    /// The meta lines, one per JSON Lines file that has one (none for CSV).
    pub metas: Vec<Meta>,
    /// Every target once, in the order the files list them.
    pub hosts: Vec<ResultLine>,
}

/// How a target is matched between two scans: its address and port, or,
/// for a name that led to no address, the name and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostKey {
    Addr(IpAddr, u16),
    Name(String, u16),
}

impl HostKey {
    pub fn of(r: &ResultLine) -> HostKey {
        match r.ip {
            Some(ip) => HostKey::Addr(ip, r.port),
            None => HostKey::Name(
                r.name
                    .clone()
                    .or_else(|| r.hostname.clone())
                    .unwrap_or_default(),
                r.port,
            ),
        }
    }
}

impl std::fmt::Display for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostKey::Addr(ip, port) => write!(f, "{}", std::net::SocketAddr::new(*ip, *port)),
            HostKey::Name(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

/// Tell a JSON Lines file (starts with `{`) from a relayscan CSV file
/// (starts with its header); anything else is refused, naming the file.
pub fn kind_of(path: &Path) -> anyhow::Result<Kind> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let start = head.iter().position(|b| !b.is_ascii_whitespace());
    let head = start.map_or(&head[..0], |i| &head[i..]);
    if head.starts_with(b"{") {
        return Ok(Kind::Jsonl);
    }
    // Later relayscans only append columns: the header starts with ours.
    let first = CSV_HEADER[..4].join(",");
    if head.starts_with(first.as_bytes()) {
        return Ok(Kind::Csv);
    }
    if head.is_empty() {
        bail!("{} is empty: not a relayscan result file", path.display());
    }
    bail!(
        "{} is not a relayscan result file (JSON Lines or CSV)",
        path.display()
    )
}

impl Results {
    /// Read files (JSON Lines or CSV, each told apart by its content).
    /// A target listed twice (a resumed scan, overlapping files) is kept
    /// once: its first record.
    pub fn read(paths: &[PathBuf]) -> anyhow::Result<Results> {
        let mut out = Results {
            files: paths.to_vec(),
            ..Results::default()
        };
        let mut seen: HashSet<HostKey> = HashSet::new();
        for path in paths {
            let mut add = |r: ResultLine| {
                if seen.insert(HostKey::of(&r)) {
                    out.hosts.push(r);
                }
            };
            match kind_of(path)? {
                Kind::Jsonl => {
                    each_line(path, LineType::Meta, |line| {
                        if let Line::Meta(m) = line {
                            if m.schema_version() > super::schema::SCHEMA_VERSION {
                                bail!(
                                    "{} was written with output schema version {}; this relayscan reads {}",
                                    path.display(),
                                    m.schema_version(),
                                    super::schema::SCHEMA_VERSION
                                );
                            }
                            out.metas.push(m);
                        }
                        Ok(())
                    })?;
                    each_line(path, LineType::Result, |line| {
                        if let Line::Result(r) = line {
                            add(*r);
                        }
                        Ok(())
                    })?;
                }
                Kind::Csv => read_csv(path, &mut add)?,
            }
        }
        Ok(out)
    }

    /// Targets per verdict, in the order of [`Status::ALL`], zeros left out.
    pub fn counts(&self) -> Vec<(Status, usize)> {
        Status::ALL
            .iter()
            .map(|s| (*s, self.hosts.iter().filter(|h| h.verdict == *s).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn relays(&self) -> impl Iterator<Item = &ResultLine> {
        self.hosts.iter().filter(|h| h.verdict.is_relay())
    }
}

fn read_csv(path: &Path, add: &mut impl FnMut(ResultLine)) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let header: Vec<String> = rdr
        .headers()
        .with_context(|| format!("{}: no CSV header", path.display()))?
        .iter()
        .map(String::from)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let cols: Vec<Option<usize>> = CSV_HEADER.iter().map(|c| col(c)).collect();
    for (n, row) in rdr.records().enumerate() {
        // Line 1 is the header.
        let line = n + 2;
        let row = row.with_context(|| format!("{}:{line}: not a CSV row", path.display()))?;
        let cells: BTreeMap<&'static str, String> = CSV_HEADER
            .iter()
            .zip(&cols)
            .map(|(name, i)| (*name, i.and_then(|i| row.get(i)).unwrap_or("").to_string()))
            .collect();
        add(result_from_csv(&cells).with_context(|| format!("{}:{line}", path.display()))?);
    }
    Ok(())
}

/// A CSV row as a result line: the facts the row holds, the rest empty.
fn result_from_csv(cells: &BTreeMap<&'static str, String>) -> anyhow::Result<ResultLine> {
    let cell = |name: &str| cells.get(name).map_or("", String::as_str);
    let text = |name: &str| Some(cell(name).to_string()).filter(|s| !s.is_empty());
    let list = |name: &str| -> Vec<String> {
        cell(name)
            .split(';')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let named = |name: &str| -> anyhow::Result<Option<Value>> { Ok(text(name).map(Value::String)) };
    let ip = match cell("ip") {
        "" => None,
        s => Some(
            s.parse::<IpAddr>()
                .map_err(|_| anyhow::anyhow!("ip {s:?} is not an address"))?,
        ),
    };
    let port = cell("port")
        .parse::<u16>()
        .map_err(|_| anyhow::anyhow!("port {:?} is not a port", cell("port")))?;
    let verdict: Status =
        serde_json::from_value(Value::String(cell("verdict").into())).map_err(|_| {
            anyhow::anyhow!("verdict {:?} is not one relayscan writes", cell("verdict"))
        })?;
    let confidence: Option<Confidence> = match named("confidence")? {
        Some(v) => Some(
            serde_json::from_value(v)
                .map_err(|_| anyhow::anyhow!("confidence {:?} unknown", cell("confidence")))?,
        ),
        None => None,
    };
    // A product this relayscan does not know reads as none.
    let software = named("software")?.and_then(|v| serde_json::from_value(v).ok());
    let hostname = text("hostname");
    Ok(ResultLine {
        accepted: list("accepted"),
        auth: Vec::new(),
        auth_audit: None,
        auth_tls: None,
        banner: text("banner"),
        confidence,
        confirmation: Value::Null,
        connections: 0,
        controls: None,
        deadline_cut: None,
        deciding_test: list("accepted").into_iter().next(),
        dnsbl: Value::Null,
        duration_ms: cell("duration_ms").parse().unwrap_or(0),
        ehlo: Ehlo {
            command: None,
            extensions: Vec::new(),
            reply: None,
        },
        error: text("error"),
        findings: Vec::new(),
        name: if ip.is_none() { hostname.clone() } else { None },
        hostname,
        ip,
        mx: Value::Null,
        notes: Vec::new(),
        port,
        ptr: None,
        reason: String::new(),
        remediation: Vec::new(),
        reply: text("reply"),
        software,
        software_version: None,
        source: None,
        starttls: text("starttls"),
        target_domain: None,
        tests: None,
        timestamp: cell("timestamp").to_string(),
        tls: Value::Null,
        tls_version: text("tls_version"),
        transcript: None,
        kind: ResultTag::Tag,
        vantage: Value::Null,
        verdict,
    })
}
