/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * How programs read kernel memory: direct loads in BTF-typed programs, probe reads in the
 * others, and the map round trip that turns a pointer into a plain number. Included once, in
 * order, by pwru.bpf.c.
 */
#ifndef PWRU_READ_H
#define PWRU_READ_H

/* Through the per-CPU map pwru_scalar (maps.h says why). */
static __always_inline __u64 as_scalar(__u64 v)
{
	__u32 zero = 0;
	volatile __u64 *slot = bpf_map_lookup_elem(&pwru_scalar, &zero);
	if (!slot)
		return 0;
	*slot = v;
	return *slot;
}

#define SKB_HEAD(typed, skb) ((typed) ? as_scalar((__u64)(skb)->head) : (__u64)BPF_CORE_READ(skb, head))

/*
 * BTF-typed programs (tp_btf, fentry) read kernel memory with direct loads the verifier
 * turns into fault-safe loads; the others go through bpf_probe_read_kernel. `typed` is a
 * compile-time constant in every caller, so only one branch is emitted.
 */
#define RD(typed, src, a) ((typed) ? (src)->a : BPF_CORE_READ(src, a))
#define RD2(typed, src, a, b) ((typed) ? (src)->a->b : BPF_CORE_READ(src, a, b))

#endif
