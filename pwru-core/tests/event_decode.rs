//! Decoding ring buffer records: values land in the right fields, and corrupt records are
//! errors, never panics.

use std::mem::offset_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use pwru_core::event::{
    decode, seal, DecodeContext, DecodeError, ProbeKind, WallClock, RAW_EVENT_LEN,
    RECORD_HEADER_LEN,
};
use pwru_ebpf::{PwruEvent, PwruTuple};

/// Builds a record field by field at the mirror's offsets, sealed with its check word after
/// every write (as the kernel programs seal each record they submit).
struct Rec(Vec<u8>);

impl Rec {
    fn new(extra: usize) -> Rec {
        let len = RECORD_HEADER_LEN + RAW_EVENT_LEN + extra;
        let mut v = vec![0u8; len];
        v[0..2].copy_from_slice(&pwru_ebpf::PWRU_RECORD_EVENT.to_ne_bytes());
        v[2..4].copy_from_slice(&pwru_ebpf::PWRU_RECORD_VERSION.to_ne_bytes());
        v[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
        seal(&mut v);
        Rec(v)
    }
    fn put(&mut self, off: usize, bytes: &[u8]) -> &mut Self {
        let o = RECORD_HEADER_LEN + off;
        self.0[o..o + bytes.len()].copy_from_slice(bytes);
        seal(&mut self.0);
        self
    }
}

fn sample() -> Rec {
    let mut r = Rec::new(0);
    let flags = pwru_ebpf::PWRU_EV_META
        | pwru_ebpf::PWRU_EV_TUPLE
        | pwru_ebpf::PWRU_EV_DROP_REASON
        | pwru_ebpf::PWRU_EV_CB;
    let t = offset_of!(PwruEvent, tuple);
    r.put(offset_of!(PwruEvent, ts), &123456789u64.to_ne_bytes())
        .put(offset_of!(PwruEvent, addr), &11u64.to_ne_bytes())
        .put(
            offset_of!(PwruEvent, skb),
            &0xffff888012345600u64.to_ne_bytes(),
        )
        .put(
            offset_of!(PwruEvent, skb_head),
            &0xffff888099990000u64.to_ne_bytes(),
        )
        .put(offset_of!(PwruEvent, cpu), &3u32.to_ne_bytes())
        .put(offset_of!(PwruEvent, pid), &4242u32.to_ne_bytes())
        .put(offset_of!(PwruEvent, tgid), &4240u32.to_ne_bytes())
        .put(offset_of!(PwruEvent, flags), &flags.to_ne_bytes())
        .put(offset_of!(PwruEvent, comm), b"nc\0")
        .put(
            offset_of!(PwruEvent, kind),
            &[pwru_ebpf::PWRU_KIND_TRACEPOINT],
        )
        .put(offset_of!(PwruEvent, protocol), &0x0800u16.to_ne_bytes())
        .put(offset_of!(PwruEvent, netns), &4026532000u32.to_ne_bytes())
        .put(offset_of!(PwruEvent, mark), &0x10u32.to_ne_bytes())
        .put(offset_of!(PwruEvent, ifindex), &7u32.to_ne_bytes())
        .put(offset_of!(PwruEvent, len), &84u32.to_ne_bytes())
        .put(offset_of!(PwruEvent, mtu), &1500u32.to_ne_bytes())
        .put(offset_of!(PwruEvent, cb) + 4, &0xabcdu32.to_ne_bytes())
        .put(offset_of!(PwruEvent, drop_reason), &2u32.to_ne_bytes())
        .put(t + offset_of!(PwruTuple, saddr), &[10, 0, 0, 1])
        .put(t + offset_of!(PwruTuple, daddr), &[10, 0, 0, 2])
        .put(t + offset_of!(PwruTuple, sport), &40000u16.to_ne_bytes())
        .put(t + offset_of!(PwruTuple, dport), &9u16.to_ne_bytes())
        .put(
            t + offset_of!(PwruTuple, l3_proto),
            &0x0800u16.to_ne_bytes(),
        )
        .put(t + offset_of!(PwruTuple, l4_proto), &[17]);
    r
}

fn ctx() -> DecodeContext {
    let mut c = DecodeContext::new().with_builtin_tracepoints();
    c.set_drop_reason(2, "SKB_DROP_REASON_NO_SOCKET");
    c.set_interface(4026532000, 7, "veth0");
    c
}

#[test]
fn fields_land_where_the_kernel_put_them() {
    let ev = decode(&sample().0, &ctx()).unwrap();
    assert_eq!(ev.kind, ProbeKind::Tracepoint);
    assert_eq!(&*ev.function, "kfree_skb");
    assert_eq!(ev.timestamp_ns, 123456789);
    assert_eq!(ev.skb, 0xffff888012345600);
    assert_eq!(ev.skb_head, 0xffff888099990000);
    assert_eq!(ev.cpu, 3);
    assert_eq!((ev.process.pid, ev.process.tgid), (4242, 4240));
    assert_eq!(ev.process.comm.as_str(), "nc");
    let m = ev.meta.as_ref().unwrap();
    assert_eq!(
        (m.netns, m.mark, m.protocol, m.len, m.mtu),
        (4026532000, 0x10, 0x0800, 84, 1500)
    );
    assert_eq!(m.interface.to_string(), "veth0:7");
    assert_eq!(ev.cb, Some([0, 0xabcd, 0, 0, 0]));
    let t = ev.tuple.unwrap();
    assert_eq!(t.src, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(t.to_string(), "10.0.0.1:40000->10.0.0.2:9(udp)");
    assert_eq!(
        ev.drop_reason.unwrap().to_string(),
        "SKB_DROP_REASON_NO_SOCKET"
    );
    assert!(ev.tunnel.is_none() && ev.caller.is_none() && ev.stack_id.is_none());
    assert!(ev.skb_dump.is_none() && !ev.tracked);
    // Without a clock there is no wall-clock time.
    assert_eq!(ev.wall_time, None);
}

#[test]
fn packet_ids_decode_with_zero_as_none() {
    // The sample has no ids (0 in both fields): none.
    let ev = decode(&sample().0, &ctx()).unwrap();
    assert_eq!((ev.packet_id, ev.parent_packet_id), (None, None));
    let mut r = sample();
    r.put(
        offset_of!(PwruEvent, packet_id),
        &0x0001_0000_0000_0007u64.to_ne_bytes(),
    );
    let ev = decode(&r.0, &ctx()).unwrap();
    assert_eq!(
        (ev.packet_id, ev.parent_packet_id),
        (Some(0x0001_0000_0000_0007), None)
    );
    r.put(
        offset_of!(PwruEvent, parent_packet_id),
        &0x0000_0000_0000_0003u64.to_ne_bytes(),
    );
    let ev = decode(&r.0, &ctx()).unwrap();
    assert_eq!(
        (ev.packet_id, ev.parent_packet_id),
        (Some(0x0001_0000_0000_0007), Some(3))
    );
}

#[test]
fn wall_time_is_the_stamp_plus_the_contexts_clock_offset() {
    let clock = WallClock::from_offset_ns(1_600_000_000_000_000_000);
    let ev = decode(&sample().0, &ctx().with_wall_clock(clock)).unwrap();
    let want = std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 123_456_789);
    assert_eq!(ev.wall_time, Some(want));
}

#[test]
fn ipv6_dumps_prog_and_unknown_names() {
    let mut r = Rec::new(16);
    let flags = pwru_ebpf::PWRU_EV_TUNNEL
        | pwru_ebpf::PWRU_EV_PROG
        | pwru_ebpf::PWRU_EV_SKB_DUMP
        | pwru_ebpf::PWRU_EV_SHINFO_DUMP
        | pwru_ebpf::PWRU_EV_STACK
        | pwru_ebpf::PWRU_EV_TRACKED;
    let t = offset_of!(PwruEvent, tunnel);
    let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).octets();
    r.put(offset_of!(PwruEvent, flags), &flags.to_ne_bytes())
        .put(offset_of!(PwruEvent, kind), &[pwru_ebpf::PWRU_KIND_TC])
        .put(offset_of!(PwruEvent, prog_id), &77u32.to_ne_bytes())
        .put(offset_of!(PwruEvent, prog_name), b"cil_from_netdev")
        .put(offset_of!(PwruEvent, stack_id), &5i32.to_ne_bytes())
        .put(t + offset_of!(PwruTuple, saddr), &v6)
        .put(
            t + offset_of!(PwruTuple, l3_proto),
            &0x86ddu16.to_ne_bytes(),
        )
        .put(t + offset_of!(PwruTuple, l4_proto), &[6])
        .put(t + offset_of!(PwruTuple, tcp_flags), &[0x12])
        .put(offset_of!(PwruEvent, skb_dump_len), &6u16.to_ne_bytes())
        .put(offset_of!(PwruEvent, shinfo_dump_len), &4u16.to_ne_bytes())
        .put(RAW_EVENT_LEN, b"{skb}\0sh\0\0");
    let ev = decode(&r.0, &DecodeContext::new()).unwrap();
    assert_eq!(ev.kind, ProbeKind::Tc);
    assert_eq!(&*ev.function, "cil_from_netdev");
    assert_eq!(ev.bpf_prog.unwrap().id, 77);
    assert_eq!(ev.stack_id, Some(5));
    assert!(ev.tracked);
    let tun = ev.tunnel.unwrap();
    assert_eq!(tun.src, Some(IpAddr::V6(Ipv6Addr::from(v6))));
    assert_eq!(tun.tcp_flags.to_string(), "SYN|ACK");
    assert_eq!(ev.skb_dump.as_deref(), Some("{skb}"));
    assert_eq!(ev.shinfo_dump.as_deref(), Some("sh"));

