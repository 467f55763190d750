/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Record building and output: what an entry program knows about its run (probe_info), the run
 * counters, the per-CPU scratch slots records are built in, the event fields, the skb text
 * dumps, the check word and the ring buffer write. Included once, in order, by pwru.bpf.c.
 */
#ifndef PWRU_OUTPUT_H
#define PWRU_OUTPUT_H

struct probe_info {
	__u64 addr;
	__u64 caller;
	__u64 caller_next;
	__u8 kind;
	__u8 typed;
	__u8 at_free; /* the skb is being freed here: it cannot own a buffer for packet ids */
	__u32 evflags;
	__u32 drop_reason;
	__u64 retval;
	__u64 packet_id;        /* 0: none */
	__u64 parent_packet_id; /* 0: none */
};

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
	if (CFG(OUTPUT_SKB_METADATA))
		read_metadata(ev, PWRU_SEL_SKB_META, as_scalar((__u64)skb));
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

/* The scratch slot a run holds, and the per-CPU mask of slots in use to release it in. */
struct slot {
	__u64 *in_use;
	__u32 index;
};

/*
 * Claims a free scratch slot of this CPU: the first whose bit an atomic fetch-and-or finds
 * clear in the per-CPU mask of slots in use. A run interrupting another (softirq over process
 * context, a program inside another) finds the interrupted run's slot taken and claims the
 * next; so does a task that preempted another inside an fentry program (which runs with
 * migration, not preemption, disabled), and, unlike a nesting level, a slot stays claimed
 * until its own run releases it, whatever order runs end in. NULL when every slot is in use
 * or a lookup failed; that run's outcome is then counted here.
 */
static __always_inline struct pwru_scratch *slot_enter(struct slot *sl)
{
	__u32 key = PWRU_DEPTH_LEVEL;
	sl->in_use = bpf_map_lookup_elem(&pwru_depth, &key);
	if (!sl->in_use) {
		count_run(PWRU_OUT_NO_SCRATCH);
		return NULL;
	}
	__u64 before = 0;
	__u32 index = PWRU_SCRATCH_SLOTS;
#pragma unroll
	for (__u32 i = 0; i < PWRU_SCRATCH_SLOTS; i++) {
		before = __sync_fetch_and_or(sl->in_use, 1ull << i);
		if (!(before & (1ull << i))) {
			index = i;
			break;
		}
	}
	if (index >= PWRU_SCRATCH_SLOTS) {
		count_run(PWRU_OUT_NESTED_TOO_DEEP);
		return NULL;
	}
	sl->index = index;
	struct pwru_scratch *s = bpf_map_lookup_elem(&pwru_scratch, &sl->index);
	if (!s) {
		__sync_fetch_and_and(sl->in_use, ~(1ull << index));
		count_run(PWRU_OUT_NO_SCRATCH);
		return NULL;
	}
	/* Another slot was in use when this one was claimed: this run nests inside another. */
	if (before & ~(1ull << index)) {
		key = PWRU_DEPTH_NESTED;
		__u64 *nested = bpf_map_lookup_elem(&pwru_depth, &key);
		if (nested)
			__sync_fetch_and_add(nested, 1);
	}
	return s;
}

static __always_inline void slot_exit(struct slot *sl)
{
	__sync_fetch_and_and(sl->in_use, ~(1ull << sl->index));
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
	ev->caller_next = pi->caller_next;
	ev->cpu = bpf_get_smp_processor_id();
	ev->pid = (__u32)pid_tgid;
	ev->tgid = pid_tgid >> 32;
	ev->kind = pi->kind;
	ev->flags |= pi->evflags;
	ev->drop_reason = pi->drop_reason;
	ev->retval = pi->retval;
	ev->packet_id = pi->packet_id;
	ev->parent_packet_id = pi->parent_packet_id;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	return ts;
}

static __always_inline __u64 check_fold(__u64 c, __u64 w)
{
	return (((c << 7) | (c >> 57)) ^ w) * PWRU_CHECK_MUL;
}

