//! Whether the test runs as root, and the one SKIP line a test prints when it does not.

use crate::capabilities::skip;
use crate::sys;

/// True when this process runs as root.
pub fn is_root() -> bool {
    sys::is_root()
}

/// Prints `SKIP <test>: needs root <why>` and returns true when not root; `why` says what the
/// test needs root for ("to mount ...", "(CAP_SYS_ADMIN for ...)").
pub fn skip_unless_root_for(test: &str, why: &str) -> bool {
    if is_root() {
        return false;
    }
    skip(test, format!("needs root {why}"));
    true
}

/// Prints the SKIP line and returns true when not root (for loading BPF programs and making
/// network namespaces).
pub fn skip_unless_root(test: &str) -> bool {
    skip_unless_root_for(test, "(CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
}
