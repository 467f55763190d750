//! Kernel symbols from `/proc/kallsyms`: address -> function name + offset (+ module).
//!
//! Built once (one read, one sort), then every lookup is a binary search with no allocation.
//! Sessions read the same table through the kernel's BPF ksym iterator when they can
//! (`ksym_iter.rs`, [`KernelSymbols::load_with`]): the text symbols only, in binary, without
//! the kernel's formatting of every line and without a text parse.
//!
//! ```no_run
//! let syms = pwru_core::symbols::KernelSymbols::load()?;
//! if let Some(sym) = syms.lookup(0xffff_ffff_8100_0010) {
//!     println!("{}+{:#x}", sym.name, sym.offset);
//! }
//! # Ok::<(), pwru_core::symbols::SymbolsError>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fnv::BuildFnv;

mod entry;
mod ksym_iter;

/// Where the kernel lists its symbols.
pub const KALLSYMS: &str = "/proc/kallsyms";

/// Why symbols could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SymbolsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Every address is zero: the kernel hides them from this process.
    #[error("all kernel symbol addresses in {path} read as zero; {advice}")]
    Restricted {
        /// The file.
        path: PathBuf,
        /// What would show the addresses here (the capability or sysctl to change).
        advice: String,
    },
    /// No symbol lines at all.
    #[error("{0} lists no symbols; is it a kallsyms file?")]
    Empty(PathBuf),
}

/// A resolved address. Cheap to clone: names are shared with the table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Symbol {
    /// Symbol name, e.g. `ip_rcv`.
    pub name: Arc<str>,
    /// Module name for module symbols.
    pub module: Option<Arc<str>>,
    /// Symbol start address.
    pub addr: u64,
    /// Distance of the looked-up address from `addr`.
    pub offset: u64,
}

impl Symbol {
    /// Symbol `name` (of `module`, if any) starting at `addr`, with `offset` into it.
    pub fn new(name: &str, module: Option<&str>, addr: u64, offset: u64) -> Symbol {
        Symbol {
            name: Arc::from(name),
            module: module.map(Arc::from),
            addr,
            offset,
        }
    }
}

impl std::fmt::Display for Symbol {
    /// `name+0xoff` (just `name` at offset 0), with ` [module]` for module symbols.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if self.offset != 0 {
            write!(f, "+{:#x}", self.offset)?;
        }
        if let Some(m) = &self.module {
            write!(f, " [{m}]")?;
        }
        Ok(())
    }
}

/// Name prefixes of the frames that run a BPF program rather than the traced code: the BPF
/// program itself, fentry trampolines, and the tracepoint glue between the function that
/// fires a tracepoint and the program.
const DISPATCH_PREFIXES: [&str; 7] = [
    "bpf_prog_",
    "bpf_trampoline_",
    "__bpf_prog_enter",
    "__bpf_prog_exit",
    "__traceiter_",
    "__bpf_trace_",
    "bpf_trace_run",
];

/// Whole names of kprobe, kprobe-multi (fprobe/rethook), ftrace and perf-event dispatch frames.
const DISPATCH_NAMES: [&str; 22] = [
    "trace_call_bpf",
    "perf_trace_run_bpf_submit",
    "kprobe_ftrace_handler",
    "kprobe_dispatcher",
    "kprobe_perf_func",
    "kprobe_multi_link_handler",
    "kprobe_multi_link_prog_run",
    "kprobe_multi_link_exit_handler",
    "fprobe_handler",
    "__fprobe_handler",
    "fprobe_entry",
    "fprobe_ftrace_entry",
    "rethook_trampoline_handler",
    "arch_rethook_trampoline",
    "arch_rethook_trampoline_callback",
    "ftrace_regs_caller",
    "ftrace_regs_call",
    "ftrace_caller",
    "ftrace_call",
    "ftrace_trampoline",
    "arch_ftrace_ops_list_func",
    "__ftrace_ops_list_func",
];

/// Whether `name` is a frame of the BPF/tracing dispatch machinery (the program, a
/// trampoline, tracepoint or kprobe glue) rather than of the traced kernel code.
///
/// ```
/// use pwru_core::symbols::is_dispatch_frame;
/// assert!(is_dispatch_frame("__traceiter_net_dev_queue"));
/// assert!(is_dispatch_frame("bpf_trace_run1"));
/// assert!(is_dispatch_frame("bpf_prog_6deef7357e7b4530_tp_btf_kfree_skb"));
/// assert!(!is_dispatch_frame("__dev_queue_xmit"));
/// ```
pub fn is_dispatch_frame(name: &str) -> bool {
    DISPATCH_PREFIXES.iter().any(|p| name.starts_with(p)) || DISPATCH_NAMES.contains(&name)
}

