//! What the backends attach to ([`Target`]) and what they could not attach ([`Refusal`]).

/// One place the tracer attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// Function or tracepoint name.
    pub name: String,
    /// Kernel module, if not in vmlinux.
    pub module: Option<String>,
    /// 1-based position of the `struct sk_buff *` argument.
    pub position: u8,
    /// The function's address, once known from /proc/kallsyms (filled at attach for
    /// kprobe.multi, which then links by address and spares the kernel its own walk of every
    /// symbol).
    pub address: Option<u64>,
}

/// A [`Backend`](crate::Backend), function, tracepoint or BPF program the tracer did not
/// use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// What was refused: a backend, a function, a tracepoint or a BPF program.
    pub target: String,
    /// The kernel's (or the loader's) reason.
    pub reason: String,
}
