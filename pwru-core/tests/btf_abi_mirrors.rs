//! pwru-ebpf's Rust side against the compiled object it ships: the `#[repr(C)]` mirrors against
//! the object's own BTF (same size and the same offset for every field, found by name), the
//! shared numbers against the enums of `bpf/abi.h` in that BTF, and the names of maps,
//! programs, the config global, the filter stub and the tc/XDP patch markers against the
//! object itself.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::{offset_of, size_of};

use pwru_core::btf::{Btf, Kind};
use pwru_ebpf::{
    PwruBpfmap, PwruBpfmapRecord, PwruConfig, PwruEvent, PwruRecordHdr, PwruTuple, OBJECT,
};

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
        fields!(PwruEvent: ts, addr, caller, caller_next, skb, skb_head, cpu, pid, tgid, flags, comm, kind,
            pkt_type, protocol, netns, mark, ifindex, len, mtu, cb, stack_id, drop_reason,
            prog_id, prog_name, retval, tuple, tunnel, metadata, packet_id, parent_packet_id,
            skb_dump_len, shinfo_dump_len, pkt_len, pkt_link, _pad0, pkt_wire_len, check),
    );
    check(
        &btf,
        "pwru_config",
        size_of::<PwruConfig>(),
        fields!(PwruConfig: flags, netns, mark, mark_mask, ifindex, dump_max, snaplen),
    );
    check(
        &btf,
        "pwru_bpfmap",
        size_of::<PwruBpfmap>(),
        fields!(PwruBpfmap: ts, addr, skb, cpu, pid, map_id, key_size, value_size, op, kind,
            flags, pad, map_name, key, value),
    );
    check(
        &btf,
        "pwru_bpfmap_record",
        size_of::<PwruBpfmapRecord>(),
        fields!(PwruBpfmapRecord: hdr, op),
    );
}

/// The value of every enumerator of `enum <name>` in the object's BTF.
fn enum_values(btf: &Btf, name: &str) -> BTreeMap<String, u64> {
    btf.enum_values(name)
        .unwrap_or_else(|e| panic!("enum {name} not in the object's BTF (see bpf/abi.h): {e}"))
        .into_iter()
        // enum64 values above i64::MAX come back wrapped: the bits are the value.
        .map(|v| (v.name, v.value as u64))
        .collect()
}

/// Each enum of `bpf/abi.h` against the Rust constants, by name, in both directions: a Rust
/// constant must have the value of the C enumerator of the same name, and every enumerator
/// must have a Rust constant (a number added on one side only fails here).
fn check_enum(btf: &Btf, name: &str, rust: &[(&str, u64)]) {
    let c = enum_values(btf, name);
    for (constant, want) in rust {
        let have = c
            .get(*constant)
            .unwrap_or_else(|| panic!("{constant} is not an enumerator of enum {name}"));
        assert_eq!(*have, *want, "{constant}: C (enum {name}) vs Rust");
    }
    let listed: BTreeSet<&str> = rust.iter().map(|(n, _)| *n).collect();
    let missing: Vec<&String> = c.keys().filter(|n| !listed.contains(n.as_str())).collect();
    assert!(
        missing.is_empty(),
        "enum {name}: {missing:?} have no Rust constant in pwru-ebpf"
    );
}

macro_rules! consts {
    ($($c:ident),* $(,)?) => {
        &[$((stringify!($c), u64::from(pwru_ebpf::$c))),*]
    };
}

