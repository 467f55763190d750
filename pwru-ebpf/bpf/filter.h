/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The filters, cheapest first: network namespace, mark, interface, then the pcap expression and
 * the tunnel (inner header) expressions through the stub pwru_filter. Included once, in order,
 * by pwru.bpf.c.
 */
#ifndef PWRU_FILTER_H
#define PWRU_FILTER_H

/* ---- the address sets of large host filters ------------------------------------------ */

/*
 * The sets of a filter's lowered host terms (pwru_filter::SetLookup::Map): key = the address
 * as the filter compares it, then the set id (two native u32); any value means "member". The
 * loader sizes it, fills it before loading, and writes its fd into the filter body's lookups
 * (no program here names it but own_map() in bpfmap.h: declared here so that it is one of
 * pwru's own maps).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u8);
} pwru_filter_sets SEC(".maps");

/* ---- the filter stub ----------------------------------------------------------------- */

/*
 * Replaced by the loader with the compiled dispatch body. Global (verified once from its
 * BTF signature, hence u64 arguments), noinline, and with a body that depends on every
 * argument so that no call site can be folded away. Returns 64 bits for the metadata
 * selectors; the filters' verdict is the low 32 bits (pcap_match).
 */
__noinline __u64 pwru_filter(__u64 which, __u64 data, __u64 data_end)
{
	return data < data_end + which;
}

/* A pcap (or tunnel) filter's verdict: non-zero low 32 bits of the classic return value. */
static __always_inline bool pcap_match(__u64 which, __u64 data, __u64 data_end)
{
	return (__u32)pwru_filter(which, data, data_end) != 0;
}

/* The skb/xdp expression (selector PWRU_SEL_SKB_EXPR or PWRU_SEL_XDP_EXPR) on `root`. */
static __always_inline bool expr_match(__u64 which, __u64 root)
{
	return (__u32)pwru_filter(which, root, 0) != 0;
}

/* The values of the metadata expressions (selectors `first` + 0..3) on `root`. */
static __always_inline void read_metadata(struct pwru_event *ev, __u64 first, __u64 root)
{
	for (int i = 0; i < PWRU_METADATA_MAX; i++)
		ev->metadata[i] = pwru_filter(first + i, root, 0);
	ev->flags |= PWRU_EV_METADATA;
}

/* ---- filters, cheapest first ------------------------------------------------------- */

/* The filters' verdict: FILTER_PASS, or the PWRU_OUT_FILTER_* outcome of the first that refused. */
#define FILTER_PASS PWRU_OUT_EMITTED

/*
 * A value the filter body reads from the skb (selectors PWRU_SEL_SKB_*): programs whose skb
 * is a plain number get it through bpf_rdonly_cast loads there, where reading it here would
 * take a chain of bpf_probe_read_kernel calls. pwru-core sets PWRU_CFG_FILTER_META_SKB only
 * with a body that has the selector of every one of these filters that is on.
 */
static __always_inline bool skb_value_in_body(bool typed)
{
	return !typed && CFG(FILTER_META_SKB);
}

static __always_inline __u32 skb_value(__u64 selector, struct sk_buff *skb)
{
	return (__u32)pwru_filter(selector, (__u64)skb, 0);
}

static __always_inline __u32 filter_skb(struct sk_buff *skb, bool typed)
{
	if (CFG(FILTER_NETNS)) {
		__u32 netns = skb_value_in_body(typed) ? skb_value(PWRU_SEL_SKB_NETNS, skb) : skb_netns(skb, typed);
		if (netns != pwru_cfg.netns)
			return PWRU_OUT_FILTER_NETNS;
	}
	if (CFG(FILTER_MARK)) {
		__u32 mark = skb_value_in_body(typed) ? skb_value(PWRU_SEL_SKB_MARK, skb) : RD(typed, skb, mark);
		if ((mark & pwru_cfg.mark_mask) != pwru_cfg.mark)
			return PWRU_OUT_FILTER_MARK;
	}
	if (CFG(FILTER_IFINDEX)) {
		__u32 ifindex =
			skb_value_in_body(typed) ? skb_value(PWRU_SEL_SKB_IFINDEX, skb) : skb_ifindex(skb, typed);
		if (ifindex != pwru_cfg.ifindex)
			return PWRU_OUT_FILTER_IFINDEX;
	}
	if (CFG(FILTER_SKB_EXPR) && !expr_match(PWRU_SEL_SKB_EXPR, as_scalar((__u64)skb)))
		return PWRU_OUT_FILTER_EXPR;
	/*
	 * Programs whose skb is a plain number: the filter body reads the header fields itself
	 * through bpf_rdonly_cast loads, where skb_data would make a bpf_probe_read_kernel call.
	 * pwru-core sets the bit only with a body that has the selector; the tunnel filters need
	 * the fields here, so they keep the general path.
	 */
	if (!typed && CFG(FILTER_PCAP_SKB) && CFG(FILTER_PCAP) && !CFG(FILTER_TUNNEL_L2) &&
	    !CFG(FILTER_TUNNEL_L3)) {
		if (!pcap_match(PWRU_SEL_PCAP_SKB, (__u64)skb, 0))
			return PWRU_OUT_FILTER_PCAP;
		return FILTER_PASS;
	}
	if (CFG(FILTER_PCAP) || CFG(FILTER_TUNNEL_L2) || CFG(FILTER_TUNNEL_L3)) {
		struct skb_data d;
		skb_data(skb, typed, &d);
		if (CFG(FILTER_PCAP)) {
			int ok;
			if (mac_header_set(d.mac))
				ok = pcap_match(PWRU_SEL_L2, d.head + d.mac, d.end);
			else
				ok = pcap_match(PWRU_SEL_L3, d.head + d.nh, d.end);
			if (!ok)
				return PWRU_OUT_FILTER_PCAP;
		}
		if (CFG(FILTER_TUNNEL_L2) || CFG(FILTER_TUNNEL_L3)) {
			__u64 inner = tunnel_inner_l2(skb_l3(&d), d.end);
			/* Packets that are not tunnelled pass the tunnel filters (as pwru). */
			if (inner) {
				if (CFG(FILTER_TUNNEL_L2) && !pcap_match(PWRU_SEL_TUNNEL_L2, inner, d.end))
					return PWRU_OUT_FILTER_TUNNEL;
				if (CFG(FILTER_TUNNEL_L3)) {
					__u64 inner3 = tunnel_inner_l3(inner);
					if (!inner3 || !pcap_match(PWRU_SEL_TUNNEL_L3, inner3, d.end))
						return PWRU_OUT_FILTER_TUNNEL;
				}
			}
		}
	}
	return FILTER_PASS;
}

#endif
