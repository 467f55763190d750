//! Whether a function begins with an ftrace site, from the first bytes of its code.
//!
//! On x86-64 the kernel is built with `-mfentry`: every function ftrace can trace begins with a
//! 5-byte `call __fentry__`, which the kernel turns into a 5-byte no-op at boot and back into a
//! call (to an ftrace or BPF trampoline) while something traces it. With indirect branch
//! tracking the site comes after the function's `endbr64`, or after the 4-byte no-op FineIBT
//! puts in its place. Functions built without it (`notrace`: inline functions emitted out of
//! line, the trace event glue, files built without ftrace) begin with anything else.
//!
//! This is what tracefs' `available_filter_functions` lists, read without that file: for every
//! 4 KiB read the kernel walks its ftrace records from the first one. The answer is checked
//! against that file on every kernel of the VM matrix, and a kernel that disagrees refuses the
//! addresses of a kprobe.multi link, which then falls back to the file.

/// The 5-byte no-op of an ftrace site that nothing traces (`nopl 0x0(%rax,%rax,1)`).
const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

/// `call rel32`: an ftrace site while a tracer is attached.
const CALL: u8 = 0xe8;

/// `endbr64`, and the 4-byte no-ops the kernel seals it with (FineIBT, and functions never
/// called indirectly): `nopl -42(%rax)` before 6.4, `osp nopl (%rax)` since.
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
const ENDBR_SEALED: [[u8; 4]; 2] = [[0x0f, 0x1f, 0x40, 0xd6], [0x66, 0x0f, 0x1f, 0x00]];

/// Whether `code`, the first bytes of a function, begin with an ftrace site (directly or after
/// an `endbr64`). Zeros (code that could not be read) are no site.
pub(crate) fn is_ftrace_site(code: &[u8; 9]) -> bool {
    // A site being patched begins with an int3 for a moment; so do freed init functions
    // (their memory is filled with int3) and padding: int3 is no site.
    let site = |at: &[u8]| at.starts_with(&NOP5) || at[0] == CALL;
    let endbr = code[..4] == ENDBR64 || ENDBR_SEALED.iter().any(|s| code[..4] == *s);
    site(&code[..5]) || (endbr && site(&code[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &[u8]) -> [u8; 9] {
        let mut c = [0x90u8; 9];
        c[..bytes.len()].copy_from_slice(bytes);
        c
    }

    #[test]
    fn idle_and_traced_sites_count() {
        assert!(is_ftrace_site(&code(&NOP5)));
        assert!(is_ftrace_site(&code(&[0xe8, 1, 2, 3, 4])));
        assert!(is_ftrace_site(&code(&[0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x1f, 0x44, 0x00, 0x00])));
        assert!(is_ftrace_site(&code(&[0x0f, 0x1f, 0x40, 0xd6, 0xe8, 0, 0, 0, 0])));
        assert!(is_ftrace_site(&code(&[0x66, 0x0f, 0x1f, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00])));
    }

    #[test]
    fn other_beginnings_do_not() {
        // push %rbp; mov %rsp,%rbp
        assert!(!is_ftrace_site(&code(&[0x55, 0x48, 0x89, 0xe5])));
        // endbr64; push %rbp
        assert!(!is_ftrace_site(&code(&[0xf3, 0x0f, 0x1e, 0xfa, 0x55])));
        // a 4-byte no-op that is not FineIBT's, then a site
        assert!(!is_ftrace_site(&code(&[0x0f, 0x1f, 0x40, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00])));
        // freed init code, padding
        assert!(!is_ftrace_site(&[0xcc; 9]));
        // unreadable
        assert!(!is_ftrace_site(&[0; 9]));
    }
}
