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