    // A negative stack id (bpf_get_stackid error) is no stack.
    r.put(offset_of!(PwruEvent, stack_id), &(-14i32).to_ne_bytes());
    assert_eq!(decode(&r.0, &DecodeContext::new()).unwrap().stack_id, None);

    // Unknown function address: hex, as pwru prints it.
    let mut k = Rec::new(0);
    k.put(offset_of!(PwruEvent, kind), &[pwru_ebpf::PWRU_KIND_KPROBE])
        .put(
            offset_of!(PwruEvent, addr),
            &0xffffffff81234567u64.to_ne_bytes(),
        );
    assert_eq!(
        &*decode(&k.0, &DecodeContext::new()).unwrap().function,
        "0xffffffff81234567"
    );
    let mut c = DecodeContext::new();
    c.add_function(0xffffffff81234567, "ip_rcv");
    assert_eq!(&*decode(&k.0, &c).unwrap().function, "ip_rcv");
}

#[test]
fn corrupt_records_are_errors() {
    let good = sample().0;
    let c = ctx();
    for len in 0..good.len() {
        assert!(decode(&good[..len], &c).is_err(), "len {len}");
    }
    // Header longer than the record.
    let mut r = good.clone();
    r[4..8].copy_from_slice(&(good.len() as u32 + 1).to_ne_bytes());
    assert!(matches!(decode(&r, &c), Err(DecodeError::BadLength { .. })));
    // Unknown kind / version / probe kind.
    let mut r = good.clone();
    r[0] = 9;
    assert!(matches!(decode(&r, &c), Err(DecodeError::UnknownKind(_))));
    let mut r = good.clone();
    r[2] = 9;
    assert!(matches!(
        decode(&r, &c),
        Err(DecodeError::UnknownVersion(_))
    ));
    let mut r = sample();
    r.put(offset_of!(PwruEvent, kind), &[200]);
    assert!(matches!(
        decode(&r.0, &c),
        Err(DecodeError::UnknownProbeKind(200))
    ));
    // Dump lengths past the end.
    let mut r = sample();
    r.put(
        offset_of!(PwruEvent, flags),
        &pwru_ebpf::PWRU_EV_SKB_DUMP.to_ne_bytes(),
    )
    .put(offset_of!(PwruEvent, skb_dump_len), &100u16.to_ne_bytes());
    assert!(matches!(
        decode(&r.0, &c),
        Err(DecodeError::DumpOutOfBounds { .. })
    ));
    // The wrong version is reported as such even though the check word then fails too.
    let mut r = good.clone();
    r[2] = 1;
    assert_eq!(decode(&r, &c).unwrap_err(), DecodeError::UnknownVersion(1));
    // Trailing ring-buffer padding after a valid record is fine.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0; 8]);
    assert!(decode(&padded, &c).is_ok());
}

