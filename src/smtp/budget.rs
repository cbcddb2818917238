//! What is kept of one host's replies. Each reply is capped on the wire
//! ([`super::Limits`]: 64 KB), but a hostile server can send a reply just
//! inside the cap to every command, and a host's record keeps dozens of them.
//! The budget caps the text kept per host, whatever the server sends: once
//! it is spent, a reply keeps its code and the start of its first line (the
//! enhanced status code and the phrase a refusal is known by, RFC 3463 §2),
//! and the record says what was cut.
//!
//! Costs are counted as the text may be written in the worst case: a
//! character that the JSON writer escapes as `\uXXXX` counts six bytes.

use super::Reply;
use serde::Serialize;
use std::sync::Mutex;

/// Reply text kept per host, in JSON bytes: the record's whole line stays
/// well under 256 KB (a reply may also appear as the banner, the deciding
/// reply and in an error message).
pub const HOST_REPLY_BUDGET: usize = 96 * 1024;

/// Of every reply, the start of its first line is kept even when the budget
/// is spent, up to this many JSON bytes.
pub const ALWAYS_KEPT: usize = 96;

/// What the budget had to cut, for the record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RepliesCut {
    /// Replies kept only in part.
    pub replies: u32,
    /// Bytes of reply text not kept.
    pub bytes: u64,
}

impl RepliesCut {
    /// The note the record carries.
    pub fn note(&self) -> String {
        format!(
            "replies cut: {} byte(s) of {} reply(ies) not kept (per-host budget of {} KB of reply text)",
            self.bytes,
            self.replies,
            HOST_REPLY_BUDGET / 1024
        )
    }
}

/// One host's budget, shared by all its connections.
#[derive(Debug)]
pub struct ReplyBudget {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    left: usize,
    cut: RepliesCut,
}

impl Default for ReplyBudget {
    fn default() -> Self {
        ReplyBudget::new(HOST_REPLY_BUDGET)
    }
}

/// What one character costs when written as JSON, at most.
fn char_cost(c: char) -> usize {
    match c {
        '"' | '\\' => 2,
        c if c.is_ascii_control() => 6,
        c if c.is_ascii() => 1,
        _ => 6,
    }
}

/// A line's cost: its characters, its quotes and the comma after it.
/// Counted by bytes (the same sum as [`char_cost`] over the characters: a
/// character beyond ASCII costs 6 at its first byte, 0 at the others).
fn line_cost(line: &str) -> usize {
    line.bytes()
        .map(|b| usize::from(BYTE_COST[usize::from(b)]))
        .sum::<usize>()
        + 3
}

/// [`line_cost`]'s cost of each byte, looked up rather than matched: every
/// reply line a scan reads is counted.
const BYTE_COST: [u8; 256] = {
    let mut cost = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        cost[b] = match b as u8 {
            b'"' | b'\\' => 2,
            0..=0x1f | 0x7f => 6,
            0x20..=0x7e => 1,
            0x80..=0xbf => 0,
            _ => 6,
        };
        b += 1;
    }
    cost
};

impl ReplyBudget {
    pub fn new(bytes: usize) -> Self {
        ReplyBudget {
            state: Mutex::new(State {
                left: bytes,
                cut: RepliesCut::default(),
            }),
        }
    }

    /// Keep what fits of `reply`: whole lines while they fit, then the part
    /// of the next that fits (of the first line, at least [`ALWAYS_KEPT`]),
    /// nothing after it. Returns the bytes cut.
    pub fn keep(&self, reply: &mut Reply) -> usize {
        // A poisoned lock only means another holder panicked: the count is
        // still a count.
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut cut = 0usize;
        let mut kept_lines = reply.lines.len();
        for (i, line) in reply.lines.iter_mut().enumerate() {
            let cost = line_cost(line);
            if cost <= state.left {
                state.left -= cost;
                continue;
            }
            let room = if i == 0 {
                state.left.max(ALWAYS_KEPT)
            } else {
                state.left
            }
            .saturating_sub(3);
            let mut used = 0;
            let mut end = 0;
            for (at, c) in line.char_indices() {
                if used + char_cost(c) > room {
                    break;
                }
                used += char_cost(c);
                end = at + c.len_utf8();
            }
            cut += line.len() - end;
            line.truncate(end);
            state.left = state.left.saturating_sub(used + 3);
            kept_lines = i + 1;
            break;
        }
        for dropped in reply.lines.drain(kept_lines..) {
            cut += dropped.len();
        }
        if cut > 0 {
            state.cut.replies += 1;
            state.cut.bytes += cut as u64;
        }
        cut
    }

