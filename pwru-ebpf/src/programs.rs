//! The programs of the object by name, the tracepoints they cover, the filter stub the loader
//! replaces, and the constants the loader patches into the tc/XDP tracing programs.

/// Name of the filter stub the loader replaces with the compiled dispatch body.
pub const FILTER_STUB: &str = "pwru_filter";

/// Tracepoints with an skb argument that the object has programs for:
/// `(PWRU_TP_* id, category, name, 0-based position of the skb argument)`.
///
/// The BTF tracepoint program is named `tp_btf_<name>`, the raw one `raw_tp_<name>`.
pub const TRACEPOINTS: &[(u64, &str, &str, u8)] = &[
    (1, "net", "netif_receive_skb", 0),
    (2, "net", "net_dev_queue", 0),
    (3, "net", "net_dev_start_xmit", 0),
    (4, "net", "net_dev_xmit", 0),
    (5, "net", "netif_rx", 0),
    (6, "net", "napi_gro_receive_entry", 0),
    (7, "net", "napi_gro_frags_entry", 0),
    (8, "net", "netif_receive_skb_entry", 0),
    (9, "net", "netif_receive_skb_list_entry", 0),
    (10, "net", "netif_rx_entry", 0),
    (11, "skb", "kfree_skb", 0),
    (12, "skb", "consume_skb", 0),
    (13, "skb", "skb_copy_datagram_iovec", 0),
    (14, "qdisc", "qdisc_dequeue", 3),
    (15, "qdisc", "qdisc_enqueue", 2),
    (16, "sock", "sock_rcvqueue_full", 1),
    (17, "tcp", "tcp_retransmit_skb", 1),
    (18, "tcp", "tcp_send_reset", 1),
    (19, "tcp", "tcp_bad_csum", 0),
    (20, "udp", "udp_fail_queue_rcv_skb", 2),
    (21, "icmp", "icmp_send", 0),
    (22, "tcp", "tcp_probe", 1),
];

/// Whether object program `name` is an event program, one that counts each of its runs in
/// [`MAP_RUNS`](crate::MAP_RUNS) (entry programs of every backend, stack-id and tc/XDP tracing programs), as
/// opposed to the skb tracking programs (clone/copy following, `kfree_skbmem`) and the
/// `tp_btf_baseline` reference, which count nothing.
pub fn is_event_program(name: &str) -> bool {
    let prefixed = ["kprobe_skb_", "kprobe_multi_skb_", "fentry_skb_", "raw_tp_"]
        .iter()
        .any(|p| name.starts_with(p));
    let tracepoint = name.starts_with("tp_btf_") && name != "tp_btf_baseline";
    let named = matches!(name, "fentry_tc" | "fentry_xdp" | "fexit_xdp");
    // Map operation programs count every run; the lookup entry kprobe only keeps arguments.
    let bpfmap = name.contains("_bpfmap_") && name != "kprobe_bpfmap_lookup_entry";
    // The head-lifetime programs share the `*_skb_` prefix but only forget, never emit.
    let lifetime = name.ends_with("_skb_free_head");
    (prefixed && !lifetime) || tracepoint || named || bpfmap || name.ends_with("_stackid")
}