/// The check word covers every bit of the header and the event: flipping any one of them
/// (a record mixed from two runs differs in at least one) fails the record, by name. Bytes of
/// the header that earlier checks look at fail those checks instead.
#[test]
fn every_flipped_bit_fails_the_check_word() {
    let good = sample().0;
    let c = ctx();
    assert!(decode(&good, &c).is_ok());
    let mut mismatches = 0;
    for byte in 0..RECORD_HEADER_LEN + RAW_EVENT_LEN {
        for bit in 0..8 {
            let mut r = good.clone();
            r[byte] ^= 1 << bit;
            match decode(&r, &c) {
                Err(DecodeError::CheckMismatch { stored, computed }) => {
                    assert_ne!(stored, computed);
                    mismatches += 1;
                }
                Err(_) if byte < RECORD_HEADER_LEN => {}
                other => panic!("byte {byte} bit {bit}: {other:?}"),
            }
        }
    }
    // Every event bit, and the header bits no earlier check catches.
    assert!(mismatches >= RAW_EVENT_LEN * 8, "{mismatches} mismatches");
    // The dumps after the event are not covered: changing them changes only the text.
    let mut r = sample();
    r.0.extend_from_slice(b"x\0");
    let len = r.0.len() as u32;
    r.0[4..8].copy_from_slice(&len.to_ne_bytes());
    seal(&mut r.0);
    let mut changed = r.0.clone();
    let last = changed.len() - 2;
    changed[last] = b'y';
    assert!(decode(&changed, &c).is_ok());
}