/// Removes the dispatch frames ([`is_dispatch_frame`]) at the top of `stack` (innermost
/// first), so it starts in the traced kernel code, or at the traced program when tracing a
/// tc/XDP program (the program right below a `bpf_trampoline_*` frame is kept). Frames
/// further down are kept: a BPF program deeper in the stack (a tc program calling a kernel
/// function) is real context.
///
/// ```
/// use pwru_core::symbols::{trim_dispatch_frames, Symbol};
/// let sym = |n: &str| Symbol::new(n, None, 0, 0);
/// let mut stack = vec![
///     sym("bpf_prog_02e6a3d1bfec5624_tp_btf_net_dev_queue"),
///     sym("bpf_trace_run1"),
///     sym("__traceiter_net_dev_queue"),
///     sym("__dev_queue_xmit"),
///     sym("bpf_prog_1234_cil_from_netdev"),
///     sym("tcf_classify"),
/// ];
/// trim_dispatch_frames(&mut stack);
/// let names: Vec<&str> = stack.iter().map(|s| &*s.name).collect();
/// assert_eq!(names, ["__dev_queue_xmit", "bpf_prog_1234_cil_from_netdev", "tcf_classify"]);
///
/// // Tracing a tc program: the traced program stays on top.
/// let mut stack = vec![
///     sym("bpf_prog_5678_fentry_tc"),
///     sym("bpf_trampoline_6442"),
///     sym("bpf_prog_1234_cil_from_netdev"),
///     sym("tcf_classify"),
/// ];
/// trim_dispatch_frames(&mut stack);
/// assert_eq!(&*stack[0].name, "bpf_prog_1234_cil_from_netdev");
/// ```
pub fn trim_dispatch_frames(stack: &mut Vec<Symbol>) {
    let mut n = 0;
    for (i, s) in stack.iter().enumerate() {
        // A program entered through a trampoline is the traced tc/XDP program: keep it.
        let traced_prog = s.name.starts_with("bpf_prog_")
            && i > 0
            && stack[i - 1].name.starts_with("bpf_trampoline_");
        if traced_prog || !is_dispatch_frame(&s.name) {
            break;
        }
        n = i + 1;
    }
    stack.drain(..n);
}

/// One text symbol. Its name is a range of the table's name buffer: a read makes no
/// allocation per symbol (a quarter of the parse's native profile was malloc and free, and
/// allocations cost more still under emulation). The shared name a lookup hands out is made
/// on the first lookup of the symbol and kept.
#[derive(Debug, Clone)]
struct Entry {
    addr: u64,
    name_start: u32,
    name_len: u32,
    /// Index into the table's modules, or [`NO_MODULE`].
    module: u32,
    /// Whether the function begins with an ftrace site (known only through the ksym
    /// iterator).
    ftrace_site: entry::Site,
    interned: std::sync::OnceLock<Arc<str>>,
}

const NO_MODULE: u32 = u32::MAX;

/// A BPF program image whose extent is known exactly (from the program's own info, not from
/// kallsyms): see [`KernelSymbols::add_images`].
#[derive(Debug, Clone)]
struct Image {
    start: u64,
    end: u64,
    name: Arc<str>,
}

/// One read of kallsyms, sorted, plus the images added since.
#[derive(Debug, Clone, Default)]
struct Table {
    entries: Vec<Entry>,
    /// Every entry's name, one after the other.
    names: String,
    /// Module names, each once.
    modules: Vec<Arc<str>>,
    /// Sorted by `start`, not overlapping.
    images: Vec<Image>,
}

/// Sorted kernel symbol table. Shared behind an `Arc` by a session and its decoder, it can be
/// completed while events are decoded: [`KernelSymbols::add_images`] names BPF programs
/// loaded after the read, and [`KernelSymbols::replace_with`] swaps in a newer read.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    table: std::sync::RwLock<Table>,
    /// Read through the kernel's ksym iterator (not from `/proc/kallsyms`).
    through_iterator: bool,
    /// Each entry says whether its function begins with an ftrace site.
    knows_ftrace_sites: bool,
}

impl Clone for KernelSymbols {
    fn clone(&self) -> Self {
        KernelSymbols {
            table: std::sync::RwLock::new(self.read().clone()),
            through_iterator: self.through_iterator,
            knows_ftrace_sites: self.knows_ftrace_sites,
        }
    }
}

/// A read of the kernel's symbols (through its ksym iterator once given the BTF, else
/// `/proc/kallsyms`) on its own thread, so that it overlaps building, loading and attaching
/// (under QEMU it takes a few hundred milliseconds), and optionally the addresses of some
/// functions looked up there too ([`SymbolsJob::resolve`]).
#[derive(Debug)]
pub struct SymbolsJob {
    thread: std::thread::JoinHandle<Result<Resolved, SymbolsError>>,
    /// Where [`SymbolsJob::resolve`] sends the names; dropped to tell the thread none come.
    names: Option<std::sync::mpsc::Sender<Vec<String>>>,
    /// Where [`SymbolsJob::use_btf`] sends the kernel BTF; dropped to tell the thread none
    /// comes.
    btf: Option<std::sync::mpsc::Sender<Given>>,
    /// The thread's ends of the question [`SymbolsJob::ftrace_sites`] asks, until
    /// [`SymbolsJob::use_btf`] hands them over (in a mutex only so that a job, and the tracer
    /// holding it, can be shared between threads: a receiver cannot).
    sites: std::sync::Mutex<Option<SitesAsked>>,
    /// The modules loaded when the read began (see [`SymbolsJob::is_current`]).
    modules: Option<String>,
}

/// What a [`SymbolsJob`] hands back: the table, and the addresses of the names it was given.
type Resolved = (KernelSymbols, Vec<Option<u64>>);

/// What [`SymbolsJob::use_btf`] gives the thread: the kernel BTF, and the question about
/// ftrace sites, if asked.
struct Given {
    btf: Arc<crate::btf::Btf>,
    sites: Option<SitesAsked>,
}

/// The reader's ends of a [`crate::discovery::Sites`] question: the names asked about, and
/// where the answer goes.
#[derive(Debug)]
struct SitesAsked {
    names: std::sync::mpsc::Receiver<Vec<String>>,
    answer: std::sync::mpsc::Sender<Option<String>>,
}

