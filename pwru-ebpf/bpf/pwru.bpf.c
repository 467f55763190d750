/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * pwru-rs kernel programs: one entry program per (backend, skb argument position), the
 * tracepoint set, tracking helpers and tc/XDP tracing programs. All shared logic is
 * inlined; the only function in .text is the filter stub pwru_filter, which the loader
 * replaces with the compiled filter dispatch body (it must stay the last and only .text
 * function).
 */
#include <linux/bpf.h>
#include "kernel.h"
#include <bpf/bpf_helpers.h>
/* kernel.h defines pt_regs with the kernel's register names */
#define __VMLINUX_H__
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "event.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

typedef _Bool bool;
#define true 1
#define false 0

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define VXLAN_PORT 4789
#define VXLAN_LINUX_PORT 8472
#define GENEVE_PORT 6081
#define STACK_DEPTH 50

/* ---- configuration and maps ------------------------------------------------------ */

const volatile struct pwru_config pwru_cfg = {};

#define CFG(bit) (pwru_cfg.flags & PWRU_CFG_##bit)

struct pwru_scratch {
	struct pwru_record_hdr hdr;
	struct pwru_event ev;
	char dump[PWRU_SKB_DUMP_MAX + PWRU_SHINFO_DUMP_MAX];
};

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
 * Where records are built before bpf_ringbuf_output (too big for the stack): one slot per
 * nesting level, so that a run interrupting another on the same CPU (softirq over process
 * context, an fentry or tracepoint program inside another) builds in its own slot.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PWRU_SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct pwru_scratch);
} pwru_scratch SEC(".maps");

/* Per CPU: [PWRU_DEPTH_LEVEL] scratch slots in use (the current nesting level of record
 * building); [PWRU_DEPTH_NESTED] runs that built their record while another run on the CPU
 * was building one (in slot 1 or above). */
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

/* skb_clone/skb_copy argument saved by the kprobe for the kretprobe, by pid_tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u64);
} pwru_clone_args SEC(".maps");

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

static __always_inline __u64 as_scalar(__u64 v)
{
	__u32 zero = 0;
	volatile __u64 *slot = bpf_map_lookup_elem(&pwru_scalar, &zero);
	if (!slot)
		return 0;
	*slot = v;
	return *slot;
}

#define SKB_HEAD(typed, skb) ((typed) ? as_scalar((__u64)(skb)->head) : (__u64)BPF_CORE_READ(skb, head))

/* ---- the filter stub ----------------------------------------------------------------- */

/*
 * Replaced by the loader with the compiled dispatch body. Global (verified once from its
 * BTF signature, hence u64 arguments), noinline, and with a body that depends on every
 * argument so that no call site can be folded away.
 */
__noinline int pwru_filter(__u64 which, __u64 data, __u64 data_end)
{
	return data < data_end + which;
}

/* ---- field access -------------------------------------------------------------------- */

/*
 * BTF-typed programs (tp_btf, fentry) read kernel memory with direct loads the verifier
 * turns into fault-safe loads; the others go through bpf_probe_read_kernel. `typed` is a
 * compile-time constant in every caller, so only one branch is emitted.
 */
#define RD(typed, src, a) ((typed) ? (src)->a : BPF_CORE_READ(src, a))
#define RD2(typed, src, a, b) ((typed) ? (src)->a->b : BPF_CORE_READ(src, a, b))

struct probe_info {
	__u64 addr;
	__u64 caller;
	__u8 kind;
	__u8 typed;
	__u32 evflags;
	__u32 drop_reason;
	__u64 retval;
};

static __always_inline __u32 skb_netns(struct sk_buff *skb, bool typed)
{
	struct net_device *dev = RD(typed, skb, dev);
	__u32 inum = 0;
	if (dev)
		inum = RD2(typed, dev, nd_net.net, ns.inum);
	if (!inum) {
		struct sock *sk = RD(typed, skb, sk);
		if (sk)
			inum = RD2(typed, sk, __sk_common.skc_net.net, ns.inum);
	}
	return inum;
}

static __always_inline __u32 skb_ifindex(struct sk_buff *skb, bool typed)
{
	struct net_device *dev = RD(typed, skb, dev);
	return dev ? RD(typed, dev, ifindex) : 0;
}

static __always_inline bool mac_header_set(__u16 mac)
{
	return mac != (__u16)~0U;
}

/* ---- packet parsing (reads through bpf_probe_read_kernel, any program type) ------ */

/* Fills t from the IP header at l3; returns the transport header address or 0. */
static __always_inline __u64 parse_l3(__u64 l3, __u64 end, struct pwru_tuple *t)
{
	__u8 b[40];
	if (!l3 || l3 >= end || bpf_probe_read_kernel(b, sizeof(b), (void *)l3))
		return 0;
	__u8 ver = b[0] >> 4;
	__u64 l4;
	if (ver == 4) {
		t->l3_proto = ETH_P_IP;
		t->l4_proto = b[9];
		__builtin_memcpy(t->saddr, &b[12], 4);
		__builtin_memcpy(t->daddr, &b[16], 4);
		l4 = l3 + (b[0] & 0x0f) * 4;
	} else if (ver == 6) {
		t->l3_proto = ETH_P_IPV6;
		t->l4_proto = b[6];
		__builtin_memcpy(t->saddr, &b[8], 16);
		__builtin_memcpy(t->daddr, &b[24], 16);
		l4 = l3 + 40;
	} else {
		return 0;
	}
	if (t->l4_proto == IPPROTO_TCP || t->l4_proto == IPPROTO_UDP) {
		__u8 p[14];
		if (!bpf_probe_read_kernel(p, sizeof(p), (void *)l4)) {
			t->sport = ((__u16)p[0] << 8) | p[1];
			t->dport = ((__u16)p[2] << 8) | p[3];
			if (t->l4_proto == IPPROTO_TCP)
				t->tcp_flags = p[13];
		}
	}
	return l4;
}

