//! Tracepoint programs attached on the host see real packets between two network
//! namespaces over veth, filtered in the kernel.

mod loader_common;

use std::time::{Duration, Instant};

use loader_common::*;
use pwru_core::backend::{probe_kfunc_cast, Tracepoint, TracepointFlavor};
use pwru_core::netns::{ifindex_in, NetnsSpec};
use pwru_core::object::{FilterBody, Loader, LoaderOptions};
use pwru_ebpf::*;
use pwru_filter::{
    compile_ebpf_with, dispatch_with_skb_entries, CastIds, Insn, Layer, Mode, Options, ProbeAccess,
    SkbEntry, SkbFields, SkbValue,
};
use pwru_testkit::cast_ids;

const CLOSED_PORT: u16 = 33_333;
const OTHER_PORT: u16 = 33_334;

fn config(netns: u32) -> PwruConfig {
    PwruConfig {
        flags: PWRU_CFG_FILTER_NETNS
            | PWRU_CFG_FILTER_PCAP
            | PWRU_CFG_OUTPUT_META
            | PWRU_CFG_OUTPUT_TUPLE,
        netns,
        ..Default::default()
    }
}

/// Reads records until `want` events arrived or 2 s passed without one.
fn drain(ring: &mut aya::maps::RingBuf<aya::maps::MapData>, want: usize) -> Vec<PwruEvent> {
    let mut out = Vec::new();
    while out.len() < want {
        let Some(rec) = next_record(ring, Instant::now() + Duration::from_secs(2)) else {
            break;
        };
        if let Some((hdr, ev)) = decode(&rec) {
            assert_eq!(hdr.version, PWRU_RECORD_VERSION);
            assert!(hdr.len as usize >= 8 + std::mem::size_of::<PwruEvent>());
            out.push(ev);
        }
    }
    out
}

fn run(flavor: TracepointFlavor, tag: &str, subnet: u8, name: &str) {
    if skip_without_tracepoints(name) {
        return;
    }
    let Some(no_socket) = drop_reason_value("NO_SOCKET") else {
        skip(
            name,
            "the kernel has no kfree_skb tracepoint format with SKB_DROP_REASON_NO_SOCKET in tracefs",
        );
        return;
    };
    let pair = lab(tag, subnet);
    let netns_b = inode(&pair.ns_b);
    assert_ne!(netns_b, 0);
    let mut loader = Loader::new(
        OBJECT,
        &body_udp_dport(CLOSED_PORT),
        &config(netns_b),
        &LoaderOptions::default(),
    )
    .expect("loader");
    let _link = loader
        .load_tracepoint("kfree_skb", flavor)
        .expect("attach kfree_skb");
    let mut ring = loader.take_events().expect("ring buffer");
    let lost = loader.take_lost().expect("lost counter");

    // A packet the pcap filter rejects: dropped too, but no event.
    send_udp(&pair, OTHER_PORT, 3);
    let none = drain(&mut ring, 1);
    assert!(
        none.is_empty(),
        "non-matching packets produced events: {none:?}"
    );

    let sport = send_udp(&pair, CLOSED_PORT, 1);
    let events = drain(&mut ring, 1);
    assert_eq!(
        events.len(),
        1,
        "expected one event for the drop, got {events:?}"
    );
    let ev = events[0];
    let kind = if flavor == TracepointFlavor::Btf {
        PWRU_KIND_TRACEPOINT
    } else {
        PWRU_KIND_RAW_TRACEPOINT
    };
    assert_eq!(ev.kind, kind);
    assert_eq!(ev.addr, 11, "tracepoint id of skb:kfree_skb");
    assert_ne!(ev.flags & PWRU_EV_DROP_REASON, 0);
    assert_eq!(ev.drop_reason, no_socket, "drop reason must be NO_SOCKET");
    assert_ne!(ev.flags & PWRU_EV_TUPLE, 0);
    assert_eq!(&ev.tuple.saddr[..4], &pair.addr_a.octets());
    assert_eq!(&ev.tuple.daddr[..4], &pair.addr_b.octets());
    assert_eq!(ev.tuple.sport, sport);
    assert_eq!(ev.tuple.dport, CLOSED_PORT);
    assert_eq!(ev.tuple.l3_proto, 0x0800);
    assert_eq!(ev.tuple.l4_proto, 17);
    assert_ne!(ev.flags & PWRU_EV_META, 0);
    assert_eq!(ev.netns, netns_b);
    assert_eq!(ev.protocol, 0x0800);
    assert_ne!(ev.ifindex, 0);
    // At the drop in udp_rcv the IP header is already pulled: skb->len = UDP + payload.
    assert_eq!(ev.len, 8 + 12, "UDP header + payload");
    assert_ne!(ev.skb, 0);
    // skb:kfree_skb's location argument: the UDP receive function that dropped it.
    assert_ne!(ev.flags & PWRU_EV_CALLER, 0);
    if let Some(sym) = symbolize(ev.caller) {
        assert!(
            sym.contains("udp"),
            "drop location {sym} is not in UDP code"
        );
    }
    assert_eq!(lost.total().expect("lost"), 0);
}

