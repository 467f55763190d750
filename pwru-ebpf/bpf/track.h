/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Tracking: skb addresses and skb->head followed past the filters (clones and copies included)
 * until their end of life, and the stack key -> skb links. Included once, in order, by
 * pwru.bpf.c.
 */
#ifndef PWRU_TRACK_H
#define PWRU_TRACK_H

/* ---- tracking ------------------------------------------------------------------------ */

/* Whether anything was ever kept per skb or buffer (pwru_kept). */
static __always_inline bool anything_kept(void)
{
	__u32 key = 0;
	volatile __u32 *kept = bpf_map_lookup_elem(&pwru_kept, &key);
	return !kept || *kept;
}

/* Called before an entry is kept per skb or buffer. The skb then reaches its free (and any
 * clone) after this store, so the lifetime programs that see it see the flag set. */
static __always_inline void mark_kept(void)
{
	__u32 key = 0;
	volatile __u32 *kept = bpf_map_lookup_elem(&pwru_kept, &key);
	if (kept && !*kept)
		*kept = 1;
}

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

/*
 * Deletes `key` from `map` if it is there. Most freed skbs and buffers were never matched:
 * a lookup (lock-free) finds nothing, where a delete would take the bucket lock to find
 * nothing.
 */
#define DELETE_IF_PRESENT(map, key)                                                         \
	do {                                                                                \
		if (bpf_map_lookup_elem(map, key))                                          \
			bpf_map_delete_elem(map, key);                                      \
	} while (0)

/* The skb itself is freed: its address may come back as another packet. */
static __always_inline void forget(__u64 skb)
{
	if (!anything_kept())
		return;
	if (CFG(TRACK_SKB))
		DELETE_IF_PRESENT(&pwru_skbs, &skb);
	if (CFG(PACKET_ID))
		DELETE_IF_PRESENT(&pwru_ids, &skb);
	if (CFG(TRACK_STACKID)) {
		__u64 *key = bpf_map_lookup_elem(&pwru_skb_stackid, &skb);
		if (key) {
			unlink_stack(skb, *key);
			bpf_map_delete_elem(&pwru_skb_stackid, &skb);
		}
	}
}

/* The data buffer at `head` is freed: its address may come back as another packet's. */
static __always_inline void forget_buffer(__u64 head)
{
	if (CFG(TRACK_HEAD))
		DELETE_IF_PRESENT(&pwru_heads, &head);
	if (CFG(PACKET_ID))
		DELETE_IF_PRESENT(&pwru_head_ids, &head);
}

/* Whether anything is kept for the data buffer at `head`. */
static __always_inline bool buffer_known(__u64 head)
{
	return (CFG(TRACK_HEAD) && bpf_map_lookup_elem(&pwru_heads, &head)) ||
	       (CFG(PACKET_ID) && bpf_map_lookup_elem(&pwru_head_ids, &head));
}

/* Tracepoint kernels: called at kfree_skb/consume_skb, before this skb's data reference is
 * dropped, so dataref is still valid; forgets skb->head when this is the last reference. */
static __always_inline void forget_head_if_last(struct sk_buff *skb)
{
	if ((!CFG(TRACK_HEAD) && !CFG(PACKET_ID)) || !anything_kept())
		return;
	__u64 head = (__u64)BPF_CORE_READ(skb, head);
	/* The reference count is read only for a buffer something is kept for (rarely). */
	if (!head || !buffer_known(head))
		return;
	__u32 end = BPF_CORE_READ(skb, end);
	struct skb_shared_info *shinfo = (void *)(head + end);
	int dataref = BPF_CORE_READ(shinfo, dataref.counter);
	/* Low 16 bits: references to the whole buffer (SKB_DATAREF_SHIFT). */
	if ((dataref & 0xffff) <= 1)
		forget_buffer(head);
}

