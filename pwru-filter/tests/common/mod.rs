//! Shared pieces of the differential tests: test packets, the compiled corpus, the kernel
//! oracle. The oracles themselves (libpcap's interpreter, rbpf, the kernel harness) are in
//! pwru-testkit.
#![allow(dead_code)]

use std::sync::OnceLock;

pub use pwru_testkit::capabilities;
use pwru_testkit::filter_harness::{self as kernel, Harness};
#[allow(unused_imports)] // each test file uses some of them
pub use pwru_testkit::pcap_interp::RunLibpcap;
#[allow(unused_imports)]
pub use pwru_testkit::rbpf_vm::RbpfFilter;
use pwru_testkit::{cast_ids as kit_cast_ids, corpus};

use pwru_filter::insn::Insn;
use pwru_filter::{compile, translate, Cbpf, Layer, Mode};

/// A tiny deterministic PRNG (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn csum_free_ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8], ihl_words: u8) -> Vec<u8> {
    let opts = (ihl_words as usize - 5) * 4;
    let total = 20 + opts + payload.len();
    let mut p = vec![
        0x40 | ihl_words,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        proto,
        0,
        0,
    ];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend(std::iter::repeat_n(1u8, opts)); // NOP options
    p.extend_from_slice(payload);
    p
}

fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut p = vec![0x60, 0, 0, 0, (len >> 8) as u8, len as u8, next, 64];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

