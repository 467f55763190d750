//! Test support of pwru-rs, shared by every test, bench and example test of the workspace and
//! by the distro-kernel guest (`tests/src/bin/vm_guest`). Not published: nothing here is part
//! of a library's API.
//!
//! - [`capabilities`]: what this machine is expected to support (`tests/capabilities.conf`),
//!   the one place a test decides whether it may skip; [`root`]: the root check.
//! - [`netlab`]: network namespaces joined by veth, and traffic through them.
//! - [`packet_socket`]: AF_PACKET capture sockets (skb clones on real traffic).
//! - [`filter_harness`]: a pwru-filter body loaded into the kernel and test-run on a packet.
//! - [`pcap_interp`] and [`rbpf_vm`]: the filter oracles (libpcap's interpreter, rbpf).
//! - [`corpus`]: the pcap-filter expressions the tests and benches share.
//! - [`cast_ids`]: the kernel's kfunc-cast ids through pwru-core's BTF reader.
//! - [`kernel_lists`]: kernel-sized inputs for the list parsers (a traceable list).
//! - [`sys`]: every `unsafe` call of the kit and of the tests, behind safe functions.
#![deny(missing_docs)]

pub mod capabilities;
pub mod cast_ids;
pub mod corpus;
pub mod filter_harness;
pub mod kernel_lists;
pub mod netlab;
pub mod packet_socket;
pub mod pcap_interp;
pub mod rbpf_vm;
pub mod root;
pub mod svg_check;
pub mod sys;
pub mod test_programs;
