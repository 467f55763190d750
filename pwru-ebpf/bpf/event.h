/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Structures shared between the kernel programs and user space.
 *
 * Every struct here has a #[repr(C)] mirror of the same name in CamelCase in
 * pwru-ebpf/src/lib.rs (pwru_event -> PwruEvent). Keep both in step: a test compares
 * sizes and field offsets with this object's BTF. All fields are naturally aligned and
 * padding is explicit, so the layout is the same for clang (bpfel) and rustc (x86_64).
 */
#ifndef PWRU_EVENT_H
#define PWRU_EVENT_H

#include <linux/types.h>

/* ---- ring buffer records ------------------------------------------------------ */

/* Every record in the ring buffer starts with this header. */
struct pwru_record_hdr {
	__u16 kind;    /* enum pwru_record_kind */
	__u16 version; /* PWRU_RECORD_VERSION */
	__u32 len;     /* whole record in bytes, header included */
};

enum pwru_record_kind {
	/* pwru_record_hdr, pwru_event, then event.skb_dump_len bytes of skb text (BTF dump)
	 * and event.shinfo_dump_len bytes of skb_shared_info text. */
	PWRU_RECORD_EVENT = 1,
};

/* 2: pwru_event.check holds the record's check word (was padding in 1). */
#define PWRU_RECORD_VERSION 2

/*
 * The check word: the header and the event (PWRU_CHECK_WORDS little-endian 8-byte words,
 * with event.check read as 0) folded as c = (rotl64(c, 7) ^ w) * PWRU_CHECK_MUL from
 * PWRU_CHECK_SEED, then c ^ (c >> 32) truncated to 32 bits. User space recomputes it for every
 * record; a record another run wrote into while it was being built does not check.
 */
#define PWRU_CHECK_WORDS 31
#define PWRU_CHECK_SEED 0x7077727572656331ULL /* "pwrurec1" */
#define PWRU_CHECK_MUL 0x100000001b3ULL      /* FNV-1a 64-bit prime */

/*
 * Scratch slots per CPU, one per nesting level of pwru programs on that CPU: process
 * context, softirq, hardirq, NMI. A run finding every slot in use is counted as
 * PWRU_OUT_NESTED_TOO_DEEP and writes nothing.
 */
#define PWRU_SCRATCH_SLOTS 4

/* Keys of the per-CPU map pwru_depth (u64 values). */
#define PWRU_DEPTH_LEVEL 0  /* scratch slots in use now */
#define PWRU_DEPTH_NESTED 1 /* runs that built a record inside another run's */

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
	PWRU_OUT_MAX = 11,
};

/* Largest optional dumps appended to an event record (bytes, NUL included); the config's
 * dump_max lowers the bound at run time. */
#define PWRU_SKB_DUMP_MAX 4096
#define PWRU_SHINFO_DUMP_MAX 1024

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
#define PWRU_EV_META        (1u << 0)  /* netns, mark, ifindex, len, mtu, protocol, pkt_type */
#define PWRU_EV_TUPLE       (1u << 1)  /* tuple */
#define PWRU_EV_TUNNEL      (1u << 2)  /* tunnel (inner) tuple */
#define PWRU_EV_STACK       (1u << 3)  /* stack_id (>= 0) */
#define PWRU_EV_CALLER      (1u << 4)  /* caller */
#define PWRU_EV_DROP_REASON (1u << 5)  /* drop_reason */
#define PWRU_EV_PROG        (1u << 6)  /* prog_id, prog_name (tc/xdp tracing) */
#define PWRU_EV_RETVAL      (1u << 7)  /* retval (fexit) */
#define PWRU_EV_CB          (1u << 8)  /* cb */
#define PWRU_EV_SKB_DUMP    (1u << 9)  /* skb_dump_len bytes follow the event */
#define PWRU_EV_SHINFO_DUMP (1u << 10) /* shinfo_dump_len bytes follow the skb dump */
#define PWRU_EV_TRACKED     (1u << 11) /* passed because the skb/head/stack was tracked */
#define PWRU_EV_BY_STACKID  (1u << 12) /* skb found through the stack id (non-skb function) */
#define PWRU_EV_FUNC_IP     (1u << 13) /* addr came from bpf_get_func_ip (else regs ip) */
#define PWRU_EV_SKB_DUMP_CUT    (1u << 14) /* the skb text was cut at the dump bound */
#define PWRU_EV_SHINFO_DUMP_CUT (1u << 15) /* the shared-info text was cut at the dump bound */