#[test]
fn abi_enums_match_rust_constants() {
    use pwru_ebpf::outcome as o;
    let btf = Btf::from_elf(OBJECT).expect("the embedded object has a .BTF section");
    check_enum(
        &btf,
        "pwru_record_kind",
        consts!(PWRU_RECORD_EVENT, PWRU_RECORD_BPFMAP),
    );
    check_enum(
        &btf,
        "pwru_bpfmap_op",
        consts!(PWRU_BPFMAP_LOOKUP, PWRU_BPFMAP_UPDATE, PWRU_BPFMAP_DELETE),
    );
    check_enum(
        &btf,
        "pwru_bpfmap_flag",
        consts!(
            PWRU_BPFMAP_HAS_VALUE,
            PWRU_BPFMAP_KEY_CUT,
            PWRU_BPFMAP_VALUE_CUT
        ),
    );
    check_enum(
        &btf,
        "pwru_bpfmap_bytes",
        &[("PWRU_BPFMAP_BYTES", pwru_ebpf::PWRU_BPFMAP_BYTES as u64)],
    );
    check_enum(&btf, "pwru_record_version", consts!(PWRU_RECORD_VERSION));
    check_enum(
        &btf,
        "pwru_check",
        &[
            ("PWRU_CHECK_WORDS", pwru_ebpf::PWRU_CHECK_WORDS as u64),
            ("PWRU_CHECK_LANES", pwru_ebpf::PWRU_CHECK_LANES as u64),
            ("PWRU_CHECK_SEED", pwru_ebpf::PWRU_CHECK_SEED),
            ("PWRU_CHECK_MUL", pwru_ebpf::PWRU_CHECK_MUL),
        ],
    );
    check_enum(
        &btf,
        "pwru_dump_max",
        &[
            ("PWRU_SKB_DUMP_MAX", pwru_ebpf::PWRU_SKB_DUMP_MAX as u64),
            (
                "PWRU_SHINFO_DUMP_MAX",
                pwru_ebpf::PWRU_SHINFO_DUMP_MAX as u64,
            ),
        ],
    );
    check_enum(
        &btf,
        "pwru_pkt_max",
        &[("PWRU_PKT_MAX", pwru_ebpf::PWRU_PKT_MAX as u64)],
    );
    check_enum(
        &btf,
        "pwru_pkt_link",
        consts!(
            PWRU_PKT_LINK_NONE,
            PWRU_PKT_LINK_ETHERNET,
            PWRU_PKT_LINK_RAW_IP
        ),
    );
    check_enum(&btf, "pwru_scratch_slots", consts!(PWRU_SCRATCH_SLOTS));
    check_enum(
        &btf,
        "pwru_depth_key",
        consts!(PWRU_DEPTH_LEVEL, PWRU_DEPTH_NESTED),
    );
    check_enum(
        &btf,
        "pwru_outcome",
        &[
            ("PWRU_OUT_EMITTED", o::EMITTED.into()),
            ("PWRU_OUT_RING_FULL", o::RING_FULL.into()),
            ("PWRU_OUT_NULL_SKB", o::NULL_SKB.into()),
            ("PWRU_OUT_FILTER_NETNS", o::FILTER_NETNS.into()),
            ("PWRU_OUT_FILTER_MARK", o::FILTER_MARK.into()),
            ("PWRU_OUT_FILTER_IFINDEX", o::FILTER_IFINDEX.into()),
            ("PWRU_OUT_FILTER_PCAP", o::FILTER_PCAP.into()),
            ("PWRU_OUT_FILTER_TUNNEL", o::FILTER_TUNNEL.into()),
            ("PWRU_OUT_NESTED_TOO_DEEP", o::NESTED_TOO_DEEP.into()),
            ("PWRU_OUT_NO_SCRATCH", o::NO_SCRATCH.into()),
            ("PWRU_OUT_NO_STACK_SKB", o::NO_STACK_SKB.into()),
            ("PWRU_OUT_FILTER_EXPR", o::FILTER_EXPR.into()),
            ("PWRU_OUT_OWN_MAP", o::OWN_MAP.into()),
            ("PWRU_OUT_MAX", o::COUNT.into()),
        ],
    );
    check_enum(
        &btf,
        "pwru_probe_kind",
        consts!(
            PWRU_KIND_KPROBE,
            PWRU_KIND_KPROBE_MULTI,
            PWRU_KIND_FENTRY,
            PWRU_KIND_FEXIT,
            PWRU_KIND_TRACEPOINT,
            PWRU_KIND_RAW_TRACEPOINT,
            PWRU_KIND_TC,
            PWRU_KIND_XDP,
            PWRU_KIND_XDP_EXIT,
        ),
    );
    check_enum(
        &btf,
        "pwru_event_flag",
        consts!(
            PWRU_EV_META,
            PWRU_EV_TUPLE,
            PWRU_EV_TUNNEL,
            PWRU_EV_STACK,
            PWRU_EV_CALLER,
            PWRU_EV_DROP_REASON,
            PWRU_EV_PROG,
            PWRU_EV_RETVAL,
            PWRU_EV_CB,
            PWRU_EV_SKB_DUMP,
            PWRU_EV_SHINFO_DUMP,
            PWRU_EV_TRACKED,
            PWRU_EV_BY_STACKID,
            PWRU_EV_FUNC_IP,
            PWRU_EV_SKB_DUMP_CUT,
            PWRU_EV_SHINFO_DUMP_CUT,
            PWRU_EV_PKT,
            PWRU_EV_PKT_UNAVAILABLE,
            PWRU_EV_METADATA,
        ),
    );
    check_enum(
        &btf,
        "pwru_config_flag",
        consts!(
            PWRU_CFG_FILTER_NETNS,
            PWRU_CFG_FILTER_MARK,
            PWRU_CFG_FILTER_IFINDEX,
            PWRU_CFG_FILTER_PCAP,
            PWRU_CFG_FILTER_TUNNEL_L2,
            PWRU_CFG_FILTER_TUNNEL_L3,
            PWRU_CFG_TRACK_SKB,
            PWRU_CFG_TRACK_HEAD,
            PWRU_CFG_TRACK_STACKID,
            PWRU_CFG_OUTPUT_META,
            PWRU_CFG_OUTPUT_TUPLE,
            PWRU_CFG_OUTPUT_TUNNEL,
            PWRU_CFG_OUTPUT_STACK,
            PWRU_CFG_OUTPUT_CALLER,
            PWRU_CFG_OUTPUT_CB,
            PWRU_CFG_OUTPUT_SKB,
            PWRU_CFG_OUTPUT_SHINFO,
            PWRU_CFG_OUTPUT_PKT,
            PWRU_CFG_FILTER_SKB_EXPR,
            PWRU_CFG_FILTER_XDP_EXPR,
            PWRU_CFG_OUTPUT_SKB_METADATA,
            PWRU_CFG_OUTPUT_XDP_METADATA,
            PWRU_CFG_PACKET_ID,
            PWRU_CFG_FILTER_PCAP_SKB,
            PWRU_CFG_FILTER_META_SKB,
        ),
    );
    check_enum(
        &btf,
        "pwru_packet_id",
        &[
            ("PWRU_ID_CPU_SHIFT", u64::from(pwru_ebpf::PWRU_ID_CPU_SHIFT)),
            ("PWRU_ID_SEQ_MASK", pwru_ebpf::PWRU_ID_SEQ_MASK),
        ],
    );
    check_enum(
        &btf,
        "pwru_filter_selector",
        consts!(
            PWRU_SEL_L2,
            PWRU_SEL_L3,
            PWRU_SEL_TUNNEL_L2,
            PWRU_SEL_TUNNEL_L3,
            PWRU_SEL_SKB_EXPR,
            PWRU_SEL_XDP_EXPR,
            PWRU_SEL_SKB_META,
            PWRU_SEL_XDP_META,
            PWRU_SEL_PCAP_SKB,
            PWRU_SEL_SKB_NETNS,
            PWRU_SEL_SKB_MARK,
            PWRU_SEL_SKB_IFINDEX,
            PWRU_SEL_COUNT,
        ),
    );
    check_enum(
        &btf,
        "pwru_metadata_max",
        &[("PWRU_METADATA_MAX", pwru_ebpf::PWRU_METADATA_MAX as u64)],
    );
    check_enum(
        &btf,
        "pwru_patch_marker",
        &[
            ("PWRU_PATCH_PROG_ID", pwru_ebpf::patch::PROG_ID),
            ("PWRU_PATCH_NAME_LO", pwru_ebpf::patch::NAME_LO),
            ("PWRU_PATCH_NAME_HI", pwru_ebpf::patch::NAME_HI),
        ],
    );
    // TRACEPOINTS against enum pwru_tracepoint: PWRU_TP_<NAME> is the id of each, and
    // PWRU_TP_MAX is one past the last.
    let mut tracepoints: Vec<(String, u64)> = pwru_ebpf::TRACEPOINTS
        .iter()
        .map(|&(id, _, name, _)| (format!("PWRU_TP_{}", name.to_uppercase()), id))
        .collect();
    tracepoints.push((
        "PWRU_TP_MAX".into(),
        pwru_ebpf::TRACEPOINTS.len() as u64 + 1,
    ));
    let refs: Vec<(&str, u64)> = tracepoints.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    check_enum(&btf, "pwru_tracepoint", &refs);
}

