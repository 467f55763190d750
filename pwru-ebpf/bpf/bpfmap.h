/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Map operations of traced tc/XDP programs (--output-bpfmap): programs on the kernel's map
 * functions those programs call (htab_map_update_elem, __htab_map_lookup_elem, ...), each
 * emitting a PWRU_RECORD_BPFMAP record with the map's id, name, key and value, linked to the
 * packet by the stack it runs on (PWRU_CFG_TRACK_STACKID). Updates and deletes are seen at
 * entry; lookups at return, where the value is known. Included once, in order, by pwru.bpf.c.
 */
#ifndef PWRU_BPFMAP_H
#define PWRU_BPFMAP_H

/* Copies min(size, PWRU_BPFMAP_BYTES) bytes from src; returns whether it had to cut. */
static __always_inline bool bpfmap_bytes(__u8 *dst, const void *src, __u32 size)
{
	bool cut = size > PWRU_BPFMAP_BYTES;
	/*
	 * The clamp is written in asm so that the compare and the clamped value are one register.
	 * From C, clang copied the length before comparing the original, and verifiers before
	 * 6.8 do not carry the compare over to the copy ("R2 unbounded memory access", 6.1).
	 */
	__u64 n = size;
	asm volatile("if %0 <= %1 goto +1; %0 = %1" : "+r"(n) : "i"(PWRU_BPFMAP_BYTES));
	if (src && n)
		bpf_probe_read_kernel(dst, n, src);
	return cut;
}

/*
 * pwru's own hash maps: fentry programs on the map functions also see the lookups and
 * updates pwru's other programs do (kprobe programs do not nest), which are not the traced
 * programs' operations. Every map function call of pwru's programs goes to one of these (the
 * per-CPU arrays' lookups are inlined by the verifier and call nothing): a new hash map in
 * maps.h belongs here too.
 */
static __always_inline bool own_map(const struct bpf_map *map)
{
	__u64 m = (__u64)map;
	return m == (__u64)(void *)&pwru_skbs || m == (__u64)(void *)&pwru_heads ||
	       m == (__u64)(void *)&pwru_stackid_skb || m == (__u64)(void *)&pwru_skb_stackid ||
	       m == (__u64)(void *)&pwru_clone_args || m == (__u64)(void *)&pwru_bpfmap_args ||
	       m == (__u64)(void *)&pwru_ids || m == (__u64)(void *)&pwru_head_ids ||
	       m == (__u64)(void *)&pwru_filter_sets || m == (__u64)(void *)&pwru_kept;
}

/*
 * Writes the record of one map operation, and counts the run (every run of a map operation
 * program counts one outcome here). `value` NULL: no value (delete, lookup that missed).
 * The record is reserved in the ring buffer, so no other run can write into it.
 */
static __always_inline void emit_bpfmap(__u8 kind, __u8 op, __u64 addr, struct bpf_map *map,
					const void *key, const void *value)
{
	if (own_map(map)) {
		count_run(PWRU_OUT_OWN_MAP);
		return;
	}
	__u64 sk = stack_key();
	__u64 *skb = bpf_map_lookup_elem(&pwru_stackid_skb, &sk);
	if (!skb || !*skb) {
		count_run(PWRU_OUT_NO_STACK_SKB);
		return;
	}
	struct pwru_bpfmap_record *r = bpf_ringbuf_reserve(&pwru_events, sizeof(*r), 0);
	if (!r) {
		count_run(PWRU_OUT_RING_FULL);
		return;
	}
	__builtin_memset(r, 0, sizeof(*r));
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	r->hdr.kind = PWRU_RECORD_BPFMAP;
	r->hdr.version = PWRU_RECORD_VERSION;
	r->hdr.len = sizeof(*r);
	r->op.ts = bpf_ktime_get_ns();
	r->op.addr = addr;
	r->op.skb = *skb;
	r->op.cpu = bpf_get_smp_processor_id();
	r->op.pid = (__u32)pid_tgid;
	r->op.op = op;
	r->op.kind = kind;
	r->op.map_id = BPF_CORE_READ(map, id);
	r->op.key_size = BPF_CORE_READ(map, key_size);
	r->op.value_size = BPF_CORE_READ(map, value_size);
	BPF_CORE_READ_STR_INTO(&r->op.map_name, map, name);
	if (bpfmap_bytes(r->op.key, key, r->op.key_size))
		r->op.flags |= PWRU_BPFMAP_KEY_CUT;
	if (value) {
		r->op.flags |= PWRU_BPFMAP_HAS_VALUE;
		if (bpfmap_bytes(r->op.value, value, r->op.value_size))
			r->op.flags |= PWRU_BPFMAP_VALUE_CUT;
	}
	bpf_ringbuf_submit(r, 0);
	count_run(PWRU_OUT_EMITTED);
}