#[test]
fn loader_tp_btf_kfree_skb_no_socket() {
    run(
        TracepointFlavor::Btf,
        "t",
        11,
        "loader_tp_btf_kfree_skb_no_socket",
    );
}

#[test]
fn loader_raw_tp_kfree_skb_no_socket() {
    run(
        TracepointFlavor::Raw,
        "r",
        12,
        "loader_raw_tp_kfree_skb_no_socket",
    );
}

/// A tiny ring buffer flooded: every matching packet is either read or counted as lost.
#[test]
fn loader_lost_counter_counts() {
    let name = "loader_lost_counter_counts";
    if skip_without_tracepoints(name) {
        return;
    }
    let pair = lab("l", 13);
    let netns_b = inode(&pair.ns_b);
    let page = 4096;
    let mut loader = Loader::new(
        OBJECT,
        &body_udp_dport(CLOSED_PORT),
        &config(netns_b),
        &LoaderOptions {
            ring_buf_bytes: page,
            ..LoaderOptions::default()
        },
    )
    .expect("loader");
    let _link = loader
        .load_tracepoint("kfree_skb", TracepointFlavor::Btf)
        .expect("attach kfree_skb");
    let mut ring = loader.take_events().expect("ring buffer");
    let lost = loader.take_lost().expect("lost counter");
    let sent = 200;
    send_udp(&pair, CLOSED_PORT, sent);
    let read = drain(&mut ring, sent).len();
    let lost = lost.total().expect("lost") as usize;
    println!("{name}: sent {sent}, read {read}, lost {lost}");
    assert!(
        lost > 0,
        "a {page}-byte ring buffer cannot hold {sent} events"
    );
    assert_eq!(
        read + lost,
        sent,
        "every matching packet is read or counted lost"
    );
}

