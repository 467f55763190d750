//! Large sets of IPv4 `host` terms of a top-level disjunction, lowered to set lookups.
//!
//! The kernel's verifier walks every branch of a filter, in every program it is spliced into:
//! 2,000 OR'd hosts are about 10,000 compares at L2 and cost about 0.1 s per program. Here the
//! terms `host A`, `src host A` and `dst host A` (A an IPv4 address in dotted-quad form) of a
//! plain `or` chain are gathered per qualifier; a qualifier with at least [`LOWER_MIN`] terms
//! is replaced by ONE term naming a sentinel address, the expression is compiled by libpcap,
//! and every `jeq #sentinel` of the program then means "A is one of the set's addresses"
//! ([`HostSet`]). The translation turns it into one hash map lookup (or, without a map, a
//! chain of compares).
//!
//! Why the meaning is kept: `host A` is a disjunction of conjuncts each holding one compare of a
//! packet field with A (`ip and ip src A`, `ip and ip dst A`, the same for ARP and RARP), so
//! "some address of the set" is the same disjunction with each compare replaced by "the field
//! is in the set". The program libpcap produced must treat the sentinel as an opaque constant:
//! it is compiled twice, with two different sentinels, and the programs must differ in exactly
//! the `jeq` constants that name them; otherwise (the rest of the expression uses the
//! constant, or the optimiser treated it specially) nothing is lowered.

use std::net::Ipv4Addr;

use crate::cbpf_insn::CbpfInsn;
use crate::disjunction;
use crate::libpcap;

/// Terms of one qualifier needed before they are lowered to a set.
pub const LOWER_MIN: usize = 16;

/// The two sentinel addresses tried per qualifier (host, src host, dst host): addresses from
/// 240.0.0.0/4 (reserved), rarely in a filter; a filter that names them is simply not lowered.
const SENTINELS: [[u32; 3]; 2] = [
    [0xf0fe_0001, 0xf0fe_0002, 0xf0fe_0003],
    [0xf0fe_1001, 0xf0fe_1002, 0xf0fe_1003],
];

const JEQ_K: u16 = 0x15;
const RET_A: u16 = 0x16;

/// The addresses one `jeq #sentinel` of a lowered program stands for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HostSet {
    /// The constant of the `jeq` instructions that test membership in this set.
    pub sentinel: u32,
    /// The addresses (host byte order, as the classic program compares them), sorted, without
    /// duplicates.
    pub addrs: Vec<u32>,
}

/// Which fields of a packet a term compares with its address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Qualifier {
    Any,
    Src,
    Dst,
}

impl Qualifier {
    fn index(self) -> usize {
        match self {
            Qualifier::Any => 0,
            Qualifier::Src => 1,
            Qualifier::Dst => 2,
        }
    }

    fn keyword(self) -> &'static str {
        match self {
            Qualifier::Any => "host",
            Qualifier::Src => "src host",
            Qualifier::Dst => "dst host",
        }
    }
}

/// A dotted quad with plain decimal octets (no leading zeros, which some parsers read as
/// octal), as libpcap reads it.
fn dotted_quad(text: &str) -> Option<u32> {
    let mut octets = text.split('.');
    let mut value = 0u32;
    for _ in 0..4 {
        let o = octets.next()?;
        if o.is_empty() || o.len() > 3 || (o.len() > 1 && o.starts_with('0')) {
            return None;
        }
        if !o.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        value = (value << 8) | u32::from(o.parse::<u8>().ok()?);
    }
    octets.next().is_none().then_some(value)
}

/// The qualifier and address of a `host A`, `src host A` or `dst host A` term.
fn host_term(term: &str) -> Option<(Qualifier, u32)> {
    let words: Vec<&str> = term.split_whitespace().collect();
    let (q, addr) = match words.as_slice() {
        ["host", a] => (Qualifier::Any, a),
        ["src", "host", a] => (Qualifier::Src, a),
        ["dst", "host", a] => (Qualifier::Dst, a),
        _ => return None,
    };
    Some((q, dotted_quad(addr)?))
}

/// A program with sets: the classic instructions (their `jeq #sentinel` test membership) and
/// the sets.
pub(crate) struct Lowered {
    pub(crate) insns: Vec<CbpfInsn>,
    pub(crate) sets: Vec<HostSet>,
}