/* Inner Ethernet header of a VXLAN/Geneve packet whose IP header is at l3, or 0. */
static __always_inline __u64 tunnel_inner_l2(__u64 l3, __u64 end)
{
	struct pwru_tuple t = {};
	__u64 l4 = parse_l3(l3, end, &t);
	if (!l4 || t.l4_proto != IPPROTO_UDP)
		return 0;
	if (t.dport == VXLAN_PORT || t.dport == VXLAN_LINUX_PORT)
		return l4 + 8 + 8;
	if (t.dport == GENEVE_PORT) {
		__u8 optlen = 0;
		if (bpf_probe_read_kernel(&optlen, 1, (void *)(l4 + 8)))
			return 0;
		return l4 + 8 + 8 + (optlen & 0x3f) * 4;
	}
	return 0;
}

/* Inner IP header after the inner Ethernet header, or 0 if it is not IPv4/IPv6. */
static __always_inline __u64 tunnel_inner_l3(__u64 inner_l2)
{
	__u8 et[2];
	if (bpf_probe_read_kernel(et, 2, (void *)(inner_l2 + 12)))
		return 0;
	__u16 proto = ((__u16)et[0] << 8) | et[1];
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return 0;
	return inner_l2 + 14;
}

struct skb_data {
	__u64 head;
	__u64 end; /* head + tail: end of linear data */
	__u16 mac;
	__u16 nh;
};

static __always_inline void skb_data(struct sk_buff *skb, bool typed, struct skb_data *d)
{
	d->head = SKB_HEAD(typed, skb);
	d->end = d->head + RD(typed, skb, tail);
	d->mac = RD(typed, skb, mac_header);
	d->nh = RD(typed, skb, network_header);
}

static __always_inline __u64 skb_l3(const struct skb_data *d)
{
	return d->nh == (__u16)~0U ? 0 : d->head + d->nh;
}

/* ---- filters, cheapest first ------------------------------------------------------- */

/* The filters' verdict: FILTER_PASS, or the PWRU_OUT_FILTER_* outcome of the first that refused. */
#define FILTER_PASS PWRU_OUT_EMITTED

static __always_inline __u32 filter_skb(struct sk_buff *skb, bool typed)
{
	if (CFG(FILTER_NETNS) && skb_netns(skb, typed) != pwru_cfg.netns)
		return PWRU_OUT_FILTER_NETNS;
	if (CFG(FILTER_MARK) && (RD(typed, skb, mark) & pwru_cfg.mark_mask) != pwru_cfg.mark)
		return PWRU_OUT_FILTER_MARK;
	if (CFG(FILTER_IFINDEX) && skb_ifindex(skb, typed) != pwru_cfg.ifindex)
		return PWRU_OUT_FILTER_IFINDEX;
	if (CFG(FILTER_PCAP) || CFG(FILTER_TUNNEL_L2) || CFG(FILTER_TUNNEL_L3)) {
		struct skb_data d;
		skb_data(skb, typed, &d);
		if (CFG(FILTER_PCAP)) {
			int ok;
			if (mac_header_set(d.mac))
				ok = pwru_filter(PWRU_SEL_L2, d.head + d.mac, d.end);
			else
				ok = pwru_filter(PWRU_SEL_L3, d.head + d.nh, d.end);
			if (!ok)
				return PWRU_OUT_FILTER_PCAP;
		}
		if (CFG(FILTER_TUNNEL_L2) || CFG(FILTER_TUNNEL_L3)) {
			__u64 inner = tunnel_inner_l2(skb_l3(&d), d.end);
			/* Packets that are not tunnelled pass the tunnel filters (as pwru). */
			if (inner) {
				if (CFG(FILTER_TUNNEL_L2) && !pwru_filter(PWRU_SEL_TUNNEL_L2, inner, d.end))
					return PWRU_OUT_FILTER_TUNNEL;
				if (CFG(FILTER_TUNNEL_L3)) {
					__u64 inner3 = tunnel_inner_l3(inner);
					if (!inner3 || !pwru_filter(PWRU_SEL_TUNNEL_L3, inner3, d.end))
						return PWRU_OUT_FILTER_TUNNEL;
				}
			}
		}
	}
	return FILTER_PASS;
}

/* ---- event output ------------------------------------------------------------------ */

/*
 * Counts one run with outcome `o`. Atomic although the counter is per CPU: a run nested on
 * this CPU between the load and the store of a plain increment would lose its count.
 */
