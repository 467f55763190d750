/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Minimal kernel type definitions for CO-RE. Only the fields pwru reads are listed;
 * preserve_access_index makes clang record every access as a relocation, which the
 * loader resolves against the running kernel's BTF. Builds do not depend on the build
 * machine's kernel.
 */
#ifndef PWRU_KERNEL_H
#define PWRU_KERNEL_H

#include <linux/types.h>

/* The kernel's bool. */
typedef _Bool bool;
#define true 1
#define false 0

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	char name[16];
	int ifindex;
	unsigned int mtu;
	possible_net_t nd_net;
};

struct sock_common {
	possible_net_t skc_net;
};

struct sock {
	struct sock_common __sk_common;
};

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	char cb[48];
	unsigned int len;
	__u8 pkt_type : 3;
	__u8 cloned : 1;
	__u32 mark;
	__u16 inner_network_header;
	__u16 transport_header;
	__u16 network_header;
	__u16 mac_header;
	__be16 protocol;
	__u32 tail;
	__u32 end;
	unsigned char *head;
	unsigned char *data;
};

typedef struct {
	int counter;
} atomic_t;

struct skb_shared_info {
	atomic_t dataref;
};

struct task_struct {
	void *stack;
};

struct xdp_rxq_info {
	struct net_device *dev;
};

struct xdp_buff {
	void *data;
	void *data_end;
	struct xdp_rxq_info *rxq;
};

struct bpf_map {
	__u32 key_size;
	__u32 value_size;
	__u32 id;
	char name[16];
};

/* The hash map's element: lookups inlined by the verifier call __htab_map_lookup_elem, which
 * returns the element; the value is after the key, at key + round_up(key_size, 8). */
struct htab_elem {
	__u32 hash;
	char key[0];
};

#pragma clang attribute pop

/* Only the enumerator's existence is checked (bpf_core_enum_value_exists). */
enum skb_drop_reason {
	SKB_DROP_REASON_NOT_SPECIFIED = 2,
};

/* x86_64 register layout as seen by kprobe programs (the context itself, not CO-RE). */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
	unsigned long orig_ax, ip, cs, flags, sp, ss;
};

#endif