/// The maps, the config global and the filter stub that user space names exist in the object.
#[test]
fn map_global_and_stub_names_exist() {
    let obj = aya_obj::Object::parse(OBJECT).expect("the embedded object parses");
    for map in [
        pwru_ebpf::MAP_EVENTS,
        pwru_ebpf::MAP_RUNS,
        pwru_ebpf::MAP_DEPTH,
        pwru_ebpf::MAP_STACKS,
        pwru_ebpf::MAP_BPFMAP_ARGS,
        pwru_ebpf::MAP_FILTER_SETS,
    ] {
        assert!(
            obj.maps.contains_key(map),
            "no map {map} in the object (maps: {:?})",
            obj.maps.keys().collect::<Vec<_>>()
        );
    }
    let btf = Btf::from_elf(OBJECT).expect("the embedded object has a .BTF section");
    assert!(
        btf.find_by_name(Kind::Var, pwru_ebpf::CONFIG_GLOBAL)
            .is_some(),
        "no global {} in the object",
        pwru_ebpf::CONFIG_GLOBAL
    );
    let stub = btf
        .find_by_name(Kind::Func, pwru_ebpf::FILTER_STUB)
        .unwrap_or_else(|| panic!("no function {} in the object", pwru_ebpf::FILTER_STUB));
    let stub = btf.get(stub).expect("the stub's BTF");
    // A FUNC's vlen is its linkage: 1 is global.
    assert!(
        stub.vlen() == 1,
        "{} must be a global function (the kernel verifies it from its BTF signature)",
        pwru_ebpf::FILTER_STUB
    );
    assert!(
        obj.functions
            .values()
            .any(|f| f.name == pwru_ebpf::FILTER_STUB),
        "{} has no code in .text",
        pwru_ebpf::FILTER_STUB
    );
}

