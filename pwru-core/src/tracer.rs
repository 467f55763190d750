//! [`Tracer`]: a checked plan (functions, filters, backend) ready to attach.
//!
//! [`TracerBuilder::build`] does every check that can fail because of the user's input or the
//! kernel's abilities (privileges, filters, regex, netns/interface, backend probes, discovery)
//! without changing anything in the kernel; [`Tracer::attach`] then loads and attaches.

use std::time::{Duration, Instant};

use pwru_ebpf::{
    PwruConfig, PWRU_CFG_FILTER_IFINDEX, PWRU_CFG_FILTER_MARK, PWRU_CFG_FILTER_NETNS,
    PWRU_CFG_FILTER_PCAP, PWRU_CFG_FILTER_TUNNEL_L2, PWRU_CFG_FILTER_TUNNEL_L3,
    PWRU_CFG_OUTPUT_CALLER, PWRU_CFG_OUTPUT_CB, PWRU_CFG_OUTPUT_META, PWRU_CFG_OUTPUT_SHINFO,
    PWRU_CFG_OUTPUT_SKB, PWRU_CFG_OUTPUT_STACK, PWRU_CFG_OUTPUT_TUNNEL, PWRU_CFG_OUTPUT_TUPLE,
    PWRU_CFG_TRACK_HEAD, PWRU_CFG_TRACK_SKB, PWRU_CFG_TRACK_STACKID,
};
use pwru_filter::{Cbpf, Insn, Layer, Mode, ProbeAccess};

use crate::btf::Btf;
pub use crate::builder::TracerBuilder;
use crate::discovery::{self, DiscoveryOptions, Modules};
use crate::error::Error;
use crate::loader::{
    probe_backend_with, probe_kfunc_cast_with, FilterBody, ProbeBackend, TracepointFlavor,
};
use crate::netns::{self, NetnsSpec};
use crate::options::{Backend, KernelModules, Options};
use crate::privileges::{self, Capability};

/// One place the tracer attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Function or tracepoint name.
    pub name: String,
    /// Kernel module, if not in vmlinux.
    pub module: Option<String>,
    /// 1-based position of the `struct sk_buff *` argument.
    pub position: u8,
}

/// A [`Backend`] the tracer did not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What was refused: a backend, a function, a tracepoint or a BPF program.
    pub target: String,
    /// The kernel's (or the loader's) reason.
    pub reason: String,
}

/// A checked plan: the functions or tracepoints to attach, the compiled filter, the backend.
///
/// Made by [`Tracer::builder`]`()...build()`; nothing is attached until [`Tracer::attach`].
#[derive(Debug)]
pub struct Tracer {
    pub(crate) options: Options,
    pub(crate) backend: Backend,
    pub(crate) tracepoint_flavor: TracepointFlavor,
    pub(crate) backend_refusals: Vec<(Backend, String)>,
    pub(crate) targets: Vec<Target>,
    pub(crate) non_skb_targets: Vec<String>,
    pub(crate) filter: FilterBody,
    pub(crate) filter_access: ProbeAccess,
    pub(crate) filter_access_note: Option<String>,
    pub(crate) config: PwruConfig,
    pub(crate) btf: std::sync::Arc<crate::btf::Btf>,
    pub(crate) build_time: Duration,
}

impl Tracer {
    /// Starts a builder with pwru's defaults.
    ///
    /// ```no_run
    /// let tracer = pwru_core::Tracer::builder().pcap_filter("icmp").build()?;
    /// println!("{} targets with {}", tracer.targets().len(), tracer.backend());
    /// # Ok::<(), pwru_core::Error>(())
    /// ```
    pub fn builder() -> TracerBuilder {
        TracerBuilder::new()
    }

    /// The backend that will be used (never [`Backend::Auto`]).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Backends tried before the chosen one and why the kernel refused each.
    pub fn backend_refusals(&self) -> &[(Backend, String)] {
        &self.backend_refusals
    }

    /// How the in-kernel filter reads packet bytes: [`ProbeAccess::Cast`] (a plain load per
    /// byte through the kfunc `bpf_rdonly_cast`, Linux 6.2+) when the chosen backend's programs
    /// accept it, else [`ProbeAccess::Helper`] (one `bpf_probe_read_kernel` per packet,
    /// ≈ 25 ns more per filtered packet); see [`Tracer::filter_access_note`] for why not cast.
    pub fn filter_access(&self) -> ProbeAccess {
        self.filter_access
    }

    /// Why the filter reads through the helper instead of the kfunc cast (`None` when it
    /// casts).
    pub fn filter_access_note(&self) -> Option<&str> {
        self.filter_access_note.as_deref()
    }