    /// What was cut so far, if anything.
    pub fn cut(&self) -> Option<RepliesCut> {
        let state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        (state.cut.replies > 0).then_some(state.cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lines: &[&str]) -> Reply {
        Reply {
            code: 550,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn replies_that_fit_are_kept_whole() {
        let budget = ReplyBudget::new(100);
        let mut r = reply(&["5.7.1 Relaying denied"]);
        assert_eq!(budget.keep(&mut r), 0);
        assert_eq!(r, reply(&["5.7.1 Relaying denied"]));
        assert_eq!(budget.cut(), None);
    }

    #[test]
    fn a_spent_budget_keeps_the_start_of_the_first_line_only() {
        let budget = ReplyBudget::new(10);
        let long = "5.7.1 ".to_string() + &"x".repeat(500);
        let mut r = Reply {
            code: 550,
            lines: vec![long.clone(), "second".into(), "third".into()].into(),
        };
        let cut = budget.keep(&mut r);
        assert_eq!(r.code, 550);
        assert_eq!(r.lines.len(), 1, "later lines dropped");
        assert_eq!(r.lines[0].len(), ALWAYS_KEPT - 3);
        assert!(r.lines[0].starts_with("5.7.1 xxx"));
        assert_eq!(cut, long.len() - (ALWAYS_KEPT - 3) + "second".len() + 5);
        assert_eq!(
            budget.cut(),
            Some(RepliesCut {
                replies: 1,
                bytes: cut as u64
            })
        );
        // Spent: the next one keeps its minimum too, and is counted.
        let mut again = reply(&[&long]);
        budget.keep(&mut again);
        assert_eq!(again.lines[0].len(), ALWAYS_KEPT - 3);
        assert_eq!(budget.cut().map(|c| c.replies), Some(2));
    }

    #[test]
    fn lines_that_fit_stay_whole_and_the_next_is_cut_to_the_rest() {
        // Two lines of 10 cost 13 each; 30 leaves 4 for the third: 1 char.
        let budget = ReplyBudget::new(30);
        let mut r = Reply {
            code: 250,
            lines: vec!["a".repeat(10), "b".repeat(10), "c".repeat(10)].into(),
        };
        assert_eq!(budget.keep(&mut r), 9);
        assert_eq!(
            r.lines[..],
            ["a".repeat(10), "b".repeat(10), "c".to_string()]
        );
    }

    #[test]
    fn the_byte_count_is_the_character_count() {
        for text in [
            "plain",
            "tab\there",
            "é ü ✓ 𝄞",
            "\u{7f}\u{85}\u{202e}",
            "\"q\" \\",
        ] {
            assert_eq!(
                line_cost(text),
                text.chars().map(char_cost).sum::<usize>() + 3,
                "{text:?}"
            );
        }
    }

    #[test]
    fn escaped_characters_cost_what_they_are_written_as() {
        assert_eq!(line_cost("ab"), 5);
        assert_eq!(line_cost("\u{1}"), 9);
        assert_eq!(line_cost("é"), 9);
        assert_eq!(line_cost("\""), 5);
        // Cutting never splits a character.
        let budget = ReplyBudget::new(0);
        let mut r = reply(&[&"é".repeat(100)]);
        budget.keep(&mut r);
        assert_eq!(r.lines[0].chars().count(), (ALWAYS_KEPT - 3) / 6);
    }

    #[test]
    fn the_total_kept_is_bounded_whatever_is_sent() {
        let budget = ReplyBudget::new(HOST_REPLY_BUDGET);
        let line = "\u{1}".repeat(4000);
        let mut kept = 0;
        for _ in 0..200 {
            let mut r = Reply {
                code: 550,
                lines: vec![line.clone(); 15].into(),
            };
            budget.keep(&mut r);
            kept += r.lines.iter().map(|l| line_cost(l)).sum::<usize>();
        }
        assert!(kept <= HOST_REPLY_BUDGET + 200 * ALWAYS_KEPT, "{kept}");
        assert!(budget.cut().is_some_and(|c| c.replies >= 190));
    }
}