static __always_inline void count_run(__u32 o)
{
	__u64 *n = bpf_map_lookup_elem(&pwru_runs, &o);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline void fill_skb(struct pwru_event *ev, struct sk_buff *skb, bool typed)
{
	struct skb_data d;
	skb_data(skb, typed, &d);
	ev->skb_head = d.head;
	if (CFG(OUTPUT_META)) {
		struct net_device *dev = RD(typed, skb, dev);
		ev->netns = skb_netns(skb, typed);
		ev->mark = RD(typed, skb, mark);
		ev->len = RD(typed, skb, len);
		ev->protocol = bpf_ntohs(RD(typed, skb, protocol));
		if (typed)
			ev->pkt_type = skb->pkt_type;
		else
			ev->pkt_type = BPF_CORE_READ_BITFIELD_PROBED(skb, pkt_type);
		if (dev) {
			ev->ifindex = RD(typed, dev, ifindex);
			ev->mtu = RD(typed, dev, mtu);
		}
		ev->flags |= PWRU_EV_META;
	}
	if (CFG(OUTPUT_CB)) {
		/* qdisc_skb_cb: { u32 pkt_len; u16; u16; u8 data[20] } */
		bpf_probe_read_kernel(ev->cb, sizeof(ev->cb), (char *)skb + bpf_core_field_offset(skb->cb) + 8);
		ev->flags |= PWRU_EV_CB;
	}
	if (CFG(OUTPUT_TUPLE) || CFG(OUTPUT_TUNNEL)) {
		__u64 l3 = skb_l3(&d);
		if (!l3 && mac_header_set(d.mac))
			l3 = d.head + d.mac + 14;
		if (CFG(OUTPUT_TUPLE) && parse_l3(l3, d.end, &ev->tuple))
			ev->flags |= PWRU_EV_TUPLE;
		if (CFG(OUTPUT_TUNNEL)) {
			__u64 inner = tunnel_inner_l2(l3, d.end);
			__u64 inner3 = inner ? tunnel_inner_l3(inner) : 0;
			if (inner3 && parse_l3(inner3, d.end, &ev->tunnel))
				ev->flags |= PWRU_EV_TUNNEL;
		}
	}
}

/* The scratch slot a run holds, and the nesting level to restore when it is done. */
struct slot {
	__u64 *depth;
	__u32 level;
};

/*
 * Takes the scratch slot of this run's nesting level. Runs on one CPU nest strictly (an
 * interrupting run ends before the one it interrupted goes on), so a plain per-CPU level
 * is enough: a nested run sees the level raised and takes the next slot. (A fully
 * preemptible kernel may switch tasks inside an fentry program, which runs with migration,
 * not preemption, disabled; a slot shared that way is caught by the check word in submit(),
 * and the record rejected in user space instead of shown mixed.) NULL when no slot is free or
 * a lookup failed; that run's outcome is then counted here.
 */
static __always_inline struct pwru_scratch *slot_enter(struct slot *sl)
{
	__u32 key = PWRU_DEPTH_LEVEL;
	sl->depth = bpf_map_lookup_elem(&pwru_depth, &key);
	if (!sl->depth) {
		count_run(PWRU_OUT_NO_SCRATCH);
		return NULL;
	}
	__u32 level = *sl->depth;
	if (level >= PWRU_SCRATCH_SLOTS) {
		count_run(PWRU_OUT_NESTED_TOO_DEEP);
		return NULL;
	}
	struct pwru_scratch *s = bpf_map_lookup_elem(&pwru_scratch, &level);
	if (!s) {
		count_run(PWRU_OUT_NO_SCRATCH);
		return NULL;
	}
	if (level > 0) {
		key = PWRU_DEPTH_NESTED;
		__u64 *nested = bpf_map_lookup_elem(&pwru_depth, &key);
		if (nested)
			__sync_fetch_and_add(nested, 1);
	}
	sl->level = level;
	*sl->depth = level + 1;
	return s;
}

static __always_inline void slot_exit(struct slot *sl)
{
	*sl->depth = sl->level;
}

/* Fills the fields every event has; returns the timestamp, which submit() uses to notice a
 * record another run wrote into meanwhile. */
static __always_inline __u64 fill_common(struct pwru_event *ev, const struct probe_info *pi)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 ts = bpf_ktime_get_ns();
	ev->ts = ts;
	ev->addr = pi->addr;
	ev->caller = pi->caller;
	ev->cpu = bpf_get_smp_processor_id();
	ev->pid = (__u32)pid_tgid;
	ev->tgid = pid_tgid >> 32;
	ev->kind = pi->kind;
	ev->flags |= pi->evflags;
	ev->drop_reason = pi->drop_reason;
	ev->retval = pi->retval;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	return ts;
}

/* The check word of the header and event in `s` (see PWRU_CHECK_* in event.h). */
static __always_inline __u32 record_check(struct pwru_scratch *s)
{
	const __u64 *w = (const __u64 *)s;
	__u64 c = PWRU_CHECK_SEED;
#pragma unroll
	for (int i = 0; i < PWRU_CHECK_WORDS; i++)
		c = (((c << 7) | (c >> 57)) ^ w[i]) * PWRU_CHECK_MUL;
	return (__u32)(c ^ (c >> 32));
}

/*
 * Writes the record of `len` bytes and returns the run's outcome. `ts` is the timestamp
 * this run put in the event: if another run overwrote the slot meanwhile, the event's
 * differs and the check word is spoiled on purpose, so user space rejects the mixed record.
 */
static __always_inline __u32 submit(struct pwru_scratch *s, __u32 len, __u64 ts)
{
	s->hdr.kind = PWRU_RECORD_EVENT;
	s->hdr.version = PWRU_RECORD_VERSION;
	if (len > sizeof(*s))
		len = sizeof(*s);
	s->hdr.len = len;
	s->ev.check = 0;
	__u64 spoil = s->ev.ts ^ ts;
	s->ev.check = record_check(s) ^ (__u32)(spoil ^ (spoil >> 32));
	if (bpf_ringbuf_output(&pwru_events, s, len, 0))
		return PWRU_OUT_RING_FULL;
	return PWRU_OUT_EMITTED;
}

/* Run-time bound of one dump: the config's dump_max, capped by the compile-time size `cap`
 * of its place in the scratch buffer (0 in the config means the cap). */
static __always_inline __u32 dump_bound(__u32 cap)
{
	__u32 n = pwru_cfg.dump_max;
	if (n == 0 || n > cap)
		n = cap;
	return n;
}