impl SitesAsked {
    /// Answers with the sites of `table` among the names asked (`None` if it cannot tell),
    /// once they come; nothing if the asker is gone. Then looks the names' addresses up: the
    /// tracer's targets are among them, and its attach asks for those next
    /// ([`SymbolsJob::resolve`]), while the asker finishes building.
    fn answer(self, table: &KernelSymbols) -> HashMap<String, Option<u64>, BuildFnv> {
        let Ok(names) = self.names.recv() else {
            return HashMap::default();
        };
        let _ = self.answer.send(table.ftrace_site_listing_of(&names));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let addresses = table.addresses_of(&refs);
        names.into_iter().zip(addresses).collect()
    }

    /// Answers `None` at once: the table will not tell.
    fn cannot_tell(self) {
        let _ = self.answer.send(None);
    }
}

/// Where the kernel lists its loaded modules (with their addresses, to the privileged).
const MODULES: &str = "/proc/modules";

/// Each loaded module's name and load address, from [`MODULES`] (its use counts change all the
/// time and are left out): empty for a kernel without modules, `None` if it cannot be read.
fn loaded_modules() -> Option<String> {
    let text = match std::fs::read_to_string(MODULES) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(_) => return None,
    };
    Some(
        text.lines()
            .map(|l| {
                let mut fields = l.split_ascii_whitespace();
                let name = fields.next().unwrap_or("");
                format!("{name} {}\n", fields.last().unwrap_or(""))
            })
            .collect(),
    )
}

impl SymbolsJob {
    /// Starts reading the kernel's symbols; `None` if no thread could be started. The thread
    /// waits for the kernel BTF ([`SymbolsJob::use_btf`]) to read them through the kernel's
    /// ksym iterator, and reads `/proc/kallsyms` if none comes or the iterator cannot be used.
    pub fn start() -> Option<SymbolsJob> {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<String>>();
        let (btf_tx, btf_rx) = std::sync::mpsc::channel::<Given>();
        let modules = loaded_modules();
        let thread = std::thread::Builder::new()
            .name("pwru-kallsyms".into())
            .spawn(move || {
                let (btf, mut sites) = match btf_rx.recv() {
                    Ok(Given { btf, sites }) => (Some(btf), sites),
                    Err(_) => (None, None),
                };
                let clock = crate::timings::ThreadClock::start();
                let table = KernelSymbols::load_noting_fallback(btf.as_deref(), || {
                    // The text shows no code: whoever waits for the sites reads tracefs' list
                    // now, alongside.
                    if let Some(asked) = sites.take() {
                        asked.cannot_tell();
                    }
                })?;
                clock.log(if table.read_through_iterator() {
                    "kernel symbols read through the ksym iterator"
                } else {
                    "kallsyms read and parsed"
                });
                let known = sites.map(|asked| asked.answer(&table)).unwrap_or_default();
                // Names sent meanwhile, or none once the job's sender is gone.
                let names = rx.recv().unwrap_or_default();
                let addresses = match names.iter().map(|n| known.get(n).copied()).collect() {
                    Some(found) => found,
                    None => {
                        let names: Vec<&str> = names.iter().map(String::as_str).collect();
                        table.addresses_of(&names)
                    }
                };
                Ok((table, addresses))
            })
            .ok()?;
        Some(SymbolsJob {
            thread,
            names: Some(tx),
            btf: Some(btf_tx),
            sites: std::sync::Mutex::new(None),
            modules,
        })
    }

    /// A question for the thread: which of the names sent on [`crate::discovery::Sites::ask`]
    /// begin with an ftrace site ([`KernelSymbols::ftrace_site_listing_of`])? That is the
    /// answer of tracefs' `available_filter_functions` without its read (see
    /// [`crate::discovery::TraceableJob::from_sites`]). Once it has read the table the thread
    /// waits for the names (or for the asker to go), answers, and only then goes on to
    /// [`SymbolsJob::resolve`]'s names. It answers `None` as soon as it knows the table cannot
    /// tell (no BTF given, no usable iterator), and nothing if it fails. Call it before
    /// [`SymbolsJob::use_btf`]; only the first call counts.
    pub fn ftrace_sites(&mut self) -> crate::discovery::Sites {
        let (ask, names) = std::sync::mpsc::channel();
        let (answer, told) = std::sync::mpsc::channel();
        let sites = self.sites.get_mut().unwrap_or_else(|p| p.into_inner());
        if self.btf.is_some() && sites.is_none() {
            *sites = Some(SitesAsked { names, answer });
        }
        crate::discovery::Sites { ask, answer: told }
    }

    /// Hands the thread the kernel BTF, which it needs to read the symbols through the
    /// kernel's ksym iterator (see [`KernelSymbols::load_with`]). Only the first call counts;
    /// [`SymbolsJob::no_btf`] says none comes.
    pub fn use_btf(&mut self, btf: Arc<crate::btf::Btf>) {
        if let Some(tx) = self.btf.take() {
            // A thread that already ended reports its outcome from `wait`.
            let _ = tx.send(Given {
                btf,
                sites: self.take_sites(),
            });
        }
    }

