//! The library's module graph: who imports whom, read from the source.
//!
//! Two rules, checked here so they stay true:
//! - no cycles between source files (a file's module never reaches itself
//!   through the modules it imports). A parent module may use its own
//!   children (it declares them, re-exports them, runs them) and a child
//!   may use its parent's items; the edges from a parent down to its own
//!   children are what a parent is for and do not count;
//! - no upward edge between the top-level modules: each one may import only
//!   modules of a lower layer in [`LAYERS`] (or itself).
//!
//! The reader is a small lexer, not a Rust parser: it drops comments, string
//! and character literals and `#[cfg(test)]` items, then follows every
//! `crate::`, `super::` and `self::` path (and, in a file with child
//! modules, a path that starts with a child's name) to the longest module
//! it names. Run with `--nocapture` to print the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, lowest layer first. A module may import modules
/// of its own layer's lower neighbours only; two modules in one layer may
/// not import each other.
const LAYERS: &[&[&str]] = &[
    // The binary's global allocator (src/main.rs): imports nothing of ours.
    &["allocator"],
    // Foundations: the SMTP protocol, target planning, Ctrl-C.
    &["smtp", "targets", "interrupt"],
    // Name resolution (PTR, MX, DNSBL) on top of the target types.
    &["dns"],
    // Relay tests: catalogue, probe, classifier.
    &["relay"],
    // Simulated servers, built from the relay catalogue's names.
    &["lab"],
    // Records and files.
    &["output"],
    // The catcher: receives the canaries (`--catch`), records deliveries.
    &["catch"],
    // Scheduling hosts, deadlines, checkpoints.
    &["engine"],
    // The command line: clap structs, validated settings, the commands.
    &["cli"],
    &["config"],
    &["commands"],
];

/// Edges the layering rules forbid that live in code other engineers are
/// restructuring at the same time (relay/ in three layers, output/ typed).
/// Each one must still exist — delete it here when it goes.
const PENDING: &[(&str, &str)] = &[
    // output/: the writer asks the engine whether a record was cut by the
    // interrupt.
    ("output::writer", "engine"),
];

/// A module path (`dns::settings`), `""` for the crate root.
type Module = String;

/// This crate's `src/`, or another checkout's (`MODULE_GRAPH_SRC`, to
/// print an older graph for comparison).
fn src_dir() -> PathBuf {
    match std::env::var_os("MODULE_GRAPH_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

/// Every library source file and the module it defines.
fn modules() -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src_dir()).expect("under src");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            match parts.last().map(String::as_str) {
                Some("main") if parts.len() == 1 => continue, // the binary
                Some("lib") if parts.len() == 1 => parts.clear(),
                Some("mod") => {
                    parts.pop();
                }
                _ => {}
            }
            out.insert(parts.join("::"), path);
        }
    }
    out
}

