//! The JSON Lines output as types: a `meta` line, one `result` line per
//! target, a `summary` line. The writer serialises these, the CSV row is cut
//! from a [`ResultLine`], and `merge` and `--resume` read them back. The JSON
//! Schema in `docs/schema/relayscan.schema.json` is generated from them (a
//! test keeps the two equal), and the README's "Output" section describes
//! the same fields for a reader.
//!
//! Field order: every object is written with its keys in byte order, as
//! relayscan always has, so the fields here are declared in that order.
//!
//! `schema_version` is on the meta line only: every file starts with one
//! (`merge` writes its own), a result line stays as short as before, and a
//! reader that cuts results out of a file (`grep`, `jq`) is reading one
//! version's lines anyway. It counts changes that are not additions: a new
//! field, a new verdict or finding id do not change it; a field removed,
//! renamed or given another type does.

use crate::relay::{Confidence, FindingId, Kind, ReplyClass, Severity, Status, Step};
use crate::targets::{Order, Shard};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// The version of this schema, written in every meta line.
pub const SCHEMA_VERSION: u32 = 1;

/// A constant `type` tag: each line type has its own, so a line of one type
/// never reads as another.
macro_rules! tag {
    ($name:ident, $text:literal) => {
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
        )]
        pub enum $name {
            #[default]
            #[serde(rename = $text)]
            Tag,
        }
    };
}
tag!(MetaTag, "meta");
tag!(ResultTag, "result");
tag!(SummaryTag, "summary");

/// The kind of a line, read before the rest of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineType {
    Meta,
    Result,
    Summary,
    /// A type this relayscan does not know (a later one's): skipped.
    #[serde(other)]
    Other,
}

/// Only the `type` of a line (the other fields are skipped, not kept).
#[derive(Deserialize)]
pub struct TypeOnly {
    #[serde(rename = "type")]
    pub kind: LineType,
}

/// Any line of a relayscan JSON Lines file (this is what the JSON Schema
/// describes: one of these per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Line {
    Meta(Meta),
    Result(Box<ResultLine>),
    Summary(SummaryLine),
}

/// The first line of a file: a scan's, or `merge`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Meta {
    Scan(Box<ScanMeta>),
    Merge(MergeMeta),
}

impl Meta {
    /// Read a meta line. On a line that is neither kind, the error is the
    /// one reading it as a scan's gave (`missing field `argv``), which
    /// says more than "no variant matched".
    pub fn from_slice(line: &[u8]) -> serde_json::Result<Meta> {
        match serde_json::from_slice::<ScanMeta>(line) {
            Ok(m) => Ok(Meta::Scan(Box::new(m))),
            Err(scan) => serde_json::from_slice::<MergeMeta>(line)
                .map(Meta::Merge)
                .map_err(|_| scan),
        }
    }

    pub fn config_hash(&self) -> Option<&str> {
        match self {
            Meta::Scan(m) => Some(&m.config_hash),
            Meta::Merge(m) => m.config_hash.as_deref(),
        }
    }

    /// Version 1 files written before the field existed have none.
    pub fn schema_version(&self) -> u32 {
        match self {
            Meta::Scan(m) => m.schema_version,
            Meta::Merge(m) => m.schema_version,
        }
        .unwrap_or(1)
    }
}

/// How a scan was run: enough to reproduce it, and to tell whether two
/// files come from the same scan (`config_hash`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanMeta {
    /// The command line.
    pub argv: Vec<String>,
    /// `--auth`'s rules for where the real password may go; `null` without `--auth`.
    pub auth_password_rules: Option<AuthPasswordRules>,
    /// The `--auth` user name (the password is never written).
    pub auth_user: Option<String>,
    /// Equal for every shard and every resumed run of one scan.
    pub config_hash: String,
    /// The DNS settings: resolvers, PTR and blocklist lookups, rate.
    pub dns: Value,
    /// The name sent in EHLO/HELO.
    pub ehlo: String,
    /// The domain relay tests send to.
    pub foreign_domain: String,
    pub implicit_tls: bool,
    /// Jobs in this shard, a decimal string (it can exceed 2^53).
    pub jobs: String,
    pub order: Order,
    pub ports: Vec<u16>,
    /// The checkpoint position a resumed run started from, a decimal string.
    pub resumed_from: Option<String>,
    /// Absent from files written before it existed (read as 1).
    #[serde(default)]
    pub schema_version: Option<u32>,
    /// `--scope`, when given.
    pub scope: Option<String>,
    /// A decimal string: JSON readers that use doubles would round a 64-bit seed.
    pub seed: String,
    pub shard: Shard,
    /// RFC 3339, milliseconds.
    pub started: String,
    /// `--starttls`: `auto`, `always` or `never`.
    pub starttls: String,
    /// The relay test ids run, in order.
    #[schemars(with = "Vec<TestId>")]
    pub tests: Vec<String>,
    /// Always `relayscan`.
    pub tool: String,
    #[serde(rename = "type")]
    pub kind: MetaTag,
    /// relayscan's version.
    pub version: String,
}

