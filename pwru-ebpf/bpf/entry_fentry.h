/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Entry programs of the fentry backend (typed arguments; one per skb argument position and for
 * functions without an skb), and its skb tracking programs (fexit on skb_clone/skb_copy).
 * Included once, in order, by pwru.bpf.c.
 */
#ifndef PWRU_ENTRY_FENTRY_H
#define PWRU_ENTRY_FENTRY_H

/* ---- fentry (typed arguments) --------------------------------------------------------- */

/* As kprobe_next_arg; bpf_get_func_arg fails (and nothing is set) when there is no such
 * argument, so one program serves functions of any arity. */
static __always_inline void fentry_next_arg(__u64 *ctx, int n, struct probe_info *pi)
{
	__u64 v = 0;
	if (n > 2 || bpf_get_func_arg(ctx, n, &v) != 0)
		return;
	pi->drop_reason = (__u32)v;
	pi->evflags |= PWRU_EV_DROP_REASON;
}

#define FENTRY_ENTRY(N)                                                                         \
	SEC("fentry/skb_" #N)                                                                   \
	int fentry_skb_##N(__u64 *ctx)                                                          \
	{                                                                                       \
		struct probe_info pi = {.kind = PWRU_KIND_FENTRY, .typed = 1,                   \
					.evflags = PWRU_EV_FUNC_IP};                            \
		struct sk_buff *skb = (struct sk_buff *)ctx[N - 1];                             \
		__u64 head;                                                                     \
		if (!skb_admitted(skb, &pi, &head))                                             \
			return 0;                                                               \
		pi.addr = bpf_get_func_ip(ctx);                                                 \
		pi.caller = stack_caller(ctx, FENTRY_CALLER_FRAME);                             \
		fentry_next_arg(ctx, N, &pi);                                                   \
		return handle_admitted(ctx, skb, &pi, head);                                    \
	}

FENTRY_ENTRY(1)
FENTRY_ENTRY(2)
FENTRY_ENTRY(3)
FENTRY_ENTRY(4)
FENTRY_ENTRY(5)

/* The skb comes from a map, not from a typed argument: read it with probe reads (typed 0). */
SEC("fentry/stackid")
int fentry_stackid(__u64 *ctx)
{
	struct probe_info pi = {.kind = PWRU_KIND_FENTRY, .evflags = PWRU_EV_FUNC_IP};
	pi.addr = bpf_get_func_ip(ctx);
	pi.caller = stack_caller(ctx, FENTRY_CALLER_FRAME);
	return handle_by_stackid(ctx, &pi);
}

/* fexit on skb_clone / skb_copy (fexit capable kernels): ret is the last argument slot. */
SEC("fexit/skb_clone")
int fexit_skb_clone(__u64 *ctx) { follow_copy(ctx[0], ctx[2]); return 0; }

SEC("fexit/skb_copy")
int fexit_skb_copy(__u64 *ctx) { follow_copy(ctx[0], ctx[2]); return 0; }

SEC("fentry/kfree_skbmem")
int fentry_kfree_skbmem(__u64 *ctx)
{
	skb_freed((struct sk_buff *)ctx[0]);
	return 0;
}

SEC("fentry/skb_free_head")
int fentry_skb_free_head(__u64 *ctx)
{
	forget_head((struct sk_buff *)ctx[0]);
	return 0;
}

#endif
