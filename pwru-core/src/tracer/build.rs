//! [`TracerBuilder::build`]: the checks, the backend choice (each backend probed for real)
//! and the discovery of targets, in the order that reports a user's typo before any kernel
//! probe.

use std::time::Instant;

use pwru_ebpf::{PWRU_CFG_FILTER_META_SKB, PWRU_CFG_FILTER_PCAP_SKB};

use crate::backend::{driver, Driver, Tracepoint, TracepointFlavor};
use crate::btf::Btf;
use crate::discovery::{self, DiscoveryOptions, Modules};
use crate::error::Error;
use crate::object::{LoaderOptions, ObjectJob};
use crate::options::{Backend, KernelModules};
use crate::privileges::{self, Capability};
use crate::timings::Timings;

use super::expressions::compile_expressions;
use super::filters::{choose_filter_access, compile_filters, skb_reads_for, translate_filters};
use super::{config, Target, Tracer, TracerBuilder};

/// Probes `backend` for real: its driver, for the tracepoint backend in the flavour the
/// kernel accepts.
fn probe(backend: Backend, kernel: &Btf) -> Result<&'static dyn Driver, String> {
    match driver(backend, TracepointFlavor::Btf) {
        Some(d) if backend != Backend::Tracepoint => d.probe(Some(kernel)).map(|()| d),
        _ => Tracepoint::choose(Some(kernel)).map(|t| t as &'static dyn Driver),
    }
}

