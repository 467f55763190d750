//! The kernel's text symbols through its BPF `ksym` iterator (Linux 6.0+), without the
//! `%px %c %s` formatting of `/proc/kallsyms` and without parsing text.
//!
//! A small tracing program, assembled here, runs once per symbol the kernel walks and writes
//! only the text ones (`t`, `T`, `w`, `W`), in binary:
//!
//! ```text
//! u64 address, u8 type, 9 bytes of code at the address, u8 name length, name bytes,
//! u8 module length, module bytes
//! ```
//!
//! The code bytes tell whether the function begins with an ftrace site (see
//! [`super::entry::ftrace_site`]): the same answer as tracefs' `available_filter_functions`,
//! whose read costs the kernel a walk of every ftrace record per 4 KiB.
//!
//! `struct kallsym_iter` is internal to the kernel (its name array grew from 128 to 512 bytes
//! in 6.1), so the program's field offsets come from the kernel's BTF. Whatever stands in the
//! way (no iterator, a refused load, a name longer than the program copies, no address
//! shown) makes [`read`] give up with the reason, and the caller reads `/proc/kallsyms`.

use std::io::Read;
use std::os::fd::AsFd;

use aya_obj::generated::bpf_insn;

use super::{KernelSymbols, Parser};
use crate::btf::{Btf, Kind};
use crate::sys::{self, insn};

/// The iterator's target: `bpf_iter_<target>` is the kernel function its programs attach to.
const TARGET_FUNC: &str = "bpf_iter_ksym";

/// Bytes of a name the program copies, its end included: a name this long or longer could be
/// cut, and the whole read is given up.
const NAME_CAP: i32 = 256;

/// Bytes of a module name the program copies (the kernel's own limit is 56).
const MODULE_CAP: i32 = 63;

/// Where the program keeps a record on its stack: the header and the name (from `fp - HEADER`
/// on), the module name with its length byte in front (from `fp - MODULE`).
const HEADER: i16 = 344;
const MODULE: i16 = 64;

/// Bytes of code the program copies from each symbol's address: an `endbr64` (4) and the
/// 5-byte ftrace site after it.
pub(super) const ENTRY_BYTES: usize = 9;

/// Where a record's parts begin: the code bytes, the name's length, the name.
const AT_ENTRY: usize = 9;
const AT_NAME_LEN: usize = AT_ENTRY + ENTRY_BYTES;
const AT_NAME: usize = AT_NAME_LEN + 1;

/// Helpers the program calls.
const PROBE_READ_KERNEL: i32 = 113;
const PROBE_READ_KERNEL_STR: i32 = 115;
const SEQ_WRITE: i32 = 127;

/// The opcodes and the frame pointer the program uses.
const LDX_DW: u8 = 0x79;
const LDX_B: u8 = 0x71;
const STX_DW: u8 = 0x7b;
const STX_B: u8 = 0x73;
const MOV_X: u8 = 0xbf;
const MOV_K: u8 = 0xb7;
const ADD_K: u8 = 0x07;
const OR_K: u8 = 0x47;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const JSLT_K: u8 = 0xc5;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const FP: u8 = 10;

/// Field offsets the program needs, from the kernel's BTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// `bpf_iter_meta.seq`.
    meta_seq: i16,
    /// `kallsym_iter.value`, `.type`, `.name`, `.module_name`.
    value: i16,
    kind: i16,
    name: i16,
    module_name: i16,
    /// The `bpf_iter_ksym` function: what the program is loaded for.
    attach_btf_id: u32,
}

impl Layout {
    fn of(btf: &Btf) -> Result<Layout, String> {
        let attach = btf.find_by_name(Kind::Func, TARGET_FUNC).ok_or_else(|| {
            format!("the kernel has no {TARGET_FUNC} (the ksym iterator is 6.0+)")
        })?;
        let meta = btf
            .struct_layout("bpf_iter_meta")
            .map_err(|e| format!("bpf_iter_meta: {e}"))?;
        let iter = btf
            .struct_layout("kallsym_iter")
            .map_err(|e| format!("kallsym_iter: {e}"))?;
        let offset = |layout: &crate::btf::StructLayout, field: &str| -> Result<i16, String> {
            let m = layout
                .members
                .iter()
                .find(|m| m.name == field)
                .ok_or_else(|| format!("{} has no {field}", layout.name))?;
            if m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
                return Err(format!("{}.{field} is a bitfield", layout.name));
            }
            i16::try_from(m.bit_offset / 8)
                .map_err(|_| format!("{}.{field} is too far", layout.name))
        };
        Ok(Layout {
            meta_seq: offset(&meta, "seq")?,
            value: offset(&iter, "value")?,
            kind: offset(&iter, "type")?,
            name: offset(&iter, "name")?,
            module_name: offset(&iter, "module_name")?,
            attach_btf_id: attach.0,
        })
    }
}

