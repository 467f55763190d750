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

    /// Reads the functions kprobes/fentry can attach to: `available_filter_functions_addrs`
    /// (Linux 6.5+, the same list with each function's ftrace address, which lets a
    /// kprobe.multi link skip the kernel's walk of every symbol), else
    /// `available_filter_functions`.
    pub fn available_functions(&self) -> Result<AvailableFunctions, DiscoveryError> {
        let with_addrs = self.root.join("available_filter_functions_addrs");
        match std::fs::read_to_string(&with_addrs) {
            Ok(text) => return Ok(AvailableFunctions::parse_with_addresses(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::debug!("{}: {e}; reading the list without addresses", with_addrs.display()),
        }
        let path = self.root.join("available_filter_functions");
        let text = std::fs::read_to_string(&path).map_err(|e| DiscoveryError::FilterFunctions {
            path: path.clone(),
            source: e,
        })?;
        Ok(AvailableFunctions::parse(&text))
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

/// The contents of `available_filter_functions`: traceable function names, with the module of
/// module functions (and, from `available_filter_functions_addrs`, their addresses).
#[derive(Debug, Clone, Default)]
pub struct AvailableFunctions {
    names: HashSet<String>,
    modules: HashMap<String, Vec<String>>,
    /// The first ftrace address of each (name, module): the one the kernel itself would pick
    /// for the name, as both lists are in address order.
    addresses: HashMap<(String, Option<String>), u64>,
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
            out.add(name, parts.next(), None);
        }
        out
    }

    /// Parses lines of the form `address name` or `address name [module]`
    /// (`available_filter_functions_addrs`); a line whose address is not hexadecimal is
    /// skipped, and an address of 0 (hidden) is not kept.
    ///
    /// ```
    /// use pwru_core::discovery::AvailableFunctions;
    /// let f = AvailableFunctions::parse_with_addresses(
    ///     "ffffffff81a3c2e4 ip_rcv\nffffffffc0a01004 vxlan_rcv [vxlan]\n",
    /// );
    /// assert_eq!(f.address("ip_rcv", None), Some(0xffffffff81a3c2e4));
    /// assert_eq!(f.address("vxlan_rcv", Some("vxlan")), Some(0xffffffffc0a01004));
    /// assert_eq!(f.address("vxlan_rcv", None), None);
    /// ```
    pub fn parse_with_addresses(text: &str) -> AvailableFunctions {
        let mut out = AvailableFunctions::default();
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (Some(addr), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            out.add(name, parts.next(), (addr != 0).then_some(addr));
        }
        out
    }

    /// Records `name`, its `[module]` column if any, and its address if known.
    fn add(&mut self, name: &str, module_column: Option<&str>, address: Option<u64>) {
        let module = module_column
            .and_then(|m| m.strip_prefix('['))
            .and_then(|m| m.strip_suffix(']'));
        if let Some(m) = module {
            self.modules
                .entry(name.to_string())
                .or_default()
                .push(m.to_string());
        }
        if let Some(a) = address {
            self.addresses
                .entry((name.to_string(), module.map(str::to_string)))
                .or_insert(a);
        }
        self.names.insert(name.to_string());
    }

    /// The ftrace address of `name` in `module` (`None`: vmlinux), when the list had
    /// addresses. A name defined more than once gives its lowest address, as the kernel's own
    /// lookup by name does.
    pub fn address(&self, name: &str, module: Option<&str>) -> Option<u64> {
        self.addresses
            .get(&(name.to_string(), module.map(str::to_string)))
            .copied()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_the_first_of_a_name_per_module_and_skip_bad_lines() {
        let text = "ffffffff81000100 dup_fn\n\
                    ffffffff81000200 dup_fn\n\
                    0000000000000000 hidden_fn\n\
                    not-hex odd_fn\n\
                    ffffffffc0000010 dup_fn [vxlan]\n\
                    \n";
        let f = AvailableFunctions::parse_with_addresses(text);
        assert_eq!(f.address("dup_fn", None), Some(0xffffffff81000100));
        assert_eq!(f.address("dup_fn", Some("vxlan")), Some(0xffffffffc0000010));
        assert_eq!(f.module_of("dup_fn"), Some("vxlan"));
        assert!(f.contains("hidden_fn"));
        assert_eq!(f.address("hidden_fn", None), None);
        assert!(!f.contains("odd_fn"));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn the_running_kernel_lists_addresses_where_tracefs_has_them() {
        let Ok(t) = Tracefs::find() else {
            eprintln!("SKIP the_running_kernel_lists_addresses_where_tracefs_has_them: no tracefs");
            return;
        };
        let Ok(f) = t.available_functions() else {
            eprintln!("SKIP the_running_kernel_lists_addresses_where_tracefs_has_them: tracefs lists unreadable (not root)");
            return;
        };
        if !t.root().join("available_filter_functions_addrs").exists() {
            eprintln!("SKIP the_running_kernel_lists_addresses_where_tracefs_has_them: kernel before 6.5 (no available_filter_functions_addrs)");
            return;
        }
        let addr = f.address("consume_skb", None);
        assert!(
            addr.is_some_and(|a| a >= 0xffff_0000_0000_0000),
            "consume_skb has a kernel address: {addr:?}"
        );
    }
}