/// Program names, as the loader asks the object for them. Positions are 1-based: the program
/// for an skb in argument `n` is entry `n - 1` of the arrays.
pub mod program {
    /// kprobe entry programs, by skb argument position.
    pub const KPROBE_SKB: [&str; 5] = [
        "kprobe_skb_1",
        "kprobe_skb_2",
        "kprobe_skb_3",
        "kprobe_skb_4",
        "kprobe_skb_5",
    ];
    /// kprobe.multi entry programs (in `kprobe/` sections, loaded with expected attach type
    /// `BPF_TRACE_KPROBE_MULTI`), by skb argument position.
    pub const KPROBE_MULTI_SKB: [&str; 5] = [
        "kprobe_multi_skb_1",
        "kprobe_multi_skb_2",
        "kprobe_multi_skb_3",
        "kprobe_multi_skb_4",
        "kprobe_multi_skb_5",
    ];
    /// fentry entry programs, by skb argument position.
    pub const FENTRY_SKB: [&str; 5] = [
        "fentry_skb_1",
        "fentry_skb_2",
        "fentry_skb_3",
        "fentry_skb_4",
        "fentry_skb_5",
    ];
    /// kprobe program for functions without an skb argument (the skb of the stack).
    pub const KPROBE_STACKID: &str = "kprobe_stackid";
    /// kprobe.multi program for functions without an skb argument.
    pub const KPROBE_MULTI_STACKID: &str = "kprobe_multi_stackid";
    /// fentry program for functions without an skb argument.
    pub const FENTRY_STACKID: &str = "fentry_stackid";
    /// Prefix of the BTF tracepoint programs: `tp_btf_<name>` for each name of
    /// [`TRACEPOINTS`](crate::TRACEPOINTS).
    pub const TP_BTF_PREFIX: &str = "tp_btf_";
    /// Prefix of the raw tracepoint programs: `raw_tp_<name>`.
    pub const RAW_TP_PREFIX: &str = "raw_tp_";
    /// The empty BTF tracepoint program, reference point of cost measurements.
    pub const TP_BTF_BASELINE: &str = "tp_btf_baseline";
    /// skb tracking on fentry kernels: fexit on `skb_clone`.
    pub const FEXIT_SKB_CLONE: &str = "fexit_skb_clone";
    /// skb tracking on fentry kernels: fexit on `skb_copy`.
    pub const FEXIT_SKB_COPY: &str = "fexit_skb_copy";
    /// skb tracking on fentry kernels: end of an skb.
    pub const FENTRY_KFREE_SKBMEM: &str = "fentry_kfree_skbmem";
    /// skb tracking on fentry kernels: end of a data buffer.
    pub const FENTRY_SKB_FREE_HEAD: &str = "fentry_skb_free_head";
    /// skb tracking on kprobe kernels: entry of `skb_clone`/`skb_copy`.
    pub const KPROBE_CLONE_ENTRY: &str = "kprobe_clone_entry";
    /// skb tracking on kprobe kernels: return of `skb_clone`/`skb_copy`.
    pub const KRETPROBE_CLONE_EXIT: &str = "kretprobe_clone_exit";
    /// skb tracking on kprobe kernels: end of an skb.
    pub const KPROBE_KFREE_SKBMEM: &str = "kprobe_kfree_skbmem";
    /// skb tracking on kprobe kernels: end of a data buffer.
    pub const KPROBE_SKB_FREE_HEAD: &str = "kprobe_skb_free_head";
    /// Tracepoint kernels: forget a freed skb at `kfree_skb` when that tracepoint is not
    /// traced itself (BTF tracepoint program).
    pub const LIFETIME_TP_BTF_KFREE_SKB: &str = "lifetime_tp_btf_kfree_skb";
    /// As [`LIFETIME_TP_BTF_KFREE_SKB`], at `consume_skb`.
    pub const LIFETIME_TP_BTF_CONSUME_SKB: &str = "lifetime_tp_btf_consume_skb";
    /// As [`LIFETIME_TP_BTF_KFREE_SKB`], raw tracepoint program.
    pub const LIFETIME_RAW_TP_KFREE_SKB: &str = "lifetime_raw_tp_kfree_skb";
    /// As [`LIFETIME_TP_BTF_CONSUME_SKB`], raw tracepoint program.
    pub const LIFETIME_RAW_TP_CONSUME_SKB: &str = "lifetime_raw_tp_consume_skb";
    /// fentry on a loaded tc program.
    pub const FENTRY_TC: &str = "fentry_tc";
    /// fentry on a loaded XDP program.
    pub const FENTRY_XDP: &str = "fentry_xdp";
    /// fexit on a loaded XDP program.
    pub const FEXIT_XDP: &str = "fexit_xdp";
    /// Map operations (kprobe and kprobe-multi backends): update at entry.
    pub const KPROBE_BPFMAP_UPDATE: &str = "kprobe_bpfmap_update";
    /// Map operations: delete at entry.
    pub const KPROBE_BPFMAP_DELETE: &str = "kprobe_bpfmap_delete";
    /// Map operations: a lookup's arguments at entry, for its kretprobe (counts no run).
    pub const KPROBE_BPFMAP_LOOKUP_ENTRY: &str = "kprobe_bpfmap_lookup_entry";
    /// Map operations: return of a lookup function that returns the value.
    pub const KRETPROBE_BPFMAP_LOOKUP: &str = "kretprobe_bpfmap_lookup";
    /// Map operations: return of `__htab_map_lookup_elem` (returns the hash element).
    pub const KRETPROBE_BPFMAP_LOOKUP_ELEM: &str = "kretprobe_bpfmap_lookup_elem";
    /// Map operations (fentry backend): update at entry.
    pub const FENTRY_BPFMAP_UPDATE: &str = "fentry_bpfmap_update";
    /// Map operations (fentry backend): delete at entry.
    pub const FENTRY_BPFMAP_DELETE: &str = "fentry_bpfmap_delete";
    /// Map operations (fentry backend): return of a lookup function that returns the value.
    pub const FEXIT_BPFMAP_LOOKUP: &str = "fexit_bpfmap_lookup";
    /// Map operations (fentry backend): return of `__htab_map_lookup_elem`.
    pub const FEXIT_BPFMAP_LOOKUP_ELEM: &str = "fexit_bpfmap_lookup_elem";
    /// The programs tracing loaded tc/XDP programs, into which the loader patches the
    /// [`patch`](crate::patch) constants.
    pub const BPF_PROG_TRACING: [&str; 3] = [FENTRY_TC, FENTRY_XDP, FEXIT_XDP];
}

/// The 64-bit constants (`ld_imm64`) of the tc/XDP tracing programs
/// ([`program::BPF_PROG_TRACING`]) that the loader replaces, per traced program, with that
/// program's id and name (`enum pwru_patch_marker` in `bpf/abi.h`).
pub mod patch {
    /// Replaced with the traced program's id (`"PWRUPROG"` in ASCII).
    pub const PROG_ID: u64 = 0x5057_5255_5052_4f47;
    /// Replaced with bytes 0..8 of the traced program's name (`"PWRUNAM0"`).
    pub const NAME_LO: u64 = 0x5057_5255_4e41_4d30;
    /// Replaced with bytes 8..16 of the traced program's name (`"PWRUNAM1"`).
    pub const NAME_HI: u64 = 0x5057_5255_4e41_4d31;
}