    /// The thread's ends of the sites question, if asked and not handed over yet.
    fn take_sites(&mut self) -> Option<SitesAsked> {
        self.sites
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Tells the thread no BTF comes: it reads `/proc/kallsyms` now (and sends no ftrace
    /// sites).
    pub fn no_btf(&mut self) {
        self.btf = None;
        self.take_sites();
    }

    /// Has the thread look `names` up (see [`KernelSymbols::addresses_of`]) once the table is
    /// read; [`SymbolsJob::wait_resolved`] returns their addresses. Only the first call counts.
    pub fn resolve(&mut self, names: Vec<String>) {
        if let Some(tx) = self.names.take() {
            // A thread that already ended (its read failed) reports that from `wait`.
            let _ = tx.send(names);
        }
    }

    /// Whether the table being read still describes the kernel: no module was loaded or
    /// unloaded since the read began (a module's functions would have other addresses).
    pub fn is_current(&self) -> bool {
        self.modules.is_some() && loaded_modules() == self.modules
    }

    /// The table, waiting for the thread.
    pub fn wait(self) -> Result<KernelSymbols, SymbolsError> {
        self.wait_resolved().map(|(table, _)| table)
    }

    /// The table and the addresses of the names given to [`SymbolsJob::resolve`], in their
    /// order (none if it was not called), waiting for the thread.
    pub fn wait_resolved(mut self) -> Result<Resolved, SymbolsError> {
        self.names = None;
        self.btf = None;
        self.take_sites();
        match self.thread.join() {
            Ok(r) => r,
            // The parser panicked on its thread: the same panic here.
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms`.
    pub fn load() -> Result<KernelSymbols, SymbolsError> {
        Self::from_path(KALLSYMS)
    }

    /// Reads the kernel's text symbols through its BPF ksym iterator when `btf` (the running
    /// kernel's) allows it: the same table as [`KernelSymbols::load`] without the kernel's
    /// formatting and the text parse, a large part of the read's cost. Falls back to
    /// [`KernelSymbols::load`] (the reason is logged at debug level) on kernels before 6.0,
    /// without BTF, or where the program cannot be loaded.
    pub fn load_with(btf: Option<&crate::btf::Btf>) -> Result<KernelSymbols, SymbolsError> {
        Self::load_noting_fallback(btf, || {})
    }

    /// [`KernelSymbols::load_with`], calling `falling_back` as soon as the iterator is given up
    /// (before the text is read).
    fn load_noting_fallback(
        btf: Option<&crate::btf::Btf>,
        falling_back: impl FnOnce(),
    ) -> Result<KernelSymbols, SymbolsError> {
        if let Some(btf) = btf {
            match ksym_iter::read(btf) {
                Ok(table) => return Ok(table),
                Err(why) => log::debug!("kernel symbols from {KALLSYMS}: {why}"),
            }
        }
        falling_back();
        Self::load()
    }

    /// Reads the kernel's text symbols through its BPF ksym iterator only; `Err` says why it
    /// could not (see [`KernelSymbols::load_with`], which falls back to `/proc/kallsyms`).
    pub fn from_ksym_iterator(btf: &crate::btf::Btf) -> Result<KernelSymbols, String> {
        ksym_iter::read(btf)
    }

    /// Whether this table was read through the kernel's ksym iterator
    /// ([`KernelSymbols::load_with`]) rather than from `/proc/kallsyms`.
    pub fn read_through_iterator(&self) -> bool {
        self.through_iterator
    }

    /// The functions that begin with an ftrace site (those kprobes, kprobe.multi and fentry
    /// attach to), one line each as tracefs' `available_filter_functions` lists them: the
    /// name, then ` [module]` for a module's. `None` when the table does not know: it was
    /// read from `/proc/kallsyms`, whose lines do not show code.
    ///
    /// Only the ksym iterator copies each function's first bytes (see
    /// [`KernelSymbols::read_through_iterator`]).
    pub fn ftrace_site_listing(&self) -> Option<String> {
        self.knows_ftrace_sites
            .then(|| self.read().site_listing(|_| true))
    }

    /// [`KernelSymbols::ftrace_site_listing`] of the functions named in `names` only: one pass
    /// over the table, for the few thousand functions a tracer considers. `None` also when a
    /// name asked about has no copy with a site but one that begins with an int3 (a site being
    /// patched, or a kprobe on a function ftrace does not know): tracefs' list must tell.
    pub fn ftrace_site_listing_of(&self, names: &[String]) -> Option<String> {
        if !self.knows_ftrace_sites {
            return None;
        }
        let wanted: std::collections::HashSet<&str, BuildFnv> =
            names.iter().map(String::as_str).collect();
        let t = self.read();
        let mut unsure = Vec::new();
        let mut sure: std::collections::HashSet<&str, BuildFnv> = Default::default();
        for e in &t.entries {
            let name = t.name(e);
            match e.ftrace_site {
                entry::Site::Unknown if wanted.contains(name) => unsure.push(name),
                entry::Site::Yes if wanted.contains(name) => {
                    sure.insert(name);
                }
                _ => {}
            }
        }
        if let Some(name) = unsure.iter().find(|n| !sure.contains(*n)) {
            log::debug!("{name} begins with an int3: the symbol table cannot tell its ftrace site");
            return None;
        }
        Some(t.site_listing(|name| sure.contains(name)))
    }

    /// Reads a kallsyms-format file.
    ///
    /// The file is read and parsed a chunk at a time: `/proc/kallsyms` is several megabytes of
    /// text of which only the text symbols' names are kept (under emulation, the pages of a
    /// whole copy cost more to fault in than parsing them).
    pub fn from_path(path: impl AsRef<Path>) -> Result<KernelSymbols, SymbolsError> {
        let path = path.as_ref();
        let io = |source: std::io::Error| SymbolsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut parser = Parser::default();
        let mut buf = vec![0u8; READ_CHUNK];
        // Bytes at the start of `buf` holding a line not yet complete.
        let mut kept = 0;
        loop {
            if kept == buf.len() {
                // One line longer than the buffer (not a kernel's): make room.
                buf.resize(buf.len() * 2, 0);
            }
            let n = match std::io::Read::read(&mut file, &mut buf[kept..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            let filled = kept + n;
            let Some(last) = memchr::memrchr(b'\n', &buf[..filled]) else {
                kept = filled;
                continue;
            };
            parser.feed(utf8(&buf[..=last]).map_err(io)?);
            buf.copy_within(last + 1..filled, 0);
            kept = filled - (last + 1);
        }
        parser.feed(utf8(&buf[..kept]).map_err(io)?);
        parser.finish().map_err(|e| match e {
            SymbolsError::Restricted { advice, .. } => SymbolsError::Restricted {
                path: path.to_path_buf(),
                advice,
            },
            SymbolsError::Empty(_) => SymbolsError::Empty(path.to_path_buf()),
            other => other,
        })
    }

    /// Parses kallsyms text: `<hex addr> <type> <name>[\t[module]]`. Only text symbols
    /// (`t`/`T`/`w`/`W`) are kept: events carry code addresses. Malformed lines are skipped.
    ///
    /// ```
    /// use pwru_core::symbols::KernelSymbols;
    /// let syms = KernelSymbols::parse(
    ///     "ffffffff81000000 T _text\nffffffff81001000 T ip_rcv\nffffffff81002000 t vxlan_rcv\t[vxlan]\n",
    /// ).unwrap();
    /// let s = syms.lookup(0xffffffff81001010).unwrap();
    /// assert_eq!((&*s.name, s.offset), ("ip_rcv", 0x10));
    /// assert_eq!(syms.lookup(0xffffffff81002000).unwrap().to_string(), "vxlan_rcv [vxlan]");
    /// assert_eq!(syms.address_of("ip_rcv"), Some(0xffffffff81001000));
    /// ```
    pub fn parse(text: &str) -> Result<KernelSymbols, SymbolsError> {
        let mut parser = Parser::default();
        parser.feed(text);
        parser.finish()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        // A writer cannot leave the table half-changed (each write is one assignment).
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Names BPF program images by their exact extent: `(start, length, name)`. kallsyms
    /// lists a program only once it is loaded, and without its length, so an address in a
    /// program loaded after the read would take the name of whatever symbol precedes it.
    /// Images win over kallsyms entries; overlapping ones replace what they overlap.
    ///
    /// ```
    /// use pwru_core::symbols::KernelSymbols;
    /// let syms = KernelSymbols::parse(
    ///     "ffffffffa0000000 t bpf_dispatcher_xdp_func\t[bpf]\nffffffffa0100000 t other\t[bpf]\n",
    /// )
    /// .unwrap();
    /// // A program loaded after the read sits between the two: kallsyms alone misnames it.
    /// assert_eq!(&*syms.lookup(0xffffffffa0000810).unwrap().name, "bpf_dispatcher_xdp_func");
    /// syms.add_images([(0xffffffffa0000800, 0x100, "bpf_prog_1234_mine".to_string())]);
    /// let s = syms.lookup(0xffffffffa0000810).unwrap();
    /// assert_eq!((&*s.name, s.offset), ("bpf_prog_1234_mine", 0x10));
    /// // Past its end, the table again.
    /// assert_eq!(&*syms.lookup(0xffffffffa0000900).unwrap().name, "bpf_dispatcher_xdp_func");
    /// ```
    pub fn add_images(&self, images: impl IntoIterator<Item = (u64, u64, String)>) {
        let mut t = self.write();
        for (start, len, name) in images {
            if len == 0 {
                continue;
            }
            let end = start.saturating_add(len);
            t.images.retain(|i| i.end <= start || i.start >= end);
            let at = t.images.partition_point(|i| i.start < start);
            t.images.insert(
                at,
                Image {
                    start,
                    end,
                    name: name.into(),
                },
            );
        }
    }

    /// Replaces the kallsyms entries with those of `newer` (a later read), keeping the images
    /// added so far.
    pub fn replace_with(&self, newer: KernelSymbols) {
        let newer = newer.table.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut t = self.write();
        t.entries = newer.entries;
        t.names = newer.names;
        t.modules = newer.modules;
    }

    /// Number of text symbols read from kallsyms.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.read().entries.is_empty()
    }
}

impl Table {
    /// The functions with an ftrace site whose name passes `keep`, one line each in
    /// `available_filter_functions`' format.
    fn site_listing(&self, keep: impl Fn(&str) -> bool) -> String {
        let mut out = String::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.ftrace_site == entry::Site::Yes && keep(self.name(e)))
        {
            out.push_str(self.name(e));
            if let Some(m) = self.modules.get(e.module as usize) {
                out.push_str(" [");
                out.push_str(m);
                out.push(']');
            }
            out.push('\n');
        }
        out
    }

    fn name(&self, e: &Entry) -> &str {
        let start = e.name_start as usize;
        self.names
            .get(start..start + e.name_len as usize)
            .unwrap_or_default()
    }

    fn module(&self, e: &Entry) -> Option<Arc<str>> {
        self.modules.get(e.module as usize).cloned()
    }

    fn symbol(&self, e: &Entry, addr: u64) -> Symbol {
        Symbol {
            name: e.interned.get_or_init(|| self.name(e).into()).clone(),
            module: self.module(e),
            addr: e.addr,
            offset: addr - e.addr,
        }
    }

    fn lookup(&self, addr: u64) -> Option<Symbol> {
        let i = self.images.partition_point(|im| im.start <= addr);
        if let Some(im) = i.checked_sub(1).and_then(|i| self.images.get(i)) {
            if addr < im.end {
                return Some(Symbol {
                    name: im.name.clone(),
                    module: None,
                    addr: im.start,
                    offset: addr - im.start,
                });
            }
        }
        let i = self.entries.partition_point(|e| e.addr <= addr);
        let e = self.entries.get(i.checked_sub(1)?)?;
        Some(self.symbol(e, addr))
    }
}

impl KernelSymbols {
    /// The symbol containing `addr` (the nearest one at or below it), `None` below the first.
    pub fn lookup(&self, addr: u64) -> Option<Symbol> {
        self.read().lookup(addr)
    }

    /// Symbolizes a kernel stack (instruction pointers, innermost first), skipping zero
    /// entries and addresses below the first symbol.
    pub fn symbolize(&self, ips: &[u64]) -> Vec<Symbol> {
        let t = self.read();
        ips.iter()
            .filter(|&&ip| ip != 0)
            .filter_map(|&ip| t.lookup(ip))
            .collect()
    }

    /// The address of function `name` (if the name is defined more than once, the lowest: of
    /// those that begin with an ftrace site, when the table knows them). One pass over the
    /// table: for many names, [`KernelSymbols::addresses_of`].
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.addresses_of(&[name]).pop().flatten()
    }

    /// The address of each function of `names`, in one pass over the table. Where a name is
    /// defined more than once (static functions of several files, out-of-line copies of an
    /// inline one), the lowest address: of the copies that begin with an ftrace site, if the
    /// table knows them and any does (a kprobe.multi link refuses an address without one).
    ///
    /// ```
    /// use pwru_core::symbols::KernelSymbols;
    /// let syms = KernelSymbols::parse(
    ///     "ffffffff81002000 t dup\nffffffff81001000 T ip_rcv\nffffffff81000100 t dup\n",
    /// )
    /// .unwrap();
    /// assert_eq!(
    ///     syms.addresses_of(&["dup", "nope", "ip_rcv"]),
    ///     [Some(0xffffffff81000100), None, Some(0xffffffff81001000)]
    /// );
    /// ```
    pub fn addresses_of(&self, names: &[&str]) -> Vec<Option<u64>> {
        // Indexed by the wanted names, not the table's: a session asks for a few thousand of
        // ~150,000 names, once.
        let mut wanted: HashMap<&str, Vec<usize>, BuildFnv> =
            HashMap::with_capacity_and_hasher(names.len(), BuildFnv);
        for (i, n) in names.iter().enumerate() {
            wanted.entry(n).or_default().push(i);
        }
        let mut out = vec![None; names.len()];
        let t = self.read();
        // Sorted by address: the first match of a name is its lowest address. A copy without
        // a site is kept only until one with a site comes.
        for e in &t.entries {
            let name = t.name(e);
            let Some(slots) = wanted.get(name) else {
                continue;
            };
            let settled = e.ftrace_site == entry::Site::Yes || !self.knows_ftrace_sites;
            for &i in slots {
                if settled || out[i].is_none() {
                    out[i] = Some(e.addr);
                }
            }
            if settled {
                wanted.remove(name);
                if wanted.is_empty() {
                    break;
                }
            }
        }
        out
    }
}

/// How much of a kallsyms file is read at a time (the kernel hands out a page per read).
const READ_CHUNK: usize = 64 * 1024;

/// `bytes` as text, or the error a whole-file read would give for them.
fn utf8(bytes: &[u8]) -> std::io::Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Builds a [`Table`] from kallsyms text given in pieces of whole lines.
#[derive(Default)]
struct Parser {
    table: Table,
    /// Module names seen, with their index in the table's list.
    module_index: HashMap<Box<str>, u32, BuildFnv>,
    lines: usize,
    nonzero: bool,
}

impl Parser {
    /// Parses whole lines (a last line without its end of line counts as whole).
    fn feed(&mut self, text: &str) {
        // Under QEMU the parse of ~160,000 lines took as long as the kernel's side of the
        // read (~350 ms): each end of line is found with memchr, every field is a `&str` cut
        // at ASCII bytes (nothing is validated twice), and a line that is not a text symbol
        // in the kernel's own layout is dropped after its type byte.
        let mut rest = text;
        while !rest.is_empty() {
            let (line, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
                // `\n` is ASCII: both cuts are character boundaries.
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, ""),
            };
            rest = next;
            self.line(line.strip_suffix('\r').unwrap_or(line));
        }
    }

    fn line(&mut self, line: &str) {
        let bytes = line.as_bytes();
        if let Some(&[b' ', kind, b' ']) = bytes.get(16..19) {
            if kind.is_ascii_graphic() && !is_text(kind) && bytes.len() > 19 {
                self.lines += 1;
                self.note_address(&bytes[..16]);
                return;
            }
        }
        let Some(line) = KallsymsLine::split(line) else {
            return;
        };
        self.lines += 1;
        self.note_address(line.addr.as_bytes());
        if !is_text(line.kind) {
            return;
        }
        let Some(addr) = parse_hex(line.addr.as_bytes()) else {
            return;
        };
        self.push_text(addr, line.name, line.module, entry::Site::No);
    }

    /// Adds one text symbol.
    fn push_text(&mut self, addr: u64, name: &str, module: Option<&str>, ftrace_site: entry::Site) {
        let syms = &mut self.table;
        let module = match module {
            Some(m) => match self.module_index.get(m) {
                Some(&i) => i,
                None => {
                    syms.modules.push(m.into());
                    let i = u32::try_from(syms.modules.len() - 1).unwrap_or(NO_MODULE);
                    self.module_index.insert(m.into(), i);
                    i
                }
            },
            None => NO_MODULE,
        };
        let (Ok(name_start), Ok(name_len)) =
            (u32::try_from(syms.names.len()), u32::try_from(name.len()))
        else {
            return;
        };
        syms.names.push_str(name);
        syms.entries.push(Entry {
            addr,
            name_start,
            name_len,
            module,
            ftrace_site,
            interned: std::sync::OnceLock::new(),
        });
    }

    /// Hidden addresses read as zeros; one nonzero address is enough to know (so this test
    /// runs until the first one, usually on the first line).
    fn note_address(&mut self, digits: &[u8]) {
        self.nonzero = self.nonzero || parse_hex(digits).is_some_and(|a| a != 0);
    }

    fn finish(self) -> Result<KernelSymbols, SymbolsError> {
        if self.lines == 0 {
            return Err(SymbolsError::Empty(PathBuf::new()));
        }
        if !self.nonzero {
            let advice = crate::privileges::address_policy::AddressPolicy::current()
                .advice()
                .unwrap_or_else(|| "is it a kallsyms file read with the addresses hidden?".into());
            return Err(SymbolsError::Restricted {
                path: PathBuf::new(),
                advice,
            });
        }
        let mut syms = self.table;
        // kallsyms is mostly sorted already (the core image, then each module): the stable
        // sort's runs make this close to one pass.
        syms.entries.sort_by_key(|e| e.addr);
        Ok(KernelSymbols {
            table: std::sync::RwLock::new(syms),
            through_iterator: false,
            knows_ftrace_sites: false,
        })
    }
}

/// Text symbols: what events' code addresses resolve to.
fn is_text(kind: u8) -> bool {
    matches!(kind, b't' | b'T' | b'w' | b'W')
}

/// The fields of one kallsyms line, `<hex addr> <type> <name>[\t[module]]`.
struct KallsymsLine<'a> {
    addr: &'a str,
    kind: u8,
    name: &'a str,
    module: Option<&'a str>,
}