/// The source with comments, string and char literals blanked out.
fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && !ident_char(&b, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            'raw: while j < b.len() {
                if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break 'raw;
                }
                j += 1;
            }
            i = j;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether the char before `i` continues an identifier (so `r` at `i` is
/// not a raw-string prefix).
fn ident_char(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// The stripped source without `#[cfg(test)]` items.
fn without_tests(src: &str) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        // The item ends at its first `;` outside braces, or with its first
        // balanced brace group.
        let mut depth = 0usize;
        let mut end = item.len();
        for (k, ch) in item.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = k + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The paths a source mentions, as segment lists: `crate::a::{b, c::d}`
/// gives `crate a b` and `crate a c d`.
fn paths(src: &str) -> Vec<Vec<String>> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if (b[i].is_alphabetic() || b[i] == '_') && !ident_char(&b, i) && !after_colons(&b, i) {
            let (mut found, end) = path_at(&b, i);
            if found.iter().any(|p| p.len() > 1) {
                out.append(&mut found);
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Whether the identifier at `i` follows `::` (then it is not a path start).
fn after_colons(b: &[char], i: usize) -> bool {
    let mut j = i;
    while j > 0 && b[j - 1].is_whitespace() {
        j -= 1;
    }
    j >= 2 && b[j - 1] == ':' && b[j - 2] == ':'
}

/// The path (or `use` tree) starting at `i`: every leaf path, and where it ends.
fn path_at(b: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        let start = i;
        while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
            i += 1;
        }
        if i == start {
            break;
        }
        prefix.push(b[start..i].iter().collect::<String>());
        let mut j = i;
        while j < b.len() && b[j].is_whitespace() {
            j += 1;
        }
        if b.get(j) == Some(&':') && b.get(j + 1) == Some(&':') {
            j += 2;
            while j < b.len() && b[j].is_whitespace() {
                j += 1;
            }
            if b.get(j) == Some(&'{') {
                // A use tree: each comma-separated branch extends the prefix.
                let mut leaves = Vec::new();
                let mut k = j + 1;
                loop {
                    while k < b.len() && (b[k].is_whitespace() || b[k] == ',') {
                        k += 1;
                    }
                    if k >= b.len() || b[k] == '}' {
                        break;
                    }
                    if b[k].is_alphabetic() || b[k] == '_' {
                        let (sub, end) = path_at(b, k);
                        for s in sub {
                            let mut p = prefix.clone();
                            p.extend(s);
                            leaves.push(p);
                        }
                        k = end;
                        // `as name` and the like: skip to the branch's end.
                        while k < b.len() && b[k] != ',' && b[k] != '}' {
                            k += 1;
                        }
                    } else {
                        k += 1; // `*`
                    }
                }
                if leaves.is_empty() {
                    leaves.push(prefix);
                }
                return (leaves, k + 1);
            }
            i = j;
            continue;
        }
        break;
    }
    (vec![prefix], i)
}

/// The module a path in `from` points to, if it names one of `known`
/// other than `from` itself.
fn target(from: &str, path: &[String], known: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let here: Vec<&str> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").collect()
    };
    let mut base: Vec<String>;
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            base = Vec::new();
            rest = &path[1..];
        }
        Some("self") => {
            base = here.iter().map(|s| s.to_string()).collect();
            rest = &path[1..];
        }
        Some("super") => {
            base = here.iter().map(|s| s.to_string()).collect();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) => {
            // A path that starts with a child module's name.
            base = here.iter().map(|s| s.to_string()).collect();
            let mut child = base.clone();
            child.push(first.to_string());
            if !known.contains_key(&child.join("::")) {
                return None;
            }
        }
        None => return None,
    }
    let mut best = None;
    for seg in rest {
        base.push(seg.clone());
        let name = base.join("::");
        if known.contains_key(&name) {
            best = Some(name);
        }
    }
    if best.is_none() && path.first().map(String::as_str) == Some("super") {
        // `super::Name`: the parent module itself.
        let name = base[..base.len() - rest.len()].join("::");
        if known.contains_key(&name) {
            best = Some(name);
        }
    }
    best.filter(|t| t != from && !t.is_empty())
}

