//! [`AddressPolicy`]: the kernel settings that decide whether `/proc/kallsyms` shows this
//! process real addresses.

use super::capability::{effective, has, Capability};

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
