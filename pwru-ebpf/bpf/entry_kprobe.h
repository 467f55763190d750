/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Entry programs of the kprobe and kprobe.multi backends (one per skb argument position and for
 * functions without an skb), and their skb tracking programs. Included once, in order, by
 * pwru.bpf.c.
 */
#ifndef PWRU_ENTRY_KPROBE_H
#define PWRU_ENTRY_KPROBE_H

/* ---- kprobe / kprobe.multi ----------------------------------------------------------- */

static __always_inline __u64 kprobe_func_ip(struct pt_regs *ctx, __u32 *evflags)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_func_ip)) {
		*evflags |= PWRU_EV_FUNC_IP;
		return bpf_get_func_ip(ctx);
	}
	return PT_REGS_IP(ctx) - 1;
}

static __always_inline __u64 kprobe_caller(struct pt_regs *ctx)
{
	__u64 caller = 0;
	if (CFG(OUTPUT_CALLER))
		bpf_probe_read_kernel(&caller, sizeof(caller), (void *)PT_REGS_SP(ctx));
	return caller;
}

/*
 * The drop functions take the reason right after the skb: kfree_skb_reason(skb, reason)
 * (position 1) and sk_skb_reason_drop(sk, skb, reason) (position 2). Programs of those
 * positions pass the next argument as a drop reason; user space keeps it only for events of
 * a drop function (see pwru-core's decoder).
 */
static __always_inline void kprobe_next_arg(struct pt_regs *ctx, int n, struct probe_info *pi)
{
	if (n == 1)
		pi->drop_reason = (__u32)PT_REGS_PARM2(ctx);
	else if (n == 2)
		pi->drop_reason = (__u32)PT_REGS_PARM3(ctx);
	else
		return;
	pi->evflags |= PWRU_EV_DROP_REASON;
}

#define KPROBE_ENTRY(sec, name, kindv, N)                                                       \
	SEC(sec)                                                                                \
	int name(struct pt_regs *ctx)                                                           \
	{                                                                                       \
		struct probe_info pi = {.kind = kindv};                                         \
		struct sk_buff *skb = (struct sk_buff *)PT_REGS_PARM##N(ctx);                   \
		__u64 head;                                                                     \
		if (!skb_admitted(skb, &pi, &head))                                             \
			return 0;                                                               \
		pi.addr = kprobe_func_ip(ctx, &pi.evflags);                                     \
		pi.caller = kprobe_caller(ctx);                                                 \
		kprobe_next_arg(ctx, N, &pi);                                                   \
		return handle_admitted(ctx, skb, &pi, head);                                    \
	}

/* kprobe.multi programs are the same code with another kind: aya does not know the
 * kprobe.multi section name, so they live in kprobe sections and the loader loads them
 * with expected_attach_type BPF_TRACE_KPROBE_MULTI. */
KPROBE_ENTRY("kprobe/skb_1", kprobe_skb_1, PWRU_KIND_KPROBE, 1)
KPROBE_ENTRY("kprobe/skb_2", kprobe_skb_2, PWRU_KIND_KPROBE, 2)
KPROBE_ENTRY("kprobe/skb_3", kprobe_skb_3, PWRU_KIND_KPROBE, 3)
KPROBE_ENTRY("kprobe/skb_4", kprobe_skb_4, PWRU_KIND_KPROBE, 4)
KPROBE_ENTRY("kprobe/skb_5", kprobe_skb_5, PWRU_KIND_KPROBE, 5)
KPROBE_ENTRY("kprobe/multi_skb_1", kprobe_multi_skb_1, PWRU_KIND_KPROBE_MULTI, 1)
KPROBE_ENTRY("kprobe/multi_skb_2", kprobe_multi_skb_2, PWRU_KIND_KPROBE_MULTI, 2)
KPROBE_ENTRY("kprobe/multi_skb_3", kprobe_multi_skb_3, PWRU_KIND_KPROBE_MULTI, 3)
KPROBE_ENTRY("kprobe/multi_skb_4", kprobe_multi_skb_4, PWRU_KIND_KPROBE_MULTI, 4)
KPROBE_ENTRY("kprobe/multi_skb_5", kprobe_multi_skb_5, PWRU_KIND_KPROBE_MULTI, 5)

#define KPROBE_STACKID(sec, name, kindv)                                                        \
	SEC(sec)                                                                                \
	int name(struct pt_regs *ctx)                                                           \
	{                                                                                       \
		struct probe_info pi = {.kind = kindv};                                         \
		pi.addr = kprobe_func_ip(ctx, &pi.evflags);                                     \
		pi.caller = kprobe_caller(ctx);                                                 \
		return handle_by_stackid(ctx, &pi);                                             \
	}

KPROBE_STACKID("kprobe/stackid", kprobe_stackid, PWRU_KIND_KPROBE)
KPROBE_STACKID("kprobe/multi_stackid", kprobe_multi_stackid, PWRU_KIND_KPROBE_MULTI)

/* kprobe + kretprobe equivalent (attach both on skb_clone and on skb_copy). */
SEC("kprobe/clone_entry")
int kprobe_clone_entry(struct pt_regs *ctx)
{
	if ((!CFG(TRACK_SKB) && !CFG(PACKET_ID)) || !anything_kept())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u64 old = PT_REGS_PARM1(ctx);
	bpf_map_update_elem(&pwru_clone_args, &id, &old, BPF_ANY);
	return 0;
}

SEC("kretprobe/clone_exit")
int kretprobe_clone_exit(struct pt_regs *ctx)
{
	if (!anything_kept())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *old = bpf_map_lookup_elem(&pwru_clone_args, &id);
	if (!old)
		return 0;
	follow_copy(*old, PT_REGS_RC(ctx));
	bpf_map_delete_elem(&pwru_clone_args, &id);
	return 0;
}

SEC("kprobe/kfree_skbmem")
int kprobe_kfree_skbmem(struct pt_regs *ctx)
{
	skb_freed((struct sk_buff *)PT_REGS_PARM1(ctx));
	return 0;
}

SEC("kprobe/skb_free_head")
int kprobe_skb_free_head(struct pt_regs *ctx)
{
	forget_head((struct sk_buff *)PT_REGS_PARM1(ctx));
	return 0;
}

#endif
