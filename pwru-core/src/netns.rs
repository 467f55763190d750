//! Network namespaces: pwru's `--filter-netns` spec, interface names resolved inside a netns,
//! an (netns, ifindex) -> name cache for output, and `ip netns` names.
//!
//! Entering a namespace is done by a short-lived thread (named `pwru-netns`) that calls
//! `setns(2)` and then dies, so the caller's threads never change namespace.
//!
//! Reading a namespace's interfaces is a netlink dump, and its skbs are traced like any other
//! by a session with no filter. The [`InterfaceCache`] therefore reads every namespace once
//! before a session attaches, then looks up only on a miss, one dump per namespace, within its
//! [`CacheLimits`] (per-namespace interval, negative cache, a token bucket over all
//! namespaces); every map it keeps is capped and evictions are counted ([`CacheStats`]).
//!
//! ```no_run
//! use pwru_core::netns::{NetnsSpec, ifindex_in};
//! let spec: NetnsSpec = "/proc/1/ns/net".parse()?;
//! let inode = spec.inode()?;
//! let ifindex = ifindex_in(&spec, "lo")?;
//! assert_eq!(ifindex, 1);
//! # Ok::<(), pwru_core::netns::NetnsError>(())
//! ```

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sys::ns as sys;

/// Where `ip netns` keeps its bind mounts.
pub const IP_NETNS_DIR: &str = "/run/netns";

/// Why a namespace or interface could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// The spec is neither a path nor `inode:<n>`.
    #[error("invalid netns {0:?}; use /proc/<pid>/ns/net, /run/netns/<name> or inode:<number>")]
    BadSpec(String),
    /// A namespace file could not be opened or stat'ed.
    #[error(
        "cannot open network namespace {path}: {source}; check the process exists and run as root"
    )]
    Open {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not a network namespace (e.g. a plain file, or another kind of
    /// namespace such as `/proc/<pid>/ns/mnt`).
    #[error("{path} is not a network namespace file ({found}); give /proc/<pid>/ns/net, /run/netns/<name> or inode:<number>")]
    NotNetns {
        /// The path as given.
        path: PathBuf,
        /// What it is instead.
        found: String,
    },
    /// No process or `ip netns` entry holds a namespace with this inode.
    #[error("no process or /run/netns entry holds network namespace inode {0}; give its /proc/<pid>/ns/net path instead")]
    InodeNotFound(u64),
    /// `setns(2)` failed.
    #[error(
        "cannot enter network namespace {path}: {source}; this needs CAP_SYS_ADMIN (run as root)"
    )]
    Enter {
        /// The namespace file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The interface does not exist in that namespace.
    #[error("interface {name:?} not found in network namespace {netns}; list them with `ip -n <ns> link`")]
    NoInterface {
        /// The interface name.
        name: String,
        /// The namespace (path or inode).
        netns: String,
    },
    /// The helper thread could not be started or died.
    #[error("netns helper thread failed: {0}")]
    Thread(String),
}

/// A network namespace as pwru's `--filter-netns` accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsSpec {
    /// A namespace file: `/proc/<pid>/ns/net`, `/run/netns/<name>`, ...
    Path(PathBuf),
    /// A namespace inode number (`inode:<n>`).
    Inode(u64),
}

impl FromStr for NetnsSpec {
    type Err = NetnsError;

    /// Parses `inode:<n>` or a path starting with `/`.
    ///
    /// ```
    /// use pwru_core::netns::NetnsSpec;
    /// assert_eq!("inode:4026531840".parse::<NetnsSpec>().unwrap(), NetnsSpec::Inode(4026531840));
    /// assert!("eth0".parse::<NetnsSpec>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(n) = s.strip_prefix("inode:") {
            return n
                .trim()
                .parse()
                .map(NetnsSpec::Inode)
                .map_err(|_| NetnsError::BadSpec(s.to_string()));
        }
        if s.starts_with('/') {
            return Ok(NetnsSpec::Path(s.into()));
        }
        Err(NetnsError::BadSpec(s.to_string()))
    }
}

