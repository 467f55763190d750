//! The skb/xdp expressions (filters and metadata readings): resolved against the kernel's BTF
//! and compiled when the tracer is built, then put behind the filter dispatch next to the pcap
//! filters (selectors `PWRU_SEL_SKB_EXPR` and up).

use pwru_ebpf::{
    PWRU_CFG_FILTER_SKB_EXPR, PWRU_CFG_FILTER_XDP_EXPR, PWRU_CFG_OUTPUT_SKB_METADATA,
    PWRU_CFG_OUTPUT_XDP_METADATA, PWRU_METADATA_MAX,
};
use pwru_filter::expr::{Condition, Reading, Root, SKB, XDP};
use pwru_filter::Insn;

use crate::btf::Btf;
use crate::error::Error;
use crate::options::Options;

/// The compiled expressions of a tracer and the config bits they need.
pub(super) struct Expressions {
    skb_filter: Option<Condition>,
    xdp_filter: Option<Condition>,
    skb_metadata: Vec<Reading>,
    xdp_metadata: Vec<Reading>,
    pub(super) flags: u32,
}

fn filter(
    which: &'static str,
    expr: Option<&str>,
    root: Root,
    btf: &Btf,
) -> Result<Option<Condition>, Error> {
    match expr.map(str::trim) {
        Some(e) if !e.is_empty() => Condition::compile(e, root, btf)
            .map(Some)
            .map_err(|source| Error::Filter {
                which,
                expr: e.to_string(),
                source: Box::new(source),
            }),
        _ => Ok(None),
    }
}

fn metadata(
    which: &'static str,
    exprs: &[String],
    root: Root,
    btf: &Btf,
) -> Result<Vec<Reading>, Error> {
    if exprs.len() > PWRU_METADATA_MAX {
        return Err(Error::InvalidOption(format!(
            "{} {which} expressions given, at most {PWRU_METADATA_MAX} are read per event; drop \
             some",
            exprs.len()
        )));
    }
    exprs
        .iter()
        .map(|e| {
            Reading::compile(e, root, btf).map_err(|source| Error::Filter {
                which,
                expr: e.clone(),
                source: Box::new(source),
            })
        })
        .collect()
}

/// Compiles the expressions of `o` against `btf`. xdp expressions apply to XDP events only,
/// so they are refused without [`Options::trace_xdp`] rather than silently doing nothing.
pub(super) fn compile_expressions(o: &Options, btf: &Btf) -> Result<Expressions, Error> {
    let xdp_given = o
        .xdp_filter_expr
        .as_deref()
        .is_some_and(|e| !e.trim().is_empty())
        || !o.xdp_metadata.is_empty();
    if xdp_given && !o.trace_xdp {
        return Err(Error::InvalidOption(
            "xdp expressions (xdp_filter_expr, xdp_metadata) apply to XDP events only; turn on              trace_xdp (pwru: --filter-trace-xdp) or drop them"
                .into(),
        ));
    }
    let skb_filter = filter("skb expression", o.skb_filter_expr.as_deref(), SKB, btf)?;
    let xdp_filter = filter("xdp expression", o.xdp_filter_expr.as_deref(), XDP, btf)?;
    let skb_metadata = metadata("skb metadata", &o.skb_metadata, SKB, btf)?;
    let xdp_metadata = metadata("xdp metadata", &o.xdp_metadata, XDP, btf)?;
    let mut flags = 0;
    for (on, bit) in [
        (skb_filter.is_some(), PWRU_CFG_FILTER_SKB_EXPR),
        (xdp_filter.is_some(), PWRU_CFG_FILTER_XDP_EXPR),
        (!skb_metadata.is_empty(), PWRU_CFG_OUTPUT_SKB_METADATA),
        (!xdp_metadata.is_empty(), PWRU_CFG_OUTPUT_XDP_METADATA),
    ] {
        if on {
            flags |= bit;
        }
    }
    Ok(Expressions {
        skb_filter,
        xdp_filter,
        skb_metadata,
        xdp_metadata,
        flags,
    })
}

/// `r0 = 0; exit`: the body of a selector with no expression.
const NOTHING: [Insn; 2] = [Insn::raw(0xb7, 0, 0, 0, 0), Insn::raw(0x95, 0, 0, 0, 0)];

impl Expressions {
    /// The bodies of selectors `PWRU_SEL_SKB_EXPR` ..= `PWRU_SEL_XDP_META + 3`, in order.
    pub(super) fn bodies(&self) -> Vec<&[Insn]> {
        let mut out: Vec<&[Insn]> = vec![
            self.skb_filter.as_ref().map_or(&NOTHING[..], |c| c.insns()),
            self.xdp_filter.as_ref().map_or(&NOTHING[..], |c| c.insns()),
        ];
        for list in [&self.skb_metadata, &self.xdp_metadata] {
            for i in 0..PWRU_METADATA_MAX {
                out.push(list.get(i).map_or(&NOTHING[..], |r| r.insns()));
            }
        }
        out
    }
}
