/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Tiny tc and XDP programs (with BTF) that tests attach to an interface so that the
 * tc/XDP tracing programs (fentry/fexit with attach_prog_fd) have something to trace.
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