/* Addresses and ports of one packet header stack. */
struct pwru_tuple {
	__u8 saddr[16];  /* IPv4 in the first 4 bytes, network order */
	__u8 daddr[16];
	__u16 sport;     /* host order */
	__u16 dport;     /* host order */
	__u16 l3_proto;  /* ETH_P_IP (0x0800) or ETH_P_IPV6 (0x86dd), host order */
	__u8 l4_proto;   /* IPPROTO_* */
	__u8 tcp_flags;  /* TCP header byte 13 (FIN=0x01 ... CWR=0x80) */
};

/* One hit of one program: 240 bytes. */
struct pwru_event {
	__u64 ts;        /* bpf_ktime_get_ns() */
	__u64 addr;      /* function address, or enum pwru_tracepoint for tracepoints */
	__u64 caller;    /* return address into the caller (PWRU_EV_CALLER) */
	__u64 skb;       /* struct sk_buff address (xdp_buff address for XDP) */
	__u64 skb_head;  /* skb->head */
	__u32 cpu;
	__u32 pid;       /* thread id */
	__u32 tgid;      /* process id */
	__u32 flags;     /* PWRU_EV_* */
	__u8 comm[16];
	__u8 kind;       /* enum pwru_probe_kind */
	__u8 pkt_type;   /* skb->pkt_type (PACKET_HOST ...) */
	__u16 protocol;  /* skb->protocol, host order */
	__u32 netns;     /* network namespace inode */
	__u32 mark;
	__u32 ifindex;
	__u32 len;       /* skb->len */
	__u32 mtu;       /* skb->dev->mtu */
	__u32 cb[5];     /* qdisc_skb_cb data (tc's __sk_buff.cb) */
	__s32 stack_id;  /* bpf_get_stackid() into pwru_stacks, < 0 on error */
	__u32 drop_reason; /* enum skb_drop_reason */
	__u32 prog_id;   /* traced tc/XDP program id */
	__u8 prog_name[16];
	__u64 retval;    /* fexit return value */
	struct pwru_tuple tuple;
	struct pwru_tuple tunnel;
	__u16 skb_dump_len;
	__u16 shinfo_dump_len;
	__u32 check;     /* check word over the header and this event (PWRU_CHECK_*) */
};

/* ---- configuration (read-only global `pwru_cfg`, set before load) ---------------- */

/* pwru_config.flags */
#define PWRU_CFG_FILTER_NETNS     (1u << 0)
#define PWRU_CFG_FILTER_MARK      (1u << 1)
#define PWRU_CFG_FILTER_IFINDEX   (1u << 2)
#define PWRU_CFG_FILTER_PCAP      (1u << 3)  /* selector 0 (L2) / 1 (L3) */
#define PWRU_CFG_FILTER_TUNNEL_L2 (1u << 4)  /* selector 2 on inner L2 */
#define PWRU_CFG_FILTER_TUNNEL_L3 (1u << 5)  /* selector 3 on inner L3 */
#define PWRU_CFG_TRACK_SKB        (1u << 6)  /* follow matched skb addresses */
#define PWRU_CFG_TRACK_HEAD       (1u << 7)  /* also follow skb->head (clones) */
#define PWRU_CFG_TRACK_STACKID    (1u << 8)  /* remember stack id -> skb */
#define PWRU_CFG_OUTPUT_META      (1u << 9)
#define PWRU_CFG_OUTPUT_TUPLE     (1u << 10)
#define PWRU_CFG_OUTPUT_TUNNEL    (1u << 11)
#define PWRU_CFG_OUTPUT_STACK     (1u << 12)
#define PWRU_CFG_OUTPUT_CALLER    (1u << 13)
#define PWRU_CFG_OUTPUT_CB        (1u << 14)
#define PWRU_CFG_OUTPUT_SKB       (1u << 15)
#define PWRU_CFG_OUTPUT_SHINFO    (1u << 16)

/* Filter dispatch selectors (first argument of pwru_filter). */
#define PWRU_SEL_L2 0
#define PWRU_SEL_L3 1
#define PWRU_SEL_TUNNEL_L2 2
#define PWRU_SEL_TUNNEL_L3 3

struct pwru_config {
	__u32 flags;     /* PWRU_CFG_* */
	__u32 netns;     /* inode, with PWRU_CFG_FILTER_NETNS */
	__u32 mark;      /* with PWRU_CFG_FILTER_MARK: (skb->mark & mark_mask) == mark */
	__u32 mark_mask;
	__u32 ifindex;   /* with PWRU_CFG_FILTER_IFINDEX */
	__u32 dump_max;  /* bytes per dump, NUL included (0: the compile-time maximum) */
};

#endif