/// Every program name of `pwru_ebpf::program` and `TRACEPOINTS` is a program of the object,
/// and every program of the object is one of them.
#[test]
fn program_names_match_the_object() {
    use pwru_ebpf::program as p;
    let obj = aya_obj::Object::parse(OBJECT).expect("the embedded object parses");
    let mut listed: BTreeSet<String> = [
        p::KPROBE_STACKID,
        p::KPROBE_MULTI_STACKID,
        p::FENTRY_STACKID,
        p::TP_BTF_BASELINE,
        p::FEXIT_SKB_CLONE,
        p::FEXIT_SKB_COPY,
        p::FENTRY_KFREE_SKBMEM,
        p::FENTRY_SKB_FREE_HEAD,
        p::KPROBE_CLONE_ENTRY,
        p::KRETPROBE_CLONE_EXIT,
        p::KPROBE_KFREE_SKBMEM,
        p::KPROBE_SKB_FREE_HEAD,
        p::LIFETIME_TP_BTF_KFREE_SKB,
        p::LIFETIME_TP_BTF_CONSUME_SKB,
        p::LIFETIME_RAW_TP_KFREE_SKB,
        p::LIFETIME_RAW_TP_CONSUME_SKB,
        p::KPROBE_BPFMAP_UPDATE,
        p::KPROBE_BPFMAP_DELETE,
        p::KPROBE_BPFMAP_LOOKUP_ENTRY,
        p::KRETPROBE_BPFMAP_LOOKUP,
        p::KRETPROBE_BPFMAP_LOOKUP_ELEM,
        p::FENTRY_BPFMAP_UPDATE,
        p::FENTRY_BPFMAP_DELETE,
        p::FEXIT_BPFMAP_LOOKUP,
        p::FEXIT_BPFMAP_LOOKUP_ELEM,
    ]
    .into_iter()
    .chain(p::KPROBE_SKB)
    .chain(p::KPROBE_MULTI_SKB)
    .chain(p::FENTRY_SKB)
    .chain(p::BPF_PROG_TRACING)
    .map(String::from)
    .collect();
    for &(_, _, name, _) in pwru_ebpf::TRACEPOINTS {
        listed.insert(format!("{}{name}", p::TP_BTF_PREFIX));
        listed.insert(format!("{}{name}", p::RAW_TP_PREFIX));
    }
    let in_object: BTreeSet<String> = obj.programs.keys().cloned().collect();
    let only_listed: Vec<_> = listed.difference(&in_object).collect();
    let only_object: Vec<_> = in_object.difference(&listed).collect();
    assert!(
        only_listed.is_empty(),
        "named in pwru_ebpf but not programs of the object: {only_listed:?}"
    );
    assert!(
        only_object.is_empty(),
        "programs of the object that pwru_ebpf does not name: {only_object:?}"
    );
}

