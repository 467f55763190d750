/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The filters, cheapest first: network namespace, mark, interface, then the pcap expression and
 * the tunnel (inner header) expressions through the stub pwru_filter. Included once, in order,
 * by pwru.bpf.c.
 */
#ifndef PWRU_FILTER_H
#define PWRU_FILTER_H

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

#endif
