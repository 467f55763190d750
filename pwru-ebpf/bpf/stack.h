/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The kernel stack a program runs on: the key that links functions without an skb argument to
 * the skb last seen on the same stack, and the caller read from a stack frame. Included once,
 * in order, by pwru.bpf.c.
 */
#ifndef PWRU_STACK_H
#define PWRU_STACK_H

/*
 * Which kernel stack this program runs on: the key linking functions without an skb argument
 * to the skb last seen on the same stack (pwru's "stack id"; pwru finds the outermost frame
 * pointer, which kernels unwound with ORC, Debian's among them, do not keep). The BPF stack
 * (r10) lives on the kernel stack of the traced code. A task stack is named by its base;
 * interrupt stacks (softirqs run at irq exit or local_bh_enable) by the CPU.
 */
#define TASK_STACK_BYTES 16384 /* x86-64 THREAD_SIZE without KASAN */

static __always_inline __u64 stack_key(void)
{
	__u64 fp;
	asm volatile("%[fp] = r10" : [fp] "=r"(fp));
	__u64 sp = as_scalar(fp);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 base = (__u64)BPF_CORE_READ(task, stack);
	if (base && sp - base < TASK_STACK_BYTES)
		return base;
	return 1 + (__u64)bpf_get_smp_processor_id();
}


/*
 * A frame of the kernel stack seen from the program: frame 0 is the program itself, frame 1
 * the glue (bpf_trace_runN for tracepoints, the trampoline for fentry). Tracepoints: frame 2
 * is the function that fired the tracepoint. fentry: frame 2 is the traced function, frame 3
 * its caller (checked on Debian 6.1/6.12 and the 6.18 host).
 */
#define TP_CALLER_FRAME 2
#define FENTRY_CALLER_FRAME 3

/*
 * The caller at `frame` and the frame after it. Tracepoints: when more than one probe is
 * attached to a tracepoint, the kernel calls them through __traceiter_<name>, one frame deeper
 * than the function that fired it; user space knows the symbols and takes `next` then.
 */
static __always_inline void stack_callers(void *ctx, __u64 frame, __u64 *caller, __u64 *next)
{
	__u64 ip[2] = {};
	*caller = 0;
	*next = 0;
	if (!CFG(OUTPUT_CALLER))
		return;
	long n = bpf_get_stack(ctx, ip, sizeof(ip), frame & BPF_F_SKIP_FIELD_MASK);
	if (n >= (long)sizeof(ip[0]))
		*caller = ip[0];
	if (n >= (long)sizeof(ip))
		*next = ip[1];
}

static __always_inline __u64 stack_caller(void *ctx, __u64 frame)
{
	__u64 ip = 0;
	if (!CFG(OUTPUT_CALLER))
		return 0;
	if (bpf_get_stack(ctx, &ip, sizeof(ip), frame & BPF_F_SKIP_FIELD_MASK) < (long)sizeof(ip))
		return 0;
	return ip;
}

#endif
