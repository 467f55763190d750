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

/// `int3`: the first byte of a site while the kernel patches it (and of much else).
const INT3: u8 = 0xcc;

/// `endbr64`, and the 4-byte no-ops the kernel seals it with (FineIBT, and functions never
/// called indirectly): `nopl -42(%rax)` before 6.4, `osp nopl (%rax)` since.
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
const ENDBR_SEALED: [[u8; 4]; 2] = [[0x0f, 0x1f, 0x40, 0xd6], [0x66, 0x0f, 0x1f, 0x00]];

/// What the first bytes of a function say about an ftrace site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Site {
    /// No site: the function begins with something else, or its code could not be read
    /// (zeros). Also every entry of a table read from text, which shows no code.
    #[default]
    No,
    /// An ftrace site (directly or after an `endbr64`).
    Yes,
    /// An int3 where a site would be: a site the kernel is patching at that moment, a kprobe
    /// on a function ftrace does not know, or freed init code and padding (filled with int3).
    /// Only tracefs' list can tell.
    Unknown,
}

/// What `code`, the first bytes of a function, say about an ftrace site.
pub(crate) fn ftrace_site(code: &[u8; 9]) -> Site {
    let at = |at: &[u8]| {
        if at.starts_with(&NOP5) || at[0] == CALL {
            Site::Yes
        } else if at[0] == INT3 {
            Site::Unknown
        } else {
            Site::No
        }
    };
    let endbr = code[..4] == ENDBR64 || ENDBR_SEALED.iter().any(|s| code[..4] == *s);
    match at(&code[..5]) {
        Site::No if endbr => at(&code[4..]),
        site => site,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &[u8]) -> [u8; 9] {
        let mut c = [0x90u8; 9];
        c[..bytes.len()].copy_from_slice(bytes);
        c
    }

    fn is_ftrace_site(code: &[u8; 9]) -> bool {
        ftrace_site(code) == Site::Yes
    }

    #[test]
    fn idle_and_traced_sites_count() {
        assert!(is_ftrace_site(&code(&NOP5)));
        assert!(is_ftrace_site(&code(&[0xe8, 1, 2, 3, 4])));
        assert!(is_ftrace_site(&code(&[
            0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x1f, 0x44, 0x00, 0x00
        ])));
        assert!(is_ftrace_site(&code(&[
            0x0f, 0x1f, 0x40, 0xd6, 0xe8, 0, 0, 0, 0
        ])));
        assert!(is_ftrace_site(&code(&[
            0x66, 0x0f, 0x1f, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00
        ])));
    }

    #[test]
    fn an_int3_where_a_site_would_be_is_unknown() {
        assert_eq!(ftrace_site(&[0xcc; 9]), Site::Unknown);
        assert_eq!(
            ftrace_site(&code(&[0xf3, 0x0f, 0x1e, 0xfa, 0xcc, 1, 2, 3, 4])),
            Site::Unknown
        );
        // an int3 after something that is no endbr64 is just code
        assert_eq!(ftrace_site(&code(&[0x55, 0xcc])), Site::No);
    }

    #[test]
    fn other_beginnings_do_not() {
        // push %rbp; mov %rsp,%rbp
        assert!(!is_ftrace_site(&code(&[0x55, 0x48, 0x89, 0xe5])));
        // endbr64; push %rbp
        assert!(!is_ftrace_site(&code(&[0xf3, 0x0f, 0x1e, 0xfa, 0x55])));
        // a 4-byte no-op that is not FineIBT's, then a site
        assert!(!is_ftrace_site(&code(&[
            0x0f, 0x1f, 0x40, 0x00, 0x0f, 0x1f, 0x44, 0x00, 0x00
        ])));
        // unreadable
        assert!(!is_ftrace_site(&[0; 9]));
    }
}
