//! tracefs: which functions the kernel can trace, and tracepoint categories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::DiscoveryError;

/// Places where tracefs is usually mounted, in the order tried.
pub const TRACEFS_CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// A mounted tracefs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// Finds the mounted tracefs: `/sys/kernel/tracing`, `/sys/kernel/debug/tracing`, or any
    /// `tracefs` line in `/proc/mounts`.
    ///
    /// ```no_run
    /// let tracefs = pwru_core::discovery::Tracefs::find()?;
    /// println!("tracefs at {}", tracefs.root().display());
    /// # Ok::<(), pwru_core::discovery::DiscoveryError>(())
    /// ```
    pub fn find() -> Result<Tracefs, DiscoveryError> {
        for c in TRACEFS_CANDIDATES {
            if Path::new(c).join("events").is_dir() {
                return Ok(Tracefs { root: c.into() });
            }
        }
        if let Ok(mounts) = std::fs::read_to_string("/proc/mounts") {
            for line in mounts.lines() {
                let mut f = line.split_whitespace();
                let (_, dir, fstype) = (f.next(), f.next(), f.next());
                if let (Some(dir), Some("tracefs")) = (dir, fstype) {
                    return Ok(Tracefs { root: dir.into() });
                }
            }
        }
        Err(DiscoveryError::NoTracefs)
    }

    /// Uses tracefs mounted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Tracefs {
        Tracefs { root: root.into() }
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads `available_filter_functions`: the functions kprobes/fentry can attach to.
    pub fn available_functions(&self) -> Result<AvailableFunctions, DiscoveryError> {
        let path = self.root.join("available_filter_functions");
        let text = std::fs::read_to_string(&path).map_err(|e| DiscoveryError::FilterFunctions {
            path: path.clone(),
            source: e,
        })?;
        Ok(AvailableFunctions::parse_owned(text))
    }

    /// The first function of `available_filter_functions_addrs` (Linux 6.5+), with the
    /// address of its ftrace site: one traceable function found with a single read, which
    /// costs the kernel no walk (the whole list costs one per read). `None` when the file is
    /// missing, unreadable or empty.
    pub fn first_traceable_address(&self) -> Option<(u64, String)> {
        use std::io::Read;
        let mut file =
            std::fs::File::open(self.root.join("available_filter_functions_addrs")).ok()?;
        let mut buf = [0u8; 512];
        let n = file.read(&mut buf).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        let line = text.lines().next()?;
        let mut fields = line.split_whitespace();
        let address = u64::from_str_radix(fields.next()?, 16).ok()?;
        let name = fields.next()?;
        (address != 0).then(|| (address, name.to_string()))
    }

    /// Maps each tracepoint name to its category (`kfree_skb` -> `skb`), from `events/*/*`.
    pub fn tracepoint_categories(&self) -> Result<HashMap<String, String>, DiscoveryError> {
        let events = self.root.join("events");
        let io = |e| DiscoveryError::TracefsIo {
            path: events.clone(),
            source: e,
        };
        let mut map = HashMap::new();
        for cat in std::fs::read_dir(&events).map_err(io)? {
            let Ok(cat) = cat else { continue };
            if !cat.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(cat_name) = cat.file_name().into_string() else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(cat.path()) else {
                continue;
            };
            for ev in entries.flatten() {
                if ev.file_type().is_ok_and(|t| t.is_dir()) {
                    if let Ok(name) = ev.file_name().into_string() {
                        map.entry(name).or_insert_with(|| cat_name.clone());
                    }
                }
            }
        }
        Ok(map)
    }
}

/// The traceable functions, being found on another thread: either a read of
/// `available_filter_functions` on a thread of its own, started before the kernel BTF is
/// parsed, or the kernel symbol table's ftrace sites, sent by its reader
/// ([`crate::symbols::SymbolsJob::ftrace_sites`]).
///
/// The kernel serves that file 4 KiB per `read` and walks its function records from the first
/// one for each, so the read grows with the square of the list (0.6-1.1 s for ~50,000
/// functions in a QEMU guest); the symbol table, read anyway, carries the same answer in the
/// first bytes of each function.
#[derive(Debug)]
pub struct TraceableJob(Source);

