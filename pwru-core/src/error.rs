//! The one error type of the library: every failure a user can hit, each saying what to do.

use std::io;

use crate::options::Backend;

// The causes carried by [`Error`]'s variants, nameable here whatever module they live in.
pub use crate::btf::BtfError;
pub use crate::discovery::bpf_helpers::HelpersError;
pub use crate::discovery::DiscoveryError;
pub use crate::event::DecodeError;
pub use crate::netns::NetnsError;
pub use crate::symbols::SymbolsError;

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
        missing: crate::privileges::capability::MissingPrivileges,
        /// What to do: the capabilities to grant (all that are needed, not only the missing
        /// ones), or the setting to change.
        advice: String,
    },
    /// A pcap-filter expression libpcap (or the eBPF translation) refused.
    #[error("invalid {which} filter {expr:?}: {source}")]
    Filter {
        /// Which filter: "pcap", "tunnel L2", "tunnel L3".
        which: &'static str,
        /// The expression as given.
        expr: String,
        /// libpcap's refusal ([`pwru_filter::FilterError`]) or the translator's
        /// ([`pwru_filter::TranslateError`]).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
        "the kernel verifier rejected program {program}: {source}\n--- verifier log ---\n{log}"
    )]
    Verifier {
        /// The program's name.
        program: String,
        /// The error the load returned (`EACCES`, `EINVAL`, ...).
        #[source]
        source: io::Error,
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
    Load(LoadError),
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
    /// A ring buffer record could not be decoded. Not fatal: the stream continues.
    #[error("corrupt event record: {0}")]
    Decode(#[source] DecodeError),
    /// Waiting on the ring buffer failed.
    #[error("ring buffer: {0}")]
    RingBuffer(#[source] io::Error),
}

/// Why loading or attaching a kernel program failed, when the verifier did not reject it
/// (a missing map or program in the object, a refused attachment, ...).
///
/// The message says what failed and what to do; [`std::error::Error::source`] gives the
/// underlying cause (the OS error of a syscall, for instance). The loader's own error type is
/// internal, so this does not tie pwru-core's API to the loading library it uses.
pub struct LoadError(Box<crate::backend::LoaderError>);

impl LoadError {
    fn new(e: crate::backend::LoaderError) -> Self {
        LoadError(Box::new(e))
    }

    /// The OS error number behind the failure, when a syscall returned one.
    pub fn raw_os_error(&self) -> Option<i32> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self.0.as_ref());
        while let Some(e) = cause {
            if let Some(code) = e
                .downcast_ref::<io::Error>()
                .and_then(io::Error::raw_os_error)
            {
                return Some(code);
            }
            cause = e.source();
        }
        None
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Debug for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
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

impl From<crate::backend::LoaderError> for Error {
    fn from(e: crate::backend::LoaderError) -> Self {
        match e {
            crate::backend::LoaderError::Verifier {
                program,
                error,
                log,
            } => Error::Verifier {
                program,
                source: error,
                log,
            },
            other => Error::Load(LoadError::new(other)),
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
            Error::Load(_) => "Load",
            Error::Symbols(_) => "Symbols",
            Error::NothingAttached { .. } => "NothingAttached",
            Error::InvalidOption(_) => "InvalidOption",
            Error::Decode(_) => "Decode",
            Error::RingBuffer(_) => "RingBuffer",
        }
    }

    /// Whether the event stream ends after this error. A corrupt record is not fatal: the
    /// stream goes on after it. (Lost records are not errors: they are
    /// [`Item::Lost`](crate::Item::Lost) notices.)
    ///
    /// ```
    /// let e = pwru_core::Error::InvalidOption("x".into());
    /// assert!(e.is_fatal());
    /// ```
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Error::Decode(_))
    }
}