    /// The functions or tracepoints that [`Tracer::attach`] will attach to.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Functions without an skb argument that [`Tracer::attach`] will attach to (linked to
    /// packets by the stack they run on; see [`TracerBuilder::non_skb_functions`]).
    pub fn non_skb_targets(&self) -> &[String] {
        &self.non_skb_targets
    }

    /// The options this tracer was built from.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// How long `build()` took (discovery, compilation, probes).
    pub fn build_time(&self) -> Duration {
        self.build_time
    }
}

/// The system's page size (4096 where it cannot be asked).
fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

fn filter_error(which: &'static str, expr: &str, e: impl std::fmt::Display) -> Error {
    Error::Filter {
        which,
        expr: expr.to_string(),
        message: e.to_string(),
    }
}

/// One of the four filters behind the dispatch: which option it comes from, its expression,
/// and libpcap's classic program.
struct CompiledFilter {
    which: &'static str,
    expr: String,
    cbpf: Cbpf,
}

fn compile_one(which: &'static str, expr: &str, layer: Layer) -> Result<CompiledFilter, Error> {
    let cbpf = pwru_filter::compile(expr, layer).map_err(|e| filter_error(which, expr, e))?;
    Ok(CompiledFilter {
        which,
        expr: expr.to_string(),
        cbpf,
    })
}