#[derive(Debug)]
enum Source {
    List(std::thread::JoinHandle<Result<AvailableFunctions, DiscoveryError>>),
    /// Where to send the names asked about, and the answer: those of them that begin with an
    /// ftrace site, as a listing in the file's format, or `None` if the symbol table cannot
    /// tell (the file of the tracefs, `None` to find it, is read then).
    Sites(Sites, Option<Tracefs>),
}

impl TraceableJob {
    /// Starts reading the list of the tracefs `tracefs` (`None` finds it); `None` if no
    /// thread could be started.
    pub fn start(tracefs: Option<Tracefs>) -> Option<TraceableJob> {
        std::thread::Builder::new()
            .name("pwru-tracefs".into())
            .spawn(move || read_list(tracefs))
            .ok()
            .map(|h| TraceableJob(Source::List(h)))
    }

    /// The functions a symbol reader finds to begin with an ftrace site, of those
    /// [`wait_for`] asks about, answered as a listing in `available_filter_functions`' format;
    /// when it answers `None` or nothing, the list of the tracefs `tracefs` (`None` finds it)
    /// is read instead.
    ///
    /// [`wait_for`]: TraceableJob::wait_for
    pub fn from_sites(sites: Sites, tracefs: Option<Tracefs>) -> TraceableJob {
        TraceableJob(Source::Sites(sites, tracefs))
    }

    /// The traceable functions, waiting for the thread: the whole list read from tracefs, or
    /// those of `names` a symbol reader finds to begin with an ftrace site.
    pub fn wait_for(self, names: Vec<String>) -> Result<AvailableFunctions, DiscoveryError> {
        match self.0 {
            Source::List(thread) => match thread.join() {
                Ok(r) => r,
                // The read panicked on its thread: the same panic here.
                Err(payload) => std::panic::resume_unwind(payload),
            },
            Source::Sites(Sites { ask, answer }, tracefs) => {
                // A reader that already gave up answers `None` whatever it is asked.
                let _ = ask.send(names);
                match answer.recv() {
                    Ok(Some(text)) => {
                        log::debug!("{SITES_USED}");
                        Ok(AvailableFunctions::parse_owned(text))
                    }
                    _ => {
                        log::debug!(
                            "the kernel symbols do not show ftrace sites: reading \
                             available_filter_functions"
                        );
                        read_list(tracefs)
                    }
                }
            }
        }
    }
}

/// The debug log line that says the traceable functions came from the kernel symbol table's
/// ftrace sites, not from tracefs' list (the VM matrix looks for it).
pub const SITES_USED: &str =
    "traceable functions taken from the kernel symbol table's ftrace sites";

/// The two ends of a question to a kernel symbol reader: which of these functions begin with
/// an ftrace site? See [`crate::symbols::SymbolsJob::ftrace_sites`].
#[derive(Debug)]
pub struct Sites {
    /// The names asked about.
    pub ask: std::sync::mpsc::Sender<Vec<String>>,
    /// Those of them with a site, one line each in `available_filter_functions`' format;
    /// `None` if the reader cannot tell.
    pub answer: std::sync::mpsc::Receiver<Option<String>>,
}

/// Reads the traceable list of `tracefs` (`None` finds it), timing it in the debug log.
fn read_list(tracefs: Option<Tracefs>) -> Result<AvailableFunctions, DiscoveryError> {
    let clock = crate::timings::ThreadClock::start();
    let list = match tracefs {
        Some(t) => t.available_functions(),
        None => Tracefs::find()?.available_functions(),
    };
    clock.log("traceable list read");
    list
}

/// The contents of `available_filter_functions`: traceable function names, with the module of
/// module functions.
///
/// The text is kept as read, and its names are found through an open-addressing table of
/// their FNV-1a hashes: no allocation per name. The list has ~50,000-120,000 lines and its
/// parse is on the critical path of a session's start (discovery waits for it); a set of
/// owned strings cost ~440 ns a line natively, and several times that under an emulator.
#[derive(Debug, Clone, Default)]
pub struct AvailableFunctions {
    text: String,
    /// One per distinct name, in the order first listed.
    names: Vec<Listed>,
    /// Indexes into `names` plus one (0: free), linear probing; a power of two long.
    slots: Vec<u32>,
}

/// A name of the list: where it and its (first) module are in the text.
#[derive(Debug, Clone, Copy)]
struct Listed {
    hash: u64,
    name: Span,
    /// Empty for a function of the core kernel (until a line gives it a module).
    module: Span,
}