/// `expr` with its large host sets lowered, for the libpcap link type `dlt`, or `None` when
/// it has none (not a plain disjunction, fewer than [`LOWER_MIN`] host terms of each
/// qualifier, or a program that does not keep the sentinels opaque).
pub(crate) fn lower(expr: &str, dlt: i32) -> Option<Lowered> {
    let terms = disjunction::top_level_terms(expr)?;
    let mut sets: [Vec<u32>; 3] = Default::default();
    for t in &terms {
        if let Some((q, a)) = host_term(t) {
            sets[q.index()].push(a);
        }
    }
    let lowered: Vec<Qualifier> = [Qualifier::Any, Qualifier::Src, Qualifier::Dst]
        .into_iter()
        .filter(|q| sets[q.index()].len() >= LOWER_MIN)
        .collect();
    if lowered.is_empty() {
        return None;
    }
    let rest: Vec<&str> = terms
        .iter()
        .copied()
        .filter(|t| !host_term(t).is_some_and(|(q, _)| lowered.contains(&q)))
        .collect();
    let compile_with = |sentinels: &[u32; 3]| -> Option<Vec<CbpfInsn>> {
        let mut text: Vec<String> = rest.iter().map(|t| t.to_string()).collect();
        for q in &lowered {
            let s = Ipv4Addr::from(sentinels[q.index()]);
            text.push(format!("{} {s}", q.keyword()));
        }
        let text = text.join(" or ");
        let insns = disjunction::compile_split(&text, dlt)
            .or_else(|| libpcap::compile(&text, dlt, true).ok())?;
        (!insns.iter().any(|i| i.code == RET_A)).then_some(insns)
    };
    let a = compile_with(&SENTINELS[0])?;
    let b = compile_with(&SENTINELS[1])?;
    if a.len() != b.len() {
        return None;
    }
    let mut seen = [false; 3];
    for (x, y) in a.iter().zip(&b) {
        if x == y {
            // A sentinel must never survive unchanged: that would be the rest's own constant.
            if lowered.iter().any(|q| x.k == SENTINELS[0][q.index()]) {
                return None;
            }
            continue;
        }
        let same_shape = x.code == y.code && x.jt == y.jt && x.jf == y.jf;
        let q = lowered
            .iter()
            .find(|q| x.k == SENTINELS[0][q.index()] && y.k == SENTINELS[1][q.index()])?;
        if !same_shape || x.code != JEQ_K {
            return None;
        }
        seen[q.index()] = true;
    }
    let mut out_sets = Vec::new();
    for q in &lowered {
        if !seen[q.index()] {
            // libpcap dropped the set's compares (it cannot match at this layer): the
            // program is right as it is, the set is not needed.
            continue;
        }
        let mut addrs = std::mem::take(&mut sets[q.index()]);
        addrs.sort_unstable();
        addrs.dedup();
        out_sets.push(HostSet {
            sentinel: SENTINELS[0][q.index()],
            addrs,
        });
    }
    Some(Lowered {
        insns: a,
        sets: out_sets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(prefix: &str, n: usize) -> Vec<String> {
        (1..=n)
            .map(|i| format!("{prefix} 10.1.{}.{}", i / 256, i % 256))
            .collect()
    }

    #[test]
    fn terms_are_read_strictly() {
        assert_eq!(
            host_term("host 10.0.0.1"),
            Some((Qualifier::Any, 0x0a00_0001))
        );
        assert_eq!(
            host_term("src host 1.2.3.4"),
            Some((Qualifier::Src, 0x0102_0304))
        );
        assert_eq!(
            host_term("dst  host 255.0.0.0"),
            Some((Qualifier::Dst, 0xff00_0000))
        );
        for t in [
            "host 010.0.0.1",
            "host 10.0.0",
            "host 10.0.0.1.2",
            "host 10.0.0.256",
            "host a.example",
            "ip host 10.0.0.1",
            "host 10.0.0.1 and tcp",
            "not host 10.0.0.1",
            "host ::1",
        ] {
            assert_eq!(host_term(t), None, "{t}");
        }
    }

    #[test]
    fn large_host_sets_become_one_compare_each() {
        let mut terms = hosts("host", 40);
        terms.extend(hosts("src host", 20));
        terms.extend(hosts("dst host", 3));
        terms.push("udp port 53".into());
        let expr = terms.join(" or ");
        let l = lower(&expr, 1).expect("lowered");
        assert_eq!(l.sets.len(), 2);
        assert_eq!(l.sets[0].addrs.len(), 40);
        assert_eq!(l.sets[1].addrs.len(), 20);
        // host: IPv4 src, dst, ARP and RARP sender and target share two loads each.
        let uses = |s: u32| {
            l.insns
                .iter()
                .filter(|i| i.code == JEQ_K && i.k == s)
                .count()
        };
        assert!(
            uses(l.sets[0].sentinel) >= 2,
            "{}",
            uses(l.sets[0].sentinel)
        );
        assert!(uses(l.sets[1].sentinel) >= 1);
        // The three dst host terms stay compares.
        assert!(l.insns.iter().any(|i| i.k == 0x0a01_0003));
        assert!(l.insns.len() < 60, "{} instructions", l.insns.len());
    }

    #[test]
    fn small_sets_and_other_shapes_are_not_lowered() {
        assert!(lower(&hosts("host", LOWER_MIN - 1).join(" or "), 1).is_none());
        let and = format!("{} and tcp", hosts("host", 20).join(" or "));
        assert!(lower(&and, 1).is_none());
        // The rest naming a sentinel keeps the expression as it is.
        let mut terms = hosts("host", 20);
        terms.push(format!("ip host {}", Ipv4Addr::from(SENTINELS[0][0])));
        assert!(lower(&terms.join(" or "), 1).is_none());
    }
}