impl<'a> KallsymsLine<'a> {
    /// Splits at ASCII spaces and tabs; `None` for a line with fewer than three fields or a
    /// type longer than one character.
    fn split(line: &'a str) -> Option<KallsymsLine<'a>> {
        // The kernel's own layout (`%px %c %s`, then `\t[%s]` for a module) first.
        if let Some(&[b' ', kind, b' ']) = line.as_bytes().get(16..19) {
            // Bytes 16 and 18 are ASCII, so 16 and 19 are character boundaries (`get` checks).
            if let (Some(addr), Some(rest)) = (line.get(..16), line.get(19..)) {
                // One scan for the end of the name: a tab starts the module, a space makes
                // the line one for the general reading below.
                let (name, module, spaced) = match memchr::memchr2(b'\t', b' ', rest.as_bytes()) {
                    // Both bytes are ASCII: the cuts are character boundaries.
                    Some(i) if rest.as_bytes()[i] == b'\t' => {
                        (&rest[..i], Some(&rest[i + 1..]), false)
                    }
                    Some(_) => (rest, None, true),
                    None => (rest, None, false),
                };
                if kind.is_ascii() && !name.is_empty() && !spaced {
                    return Some(KallsymsLine {
                        addr,
                        kind,
                        name,
                        module: module.and_then(|m| m.strip_prefix('[')?.strip_suffix(']')),
                    });
                }
            }
        }
        Self::split_fields(line)
    }

    /// Any whitespace between the fields (hand-written files, tests).
    fn split_fields(line: &'a str) -> Option<KallsymsLine<'a>> {
        let mut fields = line.split([' ', '\t', '\r']).filter(|f| !f.is_empty());
        let (addr, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
        let &[kind] = kind.as_bytes() else {
            return None;
        };
        let module = fields
            .next()
            .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'));
        Some(KallsymsLine {
            addr,
            kind,
            name,
            module,
        })
    }
}

/// A kallsyms address: 1 to 16 hex digits.
fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc << 4 | u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain reading of the format (whitespace-separated fields), to compare the parser's
    /// fast path with: (address, name, module) of each text symbol, in file order.
    fn reference(text: &str) -> Vec<(u64, String, Option<String>)> {
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_ascii_whitespace();
                let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
                let addr = u64::from_str_radix(addr, 16).ok()?;
                matches!(kind, "t" | "T" | "w" | "W").then_some(())?;
                let module = f
                    .next()
                    .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
                    .map(String::from);
                Some((addr, name.to_string(), module))
            })
            .collect()
    }

