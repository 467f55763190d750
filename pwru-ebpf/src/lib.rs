//! Kernel programs of pwru-rs: the compiled BPF object and `#[repr(C)]` mirrors of every
//! struct it shares with user space.
//!
//! The C sources are in `bpf/`, one file per concern (`bpf/event.h` holds the shared structs,
//! `bpf/abi.h` the shared numbers, `bpf/entry_*.h` the entry programs of each backend). They
//! are compiled with clang into one CO-RE object that ships with the crate (`obj/pwru.bpf.o`,
//! refreshed by `rebuild.sh`) and is embedded here as [`OBJECT`]: building this crate needs no
//! C toolchain. Each mirror has the same name as its C struct in CamelCase (`pwru_event` ->
//! [`PwruEvent`]) and the same field names, so comparing them with the object's BTF is
//! mechanical. Program names are in [`program`].
//!
//! # Programs in [`OBJECT`]
//!
//! | program | section | backend / use |
//! |---|---|---|
//! | `kprobe_skb_1` .. `kprobe_skb_5` | `kprobe/skb_N` | kprobe, skb is argument N |
//! | `kprobe_multi_skb_1` .. `_5` | `kprobe/multi_skb_N` | kprobe.multi (loaded with expected attach type `BPF_TRACE_KPROBE_MULTI`) |
//! | `fentry_skb_1` .. `fentry_skb_5` | `fentry/skb_N` | fentry, loaded once per target function |
//! | `tp_btf_<tp>`, `raw_tp_<tp>` | `tp_btf/<tp>`, `raw_tp/<tp>` | tracepoints of [`TRACEPOINTS`] |
//! | `kprobe_stackid`, `kprobe_multi_stackid` | `kprobe/...` | functions without an skb, via stack id |
//! | `fexit_skb_clone`, `fexit_skb_copy`, `fentry_kfree_skbmem` | `fexit/...`, `fentry/...` | skb tracking (fentry kernels) |
//! | `kprobe_clone_entry`, `kretprobe_clone_exit`, `kprobe_kfree_skbmem` | `kprobe/...`, `kretprobe/...` | skb tracking (kprobe kernels) |
//! | `fentry_tc`, `fentry_xdp`, `fexit_xdp` | `fentry/...`, `fexit/...` | tracing loaded tc/XDP programs (attach_prog_fd) |
//! | `tp_btf_baseline` | `tp_btf/baseline` | empty program, reference for cost measurements |
//!
//! Every record in the ring buffer [`MAP_EVENTS`] is a [`PwruRecordHdr`] followed by its
//! payload, and carries a check word ([`record_check`]). Every run of an event program
//! (see [`is_event_program`]) is counted per CPU in [`MAP_RUNS`] under exactly one outcome
//! (`PWRU_OUT_*`); records that did not fit are the [`PWRU_OUT_RING_FULL`] runs.
//!
//! Every number and name shared with C is checked against the shipped object by a test
//! (`pwru-core/tests/btf_abi_mirrors.rs`): struct layouts and the enums of `bpf/abi.h` from its
//! BTF, map and program names and the [`patch`] constants from its ELF.
#![deny(missing_docs)]
#![no_std]

mod config;
mod event;
mod maps;
mod object;
mod programs;
mod record;

pub use config::*;
pub use event::*;
pub use maps::*;
pub use object::OBJECT;
#[cfg(feature = "test-programs")]
pub use object::TEST_OBJECT;
pub use programs::*;
pub use record::*;
