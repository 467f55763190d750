/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Every number the kernel programs share with user space, as enums.
 *
 * Enums rather than #defines so that the numbers are in the compiled object's BTF, under
 * their names: pwru-ebpf's Rust constants are checked against them by a test that reads the
 * shipped object (pwru-core/tests/btf_abi_mirrors.rs). clang emits only the types something
 * uses, so `struct pwru_abi` below names each enum and the scratch map's value type holds a
 * zero-length array of it (see maps.h): the enums reach BTF without a byte of data.
 */
#ifndef PWRU_ABI_H
#define PWRU_ABI_H

/* ---- ring buffer records ------------------------------------------------------ */

enum pwru_record_kind {
	/* pwru_record_hdr, pwru_event, then event.skb_dump_len bytes of skb text (BTF dump),
	 * event.shinfo_dump_len bytes of skb_shared_info text and event.pkt_len packet bytes. */
	PWRU_RECORD_EVENT = 1,
	/* pwru_record_hdr, then pwru_bpfmap: one map operation of a traced tc/XDP program
	 * (--output-bpfmap). Reserved in the ring buffer (no scratch slot, no check word: the
	 * reservation is the run's own). */
	PWRU_RECORD_BPFMAP = 2,
};

enum pwru_record_version {
	/* 2: pwru_event.check holds the record's check word (was padding in 1).
	 * 4: pwru_event.metadata (skb/xdp metadata expressions) before the dump lengths;
	 *    pwru_event.packet_id and parent_packet_id after the metadata;
	 *    pwru_event.pkt_len/pkt_link/pkt_wire_len, packet bytes after the dumps.
	 * 5: the check word is folded in PWRU_CHECK_LANES interleaved lanes. */
	PWRU_RECORD_VERSION = 5,
};

/*
 * The check word: the header and the event (PWRU_CHECK_WORDS little-endian 8-byte words,
 * with event.check read as 0) folded in PWRU_CHECK_LANES lanes: word i goes into lane
 * i % PWRU_CHECK_LANES as c = (rotl64(c, 7) ^ w) * PWRU_CHECK_MUL, lane k starting from
 * PWRU_CHECK_SEED ^ k; the lanes are then folded the same way into lane 0's value, and the
 * result is c ^ (c >> 32) truncated to 32 bits. Lanes, because one fold is a chain of
 * dependent multiplies: four independent chains let the CPU overlap them (about 3x faster on
 * both sides). User space recomputes it for every record; a record another run wrote into
 * while it was being built does not check.
 */
enum pwru_check {
	PWRU_CHECK_WORDS = 39, /* (8 + sizeof(struct pwru_event)) / 8 */
	PWRU_CHECK_LANES = 4,
	PWRU_CHECK_SEED = 0x7077727572656331ULL, /* "pwrurec1" */
	PWRU_CHECK_MUL = 0x100000001b3ULL,       /* FNV-1a 64-bit prime */
};

/* Largest optional dumps appended to an event record (bytes, NUL included); the config's
 * dump_max lowers the bound at run time. */
enum pwru_dump_max {
	PWRU_SKB_DUMP_MAX = 4096,
	PWRU_SHINFO_DUMP_MAX = 1024,
};

/* Largest number of packet bytes appended to an event (the config's snaplen lowers it). */
enum pwru_pkt_max {
	PWRU_PKT_MAX = 4096,
};

/* pwru_event.pkt_link: where the captured packet bytes start. */
enum pwru_pkt_link {
	PWRU_PKT_LINK_NONE = 0,     /* no bytes */
	PWRU_PKT_LINK_ETHERNET = 1, /* at the MAC header (set, and before the network header) */
	PWRU_PKT_LINK_RAW_IP = 2,   /* at the network header (IPv4 or IPv6) */
};

/* ---- per-CPU record building and run counters ----------------------------------- */

/*
 * Scratch slots per CPU, claimed atomically by each run that builds a record: enough for
 * process context, softirq, hardirq and NMI nesting on one CPU (and tasks preempted inside an
 * fentry program). A run finding every slot in use is counted as
 * PWRU_OUT_NESTED_TOO_DEEP and writes nothing.
 */
enum pwru_scratch_slots {
	PWRU_SCRATCH_SLOTS = 4,
};

/* Keys of the per-CPU map pwru_depth (u64 values). */
enum pwru_depth_key {
	PWRU_DEPTH_LEVEL = 0,  /* mask of the scratch slots in use now (bit i: slot i) */
	PWRU_DEPTH_NESTED = 1, /* runs that built a record inside another run's */
};

/*
 * How each run of an event program ended: index into the per-CPU counters `pwru_runs`.
 * Every run of every event program increments exactly one of them.
 */
