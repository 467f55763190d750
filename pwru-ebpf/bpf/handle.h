/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The shared path of every skb entry program: tracked or filtered, then tracked on, then
 * emitted; and the path of functions without an skb argument (the skb of the stack). Included
 * once, in order, by pwru.bpf.c.
 */
#ifndef PWRU_HANDLE_H
#define PWRU_HANDLE_H

/* ---- the shared entry path --------------------------------------------------------- */

/*
 * The first stage of every skb run: the skb is tracked, or passes the filters. Counts the
 * run's outcome and returns false when it ends here; `*head` carries the skb head it read, if
 * any, to the second stage. Entry programs compute what only an event needs (function ip,
 * caller, drop reason) between the two stages, so that a run the filter rejects costs as
 * little as possible.
 */
static __always_inline bool skb_admitted(struct sk_buff *skb, struct probe_info *pi, __u64 *head)
{
	*head = 0;
	if (!skb) {
		count_run(PWRU_OUT_NULL_SKB);
		return false;
	}
	__u64 addr = (__u64)skb;
	bool tracked = false;
	if (CFG(TRACK_SKB)) {
		if (bpf_map_lookup_elem(&pwru_skbs, &addr)) {
			tracked = true;
		} else if (CFG(TRACK_HEAD)) {
			*head = SKB_HEAD(pi->typed, skb);
			if (*head && bpf_map_lookup_elem(&pwru_heads, head))
				tracked = true;
		}
	}
	if (!tracked) {
		__u32 verdict = filter_skb(skb, pi->typed);
		if (verdict != FILTER_PASS) {
			count_run(verdict);
			return false;
		}
	}
	if (tracked)
		pi->evflags |= PWRU_EV_TRACKED;
	return true;
}

/* The second stage, for an admitted skb: tracked on, then emitted (emit_skb counts the run).
 * Each entry program calls skb_admitted, fills what only an event needs, then this. */
static __always_inline int handle_admitted(void *ctx, struct sk_buff *skb, struct probe_info *pi, __u64 head)
{
	__u64 addr = (__u64)skb;
	if (PER_SKB_STATE)
		mark_kept();
	if (CFG(TRACK_SKB)) {
		if (!head && CFG(TRACK_HEAD))
			head = SKB_HEAD(pi->typed, skb);
		track(addr, head);
	}
	if (CFG(TRACK_STACKID))
		link_stack(addr);
	if (CFG(PACKET_ID)) {
		if (!head)
			head = SKB_HEAD(pi->typed, skb);
		packet_ids(skb, head, pi);
	}
	emit_skb(ctx, skb, pi, -1);
	return 0;
}

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
	if (CFG(PACKET_ID))
		known_packet_ids(*skb, pi);
	emit_skb(ctx, (struct sk_buff *)*skb, pi, -1);
	return 0;
}

#endif
