/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Entry programs of the tracepoint backend: a tp_btf and a raw_tp program for each skb
 * tracepoint, and the empty baseline program of the kernel_cost benchmark. Included once, in
 * order, by pwru.bpf.c.
 */
#ifndef PWRU_ENTRY_TRACEPOINT_H
#define PWRU_ENTRY_TRACEPOINT_H

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
	__u64 head;
	pi.at_free = id == PWRU_TP_KFREE_SKB || id == PWRU_TP_CONSUME_SKB;
	if (skb_admitted(skb, &pi, &head)) {
		if (id == PWRU_TP_KFREE_SKB)
			kfree_skb_extra(ctx, &pi);
		else
			stack_callers(ctx, TP_CALLER_FRAME, &pi.caller, &pi.caller_next);
		handle_admitted(ctx, skb, &pi, head);
	}
	/* Tracepoint-only kernels have no kfree_skbmem probe: forget at the free. */
	if (PER_SKB_STATE && (id == PWRU_TP_KFREE_SKB || id == PWRU_TP_CONSUME_SKB) && skb) {
		forget_head_if_last(skb);
		forget((__u64)skb);
	}
	return 0;
}

/*
 * Forgetting only, for the free tracepoints that are not traced themselves (e.g. a
 * --filter-func without kfree_skb) while per-skb state must still end at the free: without
 * them a packet id would outlive its skb and pass to the next packet at that address.
 */
static __always_inline int forget_tp(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	if (PER_SKB_STATE && skb) {
		forget_head_if_last(skb);
		forget((__u64)skb);
	}
	return 0;
}

SEC("tp_btf/kfree_skb")
int lifetime_tp_btf_kfree_skb(__u64 *ctx) { return forget_tp(ctx); }
SEC("tp_btf/consume_skb")
int lifetime_tp_btf_consume_skb(__u64 *ctx) { return forget_tp(ctx); }
SEC("raw_tp/kfree_skb")
int lifetime_raw_tp_kfree_skb(__u64 *ctx) { return forget_tp(ctx); }
SEC("raw_tp/consume_skb")
int lifetime_raw_tp_consume_skb(__u64 *ctx) { return forget_tp(ctx); }

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

/* ---- baseline ------------------------------------------------------------------------ */

/* An empty BTF tracepoint program: the reference point of the kernel_cost benchmark. */
SEC("tp_btf/baseline")
int tp_btf_baseline(__u64 *ctx) { return 0; }

#endif
