//! Large top-level disjunctions (`host a or host b or ...`) compiled in pieces.
//!
//! libpcap's optimiser is superlinear in the size of an expression: 200 OR'd hosts take about
//! half a second, 2,000 more than 30 s and hundreds of MB. Optimising small groups of terms
//! is cheap and keeps most of the gain (the shared protocol checks of a group are folded), so
//! an expression that is a plain chain of many self-standing terms joined by `or` is compiled
//! as groups of [`GROUP_TERMS`] terms, each optimised by libpcap, and the classic programs are
//! chained: where a group says "no match" the next group runs instead. Every libpcap program
//! returns 0 or the snapshot length, so the chain matches exactly when one group does, which
//! is the meaning of `or`.
//!
//! Only expressions whose split cannot change their meaning are split (anything else is
//! compiled whole): no `and` at the top level (pcap's `and` and `or` have equal precedence),
//! balanced parentheses, each term starting with a protocol or qualifier keyword (a bare
//! `10.0.0.2` after `src host a or` inherits `src host`, on its own it would mean `host`), and
//! none of the keywords that change the offsets of the terms after them (`vlan`, `mpls`,
//! `pppoes`, `pppoed`, `geneve`). A group libpcap refuses, or a program that returns the
//! accumulator, sends the expression back to the whole compile, which reports the error.

use crate::cbpf_insn::CbpfInsn;
use crate::libpcap;

/// Terms per group: libpcap optimises 32 OR'd hosts in about 2 ms, and the per-host code
/// stays within a few instructions of the whole expression's.
pub(crate) const GROUP_TERMS: usize = 32;

/// Expressions with more top-level terms than this are split.
pub(crate) const SPLIT_ABOVE: usize = 2 * GROUP_TERMS;

/// Keywords a self-standing term may start with (after `not`, `!` or `(`).
const LEADING_KEYWORDS: &[&str] = &[
    "host",
    "net",
    "port",
    "portrange",
    "src",
    "dst",
    "ip",
    "ip6",
    "tcp",
    "udp",
    "sctp",
    "icmp",
    "icmp6",
    "igmp",
    "arp",
    "rarp",
    "ether",
    "proto",
    "less",
    "greater",
    "inbound",
    "outbound",
];

/// Keywords after which libpcap reads the rest of the expression at other offsets.
const OFFSET_CHANGING: &[&str] = &["vlan", "mpls", "pppoes", "pppoed", "geneve"];

const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;
const JA: u16 = 0x05;

/// The classic program of `expr` for the libpcap link type `dlt`, compiled in groups, or
/// `None` when the expression is not a large disjunction that can be split, or a group did not
/// compile (the caller then compiles it whole).
pub(crate) fn compile_split(expr: &str, dlt: i32) -> Option<Vec<CbpfInsn>> {
    let terms = top_level_terms(expr)?;
    if terms.len() <= SPLIT_ABOVE || !terms.iter().all(|t| self_standing(t)) {
        return None;
    }
    let mut groups = Vec::with_capacity(terms.len().div_ceil(GROUP_TERMS));
    for chunk in terms.chunks(GROUP_TERMS) {
        let text = chunk.join(" or ");
        let insns = libpcap::compile(&text, dlt, true).ok()?;
        if insns.iter().any(|i| i.code == RET_A) {
            return None;
        }
        groups.push(insns);
    }
    Some(chain(groups))
}

/// Joins group programs: in every group but the last, `ret #0` becomes a jump to the first
/// instruction after the group. Jump offsets inside a group stay valid: one instruction
/// replaces one.
fn chain(groups: Vec<Vec<CbpfInsn>>) -> Vec<CbpfInsn> {
    let last = groups.len().saturating_sub(1);
    let mut out = Vec::with_capacity(groups.iter().map(Vec::len).sum());
    for (g, group) in groups.into_iter().enumerate() {
        let len = group.len();
        for (i, insn) in group.into_iter().enumerate() {
            if g != last && insn.code == RET_K && insn.k == 0 {
                let to_end = u32::try_from(len - 1 - i).unwrap_or(u32::MAX);
                out.push(CbpfInsn::new(JA, 0, 0, to_end));
            } else {
                out.push(insn);
            }
        }
    }
    out
}

