//! Phrase lists looked for in server text, all of a list in one pass: an
//! Aho-Corasick automaton (the `aho-corasick` crate's DFA) fed the text
//! byte by byte, lower-cased, with `<…>` paths blanked out when asked
//! ([`without_paths`]). Equivalent to `text.contains(phrase)` for each
//! phrase of lower-case ASCII, overlapping phrases included, and a property
//! test holds it to that.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};
use std::collections::HashMap;

/// A set of phrases, each with tag bits; a scan gives the OR of the tags of
/// the phrases found.
///
/// The automaton is built by `aho-corasick` and then laid out flat: one
/// row per state, one column per class of bytes (each byte that occurs in
/// a phrase is a class of its own, every other byte shares class 0), and
/// the tags of every phrase that ends in a state kept with it. A byte of
/// text then costs two table reads.
#[derive(Debug)]
pub struct PhraseSet {
    /// The phrases and their tags, as given.
    phrases: Vec<(&'static str, u32)>,
    /// The automaton; `None` only if it could not be built (for the short
    /// constant lists here it always is: the unit tests build each one),
    /// and then the phrases are looked for one by one.
    table: Option<Table>,
}

/// The automaton laid out flat.
#[derive(Debug)]
struct Table {
    /// The class of each byte.
    class: [u8; 256],
    /// Classes per row.
    width: usize,
    /// `next[state * width + class]`: the state after the byte.
    next: Vec<u16>,
    /// The tags of the phrases that end on arriving in each state.
    tags: Vec<u32>,
}

impl PhraseSet {
    /// The set of `phrases` (lower-case ASCII), with its automaton.
    pub fn new(phrases: &[(&'static str, u32)]) -> PhraseSet {
        PhraseSet {
            phrases: phrases.to_vec(),
            table: Table::new(phrases),
        }
    }

    /// Whether the automaton was built (else [`PhraseSet::scan`] looks for
    /// each phrase alone).
    pub fn has_automaton(&self) -> bool {
        self.table.is_some()
    }

    /// The tags of the phrases in `lines` joined by a space, lower-cased,
    /// paths blanked out when `blank_paths` (a reply's text as
    /// `without_paths(&reply.text()).to_ascii_lowercase()` gives it).
    pub fn scan(&self, lines: &[String], blank_paths: bool) -> u32 {
        match &self.table {
            Some(table) => table.scan(lines, blank_paths),
            None => self.one_by_one(lines, blank_paths),
        }
    }

    /// What the automaton stands for: each phrase looked for alone in the
    /// text built whole.
    fn one_by_one(&self, lines: &[String], blank_paths: bool) -> u32 {
        let joined = lines.join(" ");
        let text = if blank_paths {
            without_paths(&joined)
        } else {
            joined
        }
        .to_ascii_lowercase();
        self.phrases
            .iter()
            .filter(|(p, _)| text.contains(p))
            .fold(0, |bits, (_, t)| bits | t)
    }
}

impl Table {
    fn new(phrases: &[(&str, u32)]) -> Option<Table> {
        // Standard semantics: every phrase that ends at a byte is reported
        // there, overlapping ones included, as `str::contains` finds it.
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .build(phrases.iter().map(|(p, _)| p))
            .ok()?;
        let mut class = [0u8; 256];
        // One byte of each class: class 0's stands for every byte that
        // occurs in no phrase (they all lead where any one of them does).
        let mut representative =
            vec![(0..=255u8).find(|b| !phrases.iter().any(|(p, _)| p.as_bytes().contains(b)))?];
        for b in 0..=255u8 {
            if phrases.iter().any(|(p, _)| p.as_bytes().contains(&b)) {
                class[usize::from(b)] = u8::try_from(representative.len()).ok()?;
                representative.push(b);
            }
        }
        // Upper-case letters read as their lower-case selves: the text is
        // matched lower-cased without being lowered first.
        if phrases
            .iter()
            .any(|(p, _)| p.bytes().any(|b| b.is_ascii_uppercase()))
        {
            return None;
        }
        for b in b'A'..=b'Z' {
            class[usize::from(b)] = class[usize::from(b.to_ascii_lowercase())];
        }
        let width = representative.len();
        // Number the states reachable from the start, breadth first.
        let start = dfa.start_state(Anchored::No).ok()?;
        let mut ids: HashMap<StateID, u16> = HashMap::from([(start, 0)]);
        let mut order = vec![start];
        let mut next = Vec::new();
        let mut tags = Vec::new();
        let mut i = 0;
        while let Some(&sid) = order.get(i) {
            i += 1;
            let mut here = 0;
            if dfa.is_match(sid) {
                for m in 0..dfa.match_len(sid) {
                    here |= phrases.get(dfa.match_pattern(sid, m).as_usize())?.1;
                }
            }
            tags.push(here);
            for &b in &representative {
                let to = dfa.next_state(Anchored::No, sid, b);
                let n = match ids.get(&to) {
                    Some(&n) => n,
                    None => {
                        let n = u16::try_from(order.len()).ok()?;
                        ids.insert(to, n);
                        order.push(to);
                        n
                    }
                };
                next.push(n);
            }
        }
        Some(Table {
            class,
            width,
            next,
            tags,
        })
    }

    /// [`PhraseSet::scan`] through the automaton.
    fn scan(&self, lines: &[String], blank_paths: bool) -> u32 {
        let mut found = 0;
        let mut state = 0usize;
        // The class table folds case: no byte is lowered here.
        let mut step = |b: u8| {
            let class = usize::from(self.class[usize::from(b)]);
            state = usize::from(self.next[state * self.width + class]);
            found |= self.tags[state];
        };
        // Byte by byte: `<` and `>` are ASCII, and no byte of a multi-byte
        // UTF-8 character is, so this blanks what `without_paths` blanks.
        let mut depth = 0u32;
        for (n, line) in lines.iter().enumerate() {
            if n > 0 && depth == 0 {
                step(b' ');
            }
            let bytes = line.as_bytes();
            if depth == 0 && !(blank_paths && bytes.contains(&b'<')) {
                // The usual line, no path in it: every byte as it is.
                bytes.iter().for_each(|&b| step(b));
                continue;
            }
            for &b in bytes {
                match b {
                    b'<' if blank_paths => depth += 1,
                    b'>' if depth > 0 => {
                        depth -= 1;
                        step(b'<');
                        step(b'>');
                    }
                    _ if depth == 0 => step(b),
                    _ => {}
                }
            }
        }
        found
    }
}

/// The text with `<…>` paths blanked out: servers quote the address they
/// refuse, and an address (`<v%example.net@starttls.example.org>`) must not
/// be read as a phrase ("starttls").
pub fn without_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0u32;
    for c in text.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => {
                depth -= 1;
                out.push_str("<>");
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    const PHRASES: &[(&str, u32)] = &[
        ("relay access denied", 1),
        ("access denied", 2),
        ("starttls", 4),
        ("tls required", 8),
        ("... relaying denied", 16),
        ("nullmx", 32),
    ];

    /// What the automaton stands for: each phrase looked for alone.
    fn one_by_one(lines: &[String], blank_paths: bool) -> u32 {
        PhraseSet::new(PHRASES).one_by_one(lines, blank_paths)
    }

    fn set() -> PhraseSet {
        let set = PhraseSet::new(PHRASES);
        assert!(set.has_automaton());
        set
    }

    #[test]
    fn overlapping_phrases_split_lines_and_paths() {
        let s = set();
        let lines = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(s.scan(&lines(&["5.7.1 Relay Access Denied"]), true), 3);
        assert_eq!(s.scan(&lines(&["relay access", "denied"]), true), 3);
        assert_eq!(s.scan(&lines(&["<x@starttls.example> ok"]), true), 0);
        assert_eq!(s.scan(&lines(&["<x@starttls.example> ok"]), false), 4);
        assert_eq!(s.scan(&lines(&["a>b... Relaying denied"]), true), 16);
        assert_eq!(s.scan(&lines(&["nullm<a>x"]), true), 0);
    }

    proptest::proptest! {
        /// One pass finds exactly what a search for each phrase alone
        /// finds: phrases split over lines, cut by paths, overlapping one
        /// another, in any case.
        #[test]
        fn one_pass_finds_what_each_phrase_alone_finds(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::sample::select(PHRASES.iter().map(|(p, _)| *p).collect::<Vec<_>>())
                            .prop_map(String::from),
                        "[a-zA-Z <>.:'-]{0,12}",
                        proptest::sample::select(vec![
                            "<", ">", "relay", "relay access", "access denied", "denied",
                            "tls", "required", "STARTTLS", "null", "mx", "é", "\u{1b}",
                        ]).prop_map(String::from),
                    ],
                    0..6,
                ).prop_map(|parts| parts.concat()),
                1..4,
            ),
            blank_paths: bool,
        ) {
            proptest::prop_assert_eq!(set().scan(&lines, blank_paths), one_by_one(&lines, blank_paths));
        }
    }
}