    fn parsed(text: &str) -> Vec<(u64, String, Option<String>)> {
        entries_of(&KernelSymbols::parse(text).expect("parses"))
    }

    fn entries_of(syms: &KernelSymbols) -> Vec<(u64, String, Option<String>)> {
        let t = syms.read();
        t.entries
            .iter()
            .map(|e| {
                (
                    e.addr,
                    t.name(e).to_string(),
                    t.module(e).as_deref().map(String::from),
                )
            })
            .collect()
    }

    #[test]
    fn a_name_is_shared_from_its_first_lookup_on() {
        let syms = KernelSymbols::parse(
            "ffffffff81000000 T _text\nffffffff81000100 t ip_rcv\nffffffffa0000000 t vxlan_rcv\t[vxlan]\n",
        )
        .expect("parses");
        let first = syms.lookup(0xffffffff81000104).expect("ip_rcv");
        let again = syms.lookup(0xffffffff81000180).expect("ip_rcv");
        assert_eq!(
            (&*first.name, first.offset, again.offset),
            ("ip_rcv", 4, 0x80)
        );
        assert!(
            Arc::ptr_eq(&first.name, &again.name),
            "the second lookup made another name"
        );
        let module = syms.lookup(0xffffffffa0000001).expect("vxlan_rcv");
        assert_eq!(module.to_string(), "vxlan_rcv+0x1 [vxlan]");
        // A clone of the table shares what was interned, and a newer read replaces names too.
        let clone = syms.clone();
        assert!(Arc::ptr_eq(
            &clone.lookup(0xffffffff81000100).expect("ip_rcv").name,
            &first.name
        ));
        syms.replace_with(KernelSymbols::parse("ffffffff81000000 T renamed\n").expect("parses"));
        assert_eq!(
            &*syms.lookup(0xffffffff81000104).expect("renamed").name,
            "renamed"
        );
        assert_eq!(syms.address_of("ip_rcv"), None);
    }