/// A byte range of the kept text (u32: the list is a few MiB).
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of(text: &str, part: &str) -> Option<Span> {
        // `part` is a slice of `text`: its offset is the distance between their pointers.
        let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
        Some(Span {
            start: u32::try_from(start).ok()?,
            len: u32::try_from(part.len()).ok()?,
        })
    }

    fn get(self, text: &str) -> &str {
        let start = self.start as usize;
        text.get(start..start + self.len as usize).unwrap_or("")
    }
}

impl AvailableFunctions {
    /// Parses lines of the form `name` or `name [module]` (other trailing text is ignored).
    ///
    /// ```
    /// use pwru_core::discovery::AvailableFunctions;
    /// let f = AvailableFunctions::parse("ip_rcv\nvxlan_rcv [vxlan]\n");
    /// assert!(f.contains("ip_rcv"));
    /// assert_eq!(f.module_of("vxlan_rcv"), Some("vxlan"));
    /// ```
    pub fn parse(text: &str) -> AvailableFunctions {
        Self::parse_owned(text.to_string())
    }

    /// [`AvailableFunctions::parse`], keeping `text` instead of a copy.
    pub fn parse_owned(text: String) -> AvailableFunctions {
        // About 30 bytes a line: room for every line at a load factor under one half.
        let slots = (text.len() / 15).max(16).next_power_of_two();
        let mut out = AvailableFunctions {
            names: Vec::with_capacity(slots / 4),
            slots: vec![0; slots],
            text: String::new(),
        };
        for line in text.lines() {
            let mut parts = line.split_ascii_whitespace();
            let Some(name) = parts.next() else { continue };
            let module = parts
                .next()
                .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'));
            let (Some(name_span), Some(module_span)) = (
                Span::of(&text, name),
                module.map_or(Some(Span::default()), |m| Span::of(&text, m)),
            ) else {
                continue;
            };
            out.insert(&text, name, name_span, module_span);
        }
        out.text = text;
        out
    }

    /// Adds a line's name, or gives a listed name without a module this line's module.
    fn insert(&mut self, text: &str, name: &str, name_span: Span, module: Span) {
        if self.names.len() * 2 >= self.slots.len() {
            self.grow();
        }
        let hash = crate::fnv::hash(name.as_bytes());
        let slot = match self.probe(text, hash, name) {
            Ok(found) => {
                let listed = &mut self.names[found];
                if listed.module.len == 0 {
                    listed.module = module;
                }
                return;
            }
            Err(free) => free,
        };
        let Ok(index) = u32::try_from(self.names.len() + 1) else {
            return;
        };
        self.names.push(Listed {
            hash,
            name: name_span,
            module,
        });
        self.slots[slot] = index;
    }

