//! Shared by the loader_*.rs tests: hand-made filter dispatch bodies (pwru-filter's calling
//! convention: R1 = selector, R2 = data, R3 = data_end, R0 != 0 = match), the loader tests'
//! use of the veth lab, record decoding and the root/feature checks.
#![allow(dead_code)]

use std::os::fd::OwnedFd;

use pwru_core::backend::{probe, Driver, Tracepoint};
use pwru_core::object::FilterBody;
use pwru_ebpf::{PwruEvent, PwruRecordHdr};
#[allow(unused_imports)]
pub use pwru_testkit::netlab::VethPair;
use pwru_testkit::{packet_socket, sys};

#[allow(unused_imports)] // each test file uses some of them
pub use pwru_testkit::capabilities::{self, has, skip, skip_unless_root};

// ---- a tiny eBPF assembler (enough for test bodies) ----------------------------------

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    [code, (src << 4) | dst, o[0], o[1], i[0], i[1], i[2], i[3]]
}
fn mov_imm(dst: u8, imm: i32) -> [u8; 8] {
    insn(0xb7, dst, 0, 0, imm)
}
fn mov_reg(dst: u8, src: u8) -> [u8; 8] {
    insn(0xbf, dst, src, 0, 0)
}
fn add_imm(dst: u8, imm: i32) -> [u8; 8] {
    insn(0x07, dst, 0, 0, imm)
}
fn and_imm(dst: u8, imm: i32) -> [u8; 8] {
    insn(0x57, dst, 0, 0, imm)
}
fn ldx_b(dst: u8, src: u8, off: i16) -> [u8; 8] {
    insn(0x71, dst, src, off, 0)
}
fn ldx_h(dst: u8, src: u8, off: i16) -> [u8; 8] {
    insn(0x69, dst, src, off, 0)
}
fn jne_imm(dst: u8, imm: i32, off: i16) -> [u8; 8] {
    insn(0x55, dst, 0, off, imm)
}
fn call(helper: i32) -> [u8; 8] {
    insn(0x85, 0, 0, 0, helper)
}
fn exit() -> [u8; 8] {
    insn(0x95, 0, 0, 0, 0)
}
const PROBE_READ_KERNEL: i32 = 113;

/// Never matches.
pub fn body_never() -> FilterBody {
    FilterBody::from_bytes(&[mov_imm(0, 0), exit()].concat()).unwrap()
}

/// Matches IPv4 UDP to `port` (no IP options). Selector bit 0 clear = data is an Ethernet
/// header (selectors 0 and 2), set = data is the IP header (selectors 1 and 3), so it serves
/// as pcap L2/L3 and tunnel L2/L3 body alike. Uses 32 bytes of stack and probe_read_kernel.
pub fn body_udp_dport(port: u16) -> FilterBody {
    let be_port = i32::from(u16::from_le_bytes(port.to_be_bytes()));
    let p: Vec<[u8; 8]> = vec![
        mov_reg(6, 2),           // 0: r6 = data
        mov_reg(7, 1),           // 1
        and_imm(7, 1),           // 2: r7 = selector & 1
        jne_imm(7, 0, 9),        // 3: L3 data -> 13
        mov_reg(1, 10),          // 4
        add_imm(1, -8),          // 5
        mov_imm(2, 2),           // 6
        mov_reg(3, 6),           // 7
        add_imm(3, 12),          // 8
        call(PROBE_READ_KERNEL), // 9: ethertype
        ldx_h(1, 10, -8),        // 10
        jne_imm(1, 0x0008, 15),  // 11: not IPv4 -> 27
        add_imm(6, 14),          // 12: r6 = IP header
        mov_reg(1, 10),          // 13
        add_imm(1, -32),         // 14
        mov_imm(2, 24),          // 15
        mov_reg(3, 6),           // 16
        call(PROBE_READ_KERNEL), // 17: IP header + UDP header
        jne_imm(0, 0, 8),        // 18 -> 27
        ldx_b(1, 10, -32),       // 19: version/ihl
        jne_imm(1, 0x45, 6),     // 20 -> 27
        ldx_b(1, 10, -23),       // 21: protocol
        jne_imm(1, 17, 4),       // 22 -> 27
        ldx_h(1, 10, -10),       // 23: UDP destination port
        jne_imm(1, be_port, 2),  // 24 -> 27
        mov_imm(0, 1),           // 25
        exit(),                  // 26
        mov_imm(0, 0),           // 27
        exit(),                  // 28
    ];
    FilterBody::from_bytes(&p.concat()).unwrap()
}