static __always_inline __u32 dump_skb(struct pwru_scratch *s, struct sk_buff *skb, struct skb_data *d)
{
	__u32 off = 0;
	if (CFG(OUTPUT_SKB)) {
		struct btf_ptr p = {.ptr = skb, .type_id = bpf_core_type_id_kernel(struct sk_buff)};
		__u32 cap = dump_bound(PWRU_SKB_DUMP_MAX);
		/* n excludes the NUL and counts what did not fit: n >= cap means cut */
		long n = bpf_snprintf_btf(s->dump, cap, &p, sizeof(p), 0);
		if (n >= 0) {
			off = n + 1 > cap ? cap : n + 1;
			s->ev.skb_dump_len = off;
			s->ev.flags |= PWRU_EV_SKB_DUMP;
			if (n + 1 > cap)
				s->ev.flags |= PWRU_EV_SKB_DUMP_CUT;
		}
	}
	if (CFG(OUTPUT_SHINFO)) {
		struct btf_ptr p = {.ptr = (void *)(d->head + (d->end - d->head)),
				    .type_id = bpf_core_type_id_kernel(struct skb_shared_info)};
		__u32 skb_end = 0;
		if (!bpf_probe_read_kernel(&skb_end, sizeof(skb_end), &skb->end)) {
			p.ptr = (void *)(d->head + skb_end);
			if (off > PWRU_SKB_DUMP_MAX)
				off = PWRU_SKB_DUMP_MAX;
			__u32 cap = dump_bound(PWRU_SHINFO_DUMP_MAX);
			long n = bpf_snprintf_btf(s->dump + off, cap, &p, sizeof(p), 0);
			if (n >= 0) {
				__u32 m = n + 1 > cap ? cap : n + 1;
				s->ev.shinfo_dump_len = m;
				s->ev.flags |= PWRU_EV_SHINFO_DUMP;
				if (n + 1 > cap)
					s->ev.flags |= PWRU_EV_SHINFO_DUMP_CUT;
				off += m;
			}
		}
	}
	return off;
}

/* Builds and writes the event of one run that passed the filters; counts its outcome. */
static __always_inline void emit_skb(void *ctx, struct sk_buff *skb, const struct probe_info *pi, __s32 stack_id)
{
	struct slot sl;
	struct pwru_scratch *s = slot_enter(&sl);
	if (!s)
		return;
	__builtin_memset(&s->ev, 0, sizeof(s->ev));
	__u64 ts = fill_common(&s->ev, pi);
	s->ev.skb = (__u64)skb;
	fill_skb(&s->ev, skb, pi->typed);
	if (CFG(OUTPUT_STACK)) {
		s->ev.stack_id = stack_id >= 0 ? stack_id : bpf_get_stackid(ctx, &pwru_stacks, 0);
		if (s->ev.stack_id >= 0)
			s->ev.flags |= PWRU_EV_STACK;
	}
	if (CFG(OUTPUT_CALLER) && pi->caller)
		s->ev.flags |= PWRU_EV_CALLER;
	__u32 extra = 0;
	if (CFG(OUTPUT_SKB) || CFG(OUTPUT_SHINFO)) {
		struct skb_data d;
		skb_data(skb, false, &d);
		extra = dump_skb(s, skb, &d);
	}
	count_run(submit(s, sizeof(s->hdr) + sizeof(s->ev) + extra, ts));
	slot_exit(&sl);
}

/* ---- tracking ------------------------------------------------------------------------ */

/*
 * Lifetimes. An skb address is tracked until the skb itself is freed (kfree_skbmem, or the
 * kfree_skb/consume_skb tracepoints on tracepoint-only kernels). A head is tracked until its
 * data buffer is freed, which is decided where the last data reference goes: skb_free_head
 * (function backends; the buffer and skb->head are still valid there) or, on tracepoint-only
 * kernels, at kfree_skb/consume_skb from the dataref count, read before skb_release_data
 * drops this skb's reference. Never at kfree_skbmem: by then the reference is gone, the
 * count of a shared buffer no longer says who holds it, and a last buffer is already freed.
 */
static __always_inline void track(__u64 skb, __u64 head)
{
	__u8 one = 1;
	bpf_map_update_elem(&pwru_skbs, &skb, &one, BPF_ANY);
	if (CFG(TRACK_HEAD) && head)
		bpf_map_update_elem(&pwru_heads, &head, &one, BPF_ANY);
}

/* Unlinks skb from its stack key, if the key still names it. */
static __always_inline void unlink_stack(__u64 skb, __u64 key)
{
	__u64 *cur = bpf_map_lookup_elem(&pwru_stackid_skb, &key);
	if (cur && *cur == skb)
		bpf_map_delete_elem(&pwru_stackid_skb, &key);
}

/* The skb itself is freed: its address may come back as another packet. */
static __always_inline void forget(__u64 skb)
{
	bpf_map_delete_elem(&pwru_skbs, &skb);
	if (CFG(TRACK_STACKID)) {
		__u64 *key = bpf_map_lookup_elem(&pwru_skb_stackid, &skb);
		if (key) {
			unlink_stack(skb, *key);
			bpf_map_delete_elem(&pwru_skb_stackid, &skb);
		}
	}
}

/* Tracepoint kernels: called at kfree_skb/consume_skb, before this skb's data reference is
 * dropped, so dataref is still valid; forgets skb->head when this is the last reference. */
static __always_inline void forget_head_if_last(struct sk_buff *skb)
{
	if (!CFG(TRACK_HEAD))
		return;
	__u64 head = (__u64)BPF_CORE_READ(skb, head);
	__u32 end = BPF_CORE_READ(skb, end);
	if (!head)
		return;
	struct skb_shared_info *shinfo = (void *)(head + end);
	int dataref = BPF_CORE_READ(shinfo, dataref.counter);
	/* Low 16 bits: references to the whole buffer (SKB_DATAREF_SHIFT). */
	if ((dataref & 0xffff) <= 1)
		bpf_map_delete_elem(&pwru_heads, &head);
}

/* skb_free_head(skb): the data buffer skb->head names is being freed. */
static __always_inline void forget_head(struct sk_buff *skb)
{
	if (!CFG(TRACK_HEAD) || !skb)
		return;
	__u64 head = (__u64)BPF_CORE_READ(skb, head);
	if (head)
		bpf_map_delete_elem(&pwru_heads, &head);
}

