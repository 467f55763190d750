//! pcap-ng export: events with packet bytes as a capture file Wireshark and tshark open, each
//! packet annotated with what pwru-rs knows about the hop.
//!
//! A [`PcapngWriter`] writes a Section Header Block when it starts (and at each
//! [`restart`](PcapngWriter::restart), for rotated files), an Interface Description Block the
//! first time it meets a (network namespace, ifindex, link type) triple, and one Enhanced Packet
//! Block per event that carries [`Event::packet`]. Interfaces are named `NAME@NETNS`
//! (`ifINDEX@NETNS` when the name is unknown, `nodev@NETNS` for skbs without a device); an
//! interface seen with both Ethernet and raw-IP captures (before and after its MAC header was
//! built) gets one block per link type, since a pcap-ng interface has one link type.
//!
//! Each packet block has two comments: the function (or tracepoint) name alone, then
//! `key=value` pairs: probe kind, skb address, packet id, network namespace, mark, drop reason
//! (those the event has). Timestamps are the event's wall-clock time in nanoseconds; an event
//! decoded without a wall clock keeps its kernel monotonic time (nanoseconds since boot).
//!
//! Events without packet bytes (capture off, or the kernel could not read them) are skipped
//! and counted in [`PcapngStats::skipped`]; a capture file has no place for a packet without
//! bytes.
//!
//! Every block is assembled in memory and handed to the sink in one `write_all`, so a file cut
//! short (a crash, a full disk) holds whole blocks up to the cut and readers stop there.
//!
//! ```
//! use pwru_core::event::{Event, LinkType, PacketBytes, ProbeKind};
//! use pwru_core::format::pcapng::PcapngWriter;
//! let mut w = PcapngWriter::new(Vec::new()).unwrap();
//! let mut ev = Event::new(ProbeKind::Tracepoint, "netif_receive_skb");
//! ev.packet = Some(PacketBytes::new(LinkType::RawIp, vec![0x45; 20].into(), 20));
//! assert!(w.write_event(&ev).unwrap());
//! assert!(!w.write_event(&Event::new(ProbeKind::Kprobe, "ip_rcv")).unwrap()); // no bytes
//! assert_eq!((w.stats().packets, w.stats().skipped, w.stats().interfaces), (1, 1, 1));
//! let file = w.into_inner();
//! assert_eq!(&file[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::UNIX_EPOCH;

use crate::event::{Event, LinkType, ProbeKind};

/// `LINKTYPE_ETHERNET`: frames from the Ethernet header.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// `LINKTYPE_RAW`: packets from the IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u16 = 101;

const BLOCK_SHB: u32 = 0x0A0D_0D0A;
const BLOCK_IDB: u32 = 0x0000_0001;
const BLOCK_EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_DESCRIPTION: u16 = 3;
const OPT_IF_TSRESOL: u16 = 9;
/// Timestamps in units of 10^-9 s.
const TSRESOL_NANOSECONDS: u8 = 9;

/// What a [`PcapngWriter`] has written since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PcapngStats {
    /// Enhanced Packet Blocks: events written.
    pub packets: u64,
    /// Events skipped because they carry no packet bytes.
    pub skipped: u64,
    /// Interface Description Blocks in the current section.
    pub interfaces: u32,
    /// Bytes handed to the sink in the current section (all blocks, headers included).
    pub section_bytes: u64,
    /// Events the stream reported lost (ring buffer full) while
    /// [`write_stream`](PcapngWriter::write_stream) read it.
    pub lost: u64,
}

