//! Function and tracepoint discovery: which kernel functions and tracepoints handle an skb.
//!
//! A function qualifies when its BTF prototype has a `struct sk_buff *` (through typedefs,
//! `const`, `volatile`) in parameters 1–5, the ones a kprobe or fentry program can read. A
//! tracepoint qualifies when its `btf_trace_<name>` typedef has such an argument. The function
//! list can be narrowed by a regex matching the whole name (as pwru's `--filter-func`) and
//! restricted to what the kernel can trace (tracefs `available_filter_functions`).
//!
//! ```no_run
//! use pwru_core::discovery::{discover, DiscoveryOptions};
//! let opts = DiscoveryOptions { filter_func: Some("ip_.*".into()), ..Default::default() };
//! let found = discover(&opts)?;
//! for f in &found.functions {
//!     println!("{} skb at arg {}", f.name, f.positions[0]);
//! }
//! # Ok::<(), pwru_core::discovery::DiscoveryError>(())
//! ```

pub mod bpf_helpers;
mod error;
pub mod map_ops;
mod tracefs;
mod tracepoints;

pub use error::DiscoveryError;
pub use tracefs::{
    AvailableFunctions, Sites, TraceableJob, Tracefs, SITES_USED, TRACEFS_CANDIDATES,
};
pub use tracepoints::{skb_tracepoints, SkbTracepoint};

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::btf::{Btf, Kind, TypeId};

/// Highest argument position a kprobe/fentry program reads an skb from.
pub const MAX_SKB_POSITION: u8 = 5;

/// A kernel function taking a `struct sk_buff *`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkbFunction {
    /// Function name as in BTF and kallsyms.
    pub name: String,
    /// The module defining it; `None` for vmlinux.
    pub module: Option<String>,
    /// 1-based argument positions holding a `struct sk_buff *`, ascending (never empty).
    pub positions: Vec<u8>,
}

impl SkbFunction {
    /// The first skb argument position (the one pwru probes).
    pub fn position(&self) -> u8 {
        self.positions.first().copied().unwrap_or(1)
    }
}

/// Which kernel modules to scan besides vmlinux.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Modules {
    /// vmlinux only.
    #[default]
    None,
    /// These modules (names under /sys/kernel/btf).
    List(Vec<String>),
    /// Every module that publishes BTF.
    All,
}

/// What [`discover`] searches.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Regex over whole function names (anchored at both ends, RE2 syntax as pwru's
    /// `--filter-func`). `None` keeps every function.
    pub filter_func: Option<String>,
    /// Kernel modules to scan.
    pub modules: Modules,
    /// Extra functions to trace even though they take no skb (pwru's `--filter-non-skb-funcs`).
    pub non_skb_funcs: Vec<String>,
    /// Like `non_skb_funcs`, but those not in BTF or not traceable are left out instead of
    /// refused (the BPF helpers found in loaded programs: some are inlined or notrace).
    pub optional_non_skb_funcs: Vec<String>,
    /// External BTF to use instead of /sys/kernel/btf/vmlinux (pwru's `--kernel-btf`).
    pub kernel_btf: Option<PathBuf>,
    /// Keep only functions listed in tracefs `available_filter_functions` (needed by kprobe and
    /// fentry backends; the tracepoint backend does not need it).
    pub require_traceable: bool,
    /// tracefs to use; `None` finds it.
    pub tracefs: Option<Tracefs>,
    /// Also discover skb tracepoints.
    pub tracepoints: bool,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            filter_func: None,
            modules: Modules::None,
            non_skb_funcs: Vec::new(),
            optional_non_skb_funcs: Vec::new(),
            kernel_btf: None,
            require_traceable: true,
            tracefs: None,
            tracepoints: true,
        }
    }
}

/// Counts and timings of a discovery run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// BTF FUNC entries scanned (vmlinux + modules).
    pub btf_functions: usize,
    /// Of those, functions with an skb in arguments 1–5.
    pub skb_functions: usize,
    /// Of those, functions the kernel can trace (equal to `skb_functions` when not checked).
    pub traceable: usize,
    /// Of those, functions matching the regex: the final list.
    pub matched: usize,
    /// skb tracepoints found.
    pub tracepoints: usize,
    /// Time spent reading and parsing BTF.
    pub btf_time: Duration,
    /// Time spent scanning BTF and filtering.
    pub scan_time: Duration,
}

/// Result of [`discover`].
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Matching skb functions, sorted by name (module functions after vmlinux ones of the same
    /// name).
    pub functions: Vec<SkbFunction>,
    /// The requested non-skb functions, checked to exist.
    pub non_skb_functions: Vec<String>,
    /// skb tracepoints (all of them: the regex applies to functions only).
    pub tracepoints: Vec<SkbTracepoint>,
    /// Counts and timings.
    pub stats: DiscoveryStats,
    /// The kernel BTF used (vmlinux or external), e.g. for drop reasons.
    pub btf: Arc<Btf>,
}