/// File-level edges: module → the modules it imports.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let known = modules();
    let mut edges = BTreeMap::new();
    for (module, path) in &known {
        let src = std::fs::read_to_string(path).expect("read source");
        let code = without_tests(&strip(&src));
        let mut to = BTreeSet::new();
        for p in paths(&code) {
            if let Some(t) = target(module, &p, &known) {
                // A child module named in its parent is declared there
                // (`mod x;`, `pub use x::Y`), which is not a dependency
                // of the parent's code on the child unless used: count
                // uses only, and every path that reaches here is a use.
                to.insert(t);
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top(module)))
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn pending(from: &str, to: &str) -> bool {
    PENDING
        .iter()
        .any(|(f, t)| (from == *f || from.starts_with(&format!("{f}::"))) && to == *t)
}

#[test]
fn print_graph() {
    let edges = graph();
    let mut tops: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in &edges {
        println!("{:<28} -> {}", display(from), join(to));
        for t in to {
            if top(from) != top(t) {
                tops.entry(top(from)).or_default().insert(top(t));
            }
        }
    }
    println!();
    for (from, to) in tops {
        println!(
            "{from:<10} -> {}",
            to.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
}

fn display(m: &str) -> &str {
    if m.is_empty() {
        "(lib)"
    } else {
        m
    }
}

fn join(set: &BTreeSet<Module>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[test]
fn no_cycles_between_source_files() {
    let edges = graph();
    let mut kept = edges.clone();
    for (from, to) in kept.iter_mut() {
        to.retain(|t| {
            !pending(from, t) && !t.starts_with(&format!("{from}::")) && !from.is_empty()
        });
    }
    let found = cycles(&kept);
    assert!(
        found.is_empty(),
        "modules that import each other (directly or round a loop): {found:#?}"
    );
}

#[test]
fn no_upward_imports_between_layers() {
    let edges = graph();
    let mut bad = Vec::new();
    for (from, to) in &edges {
        let Some(lf) = layer(from) else {
            if !from.is_empty() {
                bad.push(format!("{from} is in no layer: add it to LAYERS"));
            }
            continue;
        };
        for t in to {
            let lt = layer(t).expect("every module has a layer");
            let upward = lt > lf || (lt == lf && top(t) != top(from));
            if upward && !pending(from, t) {
                bad.push(format!("{from} -> {t}"));
            }
        }
    }
    assert!(bad.is_empty(), "upward imports: {bad:#?}");
}

#[test]
fn pending_exceptions_still_exist() {
    let edges = graph();
    for (f, t) in PENDING {
        let exists = edges.iter().any(|(from, to)| {
            (from == f || from.starts_with(&format!("{f}::"))) && to.contains(*t)
        });
        assert!(exists, "{f} -> {t} is gone: remove it from PENDING");
    }
}

/// The checker itself: a use tree, `super`, a test module and a comment.
#[test]
fn reader_finds_what_the_compiler_would() {
    let mut known = BTreeMap::new();
    for m in ["a", "a::b", "a::c", "d"] {
        known.insert(m.to_string(), PathBuf::new());
    }
    let src = "use crate::{d, a::{b::X, c}};\n// crate::zzz\nlet s = \"crate::d\";\n\
               #[cfg(test)]\nmod tests { use crate::a::c; }\nfn f() { super::Y; }";
    let code = without_tests(&strip(src));
    let found: BTreeSet<Module> = paths(&code)
        .iter()
        .filter_map(|p| target("a::b", p, &known))
        .collect();
    let want: BTreeSet<Module> = ["d", "a::c", "a"].iter().map(|s| s.to_string()).collect();
    assert_eq!(found, want);
    let in_test = without_tests(&strip("#[cfg(test)]\nmod tests { use crate::d; }"));
    assert!(paths(&in_test).is_empty(), "{in_test}");
}

/// relay/ in three layers (docs/ARCHITECTURE.md): the model imports neither
/// the probe nor the judge; the probe (I/O) and the judge (pure verdicts)
/// never import each other.
#[test]
fn relay_layers_are_one_way() {
    let edges = graph();
    let forbidden: &[(&str, &[&str])] = &[
        ("relay::model", &["relay::probe", "relay::judge"]),
        ("relay::probe", &["relay::judge"]),
        ("relay::judge", &["relay::probe", "catch"]),
        // The catcher is I/O: it records deliveries, the judge decides.
        ("catch", &["relay::judge", "relay::probe"]),
    ];
    let within = |m: &str, layer: &str| m == layer || m.starts_with(&format!("{layer}::"));
    let mut seen_layers = BTreeSet::new();
    for (from, tos) in &edges {
        for (layer, banned) in forbidden {
            if !within(from, layer) {
                continue;
            }
            seen_layers.insert(*layer);
            for to in tos {
                assert!(
                    !banned.iter().any(|b| within(to, b)),
                    "{from} imports {to}: relay's layers must stay one-way"
                );
            }
        }
    }
    // The check would pass vacuously if the layers were renamed.
    assert_eq!(seen_layers.len(), forbidden.len(), "{seen_layers:?}");
}
