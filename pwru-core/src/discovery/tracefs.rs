//! tracefs: which functions the kernel can trace, and tracepoint categories.

use std::collections::{HashMap, HashSet};
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
        Ok(AvailableFunctions::parse(&text))
    }

    /// The first function of `available_filter_functions_addrs` (Linux 6.5+), with the
    /// address of its ftrace site: one traceable function found with a single read, which
    /// costs the kernel no walk (the whole list costs one per read). `None` when the file is
    /// missing, unreadable or empty.
    pub fn first_traceable_address(&self) -> Option<(u64, String)> {
        use std::io::Read;
        let mut file = std::fs::File::open(self.root.join("available_filter_functions_addrs")).ok()?;
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

/// A read of `available_filter_functions` on its own thread, started before the kernel BTF is
/// parsed: the kernel serves that file 4 KiB per `read` and walks its function records from the
/// first one for each, so the read grows with the square of the list (0.6-1.1 s for ~50,000
/// functions in a QEMU guest).
#[derive(Debug)]
pub struct TraceableJob(std::thread::JoinHandle<Result<AvailableFunctions, DiscoveryError>>);

impl TraceableJob {
    /// Starts reading the list of the tracefs `tracefs` (`None` finds it); `None` if no
    /// thread could be started.
    pub fn start(tracefs: Option<Tracefs>) -> Option<TraceableJob> {
        std::thread::Builder::new()
            .name("pwru-tracefs".into())
            .spawn(move || {
                let clock = crate::timings::ThreadClock::start();
                let list = match tracefs {
                    Some(t) => t.available_functions(),
                    None => Tracefs::find()?.available_functions(),
                };
                clock.log("traceable list read");
                list
            })
            .ok()
            .map(TraceableJob)
    }

    /// The list, waiting for the thread.
    pub fn wait(self) -> Result<AvailableFunctions, DiscoveryError> {
        match self.0.join() {
            Ok(r) => r,
            // The read panicked on its thread: the same panic here.
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
}

/// The contents of `available_filter_functions`: traceable function names, with the module of
/// module functions.
#[derive(Debug, Clone, Default)]
pub struct AvailableFunctions {
    names: HashSet<String>,
    modules: HashMap<String, Vec<String>>,
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
        let mut out = AvailableFunctions::default();
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let Some(name) = parts.next() else { continue };
            if let Some(m) = parts.next() {
                if let Some(m) = m.strip_prefix('[').and_then(|m| m.strip_suffix(']')) {
                    out.modules
                        .entry(name.to_string())
                        .or_default()
                        .push(m.to_string());
                }
            }
            out.names.insert(name.to_string());
        }
        out
    }

    /// Whether `name` can be traced.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// The (first) module defining `name`, if it is a module function.
    pub fn module_of(&self, name: &str) -> Option<&str> {
        self.modules
            .get(name)
            .and_then(|m| m.first())
            .map(String::as_str)
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
