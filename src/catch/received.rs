//! The hop chain of a caught message, from its `Received:` header fields
//! (RFC 5321 §4.4: every SMTP server that takes a message prepends one,
//! `from <client> by <server> … for <recipient>; <date>`). The text comes
//! from whoever relayed the message: it is sanitised and capped here.

use crate::output::sanitize::{terminal, truncate};

/// Hops kept at most (RFC 5321 §6.3 suggests 100 as the loop limit; a chain
/// longer than this is a loop or a flood).
pub const MAX_HOPS: usize = 30;
/// Header fields examined at most.
const MAX_FIELDS: usize = 1000;
/// Characters kept of one name in a hop.
const MAX_NAME: usize = 100;

/// The `Received:` hops of `message` (header section up to the first empty
/// line), oldest first, each as `from A by B [for <C>]`.
pub fn hops(message: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(message);
    let mut fields: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Folded (RFC 5322 §2.2.3): continues the field above.
            if let Some(last) = fields.last_mut() {
                if last.len() < 4096 {
                    last.push(' ');
                    last.push_str(line.trim());
                }
            }
            continue;
        }
        if fields.len() >= MAX_FIELDS {
            break;
        }
        fields.push(line.to_string());
    }
    let mut out: Vec<String> = fields
        .iter()
        .filter_map(|f| {
            let (name, value) = f.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("received")
                .then(|| hop(value))
                .flatten()
        })
        .take(MAX_HOPS)
        .collect();
    out.reverse();
    out
}

/// One hop: the words after `from`, `by` and `for` (before the `;` and date).
fn hop(value: &str) -> Option<String> {
    let clauses = value.split(';').next().unwrap_or("");
    let words: Vec<&str> = clauses.split_whitespace().collect();
    let after = |key: &str| {
        words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(key))
            .and_then(|i| words.get(i + 1))
            .map(|w| clean(w))
    };
    let parts: Vec<String> = [
        ("from", after("from")),
        ("by", after("by")),
        ("for", after("for")),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
    .collect();
    if parts.iter().all(|p| p.starts_with("for ")) {
        return None;
    }
    Some(parts.join(" "))
}

fn clean(word: &str) -> String {
    truncate(&terminal(word), MAX_NAME).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn postfix_chain_oldest_first() {
        let msg = b"Received: from mx2.lab.test (mx2.lab.test [127.0.25.2])\r\n\
            \tby mx1.lab.test (Postfix) with ESMTP id 4AB\r\n\
            \tfor <relaytest%example.net@mx2.lab.test>; Wed, 2 Dec 2026 03:00:00 +0000\r\n\
            Received: from relayscan.invalid (localhost [127.0.0.1])\r\n\
            \tby mx2.lab.test (Postfix) with ESMTP id 1F2; Wed, 2 Dec 2026 03:00:00 +0000\r\n\
            Subject: x\r\n\r\nReceived: from body by body\r\n";
        // Prepended in travel order: the bottom one is the first hop.
        assert_eq!(
            hops(msg),
            vec![
                "from relayscan.invalid by mx2.lab.test",
                "from mx2.lab.test by mx1.lab.test for <relaytest%example.net@mx2.lab.test>",
            ]
        );
    }

    #[test]
    fn hostile_fields_are_sanitised_and_capped() {
        let mut msg = String::new();
        for i in 0..500 {
            msg.push_str(&format!(
                "Received: from a{i}\x1b[31m by b{}\r\n",
                "x".repeat(300)
            ));
        }
        let h = hops(msg.as_bytes());
        assert_eq!(h.len(), MAX_HOPS);
        assert!(h
            .iter()
            .all(|x| !x.contains('\x1b') && x.chars().count() < 260));
        assert!(hops(b"Received: ; no names\r\n").is_empty());
        assert!(hops(b"").is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(data in proptest::collection::vec(any::<u8>(), 0..4000)) {
            let h = hops(&data);
            prop_assert!(h.len() <= MAX_HOPS);
            for hop in h {
                prop_assert!(hop.chars().count() <= 3 * (MAX_NAME + 5));
                prop_assert!(!hop.chars().any(char::is_control));
            }
        }

        #[test]
        fn finds_every_well_formed_hop(names in proptest::collection::vec("[a-z]{1,10}\\.test", 1..20)) {
            let msg: String = names
                .iter()
                .rev()
                .map(|n| format!("Received: from c.{n} by {n}; date\r\n"))
                .collect();
            let h = hops(msg.as_bytes());
            let want: Vec<String> = names.iter().map(|n| format!("from c.{n} by {n}")).collect();
            prop_assert_eq!(h, want);
        }
    }
}
