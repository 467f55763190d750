//! The four packet filters (pcap L2 and L3, tunnel L2 and L3): compiled by libpcap when the
//! tracer is built, then translated to eBPF and put behind one dispatch body once the backend
//! has decided how packet bytes are read.

use pwru_ebpf::{
    PWRU_CFG_FILTER_META_SKB, PWRU_CFG_FILTER_PCAP, PWRU_CFG_FILTER_PCAP_SKB,
    PWRU_CFG_FILTER_TUNNEL_L2, PWRU_CFG_FILTER_TUNNEL_L3, PWRU_SEL_L2, PWRU_SEL_L3,
    PWRU_SEL_PCAP_SKB,
};
use pwru_filter::{Cbpf, Insn, Layer, Mode, ProbeAccess, SetLookup, SkbEntry, SkbFields};

use crate::backend::{probe_kfunc_cast_with, Driver};
use crate::btf::{Btf, SkbValuePaths};
use crate::error::Error;
use crate::object::FilterBody;
use crate::options::Options;

fn filter_error(
    which: &'static str,
    expr: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Filter {
        which,
        expr: expr.to_string(),
        source: Box::new(e),
    }
}

/// One of the four filters behind the dispatch: which option it comes from, its expression,
/// and libpcap's classic program.
pub(super) struct CompiledFilter {
    which: &'static str,
    expr: String,
    cbpf: Cbpf,
}

fn compile_one(which: &'static str, expr: &str, layer: Layer) -> Result<CompiledFilter, Error> {
    // Large sets of host terms become map lookups: the verifier checks a few dozen
    // instructions in each program instead of thousands of compares.
    let cbpf =
        pwru_filter::compile_lowered(expr, layer).map_err(|e| filter_error(which, expr, e))?;
    Ok(CompiledFilter {
        which,
        expr: expr.to_string(),
        cbpf,
    })
}

/// libpcap's programs of the four filters behind one dispatch (selectors 0..=3: pcap L2, pcap
/// L3, tunnel L2, tunnel L3), and the config bits they need. Translation to eBPF waits for the
/// backend, which decides how packet bytes are read ([`translate_filters`]).
pub(super) fn compile_filters(o: &Options) -> Result<([CompiledFilter; 4], u32), Error> {
    let mut flags = 0;
    let pcap = o.pcap_filter.trim();
    if !pcap.is_empty() {
        flags |= PWRU_CFG_FILTER_PCAP;
    }
    let l2 = compile_one("pcap", pcap, Layer::L2)?;
    let l3 = compile_one("pcap", pcap, Layer::L3)?;
    let tl2 = match o.tunnel_filter_l2.as_deref().map(str::trim) {
        Some(e) if !e.is_empty() => {
            flags |= PWRU_CFG_FILTER_TUNNEL_L2;
            compile_one("tunnel L2", e, Layer::L2)?
        }
        _ => compile_one("tunnel L2", "", Layer::L2)?,
    };
    let tl3 = match o.tunnel_filter_l3.as_deref().map(str::trim) {
        Some(e) if !e.is_empty() => {
            flags |= PWRU_CFG_FILTER_TUNNEL_L3;
            compile_one("tunnel L3", e, Layer::L3)?
        }
        _ => compile_one("tunnel L3", "", Layer::L3)?,
    };
    Ok(([l2, l3, tl2, tl3], flags))
}

/// What the filter body of untyped programs can read from the skb itself
/// ([`skb_reads_for`]): the header fields of the pcap entry and the load chains of the
/// netns, mark and interface values.
pub(super) struct SkbReads {
    fields: SkbFields,
    values: Option<SkbValuePaths>,
}