/// The program (see the module docs). r6: context, r7: the symbol (`NULL` after the last
/// one), r8: the seq_file, r9: a length.
fn program(l: &Layout) -> Vec<bpf_insn> {
    // Jumps to `out` are written with their distance filled in below.
    let mut p = vec![
        insn(MOV_X, 6, 1, 0, 0),
        insn(LDX_DW, 7, 6, 8, 0), // ctx->ksym
        insn(JEQ_K, 7, 0, 0, 0),  // -> out
        insn(LDX_DW, 8, 6, 0, 0), // ctx->meta
        insn(LDX_DW, 8, 8, l.meta_seq, 0),
        // Text symbols only: the type, lower-cased, is t or w.
        insn(LDX_B, 2, 7, l.kind, 0),
        insn(OR_K, 2, 0, 0, 0x20),
        insn(JEQ_K, 2, 0, 1, i32::from(b't')),
        insn(JNE_K, 2, 0, 0, i32::from(b'w')), // -> out
        // Header: address, type.
        insn(LDX_DW, 3, 7, l.value, 0),
        insn(STX_DW, FP, 3, -HEADER, 0),
        insn(LDX_B, 2, 7, l.kind, 0),
        insn(STX_B, FP, 2, -HEADER + 8, 0),
        // The code at the address (zeros where it cannot be read: the helper clears them).
        insn(MOV_X, 1, FP, 0, 0),
        insn(ADD_K, 1, 0, 0, i32::from(-HEADER) + AT_ENTRY as i32),
        insn(MOV_K, 2, 0, 0, ENTRY_BYTES as i32),
        insn(LDX_DW, 3, 7, l.value, 0),
        insn(CALL, 0, 0, 0, PROBE_READ_KERNEL),
    ];
    // The name after the header; its length (end excluded) into the header.
    p.extend(read_str(-HEADER + AT_NAME as i16, NAME_CAP, l.name));
    p.extend([
        insn(JSLT_K, 0, 0, 0, 2), // no name -> out
        insn(MOV_X, 9, 0, 0, 0),
        insn(ADD_K, 9, 0, 0, -1),
        insn(STX_B, FP, 9, -HEADER + AT_NAME_LEN as i16, 0),
    ]);
    p.extend(seq_write(-HEADER, AT_NAME as i32));
    // The module name (empty for the core image) after its length byte.
    p.extend(read_str(-MODULE + 1, MODULE_CAP, l.module_name));
    p.extend([
        insn(MOV_K, 9, 0, 0, 0),
        insn(JSLT_K, 0, 0, 2, 2),
        insn(MOV_X, 9, 0, 0, 0),
        insn(ADD_K, 9, 0, 0, -1),
        insn(STX_B, FP, 9, -MODULE, 0),
    ]);
    p.extend(seq_write(-MODULE, 1));
    let out = p.len();
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    // The jumps to `out` (those written with offset 0 above).
    for (i, ins) in p.iter_mut().enumerate().take(out) {
        let code = ins.code;
        if matches!(code, JEQ_K | JNE_K | JSLT_K) && ins.off == 0 {
            ins.off = i16::try_from(out - i - 1).unwrap_or(i16::MAX);
        }
    }
    p
}

/// `bpf_probe_read_kernel_str` of the string at `field` of the symbol (r7) into the stack at
/// `fp + at`, at most `cap` bytes; r0 is its length with the end.
fn read_str(at: i16, cap: i32, field: i16) -> [bpf_insn; 6] {
    [
        insn(MOV_X, 1, FP, 0, 0),
        insn(ADD_K, 1, 0, 0, i32::from(at)),
        insn(MOV_K, 2, 0, 0, cap),
        insn(MOV_X, 3, 7, 0, 0),
        insn(ADD_K, 3, 0, 0, i32::from(field)),
        insn(CALL, 0, 0, 0, PROBE_READ_KERNEL_STR),
    ]
}