enum pwru_outcome {
	PWRU_OUT_EMITTED = 0,         /* record written to the ring buffer */
	PWRU_OUT_RING_FULL = 1,       /* record built, ring buffer full: lost */
	PWRU_OUT_NULL_SKB = 2,        /* the skb (xdp_buff) argument was NULL */
	PWRU_OUT_FILTER_NETNS = 3,    /* filtered out by --filter-netns */
	PWRU_OUT_FILTER_MARK = 4,     /* filtered out by --filter-mark */
	PWRU_OUT_FILTER_IFINDEX = 5,  /* filtered out by --filter-ifname */
	PWRU_OUT_FILTER_PCAP = 6,     /* filtered out by the pcap expression */
	PWRU_OUT_FILTER_TUNNEL = 7,   /* filtered out by the tunnel (inner) pcap expression */
	PWRU_OUT_NESTED_TOO_DEEP = 8, /* every scratch slot of this CPU in use */
	PWRU_OUT_NO_SCRATCH = 9,      /* a per-CPU map lookup failed (not expected) */
	PWRU_OUT_NO_STACK_SKB = 10,   /* non-skb function: no skb known for this stack */
	PWRU_OUT_FILTER_EXPR = 11,    /* filtered out by the skb/xdp expression */
	PWRU_OUT_OWN_MAP = 12,        /* map operation on one of pwru's own maps: not reported */
	PWRU_OUT_MAX = 13,
};

/* ---- event ---------------------------------------------------------------------- */

/* Which kind of program produced the event. */
enum pwru_probe_kind {
	PWRU_KIND_KPROBE = 1,
	PWRU_KIND_KPROBE_MULTI = 2,
	PWRU_KIND_FENTRY = 3,
	PWRU_KIND_FEXIT = 4,
	PWRU_KIND_TRACEPOINT = 5,     /* tp_btf */
	PWRU_KIND_RAW_TRACEPOINT = 6, /* raw_tp, same tracepoint ids */
	PWRU_KIND_TC = 7,             /* fentry on a loaded tc BPF program */
	PWRU_KIND_XDP = 8,            /* fentry on a loaded XDP BPF program */
	PWRU_KIND_XDP_EXIT = 9,       /* fexit on a loaded XDP BPF program (retval valid) */
};

/* Tracepoint ids (pwru_event.addr when kind is TRACEPOINT or RAW_TRACEPOINT). */
enum pwru_tracepoint {
	PWRU_TP_NETIF_RECEIVE_SKB = 1,
	PWRU_TP_NET_DEV_QUEUE = 2,
	PWRU_TP_NET_DEV_START_XMIT = 3,
	PWRU_TP_NET_DEV_XMIT = 4,
	PWRU_TP_NETIF_RX = 5,
	PWRU_TP_NAPI_GRO_RECEIVE_ENTRY = 6,
	PWRU_TP_NAPI_GRO_FRAGS_ENTRY = 7,
	PWRU_TP_NETIF_RECEIVE_SKB_ENTRY = 8,
	PWRU_TP_NETIF_RECEIVE_SKB_LIST_ENTRY = 9,
	PWRU_TP_NETIF_RX_ENTRY = 10,
	PWRU_TP_KFREE_SKB = 11,
	PWRU_TP_CONSUME_SKB = 12,
	PWRU_TP_SKB_COPY_DATAGRAM_IOVEC = 13,
	PWRU_TP_QDISC_DEQUEUE = 14,
	PWRU_TP_QDISC_ENQUEUE = 15,
	PWRU_TP_SOCK_RCVQUEUE_FULL = 16,
	PWRU_TP_TCP_RETRANSMIT_SKB = 17,
	PWRU_TP_TCP_SEND_RESET = 18,
	PWRU_TP_TCP_BAD_CSUM = 19,
	PWRU_TP_UDP_FAIL_QUEUE_RCV_SKB = 20,
	PWRU_TP_ICMP_SEND = 21,
	PWRU_TP_TCP_PROBE = 22,
	PWRU_TP_MAX = 23,
};