/// Why [`PcapngWriter::write_stream`] stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcapngStreamError {
    /// The event stream failed.
    #[error("reading events: {0}")]
    Stream(#[source] crate::Error),
    /// Writing to the sink failed (disk full, closed pipe...): free space or choose another file.
    #[error("writing the pcap-ng capture: {0}")]
    Write(#[source] io::Error),
}

/// Writes events as pcap-ng blocks to `W` (see the [module documentation](self)).
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Interface id in the current section of each (netns, ifindex, link type).
    interfaces: HashMap<(u32, u32, LinkType), u32>,
    /// The block being assembled, reused across blocks.
    block: Vec<u8>,
    /// Comment text being assembled, reused across events.
    text: String,
    stats: PcapngStats,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a capture in `out`: writes the Section Header Block.
    pub fn new(out: W) -> io::Result<Self> {
        let mut w = PcapngWriter {
            out,
            interfaces: HashMap::new(),
            block: Vec::with_capacity(512),
            text: String::new(),
            stats: PcapngStats::default(),
        };
        w.write_section_header()?;
        Ok(w)
    }

    /// Continues in a new sink (a rotated file): writes a new Section Header Block there and
    /// describes interfaces again as they reappear. Returns the previous sink, flushed.
    pub fn restart(&mut self, out: W) -> io::Result<W> {
        self.out.flush()?;
        let old = std::mem::replace(&mut self.out, out);
        self.interfaces.clear();
        self.stats.interfaces = 0;
        self.stats.section_bytes = 0;
        self.write_section_header()?;
        Ok(old)
    }

    /// Writes `ev` as an Enhanced Packet Block (after its interface's description when the
    /// interface is new in this section). Returns false, writing nothing, when the event has
    /// no packet bytes.
    pub fn write_event(&mut self, ev: &Event) -> io::Result<bool> {
        let Some(pkt) = &ev.packet else {
            self.stats.skipped += 1;
            return Ok(false);
        };
        let id = self.interface_id(ev, pkt.link)?;
        let ns = match ev.wall_time {
            Some(t) => t
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            None => ev.timestamp_ns,
        };
        // A capture is at most PWRU_PKT_MAX bytes; a longer one cannot come from the kernel
        // side, but the field is 32 bits, so say so rather than wrap.
        let data = &pkt.data[..pkt.data.len().min(u32::MAX as usize)];
        let captured = data.len() as u32;
        let original = pkt.wire_len.max(captured);

        self.text.clear();
        annotate(ev, &mut self.text);
        let b = &mut self.block;
        b.clear();
        put_u32(b, BLOCK_EPB);
        put_u32(b, 0); // total length, set by finish_block
        put_u32(b, id);
        put_u32(b, (ns >> 32) as u32);
        put_u32(b, ns as u32);
        put_u32(b, captured);
        put_u32(b, original);
        b.extend_from_slice(data);
        pad(b);
        put_option(b, OPT_COMMENT, ev.function.as_bytes());
        put_option(b, OPT_COMMENT, self.text.as_bytes());
        put_option(b, OPT_END, &[]);
        self.finish_block()?;
        self.stats.packets += 1;
        Ok(true)
    }

    /// Writes every event of a session's stream ([`Session::events`](crate::Session::events)
    /// or [`EventStream`](crate::session::EventStream)) until the stream ends, then flushes.
    /// Loss notices are counted in [`PcapngStats::lost`]. Stop it early by dropping the future
    /// (for example in a `select!` against a signal); [`flush`](Self::flush) then.
    pub async fn write_stream<S>(&mut self, mut items: S) -> Result<PcapngStats, PcapngStreamError>
    where
        S: futures::Stream<Item = Result<crate::session::Item, crate::Error>> + Unpin,
    {
        use futures::StreamExt;
        while let Some(item) = items.next().await {
            match item.map_err(PcapngStreamError::Stream)? {
                crate::session::Item::Event(ev) => {
                    self.write_event(&ev).map_err(PcapngStreamError::Write)?;
                }
                crate::session::Item::Lost(l) => self.stats.lost += l.count,
                // Map operations carry no packet.
                crate::session::Item::BpfMap(_) => {}
            }
        }
        self.flush().map_err(PcapngStreamError::Write)?;
        Ok(self.stats)
    }

    /// What was written so far.
    pub fn stats(&self) -> PcapngStats {
        self.stats
    }

    /// Flushes the sink.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Ends the capture and returns the sink (not flushed: a `BufWriter` flushes on drop or
    /// when asked).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn write_section_header(&mut self) -> io::Result<()> {
        let b = &mut self.block;
        b.clear();
        put_u32(b, BLOCK_SHB);
        put_u32(b, 0);
        put_u32(b, BYTE_ORDER_MAGIC);
        b.extend_from_slice(&1u16.to_le_bytes()); // major version
        b.extend_from_slice(&0u16.to_le_bytes()); // minor version
        b.extend_from_slice(&(-1i64).to_le_bytes()); // section length: not given
        let appl = concat!("pwru-rs ", env!("CARGO_PKG_VERSION"));
        put_option(b, OPT_SHB_USERAPPL, appl.as_bytes());
        put_option(b, OPT_END, &[]);
        self.finish_block()
    }

    /// The id of the event's interface in this section, describing it first if it is new.
    fn interface_id(&mut self, ev: &Event, link: LinkType) -> io::Result<u32> {
        let (netns, ifindex, name) = match &ev.meta {
            Some(m) => (m.netns, m.interface.ifindex, m.interface.name.as_deref()),
            None => (0, 0, None),
        };
        if let Some(&id) = self.interfaces.get(&(netns, ifindex, link)) {
            return Ok(id);
        }
        let id = self.stats.interfaces;
        let if_name = match (name, ifindex) {
            (Some(n), _) => format!("{n}@{netns}"),
            (None, 0) => format!("nodev@{netns}"),
            (None, i) => format!("if{i}@{netns}"),
        };
        let (linktype, from) = match link {
            LinkType::Ethernet => (LINKTYPE_ETHERNET, "Ethernet frames from the MAC header"),
            LinkType::RawIp => (LINKTYPE_RAW, "IP packets from the network header"),
        };
        let description =
            format!("ifindex {ifindex} in network namespace {netns}: {from} (pwru-rs)");
        let b = &mut self.block;
        b.clear();
        put_u32(b, BLOCK_IDB);
        put_u32(b, 0);
        b.extend_from_slice(&linktype.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes()); // reserved
        put_u32(b, 0); // snaplen: no limit stated (each packet says what it holds)
        put_option(b, OPT_IF_NAME, if_name.as_bytes());
        put_option(b, OPT_IF_DESCRIPTION, description.as_bytes());
        put_option(b, OPT_IF_TSRESOL, &[TSRESOL_NANOSECONDS]);
        put_option(b, OPT_END, &[]);
        self.finish_block()?;
        self.interfaces.insert((netns, ifindex, link), id);
        self.stats.interfaces += 1;
        Ok(id)
    }

    /// Sets the block's two length fields and writes it whole.
    fn finish_block(&mut self) -> io::Result<()> {
        let len = self.block.len() as u32 + 4;
        self.block[4..8].copy_from_slice(&len.to_le_bytes());
        put_u32(&mut self.block, len);
        self.out.write_all(&self.block)?;
        self.stats.section_bytes += u64::from(len);
        Ok(())
    }
}

