//! Network namespaces: pwru's `--filter-netns` spec, interface names resolved inside a netns,
//! an (netns, ifindex) -> name cache for output, and `ip netns` names.
//!
//! Entering a namespace is done by a short-lived thread that calls `setns(2)` and then dies, so
//! the caller's threads never change namespace.
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
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Where `ip netns` keeps its bind mounts.
pub const IP_NETNS_DIR: &str = "/run/netns";

/// Why a namespace or interface could not be resolved.
#[derive(Debug, thiserror::Error)]
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

/// `ioctl(fd, NS_GET_NSTYPE)` (`_IO(0xb7, 0x3)`, Linux 4.11+): the `CLONE_NEW*` type of a
/// namespace file.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
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
    let fd = file.as_raw_fd();
    // SAFETY: statfs is plain old data, for which all-zero bytes are a valid value.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes into the statfs passed; fd stays open for the call.
    if unsafe { libc::fstatfs(fd, &mut fs) } != 0 {
        return Err(open_err(std::io::Error::last_os_error()));
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures
    if fs.f_type as i64 != NSFS_MAGIC {
        return Err(not("a file, not a namespace".into()));
    }
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the open namespace fd.
    let kind = unsafe { libc::ioctl(fd, NS_GET_NSTYPE as _) };
    if kind < 0 {
        return Err(not(format!(
            "the kernel does not tell its type: {}",
            std::io::Error::last_os_error()
        )));
    }
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
            // SAFETY: setns(2) on a valid open namespace fd; it changes only this thread's
            // network namespace, and this thread exits right after `f`.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(NetnsError::Enter {
                    path: owned_path,
                    source: std::io::Error::last_os_error(),
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
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns a heap array terminated by a {0, NULL} entry, or NULL on
    // error; we read entries until the terminator and free it with if_freenameindex.
    unsafe {
        let head = libc::if_nameindex();
        if head.is_null() {
            return out;
        }
        let mut p = head;
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            let name = std::ffi::CStr::from_ptr((*p).if_name)
                .to_string_lossy()
                .into_owned();
            out.push(((*p).if_index, name));
            p = p.add(1);
        }
        libc::if_freenameindex(head);
    }
    out
}

/// Resolves interface `name` to its ifindex inside the namespace `netns`.
pub fn ifindex_in(netns: &NetnsSpec, name: &str) -> Result<u32, NetnsError> {
    let path = netns.path()?;
    let cname = CString::new(name).map_err(|_| NetnsError::NoInterface {
        name: name.to_string(),
        netns: netns.to_string(),
    })?;
    // SAFETY: if_nametoindex reads a valid NUL-terminated string.
    let idx = in_netns(&path, move || unsafe {
        libc::if_nametoindex(cname.as_ptr())
    })?;
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

/// Interface names by (netns inode, ifindex), for printing events.
///
/// Filled for every namespace by [`InterfaceCache::refresh`]; [`InterfaceCache::resolve`]
/// re-reads one namespace on a miss, at most once per `retry` interval, so a burst of events
/// from an unknown interface costs one lookup.
#[derive(Debug, Clone)]
pub struct InterfaceCache {
    names: HashMap<(u64, u32), String>,
    last_try: HashMap<u64, Instant>,
    retry: Duration,
}

impl Default for InterfaceCache {
    fn default() -> Self {
        InterfaceCache {
            names: HashMap::new(),
            last_try: HashMap::new(),
            retry: Duration::from_secs(1),
        }
    }
}

impl InterfaceCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the interfaces of every visible namespace. Namespaces that cannot be entered are
    /// skipped; their count is returned.
    pub fn refresh(&mut self) -> usize {
        let mut failed = 0;
        for (ino, path) in all_namespaces() {
            match in_netns(&path, list_interfaces_here) {
                Ok(list) => self.insert_all(ino, list),
                Err(_) => failed += 1,
            }
        }
        failed
    }

    fn insert_all(&mut self, ino: u64, list: Vec<(u32, String)>) {
        for (idx, name) in list {
            self.names.insert((ino, idx), name);
        }
    }

    /// Records a name (e.g. from a test or another source).
    pub fn insert(&mut self, netns: u64, ifindex: u32, name: impl Into<String>) {
        self.names.insert((netns, ifindex), name.into());
    }

    /// The cached name, without any lookup.
    pub fn get(&self, netns: u64, ifindex: u32) -> Option<&str> {
        self.names.get(&(netns, ifindex)).map(String::as_str)
    }

    /// The name, re-reading namespace `netns` on a miss (rate limited).
    pub fn resolve(&mut self, netns: u64, ifindex: u32) -> Option<&str> {
        if !self.names.contains_key(&(netns, ifindex)) {
            let now = Instant::now();
            let due = self
                .last_try
                .get(&netns)
                .is_none_or(|t| now.duration_since(*t) >= self.retry);
            if due {
                self.last_try.insert(netns, now);
                if let Ok(path) = path_for_inode(netns) {
                    if let Ok(list) = in_netns(&path, list_interfaces_here) {
                        self.insert_all(netns, list);
                    }
                }
            }
        }
        self.get(netns, ifindex)
    }

    /// Iterates over ((netns inode, ifindex), name).
    pub fn iter(&self) -> impl Iterator<Item = ((u64, u32), &str)> + '_ {
        self.names.iter().map(|(k, v)| (*k, v.as_str()))
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