/// Compiles a `--filter-func` regex so that it must match the whole name.
///
/// ```
/// let re = pwru_core::discovery::whole_name_regex("ip_rcv.*").unwrap();
/// assert!(re.is_match("ip_rcv_core"));
/// assert!(!re.is_match("xip_rcv"));
/// ```
pub fn whole_name_regex(expr: &str) -> Result<regex::Regex, DiscoveryError> {
    let bad = |e| DiscoveryError::BadRegex {
        expr: expr.to_string(),
        source: Box::new(e),
    };
    // Compiled alone first, so that an error points into what the user wrote rather than into
    // the anchored form.
    regex::Regex::new(expr).map_err(bad)?;
    regex::Regex::new(&format!("^(?:{expr})$")).map_err(bad)
}

/// Every BTF function in `btf` (local types only, so a module's own functions for split BTF)
/// with a `struct sk_buff *` in arguments 1–5.
///
/// ```no_run
/// let btf = pwru_core::btf::Btf::vmlinux()?;
/// let funcs = pwru_core::discovery::skb_functions(&btf, None)?;
/// assert!(funcs.iter().any(|f| f.name == "ip_rcv" && f.positions == [1]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn skb_functions(btf: &Btf, module: Option<&str>) -> Result<Vec<SkbFunction>, DiscoveryError> {
    Ok(scan_functions(btf, module)?.0)
}

/// Returns (skb functions, number of FUNC entries scanned).
fn scan_functions(
    btf: &Btf,
    module: Option<&str>,
) -> Result<(Vec<SkbFunction>, usize), DiscoveryError> {
    let mut skb = SkbMatcher::new(btf)?;
    let mut out = Vec::new();
    let mut total = 0;
    for (_, t) in btf.types() {
        if t.kind() != Kind::Func {
            continue;
        }
        total += 1;
        let proto = btf.get(TypeId(t.size_or_type()))?;
        let mut positions = Vec::new();
        for (i, p) in proto
            .param_types()
            .take(MAX_SKB_POSITION as usize)
            .enumerate()
        {
            if skb.is_skb_ptr_cached(btf, p)? {
                positions.push(i as u8 + 1);
            }
        }
        if !positions.is_empty() {
            out.push(SkbFunction {
                name: btf.name_of(&t).to_string(),
                module: module.map(str::to_string),
                positions,
            });
        }
    }
    Ok((out, total))
}

/// Recognises `struct sk_buff *` through modifiers.
pub(crate) struct SkbMatcher {
    /// Ids of STRUCT/FWD types named sk_buff (in the base when split).
    ids: HashSet<u32>,
    /// Verdicts by parameter type id: the ~60,000 functions of a kernel share a few
    /// thousand parameter types, and each verdict follows a chain of types.
    verdicts: HashMap<u32, bool, crate::fnv::BuildFnv>,
}

impl SkbMatcher {
    pub(crate) fn new(btf: &Btf) -> Result<SkbMatcher, DiscoveryError> {
        let mut ids = HashSet::new();
        let mut cur = Some(btf);
        while let Some(b) = cur {
            for (id, t) in b.types() {
                if matches!(t.kind(), Kind::Struct | Kind::Fwd) && b.str_is(t.name_off, "sk_buff") {
                    ids.insert(id.0);
                }
            }
            cur = b.base().map(|a| a.as_ref());
        }
        if ids.is_empty() {
            return Err(DiscoveryError::NoSkBuff);
        }
        Ok(SkbMatcher {
            ids,
            verdicts: HashMap::default(),
        })
    }

    /// [`SkbMatcher::is_skb_ptr`], remembering the verdict for the type (one matcher per
    /// BTF: ids mean different types in another one).
    pub(crate) fn is_skb_ptr_cached(
        &mut self,
        btf: &Btf,
        id: TypeId,
    ) -> Result<bool, DiscoveryError> {
        if let Some(&v) = self.verdicts.get(&id.0) {
            return Ok(v);
        }
        let v = self.is_skb_ptr(btf, id)?;
        self.verdicts.insert(id.0, v);
        Ok(v)
    }

    pub(crate) fn is_skb_ptr(&self, btf: &Btf, id: TypeId) -> Result<bool, DiscoveryError> {
        let id = btf.skip_modifiers(id)?;
        if id.0 == 0 {
            return Ok(false);
        }
        let t = btf.get(id)?;
        if t.kind() != Kind::Ptr {
            return Ok(false);
        }
        let target = btf.skip_modifiers(TypeId(t.size_or_type()))?;
        Ok(self.ids.contains(&target.0))
    }
}

/// Reads BTF (vmlinux + chosen modules), finds skb functions, applies the traceable set and the
/// regex, checks non-skb functions, and lists skb tracepoints.
///
/// Errors: BTF missing or corrupt, a bad regex, tracefs missing (only when
/// `require_traceable` or when the tracepoint categories are needed and tracefs is absent — the
/// latter is tolerated: categories are left empty), no function matched, unknown non-skb
/// function.
pub fn discover(opts: &DiscoveryOptions) -> Result<Discovery, DiscoveryError> {
    // A typo in the regex is reported before any BTF is read.
    if let Some(re) = &opts.filter_func {
        whole_name_regex(re)?;
    }
    let t0 = Instant::now();
    let vmlinux = Arc::new(Btf::kernel(opts.kernel_btf.as_deref())?);
    discover_in(opts, vmlinux, t0, None)
}

