//! `ftrace-sites`: the functions the kernel symbol table shows to begin with an ftrace site
//! (read through the ksym iterator, from each function's first bytes) are those tracefs'
//! `available_filter_functions` lists: none missing, and for the skb functions discovery
//! looks at, none more. Discovery takes the traceable functions from the table instead of that
//! file, whose read the kernel serves with a walk of its ftrace records per 4 KiB.

use std::collections::HashSet;
use std::time::Instant;

use pwru_core::symbols::KernelSymbols;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

/// Names tracefs gives records at no function's start (a weak function's overridden copy).
const INVALID: &str = "__ftrace_invalid_address___";

/// Compares the two sets, core kernel only (modules may come and go between the reads).
pub fn run(ctx: &mut Ctx, _backend: Backend) -> Outcome {
    match try_run(ctx) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(ctx: &mut Ctx) -> Result<Outcome, Outcome> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Outcome::Fail(format!("{what}: {e}"));
    let btf = pwru_core::btf::Btf::vmlinux().map_err(|e| fail("kernel BTF", &e))?;
    if btf
        .find_by_name(pwru_core::btf::Kind::Func, "bpf_iter_ksym")
        .is_none()
    {
        return Ok(Outcome::unsupported(
            "no ksym iterator (bpf_iter_ksym, 6.0+)",
        ));
    }
    let t = Instant::now();
    let table = KernelSymbols::from_ksym_iterator(&btf).map_err(|e| fail("ksym iterator", &e))?;
    let iterator_ms = t.elapsed().as_secs_f64() * 1e3;
    let listing = table
        .ftrace_site_listing()
        .ok_or_else(|| Outcome::Fail("a table read through the iterator shows no sites".into()))?;
    let t = Instant::now();
    let tracefs = pwru_core::discovery::Tracefs::find().map_err(|e| fail("tracefs", &e))?;
    let path = tracefs.root().join("available_filter_functions");
    let list = std::fs::read_to_string(&path).map_err(|e| fail(&path.display().to_string(), &e))?;
    let list_ms = t.elapsed().as_secs_f64() * 1e3;

    let core = |text: &str| -> HashSet<String> {
        text.lines()
            .map(str::trim_end)
            .filter(|l| !l.ends_with(']') && !l.starts_with(INVALID))
            .map(str::to_string)
            .collect()
    };
    let (sites, listed) = (core(&listing), core(&list));
    let missing: Vec<&String> = listed.difference(&sites).collect();
    let more: Vec<&String> = sites.difference(&listed).collect();
    let skb: HashSet<String> = pwru_core::discovery::skb_functions(&btf, None)
        .map_err(|e| fail("skb functions", &e))?
        .into_iter()
        .map(|f| f.name)
        .collect();
    let skb_more: Vec<&&String> = more.iter().filter(|n| skb.contains(n.as_str())).collect();
    let skb_traceable = skb.iter().filter(|n| listed.contains(*n)).count();

    let r = &mut ctx.report;
    r.metric("ftrace_sites.listed", listed.len() as f64);
    r.metric("ftrace_sites.sites", sites.len() as f64);
    r.metric("ftrace_sites.more_than_listed", more.len() as f64);
    r.metric("ftrace_sites.skb_traceable", skb_traceable as f64);
    r.metric("ftrace_sites.iterator_ms", iterator_ms);
    r.metric("ftrace_sites.list_ms", list_ms);
    let sample = |v: &[&String]| {
        v.iter()
            .take(12)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    r.info(&format!(
        "ftrace sites not listed (aliases, thunks, notrace code that begins with a call): {}",
        sample(&more)
    ));
    if !missing.is_empty() || !skb_more.is_empty() {
        return Err(Outcome::Fail(format!(
            "{} listed functions show no site ({}); {} skb functions show a site but are not \
             listed ({})",
            missing.len(),
            sample(&missing),
            skb_more.len(),
            skb_more
                .iter()
                .take(12)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    Ok(Outcome::Pass(format!(
        "{} listed functions all show a site ({} more do: aliases and the like); the {} \
         traceable of {} skb functions exactly",
        listed.len(),
        more.len(),
        skb_traceable,
        skb.len()
    )))
}