/*
 * Which kernel stack this program runs on: the key linking functions without an skb argument
 * to the skb last seen on the same stack (pwru's "stack id"; pwru finds the outermost frame
 * pointer, which kernels unwound with ORC, Debian's among them, do not keep). The BPF stack
 * (r10) lives on the kernel stack of the traced code. A task stack is named by its base;
 * interrupt stacks (softirqs run at irq exit or local_bh_enable) by the CPU.
 */
#define TASK_STACK_BYTES 16384 /* x86-64 THREAD_SIZE without KASAN */

static __always_inline __u64 stack_key(void)
{
	__u64 fp;
	asm volatile("%[fp] = r10" : [fp] "=r"(fp));
	__u64 sp = as_scalar(fp);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 base = (__u64)BPF_CORE_READ(task, stack);
	if (base && sp - base < TASK_STACK_BYTES)
		return base;
	return 1 + (__u64)bpf_get_smp_processor_id();
}

/* Records skb as the last skb seen on this stack (pwru: stackid_skb / skb_stackid). */
static __always_inline void link_stack(__u64 skb)
{
	__u64 key = stack_key();
	__u64 *old = bpf_map_lookup_elem(&pwru_skb_stackid, &skb);
	if (old && *old != key)
		unlink_stack(skb, *old);
	bpf_map_update_elem(&pwru_stackid_skb, &key, &skb, BPF_ANY);
	bpf_map_update_elem(&pwru_skb_stackid, &skb, &key, BPF_ANY);
}

/* ---- the shared entry path --------------------------------------------------------- */

/* Every return counts the run's outcome once: here, or in emit_skb. */
static __always_inline int handle_skb(void *ctx, struct sk_buff *skb, struct probe_info *pi)
{
	if (!skb) {
		count_run(PWRU_OUT_NULL_SKB);
		return 0;
	}
	__u64 addr = (__u64)skb;
	bool tracked = false;
	__u64 head = 0;
	if (CFG(TRACK_SKB)) {
		if (bpf_map_lookup_elem(&pwru_skbs, &addr)) {
			tracked = true;
		} else if (CFG(TRACK_HEAD)) {
			head = SKB_HEAD(pi->typed, skb);
			if (head && bpf_map_lookup_elem(&pwru_heads, &head))
				tracked = true;
		}
	}
	if (!tracked) {
		__u32 verdict = filter_skb(skb, pi->typed);
		if (verdict != FILTER_PASS) {
			count_run(verdict);
			return 0;
		}
	}
	if (tracked)
		pi->evflags |= PWRU_EV_TRACKED;
	if (CFG(TRACK_SKB)) {
		if (!head && CFG(TRACK_HEAD))
			head = SKB_HEAD(pi->typed, skb);
		track(addr, head);
	}
	if (CFG(TRACK_STACKID))
		link_stack(addr);
	emit_skb(ctx, skb, pi, -1);
	return 0;
}

/* ---- kprobe / kprobe.multi ----------------------------------------------------------- */

static __always_inline __u64 kprobe_func_ip(struct pt_regs *ctx, __u32 *evflags)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_func_ip)) {
		*evflags |= PWRU_EV_FUNC_IP;
		return bpf_get_func_ip(ctx);
	}
	return PT_REGS_IP(ctx) - 1;
}

static __always_inline __u64 kprobe_caller(struct pt_regs *ctx)
{
	__u64 caller = 0;
	if (CFG(OUTPUT_CALLER))
		bpf_probe_read_kernel(&caller, sizeof(caller), (void *)PT_REGS_SP(ctx));
	return caller;
}

/*
 * The drop functions take the reason right after the skb: kfree_skb_reason(skb, reason)
 * (position 1) and sk_skb_reason_drop(sk, skb, reason) (position 2). Programs of those
 * positions pass the next argument as a drop reason; user space keeps it only for events of
 * a drop function (see pwru-core's decoder).
 */
static __always_inline void kprobe_next_arg(struct pt_regs *ctx, int n, struct probe_info *pi)
{
	if (n == 1)
		pi->drop_reason = (__u32)PT_REGS_PARM2(ctx);
	else if (n == 2)
		pi->drop_reason = (__u32)PT_REGS_PARM3(ctx);
	else
		return;
	pi->evflags |= PWRU_EV_DROP_REASON;
}

