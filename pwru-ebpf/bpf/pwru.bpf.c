/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * pwru-rs kernel programs: one entry program per (backend, skb argument position), the
 * tracepoint set, tracking helpers and tc/XDP tracing programs, in one object. All shared
 * logic is inlined; the only function in .text is the filter stub pwru_filter (filter.h),
 * which the loader replaces with the compiled filter dispatch body (it must stay the last and
 * only .text function).
 *
 * The headers below are one translation unit, split by concern, and included in dependency
 * order: shared numbers and structs, then configuration, maps, memory reads, parsing,
 * filters, output, stack, tracking, the shared entry path, and the entry programs of each
 * backend, and the map operation programs.
 */
#include <linux/bpf.h>
#include "kernel.h"
#include <bpf/bpf_helpers.h>
/* kernel.h defines pt_regs with the kernel's register names */
#define __VMLINUX_H__
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#include "abi.h"
#include "event.h"
#include "config.h"
#include "maps.h"
#include "read.h"
#include "parse.h"
#include "filter.h"
#include "output.h"
#include "stack.h"
#include "track.h"
#include "handle.h"
#include "entry_kprobe.h"
#include "entry_fentry.h"
#include "entry_tracepoint.h"
#include "entry_bpf_prog.h"
#include "bpfmap.h"