/* skb_free_head(skb): the data buffer skb->head names is being freed. */
static __always_inline void forget_head(struct sk_buff *skb)
{
	if ((!CFG(TRACK_HEAD) && !CFG(PACKET_ID)) || !skb || !anything_kept())
		return;
	__u64 head = (__u64)BPF_CORE_READ(skb, head);
	if (head)
		forget_buffer(head);
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

/* ---- packet ids ------------------------------------------------------------------------ */

/*
 * A packet gets its id at its first run that passes the filters (handle_skb), kept under its
 * skb address in pwru_ids until the skb itself is freed (forget: kfree_skbmem, or the
 * kfree_skb/consume_skb tracepoints), so that the address, reused for another packet, gets a
 * new id. The id follows the skb struct: head reallocation (pskb_expand_head), NAT and
 * encap/decap change the data, not the skb, and keep it. A clone or copy is a new skb: a new
 * id whose parent is the original's. Function backends link them at the return of
 * skb_clone/skb_copy (follow_copy); tracepoint kernels, which have no hook there, link a clone
 * through the data buffer it shares (pwru_head_ids): the first packet seen with a buffer owns
 * it until the buffer is freed (forget_head, forget_head_if_last), and a later skb on it that
 * is marked cloned is that packet's clone. skb_clone marks both skbs, so when the clone is
 * seen before the original, the link would point the wrong way: an skb first seen at its free
 * (e.g. the clone neigh_probe hands to arp_solicit and consumes, while the original waits in
 * the neighbour queue) never becomes an owner, which covers the common case.
 */

/* A new id: this CPU in the high bits, this CPU's next sequence number below (atomic: a run
 * nested on the same CPU must not take the same number). 0 if the counter is missing. */
static __always_inline __u64 new_packet_id(void)
{
	__u32 key = 0;
	__u64 *seq = bpf_map_lookup_elem(&pwru_id_seq, &key);
	if (!seq)
		return 0;
	__u64 n = (__sync_fetch_and_add(seq, 1) + 1) & PWRU_ID_SEQ_MASK;
	return ((__u64)bpf_get_smp_processor_id() << PWRU_ID_CPU_SHIFT) | n;
}

/* Whether skb shares its data buffer with a clone (skb->cloned, set on both by skb_clone). */
static __always_inline bool skb_is_clone(struct sk_buff *skb, bool typed)
{
	/* The bitfield macros relocate the bit position too (a plain skb->cloned would keep
	 * kernel.h's local one). */
	if (typed)
		return BPF_CORE_READ_BITFIELD(skb, cloned);
	return BPF_CORE_READ_BITFIELD_PROBED(skb, cloned);
}

/*
 * The ids of the packet in `skb` (data buffer `head`) into pi, giving it ids at its first
 * match. A new skb marked as a clone whose buffer was first seen with another packet is that
 * packet's clone; otherwise it becomes the buffer's owner (a buffer reused after a free gets
 * its new packet as owner here, since a fresh packet is not a clone).
 */
static __always_inline void packet_ids(struct sk_buff *skb, __u64 head, struct probe_info *pi)
{
	__u64 addr = (__u64)skb;
	struct pwru_skb_ids *cur = bpf_map_lookup_elem(&pwru_ids, &addr);
	if (cur) {
		pi->packet_id = cur->id;
		pi->parent_packet_id = cur->parent;
		return;
	}
	struct pwru_skb_ids ids = {.id = new_packet_id()};
	if (!ids.id)
		return;
	if (head) {
		struct pwru_head_owner *o = bpf_map_lookup_elem(&pwru_head_ids, &head);
		if (o && o->skb != addr && skb_is_clone(skb, pi->typed)) {
			ids.parent = o->id;
		} else if (!pi->at_free) {
			struct pwru_head_owner mine = {.id = ids.id, .skb = addr};
			bpf_map_update_elem(&pwru_head_ids, &head, &mine, BPF_ANY);
		}
	}
	/* A run on another CPU may have given this skb ids meanwhile: keep the first. */
	if (bpf_map_update_elem(&pwru_ids, &addr, &ids, BPF_NOEXIST)) {
		cur = bpf_map_lookup_elem(&pwru_ids, &addr);
		if (cur)
			ids = *cur;
	}
	pi->packet_id = ids.id;
	pi->parent_packet_id = ids.parent;
}

/* The ids of an skb already seen (functions without an skb argument): none if unknown. */
static __always_inline void known_packet_ids(__u64 skb, struct probe_info *pi)
{
	struct pwru_skb_ids *cur = bpf_map_lookup_elem(&pwru_ids, &skb);
	if (cur) {
		pi->packet_id = cur->id;
		pi->parent_packet_id = cur->parent;
	}
}

/*
 * skb_clone/skb_copy returned `new` made from `old`: the new skb is tracked if the old one
 * is, and is a packet of its own whose parent is the old one's. A run inside skb_clone may
 * already have given `new` an id (e.g. at __skb_clone): it keeps it and gains the parent.
 */
static __always_inline void follow_copy(__u64 old, __u64 new)
{
	if (!old || !new || !anything_kept())
		return;
	if (CFG(PACKET_ID)) {
		struct pwru_skb_ids *p = bpf_map_lookup_elem(&pwru_ids, &old);
		if (p) {
			__u64 parent = p->id;
			struct pwru_skb_ids *n = bpf_map_lookup_elem(&pwru_ids, &new);
			if (n) {
				if (!n->parent)
					n->parent = parent;
			} else {
				struct pwru_skb_ids ids = {.id = new_packet_id(), .parent = parent};
				if (ids.id)
					bpf_map_update_elem(&pwru_ids, &new, &ids, BPF_NOEXIST);
			}
		}
	}
	if (CFG(TRACK_SKB) && bpf_map_lookup_elem(&pwru_skbs, &old))
		track(new, 0);
}

/* Whether anything is kept per skb address that must end when the skb is freed. */
#define PER_SKB_STATE (CFG(TRACK_SKB) || CFG(TRACK_STACKID) || CFG(PACKET_ID))

static __always_inline void skb_freed(struct sk_buff *skb)
{
	if (PER_SKB_STATE && skb)
		forget((__u64)skb);
}

#endif