#define KPROBE_ENTRY(sec, name, kindv, N)                                                       \
	SEC(sec)                                                                                \
	int name(struct pt_regs *ctx)                                                           \
	{                                                                                       \
		struct probe_info pi = {.kind = kindv};                                         \
		pi.addr = kprobe_func_ip(ctx, &pi.evflags);                                     \
		pi.caller = kprobe_caller(ctx);                                                 \
		kprobe_next_arg(ctx, N, &pi);                                                   \
		return handle_skb(ctx, (struct sk_buff *)PT_REGS_PARM##N(ctx), &pi);            \
	}

/* kprobe.multi programs are the same code with another kind: aya does not know the
 * kprobe.multi section name, so they live in kprobe sections and the loader loads them
 * with expected_attach_type BPF_TRACE_KPROBE_MULTI. */
KPROBE_ENTRY("kprobe/skb_1", kprobe_skb_1, PWRU_KIND_KPROBE, 1)
KPROBE_ENTRY("kprobe/skb_2", kprobe_skb_2, PWRU_KIND_KPROBE, 2)
KPROBE_ENTRY("kprobe/skb_3", kprobe_skb_3, PWRU_KIND_KPROBE, 3)
KPROBE_ENTRY("kprobe/skb_4", kprobe_skb_4, PWRU_KIND_KPROBE, 4)
KPROBE_ENTRY("kprobe/skb_5", kprobe_skb_5, PWRU_KIND_KPROBE, 5)
KPROBE_ENTRY("kprobe/multi_skb_1", kprobe_multi_skb_1, PWRU_KIND_KPROBE_MULTI, 1)
KPROBE_ENTRY("kprobe/multi_skb_2", kprobe_multi_skb_2, PWRU_KIND_KPROBE_MULTI, 2)
KPROBE_ENTRY("kprobe/multi_skb_3", kprobe_multi_skb_3, PWRU_KIND_KPROBE_MULTI, 3)
KPROBE_ENTRY("kprobe/multi_skb_4", kprobe_multi_skb_4, PWRU_KIND_KPROBE_MULTI, 4)
KPROBE_ENTRY("kprobe/multi_skb_5", kprobe_multi_skb_5, PWRU_KIND_KPROBE_MULTI, 5)

/* Functions without an skb argument: the event is about the skb last seen on this stack. */
static __always_inline int handle_by_stackid(void *ctx, struct probe_info *pi)
{
	__u64 key = stack_key();
	__u64 *skb = bpf_map_lookup_elem(&pwru_stackid_skb, &key);
	if (!skb || !*skb) {
		count_run(PWRU_OUT_NO_STACK_SKB);
		return 0;
	}
	pi->evflags |= PWRU_EV_BY_STACKID | PWRU_EV_TRACKED;
	emit_skb(ctx, (struct sk_buff *)*skb, pi, -1);
	return 0;
}

#define KPROBE_STACKID(sec, name, kindv)                                                        \
	SEC(sec)                                                                                \
	int name(struct pt_regs *ctx)                                                           \
	{                                                                                       \
		struct probe_info pi = {.kind = kindv};                                         \
		pi.addr = kprobe_func_ip(ctx, &pi.evflags);                                     \
		pi.caller = kprobe_caller(ctx);                                                 \
		return handle_by_stackid(ctx, &pi);                                             \
	}

KPROBE_STACKID("kprobe/stackid", kprobe_stackid, PWRU_KIND_KPROBE)
KPROBE_STACKID("kprobe/multi_stackid", kprobe_multi_stackid, PWRU_KIND_KPROBE_MULTI)

/* ---- fentry (typed arguments) --------------------------------------------------------- */

/*
 * A frame of the kernel stack seen from the program: frame 0 is the program itself, frame 1
 * the glue (bpf_trace_runN for tracepoints, the trampoline for fentry). Tracepoints: frame 2
 * is the function that fired the tracepoint. fentry: frame 2 is the traced function, frame 3
 * its caller (checked on Debian 6.1/6.12 and the 6.18 host).
 */
#define TP_CALLER_FRAME 2
#define FENTRY_CALLER_FRAME 3

static __always_inline __u64 stack_caller(void *ctx, __u64 frame)
{
	__u64 ip = 0;
	if (!CFG(OUTPUT_CALLER))
		return 0;
	if (bpf_get_stack(ctx, &ip, sizeof(ip), frame & BPF_F_SKIP_FIELD_MASK) < (long)sizeof(ip))
		return 0;
	return ip;
}

/* As kprobe_next_arg; bpf_get_func_arg fails (and nothing is set) when there is no such
 * argument, so one program serves functions of any arity. */
static __always_inline void fentry_next_arg(__u64 *ctx, int n, struct probe_info *pi)
{
	__u64 v = 0;
	if (n > 2 || bpf_get_func_arg(ctx, n, &v) != 0)
		return;
	pi->drop_reason = (__u32)v;
	pi->evflags |= PWRU_EV_DROP_REASON;
}

#define FENTRY_ENTRY(N)                                                                         \
	SEC("fentry/skb_" #N)                                                                   \
	int fentry_skb_##N(__u64 *ctx)                                                          \
	{                                                                                       \
		struct probe_info pi = {.kind = PWRU_KIND_FENTRY, .typed = 1,                   \
					.evflags = PWRU_EV_FUNC_IP};                            \
		pi.addr = bpf_get_func_ip(ctx);                                                 \
		pi.caller = stack_caller(ctx, FENTRY_CALLER_FRAME);                             \
		fentry_next_arg(ctx, N, &pi);                                                   \
		return handle_skb(ctx, (struct sk_buff *)ctx[N - 1], &pi);                      \
	}

FENTRY_ENTRY(1)
FENTRY_ENTRY(2)
FENTRY_ENTRY(3)
FENTRY_ENTRY(4)
FENTRY_ENTRY(5)

/* The skb comes from a map, not from a typed argument: read it with probe reads (typed 0). */
SEC("fentry/stackid")
int fentry_stackid(__u64 *ctx)
{
	struct probe_info pi = {.kind = PWRU_KIND_FENTRY, .evflags = PWRU_EV_FUNC_IP};
	pi.addr = bpf_get_func_ip(ctx);
	pi.caller = stack_caller(ctx, FENTRY_CALLER_FRAME);
	return handle_by_stackid(ctx, &pi);
}

/* ---- tracepoints ------------------------------------------------------------------- */

/* kfree_skb(skb, location, reason[, rx_sk]): the reason exists since drop reasons did. */
static __always_inline void kfree_skb_extra(__u64 *ctx, struct probe_info *pi)
{
	pi->caller = ctx[1];
	pi->evflags |= PWRU_EV_CALLER;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NOT_SPECIFIED)) {
		pi->drop_reason = (__u32)ctx[2];
		pi->evflags |= PWRU_EV_DROP_REASON;
	}
}

static __always_inline int handle_tp(__u64 *ctx, __u32 id, int pos, __u8 kind, bool typed)
{
	struct probe_info pi = {.kind = kind, .typed = typed, .addr = id};
	struct sk_buff *skb = (struct sk_buff *)ctx[pos];
	if (id == PWRU_TP_KFREE_SKB)
		kfree_skb_extra(ctx, &pi);
	else
		pi.caller = stack_caller(ctx, TP_CALLER_FRAME);
	handle_skb(ctx, skb, &pi);
	/* Tracepoint-only kernels have no kfree_skbmem probe: forget at the free. */
	if ((CFG(TRACK_SKB) || CFG(TRACK_STACKID)) && (id == PWRU_TP_KFREE_SKB || id == PWRU_TP_CONSUME_SKB) && skb) {
		forget_head_if_last(skb);
		forget((__u64)skb);
	}
	return 0;
}

