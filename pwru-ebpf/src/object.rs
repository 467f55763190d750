//! The compiled BPF object, embedded with 8-byte alignment (ELF parsers read it in place).

#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

// build.rs points PWRU_EBPF_OBJECT at the shipped `obj/pwru.bpf.o`, or at a fresh build in
// OUT_DIR when PWRU_EBPF_REBUILD=1.
static ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("PWRU_EBPF_OBJECT")));

/// The CO-RE BPF object (ELF, little endian) with every pwru-rs kernel program.
///
/// The global function `pwru_filter` is a placeholder: the loader in pwru-core replaces its
/// body with the compiled filter before loading.
pub static OBJECT: &[u8] = &ALIGNED.0;

#[cfg(feature = "test-programs")]
static TEST_ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/testprogs.bpf.o"
)));

/// A small object with a tc classifier (`pwru_test_tc`) and an XDP program (`pwru_test_xdp`),
/// both with BTF: tests attach them so that tc/XDP tracing has targets. Only with the
/// non-default feature `test-programs` (compiled with clang at build time; not shipped).
#[cfg(feature = "test-programs")]
pub static TEST_OBJECT: &[u8] = &TEST_ALIGNED.0;