/// The terms of a chain `t1 or t2 or ...` at parenthesis depth 0 (inside the parentheses that
/// enclose the whole expression, if any), or `None` when the expression has a top-level `and`
/// (`&&`) or unbalanced parentheses.
pub(crate) fn top_level_terms(expr: &str) -> Option<Vec<&str>> {
    let expr = strip_enclosing_parens(expr.trim());
    let bytes = expr.as_bytes();
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth = depth.checked_sub(1)?,
            b'|' if depth == 0 && bytes.get(i + 1) == Some(&b'|') => {
                terms.push(&expr[start..i]);
                i += 2;
                start = i;
                continue;
            }
            b'&' if depth == 0 && bytes.get(i + 1) == Some(&b'&') => return None,
            c if depth == 0 && c.is_ascii_alphabetic() && word_starts(bytes, i) => {
                let end = word_end(bytes, i);
                match &expr[i..end] {
                    "or" => {
                        terms.push(&expr[start..i]);
                        start = end;
                    }
                    "and" => return None,
                    _ => {}
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return None;
    }
    terms.push(&expr[start..]);
    let terms: Vec<&str> = terms.into_iter().map(str::trim).collect();
    if terms.iter().any(|t| t.is_empty()) {
        return None;
    }
    Some(terms)
}

/// `expr` without the parentheses that enclose all of it (`((a or b))` -> `a or b`).
fn strip_enclosing_parens(mut expr: &str) -> &str {
    while let Some(inner) = expr.strip_prefix('(').and_then(|e| e.strip_suffix(')')) {
        // `(a) or (b)` starts and ends with parentheses that are not a pair.
        let mut depth = 0usize;
        let pair = inner.bytes().all(|b| {
            match b {
                b'(' => depth += 1,
                b')' if depth == 0 => return false,
                b')' => depth -= 1,
                _ => {}
            }
            true
        });
        if !pair || depth != 0 {
            break;
        }
        expr = inner.trim();
    }
    expr
}

/// True when the byte at `i` begins a word (a host name may contain `-` and `.`, so they
/// count as word characters: `or` inside `gw-or-1` is no operator).
fn word_starts(bytes: &[u8], i: usize) -> bool {
    i == 0 || !is_word_byte(bytes[i - 1])
}

fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && is_word_byte(bytes[i]) {
        i += 1;
    }
    i
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'/' | b'\\')
}

/// True when `term` means the same on its own as after `... or`: it starts (after any `not`,
/// `!` and `(`) with a keyword, not with a bare name or number that would inherit the previous
/// term's qualifiers, and it has no offset-changing keyword.
fn self_standing(term: &str) -> bool {
    let words: Vec<&str> = term
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == '!')
        .filter(|w| !w.is_empty())
        .collect();
    if words.iter().any(|w| OFFSET_CHANGING.contains(w)) {
        return false;
    }
    match words.iter().find(|w| **w != "not") {
        Some(first) => LEADING_KEYWORDS.contains(first),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_only_plain_disjunctions() {
        assert_eq!(
            top_level_terms("host a or (tcp or udp) || not port 1"),
            Some(vec!["host a", "(tcp or udp)", "not port 1"])
        );
        assert_eq!(top_level_terms("host a or host b and tcp"), None);
        assert_eq!(top_level_terms("host a or host b && tcp"), None);
        assert_eq!(top_level_terms("(host a or host b"), None);
        assert_eq!(top_level_terms("host a or"), None);
        assert_eq!(top_level_terms("host gw-or-1"), Some(vec!["host gw-or-1"]));
        assert_eq!(
            top_level_terms(" ((tcp or udp)) "),
            Some(vec!["tcp", "udp"])
        );
        assert_eq!(
            top_level_terms("(tcp) or (udp)"),
            Some(vec!["(tcp)", "(udp)"])
        );
        assert_eq!(
            top_level_terms("host a or (host b and tcp)"),
            Some(vec!["host a", "(host b and tcp)"])
        );
    }

    #[test]
    fn bare_names_and_offset_changes_are_not_self_standing() {
        assert!(self_standing("host 10.0.0.1"));
        assert!(self_standing("not (src host 10.0.0.1)"));
        assert!(self_standing("! tcp"));
        assert!(!self_standing("10.0.0.1"));
        assert!(!self_standing("(10.0.0.1 or 10.0.0.2)"));
        assert!(!self_standing("vlan 10"));
        assert!(!self_standing("tcp or vlan"));
        assert!(!self_standing("not"));
    }

    #[test]
    fn small_or_unsplittable_expressions_are_compiled_whole() {
        let small = (1..=SPLIT_ABOVE)
            .map(|i| format!("host 10.0.0.{i}"))
            .collect::<Vec<_>>()
            .join(" or ");
        assert_eq!(compile_split(&small, 1), None);
        let inherit = format!("{small} or 10.0.1.1");
        assert_eq!(compile_split(&inherit, 1), None);
    }

    #[test]
    fn groups_chain_to_the_next_on_no_match() {
        let big = (1..=SPLIT_ABOVE + 1)
            .map(|i| format!("host 10.0.{}.{}", i / 256, i % 256))
            .collect::<Vec<_>>()
            .join(" or ");
        let insns = compile_split(&big, 1).expect("a large disjunction is split");
        // Only the last group still returns 0; every earlier "no match" jumps on.
        let jumps = insns.iter().filter(|i| i.code == JA).count();
        assert!(jumps >= 2, "{jumps} chaining jumps");
    }
}
