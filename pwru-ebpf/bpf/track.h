/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Tracking: skb addresses and skb->head followed past the filters (clones and copies included)
 * until their end of life, and the stack key -> skb links. Included once, in order, by
 * pwru.bpf.c.
 */
#ifndef PWRU_TRACK_H
#define PWRU_TRACK_H

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

static __always_inline void follow_copy(__u64 old, __u64 new)
{
	if (!CFG(TRACK_SKB) || !old || !new)
		return;
	if (bpf_map_lookup_elem(&pwru_skbs, &old))
		track(new, 0);
}


static __always_inline void skb_freed(struct sk_buff *skb)
{
	if ((CFG(TRACK_SKB) || CFG(TRACK_STACKID)) && skb)
		forget((__u64)skb);
}

#endif