/// The check word is the documented fold (a second, independent writing of it), so the C
/// programs and this decoder agree on a known value.
#[test]
fn check_word_is_the_documented_fold() {
    let rec = sample().0;
    let fold = |c: u64, w: u64| (c.rotate_left(7) ^ w).wrapping_mul(pwru_ebpf::PWRU_CHECK_MUL);
    let lanes = pwru_ebpf::PWRU_CHECK_LANES;
    let mut lane: Vec<u64> = (0..lanes as u64)
        .map(|k| pwru_ebpf::PWRU_CHECK_SEED ^ k)
        .collect();
    for i in 0..pwru_ebpf::PWRU_CHECK_WORDS {
        let mut w = u64::from_ne_bytes(rec[i * 8..i * 8 + 8].try_into().unwrap());
        if i == pwru_ebpf::PWRU_CHECK_WORDS - 1 {
            w &= 0x0000_0000_ffff_ffff; // the check field is the upper half of the last word
        }
        lane[i % lanes] = fold(lane[i % lanes], w);
    }
    let c = lane[1..].iter().fold(lane[0], |c, &l| fold(c, l));
    let want = (c ^ (c >> 32)) as u32;
    let at = pwru_ebpf::PWRU_CHECK_OFFSET;
    assert_eq!(
        u32::from_ne_bytes(rec[at..at + 4].try_into().unwrap()),
        want
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_records_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&data, &ctx());
    }

    #[test]
    fn mutated_records_never_panic(
        flips in proptest::collection::vec((0usize..RECORD_HEADER_LEN + RAW_EVENT_LEN + 32, any::<u8>()), 1..12),
        cut in 0usize..(RECORD_HEADER_LEN + RAW_EVENT_LEN + 33),
    ) {
        let mut r = Rec::new(32);
        r.put(offset_of!(PwruEvent, kind), &[pwru_ebpf::PWRU_KIND_KPROBE]);
        let mut data = r.0;
        for (i, v) in flips {
            data[i] = v;
        }
        let _ = decode(&data, &ctx());
        let _ = decode(&data[..cut.min(data.len())], &ctx());
    }
}