// ---- skipping ------------------------------------------------------------------------

/// Prints `SKIP <name>: <reason>` and returns true when the test cannot run here: not root, or
/// the kernel config lacks tp_btf. Where tp_btf is expected, pwru-core's probe must accept it.
pub fn skip_without_tracepoints(name: &str) -> bool {
    skip_unless_root(name) || !backend_usable(name, &Tracepoint::BTF)
}

/// The capability name of a probed backend in tests/capabilities.conf: the driver's name.
pub fn capability(backend: &dyn Driver) -> &'static str {
    backend.name()
}

/// Whether `backend` can be used here, judged by the kernel config (tests/capabilities.conf);
/// pwru-core's probe must agree, or the test fails. Prints the SKIP line when it is not usable.
pub fn backend_usable(name: &str, backend: &dyn Driver) -> bool {
    capabilities::check_probe(name, capability(backend), probe(backend))
}

// ---- waiting (on file descriptors, never on a fixed sleep) ------------------------------

/// The next record of `ring`, waiting for the kernel's wake-up on the ring buffer's fd until
/// `deadline`; None when none came by then.
pub fn next_record(
    ring: &mut aya::maps::RingBuf<aya::maps::MapData>,
    deadline: std::time::Instant,
) -> Option<Vec<u8>> {
    use std::os::fd::AsFd;
    loop {
        if let Some(r) = ring.next() {
            return Some(r.to_vec());
        }
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        if left.is_zero() {
            return None;
        }
        sys::wait_readable(ring.as_fd(), left);
    }
}

/// Reads (and so frees) frames from the AF_PACKET socket `sock` until one is an IPv4 UDP
/// datagram to `port`, waiting on the socket until `timeout`; true when it was seen. Frames
/// before it (ARP) are read too.
pub fn read_frames_until_udp(sock: &OwnedFd, port: u16, timeout: std::time::Duration) -> bool {
    packet_socket::read_until(sock, |f| packet_socket::is_udp_to(f, port), timeout)
}

/// An AF_PACKET socket on every interface of namespace `ns`: every packet it receives is
/// cloned for it.
pub fn capture_all(ns: &str) -> OwnedFd {
    packet_socket::open_all_in(ns).expect("AF_PACKET socket")
}

// ---- the veth lab ----------------------------------------------------------------------

/// Namespaces joined by veth (removed on drop, even when the test fails), named after this
/// process and `tag` (at most 3 characters), with 10.248.`subnet`.1 and .2.
pub fn lab(tag: &str, subnet: u8) -> VethPair {
    VethPair::create(&format!("{}{tag}", std::process::id() % 100_000), subnet)
        .expect("network namespaces (root has them)")
}

/// Inode of namespace `name` (what the netns filter compares, 32 bits in the event).
pub fn inode(name: &str) -> u32 {
    VethPair::netns_inode(name).expect("netns inode") as u32
}

/// Runs `f` on a thread that has entered namespace `name`.
pub fn run_in<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    VethPair::in_netns(name, move || Ok(f())).expect("netns thread")
}

/// Sends `count` UDP datagrams of 12 bytes from namespace a to b:`port` from a port the kernel
/// picks; returns that source port.
pub fn send_udp(pair: &VethPair, port: u16, count: usize) -> u16 {
    let dst = std::net::SocketAddr::from((pair.addr_b, port));
    let src = std::net::SocketAddr::from((pair.addr_a, 0));
    run_in(&pair.ns_a, move || {
        let s = std::net::UdpSocket::bind(src).expect("bind");
        for _ in 0..count {
            let _ = s.send_to(b"pwru-rs test", dst);
        }
        s.local_addr().map(|a| a.port()).unwrap_or(0)
    })
}

// ---- records ---------------------------------------------------------------------------

/// Decodes one ring buffer record into its header and event (None if it is not an event).
pub fn decode(record: &[u8]) -> Option<(PwruRecordHdr, PwruEvent)> {
    sys::decode_record(record)
}