/// Tracepoint-only tracking follows clones through skb->head: an AF_PACKET socket in
/// namespace b makes the kernel clone every received skb; the clone, freed when the socket
/// reads it, is reported as tracked, with its own address and the original's head.
#[test]
fn loader_tracepoint_tracking_follows_clones() {
    let name = "loader_tracepoint_tracking_follows_clones";
    if skip_without_tracepoints(name) {
        return;
    }
    let pair = lab("c", 14);
    let netns_b = inode(&pair.ns_b);
    let mut cfg = config(netns_b);
    cfg.flags |= PWRU_CFG_TRACK_SKB | PWRU_CFG_TRACK_HEAD;
    let mut loader = Loader::new(
        OBJECT,
        &body_udp_dport(CLOSED_PORT),
        &cfg,
        &LoaderOptions::default(),
    )
    .expect("loader");
    let _links: Vec<_> = ["netif_receive_skb", "kfree_skb", "consume_skb"]
        .iter()
        .map(|t| {
            loader
                .load_tracepoint(t, TracepointFlavor::Btf)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
        })
        .collect();
    let mut ring = loader.take_events().expect("ring buffer");
    // A packet socket in b: every packet b receives is cloned for it.
    let sock = capture_all(&pair.ns_b);
    send_udp(&pair, CLOSED_PORT, 1);
    // Reading the datagram's clone from the packet socket frees it (earlier frames too).
    assert!(
        read_frames_until_udp(&sock, CLOSED_PORT, Duration::from_secs(5)),
        "the packet socket in b never received the datagram"
    );
    drop(sock); // frees any other queued clones
    let events = drain(&mut ring, 3);
    let first = events
        .iter()
        .find(|e| e.addr == 1)
        .unwrap_or_else(|| panic!("no netif_receive_skb event: {events:?}"));
    assert_eq!(
        first.flags & PWRU_EV_TRACKED,
        0,
        "the first sighting is a filter match"
    );
    let clone = events
        .iter()
        .find(|e| e.skb != first.skb && e.skb_head == first.skb_head)
        .unwrap_or_else(|| panic!("no event for a clone sharing the head: {events:?}"));
    assert_ne!(
        clone.flags & PWRU_EV_TRACKED,
        0,
        "the clone is found through its head"
    );
    assert!(
        clone.addr == 11 || clone.addr == 12,
        "clone freed at kfree_skb/consume_skb"
    );
    println!(
        "{name}: original {:#x}, clone {:#x} (tracepoint {}), head {:#x}",
        first.skb, clone.skb, clone.addr, clone.skb_head
    );
}

/// With the dump options, the record carries bpf_snprintf_btf text of the skb and of its
/// shared info after the event, with the lengths the event states.
#[test]
fn loader_event_carries_skb_dumps() {
    let name = "loader_event_carries_skb_dumps";
    if skip_without_tracepoints(name) {
        return;
    }
    let pair = lab("d", 15);
    let mut cfg = config(inode(&pair.ns_b));
    cfg.flags |= PWRU_CFG_OUTPUT_SKB | PWRU_CFG_OUTPUT_SHINFO | PWRU_CFG_OUTPUT_CB;
    let mut loader = Loader::new(
        OBJECT,
        &body_udp_dport(CLOSED_PORT),
        &cfg,
        &LoaderOptions::default(),
    )
    .expect("loader");
    let _link = loader
        .load_tracepoint("kfree_skb", TracepointFlavor::Btf)
        .expect("attach kfree_skb");
    let mut ring = loader.take_events().expect("ring buffer");
    send_udp(&pair, CLOSED_PORT, 1);
    let record =
        next_record(&mut ring, Instant::now() + Duration::from_secs(2)).expect("no record");
    let (hdr, ev) = decode(&record).expect("an event record");
    assert_ne!(ev.flags & PWRU_EV_SKB_DUMP, 0);
    assert_ne!(ev.flags & PWRU_EV_SHINFO_DUMP, 0);
    assert_ne!(ev.flags & PWRU_EV_CB, 0);
    let fixed = 8 + std::mem::size_of::<PwruEvent>();
    let (skb_len, sh_len) = (ev.skb_dump_len as usize, ev.shinfo_dump_len as usize);
    assert_eq!(hdr.len as usize, fixed + skb_len + sh_len);
    assert!(record.len() >= hdr.len as usize);
    let skb_text = String::from_utf8_lossy(&record[fixed..fixed + skb_len]);
    let sh_text = String::from_utf8_lossy(&record[fixed + skb_len..fixed + skb_len + sh_len]);
    assert!(skb_text.starts_with("(struct sk_buff)"), "{skb_text:.200}");
    assert!(
        sh_text.starts_with("(struct skb_shared_info)"),
        "{sh_text:.200}"
    );
    assert!(
        skb_text.contains(".len = (unsigned int)20") || skb_text.contains(".len = 20"),
        "{skb_text:.600}"
    );
    println!("{name}: skb text {skb_len} bytes, shared info text {sh_len} bytes");
}