/// The second comment of a packet: what pwru-rs knows about the hop, as `key=value` pairs.
fn annotate(ev: &Event, s: &mut String) {
    let _ = write!(s, "probe={} skb={:#x}", probe_name(ev.kind), ev.skb);
    if let Some(id) = ev.packet_id {
        let _ = write!(s, " packet_id={id}");
    }
    if let Some(m) = &ev.meta {
        let _ = write!(s, " netns={} mark={:#x}", m.netns, m.mark);
    }
    if let Some(r) = &ev.drop_reason {
        let _ = write!(s, " drop_reason={r}");
    }
    if let Some(p) = &ev.packet {
        if p.is_truncated() {
            let _ = write!(s, " captured={}/{}", p.data.len(), p.wire_len);
        }
    }
}

fn probe_name(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Kprobe => "kprobe",
        ProbeKind::KprobeMulti => "kprobe-multi",
        ProbeKind::Fentry => "fentry",
        ProbeKind::Fexit => "fexit",
        ProbeKind::Tracepoint => "tracepoint",
        ProbeKind::RawTracepoint => "raw-tracepoint",
        ProbeKind::Tc => "tc",
        ProbeKind::Xdp => "xdp",
        ProbeKind::XdpExit => "xdp-exit",
    }
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// Pads to a multiple of 4 bytes with zeros.
fn pad(b: &mut Vec<u8>) {
    b.resize(b.len().next_multiple_of(4), 0);
}