/// The 64-bit constants of `ld_imm64` instructions in the program `name`.
fn ld_imm64_values(obj: &aya_obj::Object, name: &str) -> Vec<u64> {
    let prog = obj
        .programs
        .get(name)
        .unwrap_or_else(|| panic!("no program {name}"));
    let insns = &obj.functions[&prog.function_key()].instructions;
    // BPF_LD | BPF_IMM | BPF_DW: the constant's low half here, the high half in the next slot.
    const LD_IMM64: u8 = 0x18;
    insns
        .windows(2)
        .filter(|w| w[0].code == LD_IMM64)
        .map(|w| u64::from(w[0].imm as u32) | (u64::from(w[1].imm as u32) << 32))
        .collect()
}

/// The loader patches `pwru_ebpf::patch` constants into the tc/XDP tracing programs: each
/// must be an `ld_imm64` of every one of them, and of no other program.
#[test]
fn patch_markers_are_in_the_tc_xdp_tracing_programs() {
    use pwru_ebpf::patch;
    let obj = aya_obj::Object::parse(OBJECT).expect("the embedded object parses");
    let markers = [patch::PROG_ID, patch::NAME_LO, patch::NAME_HI];
    for name in obj.programs.keys() {
        let values = ld_imm64_values(&obj, name);
        let tracing = pwru_ebpf::program::BPF_PROG_TRACING.contains(&name.as_str());
        for m in markers {
            let n = values.iter().filter(|&&v| v == m).count();
            if tracing {
                assert_eq!(n, 1, "program {name}: ld_imm64 {m:#x} found {n} times");
            } else {
                assert_eq!(n, 0, "program {name} loads the patch marker {m:#x}");
            }
        }
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
        "lifetime_tp_btf_kfree_skb",
        "lifetime_tp_btf_consume_skb",
        "lifetime_raw_tp_kfree_skb",
        "lifetime_raw_tp_consume_skb",
        "kprobe_bpfmap_lookup_entry",
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