/// `udp dst port <port>` as pwru-core builds it for an untyped program whose filters read
/// through the cast, with a twist that shows which path the program took: selectors 0 and 1
/// (what the program calls after copying the header fields out) reject everything, and the
/// skb entry continues into copies of the real filter at 2 and 3.
fn body_entry_only(port: u16, ids: CastIds, fields: SkbFields, values: &[SkbValue]) -> FilterBody {
    let expr = format!("udp dst port {port}");
    let o = Options::with_access(ProbeAccess::Cast(ids));
    let l2 = compile_ebpf_with(&expr, Layer::L2, Mode::ProbeRead, &o).expect("compiles");
    let l3 = compile_ebpf_with(&expr, Layer::L3, Mode::ProbeRead, &o).expect("compiles");
    let reject = [Insn::mov64_imm(0, 0), Insn::exit()];
    let entry = SkbEntry {
        selector: PWRU_SEL_PCAP_SKB as i32,
        fields,
        l2: 2,
        l3: 3,
    };
    let filters: [&[Insn]; 4] = [&reject, &reject, &l2.insns, &l3.insns];
    let d = dispatch_with_skb_entries(&filters, Some(&entry), values).expect("dispatch");
    FilterBody::from_insns(&d).expect("valid body")
}

/// The kfunc-cast ids and sk_buff fields, if this kernel takes kfunc-cast code in raw_tp
/// programs; `None` (after saying why) where the rules allow it to refuse.
fn raw_tp_cast(name: &str) -> Option<(CastIds, SkbFields)> {
    let variant = format!("{name} (kfunc-cast variant)");
    let ids = match cast_ids::running_kernel() {
        Ok(Some(ids)) => ids,
        Ok(None) => {
            assert!(
                !has(&variant, "rdonly_cast"),
                "the rules say this kernel has bpf_rdonly_cast, but Btf::cast_ids found none"
            );
            return None;
        }
        Err(e) => panic!("{name}: reading the kernel BTF failed: {e}"),
    };
    if let Err(e) = probe_kfunc_cast(&Tracepoint::RAW, ids) {
        assert_ne!(
            capabilities::expect("kfunc_cast_all_progs"),
            capabilities::Expect::Yes,
            "the rules expect kfunc-cast code in raw_tp programs, but the probe refused: {e}"
        );
        skip(&variant, e);
        return None;
    }
    let fields = cast_ids::running_kernel_skb_fields()
        .expect("kernel BTF")
        .expect("a kernel with bpf_rdonly_cast describes sk_buff's header fields");
    Some((ids, fields))
}

/// A raw_tp program with `PWRU_CFG_FILTER_PCAP_SKB` filters through the dispatch body's skb
/// entry (it reads the skb's header fields itself): of datagrams to two ports it reports
/// exactly those the filter names, with the tuple the packet carried.
#[test]
fn loader_raw_tp_filters_through_the_skb_entry() {
    let name = "loader_raw_tp_filters_through_the_skb_entry";
    if skip_without_tracepoints(name) {
        return;
    }
    let Some((ids, fields)) = raw_tp_cast(name) else {
        return;
    };
    let pair = lab("e", 13);
    let netns_b = inode(&pair.ns_b);
    let mut cfg = config(netns_b);
    cfg.flags |= PWRU_CFG_FILTER_PCAP_SKB;
    let mut loader = Loader::new(
        OBJECT,
        &body_entry_only(CLOSED_PORT, ids, fields, &[]),
        &cfg,
        &LoaderOptions::default(),
    )
    .expect("loader");
    let _link = loader
        .load_tracepoint("kfree_skb", TracepointFlavor::Raw)
        .expect("attach kfree_skb");
    let mut ring = loader.take_events().expect("ring buffer");

    send_udp(&pair, OTHER_PORT, 3);
    let none = drain(&mut ring, 1);
    assert!(
        none.is_empty(),
        "non-matching packets produced events: {none:?}"
    );
    let sport = send_udp(&pair, CLOSED_PORT, 2);
    let events = drain(&mut ring, 2);
    assert_eq!(events.len(), 2, "expected two drops, got {events:?}");
    for ev in events {
        assert_eq!(ev.kind, PWRU_KIND_RAW_TRACEPOINT);
        assert_eq!(&ev.tuple.saddr[..4], &pair.addr_a.octets());
        assert_eq!(&ev.tuple.daddr[..4], &pair.addr_b.octets());
        assert_eq!(ev.tuple.sport, sport);
        assert_eq!(ev.tuple.dport, CLOSED_PORT);
        assert_eq!(ev.netns, netns_b);
    }
}