/// The four filters translated (ProbeRead mode, reading packet bytes as `access` says) and
/// put behind one dispatch body, followed by `more` (the expression bodies, selectors 4 and
/// up), with the config bits the body asks for. With `skb` (see [`skb_reads_for`]) the body
/// also gets the skb entry when a pcap filter but no tunnel filter is on (`PWRU_SEL_PCAP_SKB`,
/// config bit `PWRU_CFG_FILTER_PCAP_SKB`), and the value selectors of the netns, mark and
/// interface filters that `flags` (the tracer's config bits) turn on (`PWRU_SEL_SKB_*`,
/// `PWRU_CFG_FILTER_META_SKB`).
pub(super) fn translate_filters(
    filters: &[CompiledFilter; 4],
    access: ProbeAccess,
    skb: Option<&SkbReads>,
    flags: u32,
    more: &[&[Insn]],
) -> Result<(FilterBody, u32), Error> {
    let opts = pwru_filter::Options::with_access(access);
    let mut bodies = Vec::with_capacity(filters.len());
    // One address-set map for all four filters: each numbers its sets after the previous.
    let mut set_keys = Vec::new();
    let mut first_set = 0u32;
    for f in filters {
        let lookup = SetLookup::Map { first_set };
        let t = pwru_filter::translate_cbpf(&f.cbpf, Mode::ProbeRead, &opts, lookup)
            .map_err(|e| filter_error(f.which, &f.expr, e))?;
        first_set = first_set.saturating_add(f.cbpf.sets().len() as u32);
        set_keys.extend(t.set_keys);
        bodies.push(t.insns);
    }
    let mut refs: Vec<&[Insn]> = bodies.iter().map(Vec::as_slice).collect();
    refs.extend_from_slice(more);
    let pcap = &filters[0].expr;
    // The tunnel filters need the header fields in the program, which then reads them anyway.
    let tunnels = filters[2..].iter().any(|f| !f.expr.is_empty());
    let entry = skb
        .filter(|_| !pcap.is_empty() && !tunnels)
        .map(|reads| SkbEntry {
            selector: PWRU_SEL_PCAP_SKB as i32,
            fields: reads.fields,
            l2: PWRU_SEL_L2 as usize,
            l3: PWRU_SEL_L3 as usize,
        });
    let values = skb
        .and_then(|reads| reads.values.as_ref())
        .map(|p| p.selectors(flags))
        .unwrap_or_default();
    let dispatch = pwru_filter::dispatch_with_skb_entries(&refs, entry.as_ref(), &values)
        .map_err(|e| filter_error("pcap", pcap, e))?;
    let mut body_flags = 0;
    if entry.is_some() {
        body_flags |= PWRU_CFG_FILTER_PCAP_SKB;
    }
    if !values.is_empty() {
        body_flags |= PWRU_CFG_FILTER_META_SKB;
    }
    FilterBody::from_bytes(&pwru_filter::insn::program_bytes(&dispatch))
        .map(|body| (body.with_set_keys(set_keys), body_flags))
        .map_err(|e| filter_error("pcap", pcap, e))
}

/// What the filter body can read from the skb itself: only for programs that get the skb as a
/// plain number ([`Driver::skb_is_untyped`]) and read packet bytes through `bpf_rdonly_cast`
/// (so the kernel accepts the kfunc in them), when the kernel BTF describes the header fields
/// as the entry reads them ([`Btf::skb_fields`]; the value chains, [`Btf::skb_value_paths`],
/// are left out if it does not describe them).
pub(super) fn skb_reads_for(
    driver: &dyn Driver,
    access: ProbeAccess,
    btf: &Btf,
) -> Option<SkbReads> {
    match access {
        ProbeAccess::Cast(_) if driver.skb_is_untyped() => Some(SkbReads {
            fields: btf.skb_fields()?,
            values: btf.skb_value_paths(),
        }),
        _ => None,
    }
}

/// How the filters will read packet bytes in `driver`'s programs: through `bpf_rdonly_cast`
/// when the kernel has it and accepts it in that program type (a plain load per byte), else
/// with `bpf_probe_read_kernel` (one helper call per packet). The string says why not cast.
pub(super) fn choose_filter_access(
    driver: &dyn Driver,
    btf: &Btf,
) -> (ProbeAccess, Option<String>) {
    let Some(ids) = btf.cast_ids() else {
        return (
            ProbeAccess::Helper,
            Some("the kernel BTF has no bpf_rdonly_cast kfunc (Linux < 6.2)".into()),
        );
    };
    match probe_kfunc_cast_with(driver, ids, Some(btf)) {
        Ok(()) => (ProbeAccess::Cast(ids), None),
        Err(why) => (ProbeAccess::Helper, Some(why)),
    }
}
