/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Packet parsing: the skb fields filters and events need (netns, ifindex, header offsets), IP
 * and transport headers into a pwru_tuple, and the inner headers of VXLAN/Geneve packets. Reads
 * go through bpf_probe_read_kernel, so any program type can use them. Included once, in order,
 * by pwru.bpf.c.
 */
#ifndef PWRU_PARSE_H
#define PWRU_PARSE_H

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define VXLAN_PORT 4789
#define VXLAN_LINUX_PORT 8472
#define GENEVE_PORT 6081

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

/* Bytes read at once by skb_data_span: from network_header (rounded down to 8) to the end
 * of head, 32 on the kernels seen (40 with CONFIG_KCOV's kcov_handle in between). */
#define SKB_SPAN_MAX 64

/*
 * The four fields of skb_data with one bpf_probe_read_kernel instead of four: the kernel
 * keeps the header offsets, tail, end and head together at the end of sk_buff. The offsets
 * are CO-RE relocated constants, so the verifier sees fixed stack offsets and prunes the
 * branch not taken. The read starts 8-aligned so that each field keeps its natural
 * alignment in the buffer (stack accesses must be aligned). False when the layout is not
 * the expected one; skb_data then reads field by field.
 */
static __always_inline bool skb_data_span(struct sk_buff *skb, struct skb_data *d)
{
	__u32 nh = bpf_core_field_offset(skb->network_header);
	__u32 mac = bpf_core_field_offset(skb->mac_header);
	__u32 tail = bpf_core_field_offset(skb->tail);
	__u32 head = bpf_core_field_offset(skb->head);
	__u32 base = nh & ~7u;
	if (mac < base || tail < base || head < base || head + 8 - base > SKB_SPAN_MAX ||
	    mac + 2 - base > SKB_SPAN_MAX || tail + 4 - base > SKB_SPAN_MAX)
		return false;
	__u64 buf[SKB_SPAN_MAX / 8];
	char *b = (char *)buf;
	if (bpf_probe_read_kernel(buf, head + 8 - base, (char *)skb + base)) {
		/* what the per-field reads give for memory that cannot be read */
		d->head = 0;
		d->end = 0;
		d->mac = 0;
		d->nh = 0;
		return true;
	}
	/* Opaque to clang: it would turn b + (nh - base) into a bitwise or on the stack
	 * pointer, which the verifier refuses. */
	__u32 o_head = head - base, o_tail = tail - base, o_mac = mac - base, o_nh = nh - base;
	asm volatile("" : "+r"(o_head), "+r"(o_tail), "+r"(o_mac), "+r"(o_nh));
	d->head = *(__u64 *)(b + o_head);
	d->end = d->head + *(__u32 *)(b + o_tail);
	d->mac = *(__u16 *)(b + o_mac);
	d->nh = *(__u16 *)(b + o_nh);
	return true;
}

static __always_inline void skb_data(struct sk_buff *skb, bool typed, struct skb_data *d)
{
	if (!typed && skb_data_span(skb, d))
		return;
	d->head = SKB_HEAD(typed, skb);
	d->end = d->head + RD(typed, skb, tail);
	d->mac = RD(typed, skb, mac_header);
	d->nh = RD(typed, skb, network_header);
}

static __always_inline __u64 skb_l3(const struct skb_data *d)
{
	return d->nh == (__u16)~0U ? 0 : d->head + d->nh;
}

#endif