/// Where the `--auth` password may be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthPasswordRules {
    pub ca_files: Vec<std::path::PathBuf>,
    pub hosts: Vec<String>,
    pub insecure: bool,
    pub pins: Vec<String>,
}

/// The meta line `relayscan merge` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MergeMeta {
    /// The inputs' config hash (all equal).
    pub config_hash: Option<String>,
    /// The files merged.
    pub merged: Vec<String>,
    #[serde(default)]
    pub schema_version: Option<u32>,
    /// The shards found among the inputs.
    pub shards: Vec<Shard>,
    pub tool: String,
    #[serde(rename = "type")]
    pub kind: MetaTag,
    pub version: String,
}

/// One target: the verdict and the evidence (README, "Output").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResultLine {
    /// Ids of the accepted relay tests.
    #[schemars(with = "Vec<TestId>")]
    pub accepted: Vec<String>,
    /// AUTH mechanisms advertised before TLS.
    pub auth: Vec<String>,
    /// The `--auth` tests; `null` without `--auth`.
    pub auth_audit: Option<AuthAudit>,
    /// AUTH mechanisms advertised after STARTTLS (or over implicit TLS).
    pub auth_tls: Option<Vec<String>>,
    /// The reply that carried the server's greeting, on one line.
    pub banner: Option<String>,
    pub confidence: Option<Confidence>,
    /// The message sent through an accepted test (`--confirm`).
    #[schemars(with = "Option<ConfirmationLine>")]
    pub confirmation: Value,
    /// Connections this host's probe opened.
    pub connections: u32,
    /// The controls as they ran (not with `--format csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controls: Option<Vec<TestLine>>,
    /// The step a host deadline cut, if one did.
    pub deadline_cut: Option<Step>,
    #[schemars(with = "Option<TestId>")]
    pub deciding_test: Option<String>,
    /// The blocklist lookups.
    pub dnsbl: Value,
    pub duration_ms: u64,
    pub ehlo: Ehlo,
    /// What went wrong at the connection or session level.
    pub error: Option<String>,
    pub findings: Vec<FindingLine>,
    /// The announced name, else the PTR name, else the name it was found by.
    pub hostname: Option<String>,
    /// `null` for a name that led to no address.
    pub ip: Option<IpAddr>,
    /// The MX record the target was found by (`mx:` targets).
    pub mx: Value,
    /// The host name the target was given as.
    pub name: Option<String>,
    pub notes: Vec<String>,
    pub port: u16,
    pub ptr: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
    /// The fix for each finding that has one, on the detected software.
    pub remediation: Vec<Remediation>,
    /// The reply that decided the verdict, on one line.
    pub reply: Option<String>,
    pub software: Option<crate::relay::fingerprint::Software>,
    pub software_version: Option<String>,
    /// The local address the probe connected from.
    pub source: Option<SocketAddr>,
    /// `implicit`, `yes`, `failed`, `advertised` or `no`; `null` when EHLO did not succeed.
    pub starttls: Option<String>,
    /// The domain tests that need one were addressed to.
    pub target_domain: Option<String>,
    /// The relay tests as they ran (not with `--format csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Vec<TestLine>>,
    /// When the record was made, RFC 3339, milliseconds.
    pub timestamp: String,
    /// The TLS session and certificate, when TLS was tried.
    pub tls: Value,
    pub tls_version: Option<String>,
    /// Every line sent and received (`--transcript` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Value>,
    #[serde(rename = "type")]
    pub kind: ResultTag,
    /// Where relayscan probed from, and what that means for the verdict.
    pub vantage: Value,
    pub verdict: Status,
}

/// The EHLO (or HELO) exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Ehlo {
    /// `EHLO`, `HELO`, or `null` when neither was sent.
    pub command: Option<String>,
    /// EHLO keywords, upper-case.
    pub extensions: Vec<String>,
    /// The reply's lines.
    pub reply: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FindingLine {
    pub id: FindingId,
    pub remediation: Option<String>,
    pub severity: Severity,
    /// What was seen, in one sentence.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Remediation {
    pub finding: FindingId,
    pub fix: String,
}

