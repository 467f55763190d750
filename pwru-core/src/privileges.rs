//! Does this process hold the capabilities tracing needs? Checked before anything is loaded, so
//! a normal user gets one sentence naming what is missing instead of an EPERM from deep inside.

use crate::error::Error;

/// A Linux capability the tracer may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// CAP_NET_ADMIN (12): tc/XDP programs, network namespaces.
    NetAdmin,
    /// CAP_SYS_ADMIN (21): implies BPF and PERFMON on kernels before 5.8.
    SysAdmin,
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
            Capability::Perfmon => 38,
            Capability::Bpf => 39,
        }
    }

    /// The kernel's name, e.g. `CAP_BPF`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::SysAdmin => "CAP_SYS_ADMIN",
            Capability::Perfmon => "CAP_PERFMON",
            Capability::Bpf => "CAP_BPF",
        }
    }
}

/// The effective capability set of this process, from /proc/self/status.
fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Which of `needed` this process lacks (CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON,
/// as the kernel allows).
pub fn missing(needed: &[Capability]) -> Vec<Capability> {
    let Some(eff) = effective() else {
        return needed.to_vec();
    };
    let has = |c: Capability| eff & (1u64 << c.bit()) != 0;
    needed
        .iter()
        .copied()
        .filter(|&c| {
            !(has(c)
                || (matches!(c, Capability::Bpf | Capability::Perfmon)
                    && has(Capability::SysAdmin)))
        })
        .collect()
}

/// Fails with [`Error::Privileges`] naming every missing capability.
///
/// ```no_run
/// use pwru_core::privileges::{require, Capability};
/// require(&[Capability::Bpf, Capability::Perfmon]).expect("run as root");
/// ```
pub fn require(needed: &[Capability]) -> Result<(), Error> {
    let m = missing(needed);
    if m.is_empty() {
        Ok(())
    } else {
        Err(Error::Privileges {
            missing: m.iter().map(|c| c.name()).collect::<Vec<_>>().join(", "),
        })
    }
}