/// One option: code, length, value padded to 4 bytes. Values longer than an option holds
/// (64 KiB) are cut.
fn put_option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX) & !3)];
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend_from_slice(value);
    pad(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DropReason, Interface, Meta, PacketBytes};
    use std::time::{Duration, SystemTime};

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// (type, body) of each block, checking both length fields and 4-byte alignment.
    fn blocks(file: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < file.len() {
            let kind = u32_at(file, at);
            let len = u32_at(file, at + 4) as usize;
            assert_eq!(len % 4, 0, "block length {len} not a multiple of 4");
            assert_eq!(u32_at(file, at + len - 4) as usize, len, "trailing length");
            out.push((kind, file[at + 8..at + len - 4].to_vec()));
            at += len;
        }
        assert_eq!(at, file.len());
        out
    }

    /// Options (code, value) from `body[at..]` up to opt_endofopt.
    fn options(body: &[u8], mut at: usize) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let code = u16::from_le_bytes([body[at], body[at + 1]]);
            let len = usize::from(u16::from_le_bytes([body[at + 2], body[at + 3]]));
            if code == OPT_END {
                assert_eq!(len, 0);
                assert_eq!(at + 4, body.len(), "options end the block");
                return out;
            }
            out.push((code, body[at + 4..at + 4 + len].to_vec()));
            at += 4 + len.next_multiple_of(4);
        }
    }

    fn event(function: &str, netns: u32, ifindex: u32, link: LinkType, data: &[u8]) -> Event {
        let mut ev = Event::new(ProbeKind::Tracepoint, function);
        ev.skb = 0xffff_8880_0000_1200;
        ev.meta = Some(Meta {
            netns,
            mark: 0x2a,
            interface: Interface::new(ifindex, Some("veth0")),
            ..Meta::default()
        });
        ev.wall_time = Some(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789));
        ev.packet = Some(PacketBytes::new(link, data.to_vec().into(), 1500));
        ev
    }

    #[test]
    fn blocks_are_whole_aligned_and_describe_each_interface_once() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let a = event("ip_rcv", 7, 2, LinkType::Ethernet, &[1, 2, 3, 4, 5]);
        let b = event("ip_output", 7, 2, LinkType::RawIp, &[0x45; 21]);
        let c = event("kfree_skb", 8, 2, LinkType::Ethernet, &[9; 3]);
        for ev in [&a, &b, &a, &c] {
            assert!(w.write_event(ev).unwrap());
        }
        let stats = w.stats();
        let file = w.into_inner();
        assert_eq!(stats.section_bytes, file.len() as u64);
        let kinds: Vec<u32> = blocks(&file).iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                BLOCK_SHB, BLOCK_IDB, BLOCK_EPB, BLOCK_IDB, BLOCK_EPB, BLOCK_EPB, BLOCK_IDB,
                BLOCK_EPB
            ]
        );
        assert_eq!((stats.packets, stats.interfaces), (4, 3));
        // Packet blocks point at their interfaces: 0, 1, 0, 2.
        let ids: Vec<u32> = blocks(&file)
            .iter()
            .filter(|(k, _)| *k == BLOCK_EPB)
            .map(|(_, body)| u32_at(body, 0))
            .collect();
        assert_eq!(ids, [0, 1, 0, 2]);
    }

    #[test]
    fn section_header_states_byte_order_and_version() {
        let file = PcapngWriter::new(Vec::new()).unwrap().into_inner();
        let all = blocks(&file);
        let (kind, body) = &all[0];
        assert_eq!(*kind, BLOCK_SHB);
        assert_eq!(u32_at(body, 0), BYTE_ORDER_MAGIC);
        assert_eq!(&body[4..8], &[1, 0, 0, 0]);
        assert_eq!(&body[8..16], &[0xff; 8]);
        let opts = options(body, 16);
        assert!(opts[0].1.starts_with(b"pwru-rs "), "{opts:?}");
    }

    #[test]
    fn interface_block_names_link_type_and_resolution() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        w.write_event(&event("f", 4026532246, 3, LinkType::RawIp, &[0x45]))
            .unwrap();
        let mut unnamed = event("f", 9, 5, LinkType::Ethernet, &[1]);
        unnamed.meta.as_mut().unwrap().interface = Interface::new(5, None);
        w.write_event(&unnamed).unwrap();
        let mut nodev = event("f", 9, 0, LinkType::Ethernet, &[1]);
        nodev.meta = None;
        w.write_event(&nodev).unwrap();
        let file = w.into_inner();
        let idbs: Vec<Vec<u8>> = blocks(&file)
            .into_iter()
            .filter(|(k, _)| *k == BLOCK_IDB)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(idbs.len(), 3);
        assert_eq!(u16::from_le_bytes([idbs[0][0], idbs[0][1]]), LINKTYPE_RAW);
        assert_eq!(
            u16::from_le_bytes([idbs[1][0], idbs[1][1]]),
            LINKTYPE_ETHERNET
        );
        let names: Vec<String> = idbs
            .iter()
            .map(|b| {
                let o = options(b, 8);
                assert!(o.contains(&(OPT_IF_TSRESOL, vec![9])), "{o:?}");
                String::from_utf8(o[0].1.clone()).unwrap()
            })
            .collect();
        assert_eq!(names, ["veth0@4026532246", "if5@9", "nodev@0"]);
    }

    #[test]
    fn packet_block_carries_time_lengths_bytes_and_comments() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let mut ev = event("kfree_skb", 7, 2, LinkType::Ethernet, &[1, 2, 3, 4, 5]);
        ev.packet_id = Some(77);
        ev.drop_reason = Some(DropReason::new(2, Some("SKB_DROP_REASON_NO_SOCKET")));
        w.write_event(&ev).unwrap();
        let file = w.into_inner();
        let all = blocks(&file);
        let (_, epb) = all.iter().find(|(k, _)| *k == BLOCK_EPB).unwrap();
        let ns = 1_700_000_000_123_456_789u64;
        assert_eq!(u32_at(epb, 4), (ns >> 32) as u32);
        assert_eq!(u32_at(epb, 8), ns as u32);
        assert_eq!((u32_at(epb, 12), u32_at(epb, 16)), (5, 1500));
        assert_eq!(&epb[20..25], &[1, 2, 3, 4, 5]);
        assert_eq!(&epb[25..28], &[0, 0, 0], "padding is zero");
        let opts = options(epb, 28);
        assert_eq!(opts[0], (OPT_COMMENT, b"kfree_skb".to_vec()));
        let text = String::from_utf8(opts[1].1.clone()).unwrap();
        assert_eq!(
            text,
            "probe=tracepoint skb=0xffff888000001200 packet_id=77 netns=7 mark=0x2a \
             drop_reason=SKB_DROP_REASON_NO_SOCKET captured=5/1500"
        );
    }

    #[test]
    fn events_without_bytes_are_counted_not_written() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let before = w.get_ref().len();
        let mut ev = event("ip_rcv", 1, 1, LinkType::Ethernet, &[]);
        ev.packet = None;
        ev.packet_unavailable = true;
        assert!(!w.write_event(&ev).unwrap());
        assert_eq!(w.get_ref().len(), before);
        assert_eq!((w.stats().packets, w.stats().skipped), (0, 1));
    }

    #[test]
    fn restart_begins_a_new_section_that_redescribes_interfaces() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let ev = event("ip_rcv", 1, 1, LinkType::Ethernet, &[1]);
        w.write_event(&ev).unwrap();
        let first = w.restart(Vec::new()).unwrap();
        w.write_event(&ev).unwrap();
        let second = w.into_inner();
        for file in [&first, &second] {
            let kinds: Vec<u32> = blocks(file).iter().map(|(k, _)| *k).collect();
            assert_eq!(kinds, [BLOCK_SHB, BLOCK_IDB, BLOCK_EPB]);
        }
    }

    #[test]
    fn a_stream_is_written_until_it_ends() {
        use crate::session::Item;
        let ev = event("ip_rcv", 1, 1, LinkType::Ethernet, &[1, 2]);
        let items = futures::stream::iter([
            Ok(Item::Event(ev.clone())),
            Ok(Item::Event(Event::new(ProbeKind::Kprobe, "no_bytes"))),
            Ok(Item::Event(ev)),
        ]);
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let stats = futures::executor::block_on(w.write_stream(items)).unwrap();
        assert_eq!((stats.packets, stats.skipped, stats.lost), (2, 1, 0));
        let kinds: Vec<u32> = blocks(w.get_ref()).iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [BLOCK_SHB, BLOCK_IDB, BLOCK_EPB, BLOCK_EPB]);
    }

    #[test]
    fn a_failing_sink_is_an_error_not_a_panic() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(PcapngWriter::new(Full).is_err());
    }
}
