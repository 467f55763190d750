//! The compiled BPF object, embedded with 8-byte alignment (ELF parsers read it in place).

#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

static ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/pwru.bpf.o")));

/// The CO-RE BPF object (ELF, little endian) with every pwru-rs kernel program.
///
/// The global function `pwru_filter` is a placeholder: the loader in pwru-core replaces its
/// body with the compiled filter before loading.
pub static OBJECT: &[u8] = &ALIGNED.0;