/* pwru_event.flags: which optional parts are valid. */
enum pwru_event_flag {
	PWRU_EV_META = 1u << 0,             /* netns, mark, ifindex, len, mtu, protocol, pkt_type */
	PWRU_EV_TUPLE = 1u << 1,            /* tuple */
	PWRU_EV_TUNNEL = 1u << 2,           /* tunnel (inner) tuple */
	PWRU_EV_STACK = 1u << 3,            /* stack_id (>= 0) */
	PWRU_EV_CALLER = 1u << 4,           /* caller */
	PWRU_EV_DROP_REASON = 1u << 5,      /* drop_reason */
	PWRU_EV_PROG = 1u << 6,             /* prog_id, prog_name (tc/xdp tracing) */
	PWRU_EV_RETVAL = 1u << 7,           /* retval (fexit) */
	PWRU_EV_CB = 1u << 8,               /* cb */
	PWRU_EV_SKB_DUMP = 1u << 9,         /* skb_dump_len bytes follow the event */
	PWRU_EV_SHINFO_DUMP = 1u << 10,     /* shinfo_dump_len bytes follow the skb dump */
	PWRU_EV_TRACKED = 1u << 11,         /* passed because the skb/head/stack was tracked */
	PWRU_EV_BY_STACKID = 1u << 12,      /* skb found through the stack id (non-skb function) */
	PWRU_EV_FUNC_IP = 1u << 13,         /* addr came from bpf_get_func_ip (else regs ip) */
	PWRU_EV_SKB_DUMP_CUT = 1u << 14,    /* the skb text was cut at the dump bound */
	PWRU_EV_SHINFO_DUMP_CUT = 1u << 15, /* the shared-info text was cut at the dump bound */
	PWRU_EV_PKT = 1u << 16,             /* pkt_len packet bytes follow the dumps */
	PWRU_EV_PKT_UNAVAILABLE = 1u << 17, /* packet bytes asked for but unreadable: none follow */
	PWRU_EV_METADATA = 1u << 18,        /* metadata: the skb (xdp) metadata expressions' values */
};

/* ---- map operations (pwru_bpfmap) ----------------------------------------------- */

/* pwru_bpfmap.op */
enum pwru_bpfmap_op {
	PWRU_BPFMAP_LOOKUP = 1,
	PWRU_BPFMAP_UPDATE = 2,
	PWRU_BPFMAP_DELETE = 3,
};

/* pwru_bpfmap.flags */
enum pwru_bpfmap_flag {
	PWRU_BPFMAP_HAS_VALUE = 1u << 0, /* value holds bytes (update; lookup that found one) */
	PWRU_BPFMAP_KEY_CUT = 1u << 1,   /* key_size > PWRU_BPFMAP_BYTES: key holds the first ones */
	PWRU_BPFMAP_VALUE_CUT = 1u << 2, /* likewise for the value */
};

/* Key and value bytes kept per operation. */
enum pwru_bpfmap_bytes {
	PWRU_BPFMAP_BYTES = 64,
};

/* ---- configuration (read-only global `pwru_cfg`, set before load) ---------------- */

/* pwru_config.flags */
enum pwru_config_flag {
	PWRU_CFG_FILTER_NETNS = 1u << 0,
	PWRU_CFG_FILTER_MARK = 1u << 1,
	PWRU_CFG_FILTER_IFINDEX = 1u << 2,
	PWRU_CFG_FILTER_PCAP = 1u << 3,      /* selector 0 (L2) / 1 (L3) */
	PWRU_CFG_FILTER_TUNNEL_L2 = 1u << 4, /* selector 2 on inner L2 */
	PWRU_CFG_FILTER_TUNNEL_L3 = 1u << 5, /* selector 3 on inner L3 */
	PWRU_CFG_TRACK_SKB = 1u << 6,        /* follow matched skb addresses */
	PWRU_CFG_TRACK_HEAD = 1u << 7,       /* also follow skb->head (clones) */
	PWRU_CFG_TRACK_STACKID = 1u << 8,    /* remember stack id -> skb */
	PWRU_CFG_OUTPUT_META = 1u << 9,
	PWRU_CFG_OUTPUT_TUPLE = 1u << 10,
	PWRU_CFG_OUTPUT_TUNNEL = 1u << 11,
	PWRU_CFG_OUTPUT_STACK = 1u << 12,
	PWRU_CFG_OUTPUT_CALLER = 1u << 13,
	PWRU_CFG_OUTPUT_CB = 1u << 14,
	PWRU_CFG_OUTPUT_SKB = 1u << 15,
	PWRU_CFG_OUTPUT_SHINFO = 1u << 16,
	PWRU_CFG_OUTPUT_PKT = 1u << 17,      /* append up to snaplen packet bytes */
	PWRU_CFG_FILTER_SKB_EXPR = 1u << 18,     /* selector PWRU_SEL_SKB_EXPR on the skb */
	PWRU_CFG_FILTER_XDP_EXPR = 1u << 19,     /* selector PWRU_SEL_XDP_EXPR on the xdp_buff */
	PWRU_CFG_OUTPUT_SKB_METADATA = 1u << 20, /* selectors PWRU_SEL_SKB_META + 0..3 */
	PWRU_CFG_OUTPUT_XDP_METADATA = 1u << 21, /* selectors PWRU_SEL_XDP_META + 0..3 */
	PWRU_CFG_PACKET_ID = 1u << 22,       /* assign packet ids (pwru_event.packet_id) */
	PWRU_CFG_FILTER_PCAP_SKB = 1u << 23, /* untyped programs: selector PWRU_SEL_PCAP_SKB */
	PWRU_CFG_FILTER_META_SKB = 1u << 24, /* untyped programs: PWRU_SEL_SKB_NETNS/MARK/IFINDEX */
};