/// The value of SKB_DROP_REASON_<name> on this kernel, from the kfree_skb tracepoint format.
pub fn drop_reason_value(name: &str) -> Option<u32> {
    for base in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if let Ok(f) = std::fs::read_to_string(format!("{base}/events/skb/kfree_skb/format")) {
            let needle = format!("\"{name}\" }}");
            let at = f.find(&needle)?;
            let open = f[..at].rfind('{')?;
            return f[open + 1..at]
                .trim()
                .trim_end_matches(',')
                .trim()
                .parse()
                .ok();
        }
    }
    None
}

/// Whether tracepoint category/name exists on this kernel.
pub fn tracepoint_exists(category: &str, name: &str) -> bool {
    let in_tracefs = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|b| std::path::Path::new(&format!("{b}/events/{category}/{name}")).exists());
    // Without tracefs, the kernel BTF's `btf_trace_<name>` typedef says the same.
    in_tracefs
        || pwru_core::btf::Btf::vmlinux().is_ok_and(|btf| {
            btf.find_by_name(pwru_core::btf::Kind::Typedef, &format!("btf_trace_{name}"))
                .is_some()
        })
}

/// Name of the kernel function containing `addr`, from /proc/kallsyms (None if hidden).
pub fn symbolize(addr: u64) -> Option<String> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    let mut best: Option<(u64, &str)> = None;
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let (Some(a), Some(kind), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if !matches!(kind, "T" | "t") {
            continue;
        }
        let Ok(a) = u64::from_str_radix(a, 16) else {
            continue;
        };
        if a != 0 && a <= addr && best.is_none_or(|(b, _)| a > b) {
            best = Some((a, name));
        }
    }
    best.map(|(_, n)| n.to_string())
}

/// Kernel functions (from /sys/kernel/btf/vmlinux) whose argument `position` (1-based) is a
/// `struct sk_buff *` and that ftrace can trace (available_filter_functions), in BTF order.
pub fn skb_functions(position: usize) -> Vec<String> {
    let Ok(btf) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        return Vec::new();
    };
    // None when the list is unreadable (then every BTF function is a candidate).
    let traceable: Option<std::collections::HashSet<String>> =
        ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .iter()
            .find_map(|b| std::fs::read_to_string(format!("{b}/available_filter_functions")).ok())
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                    .collect()
            });
    let u32_at = |o: usize| -> u32 {
        btf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    };
    let hdr_len = u32_at(4) as usize;
    let (type_off, type_len) = (u32_at(8) as usize, u32_at(12) as usize);
    let str_off = u32_at(16) as usize;
    let strings = hdr_len + str_off;
    let name = |off: u32| -> &str {
        let s = &btf[strings + off as usize..];
        std::str::from_utf8(&s[..s.iter().position(|&b| b == 0).unwrap_or(0)]).unwrap_or("")
    };
    // (kind, name_off, size_or_type, offset of the kind-specific data, vlen)
    let mut types = vec![(0u32, 0u32, 0u32, 0usize, 0usize)];
    let mut o = hdr_len + type_off;
    let end = o + type_len;
    while o + 12 <= end {
        let (name_off, info, st) = (u32_at(o), u32_at(o + 4), u32_at(o + 8));
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        let extra = match kind {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 | 19 => vlen * 12,
            6 | 13 => vlen * 8,
            _ => 0,
        };
        types.push((kind, name_off, st, o + 12, vlen));
        o += 12 + extra;
    }
    let skip_mods = |mut id: u32| -> u32 {
        while let Some(&(k, _, st, _, _)) = types.get(id as usize) {
            if matches!(k, 8..=11 | 18) {
                id = st;
            } else {
                break;
            }
        }
        id
    };
    let mut out = Vec::new();
    for &(kind, name_off, proto, _, _) in &types {
        if kind != 12 {
            continue;
        }
        let Some(&(pk, _, _, data, vlen)) = types.get(proto as usize) else {
            continue;
        };
        if pk != 13 || vlen < position {
            continue;
        }
        let param_type = u32_at(data + (position - 1) * 8 + 4);
        let Some(&(k, _, target, _, _)) = types.get(skip_mods(param_type) as usize) else {
            continue;
        };
        if k != 2 {
            continue;
        }
        let Some(&(sk, sname, _, _, _)) = types.get(skip_mods(target) as usize) else {
            continue;
        };
        let fname = name(name_off);
        if sk == 4
            && name(sname) == "sk_buff"
            && traceable.as_ref().is_none_or(|t| t.contains(fname))
        {
            out.push(fname.to_string());
        }
    }
    out
}