/// libpcap's programs of the four filters behind one dispatch (selectors 0..=3: pcap L2, pcap
/// L3, tunnel L2, tunnel L3), and the config bits they need. Translation to eBPF waits for the
/// backend, which decides how packet bytes are read ([`translate_filters`]).
fn compile_filters(o: &Options) -> Result<([CompiledFilter; 4], u32), Error> {
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

/// The four filters translated (ProbeRead mode, reading packet bytes as `access` says) and
/// put behind one dispatch body.
fn translate_filters(
    filters: &[CompiledFilter; 4],
    access: ProbeAccess,
) -> Result<FilterBody, Error> {
    let opts = pwru_filter::Options::with_access(access);
    let mut bodies = Vec::with_capacity(filters.len());
    for f in filters {
        let insns = pwru_filter::translate_with(f.cbpf.insns(), Mode::ProbeRead, &opts)
            .map_err(|e| filter_error(f.which, &f.expr, e))?;
        bodies.push(insns);
    }
    let refs: Vec<&[Insn]> = bodies.iter().map(Vec::as_slice).collect();
    let pcap = &filters[0].expr;
    let dispatch = pwru_filter::dispatch(&refs).map_err(|e| filter_error("pcap", pcap, e))?;
    FilterBody::from_bytes(&pwru_filter::insn::program_bytes(&dispatch))
        .map_err(|e| filter_error("pcap", pcap, e))
}

/// How the filters will read packet bytes in `backend`'s programs: through `bpf_rdonly_cast`
/// when the kernel has it and accepts it in that program type (a plain load per byte), else
/// with `bpf_probe_read_kernel` (one helper call per packet). The string says why not cast.
fn choose_filter_access(
    backend: Backend,
    flavor: TracepointFlavor,
    btf: &Btf,
) -> (ProbeAccess, Option<String>) {
    let Some(ids) = btf.cast_ids() else {
        return (
            ProbeAccess::Helper,
            Some("the kernel BTF has no bpf_rdonly_cast kfunc (Linux < 6.2)".into()),
        );
    };
    let kind = match (backend, flavor) {
        (Backend::KprobeMulti, _) => ProbeBackend::KprobeMulti,
        (Backend::Kprobe, _) => ProbeBackend::Kprobe,
        (Backend::Fentry, _) => ProbeBackend::Fentry,
        (_, TracepointFlavor::Btf) => ProbeBackend::TpBtf,
        (_, TracepointFlavor::Raw) => ProbeBackend::RawTp,
    };
    match probe_kfunc_cast_with(kind, ids, Some(btf)) {
        Ok(()) => (ProbeAccess::Cast(ids), None),
        Err(why) => (ProbeAccess::Helper, Some(why)),
    }
}

/// Probes `backend` for real; for the tracepoint backend also picks tp_btf or raw_tp.
fn probe(backend: Backend, kernel: &Btf) -> Result<TracepointFlavor, String> {
    let probe_backend = |b| probe_backend_with(b, Some(kernel));
    match backend {
        Backend::KprobeMulti => probe_backend(ProbeBackend::KprobeMulti),
        Backend::Kprobe => probe_backend(ProbeBackend::Kprobe),
        Backend::Fentry => probe_backend(ProbeBackend::Fentry),
        Backend::Tracepoint | Backend::Auto => {
            return match probe_backend(ProbeBackend::TpBtf) {
                Ok(()) => Ok(TracepointFlavor::Btf),
                Err(btf) => probe_backend(ProbeBackend::RawTp)
                    .map(|()| TracepointFlavor::Raw)
                    .map_err(|raw| format!("{btf}; {raw}")),
            };
        }
    }
    .map(|()| TracepointFlavor::Btf)
}

/// Picks the backend: the requested one, or the first of [`Backend::AUTO_ORDER`] that works.
/// The chosen backend, its tracepoint flavour, and the backends refused before it.
type Choice = (Backend, TracepointFlavor, Vec<(Backend, String)>);

fn choose_backend(requested: Backend, kernel: &Btf) -> Result<Choice, Error> {
    if requested != Backend::Auto {
        return match probe(requested, kernel) {
            Ok(flavor) => Ok((requested, flavor, Vec::new())),
            Err(reason) => Err(Error::BackendUnsupported {
                backend: requested,
                reason,
            }),
        };
    }
    let mut refusals = Vec::new();
    for b in Backend::AUTO_ORDER {
        match probe(b, kernel) {
            Ok(flavor) => return Ok((b, flavor, refusals)),
            Err(reason) => refusals.push((b, reason)),
        }
    }
    Err(Error::NoBackend { refusals })
}

impl TracerBuilder {
    /// Checks everything and plans the tracing; attaches nothing.
    ///
    /// The kernel BTF (/sys/kernel/btf/vmlinux or [`TracerBuilder::kernel_btf`]) is parsed
    /// here, once, and kept for [`Tracer::attach`]. The ring buffer size is rounded up to a
    /// power of two of at least one page ([`Tracer::options`] shows the result).
    ///
    /// Errors, each with what to do: [`Error::Privileges`] (capabilities, and CAP_SYSLOG or
    /// the sysctl that hides kernel addresses in /proc/kallsyms), [`Error::Filter`],
    /// [`Error::Discovery`] (bad regex, no function matched, no BTF), [`Error::Netns`],
    /// [`Error::BackendUnsupported`], [`Error::NoBackend`], [`Error::InvalidOption`].
    pub fn build(self) -> Result<Tracer, Error> {
        let started = Instant::now();
        let mut o = self.options;
        // Tracing needs BPF + PERFMON; finding and tracing tc/XDP programs also NET_ADMIN.
        let mut caps = vec![Capability::Bpf, Capability::Perfmon];
        if o.trace_tc || o.trace_xdp {
            caps.push(Capability::NetAdmin);
        }
        privileges::require_for_tracing(&caps)?;

        // Cheap, pure checks first so a typo is reported before any kernel probe.
        let (filters, mut flags) = compile_filters(&o)?;
        if let Some(re) = &o.function_regex {
            discovery::whole_name_regex(re)?;
        }
        o.ring_buffer_bytes = crate::options::ring_buffer_size(o.ring_buffer_bytes, page_size())
            .map_err(Error::InvalidOption)?;

        let dump = o.dump_buffer_bytes;
        let dump_range =
            crate::options::DUMP_BUFFER_BYTES_MIN..=crate::options::DUMP_BUFFER_BYTES_MAX;
        if dump != 0 && !dump_range.contains(&dump) {
            return Err(Error::InvalidOption(format!(
                "dump buffer size {dump} is outside {}..={} bytes (or 0 for the default {})",
                dump_range.start(),
                dump_range.end(),
                crate::options::DEFAULT_DUMP_BUFFER_BYTES
            )));
        }

        let mut config = PwruConfig {
            flags: 0,
            netns: 0,
            mark: 0,
            mark_mask: 0,
            ifindex: 0,
            dump_max: if dump == 0 {
                crate::options::DEFAULT_DUMP_BUFFER_BYTES
            } else {
                dump
            },
        };
        let spec = match &o.netns {
            Some(s) => {
                let spec: NetnsSpec = s.parse()?;
                let inode = spec.inode()?;
                config.netns = u32::try_from(inode).map_err(|_| {
                    Error::InvalidOption(format!("netns inode {inode} does not fit 32 bits"))
                })?;
                flags |= PWRU_CFG_FILTER_NETNS;
                Some(spec)
            }
            None => None,
        };
        if let Some(name) = &o.interface {
            let spec = match &spec {
                Some(s) => s.clone(),
                None => NetnsSpec::Path("/proc/self/ns/net".into()),
            };
            config.ifindex = netns::ifindex_in(&spec, name)?;
            flags |= PWRU_CFG_FILTER_IFINDEX;
        }
        if let Some(m) = o.mark {
            config.mark = m.mark;
            config.mark_mask = m.mask;
            flags |= PWRU_CFG_FILTER_MARK;
        }
        let c = &o.capture;
        for (on, bit) in [
            (c.meta, PWRU_CFG_OUTPUT_META),
            (c.tuple, PWRU_CFG_OUTPUT_TUPLE),
            (c.tunnel, PWRU_CFG_OUTPUT_TUNNEL),
            (c.stack, PWRU_CFG_OUTPUT_STACK),
            (c.caller, PWRU_CFG_OUTPUT_CALLER),
            (c.cb, PWRU_CFG_OUTPUT_CB),
            (c.skb, PWRU_CFG_OUTPUT_SKB),
            (c.skb_shared_info, PWRU_CFG_OUTPUT_SHINFO),
            (o.track_skb, PWRU_CFG_TRACK_SKB | PWRU_CFG_TRACK_HEAD),
            (o.track_skb_by_stackid, PWRU_CFG_TRACK_STACKID),
        ] {
            if on {
                flags |= bit;
            }
        }
        // Functions without an skb argument find their packet through the stack links.
        if !o.non_skb_functions.is_empty() {
            flags |= PWRU_CFG_TRACK_STACKID;
        }
        config.flags = flags;

        // The kernel BTF, parsed once here and shared by every step below and by attach().
        let kernel = std::sync::Arc::new(
            Btf::kernel(o.kernel_btf.as_deref()).map_err(discovery::DiscoveryError::from)?,
        );
        let (backend, tracepoint_flavor, backend_refusals) = choose_backend(o.backend, &kernel)?;
        let (filter_access, filter_access_note) =
            choose_filter_access(backend, tracepoint_flavor, &kernel);
        for (b, why) in &backend_refusals {
            log::debug!("backend {b} refused: {why}");
        }
        if backend == Backend::Tracepoint {
            log::debug!("backend {backend} chosen, tracepoint flavour {tracepoint_flavor:?}");
        } else {
            log::debug!("backend {backend} chosen");
        }
        match &filter_access_note {
            None => log::debug!("filters read packets with bpf_rdonly_cast"),
            Some(why) => log::debug!("filters read packets with bpf_probe_read_kernel: {why}"),
        }
        let filter = translate_filters(&filters, filter_access)?;
        if backend == Backend::Tracepoint && !o.non_skb_functions.is_empty() {
            return Err(Error::InvalidOption(format!(
                "non_skb_functions ({}) cannot be traced with the tracepoint backend: they need \
                 kprobe, kprobe-multi or fentry (choose one of them, or drop the functions)",
                o.non_skb_functions.join(", ")
            )));
        }

        let function_backend = backend != Backend::Tracepoint;
        let found = discovery::discover_with(
            &DiscoveryOptions {
                filter_func: if function_backend {
                    o.function_regex.clone()
                } else {
                    None
                },
                modules: match &o.kernel_modules {
                    KernelModules::None => Modules::None,
                    KernelModules::List(l) => Modules::List(l.clone()),
                    KernelModules::All => Modules::All,
                },
                non_skb_funcs: o.non_skb_functions.clone(),
                kernel_btf: o.kernel_btf.clone(),
                require_traceable: function_backend,
                tracefs: None,
                tracepoints: !function_backend,
            },
            kernel,
        )?;

        let targets: Vec<Target> = if function_backend {
            found
                .functions
                .iter()
                .map(|f| Target {
                    name: f.name.clone(),
                    module: f.module.clone(),
                    position: f.position(),
                })
                .collect()
        } else {
            let re = match &o.function_regex {
                Some(r) => Some(discovery::whole_name_regex(r)?),
                None => None,
            };
            // Only tracepoints the kernel has AND the object has a program for.
            pwru_ebpf::TRACEPOINTS
                .iter()
                .filter(|(_, _, name, _)| found.tracepoints.iter().any(|t| t.name == *name))
                .filter(|(_, _, name, _)| re.as_ref().is_none_or(|re| re.is_match(name)))
                .map(|&(_, _, name, pos)| Target {
                    name: name.to_string(),
                    module: None,
                    position: pos + 1,
                })
                .collect()
        };
        log::debug!(
            "{} targets to attach, {} functions without an skb argument",
            targets.len(),
            found.non_skb_functions.len()
        );
        if targets.is_empty() {
            return Err(discovery::DiscoveryError::NoMatch {
                expr: o.function_regex.clone().unwrap_or_else(|| ".*".into()),
            }
            .into());
        }
        // A listed function that has an skb argument and is traced anyway is not linked twice.
        let non_skb_targets: Vec<String> = found
            .non_skb_functions
            .into_iter()
            .filter(|n| !targets.iter().any(|t| t.name == *n))
            .collect();
        Ok(Tracer {
            options: o,
            backend,
            tracepoint_flavor,
            backend_refusals,
            targets,
            non_skb_targets,
            filter,
            filter_access,
            filter_access_note,
            config,
            btf: found.btf,
            build_time: started.elapsed(),
        })
    }
}
