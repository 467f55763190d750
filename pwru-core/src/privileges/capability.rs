//! [`Capability`] and [`MissingPrivileges`]: what this process holds and lacks.

/// A Linux capability the tracer may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// CAP_NET_ADMIN (12): tc/XDP programs, network namespaces.
    NetAdmin,
    /// CAP_SYS_ADMIN (21): creating and entering network namespaces; implies BPF and PERFMON.
    SysAdmin,
    /// CAP_SYSLOG (34): kernel addresses in `/proc/kallsyms` (see [`MissingPrivileges`]).
    Syslog,
    /// CAP_PERFMON (38): tracing programs, kprobes, reading kernel memory.
    Perfmon,
    /// CAP_BPF (39): loading programs and creating maps.
    Bpf,
}

impl Capability {
    fn bit(self) -> u32 {
        match self {
            Capability::NetAdmin => 12,
            Capability::SysAdmin => 21,
            Capability::Syslog => 34,
            Capability::Perfmon => 38,
            Capability::Bpf => 39,
        }
    }

    /// The kernel's name, e.g. `CAP_BPF`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::SysAdmin => "CAP_SYS_ADMIN",
            Capability::Syslog => "CAP_SYSLOG",
            Capability::Perfmon => "CAP_PERFMON",
            Capability::Bpf => "CAP_BPF",
        }
    }
}

impl std::fmt::Display for Capability {
    /// The kernel's name, e.g. `CAP_BPF`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What this process lacks for tracing, carried by [`Error::Privileges`](crate::Error::Privileges): the capabilities,
/// and whether kernel addresses are hidden from every process. Its `Display` lists them, e.g.
/// `CAP_BPF, CAP_PERFMON`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MissingPrivileges {
    /// The capabilities this process lacks, in the order they were asked for.
    pub capabilities: Vec<Capability>,
    /// `/proc/kallsyms` hides kernel addresses from every process (`kernel.kptr_restrict=2`):
    /// no capability helps, the setting must change. (When CAP_SYSLOG would show them, it is
    /// in [`capabilities`](MissingPrivileges::capabilities) instead.)
    pub kernel_addresses: bool,
}

impl MissingPrivileges {
    /// Missing `capabilities`, and hidden kernel addresses if `kernel_addresses`.
    pub fn new(capabilities: Vec<Capability>, kernel_addresses: bool) -> MissingPrivileges {
        MissingPrivileges {
            capabilities,
            kernel_addresses,
        }
    }

    /// Everything missing from `self` or `other`, each capability once.
    pub(super) fn merge(mut self, other: MissingPrivileges) -> MissingPrivileges {
        for c in other.capabilities {
            if !self.capabilities.contains(&c) {
                self.capabilities.push(c);
            }
        }
        self.kernel_addresses |= other.kernel_addresses;
        self
    }
}

impl std::fmt::Display for MissingPrivileges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<&str> = self.capabilities.iter().map(|c| c.name()).collect();
        if self.kernel_addresses {
            parts.push("kernel addresses (kernel.kptr_restrict)");
        }
        f.write_str(&parts.join(", "))
    }
}

/// What creating and entering network namespaces needs (e.g. a lab of veth pairs, as
/// the test kit's `netlab` builds): pass it to [`require`](super::require), with whatever else the program needs.
pub const NETWORK_NAMESPACES: &[Capability] = &[Capability::NetAdmin, Capability::SysAdmin];

/// The effective capability set of this process, from /proc/self/status.
pub(super) fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

pub(super) fn has(eff: Option<u64>, c: Capability) -> bool {
    eff.is_some_and(|e| e & (1u64 << c.bit()) != 0)
}

/// Which of `needed` this process lacks (CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON,
/// as the kernel allows).
pub fn missing(needed: &[Capability]) -> Vec<Capability> {
    let eff = effective();
    needed
        .iter()
        .copied()
        .filter(|&c| {
            !(has(eff, c)
                || (matches!(c, Capability::Bpf | Capability::Perfmon)
                    && has(eff, Capability::SysAdmin)))
        })
        .collect()
}

pub(super) fn names(caps: &[Capability]) -> String {
    let n: Vec<&str> = caps.iter().map(|c| c.name()).collect();
    match n.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => n.join(""),
    }
}
