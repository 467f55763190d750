//! Names for network namespaces, by inode, for pwru's NETNS NAME column
//! (`--output-netns-names`).
//!
//! A namespace has no name in the kernel; tools give it one by bind-mounting its file: `ip netns`
//! (and CNI plugins, podman) in `/run/netns`, Docker in `/run/docker/netns`. A namespace held by
//! no such file is named after a process inside it, `comm:pid` (the lowest pid, usually the
//! namespace's first process). Everything is read from the file system in user space; nothing
//! enters a namespace.
//!
//! [`NetnsNames`] scans once when made and again when asked about an unknown namespace (for
//! the same one at most once per [`NetnsNames::RESCAN_INTERVAL`]), so a namespace created while
//! tracing gets its name without a scan per event.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Directories of namespace bind mounts, in order of preference (the first name found for an
/// inode wins): `ip netns` and what follows its convention, then container runtimes'.
/// `/var/run` is usually a link to `/run`; the same inode is then named once.
pub const NAMED_NETNS_DIRS: &[&str] = &[
    "/run/netns",
    "/var/run/netns",
    "/run/docker/netns",
    "/var/run/docker/netns",
];

/// Every namespace name visible now: bind mounts in [`NAMED_NETNS_DIRS`], then `comm:pid` of a
/// process for each namespace without one.
pub fn scan() -> HashMap<u64, String> {
    scan_in(NAMED_NETNS_DIRS.iter().map(Path::new), Path::new("/proc"))
}

/// [`scan`] over given directories and a given `/proc` (so tests can use their own).
pub fn scan_in<'a>(dirs: impl IntoIterator<Item = &'a Path>, proc: &Path) -> HashMap<u64, String> {
    let mut names = HashMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<(String, u64)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                // A bind mount's inode is the namespace's. A stale file (never mounted over,
                // or left by a runtime that died) has an inode no event carries: harmless.
                let ino = std::fs::metadata(e.path()).ok()?.ino();
                Some((name, ino))
            })
            .collect();
        // Directory order is arbitrary: sort so that the same files give the same names.
        found.sort();
        for (name, ino) in found {
            names.entry(ino).or_insert(name);
        }
    }
    let Ok(entries) = std::fs::read_dir(proc) else {
        return names;
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let dir = proc.join(pid.to_string());
        // A process may exit between listing and reading: skip it.
        let Ok(meta) = std::fs::metadata(dir.join("ns/net")) else {
            continue;
        };
        if names.contains_key(&meta.ino()) {
            continue;
        }
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        names.insert(meta.ino(), format!("{}:{pid}", comm.trim_end()));
    }
    names
}

/// Namespace names by inode, rescanned when an unknown namespace shows up.
#[derive(Debug, Clone)]
pub struct NetnsNames {
    names: HashMap<u64, String>,
    /// Unknown namespaces already rescanned for, and when: a namespace that no scan names is
    /// not rescanned for at every event.
    missed: HashMap<u64, Instant>,
}

impl Default for NetnsNames {
    fn default() -> Self {
        Self::new()
    }
}

impl NetnsNames {
    /// Least time between two scans for the same unknown namespace (each scan lists /proc).
    pub const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

    /// Most unknown namespaces remembered; past it they are forgotten (and may cost a scan
    /// each again).
    pub const MISSED_MAX: usize = 4096;

    /// Scans now.
    pub fn new() -> NetnsNames {
        NetnsNames {
            names: scan(),
            missed: HashMap::new(),
        }
    }

    /// The name known for namespace `inode`, without scanning.
    pub fn get(&self, inode: u64) -> Option<&str> {
        self.names.get(&inode).map(String::as_str)
    }

    /// Every name known, by inode.
    pub fn names(&self) -> &HashMap<u64, String> {
        &self.names
    }

    /// Makes sure `inode` has a name if it can: scans again when it is unknown, at once the
    /// first time it is asked about (a namespace made after the last scan is named from its
    /// first event), then at most once per [`Self::RESCAN_INTERVAL`]. True when the names
    /// changed.
    pub fn learn(&mut self, inode: u64) -> bool {
        if inode == 0 || self.names.contains_key(&inode) {
            return false;
        }
        let now = Instant::now();
        if let Some(last) = self.missed.get(&inode) {
            if now.duration_since(*last) < Self::RESCAN_INTERVAL {
                return false;
            }
        }
        if self.missed.len() >= Self::MISSED_MAX {
            self.missed.clear();
        }
        self.missed.insert(inode, now);
        let names = scan();
        let changed = names != self.names;
        self.names = names;
        self.missed.retain(|ino, _| !self.names.contains_key(ino));
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_mount_names_come_first_then_a_process_names_the_rest() {
        let dir = std::env::temp_dir().join(format!("pwru-netns-names-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let named = dir.join("netns");
        std::fs::create_dir_all(&named).expect("dir");
        // Stand-ins for bind mounts: a file's inode is what a scan keys on.
        std::fs::write(named.join("blue"), b"").expect("file");
        let blue = std::fs::metadata(named.join("blue")).expect("stat").ino();
        let names = scan_in([named.as_path()], Path::new("/proc"));
        assert_eq!(names.get(&blue).map(String::as_str), Some("blue"));
        // This process's namespace, unnamed here unless it has a bind mount, is named after
        // some process in it: `comm:pid`.
        let own = std::fs::metadata("/proc/self/ns/net")
            .expect("own netns")
            .ino();
        let name = names.get(&own).expect("own namespace named");
        let (comm, pid) = name.rsplit_once(':').expect("comm:pid");
        let pid: u32 = pid.parse().expect("pid");
        let comm_file = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert_eq!(comm, comm_file.trim_end());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