    /// The index in `names` of `name`, or the free slot where it would go.
    fn probe(&self, text: &str, hash: u64, name: &str) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            match self.slots[slot] {
                0 => return Err(slot),
                i => {
                    let listed = &self.names[i as usize - 1];
                    if listed.hash == hash && listed.name.get(text) == name {
                        return Ok(i as usize - 1);
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Doubles the table (a list longer than its size suggested).
    fn grow(&mut self) {
        let mask = (self.slots.len() * 2).max(16) - 1;
        self.slots = vec![0; mask + 1];
        for (i, listed) in self.names.iter().enumerate() {
            let mut slot = listed.hash as usize & mask;
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            // Fewer names than slots, and `insert` checked that their count fits a u32.
            self.slots[slot] = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
    }

    /// The entry of `name`, if listed.
    fn find(&self, name: &str) -> Option<&Listed> {
        if self.slots.is_empty() {
            return None;
        }
        let hash = crate::fnv::hash(name.as_bytes());
        self.probe(&self.text, hash, name)
            .ok()
            .map(|i| &self.names[i])
    }

    /// Whether `name` can be traced.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The (first) module defining `name`, if it is a module function.
    pub fn module_of(&self, name: &str) -> Option<&str> {
        self.find(name)
            .filter(|l| l.module.len > 0)
            .map(|l| l.module.get(&self.text))
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no function is traceable.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{AvailableFunctions, Sites, TraceableJob, Tracefs};

    /// A question to a reader that answers on its own thread, as the symbols job does.
    fn reader(answer: impl FnOnce(Vec<String>) -> Option<String> + Send + 'static) -> Sites {
        let (ask, asked) = std::sync::mpsc::channel::<Vec<String>>();
        let (tell, told) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(names) = asked.recv() {
                let _ = tell.send(answer(names));
            }
        });
        Sites { ask, answer: told }
    }

    /// The symbol reader's listing stands for the file: same names, same modules; it is asked
    /// about the names given.
    #[test]
    fn a_listing_of_ftrace_sites_reads_as_the_list() {
        let sites = reader(|names| {
            assert_eq!(names, ["ip_rcv", "vxlan_rcv", "notrace_fn"]);
            Some("ip_rcv\nvxlan_rcv [vxlan]\n".to_string())
        });
        let job = TraceableJob::from_sites(sites, Some(Tracefs::at("/nonexistent")));
        let asked = ["ip_rcv", "vxlan_rcv", "notrace_fn"]
            .map(String::from)
            .to_vec();
        let list = job.wait_for(asked).expect("the listing");
        assert_eq!(list.len(), 2);
        assert!(list.contains("ip_rcv") && list.contains("vxlan_rcv"));
        assert_eq!(list.module_of("vxlan_rcv"), Some("vxlan"));
        assert_eq!(list.module_of("ip_rcv"), None);
    }

    /// A reader that cannot tell (it sends `None`) or ends without sending leaves the answer
    /// to the file itself, here in a tracefs directory made for the test.
    #[test]
    fn without_a_listing_the_file_is_read() {
        let dir = std::env::temp_dir().join(format!("pwru-tracefs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        std::fs::write(dir.join("available_filter_functions"), "udp_rcv\n").expect("a list");
        for cannot_tell in [true, false] {
            let sites = if cannot_tell {
                reader(|_| None)
            } else {
                let (ask, _) = std::sync::mpsc::channel();
                let (_, answer) = std::sync::mpsc::channel();
                Sites { ask, answer }
            };
            let list = TraceableJob::from_sites(sites, Some(Tracefs::at(&dir)))
                .wait_for(vec!["udp_rcv".into()])
                .expect("the file");
            assert!(list.contains("udp_rcv") && list.len() == 1);
        }
        std::fs::remove_dir_all(&dir).expect("removed");
    }
    use std::collections::{HashMap, HashSet};

    /// The plain reading of the list: the set of names, and each name's first module.
    fn reference(text: &str) -> (HashSet<&str>, HashMap<&str, &str>) {
        let (mut names, mut modules) = (HashSet::new(), HashMap::new());
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let Some(name) = parts.next() else { continue };
            names.insert(name);
            if let Some(m) = parts
                .next()
                .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
            {
                modules.entry(name).or_insert(m);
            }
        }
        (names, modules)
    }

    fn agrees_with_reference(text: &str) {
        let list = AvailableFunctions::parse(text);
        let (names, modules) = reference(text);
        assert_eq!(list.len(), names.len());
        for name in &names {
            assert!(list.contains(name), "{name}");
            assert_eq!(list.module_of(name), modules.get(name).copied(), "{name}");
        }
        for absent in ["", "not_listed_anywhere", "ip_rc", "ip_rcv2"] {
            assert_eq!(list.contains(absent), names.contains(absent), "{absent:?}");
        }
    }

    #[test]
    fn names_modules_and_repeats() {
        let text =
            "ip_rcv\nvxlan_rcv [vxlan]\n\n  \nfoo\nfoo [m1]\nfoo [m2]\nbar [m3] extra\nip_rcv\n";
        agrees_with_reference(text);
        let list = AvailableFunctions::parse(text);
        assert_eq!(list.len(), 4);
        assert_eq!(list.module_of("foo"), Some("m1"));
        assert_eq!(list.module_of("ip_rcv"), None);
        assert!(AvailableFunctions::parse("").is_empty());
    }

    /// A list the size of a real one: the host's kallsyms text symbols in the list's format
    /// (tracefs itself may be hidden here), against the plain reading.
    #[test]
    fn a_kernel_sized_list_agrees_with_the_plain_reading() {
        let Some(text) = pwru_testkit::kernel_lists::traceable_list_from_kallsyms() else {
            eprintln!("SKIP a_kernel_sized_list_agrees_with_the_plain_reading: no /proc/kallsyms");
            return;
        };
        assert!(
            text.lines().count() > 1_000,
            "kallsyms lists too few text symbols"
        );
        agrees_with_reference(&text);
    }
}