/* __htab_map_lookup_elem returns the element: its value follows the key, 8-byte aligned. */
static __always_inline const void *htab_elem_value(struct bpf_map *map, const void *elem)
{
	if (!elem)
		return NULL;
	__u32 key_size = BPF_CORE_READ(map, key_size);
	return elem + bpf_core_field_offset(struct htab_elem, key) + ((key_size + 7) & ~7u);
}

/* ---- kprobe / kretprobe (kprobe and kprobe-multi backends) ---------------------------- */

SEC("kprobe/bpfmap_update")
int kprobe_bpfmap_update(struct pt_regs *ctx)
{
	__u32 unused = 0;
	__u64 addr = kprobe_func_ip(ctx, &unused);
	emit_bpfmap(PWRU_KIND_KPROBE, PWRU_BPFMAP_UPDATE, addr, (struct bpf_map *)PT_REGS_PARM1(ctx),
		    (void *)PT_REGS_PARM2(ctx), (void *)PT_REGS_PARM3(ctx));
	return 0;
}

SEC("kprobe/bpfmap_delete")
int kprobe_bpfmap_delete(struct pt_regs *ctx)
{
	__u32 unused = 0;
	__u64 addr = kprobe_func_ip(ctx, &unused);
	emit_bpfmap(PWRU_KIND_KPROBE, PWRU_BPFMAP_DELETE, addr, (struct bpf_map *)PT_REGS_PARM1(ctx),
		    (void *)PT_REGS_PARM2(ctx), NULL);
	return 0;
}

/* A lookup's arguments, kept from entry to return by thread (tracking program: counts no
 * run; its kretprobe counts one). */
SEC("kprobe/bpfmap_lookup_entry")
int kprobe_bpfmap_lookup_entry(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 unused = 0;
	struct pwru_bpfmap_args a = {
		.map = PT_REGS_PARM1(ctx),
		.key = PT_REGS_PARM2(ctx),
		.addr = kprobe_func_ip(ctx, &unused),
	};
	bpf_map_update_elem(&pwru_bpfmap_args, &id, &a, BPF_ANY);
	return 0;
}

static __always_inline int kretprobe_lookup(struct pt_regs *ctx, bool elem)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pwru_bpfmap_args *a = bpf_map_lookup_elem(&pwru_bpfmap_args, &id);
	if (!a) {
		count_run(PWRU_OUT_NO_SCRATCH);
		return 0;
	}
	struct pwru_bpfmap_args args = *a;
	bpf_map_delete_elem(&pwru_bpfmap_args, &id);
	struct bpf_map *map = (struct bpf_map *)args.map;
	const void *ret = (const void *)PT_REGS_RC(ctx);
	const void *value = elem ? htab_elem_value(map, ret) : ret;
	emit_bpfmap(PWRU_KIND_KPROBE, PWRU_BPFMAP_LOOKUP, args.addr, map, (void *)args.key, value);
	return 0;
}

SEC("kretprobe/bpfmap_lookup")
int kretprobe_bpfmap_lookup(struct pt_regs *ctx) { return kretprobe_lookup(ctx, false); }

SEC("kretprobe/bpfmap_lookup_elem")
int kretprobe_bpfmap_lookup_elem(struct pt_regs *ctx) { return kretprobe_lookup(ctx, true); }

/* ---- fentry / fexit (fentry backend) --------------------------------------------------- */

SEC("fentry/bpfmap_update")
int fentry_bpfmap_update(__u64 *ctx)
{
	emit_bpfmap(PWRU_KIND_FENTRY, PWRU_BPFMAP_UPDATE, bpf_get_func_ip(ctx), (struct bpf_map *)ctx[0],
		    (void *)ctx[1], (void *)ctx[2]);
	return 0;
}

SEC("fentry/bpfmap_delete")
int fentry_bpfmap_delete(__u64 *ctx)
{
	emit_bpfmap(PWRU_KIND_FENTRY, PWRU_BPFMAP_DELETE, bpf_get_func_ip(ctx), (struct bpf_map *)ctx[0],
		    (void *)ctx[1], NULL);
	return 0;
}

/* fexit on lookup(map, key): the return value is the third slot. */
SEC("fexit/bpfmap_lookup")
int fexit_bpfmap_lookup(__u64 *ctx)
{
	emit_bpfmap(PWRU_KIND_FEXIT, PWRU_BPFMAP_LOOKUP, bpf_get_func_ip(ctx), (struct bpf_map *)ctx[0],
		    (void *)ctx[1], (void *)ctx[2]);
	return 0;
}

SEC("fexit/bpfmap_lookup_elem")
int fexit_bpfmap_lookup_elem(__u64 *ctx)
{
	struct bpf_map *map = (struct bpf_map *)ctx[0];
	emit_bpfmap(PWRU_KIND_FEXIT, PWRU_BPFMAP_LOOKUP, bpf_get_func_ip(ctx), map, (void *)ctx[1],
		    htab_elem_value(map, (void *)ctx[2]));
	return 0;
}

#endif
