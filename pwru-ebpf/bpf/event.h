/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Structures shared between the kernel programs and user space (the numbers they carry are
 * in abi.h).
 *
 * Every struct here has a #[repr(C)] mirror of the same name in CamelCase in
 * pwru-ebpf/src/ (pwru_event -> PwruEvent, in event.rs). Keep both in step: a test compares
 * sizes and field offsets with this object's BTF. All fields are naturally aligned and
 * padding is explicit, so the layout is the same for clang (bpfel) and rustc (x86_64).
 */
#ifndef PWRU_EVENT_H
#define PWRU_EVENT_H

#include <linux/types.h>
#include "abi.h"

/* ---- ring buffer records ------------------------------------------------------ */

/* Every record in the ring buffer starts with this header. */
struct pwru_record_hdr {
	__u16 kind;    /* enum pwru_record_kind */
	__u16 version; /* PWRU_RECORD_VERSION */
	__u32 len;     /* whole record in bytes, header included */
};

/* ---- event ---------------------------------------------------------------------- */

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

/* One hit of one program: 304 bytes. */
struct pwru_event {
	__u64 ts;        /* bpf_ktime_get_ns() */
	__u64 addr;      /* function address, or enum pwru_tracepoint for tracepoints */
	__u64 caller;    /* return address into the caller (PWRU_EV_CALLER) */
	__u64 caller_next; /* tracepoints: the frame after caller, for when caller is dispatch glue */
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
	__u64 metadata[PWRU_METADATA_MAX]; /* PWRU_EV_METADATA: values of the metadata expressions */
	__u64 packet_id;        /* with PWRU_CFG_PACKET_ID: the packet's id (0: none), see track.h */
	__u64 parent_packet_id; /* the id of the packet this one was cloned/copied from (0: none) */
	__u16 skb_dump_len;
	__u16 shinfo_dump_len;
	__u16 pkt_len;   /* packet bytes following the dumps (PWRU_EV_PKT) */
	__u8 pkt_link;   /* enum pwru_pkt_link: where those bytes start */
	__u8 _pad0;
	__u32 pkt_wire_len; /* the packet's length from that start (linear and paged data) */
	__u32 check;     /* check word over the header and this event (PWRU_CHECK_*) */
};

/* ---- map operations ---------------------------------------------------------------- */

/* One lookup, update or delete of a BPF map by a traced tc/XDP program: 192 bytes. */
struct pwru_bpfmap {
	__u64 ts;        /* bpf_ktime_get_ns() */
	__u64 addr;      /* the map function's address */
	__u64 skb;       /* the skb last seen on this stack */
	__u32 cpu;
	__u32 pid;       /* thread id */
	__u32 map_id;
	__u32 key_size;  /* the map's key_size (key holds min(key_size, PWRU_BPFMAP_BYTES)) */
	__u32 value_size; /* the map's value_size */
	__u8 op;         /* enum pwru_bpfmap_op */
	__u8 kind;       /* enum pwru_probe_kind of the program that saw it */
	__u8 flags;      /* PWRU_BPFMAP_* */
	__u8 pad;
	__u8 map_name[16];
	__u8 key[PWRU_BPFMAP_BYTES];
	__u8 value[PWRU_BPFMAP_BYTES];
};

/* What the ring buffer holds for PWRU_RECORD_BPFMAP. */
struct pwru_bpfmap_record {
	struct pwru_record_hdr hdr;
	struct pwru_bpfmap op;
};

/* ---- configuration (read-only global `pwru_cfg`, set before load) ---------------- */

struct pwru_config {
	__u32 flags;     /* PWRU_CFG_* */
	__u32 netns;     /* inode, with PWRU_CFG_FILTER_NETNS */
	__u32 mark;      /* with PWRU_CFG_FILTER_MARK: (skb->mark & mark_mask) == mark */
	__u32 mark_mask;
	__u32 ifindex;   /* with PWRU_CFG_FILTER_IFINDEX */
	__u32 dump_max;  /* bytes per dump, NUL included (0: the compile-time maximum) */
	__u32 snaplen;   /* packet bytes per event with PWRU_CFG_OUTPUT_PKT (capped by PWRU_PKT_MAX) */
};

#endif
