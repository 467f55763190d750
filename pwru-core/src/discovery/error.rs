//! Errors of function and tracepoint discovery.

use std::path::PathBuf;

use crate::btf::BtfError;

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Kernel or module BTF could not be read.
    #[error(transparent)]
    Btf(#[from] BtfError),
    /// A kernel module's BTF could not be read.
    #[error("BTF of kernel module {name}: {source}")]
    Module {
        /// Module name.
        name: String,
        /// The underlying error.
        #[source]
        source: Box<BtfError>,
    },
    /// The BTF has no `struct sk_buff`.
    #[error("the kernel BTF has no struct sk_buff; pass the BTF of a networking-enabled kernel")]
    NoSkBuff,
    /// The function regex does not compile.
    #[error("invalid function regex {expr:?}: {source}; use RE2/Rust regex syntax, matched against the whole name")]
    BadRegex {
        /// The expression given.
        expr: String,
        /// The regex error.
        #[source]
        source: Box<regex::Error>,
    },
    /// No function matched.
    #[error("no kernel function with a struct sk_buff * argument matches {expr:?} (and is traceable); check the regex (it must match the whole name) or also search kernel modules (the kernel_modules option)")]
    NoMatch {
        /// The regex.
        expr: String,
    },
    /// A requested non-skb function does not exist or cannot be traced.
    #[error("kernel function {0:?} is not in BTF or not traceable; check the name in /proc/kallsyms and available_filter_functions")]
    UnknownFunction(String),
    /// The functions called by loaded tc/XDP programs could not be found (`track_bpf_helpers`).
    #[error("finding the BPF helpers to trace: {0}")]
    BpfHelpers(#[from] super::bpf_helpers::HelpersError),
    /// tracefs is not mounted.
    #[error("tracefs is not mounted (looked at /sys/kernel/tracing, /sys/kernel/debug/tracing and /proc/mounts); mount it with `mount -t tracefs nodev /sys/kernel/tracing`")]
    NoTracefs,
    /// available_filter_functions could not be read.
    #[error("cannot read {path}: {source}; run as root, with a kernel built with CONFIG_DYNAMIC_FTRACE (the tracepoint backend does not need this file)")]
    FilterFunctions {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Another tracefs read failed.
    #[error("cannot read {path}: {source}; run as root")]
    TracefsIo {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