/// The netns, mark and interface filters of a raw_tp program read their values through the
/// filter body's value selectors (`PWRU_CFG_FILTER_META_SKB`): with the right values the drops
/// are reported, with the event's own netns and interface (read by the helper path) equal to
/// them; a second loader on the same packets, filtering on another interface, reports none;
/// a third, whose netns selector reads the mark instead (0) and whose filter asks for netns 0,
/// reports them, which only the selector's value can make it do.
#[test]
fn loader_raw_tp_filters_netns_mark_and_interface_through_skb_values() {
    let name = "loader_raw_tp_filters_netns_mark_and_interface_through_skb_values";
    if skip_without_tracepoints(name) {
        return;
    }
    let Some((ids, fields)) = raw_tp_cast(name) else {
        return;
    };
    let paths = pwru_core::btf::Btf::vmlinux()
        .expect("kernel BTF")
        .skb_value_paths()
        .expect("a kernel with bpf_rdonly_cast describes the netns, mark and ifindex chains");
    let values =
        paths.selectors(PWRU_CFG_FILTER_NETNS | PWRU_CFG_FILTER_MARK | PWRU_CFG_FILTER_IFINDEX);
    assert_eq!(values.len(), 3, "one selector per filter");
    let pair = lab("v", 14);
    let netns_b = inode(&pair.ns_b);
    let ns_b = NetnsSpec::Path(VethPair::netns_path(&pair.ns_b));
    let ifindex_b = ifindex_in(&ns_b, &pair.if_b).expect("the lab's interface in its netns");
    let config = |ifindex: u32| {
        let mut c = config(netns_b);
        c.flags |= PWRU_CFG_FILTER_PCAP_SKB
            | PWRU_CFG_FILTER_META_SKB
            | PWRU_CFG_FILTER_MARK
            | PWRU_CFG_FILTER_IFINDEX;
        c.mark = 0;
        c.mark_mask = u32::MAX;
        c.ifindex = ifindex;
        c
    };
    let body = body_entry_only(CLOSED_PORT, ids, fields, &values);
    let mut swapped = values.clone();
    assert_eq!(
        swapped[0].selector, PWRU_SEL_SKB_NETNS as i32,
        "netns first"
    );
    swapped[0].paths = paths.mark.clone();
    let proof_body = body_entry_only(CLOSED_PORT, ids, fields, &swapped);
    let mut proof_config = config(ifindex_b);
    proof_config.netns = 0;
    let opts = LoaderOptions::default();
    let mut right = Loader::new(OBJECT, &body, &config(ifindex_b), &opts).expect("loader");
    let mut wrong = Loader::new(OBJECT, &body, &config(ifindex_b + 1000), &opts).expect("loader");
    let mut proof = Loader::new(OBJECT, &proof_body, &proof_config, &opts).expect("loader");
    let mut links = Vec::new();
    let mut rings = Vec::new();
    for l in [&mut right, &mut wrong, &mut proof] {
        links.push(
            l.load_tracepoint("kfree_skb", TracepointFlavor::Raw)
                .expect("attach"),
        );
        rings.push(l.take_events().expect("ring buffer"));
    }
    send_udp(&pair, CLOSED_PORT, 2);
    for (i, what) in [(0, "right values"), (2, "netns selector reading the mark")] {
        let events = drain(&mut rings[i], 2);
        assert_eq!(
            events.len(),
            2,
            "{what}: expected two drops, got {events:?}"
        );
        for ev in events {
            assert_eq!(ev.netns, netns_b, "{what}: the event's netns (helper path)");
            assert_eq!(
                ev.ifindex, ifindex_b,
                "{what}: the event's interface (helper path)"
            );
            assert_eq!(ev.mark, 0);
            assert_eq!(ev.tuple.dport, CLOSED_PORT);
        }
    }
    let none = drain(&mut rings[1], 1);
    assert!(
        none.is_empty(),
        "another interface's filter reported: {none:?}"
    );
}