impl std::fmt::Display for NetnsSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetnsSpec::Path(p) => write!(f, "{}", p.display()),
            NetnsSpec::Inode(i) => write!(f, "inode:{i}"),
        }
    }
}

impl NetnsSpec {
    /// The namespace inode number (what the kernel program compares with
    /// `skb->dev->nd_net.net->ns.inum`).
    ///
    /// A path must be a network namespace file ([`netns_file_inode`]); an inode is taken as
    /// given (a namespace may be held by no file at all).
    pub fn inode(&self) -> Result<u64, NetnsError> {
        match self {
            NetnsSpec::Inode(i) => Ok(*i),
            NetnsSpec::Path(p) => netns_file_inode(p),
        }
    }

    /// A file that refers to the namespace (searching processes and `/run/netns` for
    /// `inode:` specs).
    pub fn path(&self) -> Result<PathBuf, NetnsError> {
        match self {
            NetnsSpec::Path(p) => Ok(p.clone()),
            NetnsSpec::Inode(i) => path_for_inode(*i),
        }
    }
}

/// `statfs` magic of nsfs, the filesystem of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

fn namespace_kind(clone_flag: libc::c_int) -> String {
    let name = match clone_flag {
        libc::CLONE_NEWNS => "mount",
        libc::CLONE_NEWUTS => "UTS",
        libc::CLONE_NEWIPC => "IPC",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWPID => "PID",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWTIME => "time",
        other => return format!("a namespace of type {other:#x}"),
    };
    format!("a {name} namespace")
}

/// The inode of the network namespace file at `path`, after checking that it is one: a file
/// of nsfs (the filesystem of `/proc/<pid>/ns/*` and of `ip netns` bind mounts) whose
/// namespace type is network. `/etc/passwd` or `/proc/self/ns/mnt` are refused with
/// [`NetnsError::NotNetns`].
///
/// ```no_run
/// use pwru_core::netns::netns_file_inode;
/// assert!(netns_file_inode("/proc/self/ns/net".as_ref()).is_ok());
/// assert!(netns_file_inode("/etc/passwd".as_ref()).is_err());
/// ```
pub fn netns_file_inode(path: &Path) -> Result<u64, NetnsError> {
    let open_err = |e| NetnsError::Open {
        path: path.to_path_buf(),
        source: e,
    };
    let not = |found: String| NetnsError::NotNetns {
        path: path.to_path_buf(),
        found,
    };
    // Namespace files are regular files; opening anything else (a FIFO, a device) could block
    // or have side effects.
    let meta = std::fs::metadata(path).map_err(open_err)?;
    if !meta.is_file() {
        return Err(not(if meta.is_dir() {
            "a directory".into()
        } else {
            "not a regular file".into()
        }));
    }
    let file = std::fs::File::open(path).map_err(open_err)?;
    let fs_type = sys::filesystem_type(file.as_fd()).map_err(open_err)?;
    if fs_type != NSFS_MAGIC {
        return Err(not("a file, not a namespace".into()));
    }
    let kind = sys::namespace_type(file.as_fd())
        .map_err(|e| not(format!("the kernel does not tell its type: {e}")))?;
    if kind != libc::CLONE_NEWNET {
        return Err(not(namespace_kind(kind)));
    }
    Ok(meta.ino())
}

fn inode_of(path: &Path) -> Result<u64, NetnsError> {
    std::fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| NetnsError::Open {
            path: path.to_path_buf(),
            source: e,
        })
}

/// The inode of this process's network namespace.
pub fn current_inode() -> Result<u64, NetnsError> {
    inode_of(Path::new("/proc/self/ns/net"))
}

