//! The tracer backends the matrix covers, and the program kinds each one uses.

use crate::probes::Kind;

/// A way of attaching to kernel functions (mirrors the tracer's backends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `BPF_TRACE_KPROBE_MULTI` links (CONFIG_FPROBE, 5.18+).
    KprobeMulti,
    /// One perf kprobe per function.
    Kprobe,
    /// BPF trampolines: fentry and fexit.
    Fentry,
    /// BTF tracepoints (tp_btf).
    Tracepoint,
}

impl Backend {
    /// Every backend, in the order `Auto` would try them.
    pub const ALL: [Backend; 4] = [
        Backend::KprobeMulti,
        Backend::Kprobe,
        Backend::Fentry,
        Backend::Tracepoint,
    ];

    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::KprobeMulti => "kprobe-multi",
            Backend::Kprobe => "kprobe",
            Backend::Fentry => "fentry",
            Backend::Tracepoint => "tracepoint",
        }
    }

    /// Parses a name given by [`Backend::name`].
    pub fn parse(s: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == s)
    }

    /// The program kinds the backend attaches.
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Backend::KprobeMulti => &[Kind::KprobeMulti],
            Backend::Kprobe => &[Kind::Kprobe, Kind::Kretprobe],
            Backend::Fentry => &[Kind::Fentry, Kind::Fexit],
            Backend::Tracepoint => &[Kind::TpBtf],
        }
    }

    /// The attach target used by the trivial programs: a function every received IPv4
    /// packet passes, or for tracepoints one every received packet hits.
    pub fn trivial_target(self) -> &'static str {
        match self {
            Backend::Tracepoint => "netif_receive_skb",
            _ => "ip_rcv",
        }
    }
}
