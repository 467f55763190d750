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
        fields!(PwruConfig: flags, netns, mark, mark_mask, ifindex, _pad),
    );
}

/// `enum pwru_outcome` (the index of each run counter) against `pwru_ebpf::outcome`.
#[test]
fn outcome_indexes_match_object_btf() {
    use pwru_ebpf::outcome as o;
    let btf = Btf::from_elf(OBJECT).expect("the embedded object has a .BTF section");
    let values = btf
        .enum_values("pwru_outcome")
        .expect("enum pwru_outcome in the object's BTF (key type of pwru_runs)");
    let want: &[(&str, u32)] = &[
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
    ];
    assert_eq!(values.len(), want.len(), "{values:?}");
    for (name, value) in want {
        let v = values
            .iter()
            .find(|v| v.name == *name)
            .unwrap_or_else(|| panic!("{name} missing from enum pwru_outcome"));
        assert_eq!(v.value, i64::from(*value), "{name}");
    }
}