/// Every distinct network namespace visible through `/run/netns/*` and `/proc/<pid>/ns/net`, as
/// (inode, a path referring to it).
pub fn all_namespaces() -> Vec<(u64, PathBuf)> {
    let mut seen: HashMap<u64, PathBuf> = HashMap::new();
    let mut add = |p: PathBuf| {
        if let Ok(ino) = inode_of(&p) {
            seen.entry(ino).or_insert(p);
        }
    };
    if let Ok(rd) = std::fs::read_dir(IP_NETNS_DIR) {
        for e in rd.flatten() {
            add(e.path());
        }
    }
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name();
            if name
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            {
                add(e.path().join("ns/net"));
            }
        }
    }
    let mut v: Vec<_> = seen.into_iter().collect();
    v.sort();
    v
}

fn path_for_inode(ino: u64) -> Result<PathBuf, NetnsError> {
    all_namespaces()
        .into_iter()
        .find(|(i, _)| *i == ino)
        .map(|(_, p)| p)
        .ok_or(NetnsError::InodeNotFound(ino))
}

/// `ip netns` names by namespace inode (from `/run/netns`; empty when the directory is absent).
pub fn ip_netns_names() -> HashMap<u64, String> {
    let mut out = HashMap::new();
    if let Ok(rd) = std::fs::read_dir(IP_NETNS_DIR) {
        for e in rd.flatten() {
            if let (Ok(ino), Ok(name)) = (inode_of(&e.path()), e.file_name().into_string()) {
                out.insert(ino, name);
            }
        }
    }
    out
}

/// Runs `f` on a fresh thread that has entered the namespace at `path`.
fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    let file = std::fs::File::open(path).map_err(|e| NetnsError::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    let owned_path = path.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("pwru-netns".into())
        .spawn(move || {
            // Changes only this thread's network namespace; it exits right after `f`.
            if let Err(source) = sys::enter_netns(file.as_fd()) {
                return Err(NetnsError::Enter {
                    path: owned_path,
                    source,
                });
            }
            Ok(f())
        })
        .map_err(|e| NetnsError::Thread(e.to_string()))?;
    handle
        .join()
        .map_err(|_| NetnsError::Thread("panicked".into()))?
}

/// Lists (ifindex, name) of the current thread's namespace.
fn list_interfaces_here() -> Vec<(u32, String)> {
    sys::interfaces()
}

/// Resolves interface `name` to its ifindex inside the namespace `netns`.
pub fn ifindex_in(netns: &NetnsSpec, name: &str) -> Result<u32, NetnsError> {
    let path = netns.path()?;
    let cname = CString::new(name).map_err(|_| NetnsError::NoInterface {
        name: name.to_string(),
        netns: netns.to_string(),
    })?;
    let idx = in_netns(&path, move || sys::if_nametoindex(&cname).unwrap_or(0))?;
    if idx == 0 {
        return Err(NetnsError::NoInterface {
            name: name.to_string(),
            netns: netns.to_string(),
        });
    }
    Ok(idx)
}

/// Lists the interfaces (ifindex, name) of namespace `netns`.
pub fn interfaces_in(netns: &NetnsSpec) -> Result<Vec<(u32, String)>, NetnsError> {
    let path = netns.path()?;
    in_netns(&path, list_interfaces_here)
}

/// Limits of an [`InterfaceCache`]: how many entries it keeps and how often it may look.
///
/// Every lookup is a netlink dump (`RTM_GETLINK`) made inside the namespace: real skbs that a
/// tracer with no filter sees like any other, so the limits also bound how much of its own
/// work pwru-core puts into the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Names kept at most (one per (namespace, ifindex)); beyond it an entry is evicted.
    pub max_names: usize,
    /// Unknown (namespace, ifindex) pairs remembered at most (the negative cache).
    pub max_unknown: usize,
    /// Namespaces whose lookup state (last dump, file path) is kept at most.
    pub max_namespaces: usize,
    /// A pair a dump did not find is not looked up again before this much time.
    pub negative_ttl: Duration,
    /// One namespace is dumped at most once per this interval.
    pub netns_interval: Duration,
    /// Dumps of all namespaces together: at most this many in a burst ...
    pub lookup_burst: u32,
    /// ... and on average at most this many per second.
    pub lookups_per_second: u32,
}

