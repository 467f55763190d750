/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Programs tracing loaded tc and XDP BPF programs (fentry/fexit with attach_prog_fd): the event
 * carries the traced program's id and name. Included once, in order, by pwru.bpf.c.
 */
#ifndef PWRU_ENTRY_BPF_PROG_H
#define PWRU_ENTRY_BPF_PROG_H

/* ---- tracing loaded tc and XDP programs (fentry/fexit with attach_prog_fd) ---------- */

/*
 * The loader patches the ld_imm64 constants PWRU_MAGIC_* (abi.h) per target program: the
 * traced program's id and its name (16 bytes in two immediates). Written into the asm as
 * text, so that each is one ld_imm64 of exactly that value.
 */
#define PWRU_STR(x) #x
#define LD_MAGIC(var, magic) asm volatile("%[v] = " PWRU_STR(magic) " ll" : [v] "=r"(var))

static __always_inline void set_prog(struct probe_info *pi, struct pwru_event *ev)
{
	__u64 id, lo, hi;
	LD_MAGIC(id, PWRU_MAGIC_PROG_ID);
	LD_MAGIC(lo, PWRU_MAGIC_NAME_LO);
	LD_MAGIC(hi, PWRU_MAGIC_NAME_HI);
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
	/* Same path as skb_admitted + handle_admitted, with the program identity added to the event. */
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
	if (CFG(PACKET_ID))
		packet_ids(skb, SKB_HEAD(true, skb), &pi);
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
	__u32 extra = 0;
	if (CFG(OUTPUT_PKT)) {
		struct skb_data d;
		skb_data(skb, false, &d);
		extra = capture_packet(s, skb, &d, 0);
	}
	count_run(submit(s, sizeof(s->hdr) + sizeof(s->ev) + extra, ts));
	slot_exit(&sl);
	return 0;
}

static __always_inline __u32 xdp_filter(struct xdp_buff *xdp, struct net_device *dev, __u64 data, __u64 end)
{
	if (CFG(FILTER_NETNS) && (!dev || dev->nd_net.net->ns.inum != pwru_cfg.netns))
		return PWRU_OUT_FILTER_NETNS;
	if (CFG(FILTER_IFINDEX) && (!dev || dev->ifindex != pwru_cfg.ifindex))
		return PWRU_OUT_FILTER_IFINDEX;
	if (CFG(FILTER_XDP_EXPR) && !expr_match(PWRU_SEL_XDP_EXPR, as_scalar((__u64)xdp)))
		return PWRU_OUT_FILTER_EXPR;
	if (CFG(FILTER_PCAP) && !pcap_match(PWRU_SEL_L2, data, end))
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
	__u32 verdict = xdp_filter(xdp, dev, data, end);
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
	if (CFG(OUTPUT_XDP_METADATA))
		read_metadata(&s->ev, PWRU_SEL_XDP_META, as_scalar((__u64)xdp));
	set_prog(&pi, &s->ev);
	/* An XDP buffer is one linear Ethernet frame from data to data_end. */
	__u32 extra = 0;
	if (CFG(OUTPUT_PKT))
		extra = copy_packet(s, 0, data, end > data ? end - data : 0, end > data ? end - data : 0,
				    PWRU_PKT_LINK_ETHERNET);
	count_run(submit(s, sizeof(s->hdr) + sizeof(s->ev) + extra, ts));
	slot_exit(&sl);
	return 0;
}

SEC("fentry/xdp")
int fentry_xdp(__u64 *ctx) { return handle_xdp(ctx, PWRU_KIND_XDP, false); }

SEC("fexit/xdp")
int fexit_xdp(__u64 *ctx) { return handle_xdp(ctx, PWRU_KIND_XDP_EXIT, true); }

#endif