fn tcp(sport: u16, dport: u16, flags: u8, data_off_words: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        data_off_words << 4,
        flags,
        0xff,
        0xff,
        0,
        0,
        0,
        0,
    ]);
    // MSS option first (kind 2 len 4), then NOPs.
    let opts = (data_off_words as usize - 5) * 4;
    if opts >= 4 {
        p.extend_from_slice(&[2, 4, 5, 0xb4]);
        p.extend(std::iter::repeat_n(1u8, opts - 4));
    }
    p.extend_from_slice(payload);
    p
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut p = Vec::new();
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[(len >> 8) as u8, len as u8, 0, 0]);
    p.extend_from_slice(payload);
    p
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&dst);
    p.extend_from_slice(&src);
    p.extend_from_slice(&ethertype.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn vlan(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        out.extend_from_slice(&t.to_be_bytes());
        // The next ethertype: another 802.1Q tag or the payload's.
        let next: u16 = if i + 1 < tags.len() {
            0x8100
        } else {
            ethertype
        };
        out.extend_from_slice(&next.to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const BCAST: [u8; 6] = [0xff; 6];
const MCAST: [u8; 6] = [0x01, 0x00, 0x5e, 0, 0, 1];
const H1: [u8; 4] = [10, 0, 0, 1];
const H2: [u8; 4] = [10, 0, 0, 2];
const H3: [u8; 4] = [192, 168, 1, 10];
const H4: [u8; 4] = [172, 16, 0, 5];
const H5: [u8; 4] = [10, 0, 0, 200];

fn v6(last: u8, prefix: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&prefix);
    a[15] = last;
    a
}

/// IP packets (network header first) that exercise the corpus.
pub fn l3_templates() -> Vec<Vec<u8>> {
    let db8 = [0x20, 0x01, 0x0d, 0xb8];
    let fe80 = [0xfe, 0x80, 0, 0];
    let inner_tcp = csum_free_ipv4(6, H1, H2, &tcp(1234, 80, 0x02, 5, b"GET /"), 5);
    let vxlan_payload = {
        let mut p = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
        p.extend(eth(MAC_A, MAC_B, 0x0800, &inner_tcp));
        p
    };
    let geneve_payload = {
        let mut p = vec![0, 0, 0x65, 0x58, 0, 0, 0x2a, 0];
        p.extend(eth(MAC_A, MAC_B, 0x0800, &inner_tcp));
        p
    };
    vec![
        csum_free_ipv4(6, H1, H2, &tcp(40000, 80, 0x02, 6, b""), 5),
        csum_free_ipv4(6, H3, H4, &tcp(443, 51000, 0x12, 5, &[0x16, 3, 1, 0, 5]), 5),
        csum_free_ipv4(6, H1, H5, &tcp(1000, 22, 0x18, 8, b"GET / HTTP/1.1"), 6),
        csum_free_ipv4(6, H2, H1, &tcp(8080, 8050, 0x04, 5, &[0; 30]), 5),
        csum_free_ipv4(6, H4, H3, &tcp(30001, 23, 0x01, 5, b""), 15),
        csum_free_ipv4(
            17,
            H1,
            H2,
            &udp(5353, 53, &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]),
            5,
        ),
        csum_free_ipv4(17, H3, H1, &udp(35000, 8080, &[0x12; 40]), 5),
        csum_free_ipv4(17, H4, H5, &udp(50000, 4789, &vxlan_payload), 5),
        csum_free_ipv4(17, H2, H4, &udp(50001, 6081, &geneve_payload), 5),
        csum_free_ipv4(1, H1, H3, &[8, 0, 0, 0, 0, 1, 0, 1, 0xaa, 0xbb], 5),
        csum_free_ipv4(1, H5, H1, &[0, 0, 0, 0, 0, 1, 0, 1], 5),
        csum_free_ipv4(1, H1, [224, 0, 0, 1], &[3, 1, 0, 0, 0, 0, 0, 0], 5),
        csum_free_ipv4(47, H2, H3, &[0; 24], 5),
        csum_free_ipv4(132, H1, H2, &[0; 16], 5),
        {
            let mut p = csum_free_ipv4(6, H1, H2, &tcp(1, 2, 0x02, 5, b""), 5);
            p[6] = 0x20; // more fragments
            p
        },
        ipv6(6, v6(1, db8), v6(2, db8), &tcp(40000, 80, 0x02, 5, b"GET ")),
        ipv6(17, v6(1, fe80), v6(9, db8), &udp(5353, 53, &[1, 2, 3, 4])),
        ipv6(
            58,
            v6(1, db8),
            v6(3, fe80),
            &[128, 0, 0, 0, 0, 1, 0, 1, 0x12, 0x34, 0x56],
        ),
        ipv6(58, v6(1, fe80), v6(3, fe80), &[129, 0, 0, 0, 0, 1, 0, 1]),
        // Hop-by-hop header before TCP.
        ipv6(0, v6(1, db8), v6(2, db8), &{
            let mut p = vec![6, 0, 1, 4, 0, 0, 0, 0];
            p.extend(tcp(22, 40000, 0x12, 5, b""));
            p
        }),
    ]
}

/// Ethernet frames (MAC header first).
pub fn l2_templates() -> Vec<Vec<u8>> {
    let l3 = l3_templates();
    let mut out = Vec::new();
    for (i, ip) in l3.iter().enumerate() {
        let ethertype = if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
        let dst = match i % 4 {
            0 => MAC_B,
            1 => BCAST,
            2 => MCAST,
            _ => MAC_A,
        };
        out.push(eth(dst, MAC_A, ethertype, ip));
        if i % 3 == 0 {
            out.push(eth(MAC_A, MAC_B, 0x8100, &vlan(&[100], ethertype, ip)));
        }
        if i % 5 == 1 {
            out.push(eth(MAC_A, MAC_B, 0x8100, &vlan(&[100, 200], ethertype, ip)));
        }
    }
    let arp = [
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
    ];
    out.push(eth(BCAST, MAC_A, 0x0806, &arp));
    out.push(eth(BCAST, MAC_B, 0x8035, &arp));
    out.push(eth(MAC_A, MAC_B, 0x88b5, &[0x55; 20]));
    out
}

/// Templates, every truncation of each, mutations and random packets.
pub fn packets(
    layer: Layer,
    mutations_per_template: usize,
    random: usize,
    seed: u64,
) -> Vec<Vec<u8>> {
    let templates = match layer {
        Layer::L2 => l2_templates(),
        Layer::L3 => l3_templates(),
    };
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for t in &templates {
        for len in 0..=t.len() {
            out.push(t[..len].to_vec());
        }
        for _ in 0..mutations_per_template {
            let mut m = t.clone();
            let flips = 1 + rng.below(4);
            for _ in 0..flips {
                // Mostly header bytes, where filters look.
                let at = if rng.below(4) == 0 {
                    rng.below(m.len())
                } else {
                    rng.below(m.len().min(64))
                };
                m[at] = rng.byte();
            }
            if rng.below(3) == 0 {
                let len = rng.below(m.len() + 1);
                m.truncate(len);
            }
            out.push(m);
        }
    }
    for _ in 0..random {
        let len = rng.below(200);
        out.push((0..len).map(|_| rng.byte()).collect());
    }
    out
}

/// Every corpus expression compiled for both layers (compiled once per test binary).
pub fn compiled_corpus() -> &'static [(String, Cbpf, Cbpf)] {
    static CORPUS: OnceLock<Vec<(String, Cbpf, Cbpf)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut exprs = corpus::expressions();
        exprs.insert(0, String::new());
        exprs
            .into_iter()
            .map(|e| {
                let l2 = compile(&e, Layer::L2).unwrap_or_else(|err| panic!("{err}"));
                let l3 = compile(&e, Layer::L3).unwrap_or_else(|err| panic!("{err}"));
                (e, l2, l3)
            })
            .collect()
    })
}

