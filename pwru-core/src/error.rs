//! The one error type of the library: every failure a user can hit, each saying what to do.

use std::io;

use crate::options::Backend;

/// Everything that can go wrong while building a tracer, attaching it, or reading its events.
///
/// Messages say what happened and what to do about it; match on the variant to handle a case.
///
/// `Debug` shows the variant's name and the same message as `Display`, so that
/// `fn main() -> Result<(), pwru_core::Error>` prints the advice, not a bare struct:
///
/// ```
/// let e = pwru_core::Error::InvalidOption("ring buffer too large".into());
/// assert_eq!(format!("{e:?}"), "InvalidOption: invalid option: ring buffer too large");
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process lacks a capability (or kernel setting) that tracing needs.
    #[error("missing privileges: {missing}; {advice}")]
    Privileges {
        /// What is missing: the capabilities, and whether kernel addresses are hidden; its
        /// `Display` reads e.g. "CAP_BPF, CAP_PERFMON" or "CAP_SYSLOG".
        missing: crate::privileges::MissingPrivileges,
        /// What to do: the capabilities to grant (all that are needed, not only the missing
        /// ones), or the setting to change.
        advice: String,
    },
    /// A pcap-filter expression libpcap (or the eBPF translation) refused.
    #[error("invalid {which} filter {expr:?}: {message}")]
    Filter {
        /// Which filter: "pcap", "tunnel L2", "tunnel L3".
        which: &'static str,
        /// The expression as given.
        expr: String,
        /// libpcap's (or the translator's) message.
        message: String,
    },
    /// The requested backend does not work on this kernel.
    #[error("backend {backend} is not supported by this kernel: {reason}")]
    BackendUnsupported {
        /// The backend that was asked for.
        backend: Backend,
        /// The kernel's refusal, as the probe saw it.
        reason: String,
    },
    /// No backend works on this kernel (Auto tried each).
    #[error("no tracing backend works on this kernel: {}", format_refusals(.refusals))]
    NoBackend {
        /// Each backend tried, with the reason it was refused.
        refusals: Vec<(Backend, String)>,
    },
    /// The kernel's verifier rejected a program.
    #[error(
        "the kernel verifier rejected program {program}: {message}\n--- verifier log ---\n{log}"
    )]
    Verifier {
        /// The program's name.
        program: String,
        /// The error the load returned.
        message: String,
        /// The verifier's log.
        log: String,
    },
    /// Function or tracepoint discovery failed: BTF unreadable, bad regex, nothing matched.
    #[error(transparent)]
    Discovery(#[from] crate::discovery::DiscoveryError),
    /// A network namespace or interface could not be resolved.
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    /// Loading or attaching failed for a reason other than the verifier.
    #[error(transparent)]
    Loader(Box<crate::loader::LoaderError>),
    /// Kernel symbols could not be read.
    #[error(transparent)]
    Symbols(#[from] crate::symbols::SymbolsError),
    /// Nothing could be attached: every target was refused.
    #[error(
        "no function or tracepoint could be attached ({refused} refused); first refusal: {first}"
    )]
    NothingAttached {
        /// How many targets were refused.
        refused: usize,
        /// The first refusal's reason.
        first: String,
    },
    /// An option is invalid on its own or in combination.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Records were lost because the ring buffer was full. Not fatal: the stream continues.
    #[error("{count} events lost (ring buffer full; {total} in all): enlarge the ring buffer or narrow the filter")]
    EventsLost {
        /// Lost since the previous report.
        count: u64,
        /// Lost since the session started.
        total: u64,
    },
    /// A ring buffer record could not be decoded. Not fatal: the stream continues.
    #[error("corrupt event record: {0}")]
    Decode(String),
    /// Waiting on the ring buffer failed.
    #[error("ring buffer: {0}")]
    RingBuffer(#[source] io::Error),
}

impl std::fmt::Debug for Error {
    /// The variant's name and the `Display` message: what `main` returning this error prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {self}", self.variant_name())
    }
}

fn format_refusals(r: &[(Backend, String)]) -> String {
    r.iter()
        .map(|(b, why)| format!("{b}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<crate::loader::LoaderError> for Error {
    fn from(e: crate::loader::LoaderError) -> Self {
        match e {
            crate::loader::LoaderError::Verifier {
                program,
                error,
                log,
            } => Error::Verifier {
                program,
                message: error.to_string(),
                log,
            },
            // aya's loads carry the verifier log inside its own error type.
            crate::loader::LoaderError::Program {
                program,
                target,
                source,
            } => match *source {
                aya::programs::ProgramError::LoadError {
                    io_error,
                    verifier_log,
                } => Error::Verifier {
                    program,
                    message: io_error.to_string(),
                    log: verifier_log.to_string(),
                },
                other => Error::Loader(Box::new(crate::loader::LoaderError::Program {
                    program,
                    target,
                    source: Box::new(other),
                })),
            },
            other => Error::Loader(Box::new(other)),
        }
    }
}

impl Error {
    /// The variant's name, e.g. `"Privileges"`.
    fn variant_name(&self) -> &'static str {
        match self {
            Error::Privileges { .. } => "Privileges",
            Error::Filter { .. } => "Filter",
            Error::BackendUnsupported { .. } => "BackendUnsupported",
            Error::NoBackend { .. } => "NoBackend",
            Error::Verifier { .. } => "Verifier",
            Error::Discovery(_) => "Discovery",
            Error::Netns(_) => "Netns",
            Error::Loader(_) => "Loader",
            Error::Symbols(_) => "Symbols",
            Error::NothingAttached { .. } => "NothingAttached",
            Error::InvalidOption(_) => "InvalidOption",
            Error::EventsLost { .. } => "EventsLost",
            Error::Decode(_) => "Decode",
            Error::RingBuffer(_) => "RingBuffer",
        }
    }

    /// Whether the event stream ends after this error. Lost-event reports and single corrupt
    /// records are not fatal: the stream goes on after them.
    ///
    /// ```
    /// let e = pwru_core::Error::EventsLost { count: 3, total: 3 };
    /// assert!(!e.is_fatal());
    /// ```
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Error::EventsLost { .. } | Error::Decode(_))
    }
}
