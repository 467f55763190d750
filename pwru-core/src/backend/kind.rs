//! [`Backend`]: the ways of attaching to the kernel, as users name and choose them.

use std::fmt;

/// How probes are attached to the kernel.
///
/// ```
/// use pwru_core::Backend;
/// assert_eq!("kprobe-multi".parse::<Backend>().unwrap(), Backend::KprobeMulti);
/// assert_eq!(Backend::Tracepoint.to_string(), "tracepoint");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Backend {
    /// Try kprobe-multi, kprobe, fentry, tracepoint in that order; use the first the kernel accepts.
    #[default]
    Auto,
    /// One `BPF_TRACE_KPROBE_MULTI` link per skb argument position (needs CONFIG_FPROBE, 5.18+).
    KprobeMulti,
    /// One kprobe link per function (needs CONFIG_KPROBES).
    Kprobe,
    /// One fentry program per function (needs BPF trampolines, 5.5+, and fentry not blocked).
    Fentry,
    /// The kernel's skb tracepoints through tp_btf or raw tracepoints: works without kprobes.
    Tracepoint,
}

impl Backend {
    /// The concrete backends in the order [`Backend::Auto`] tries them.
    pub const AUTO_ORDER: [Backend; 4] = [
        Backend::KprobeMulti,
        Backend::Kprobe,
        Backend::Fentry,
        Backend::Tracepoint,
    ];

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::KprobeMulti => "kprobe-multi",
            Backend::Kprobe => "kprobe",
            Backend::Fentry => "fentry",
            Backend::Tracepoint => "tracepoint",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is not one of `auto`, `kprobe-multi`, `kprobe`, `fentry`, `tracepoint`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {0:?}: use one of auto, kprobe-multi, kprobe, fentry, tracepoint")]
pub struct UnknownBackend(pub String);

impl std::str::FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Backend::Auto,
            "kprobe-multi" | "kprobe.multi" | "kprobe_multi" => Backend::KprobeMulti,
            "kprobe" => Backend::Kprobe,
            "fentry" => Backend::Fentry,
            "tracepoint" | "tp" => Backend::Tracepoint,
            other => return Err(UnknownBackend(other.to_string())),
        })
    }
}
