//! Classic BPF programs as libpcap compiles them, for one of the two data layers.

use std::fmt;

pub use crate::cbpf_insn::CbpfInsn;
use crate::disjunction;
use crate::host_sets;
pub use crate::host_sets::HostSet;
use crate::libpcap;
use crate::FilterError;

/// Where the data the filter sees begins.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Layer {
    /// Data starts at the MAC header (libpcap `DLT_EN10MB` = 1, Ethernet).
    L2,
    /// Data starts at the network header (libpcap link type 12, `DLT_RAW`: raw IPv4/IPv6).
    L3,
}

impl Layer {
    /// The libpcap data link type used to compile for this layer.
    pub fn dlt(self) -> i32 {
        match self {
            Layer::L2 => 1,
            Layer::L3 => 12,
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::L2 => "L2 (Ethernet)",
            Layer::L3 => "L3 (raw IP)",
        })
    }
}

/// Why a [`Cbpf`] can never match.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RejectReason {
    /// libpcap could not compile the expression for L3 (e.g. `ether host ...`), but it compiled
    /// for L2: the program is the documented reject-all (`ret #0`), as pwru injects it. Carries
    /// libpcap's message for L3.
    L2Only(String),
    /// No packet of this layer can match: libpcap's optimiser proved it (for `arp` on raw IP it
    /// reports "expression rejects all packets" while the expression compiles for L2), or every
    /// exit of the program returns 0.
    NeverMatches,
}

/// A classic BPF program compiled from a pcap-filter expression for one layer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Cbpf {
    insns: Vec<CbpfInsn>,
    layer: Layer,
    expr: String,
    reject: Option<RejectReason>,
    sets: Vec<HostSet>,
}

impl Cbpf {
    /// A program from raw instructions (e.g. hand-written or generated in tests). It is not
    /// validated here; [`crate::translate()`] validates.
    pub fn from_insns(insns: Vec<CbpfInsn>, layer: Layer) -> Cbpf {
        let reject = if never_matches(&insns) {
            Some(RejectReason::NeverMatches)
        } else {
            None
        };
        Cbpf {
            insns,
            layer,
            expr: String::new(),
            reject,
            sets: Vec::new(),
        }
    }

    /// The documented reject-all program: the single instruction `ret #0`.
    pub fn reject_all(layer: Layer, reason: RejectReason) -> Cbpf {
        Cbpf {
            insns: vec![CbpfInsn::new(RET_K, 0, 0, 0)],
            layer,
            expr: String::new(),
            reject: Some(reason),
            sets: Vec::new(),
        }
    }

    /// The instructions.
    pub fn insns(&self) -> &[CbpfInsn] {
        &self.insns
    }

    /// The address sets of a program from [`compile_lowered`]: each `jeq #k` whose `k` is a
    /// set's [`HostSet::sentinel`] tests whether A is one of the set's addresses. Empty for
    /// plain classic programs (then every instruction means what classic BPF says).
    pub fn sets(&self) -> &[HostSet] {
        &self.sets
    }

    /// The layer the program was compiled for.
    pub fn layer(&self) -> Layer {
        self.layer
    }

    /// The expression it was compiled from (empty for [`Cbpf::from_insns`]).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// True when no packet can ever match (see [`Cbpf::reject_reason`]). pwru silently injects
    /// such programs for L2-only expressions at L3; here the caller can see it.
    pub fn rejects_all(&self) -> bool {
        self.reject.is_some()
    }

    /// Why the program rejects everything, if it does.
    pub fn reject_reason(&self) -> Option<&RejectReason> {
        self.reject.as_ref()
    }
}

impl fmt::Display for Cbpf {
    /// One instruction a line, as `tcpdump -dd` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for insn in &self.insns {
            writeln!(f, "{insn},")?;
        }
        Ok(())
    }
}

/// What libpcap's optimiser says when it proves that nothing can match.
const REJECTS_ALL_MESSAGE: &str = "expression rejects all packets";

const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;

fn never_matches(insns: &[CbpfInsn]) -> bool {
    !insns.is_empty()
        && insns
            .iter()
            .all(|i| i.code != RET_A && !(i.code == RET_K && i.k != 0))
}