    #[test]
    fn kernel_layout_and_loose_whitespace_read_alike() {
        let text = "ffffffff81000000 T _text\n\
                    ffffffff81000100 t ip_rcv\n\
                    ffffffff81000200 D some_data\n\
                    ffffffffa0000000 t vxlan_rcv\t[vxlan]\n\
                    ffffffffa0000100 W weak_one\t[mod_b]\r\n\
                    ffffffffa0000200   t   spaced_out   [mod_c]\n\
                    ffffffffa0000300\tt\ttabbed\n\
                    zzzz t not_hex\n\
                    ffffffffa0000400 t\n\
                    \n";
        assert_eq!(parsed(text), reference(text));
        assert_eq!(parsed(text).len(), 6);
    }

    #[test]
    fn addresses_of_takes_the_lowest_of_duplicates_and_none_for_unknown() {
        let syms = KernelSymbols::parse(
            "ffffffff81003000 t dup\nffffffff81000100 t dup\nffffffff81002000 T ip_rcv\n",
        )
        .expect("parses");
        assert_eq!(
            syms.addresses_of(&["ip_rcv", "dup", "missing", "dup"]),
            [
                Some(0xffffffff81002000),
                Some(0xffffffff81000100),
                None,
                Some(0xffffffff81000100)
            ]
        );
        assert_eq!(syms.address_of("dup"), Some(0xffffffff81000100));
        assert_eq!(syms.address_of("missing"), None);
    }