#[test]
fn a_tracepoint_caller_in_dispatch_glue_is_the_next_frame() {
    // With several probes on one tracepoint the kernel calls them through __traceiter_<name>:
    // the record carries that frame and the one after it, and the caller is the real one.
    let syms = pwru_core::symbols::KernelSymbols::parse(
        "ffffffff81000000 T __traceiter_net_dev_queue\n\
         ffffffff81001000 T __dev_queue_xmit\n\
         ffffffff81002000 T dev_hard_start_xmit\n",
    )
    .unwrap();
    let ctx = ctx().with_symbols(std::sync::Arc::new(syms));
    let caller_at = |caller: u64, next: u64| {
        let mut r = sample();
        let flags = pwru_ebpf::PWRU_EV_CALLER;
        r.put(offset_of!(PwruEvent, flags), &flags.to_ne_bytes())
            .put(offset_of!(PwruEvent, caller), &caller.to_ne_bytes())
            .put(offset_of!(PwruEvent, caller_next), &next.to_ne_bytes());
        decode(&r.0, &ctx).unwrap().caller.map(|s| s.to_string())
    };
    assert_eq!(
        caller_at(0xffffffff81000010, 0xffffffff81001020).as_deref(),
        Some("__dev_queue_xmit+0x20")
    );
    // A caller outside the glue stays, whatever the next frame.
    assert_eq!(
        caller_at(0xffffffff81002008, 0xffffffff81001020).as_deref(),
        Some("dev_hard_start_xmit+0x8")
    );
    // No next frame (a function probe, or a short stack): the glue frame is what is known.
    assert_eq!(
        caller_at(0xffffffff81000010, 0).as_deref(),
        Some("__traceiter_net_dev_queue+0x10")
    );
}

/// Packet bytes follow the dumps; their link type and wire length land in the event, and
/// lengths past the record or an unknown link type are errors.
#[test]
fn packet_bytes_follow_the_dumps() {
    use pwru_core::event::LinkType;
    let c = ctx();
    let skb_text = b"skb\0";
    let frame: Vec<u8> = (0u8..60).collect();
    let mut r = Rec::new(skb_text.len() + frame.len());
    let flags = pwru_ebpf::PWRU_EV_SKB_DUMP | pwru_ebpf::PWRU_EV_PKT;
    r.put(offset_of!(PwruEvent, flags), &flags.to_ne_bytes())
        .put(
            offset_of!(PwruEvent, kind),
            &[pwru_ebpf::PWRU_KIND_TRACEPOINT],
        )
        .put(
            offset_of!(PwruEvent, skb_dump_len),
            &(skb_text.len() as u16).to_ne_bytes(),
        )
        .put(
            offset_of!(PwruEvent, pkt_len),
            &(frame.len() as u16).to_ne_bytes(),
        )
        .put(
            offset_of!(PwruEvent, pkt_link),
            &[pwru_ebpf::PWRU_PKT_LINK_ETHERNET],
        )
        .put(offset_of!(PwruEvent, pkt_wire_len), &1514u32.to_ne_bytes())
        .put(RAW_EVENT_LEN, skb_text)
        .put(RAW_EVENT_LEN + skb_text.len(), &frame);
    let ev = decode(&r.0, &c).expect("decodes");
    assert_eq!(ev.skb_dump.as_deref(), Some("skb"));
    let p = ev.packet.expect("packet bytes");
    assert_eq!(p.link, LinkType::Ethernet);
    assert_eq!(&p.data[..], &frame[..]);
    assert_eq!(p.wire_len, 1514);
    assert!(p.is_truncated() && !ev.packet_unavailable);

    let mut long = Rec(r.0.clone());
    long.put(offset_of!(PwruEvent, pkt_len), &61u16.to_ne_bytes());
    assert!(matches!(
        decode(&long.0, &c),
        Err(DecodeError::PacketOutOfBounds { len: 61, .. })
    ));
    let mut odd = Rec(r.0.clone());
    odd.put(offset_of!(PwruEvent, pkt_link), &[7]);
    assert!(matches!(
        decode(&odd.0, &c),
        Err(DecodeError::PacketOutOfBounds { link: 7, .. })
    ));

    let mut none = Rec::new(0);
    none.put(
        offset_of!(PwruEvent, flags),
        &pwru_ebpf::PWRU_EV_PKT_UNAVAILABLE.to_ne_bytes(),
    )
    .put(
        offset_of!(PwruEvent, kind),
        &[pwru_ebpf::PWRU_KIND_TRACEPOINT],
    );
    let ev = decode(&none.0, &c).expect("decodes");
    assert!(ev.packet.is_none() && ev.packet_unavailable);
}