/// Compiles a pcap-filter expression (tcpdump syntax) with libpcap for `layer`, optimised, with
/// the netmask unknown (as pwru; `ip broadcast` is therefore an error).
///
/// - The empty expression accepts everything.
/// - An expression libpcap refuses for [`Layer::L3`] but accepts for [`Layer::L2`] (`ether
///   host ..`, `ether proto ..`) yields the reject-all program `ret #0` with
///   [`RejectReason::L2Only`]; programs that can never match (`arp` at L3) are marked
///   [`RejectReason::NeverMatches`]. Both answer true to [`Cbpf::rejects_all`].
/// - An invalid expression is a [`FilterError::Compile`] with libpcap's message.
/// - A long chain of self-standing terms joined by `or` (more than 64, e.g. 2,000 `host ..`
///   terms) is optimised by libpcap in groups of 32 terms whose programs are chained, since
///   libpcap's optimiser takes time superlinear in the size of an expression (seconds for a
///   few hundred hosts). The program means the same; [`compile_whole`] gives libpcap's own.
pub fn compile(expr: &str, layer: Layer) -> Result<Cbpf, FilterError> {
    if let Some(insns) = disjunction::compile_split(expr, layer.dlt()) {
        let mut cbpf = Cbpf::from_insns(insns, layer);
        cbpf.expr = expr.to_string();
        return Ok(cbpf);
    }
    compile_whole(expr, layer, true)
}

/// [`compile`], with large sets of IPv4 host terms lowered: in a plain chain of terms joined
/// by `or`, the `host A`, `src host A` and `dst host A` terms (A a dotted quad) of a qualifier
/// with at least [`LOWER_MIN`](crate::host_sets::LOWER_MIN) terms become one set
/// ([`Cbpf::sets`]), which [`crate::translate_cbpf`] turns into one hash map lookup (or a
/// chain of compares). The kernel's verifier then checks a program of a few dozen
/// instructions instead of one compare per address and field. Expressions without such sets
/// compile as with [`compile`]. The program is NOT plain classic BPF when it has sets: run it
/// only through [`crate::translate_cbpf`].
pub fn compile_lowered(expr: &str, layer: Layer) -> Result<Cbpf, FilterError> {
    match host_sets::lower(expr, layer.dlt()) {
        Some(l) => {
            let mut cbpf = Cbpf::from_insns(l.insns, layer);
            cbpf.expr = expr.to_string();
            cbpf.sets = l.sets;
            Ok(cbpf)
        }
        None => compile(expr, layer),
    }
}

/// Compiles an expression as [`compile`] does, but always in one piece, with libpcap's
/// optimiser when `optimize`: libpcap's own program for the whole expression, the reference
/// the split compile of large disjunctions is tested against. Large expressions take long
/// with the optimiser (more than 30 s for 2,000 OR'd hosts).
pub fn compile_whole(expr: &str, layer: Layer, optimize: bool) -> Result<Cbpf, FilterError> {
    match libpcap::compile(expr, layer.dlt(), optimize) {
        Ok(insns) => {
            let mut cbpf = Cbpf::from_insns(insns, layer);
            cbpf.expr = expr.to_string();
            Ok(cbpf)
        }
        Err(l3_message) if layer == Layer::L3 => {
            match libpcap::compile(expr, Layer::L2.dlt(), optimize) {
                Ok(_) => {
                    let reason = if l3_message.contains(REJECTS_ALL_MESSAGE) {
                        RejectReason::NeverMatches
                    } else {
                        RejectReason::L2Only(l3_message)
                    };
                    let mut cbpf = Cbpf::reject_all(layer, reason);
                    cbpf.expr = expr.to_string();
                    Ok(cbpf)
                }
                Err(message) => Err(FilterError::Compile {
                    expr: expr.to_string(),
                    layer,
                    message,
                }),
            }
        }
        Err(message) => Err(FilterError::Compile {
            expr: expr.to_string(),
            layer,
            message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_expression_accepts_all() {
        let p = compile("", Layer::L2).unwrap();
        assert!(!p.rejects_all());
        // One instruction: accept with the snapshot length, as tcpdump -dd "" prints.
        assert_eq!(p.insns(), &[CbpfInsn::new(RET_K, 0, 0, 262_144)]);
    }

    #[test]
    fn l2_only_expressions_reject_all_at_l3() {
        let p = compile("ether host 01:02:03:04:05:06", Layer::L3).unwrap();
        assert!(matches!(p.reject_reason(), Some(RejectReason::L2Only(_))));
        let p = compile("arp", Layer::L3).unwrap();
        assert_eq!(p.reject_reason(), Some(&RejectReason::NeverMatches));
        assert!(!compile("arp", Layer::L2).unwrap().rejects_all());
    }

    #[test]
    fn bad_expression_reports_libpcap_message() {
        let e = compile("tcp port", Layer::L2).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("tcp port"), "{text}");
        assert!(text.contains("syntax error"), "{text}");
        let e = compile("ip broadcast", Layer::L2).unwrap_err();
        assert!(e.to_string().contains("netmask"), "{e}");
    }
}