#define TRACEPOINT(name, id, pos)                                                               \
	SEC("tp_btf/" #name)                                                                    \
	int tp_btf_##name(__u64 *ctx) { return handle_tp(ctx, id, pos, PWRU_KIND_TRACEPOINT, true); } \
	SEC("raw_tp/" #name)                                                                    \
	int raw_tp_##name(__u64 *ctx) { return handle_tp(ctx, id, pos, PWRU_KIND_RAW_TRACEPOINT, false); }

TRACEPOINT(netif_receive_skb, PWRU_TP_NETIF_RECEIVE_SKB, 0)
TRACEPOINT(net_dev_queue, PWRU_TP_NET_DEV_QUEUE, 0)
TRACEPOINT(net_dev_start_xmit, PWRU_TP_NET_DEV_START_XMIT, 0)
TRACEPOINT(net_dev_xmit, PWRU_TP_NET_DEV_XMIT, 0)
TRACEPOINT(netif_rx, PWRU_TP_NETIF_RX, 0)
TRACEPOINT(napi_gro_receive_entry, PWRU_TP_NAPI_GRO_RECEIVE_ENTRY, 0)
TRACEPOINT(napi_gro_frags_entry, PWRU_TP_NAPI_GRO_FRAGS_ENTRY, 0)
TRACEPOINT(netif_receive_skb_entry, PWRU_TP_NETIF_RECEIVE_SKB_ENTRY, 0)
TRACEPOINT(netif_receive_skb_list_entry, PWRU_TP_NETIF_RECEIVE_SKB_LIST_ENTRY, 0)
TRACEPOINT(netif_rx_entry, PWRU_TP_NETIF_RX_ENTRY, 0)
TRACEPOINT(kfree_skb, PWRU_TP_KFREE_SKB, 0)
TRACEPOINT(consume_skb, PWRU_TP_CONSUME_SKB, 0)
TRACEPOINT(skb_copy_datagram_iovec, PWRU_TP_SKB_COPY_DATAGRAM_IOVEC, 0)
TRACEPOINT(qdisc_dequeue, PWRU_TP_QDISC_DEQUEUE, 3)
TRACEPOINT(qdisc_enqueue, PWRU_TP_QDISC_ENQUEUE, 2)
TRACEPOINT(sock_rcvqueue_full, PWRU_TP_SOCK_RCVQUEUE_FULL, 1)
TRACEPOINT(tcp_retransmit_skb, PWRU_TP_TCP_RETRANSMIT_SKB, 1)
TRACEPOINT(tcp_send_reset, PWRU_TP_TCP_SEND_RESET, 1)
TRACEPOINT(tcp_bad_csum, PWRU_TP_TCP_BAD_CSUM, 0)
TRACEPOINT(udp_fail_queue_rcv_skb, PWRU_TP_UDP_FAIL_QUEUE_RCV_SKB, 2)
TRACEPOINT(icmp_send, PWRU_TP_ICMP_SEND, 0)
TRACEPOINT(tcp_probe, PWRU_TP_TCP_PROBE, 1)

/* ---- clone/copy following and end of life ------------------------------------------- */

static __always_inline void follow_copy(__u64 old, __u64 new)
{
	if (!CFG(TRACK_SKB) || !old || !new)
		return;
	if (bpf_map_lookup_elem(&pwru_skbs, &old))
		track(new, 0);
}

/* fexit on skb_clone / skb_copy (fexit capable kernels): ret is the last argument slot. */
SEC("fexit/skb_clone")
int fexit_skb_clone(__u64 *ctx) { follow_copy(ctx[0], ctx[2]); return 0; }

SEC("fexit/skb_copy")
int fexit_skb_copy(__u64 *ctx) { follow_copy(ctx[0], ctx[2]); return 0; }

/* kprobe + kretprobe equivalent (attach both on skb_clone and on skb_copy). */
SEC("kprobe/clone_entry")
int kprobe_clone_entry(struct pt_regs *ctx)
{
	if (!CFG(TRACK_SKB))
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u64 old = PT_REGS_PARM1(ctx);
	bpf_map_update_elem(&pwru_clone_args, &id, &old, BPF_ANY);
	return 0;
}

SEC("kretprobe/clone_exit")
int kretprobe_clone_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *old = bpf_map_lookup_elem(&pwru_clone_args, &id);
	if (!old)
		return 0;
	follow_copy(*old, PT_REGS_RC(ctx));
	bpf_map_delete_elem(&pwru_clone_args, &id);
	return 0;
}

static __always_inline void skb_freed(struct sk_buff *skb)
{
	if ((CFG(TRACK_SKB) || CFG(TRACK_STACKID)) && skb)
		forget((__u64)skb);
}

SEC("kprobe/kfree_skbmem")
int kprobe_kfree_skbmem(struct pt_regs *ctx)
{
	skb_freed((struct sk_buff *)PT_REGS_PARM1(ctx));
	return 0;
}

SEC("fentry/kfree_skbmem")
int fentry_kfree_skbmem(__u64 *ctx)
{
	skb_freed((struct sk_buff *)ctx[0]);
	return 0;
}

SEC("kprobe/skb_free_head")
int kprobe_skb_free_head(struct pt_regs *ctx)
{
	forget_head((struct sk_buff *)PT_REGS_PARM1(ctx));
	return 0;
}

SEC("fentry/skb_free_head")
int fentry_skb_free_head(__u64 *ctx)
{
	forget_head((struct sk_buff *)ctx[0]);
	return 0;
}

/* ---- tracing loaded tc and XDP programs (fentry/fexit with attach_prog_fd) ---------- */

/*
 * The loader patches these ld_imm64 constants per target program: the traced program's
 * id and its name (16 bytes in two immediates).
 */
#define PWRU_MAGIC_PROG_ID 0x5057525550524f47ULL /* "PWRUPROG" */
#define PWRU_MAGIC_NAME_LO 0x505752554e414d30ULL /* "PWRUNAM0" */
#define PWRU_MAGIC_NAME_HI 0x505752554e414d31ULL /* "PWRUNAM1" */

#define LD_MAGIC(var, magic) asm volatile("%[v] = " #magic " ll" : [v] "=r"(var))

static __always_inline void set_prog(struct probe_info *pi, struct pwru_event *ev)
{
	__u64 id, lo, hi;
	LD_MAGIC(id, 0x5057525550524f47);
	LD_MAGIC(lo, 0x505752554e414d30);
	LD_MAGIC(hi, 0x505752554e414d31);
	ev->prog_id = (__u32)id;
	__builtin_memcpy(&ev->prog_name[0], &lo, 8);
	__builtin_memcpy(&ev->prog_name[8], &hi, 8);
	ev->flags |= PWRU_EV_PROG;
}

SEC("fentry/tc")
int fentry_tc(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	struct probe_info pi = {.kind = PWRU_KIND_TC, .typed = 1, .evflags = PWRU_EV_FUNC_IP};
	if (!skb) {
		count_run(PWRU_OUT_NULL_SKB);
		return 0;
	}
	/* Same path as handle_skb, with the program identity added to the event. */
	__u64 addr = (__u64)skb;
	bool tracked = CFG(TRACK_SKB) && bpf_map_lookup_elem(&pwru_skbs, &addr);
	if (!tracked) {
		__u32 verdict = filter_skb(skb, true);
		if (verdict != FILTER_PASS) {
			count_run(verdict);
			return 0;
		}
	}
	if (CFG(TRACK_SKB))
		track(addr, CFG(TRACK_HEAD) ? SKB_HEAD(true, skb) : 0);
	pi.addr = bpf_get_func_ip(ctx);
	struct slot sl;
	struct pwru_scratch *s = slot_enter(&sl);
	if (!s)
		return 0;
	__builtin_memset(&s->ev, 0, sizeof(s->ev));
	__u64 ts = fill_common(&s->ev, &pi);
	s->ev.skb = addr;
	fill_skb(&s->ev, skb, true);
	set_prog(&pi, &s->ev);
	count_run(submit(s, sizeof(s->hdr) + sizeof(s->ev), ts));
	slot_exit(&sl);
	return 0;
}

static __always_inline __u32 xdp_filter(struct net_device *dev, __u64 data, __u64 end)
{
	if (CFG(FILTER_NETNS) && (!dev || dev->nd_net.net->ns.inum != pwru_cfg.netns))
		return PWRU_OUT_FILTER_NETNS;
	if (CFG(FILTER_IFINDEX) && (!dev || dev->ifindex != pwru_cfg.ifindex))
		return PWRU_OUT_FILTER_IFINDEX;
	if (CFG(FILTER_PCAP) && !pwru_filter(PWRU_SEL_L2, data, end))
		return PWRU_OUT_FILTER_PCAP;
	return FILTER_PASS;
}

static __always_inline int handle_xdp(__u64 *ctx, __u8 kind, bool exit)
{
	struct xdp_buff *xdp = (struct xdp_buff *)ctx[0];
	if (!xdp) {
		count_run(PWRU_OUT_NULL_SKB);
		return 0;
	}
	__u64 data = as_scalar((__u64)xdp->data);
	__u64 end = as_scalar((__u64)xdp->data_end);
	struct net_device *dev = xdp->rxq->dev;
	__u32 verdict = xdp_filter(dev, data, end);
	if (verdict != FILTER_PASS) {
		count_run(verdict);
		return 0;
	}
	struct slot sl;
	struct pwru_scratch *s = slot_enter(&sl);
	if (!s)
		return 0;
	struct probe_info pi = {.kind = kind, .typed = 1, .evflags = PWRU_EV_FUNC_IP};
	pi.addr = bpf_get_func_ip(ctx);
	if (exit) {
		pi.retval = ctx[1];
		pi.evflags |= PWRU_EV_RETVAL;
	}
	__builtin_memset(&s->ev, 0, sizeof(s->ev));
	__u64 ts = fill_common(&s->ev, &pi);
	s->ev.skb = (__u64)xdp;
	s->ev.skb_head = data;
	if (CFG(OUTPUT_META) && dev) {
		s->ev.netns = dev->nd_net.net->ns.inum;
		s->ev.ifindex = dev->ifindex;
		s->ev.mtu = dev->mtu;
		s->ev.len = end - data;
		s->ev.flags |= PWRU_EV_META;
	}
	if (CFG(OUTPUT_TUPLE) && end - data >= 14) {
		__u8 et[2];
		if (!bpf_probe_read_kernel(et, 2, (void *)(data + 12))) {
			__u16 proto = ((__u16)et[0] << 8) | et[1];
			s->ev.protocol = proto;
			if ((proto == ETH_P_IP || proto == ETH_P_IPV6) && parse_l3(data + 14, end, &s->ev.tuple))
				s->ev.flags |= PWRU_EV_TUPLE;
		}
	}
	set_prog(&pi, &s->ev);
	count_run(submit(s, sizeof(s->hdr) + sizeof(s->ev), ts));
	slot_exit(&sl);
	return 0;
}

SEC("fentry/xdp")
int fentry_xdp(__u64 *ctx) { return handle_xdp(ctx, PWRU_KIND_XDP, false); }

SEC("fexit/xdp")
int fexit_xdp(__u64 *ctx) { return handle_xdp(ctx, PWRU_KIND_XDP_EXIT, true); }

/* ---- baseline ------------------------------------------------------------------------ */

/* An empty BTF tracepoint program: the reference point of the kernel_cost benchmark. */
SEC("tp_btf/baseline")
int tp_btf_baseline(__u64 *ctx) { return 0; }
