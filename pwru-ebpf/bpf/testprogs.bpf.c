/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Tiny tc and XDP programs (with BTF) that tests attach to an interface so that the
 * tc/XDP tracing programs (fentry/fexit with attach_prog_fd) have something to trace; and
 * the record-writing floors the kernel_cost bench compares pwru-rs's emitting run with.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("classifier")
int pwru_test_tc(struct __sk_buff *skb)
{
	return skb->len > 0 ? 0 /* TC_ACT_OK */ : 0;
}

SEC("xdp")
int pwru_test_xdp(struct xdp_md *ctx)
{
	return ctx->data_end > ctx->data ? XDP_PASS : XDP_PASS;
}

/* Counts packets by length in a hash map: lookups and updates, whose helpers the verifier turns
 * into calls of the map's own functions (__htab_map_lookup_elem, htab_map_update_elem), for
 * the tests of BPF helper tracing. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} pwru_test_lengths SEC(".maps");

SEC("classifier")
int pwru_test_tc_map(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u64 one = 1;
	__u64 *seen = bpf_map_lookup_elem(&pwru_test_lengths, &len);

	if (seen)
		__sync_fetch_and_add(seen, 1);
	else
		bpf_map_update_elem(&pwru_test_lengths, &len, &one, BPF_ANY);
	return 0 /* TC_ACT_OK */;
}

/*
 * Floors of an emitting run, for the kernel_cost bench: what writing a record of pwru-rs's
 * size (its header and event, 312 bytes) costs before any of its fields are worked out. All
 * on tp_btf/kfree_skb, beside pwru-rs's own programs, on the same packets.
 */
#define PWRU_TEST_RECORD_WORDS 39

struct pwru_test_record {
	__u64 w[PWRU_TEST_RECORD_WORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} pwru_test_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pwru_test_record);
} pwru_test_scratch SEC(".maps");

/* Records a floor could not write (ring buffer full): a failed write is cheaper than a real
 * one, so the bench must know its floors wrote every record. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pwru_test_ring_full SEC(".maps");

static __always_inline void count_ring_full(void)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&pwru_test_ring_full, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* The ring buffer alone: reserve the record in place, write one word, submit. */
SEC("tp_btf/kfree_skb")
int pwru_test_reserve_floor(unsigned long long *ctx)
{
	struct pwru_test_record *r = bpf_ringbuf_reserve(&pwru_test_ring, sizeof(*r), 0);

	if (!r) {
		count_ring_full();
		return 0;
	}
	r->w[0] = ctx[0];
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* pwru-rs's way of writing: clear a per-CPU scratch record, then copy it into the ring. */
static __always_inline struct pwru_test_record *scratch(unsigned long long *ctx)
{
	__u32 key = 0;
	struct pwru_test_record *r = bpf_map_lookup_elem(&pwru_test_scratch, &key);

	if (r) {
		__builtin_memset(r, 0, sizeof(*r));
		r->w[0] = ctx[0];
	}
	return r;
}

SEC("tp_btf/kfree_skb")
int pwru_test_copy_floor(unsigned long long *ctx)
{
	struct pwru_test_record *r = scratch(ctx);

	if (r && bpf_ringbuf_output(&pwru_test_ring, r, sizeof(*r), 0))
		count_ring_full();
	return 0;
}

/* The copy plus what every event carries from helpers: the time, the task, the CPU, the
 * command name. */
SEC("tp_btf/kfree_skb")
int pwru_test_event_floor(unsigned long long *ctx)
{
	struct pwru_test_record *r = scratch(ctx);

	if (!r)
		return 0;
	r->w[1] = bpf_ktime_get_ns();
	r->w[2] = bpf_get_current_pid_tgid();
	r->w[3] = bpf_get_smp_processor_id();
	bpf_get_current_comm(&r->w[4], 16);
	if (bpf_ringbuf_output(&pwru_test_ring, r, sizeof(*r), 0))
		count_ring_full();
	return 0;
}