impl CacheLimits {
    /// The defaults: 65,536 names, 16,384 unknown pairs, 4,096 namespaces; an unknown pair is
    /// retried after 10 s, a namespace re-read at most once a second, and lookups of all
    /// namespaces together at most 32 in a burst and 10 a second on average.
    pub const DEFAULT: CacheLimits = CacheLimits {
        max_names: 65_536,
        max_unknown: 16_384,
        max_namespaces: 4_096,
        negative_ttl: Duration::from_secs(10),
        netns_interval: Duration::from_secs(1),
        lookup_burst: 32,
        lookups_per_second: 10,
    };
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a session's interface name cache did: lookups made and skipped, entries evicted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Namespace dumps made for events from unknown interfaces (not counting the dump of
    /// every namespace before attaching).
    pub lookups: u64,
    /// Misses answered without a lookup (negative cache or rate limit).
    pub skipped: u64,
    /// Scans of `/proc` and `/run/netns` to find a namespace's file.
    pub path_scans: u64,
    /// Entries dropped because a limit was reached (names, unknown pairs, namespaces).
    pub evictions: u64,
}

/// Finds a file for every visible namespace (inode, path).
type Scanner = fn() -> Vec<(u64, PathBuf)>;

/// Reads the interface list of the namespace behind this file, if it can be entered.
type Lister = fn(&Path) -> Option<Vec<(u32, String)>>;

fn list_in(path: &Path) -> Option<Vec<(u32, String)>> {
    in_netns(path, list_interfaces_here).ok()
}

/// Interface names by (netns inode, ifindex), for printing events.
///
/// [`InterfaceCache::refresh`] reads every visible namespace (a [`Session`](crate::Session)
/// does it before attaching anything, so that work is never traced).
/// [`InterfaceCache::resolve`] reads one namespace on a miss, in one dump (every name of that
/// namespace at once), and is bounded by [`CacheLimits`]: a namespace is dumped at most once
/// per `netns_interval`, all namespaces together at most once per `global_interval`, and a
/// pair the dump did not find is not looked up again for `negative_ttl`. So a flood of events
/// from an unknown or vanished interface costs one lookup, not one per event, and the
/// lookups' own netlink skbs stay a handful per namespace. Every map is capped; evictions are
/// counted in [`InterfaceCache::stats`].
#[derive(Debug, Clone)]
pub struct InterfaceCache {
    /// Shared strings: a session hands the same name to every event of that interface.
    names: HashMap<(u64, u32), Arc<str>>,
    /// Pairs a dump did not find, with the time of that dump.
    unknown: HashMap<(u64, u32), Instant>,
    /// Last dump of each namespace.
    dumped: HashMap<u64, Instant>,
    /// A file for each namespace inode, from the last scan.
    paths: HashMap<u64, PathBuf>,
    /// Token bucket of lookups (`lookup_burst`, refilled at `lookups_per_second`).
    tokens: f64,
    refilled: Option<Instant>,
    limits: CacheLimits,
    stats: CacheStats,
    lister: Lister,
    scanner: Scanner,
}

impl Default for InterfaceCache {
    fn default() -> Self {
        Self::with_limits(CacheLimits::DEFAULT)
    }
}

/// Inserts into a capped map, evicting an arbitrary other entry when full.
fn insert_capped<K, V>(map: &mut HashMap<K, V>, cap: usize, key: K, value: V, evictions: &mut u64)
where
    K: std::hash::Hash + Eq + Clone,
{
    if !map.contains_key(&key) && map.len() >= cap.max(1) {
        if let Some(victim) = map.keys().next().cloned() {
            map.remove(&victim);
            *evictions += 1;
        }
    }
    map.insert(key, value);
}