    /// A file read a chunk at a time (lines cut at chunk ends, a line longer than a chunk,
    /// a last line without its end) gives what its whole text gives.
    #[test]
    fn a_file_read_in_chunks_parses_as_its_whole_text() {
        let mut text = String::new();
        for i in 0..20_000u64 {
            let kind = ["t", "T", "D", "w", "b"][(i % 5) as usize];
            let module = if i % 7 == 0 { "\t[mod_x]" } else { "" };
            text.push_str(&format!(
                "{:016x} {kind} fn_{i}{module}\n",
                0xffff_ffff_8100_0000 + i * 16
            ));
        }
        text.push_str(&format!(
            "ffffffff90000000 T {}\n",
            "long_".repeat(READ_CHUNK / 4)
        ));
        text.push_str("ffffffff90000100 t no_newline_at_the_end");
        assert!(text.len() > 4 * READ_CHUNK);
        let dir = std::env::temp_dir().join(format!("pwru-kallsyms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("kallsyms");
        std::fs::write(&file, &text).expect("write");
        let from_file = KernelSymbols::from_path(&file).expect("reads");
        assert_eq!(entries_of(&from_file), parsed(&text));
        assert_eq!(
            from_file.address_of("no_newline_at_the_end"),
            Some(0xffffffff90000100)
        );
        assert!(from_file.len() > 12_000, "{} symbols", from_file.len());

        // Not text: the error a whole read gives, naming the file.
        std::fs::write(&file, b"ffffffff81000000 T \xff\xfe\n").expect("write");
        match KernelSymbols::from_path(&file) {
            Err(SymbolsError::Io { path, source }) => {
                assert_eq!(path, file);
                assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The running kernel's own file, where this process may read it with addresses.
    #[test]
    fn this_kernels_kallsyms_parses_as_the_plain_reading_does() {
        let Ok(text) = std::fs::read_to_string(KALLSYMS) else {
            eprintln!("SKIP: {KALLSYMS} is not readable here");
            return;
        };
        match KernelSymbols::parse(&text) {
            Err(SymbolsError::Restricted { .. }) => {
                eprintln!("SKIP: {KALLSYMS} hides its addresses from this process");
            }
            Err(e) => panic!("{KALLSYMS}: {e}"),
            Ok(_) => {
                // Both sorts are stable over the same file order.
                let mut want = reference(&text);
                want.sort_by_key(|w| w.0);
                let got = parsed(&text);
                assert!(got.len() > 1000, "{} text symbols", got.len());
                assert!(got == want, "the parse differs from the plain reading");
                // The chunked read of the file itself (a second read: modules may come and
                // go in between, so only the core image's symbols are compared).
                let core = |v: Vec<(u64, String, Option<String>)>| -> Vec<_> {
                    v.into_iter().filter(|e| e.2.is_none()).collect()
                };
                let read = entries_of(&KernelSymbols::load().expect("reads"));
                assert!(
                    core(read) == core(got),
                    "the chunked read differs from the parse"
                );
            }
        }
    }
}