/// `bpf_seq_write` to the seq_file (r8) of the stack bytes from `fp + at`: `extra` plus the
/// length in r9.
fn seq_write(at: i16, extra: i32) -> [bpf_insn; 6] {
    [
        insn(MOV_X, 1, 8, 0, 0),
        insn(MOV_X, 2, FP, 0, 0),
        insn(ADD_K, 2, 0, 0, i32::from(at)),
        insn(MOV_X, 3, 9, 0, 0),
        insn(ADD_K, 3, 0, 0, extra),
        insn(CALL, 0, 0, 0, SEQ_WRITE),
    ]
}

/// Reads the text symbols through the iterator; `Err` says why it could not (the caller reads
/// `/proc/kallsyms` then).
pub(super) fn read(btf: &Btf) -> Result<KernelSymbols, String> {
    let layout = Layout::of(btf)?;
    let insns = program(&layout);
    let prog = sys::prog_load(&sys::ProgLoad {
        prog_type: sys::PROG_TYPE_TRACING,
        expected_attach_type: sys::ATTACH_TRACE_ITER,
        insns: &insns,
        name: "pwru_ksyms",
        attach_btf_id: layout.attach_btf_id,
        attach_prog_fd: None,
    })
    .map_err(|e| format!("the ksym iterator program was refused: {e}"))?;
    let link = sys::link_iter(prog.as_fd()).map_err(|e| format!("ksym iterator link: {e}"))?;
    let fd = sys::iter_create(link.as_fd()).map_err(|e| format!("ksym iterator read: {e}"))?;
    let mut file = std::fs::File::from(fd);
    let mut records = Records::default();
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes at the start of `buf` holding a record not yet complete.
    let mut kept = 0;
    loop {
        let n = match file.read(&mut buf[kept..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the ksym iterator: {e}")),
        };
        let filled = kept + n;
        let used = records.feed(&buf[..filled])?;
        buf.copy_within(used..filled, 0);
        kept = filled - used;
    }
    if kept != 0 {
        return Err(format!(
            "the ksym iterator ended inside a record ({kept} bytes)"
        ));
    }
    records.finish()
}

/// Turns the program's records into a table.
#[derive(Default)]
struct Records {
    parser: Parser,
}

impl Records {
    /// Takes every whole record at the start of `bytes`; returns how many bytes they took.
    fn feed(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let mut at = 0;
        while let Some(Record {
            addr,
            kind,
            entry,
            name,
            module,
            len,
        }) = record(&bytes[at..])
        {
            at += len;
            let name =
                std::str::from_utf8(name).map_err(|_| "a symbol name is not UTF-8".to_string())?;
            if name.len() >= NAME_CAP as usize - 1 {
                return Err(format!(
                    "a symbol name of {} bytes or more may be cut",
                    name.len()
                ));
            }
            let module = std::str::from_utf8(module)
                .map_err(|_| "a module name is not UTF-8".to_string())?;
            if !super::is_text(kind) {
                return Err(format!(
                    "the ksym iterator wrote a symbol of type {:?}",
                    kind as char
                ));
            }
            self.parser.lines += 1;
            self.parser.nonzero |= addr != 0;
            self.parser.push_text(
                addr,
                name,
                (!module.is_empty()).then_some(module),
                super::entry::ftrace_site(&entry),
            );
        }
        Ok(at)
    }

    fn finish(self) -> Result<KernelSymbols, String> {
        if self.parser.lines == 0 {
            return Err("the ksym iterator listed no text symbol".into());
        }
        if !self.parser.nonzero {
            return Err("the ksym iterator showed every address as zero".into());
        }
        let mut table = self.parser.finish().map_err(|e| e.to_string())?;
        table.through_iterator = true;
        table.knows_ftrace_sites = true;
        Ok(table)
    }
}

/// One record of the program (see the module docs).
struct Record<'a> {
    addr: u64,
    kind: u8,
    /// The code at `addr`.
    entry: [u8; ENTRY_BYTES],
    name: &'a [u8],
    module: &'a [u8],
    /// Its length in bytes.
    len: usize,
}