impl InterfaceCache {
    /// An empty cache with the default [`CacheLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache with these limits.
    pub fn with_limits(limits: CacheLimits) -> Self {
        InterfaceCache {
            names: HashMap::new(),
            unknown: HashMap::new(),
            dumped: HashMap::new(),
            paths: HashMap::new(),
            tokens: f64::from(limits.lookup_burst),
            refilled: None,
            limits,
            stats: CacheStats::default(),
            lister: list_in,
            scanner: all_namespaces,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// Lookups made and skipped, evictions.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Reads the interfaces of every visible namespace. Namespaces that cannot be entered are
    /// skipped; their count is returned.
    pub fn refresh(&mut self) -> usize {
        let mut failed = 0;
        let now = Instant::now();
        self.scan_paths();
        let namespaces: Vec<(u64, PathBuf)> =
            self.paths.iter().map(|(i, p)| (*i, p.clone())).collect();
        for (ino, path) in namespaces {
            match (self.lister)(&path) {
                Some(list) => {
                    self.note_dump(ino, now);
                    self.insert_all(ino, list);
                }
                None => failed += 1,
            }
        }
        failed
    }

    fn scan_paths(&mut self) {
        self.stats.path_scans += 1;
        self.paths.clear();
        for (ino, path) in (self.scanner)() {
            insert_capped(
                &mut self.paths,
                self.limits.max_namespaces,
                ino,
                path,
                &mut self.stats.evictions,
            );
        }
    }

    fn note_dump(&mut self, ino: u64, now: Instant) {
        insert_capped(
            &mut self.dumped,
            self.limits.max_namespaces,
            ino,
            now,
            &mut self.stats.evictions,
        );
    }

    fn insert_all(&mut self, ino: u64, list: Vec<(u32, String)>) {
        for (idx, name) in list {
            self.unknown.remove(&(ino, idx));
            self.insert(ino, idx, name);
        }
    }

    /// Records a name (e.g. from a test or another source).
    pub fn insert(&mut self, netns: u64, ifindex: u32, name: impl Into<String>) {
        insert_capped(
            &mut self.names,
            self.limits.max_names,
            (netns, ifindex),
            Arc::from(name.into()),
            &mut self.stats.evictions,
        );
    }

    /// The cached name, without any lookup.
    pub fn get(&self, netns: u64, ifindex: u32) -> Option<&str> {
        self.names.get(&(netns, ifindex)).map(|n| &**n)
    }

    /// The name, reading namespace `netns` on a miss within the [`CacheLimits`].
    pub fn resolve(&mut self, netns: u64, ifindex: u32) -> Option<&str> {
        self.resolve_shared(netns, ifindex);
        self.get(netns, ifindex)
    }

    /// [`Self::resolve`] as a shared string. A hit reads neither the clock nor allocates:
    /// it runs once per event of an interface named after the session started.
    pub(crate) fn resolve_shared(&mut self, netns: u64, ifindex: u32) -> Option<Arc<str>> {
        if let Some(name) = self.names.get(&(netns, ifindex)) {
            return Some(Arc::clone(name));
        }
        self.resolve_at(netns, ifindex, Instant::now());
        self.names.get(&(netns, ifindex)).cloned()
    }

    /// `resolve` at time `now` (tests drive the clock).
    fn resolve_at(&mut self, netns: u64, ifindex: u32, now: Instant) {
        let key = (netns, ifindex);
        if self.names.contains_key(&key) {
            return;
        }
        let since =
            |t: Option<&Instant>, d: Duration| t.is_none_or(|t| now.duration_since(*t) >= d);
        let due = since(self.unknown.get(&key), self.limits.negative_ttl)
            && since(self.dumped.get(&netns), self.limits.netns_interval)
            && self.take_token(now);
        if !due {
            self.stats.skipped += 1;
            return;
        }
        // A namespace made after the last scan of /proc has no file yet: scan again (no
        // netlink, so nothing traced). The token taken above bounds the scans too, and a
        // namespace no scan finds is not looked for again for the negative TTL.
        if !self.paths.contains_key(&netns) {
            self.scan_paths();
        }
        let listed = match self.paths.get(&netns).cloned() {
            Some(path) => {
                self.stats.lookups += 1;
                self.note_dump(netns, now);
                (self.lister)(&path)
            }
            None => None,
        };
        if let Some(list) = listed {
            self.insert_all(netns, list);
        }
        if !self.names.contains_key(&key) {
            insert_capped(
                &mut self.unknown,
                self.limits.max_unknown,
                key,
                now,
                &mut self.stats.evictions,
            );
        }
    }

    /// Takes one lookup from the token bucket, if there is one.
    fn take_token(&mut self, now: Instant) -> bool {
        let burst = f64::from(self.limits.lookup_burst);
        if let Some(t) = self.refilled {
            let gained =
                now.duration_since(t).as_secs_f64() * f64::from(self.limits.lookups_per_second);
            self.tokens = (self.tokens + gained).min(burst);
        }
        self.refilled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Iterates over ((netns inode, ifindex), name).
    pub fn iter(&self) -> impl Iterator<Item = ((u64, u32), &str)> + '_ {
        self.names.iter().map(|(k, v)| (*k, &**v))
    }

    /// Number of cached names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Namespace 1 has `lo` and `eth0`; any other path fails to list.
    fn fake_lister(path: &Path) -> Option<Vec<(u32, String)>> {
        if path == Path::new("/fake/3") {
            return Some(vec![(1, "lo".into()), (5, "veth0".into())]);
        }
        (path == Path::new("/fake/1")).then(|| vec![(1, "lo".into()), (2, "eth0".into())])
    }

    thread_local! {
        /// Whether namespace 3 exists yet (it is made after the first scan).
        static NS3_MADE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn fake_scanner() -> Vec<(u64, PathBuf)> {
        let mut v = vec![(1, PathBuf::from("/fake/1")), (2, PathBuf::from("/fake/2"))];
        if NS3_MADE.with(|m| m.get()) {
            v.push((3, PathBuf::from("/fake/3")));
        }
        v
    }

    fn fake_cache(limits: CacheLimits) -> InterfaceCache {
        let mut c = InterfaceCache::with_limits(limits);
        c.lister = fake_lister;
        c.scanner = fake_scanner;
        c.paths.insert(1, PathBuf::from("/fake/1"));
        c.paths.insert(2, PathBuf::from("/fake/2"));
        c
    }

    #[test]
    fn a_miss_reads_the_namespace_once_and_learns_every_name() {
        let mut c = fake_cache(CacheLimits::DEFAULT);
        let t0 = Instant::now();
        c.resolve_at(1, 2, t0);
        assert_eq!(c.get(1, 2), Some("eth0"));
        assert_eq!(
            c.get(1, 1),
            Some("lo"),
            "one dump gives the whole namespace"
        );
        c.resolve_at(1, 1, t0);
        c.resolve_at(1, 2, t0 + Duration::from_secs(60));
        assert_eq!(c.stats().lookups, 1, "hits never look up");
    }

    #[test]
    fn a_namespace_newer_than_the_last_scan_is_found_on_its_first_event() {
        NS3_MADE.with(|m| m.set(false));
        let mut c = fake_cache(CacheLimits::DEFAULT);
        let t0 = Instant::now();
        c.refresh();
        // Namespace 3 appears 100 ms after the refresh (a scan that did not see it).
        NS3_MADE.with(|m| m.set(true));
        c.resolve_at(3, 5, t0 + Duration::from_millis(100));
        assert_eq!(c.get(3, 5), Some("veth0"));
        let s = c.stats();
        assert_eq!((s.lookups, s.skipped, s.path_scans), (1, 0, 2));
    }

    #[test]
    fn a_namespace_no_scan_finds_is_scanned_for_once_per_negative_ttl() {
        let limits = CacheLimits::DEFAULT;
        let mut c = fake_cache(limits);
        let t0 = Instant::now();
        // 10,000 events over 60 s from namespace 4, which has no file anywhere.
        for i in 0..10_000u32 {
            c.resolve_at(4, 1, t0 + Duration::from_millis(u64::from(i) * 6));
        }
        let s = c.stats();
        let ttl = limits.negative_ttl.as_secs();
        assert_eq!(s.path_scans, 60 / ttl, "one scan per {ttl} s: {s:?}");
        assert_eq!(s.lookups, 0);
        assert_eq!(s.path_scans + s.skipped, 10_000);
    }

    #[test]
    fn an_unknown_interface_is_looked_up_once_per_negative_ttl_not_per_event() {
        let limits = CacheLimits::DEFAULT;
        let mut c = fake_cache(limits);
        let t0 = Instant::now();
        // 10,000 events over 60 s (one every 6 ms) from an ifindex namespace 1 does not have.
        for i in 0..10_000u32 {
            c.resolve_at(1, 99, t0 + Duration::from_millis(u64::from(i) * 6));
        }
        let s = c.stats();
        let ttl = limits.negative_ttl.as_secs();
        assert_eq!(s.lookups, 60 / ttl, "one lookup per {ttl} s: {s:?}");
        assert_eq!(s.lookups + s.skipped, 10_000);
        assert_eq!(c.get(1, 99), None);
    }

    #[test]
    fn a_namespace_is_read_at_most_once_per_interval_and_lookups_are_rate_limited() {
        let limits = CacheLimits {
            negative_ttl: Duration::ZERO,
            ..CacheLimits::DEFAULT
        };
        let mut c = fake_cache(limits);
        let t0 = Instant::now();
        // Distinct unknown interfaces of namespace 1 at the same moment: one dump.
        for idx in 100..200 {
            c.resolve_at(1, idx, t0);
        }
        assert_eq!(c.stats().lookups, 1);
        // Many namespaces at once: the burst is spent, then nothing until tokens come back.
        let mut c = fake_cache(limits);
        for ns in 0..1_000u64 {
            c.paths.insert(1_000 + ns, PathBuf::from("/fake/none"));
            c.resolve_at(1_000 + ns, 1, t0);
        }
        assert_eq!(c.stats().lookups, u64::from(limits.lookup_burst));
        for ns in 0..1_000u64 {
            c.resolve_at(1_000 + ns, 1, t0 + Duration::from_secs(1));
        }
        assert_eq!(
            c.stats().lookups,
            u64::from(limits.lookup_burst + limits.lookups_per_second),
            "one second refills {} lookups",
            limits.lookups_per_second
        );
    }

    #[test]
    fn every_map_is_capped_and_evictions_are_counted() {
        let limits = CacheLimits {
            max_names: 100,
            max_unknown: 50,
            max_namespaces: 20,
            negative_ttl: Duration::from_secs(10),
            netns_interval: Duration::ZERO,
            lookup_burst: u32::MAX,
            lookups_per_second: 0,
        };
        let mut c = fake_cache(limits);
        for i in 0..10_000u32 {
            c.insert(u64::from(i % 7), i, format!("if{i}"));
        }
        assert_eq!(c.len(), 100);
        let after_names = c.stats().evictions;
        assert_eq!(after_names, 10_000 - 100);
        let t0 = Instant::now();
        for ns in 0..1_000u64 {
            c.paths.insert(1_000 + ns, PathBuf::from("/fake/none"));
            c.resolve_at(1_000 + ns, 7, t0);
        }
        assert!(c.unknown.len() <= 50, "{}", c.unknown.len());
        assert!(c.dumped.len() <= 20, "{}", c.dumped.len());
        assert!(c.stats().evictions >= after_names + (1_000 - 50) + (1_000 - 20));
    }
}