/* The check word of the header and event in `s` (see PWRU_CHECK_* in abi.h). */
static __always_inline __u32 record_check(struct pwru_scratch *s)
{
	const __u64 *w = (const __u64 *)s;
	__u64 lane[PWRU_CHECK_LANES];
#pragma unroll
	for (int k = 0; k < PWRU_CHECK_LANES; k++)
		lane[k] = PWRU_CHECK_SEED ^ k;
#pragma unroll
	for (int i = 0; i < PWRU_CHECK_WORDS; i++)
		lane[i % PWRU_CHECK_LANES] = check_fold(lane[i % PWRU_CHECK_LANES], w[i]);
	__u64 c = lane[0];
#pragma unroll
	for (int k = 1; k < PWRU_CHECK_LANES; k++)
		c = check_fold(c, lane[k]);
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

/* ---- packet bytes ------------------------------------------------------------------- */

/*
 * Copies up to the config's snaplen of the `avail` readable bytes at `start` into the
 * scratch buffer at `off` (after the dumps) and records them in the event: their link type,
 * and `wire`, the packet's whole length from `start`. Returns the new end of the appended
 * bytes. A packet that cannot be read sets PWRU_EV_PKT_UNAVAILABLE and appends nothing, so no
 * stale scratch bytes ever pass for a packet.
 */
static __always_inline __u32 copy_packet(struct pwru_scratch *s, __u32 off, __u64 start, __u64 avail, __u64 wire,
					 __u8 link)
{
	__u32 n = pwru_cfg.snaplen;
	if (n == 0 || n > PWRU_PKT_MAX)
		n = PWRU_PKT_MAX;
	if (n > avail)
		n = avail;
	if (n > wire)
		n = wire;
	/* the dumps end at most here; the bound also tells the verifier the copy stays inside */
	if (off > PWRU_SKB_DUMP_MAX + PWRU_SHINFO_DUMP_MAX)
		off = PWRU_SKB_DUMP_MAX + PWRU_SHINFO_DUMP_MAX;
	if (n == 0 || n > PWRU_PKT_MAX || !start ||
	    bpf_probe_read_kernel(s->dump + off, n, (void *)start)) {
		s->ev.flags |= PWRU_EV_PKT_UNAVAILABLE;
		return off;
	}
	s->ev.pkt_len = n;
	s->ev.pkt_link = link;
	s->ev.pkt_wire_len = wire > 0xffffffffULL ? 0xffffffffU : (__u32)wire;
	s->ev.flags |= PWRU_EV_PKT;
	return off + n;
}

/*
 * The packet bytes of an skb: from the MAC header when it is set and lies before the network
 * header (an Ethernet frame), else from the network header (raw IP: devices without a
 * link-layer header, and locally built packets before their MAC header exists). Only the
 * linear part (head .. head + tail) is readable here: with paged data (skb->data_len) the
 * capture stops there and pkt_len < pkt_wire_len says so.
 */
static __always_inline __u32 capture_packet(struct pwru_scratch *s, struct sk_buff *skb, const struct skb_data *d,
					    __u32 off)
{
	__u64 start;
	__u8 link;
	if (mac_header_set(d->mac) && d->nh != (__u16)~0U && d->mac < d->nh) {
		start = d->head + d->mac;
		link = PWRU_PKT_LINK_ETHERNET;
	} else if (d->nh != (__u16)~0U) {
		start = d->head + d->nh;
		link = PWRU_PKT_LINK_RAW_IP;
	} else {
		s->ev.flags |= PWRU_EV_PKT_UNAVAILABLE;
		return off;
	}
	__u64 data = (__u64)BPF_CORE_READ(skb, data);
	__u64 len = BPF_CORE_READ(skb, len);
	/* skb->len counts from skb->data: headers already pulled (a received frame's Ethernet
	 * header) precede it and belong to the packet; headers not yet reached (data before
	 * start) do not. */
	__u64 wire = start <= data ? len + (data - start) : (start - data < len ? len - (start - data) : 0);
	__u64 avail = start < d->end ? d->end - start : 0;
	return copy_packet(s, off, start, avail, wire, link);
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
	if (CFG(OUTPUT_SKB) || CFG(OUTPUT_SHINFO) || CFG(OUTPUT_PKT)) {
		struct skb_data d;
		skb_data(skb, false, &d);
		if (CFG(OUTPUT_SKB) || CFG(OUTPUT_SHINFO))
			extra = dump_skb(s, skb, &d);
		if (CFG(OUTPUT_PKT))
			extra = capture_packet(s, skb, &d, extra);
	}
	count_run(submit(s, sizeof(s->hdr) + sizeof(s->ev) + extra, ts));
	slot_exit(&sl);
}

#endif
