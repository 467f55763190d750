//! Does this process hold the capabilities tracing needs? Checked before anything is loaded, so
//! a normal user gets one sentence naming what is missing instead of an EPERM from deep inside.
//!
//! Two kinds of need are checked: capabilities (from `/proc/self/status`), and whether
//! `/proc/kallsyms` shows this process real addresses, which the kernel decides from
//! `kernel.kptr_restrict`, `kernel.perf_event_paranoid` and CAP_SYSLOG. The advice names only
//! what would really help here (it never suggests a sysctl value that is already set).

pub(crate) mod address_policy;
pub(crate) mod capability;

pub use address_policy::AddressPolicy;
use capability::names;
pub use capability::{missing, Capability, MissingPrivileges, NETWORK_NAMESPACES};

use crate::error::Error;

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