/*
 * Packet ids (pwru_event.packet_id): the CPU that assigned the id in the bits from
 * PWRU_ID_CPU_SHIFT up, that CPU's sequence number (from 1) below, so that CPUs never need a
 * shared counter and no id is 0 (0 means "none").
 */
enum pwru_packet_id {
	PWRU_ID_CPU_SHIFT = 48,
	PWRU_ID_SEQ_MASK = (1ULL << 48) - 1,
};

/*
 * Filter dispatch selectors (first argument of pwru_filter). The pcap ones take packet
 * bytes; the expression ones take the skb (xdp_buff) address and return 1/0 (EXPR) or the
 * 64-bit value of metadata expression i (META + i).
 */
enum pwru_filter_selector {
	PWRU_SEL_L2 = 0,
	PWRU_SEL_L3 = 1,
	PWRU_SEL_TUNNEL_L2 = 2,
	PWRU_SEL_TUNNEL_L3 = 3,
	PWRU_SEL_SKB_EXPR = 4,
	PWRU_SEL_XDP_EXPR = 5,
	PWRU_SEL_SKB_META = 6,  /* 6..9 */
	PWRU_SEL_XDP_META = 10, /* 10..13 */
	PWRU_SEL_PCAP_SKB = 14, /* the skb's address: reads its header fields, then L2 or L3 */
	PWRU_SEL_SKB_NETNS = 15,   /* the skb's address: returns its netns inode */
	PWRU_SEL_SKB_MARK = 16,    /* the skb's address: returns skb->mark */
	PWRU_SEL_SKB_IFINDEX = 17, /* the skb's address: returns skb->dev->ifindex */
	PWRU_SEL_COUNT = 18,
};

/* Metadata expressions per event (pwru's limit). */
enum pwru_metadata_max {
	PWRU_METADATA_MAX = 4,
};

/* ---- tc/XDP tracing: constants the loader patches --------------------------------- */

/*
 * The tc/XDP tracing programs load these 64-bit constants (ld_imm64); the loader replaces
 * them per traced program with its id and its name (16 bytes in two immediates). Macros
 * because inline asm needs them as text (entry_bpf_prog.h); enum pwru_patch_marker puts the
 * same numbers in BTF.
 */
#define PWRU_MAGIC_PROG_ID 0x5057525550524f47 /* "PWRUPROG" */
#define PWRU_MAGIC_NAME_LO 0x505752554e414d30 /* "PWRUNAM0" */
#define PWRU_MAGIC_NAME_HI 0x505752554e414d31 /* "PWRUNAM1" */

enum pwru_patch_marker {
	PWRU_PATCH_PROG_ID = PWRU_MAGIC_PROG_ID,
	PWRU_PATCH_NAME_LO = PWRU_MAGIC_NAME_LO,
	PWRU_PATCH_NAME_HI = PWRU_MAGIC_NAME_HI,
};

/* ---- the BTF anchor --------------------------------------------------------------- */

/* Never instantiated: one member per enum above, so that every enum lands in BTF. */
struct pwru_abi {
	enum pwru_record_kind record_kind;
	enum pwru_record_version record_version;
	enum pwru_check check;
	enum pwru_dump_max dump_max;
	enum pwru_pkt_max pkt_max;
	enum pwru_pkt_link pkt_link;
	enum pwru_scratch_slots scratch_slots;
	enum pwru_depth_key depth_key;
	enum pwru_outcome outcome;
	enum pwru_probe_kind probe_kind;
	enum pwru_tracepoint tracepoint;
	enum pwru_event_flag event_flag;
	enum pwru_config_flag config_flag;
	enum pwru_filter_selector filter_selector;
	enum pwru_metadata_max metadata_max;
	enum pwru_patch_marker patch_marker;
	enum pwru_packet_id packet_id;
	enum pwru_bpfmap_op bpfmap_op;
	enum pwru_bpfmap_flag bpfmap_flag;
	enum pwru_bpfmap_bytes bpfmap_bytes;
};

#endif
