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
            prog_id, prog_name, retval, tuple, tunnel, skb_dump_len, shinfo_dump_len, _pad),
    );
    check(
        &btf,
        "pwru_config",
        size_of::<PwruConfig>(),
        fields!(PwruConfig: flags, netns, mark, mark_mask, ifindex, dump_max),
    );
}
