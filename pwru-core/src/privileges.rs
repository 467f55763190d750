//! Does this process hold the capabilities tracing needs? Checked before anything is loaded, so
//! a normal user gets one sentence naming what is missing instead of an EPERM from deep inside.
//!
//! Two kinds of need are checked: capabilities (from `/proc/self/status`), and whether
//! `/proc/kallsyms` shows this process real addresses, which the kernel decides from
//! `kernel.kptr_restrict`, `kernel.perf_event_paranoid` and CAP_SYSLOG. The advice names only
//! what would really help here (it never suggests a sysctl value that is already set).

use crate::error::Error;

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

/// What this process lacks for tracing, carried by [`Error::Privileges`]: the capabilities,
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
    fn merge(mut self, other: MissingPrivileges) -> MissingPrivileges {
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
/// the test kit's `netlab` builds): pass it to [`require`], with whatever else the program needs.
pub const NETWORK_NAMESPACES: &[Capability] = &[Capability::NetAdmin, Capability::SysAdmin];

/// The effective capability set of this process, from /proc/self/status.
fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn has(eff: Option<u64>, c: Capability) -> bool {
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

fn names(caps: &[Capability]) -> String {
    let n: Vec<&str> = caps.iter().map(|c| c.name()).collect();
    match n.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => n.join(""),
    }
}

/// Fails with [`Error::Privileges`] naming every missing capability; the advice lists all of
/// `needed`, so that granting what it says is enough.
///
/// ```no_run
/// use pwru_core::privileges::{require, Capability};
/// require(&[Capability::Bpf, Capability::Perfmon]).expect("run as root");
/// ```
pub fn require(needed: &[Capability]) -> Result<(), Error> {
    let m = missing(needed);
    if m.is_empty() {
        return Ok(());
    }
    Err(Error::Privileges {
        missing: MissingPrivileges::new(m, false),
        advice: format!("run as root, or grant {}", names(needed)),
    })
}

fn read_sysctl(name: &str) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The kernel settings that decide whether `/proc/kallsyms` shows addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// `kernel.kptr_restrict`: 0 (shown per perf_event_paranoid or CAP_SYSLOG), 1 (CAP_SYSLOG
    /// only), 2 (never).
    pub kptr_restrict: i64,
    /// `kernel.perf_event_paranoid`: with kptr_restrict 0, a value of 1 or less shows
    /// addresses to every process.
    pub perf_event_paranoid: i64,
    /// Whether this process has CAP_SYSLOG.
    pub cap_syslog: bool,
}

impl AddressPolicy {
    /// Reads the sysctls and this process's capabilities. A sysctl that cannot be read counts
    /// as its most restrictive value.
    pub fn current() -> AddressPolicy {
        AddressPolicy {
            kptr_restrict: read_sysctl("kptr_restrict").unwrap_or(2),
            perf_event_paranoid: read_sysctl("perf_event_paranoid").unwrap_or(2),
            cap_syslog: has(effective(), Capability::Syslog),
        }
    }

    /// `None` when kallsyms shows this process addresses; otherwise what to do about it, as
    /// the kernel's rule goes (kptr_restrict 0: perf_event_paranoid <= 1 or CAP_SYSLOG;
    /// 1: CAP_SYSLOG; 2: nobody).
    ///
    /// ```
    /// use pwru_core::privileges::AddressPolicy;
    /// let p = AddressPolicy { kptr_restrict: 0, perf_event_paranoid: 2, cap_syslog: false };
    /// let advice = p.advice().unwrap();
    /// assert!(advice.contains("CAP_SYSLOG") && !advice.contains("kptr_restrict=0"));
    /// assert_eq!(AddressPolicy { cap_syslog: true, ..p }.advice(), None);
    /// ```
    pub fn advice(&self) -> Option<String> {
        let AddressPolicy {
            kptr_restrict: k,
            perf_event_paranoid: p,
            cap_syslog,
        } = *self;
        match k {
            0 if p <= 1 || cap_syslog => None,
            0 => Some(format!(
                "with kernel.perf_event_paranoid={p} only CAP_SYSLOG sees kernel addresses in /proc/kallsyms: run as root, grant CAP_SYSLOG, or set `sysctl kernel.perf_event_paranoid=1`"
            )),
            1 if cap_syslog => None,
            1 => Some(
                "with kernel.kptr_restrict=1 only CAP_SYSLOG sees kernel addresses in /proc/kallsyms: run as root, grant CAP_SYSLOG, or set `sysctl kernel.kptr_restrict=0` together with kernel.perf_event_paranoid<=1".into(),
            ),
            _ => Some(format!(
                "kernel.kptr_restrict={k} hides kernel addresses in /proc/kallsyms from every process: set `sysctl kernel.kptr_restrict=1` and run as root (CAP_SYSLOG)"
            )),
        }
    }
}

/// Checks that `/proc/kallsyms` will show this process kernel addresses (needed to name the
/// functions in events and stacks); [`Error::Privileges`] says what is missing otherwise.
pub fn kernel_addresses() -> Result<(), Error> {
    let policy = AddressPolicy::current();
    match policy.advice() {
        None => Ok(()),
        Some(advice) => Err(Error::Privileges {
            missing: if policy.kptr_restrict >= 2 {
                MissingPrivileges::new(Vec::new(), true)
            } else {
                MissingPrivileges::new(vec![Capability::Syslog], false)
            },
            advice,
        }),
    }
}

/// [`require`] and [`kernel_addresses`] in one error, so that a user learns everything that is
/// missing at once.
pub(crate) fn require_for_tracing(needed: &[Capability]) -> Result<(), Error> {
    let caps = require(needed).err();
    let addrs = kernel_addresses().err();
    match (caps, addrs) {
        (None, None) => Ok(()),
        (Some(e), None) | (None, Some(e)) => Err(e),
        (
            Some(Error::Privileges {
                missing: m1,
                advice: a1,
            }),
            Some(Error::Privileges {
                missing: m2,
                advice: a2,
            }),
        ) => Err(Error::Privileges {
            missing: m1.merge(m2),
            advice: format!("{a1}; {a2}"),
        }),
        (Some(e), Some(_)) => Err(e),
    }
}