/// A short name of an expression for messages.
pub fn short(expr: &str) -> String {
    if expr.len() > 60 {
        format!("{}... ({} chars)", &expr[..60], expr.len())
    } else {
        format!("{expr:?}")
    }
}

/// The running kernel's ids for kfunc-cast reads; None (after printing the SKIP line for
/// `test`) when the kernel config says it has no bpf_rdonly_cast. An error of pwru-core's BTF
/// reader, or no kfunc where the config says there is one, fails the test.
pub fn cast_ids(test: &str) -> Option<pwru_filter::CastIds> {
    let expected = capabilities::has(test, "rdonly_cast");
    match kit_cast_ids::running_kernel() {
        Ok(Some(ids)) if expected => Some(ids),
        Ok(Some(_)) => panic!(
            "{test}: bpf_rdonly_cast was found, but tests/capabilities.conf says this kernel \
             lacks it: fix pwru-core's Btf::cast_ids, or the rules"
        ),
        Ok(None) if expected => panic!(
            "{test}: the kernel config says this kernel has bpf_rdonly_cast, but \
             pwru-core's Btf::cast_ids found none"
        ),
        Ok(None) => None,
        Err(e) => panic!("{test}: reading the kfunc-cast ids failed: {e}"),
    }
}

/// True when the kernel can load and test-run programs here: root, and the kernel config has
/// BPF_PROG_TEST_RUN (else prints the SKIP line). Then the probe must succeed: its error is a
/// failure of the kernel harness, never a reason to skip.
pub fn kernel_available(test: &str) -> bool {
    if !capabilities::is_root() {
        capabilities::skip(test, "needs root to load and test-run BPF programs");
        return false;
    }
    if !capabilities::has(test, "test_run") {
        return false;
    }
    if let Err(e) = kernel::probe_test_run() {
        panic!("{test}: loading and test-running a 2-instruction program failed: {e}");
    }
    true
}

/// A filter body loaded in the kernel behind the SCHED_CLS harness.
pub struct KernelFilter {
    prog: kernel::LoadedProgram,
}

impl KernelFilter {
    pub fn load(body: &[Insn], mode: Mode) -> Result<KernelFilter, String> {
        let prog = kernel::load(
            Harness::SchedCls.prog_type(),
            &kernel::harness(body, mode, Harness::SchedCls),
        )
        .map_err(|e| e.to_string())?;
        Ok(KernelFilter { prog })
    }

    /// [`KernelFilter::load`] of a body with address-set lookups and its map's entries.
    pub fn load_with_sets(
        body: &[Insn],
        mode: Mode,
        keys: &[[u8; 8]],
    ) -> Result<KernelFilter, String> {
        let prog = kernel::load_with_sets(
            Harness::SchedCls.prog_type(),
            &kernel::harness(body, mode, Harness::SchedCls),
            keys,
        )
        .map_err(|e| e.to_string())?;
        Ok(KernelFilter { prog })
    }

    pub fn run(&self, packet: &[u8]) -> Result<u32, String> {
        self.prog
            .test_run(&kernel::sched_cls_frame(packet), 1)
            .map(|r| r.retval)
            .map_err(|e| e.to_string())
    }
}

/// Translates or panics with the expression.
pub fn body(expr: &str, cbpf: &Cbpf, mode: Mode) -> Vec<Insn> {
    translate(cbpf, mode).unwrap_or_else(|e| panic!("translate {} ({:?}): {e}", short(expr), mode))
}
