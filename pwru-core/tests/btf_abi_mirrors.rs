//! The `#[repr(C)]` mirrors in pwru-ebpf against the compiled object's own BTF: same size and
//! the same offset for every field, found by name.

use std::mem::{offset_of, size_of};

use pwru_core::btf::Btf;
use pwru_ebpf::{PwruConfig, PwruEvent, PwruRecordHdr, PwruTuple, OBJECT};

fn check(btf: &Btf, name: &str, size: usize, fields: &[(&str, usize)]) {
    let layout = btf
        .struct_layout(name)
        .unwrap_or_else(|e| panic!("struct {name} not in the object's BTF: {e}"));
    assert_eq!(layout.size as usize, size, "size of struct {name}");
    for (field, off) in fields {
        let m = layout
            .member(field)
            .unwrap_or_else(|| panic!("{name}.{field} missing from BTF"));
        assert_eq!(m.bit_offset % 8, 0, "{name}.{field} is a bitfield");
        assert_eq!(m.byte_offset() as usize, *off, "offset of {name}.{field}");
    }
    let names: Vec<&str> = layout.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names.len(),
        fields.len(),
        "struct {name} has members {names:?}; the mirror lists {:?}",
        fields.iter().map(|f| f.0).collect::<Vec<_>>()
    );
}

macro_rules! fields {
    ($t:ty: $($f:ident),* $(,)?) => {
        &[$((stringify!($f), offset_of!($t, $f))),*]
    };
}

#[test]
fn mirrors_match_object_btf() {
    let btf = Btf::from_elf(OBJECT).expect("the embedded object has a .BTF section");
    check(
        &btf,
        "pwru_record_hdr",
        size_of::<PwruRecordHdr>(),
        fields!(PwruRecordHdr: kind, version, len),
    );
    check(
        &btf,
        "pwru_tuple",
        size_of::<PwruTuple>(),
        fields!(PwruTuple: saddr, daddr, sport, dport, l3_proto, l4_proto, tcp_flags),
    );
    check(
        &btf,
        "pwru_event",
        size_of::<PwruEvent>(),
        fields!(PwruEvent: ts, addr, caller, skb, skb_head, cpu, pid, tgid, flags, comm, kind,
            pkt_type, protocol, netns, mark, ifindex, len, mtu, cb, stack_id, drop_reason,
            prog_id, prog_name, retval, tuple, tunnel, skb_dump_len, shinfo_dump_len, check),
    );
    check(
        &btf,
        "pwru_config",
        size_of::<PwruConfig>(),
        fields!(PwruConfig: flags, netns, mark, mark_mask, ifindex, dump_max),
    );
}

/// `enum pwru_outcome` (the index of each run counter) and the other numbers user space reads
/// the kernel's counters with, against the C header the object was compiled from (array map
/// keys must be plain integers in BTF, so the enum is not in the object's BTF).
#[test]
fn outcome_indexes_match_the_c_header() {
    use pwru_ebpf::outcome as o;
    let header = include_str!("../../pwru-ebpf/bpf/event.h");
    let value = |name: &str| -> u64 {
        let line = header
            .lines()
            .map(str::trim)
            .find(|l| {
                l.strip_prefix(name).is_some_and(|r| {
                    r.starts_with(' ') || r.starts_with('\t') || r.starts_with('=')
                }) || l
                    .strip_prefix("#define ")
                    .and_then(|r| r.strip_prefix(name))
                    .is_some_and(|r| r.starts_with(' '))
            })
            .unwrap_or_else(|| panic!("{name} not in event.h"));
        let text = line
            .split(['=', ' '])
            .map(|t| t.trim().trim_end_matches(',').trim_end_matches("ULL"))
            .filter(|t| !t.is_empty())
            .nth(if line.starts_with("#define") { 2 } else { 1 })
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        }
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
    };
    for (name, want) in [
        ("PWRU_OUT_EMITTED", o::EMITTED),
        ("PWRU_OUT_RING_FULL", o::RING_FULL),
        ("PWRU_OUT_NULL_SKB", o::NULL_SKB),
        ("PWRU_OUT_FILTER_NETNS", o::FILTER_NETNS),
        ("PWRU_OUT_FILTER_MARK", o::FILTER_MARK),
        ("PWRU_OUT_FILTER_IFINDEX", o::FILTER_IFINDEX),
        ("PWRU_OUT_FILTER_PCAP", o::FILTER_PCAP),
        ("PWRU_OUT_FILTER_TUNNEL", o::FILTER_TUNNEL),
        ("PWRU_OUT_NESTED_TOO_DEEP", o::NESTED_TOO_DEEP),
        ("PWRU_OUT_NO_SCRATCH", o::NO_SCRATCH),
        ("PWRU_OUT_NO_STACK_SKB", o::NO_STACK_SKB),
        ("PWRU_OUT_MAX", o::COUNT),
        ("PWRU_SCRATCH_SLOTS", pwru_ebpf::PWRU_SCRATCH_SLOTS),
        ("PWRU_DEPTH_LEVEL", pwru_ebpf::PWRU_DEPTH_LEVEL),
        ("PWRU_DEPTH_NESTED", pwru_ebpf::PWRU_DEPTH_NESTED),
    ] {
        assert_eq!(value(name), u64::from(want), "{name}");
    }
    for (name, want) in [
        ("PWRU_CHECK_WORDS", pwru_ebpf::PWRU_CHECK_WORDS as u64),
        ("PWRU_CHECK_SEED", pwru_ebpf::PWRU_CHECK_SEED),
        ("PWRU_CHECK_MUL", pwru_ebpf::PWRU_CHECK_MUL),
        (
            "PWRU_RECORD_VERSION",
            u64::from(pwru_ebpf::PWRU_RECORD_VERSION),
        ),
    ] {
        assert_eq!(value(name), want, "{name}");
    }
}

/// Every program of the object is either an event program (each run counted under one
/// outcome, summed into `Stats::kernel_runs`) or one of the programs that never emit. A new
/// program must be classified in `pwru_ebpf::is_event_program` (and count its runs) or
/// listed here.
#[test]
fn every_program_is_classified_for_run_accounting() {
    const SILENT: &[&str] = &[
        "fexit_skb_clone",
        "fexit_skb_copy",
        "fentry_kfree_skbmem",
        "fentry_skb_free_head",
        "kprobe_clone_entry",
        "kretprobe_clone_exit",
        "kprobe_kfree_skbmem",
        "kprobe_skb_free_head",
        "tp_btf_baseline",
    ];
    let obj = aya_obj::Object::parse(OBJECT).expect("the embedded object parses");
    let mut events = 0;
    for name in obj.programs.keys() {
        let event = pwru_ebpf::is_event_program(name);
        let silent = SILENT.contains(&name.as_str());
        assert!(
            event != silent,
            "program {name}: event program {event}, listed as silent {silent}"
        );
        events += usize::from(event);
    }
    // 5 kprobe + 5 kprobe.multi + 5 fentry + 2 x 22 tracepoints + stack id + tc/XDP tracing.
    assert!(events >= 5 + 5 + 5 + 44 + 3, "{events} event programs");
}
