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

#endif