/// The chosen backend's driver, and the backends refused before it.
type Choice = (&'static dyn Driver, Vec<(Backend, String)>);

/// Picks the backend: the requested one, or the first of [`Backend::AUTO_ORDER`] that works.
fn choose_backend(requested: Backend, kernel: &Btf) -> Result<Choice, Error> {
    if requested != Backend::Auto {
        return match probe(requested, kernel) {
            Ok(driver) => Ok((driver, Vec::new())),
            Err(reason) => Err(Error::BackendUnsupported {
                backend: requested,
                reason,
            }),
        };
    }
    let mut refusals = Vec::new();
    for b in Backend::AUTO_ORDER {
        match probe(b, kernel) {
            Ok(driver) => return Ok((driver, refusals)),
            Err(reason) => refusals.push((b, reason)),
        }
    }
    Err(Error::NoBackend { refusals })
}

/// The kernel functions loaded tc/XDP programs call, for `track_bpf_helpers`: only a
/// function backend can trace them, so the tracepoint backend is refused with the reasons the
/// others were.
fn bpf_helpers_to_trace(
    backend: Backend,
    refusals: &[(Backend, String)],
) -> Result<Vec<String>, Error> {
    refuse_tracepoint_backend("track_bpf_helpers", "the helpers", backend, refusals)?;
    called_by_packet_programs()
}

/// `option` traces kernel functions (`what`): refused with the tracepoint backend, saying why
/// the function backends were refused.
fn refuse_tracepoint_backend(
    option: &str,
    what: &str,
    backend: Backend,
    refusals: &[(Backend, String)],
) -> Result<(), Error> {
    if backend == Backend::Tracepoint {
        let why = if refusals.is_empty() {
            "the tracepoint backend was chosen; choose kprobe, kprobe-multi or fentry".to_string()
        } else {
            let reasons: Vec<String> = refusals.iter().map(|(b, r)| format!("{b}: {r}")).collect();
            format!("this kernel refused them ({})", reasons.join("; "))
        };
        return Err(Error::InvalidOption(format!(
            "{option} needs kprobes or fentry (the kprobe, kprobe-multi or fentry \
             backend) to trace {what}, and {why}"
        )));
    }
    Ok(())
}

/// The kernel functions the loaded tc/XDP programs call.
fn called_by_packet_programs() -> Result<Vec<String>, Error> {
    let symbols = crate::symbols::KernelSymbols::load()?;
    let names = discovery::bpf_helpers::called_by_packet_programs(&symbols)
        .map_err(discovery::DiscoveryError::from)?;
    log::debug!(
        "{} kernel functions called by loaded tc/XDP programs: {}",
        names.len(),
        names.join(", ")
    );
    Ok(names)
}

impl TracerBuilder {
    /// Checks everything and plans the tracing; attaches nothing. With kprobe.multi on every
    /// function it also prepares the loader on a thread and loads (verifies) the event
    /// programs into the kernel, unattached, so that [`Tracer::attach`] only links them;
    /// dropping the tracer frees them.
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
        let mut timings = Timings::default();
        let phase = Instant::now();
        let (filters, flags) = compile_filters(&o)?;
        if let Some(re) = &o.function_regex {
            discovery::whole_name_regex(re)?;
        }
        o.ring_buffer_bytes =
            crate::options::ring_buffer_size(o.ring_buffer_bytes, crate::sys::page_size())
                .map_err(Error::InvalidOption)?;

        let mut config = config::kernel_config(&o, flags)?;
        timings.filter_compile = phase.elapsed();

        // The kernel symbol table, which every session needs (attach() waits for it), is read
        // alongside the BTF parse. A function backend also needs the traceable functions:
        // the table shows them when it is read through the ksym iterator (with the running
        // kernel's BTF); otherwise tracefs' list, the slowest part of discovery, is read on
        // a thread of its own from now on.
        let mut symbols = crate::symbols::SymbolsJob::start();
        let guessed_function_backend = o.backend != Backend::Tracepoint;
        let traceable = match symbols.as_mut() {
            _ if !guessed_function_backend => None,
            Some(job) if o.kernel_btf.is_none() => Some(discovery::TraceableJob::from_sites(
                job.ftrace_sites(),
                None,
            )),
            _ => discovery::TraceableJob::start(None),
        };

        // The kernel BTF, parsed once here and shared by every step below and by attach().
        let phase = Instant::now();
        let clock = crate::timings::ThreadClock::start();
        let kernel = std::sync::Arc::new(
            Btf::kernel(o.kernel_btf.as_deref()).map_err(discovery::DiscoveryError::from)?,
        );
        clock.log("kernel BTF read and parsed");
        timings.btf = phase.elapsed();
        if let Some(job) = symbols.as_mut() {
            // A BTF from a file given by the caller may not be the running kernel's.
            if o.kernel_btf.is_none() {
                job.use_btf(std::sync::Arc::clone(&kernel));
            } else {
                job.no_btf();
            }
        }
        let expressions = compile_expressions(&o, &kernel)?;
        config.flags |= expressions.flags;
        // aya's copy of the BTF is parsed meanwhile, and the object relocated against it: the
        // slowest part of loading the object, independent of what is still to be chosen.
        let relocation = ObjectJob::Relocating(crate::object::RelocationJob::start(
            &kernel,
            pwru_ebpf::OBJECT,
            guessed_function_backend,
        ));
        // Discovery (reading tracefs and BTF: CPU) runs on its own thread while the backend
        // probes wait on the kernel. It assumes a function backend unless tracepoints were
        // asked for, and runs again in the rare case that Auto falls back to tracepoints.
        let discovery_for = |function_backend: bool| DiscoveryOptions {
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
            optional_non_skb_funcs: Vec::new(),
            kernel_btf: o.kernel_btf.clone(),
            require_traceable: function_backend,
            tracefs: None,
            tracepoints: !function_backend,
        };
        let guessed = discovery_for(guessed_function_backend);
        let (chosen, translated, early, object) = std::thread::scope(|s| {
            let kernel_for_discovery = std::sync::Arc::clone(&kernel);
            let guessed = &guessed;
            let discovering = std::thread::Builder::new()
                .name("pwru-discovery".into())
                .spawn_scoped(s, move || {
                    let started = Instant::now();
                    let clock = crate::timings::ThreadClock::start();
                    let found = match traceable {
                        Some(job) => {
                            discovery::discover_with_traceable(guessed, kernel_for_discovery, job)
                        }
                        None => discovery::discover_with(guessed, kernel_for_discovery),
                    };
                    clock.log("discovery (with its wait for the traceable functions)");
                    (found, started.elapsed())
                })
                .ok();
            let phase = Instant::now();
            let clock = crate::timings::ThreadClock::start();
            let chosen = choose_backend(o.backend, &kernel).map(|(driver, refusals)| {
                let access = choose_filter_access(driver, &kernel);
                (driver, refusals, access, phase.elapsed())
            });
            clock.log("backend choice");
            // The filter is translated for the chosen access at once, and with kprobe.multi
            // on every function (all five skb positions) the loader is made and its programs
            // verified on a thread: discovery, which waits for the kernel's symbols, is
            // usually not done yet.
            let mut object = relocation;
            let mut translated = None;
            if let Ok((driver, _, (access, _), _)) = &chosen {
                let phase = Instant::now();
                let skb = skb_reads_for(*driver, *access, &kernel);
                let filter = translate_filters(
                    &filters,
                    *access,
                    skb.as_ref(),
                    config.flags,
                    &expressions.bodies(),
                );
                let took = phase.elapsed();
                if let (Ok((filter, flags)), Backend::KprobeMulti, None) =
                    (&filter, driver.backend(), &o.function_regex)
                {
                    let mut config = config;
                    config.flags |= flags;
                    object = object.load_ahead(
                        filter.clone(),
                        config,
                        LoaderOptions {
                            ring_buf_bytes: o.ring_buffer_bytes,
                            attach_threads: o.attach_threads,
                        },
                        crate::backend::programs_ahead_kprobe_multi(),
                    );
                }
                translated = Some((filter, took));
            }
            let early = discovering.map(|h| match h.join() {
                Ok(r) => r,
                // Discovery panicked on its thread: the same panic here.
                Err(payload) => std::panic::resume_unwind(payload),
            });
            (chosen, translated, early, object)
        });
        let (driver, backend_refusals, (filter_access, filter_access_note), choice_time) = chosen?;
        timings.backend_choice = choice_time;
        let backend = driver.backend();
        for (b, why) in &backend_refusals {
            log::debug!("backend {b} refused: {why}");
        }
        if backend == Backend::Tracepoint {
            log::debug!(
                "backend {backend} chosen, tracepoint flavour {}",
                driver.name()
            );
        } else {
            log::debug!("backend {backend} chosen");
        }
        match &filter_access_note {
            None => log::debug!("filters read packets with bpf_rdonly_cast"),
            Some(why) => log::debug!("filters read packets with bpf_probe_read_kernel: {why}"),
        }
        let (filter, filter_flags) = match translated {
            Some((filter, took)) => {
                timings.filter_translate = took;
                filter?
            }
            None => {
                let phase = Instant::now();
                let skb = skb_reads_for(driver, filter_access, &kernel);
                let filter = translate_filters(
                    &filters,
                    filter_access,
                    skb.as_ref(),
                    config.flags,
                    &expressions.bodies(),
                )?;
                timings.filter_translate = phase.elapsed();
                filter
            }
        };
        config.flags |= filter_flags;
        if filter_flags & PWRU_CFG_FILTER_PCAP_SKB != 0 {
            log::debug!("the pcap filter reads the skb's header fields with bpf_rdonly_cast");
        }
        if filter_flags & PWRU_CFG_FILTER_META_SKB != 0 {
            log::debug!("the netns, mark and interface filters read the skb with bpf_rdonly_cast");
        }
        if backend == Backend::Tracepoint && !o.non_skb_functions.is_empty() {
            return Err(Error::InvalidOption(format!(
                "non_skb_functions ({}) cannot be traced with the tracepoint backend: they need \
                 kprobe, kprobe-multi or fentry (choose one of them, or drop the functions)",
                o.non_skb_functions.join(", ")
            )));
        }

        let bpf_helpers = if o.track_bpf_helpers {
            bpf_helpers_to_trace(backend, &backend_refusals)?
        } else {
            Vec::new()
        };

        let map_op_targets = if o.bpf_map_ops {
            refuse_tracepoint_backend(
                "bpf_map_ops",
                "the map operations",
                backend,
                &backend_refusals,
            )?;
            let ops = discovery::map_ops::map_ops(&called_by_packet_programs()?);
            log::debug!(
                "{} map functions called by loaded tc/XDP programs: {}",
                ops.len(),
                ops.iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ops
        } else {
            Vec::new()
        };

        let function_backend = backend != Backend::Tracepoint;
        let found = match early {
            // The early run knew no helpers to add (they need the chosen backend).
            Some((found, took))
                if function_backend == guessed_function_backend && bpf_helpers.is_empty() =>
            {
                timings.discovery = took;
                found?
            }
            // No thread, the guess was wrong (Auto fell back to tracepoints), or helpers to
            // trace: here.
            _ => {
                let phase = Instant::now();
                let mut options = discovery_for(function_backend);
                options.optional_non_skb_funcs = bpf_helpers;
                let found = discovery::discover_with(&options, kernel)?;
                timings.discovery = phase.elapsed();
                found
            }
        };

        let targets: Vec<Target> = if function_backend {
            found
                .functions
                .iter()
                .map(|f| Target {
                    name: f.name.clone(),
                    module: f.module.clone(),
                    position: f.position(),
                    address: None,
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
                    address: None,
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
            driver,
            backend_refusals,
            targets,
            non_skb_targets,
            map_op_targets,
            filter,
            filter_access,
            filter_access_note,
            config,
            btf: found.btf,
            object,
            symbols,
            timings: Timings {
                build: started.elapsed(),
                ..timings
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::options::Backend;
    use crate::Tracer;

    /// `build()` hands its symbols job the running kernel's BTF, so the table comes through the
    /// kernel's ksym iterator (a job never given the BTF falls back to /proc/kallsyms quietly).
    #[test]
    fn the_symbols_job_reads_through_the_ksym_iterator() {
        if !crate::sys::process::is_root() {
            eprintln!("SKIP the_symbols_job_reads_through_the_ksym_iterator: needs root");
            return;
        }
        let has_iterator = crate::btf::Btf::vmlinux().is_ok_and(|b| {
            b.find_by_name(crate::btf::Kind::Func, "bpf_iter_ksym")
                .is_some()
        });
        if !has_iterator {
            eprintln!("SKIP the_symbols_job_reads_through_the_ksym_iterator: no ksym iterator");
            return;
        }
        let mut tracer = Tracer::builder()
            .backend(Backend::Tracepoint)
            .pcap_filter("host 203.0.113.77")
            .build()
            .expect("build");
        let job = tracer.symbols.take().expect("a symbols job");
        let table = job.wait().expect("symbols read");
        assert!(
            table.read_through_iterator(),
            "the table came from /proc/kallsyms"
        );
    }
}