/// [`discover`] in kernel BTF already parsed (the tracer's one handle); `opts.kernel_btf` is
/// not read again. Module BTF, when asked for, is read on top of `vmlinux`.
pub fn discover_with(
    opts: &DiscoveryOptions,
    vmlinux: Arc<Btf>,
) -> Result<Discovery, DiscoveryError> {
    discover_in(opts, vmlinux, Instant::now(), None)
}

/// [`discover_with`], with the traceable functions from `traceable` (a read of
/// `available_filter_functions` started earlier, see [`TraceableJob`]) instead of a read here.
/// Used only when `opts.require_traceable`.
pub fn discover_with_traceable(
    opts: &DiscoveryOptions,
    vmlinux: Arc<Btf>,
    traceable: TraceableJob,
) -> Result<Discovery, DiscoveryError> {
    discover_in(opts, vmlinux, Instant::now(), Some(traceable))
}

fn discover_in(
    opts: &DiscoveryOptions,
    vmlinux: Arc<Btf>,
    t0: Instant,
    traceable: Option<TraceableJob>,
) -> Result<Discovery, DiscoveryError> {
    let regex = opts
        .filter_func
        .as_deref()
        .map(whole_name_regex)
        .transpose()?;
    let module_names = match &opts.modules {
        Modules::None => Vec::new(),
        Modules::List(l) => l.clone(),
        Modules::All => Btf::module_names()?,
    };
    let mut modules = Vec::with_capacity(module_names.len());
    for name in module_names {
        let m = Btf::module(&name, vmlinux.clone()).map_err(|e| DiscoveryError::Module {
            name: name.clone(),
            source: Box::new(e),
        })?;
        modules.push((name, m));
    }
    let btf_time = t0.elapsed();

    let t1 = Instant::now();
    let mut stats = DiscoveryStats {
        btf_time,
        ..Default::default()
    };
    let (mut all, n) = scan_functions(&vmlinux, None)?;
    stats.btf_functions += n;
    for (name, m) in &modules {
        let (found, n) = scan_functions(m, Some(name))?;
        stats.btf_functions += n;
        all.extend(found);
    }
    stats.skb_functions = all.len();

    let tracefs = match &opts.tracefs {
        Some(t) => Some(t.clone()),
        None => Tracefs::find().ok(),
    };
    let available = match (opts.require_traceable, traceable) {
        (false, _) => None,
        (true, Some(job)) => {
            // Only the functions asked about: a symbol reader answers for them alone.
            let asked: Vec<String> = all
                .iter()
                .map(|f| f.name.clone())
                .chain(opts.non_skb_funcs.iter().cloned())
                .chain(opts.optional_non_skb_funcs.iter().cloned())
                .collect();
            Some(job.wait_for(asked)?)
        }
        (true, None) => {
            let t = tracefs.as_ref().ok_or(DiscoveryError::NoTracefs)?;
            Some(t.available_functions()?)
        }
    };
    if let Some(av) = &available {
        all.retain(|f| av.contains(&f.name));
    }
    stats.traceable = all.len();
    if let Some(re) = &regex {
        all.retain(|f| re.is_match(&f.name));
    }
    all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.module.cmp(&b.module)));
    // The same static name can appear more than once in BTF; probe it once per module.
    all.dedup_by(|a, b| a.name == b.name && a.module == b.module);
    stats.matched = all.len();

    let mut non_skb = Vec::new();
    if !opts.non_skb_funcs.is_empty() || !opts.optional_non_skb_funcs.is_empty() {
        let mut known: HashSet<&str> = HashSet::new();
        for b in std::iter::once(vmlinux.as_ref()).chain(modules.iter().map(|(_, m)| m)) {
            for (_, t) in b.types() {
                if t.kind() == Kind::Func {
                    known.insert(b.name_of(&t));
                }
            }
        }
        for name in &opts.non_skb_funcs {
            let traceable = available.as_ref().is_none_or(|a| a.contains(name));
            if !known.contains(name.as_str()) || !traceable {
                return Err(DiscoveryError::UnknownFunction(name.clone()));
            }
            non_skb.push(name.clone());
        }
        for name in &opts.optional_non_skb_funcs {
            let traceable = available.as_ref().is_none_or(|a| a.contains(name));
            if known.contains(name.as_str()) && traceable && !non_skb.contains(name) {
                non_skb.push(name.clone());
            }
        }
    }

    let tracepoints = if opts.tracepoints {
        skb_tracepoints(&vmlinux, tracefs.as_ref())?
    } else {
        Vec::new()
    };
    stats.tracepoints = tracepoints.len();
    stats.scan_time = t1.elapsed();

    if all.is_empty() && non_skb.is_empty() {
        return Err(DiscoveryError::NoMatch {
            expr: opts.filter_func.clone().unwrap_or_else(|| ".*".into()),
        });
    }
    Ok(Discovery {
        functions: all,
        non_skb_functions: non_skb,
        tracepoints,
        stats,
        btf: vmlinux,
    })
}