/// The record at the start of `b`, or `None` if `b` ends before it does.
fn record(b: &[u8]) -> Option<Record<'_>> {
    let addr = u64::from_ne_bytes(b.get(..8)?.try_into().ok()?);
    let kind = *b.get(8)?;
    let entry: [u8; ENTRY_BYTES] = b.get(AT_ENTRY..AT_NAME_LEN)?.try_into().ok()?;
    let name_len = usize::from(*b.get(AT_NAME_LEN)?);
    let name = b.get(AT_NAME..AT_NAME + name_len)?;
    let at = AT_NAME + name_len;
    let module_len = usize::from(*b.get(at)?);
    let module = b.get(at + 1..at + 1 + module_len)?;
    Some(Record {
        addr,
        kind,
        entry,
        name,
        module,
        len: at + 1 + module_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Code that begins with an ftrace site, with something else, with an int3.
    const SITE: [u8; ENTRY_BYTES] = [0x0f, 0x1f, 0x44, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5];
    const PLAIN: [u8; ENTRY_BYTES] = [0x55, 0x48, 0x89, 0xe5, 0x41, 0x57, 0x41, 0x56, 0x53];
    const INT3: [u8; ENTRY_BYTES] = [0xcc, 0x1f, 0x44, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5];

    /// The program's records of `(address, name, code, module)` text symbols.
    fn encode(symbols: &[(u64, &str, [u8; ENTRY_BYTES], &str)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (addr, name, code, module) in symbols {
            bytes.extend_from_slice(&addr.to_ne_bytes());
            bytes.push(b't');
            bytes.extend_from_slice(code);
            bytes.push(name.len() as u8);
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(module.len() as u8);
            bytes.extend_from_slice(module.as_bytes());
        }
        bytes
    }

    /// The table of those records, fed whole.
    fn table(symbols: &[(u64, &str, [u8; ENTRY_BYTES], &str)]) -> KernelSymbols {
        let bytes = encode(symbols);
        let mut r = Records::default();
        assert_eq!(r.feed(&bytes).expect("feeds"), bytes.len());
        r.finish().expect("a table")
    }

    /// The iterator's table equals the text's, for the core image (modules and BPF programs
    /// may come and go between the two reads). Needs root and a 6.0+ kernel with BTF.
    #[test]
    fn the_iterator_lists_what_kallsyms_lists() {
        let btf = match Btf::vmlinux() {
            Ok(b) => b,
            Err(e) => {
                eprintln!("SKIP: no kernel BTF: {e}");
                return;
            }
        };
        if btf.find_by_name(Kind::Func, TARGET_FUNC).is_none() {
            eprintln!("SKIP: this kernel has no ksym iterator ({TARGET_FUNC})");
            return;
        }
        if !crate::sys::process::is_root() {
            eprintln!("SKIP: loading the iterator needs root");
            return;
        }
        let from_iter = read(&btf).expect("the ksym iterator reads");
        let from_text = KernelSymbols::from_path(super::super::KALLSYMS).expect("kallsyms reads");
        assert!(from_iter.read_through_iterator() && !from_text.read_through_iterator());
        let core = |s: &KernelSymbols| -> Vec<(u64, String)> {
            let t = s.read();
            t.entries
                .iter()
                .filter(|e| e.module == super::super::NO_MODULE)
                .map(|e| (e.addr, t.name(e).to_string()))
                .collect()
        };
        let (a, b) = (core(&from_iter), core(&from_text));
        assert!(a.len() > 1000, "{} core text symbols", a.len());
        assert!(
            a == b,
            "{} symbols from the iterator, {} from the text",
            a.len(),
            b.len()
        );
        // Module symbols keep their module's name.
        let t = from_iter.read();
        let with_module = t
            .entries
            .iter()
            .filter(|e| e.module != super::super::NO_MODULE)
            .count();
        let text_modules = from_text.read().modules.len();
        assert!(
            text_modules == 0 || with_module > 0,
            "no module symbol from the iterator"
        );
    }

    /// Functions traced through ftrace show their site; the trace event glue, built
    /// `notrace`, does not; a table read from the text cannot tell. (The VM matrix's
    /// `ftrace-sites` compares the whole set with tracefs' list, which this host does not let
    /// a container read.) Needs root and a 6.0+ kernel with BTF.
    #[test]
    fn the_iterator_shows_which_functions_begin_with_an_ftrace_site() {
        let btf = match Btf::vmlinux() {
            Ok(b) => b,
            Err(e) => {
                eprintln!("SKIP: no kernel BTF: {e}");
                return;
            }
        };
        if btf.find_by_name(Kind::Func, TARGET_FUNC).is_none() {
            eprintln!("SKIP: this kernel has no ksym iterator ({TARGET_FUNC})");
            return;
        }
        if !crate::sys::process::is_root() {
            eprintln!("SKIP: loading the iterator needs root");
            return;
        }
        let table = read(&btf).expect("the ksym iterator reads");
        let listing = table
            .ftrace_site_listing()
            .expect("a table read through the iterator knows its sites");
        let asked = ["perf_trace_kfree_skb", "ip_rcv", "no_such_function"].map(String::from);
        assert_eq!(
            table.ftrace_site_listing_of(&asked).as_deref(),
            Some("ip_rcv\n")
        );
        let sites: std::collections::HashSet<&str> = listing.lines().collect();
        for traced in [
            "ip_rcv",
            "__netif_receive_skb",
            "kfree_skbmem",
            "dev_hard_start_xmit",
        ] {
            assert!(sites.contains(traced), "{traced} shows no ftrace site");
        }
        for glue in [
            "perf_trace_kfree_skb",
            "__bpf_trace_kfree_skb",
            "trace_event_raw_event_kfree_skb",
        ] {
            assert!(
                !sites.contains(glue),
                "{glue} (notrace) shows an ftrace site"
            );
        }
        assert!(
            sites.len() > 10_000,
            "{} functions with a site",
            sites.len()
        );
        let text = KernelSymbols::from_path(super::super::KALLSYMS).expect("kallsyms reads");
        assert!(text.ftrace_site_listing().is_none());
    }

    /// Where a name is defined more than once, its address is the lowest copy with an ftrace
    /// site (a kprobe.multi link refuses the others), else the lowest.
    #[test]
    fn a_name_defined_twice_resolves_to_its_copy_with_a_site() {
        let syms = table(&[
            (0xffff_ffff_8100_1000, "dst_output", PLAIN, ""),
            (0xffff_ffff_8100_2000, "dst_output", SITE, ""),
            (0xffff_ffff_8100_3000, "inline_copy", PLAIN, ""),
            (0xffff_ffff_8100_4000, "inline_copy", PLAIN, ""),
        ]);
        assert_eq!(
            syms.addresses_of(&["dst_output", "inline_copy", "nope"]),
            [
                Some(0xffff_ffff_8100_2000),
                Some(0xffff_ffff_8100_3000),
                None
            ]
        );
        assert_eq!(syms.ftrace_site_listing().as_deref(), Some("dst_output\n"));
    }

    /// A name asked about whose only copy begins with an int3 (a site being patched, or a
    /// kprobe on a function ftrace does not know) leaves the answer to tracefs' list; a copy
    /// with a site settles it.
    #[test]
    fn an_int3_where_a_site_would_be_leaves_the_answer_to_the_list() {
        let syms = table(&[
            (0xffff_ffff_8100_1000, "ip_rcv", SITE, ""),
            (0xffff_ffff_8100_2000, "being_patched", INT3, ""),
            (0xffff_ffff_8100_3000, "two_copies", INT3, ""),
            (0xffff_ffff_8100_4000, "two_copies", SITE, ""),
        ]);
        let ask = |names: &[&str]| {
            syms.ftrace_site_listing_of(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            ask(&["ip_rcv", "two_copies"]).as_deref(),
            Some("ip_rcv\ntwo_copies\n")
        );
        assert_eq!(ask(&["ip_rcv", "being_patched"]), None);
        assert_eq!(
            syms.ftrace_site_listing().as_deref(),
            Some("ip_rcv\ntwo_copies\n")
        );
        assert_eq!(syms.address_of("two_copies"), Some(0xffff_ffff_8100_4000));
    }

    #[test]
    fn records_cut_anywhere_wait_for_their_end() {
        let bytes = encode(&[
            (0xffff_ffff_8100_0000, "ip_rcv", SITE, ""),
            (0xffff_ffff_a000_0000, "vxlan_rcv", SITE, "vxlan"),
        ]);
        for cut in 0..bytes.len() {
            let mut r = Records::default();
            let used = r.feed(&bytes[..cut]).expect("feeds");
            let rest = r.feed(&bytes[used..]).expect("feeds");
            assert_eq!(used + rest, bytes.len(), "cut at {cut}");
            let syms = r.finish().expect("a table");
            assert_eq!(syms.address_of("ip_rcv"), Some(0xffff_ffff_8100_0000));
            assert_eq!(
                syms.lookup(0xffff_ffff_a000_0004).map(|s| s.to_string()),
                Some("vxlan_rcv+0x4 [vxlan]".into())
            );
        }
    }
}
