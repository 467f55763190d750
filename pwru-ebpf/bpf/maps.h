/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Every map of the object: the ring buffer, run counters, scratch slots for record building,
 * the stack trace map and the tracking maps. The loader and pwru-ebpf's MAP_* constants know
 * them by these names. Included once, in order, by pwru.bpf.c.
 */
#ifndef PWRU_MAPS_H
#define PWRU_MAPS_H

#define STACK_DEPTH 50

struct pwru_scratch {
	struct pwru_record_hdr hdr;
	struct pwru_event ev;
	/* skb text, shared-info text, packet bytes: each right after the previous one */
	char dump[PWRU_SKB_DUMP_MAX + PWRU_SHINFO_DUMP_MAX + PWRU_PKT_MAX];
	/* Zero bytes: puts the map operation record (built in the ring buffer, bpfmap.h) in BTF. */
	struct pwru_bpfmap_record bpfmap[0];
	/* Zero bytes: puts every enum of abi.h in the object's BTF (see abi.h). */
	struct pwru_abi abi[0];
};

/* The BTF anchor in pwru_scratch adds no bytes. */
_Static_assert(sizeof(struct pwru_scratch) == sizeof(struct pwru_record_hdr) + sizeof(struct pwru_event) +
					      PWRU_SKB_DUMP_MAX + PWRU_SHINFO_DUMP_MAX + PWRU_PKT_MAX,
	       "pwru_scratch: header, event, dumps and packet bytes only");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} pwru_events SEC(".maps");

/* Runs of the event programs by outcome (enum pwru_outcome), per CPU. Ring-full runs are the
 * lost records. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PWRU_OUT_MAX);
	__type(key, __u32); /* enum pwru_outcome (array keys must be plain u32 in BTF) */
	__type(value, __u64);
} pwru_runs SEC(".maps");

/*
 * Where records are built before bpf_ringbuf_output (too big for the stack): each run claims
 * a free slot, so that a run interrupting or preempting another on the same CPU (softirq over
 * process context, a program inside another, a task switch inside an fentry program) builds in
 * its own slot.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PWRU_SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct pwru_scratch);
} pwru_scratch SEC(".maps");

/* Per CPU: [PWRU_DEPTH_LEVEL] the mask of scratch slots in use; [PWRU_DEPTH_NESTED] runs
 * that claimed a slot while another run on the CPU held one. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pwru_depth SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, STACK_DEPTH * sizeof(__u64));
} pwru_stacks SEC(".maps");

/* Tracked skb addresses, and tracked skb->head (followed through clones). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} pwru_skbs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} pwru_heads SEC(".maps");

/* Stack key (see stack_key) -> the skb last seen on that stack, and back: functions without
 * an skb argument are linked to that skb. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} pwru_stackid_skb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} pwru_skb_stackid SEC(".maps");

/* ---- packet ids (PWRU_CFG_PACKET_ID; track.h says how they are given and ended) ---- */

/* The ids of a live skb. */
struct pwru_skb_ids {
	__u64 id;     /* this packet */
	__u64 parent; /* the packet it was cloned/copied from, 0 if none */
};

/* The first packet seen with a data buffer: clones share it. */
struct pwru_head_owner {
	__u64 id;  /* that packet's id */
	__u64 skb; /* its skb address */
};

/* skb address -> its ids, from the first match until the skb is freed. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct pwru_skb_ids);
} pwru_ids SEC(".maps");

/* skb->head -> the packet that owned the buffer first: how a clone seen only at tracepoints
 * finds its parent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct pwru_head_owner);
} pwru_head_ids SEC(".maps");

/* Per CPU: the last sequence number given out in a packet id of this CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pwru_id_seq SEC(".maps");

/*
 * [0] is 1 once anything was kept per skb or data buffer (a tracked skb or head, a stack
 * link, a packet id): set before the first such entry is written, never cleared. Until then
 * the lifetime programs, which run at every free and clone in the system whether or not the
 * skb matched, have nothing to forget or follow and skip their map lookups (a filter that
 * matches nothing costs them one load).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} pwru_kept SEC(".maps");

/* skb_clone/skb_copy argument saved by the kprobe for the kretprobe, by pid_tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u64);
} pwru_clone_args SEC(".maps");

/* A kprobe'd map lookup's arguments for its kretprobe (bpfmap.h), by pid_tgid. */
struct pwru_bpfmap_args {
	__u64 map;
	__u64 key;
	__u64 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct pwru_bpfmap_args);
} pwru_bpfmap_args SEC(".maps");

/*
 * Kernels from 7.x on type a direct load of an `unsigned char *` / `void *` field (skb->head,
 * xdp->data) as a pointer to untrusted memory, which cannot be passed where the filter's
 * u64 arguments expect a number. A round trip through map memory yields the same value as
 * a plain scalar (privileged programs may store pointers in maps).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pwru_scalar SEC(".maps");

#endif
