//! `packet-bytes`: with packet capture on, every event of a UDP flow carries bytes that parse
//! back to the event's own tuple: Ethernet where the skb has a MAC header (receive, device
//! transmit), raw IP before the sender built one (`ip_output`).

use pwru_core::event::{Event, LinkType};
use pwru_core::Capture;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

/// Source, destination, source port, destination port of the IPv4/UDP packet in `ev`'s
/// captured bytes, or why they do not parse.
pub fn parsed_udp4(ev: &Event) -> Result<([u8; 4], [u8; 4], u16, u16), String> {
    let p = ev.packet.as_ref().ok_or("no packet bytes")?;
    let ip = match p.link {
        LinkType::Ethernet if p.data.get(12..14) == Some(&[0x08, 0x00]) => 14,
        LinkType::Ethernet => return Err("Ethernet frame without an IPv4 EtherType".into()),
        _ => 0,
    };
    let b = &p.data[..];
    let hdr = b
        .get(ip..ip + 28)
        .ok_or("shorter than IPv4 + UDP headers")?;
    if hdr[0] >> 4 != 4 || hdr[9] != 17 {
        return Err(format!("not IPv4/UDP: {:02x?}", &hdr[..10]));
    }
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    let udp = b.get(ip + ihl..ip + ihl + 4).ok_or("no UDP ports")?;
    let word = |s: &[u8]| u16::from_be_bytes([s[0], s[1]]);
    Ok((
        [hdr[12], hdr[13], hdr[14], hdr[15]],
        [hdr[16], hdr[17], hdr[18], hdr[19]],
        word(&udp[0..2]),
        word(&udp[2..4]),
    ))
}

/// Sends 2 datagrams and checks every event's bytes.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(backend: Backend) -> Result<Outcome, Outcome> {
    let pair = kit::lab("pb", 44).map_err(Outcome::Fail)?;
    let b = kit::packet_tracer(backend, kit::RX_TX, "udp and dst port 6200")
        .capture(Capture::default().with_packet(true));
    let mut session = kit::start(b).map_err(Outcome::Fail)?;
    pair.send_udp(40620, 6200, 2, 100)
        .map_err(|e| Outcome::Fail(format!("send: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 5000).map_err(Outcome::Fail)?;
    drop(session);
    let (a, b) = (pair.addr_a.octets(), pair.addr_b.octets());
    let (mut eth, mut raw) = (0, 0);
    for e in &got.events {
        if e.packet_unavailable {
            return Err(Outcome::Fail(format!(
                "{}: the kernel side could not read the packet",
                e.function
            )));
        }
        let parsed =
            parsed_udp4(e).map_err(|why| Outcome::Fail(format!("{}: {why}", e.function)))?;
        if parsed != (a, b, 40620, 6200) {
            return Err(Outcome::Fail(format!(
                "{}: bytes say {parsed:?}, the flow is {a:?}->{b:?} 40620->6200",
                e.function
            )));
        }
        let p = e.packet.as_ref().map_or(0, |p| p.wire_len);
        // 100 bytes of payload + UDP 8 + IPv4 20 (+ Ethernet 14).
        match e.packet.as_ref().map(|p| p.link) {
            Some(LinkType::Ethernet) if p == 142 => eth += 1,
            Some(LinkType::RawIp) if p == 128 => raw += 1,
            other => {
                return Err(Outcome::Fail(format!(
                    "{}: link {other:?} with wire length {p}",
                    e.function
                )))
            }
        }
    }
    if eth == 0 || raw == 0 {
        return Err(Outcome::Fail(format!(
            "{eth} Ethernet and {raw} raw-IP captures (both expected); {} events ({})",
            got.events.len(),
            kit::some_functions(&got.events, 8)
        )));
    }
    Ok(Outcome::Pass(format!(
        "{} events, bytes = tuple: {eth} Ethernet, {raw} raw IP ({})",
        got.events.len(),
        kit::some_functions(&got.events, 8)
    )))
}