/// `--confirm`: the one message sent through an accepted relay test, and
/// what the catcher saw of it. Only for the schema: the line carries the
/// probe's facts as they are.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct ConfirmationLine {
    /// The accepted test whose path carried it.
    #[schemars(with = "TestId")]
    pub test: String,
    pub mail_from: String,
    pub rcpt_to: String,
    /// In the subject, the `Message-ID` and an `X-Relayscan-Token` header.
    pub token: String,
    /// Replies to MAIL, RCPT, DATA and the final dot, as far as it got.
    pub replies: Vec<Value>,
    /// 250 after the final dot.
    pub accepted: bool,
    pub error: Option<String>,
    /// With `--catch` or `--catch-maildir`: whether it arrived; `null` without.
    pub delivery: Option<crate::relay::facts::Delivery>,
}

/// One relay test or control as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TestLine {
    /// What the refusal meant; `null` unless refused.
    pub class: Option<ReplyClass>,
    /// Which connection of the host's session it ran on (1-based; 0: not run).
    pub connection: u32,
    /// The session error that cut it short.
    pub error: Option<String>,
    #[schemars(with = "TestId")]
    pub id: String,
    pub kind: Kind,
    pub mail_from: Option<String>,
    /// `accepted`, `mail-refused`, `rcpt-refused`, `skipped` or `aborted`.
    pub outcome: String,
    pub rcpt_to: Option<String>,
    /// The replies to MAIL and RCPT, each on one line.
    pub replies: Vec<String>,
    /// Why it was not run.
    pub skipped: Option<String>,
}

/// The `--auth` tests (the password is never here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuthAudit {
    /// A2: the relay attempt after the wrong password.
    pub after_failed_auth: Option<TestLine>,
    /// A1: the relay attempt after the right one.
    pub authenticated_relay: Option<TestLine>,
    /// AUTH with the right password.
    pub login: Value,
    /// Where the password went, and under which rule.
    pub password: Value,
    /// Why a test did not run.
    pub skipped: Vec<String>,
    pub user: String,
    /// AUTH with a deliberately wrong password.
    pub wrong_password: Value,
}

/// The last line: what the scan (or merge) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SummaryLine {
    /// Targets per verdict (keys in byte order, like every object).
    #[serde(serialize_with = "counts_by_name")]
    pub counts: BTreeMap<Status, u64>,
    pub duration_ms: u64,
    /// Addresses excluded after a name resolved: not dialled, not in `total`.
    pub excluded_after_resolution: u64,
    /// Ctrl-C stopped the scan.
    pub interrupted: bool,
    /// Hosts cut by the interrupt, for `--resume` to probe again.
    pub left_for_resume: u64,
    /// Of `relays`, those proven by a canary that arrived (confidence
    /// `delivered`); the rest are unproven (RCPT or DATA only).
    #[serde(default)]
    pub proven_relays: u64,
    /// Targets with verdict `open-relay` or `possible-relay`.
    pub relays: u64,
    pub total: u64,
    #[serde(rename = "type")]
    pub kind: SummaryTag,
    /// Targets that could not be tested.
    pub untested: u64,
}

fn counts_by_name<S: serde::Serializer>(
    counts: &BTreeMap<Status, u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let by_name: BTreeMap<&str, u64> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    by_name.serialize(s)
}

/// The fields of a result line that `--resume` needs, read without the
/// rest (the names and types are [`ResultLine`]'s; a test checks it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResultKey {
    #[serde(default)]
    pub accepted: Vec<String>,
    /// `delivered` marks a relay proven by its canary.
    #[serde(default)]
    pub confidence: Option<Confidence>,
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub name: Option<String>,
    pub port: u16,
    pub verdict: Status,
}

/// A relay test, control or `--auth` test id, as the catalogue names it.
/// Only for the schema: the ids come from the catalogue itself.
pub struct TestId;

impl TestId {
    /// Every id, in catalogue order, each once.
    pub fn all() -> Vec<&'static str> {
        use crate::relay::{auth, catalogue};
        let mut ids: Vec<&'static str> = Vec::new();
        let tests = catalogue::CATALOGUE
            .iter()
            .chain([
                &catalogue::CONTROL_ACCEPT_ALL,
                &catalogue::CONTROL_POSTMASTER,
            ])
            .chain(catalogue::CONTROL_LOCAL_PART.iter())
            .chain([&auth::AUTHENTICATED_RELAY, &auth::RELAY_AFTER_FAILED_AUTH]);
        for t in tests {
            if !ids.contains(&t.id) {
                ids.push(t.id);
            }
        }
        ids
    }
}

impl JsonSchema for TestId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TestId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A relay test (S, R), control (C) or --auth test (A) id.",
            "type": "string",
            "enum": TestId::all(),
        })
    }
}

/// The JSON Schema of a line, as committed in `docs/schema/relayscan.schema.json`.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(Line).to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "title".into(),
            format!("relayscan JSON Lines, schema_version {SCHEMA_VERSION}: one object per line")
                .into(),
        );
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::fingerprint::Software;
    use serde::de::DeserializeOwned;

    /// The names the schema gives an enum: its serde names, each once.
    fn names(schema: &Value, def: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![&schema["$defs"][def]];
        while let Some(v) = stack.pop() {
            out.extend(v["const"].as_str().map(String::from));
            for x in v["enum"].as_array().into_iter().flatten() {
                out.extend(x.as_str().map(String::from));
            }
            stack.extend(v["oneOf"].as_array().into_iter().flatten());
        }
        assert!(!out.is_empty(), "{def} has no names in the schema");
        out
    }

    /// Every serde name of `T` reads as a value whose `as_str` is that name.
    fn as_str_is_the_serde_name<T: DeserializeOwned + Serialize>(
        def: &str,
        as_str: impl Fn(&T) -> &'static str,
    ) -> usize {
        let schema = json_schema();
        let names = names(&schema, def);
        for name in &names {
            let value: T = serde_json::from_value(Value::from(name.as_str()))
                .unwrap_or_else(|e| panic!("{def} {name}: {e}"));
            assert_eq!(as_str(&value), name, "{def}");
            assert_eq!(
                serde_json::to_value(&value).unwrap(),
                Value::from(name.as_str())
            );
        }
        names.len()
    }

    #[test]
    fn enum_names_come_from_serde_and_as_str_agrees() {
        let n = as_str_is_the_serde_name::<Status>("Status", |s| s.as_str());
        assert_eq!(n, Status::ALL.len(), "Status::ALL lists every verdict");
        let n = as_str_is_the_serde_name::<FindingId>("FindingId", |f| f.as_str());
        assert_eq!(
            n,
            FindingId::ALL.len(),
            "FindingId::ALL lists every finding"
        );
        as_str_is_the_serde_name::<Confidence>("Confidence", |c| c.as_str());
        as_str_is_the_serde_name::<Severity>("Severity", |s| s.as_str());
        as_str_is_the_serde_name::<Software>("Software", |s| s.as_str());
        as_str_is_the_serde_name::<Order>("Order", |o| o.as_str());
        // A name that is not one is refused, not read as something else.
        assert!(serde_json::from_str::<Status>("\"open_relay\"").is_err());
    }

    #[test]
    fn test_ids_are_the_catalogues_each_once() {
        let ids = TestId::all();
        for t in crate::relay::CATALOGUE {
            assert!(ids.contains(&t.id), "{}", t.id);
        }
        for id in [
            "C1",
            "C2",
            "C3-ip",
            "C3-host",
            "C3-domain",
            "C3-local",
            "A1",
            "A2",
        ] {
            assert!(ids.contains(&id), "{id}");
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }

    fn example(name: &str) -> Value {
        let path = format!("{}/docs/schema/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn result_key_reads_what_result_line_writes() {
        for name in ["result-open-relay.json", "result-unresolved.json"] {
            let line: ResultLine = serde_json::from_value(example(name)).unwrap();
            let text = serde_json::to_string(&line).unwrap();
            let key: ResultKey = serde_json::from_str(&text).unwrap();
            assert_eq!(
                (key.accepted, key.ip, key.name, key.port, key.verdict),
                (line.accepted, line.ip, line.name, line.port, line.verdict)
            );
        }
    }

    #[test]
    fn line_types_are_told_apart() {
        for (name, want) in [
            ("meta.json", LineType::Meta),
            ("result-closed.json", LineType::Result),
            ("summary.json", LineType::Summary),
        ] {
            let v = example(name);
            let t: TypeOnly = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(t.kind, want);
            let line: Line = serde_json::from_value(v).unwrap();
            let got = match line {
                Line::Meta(_) => LineType::Meta,
                Line::Result(_) => LineType::Result,
                Line::Summary(_) => LineType::Summary,
            };
            assert_eq!(got, want, "{name}");
        }
        // A result with its type changed is not a meta line.
        let mut v = example("result-closed.json");
        v["type"] = "meta".into();
        assert!(serde_json::from_value::<Line>(v.clone()).is_err());
        assert!(Meta::from_slice(v.to_string().as_bytes()).is_err());
        let err = Meta::from_slice(br#"{"type":"meta","tool":"relayscan"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `argv`"), "{err}");
        // A later relayscan's line type is skipped, not an error.
        let t: TypeOnly = serde_json::from_str(r#"{"type":"progress"}"#).unwrap();
        assert_eq!(t.kind, LineType::Other);
        // A file from before schema_version reads as version 1.
        let mut meta = example("meta.json");
        meta.as_object_mut().unwrap().remove("schema_version");
        let meta = Meta::from_slice(meta.to_string().as_bytes()).unwrap();
        assert_eq!(meta.schema_version(), 1);
    }
}
