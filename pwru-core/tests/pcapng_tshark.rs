//! pcap-ng export read back by a real reader: traffic traced on the host (tracepoint backend,
//! packet bytes on) is written with `format::pcapng::PcapngWriter` and read by tshark, whose
//! packet count, dissection (addresses, ports, a VXLAN packet's inner header) and comments
//! must equal the events that produced the file; a file cut mid-block still reads up to the
//! cut. SKIPs without root or without tshark (tests/setup.sh installs it).

mod tracer_common;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pwru_core::event::LinkType;
use pwru_core::format::pcapng::PcapngWriter;
use pwru_core::{Backend, Capture, Event, Session, Tracer};
use pwru_testkit::netlab::{self, VethPair};
use tracer_common::*;

const QUIET: Duration = Duration::from_millis(300);
const LIMIT: Duration = Duration::from_secs(5);

fn have_tshark(name: &str) -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIP {name}: tshark is not installed (run tests/setup.sh as root)");
    }
    ok
}

fn attach(pcap: &str, capture: Capture) -> Session {
    Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(pcap)
        .capture(capture)
        .build()
        .expect("build")
        .attach()
        .expect("attach")
}

fn temp_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pwru-pcapng-{}-{name}.pcapng", std::process::id()))
}

/// Writes `events` to `path`; returns the events written (those with packet bytes).
fn write_capture<'a>(path: &Path, events: &'a [Event]) -> Vec<&'a Event> {
    let file = std::fs::File::create(path).expect("create capture file");
    let mut w = PcapngWriter::new(std::io::BufWriter::new(file)).expect("section header");
    let mut written = Vec::new();
    for ev in events {
        if w.write_event(ev).expect("write event") {
            written.push(ev);
        }
    }
    w.flush().expect("flush");
    assert_eq!(w.stats().packets, written.len() as u64);
    assert_eq!(w.stats().skipped, (events.len() - written.len()) as u64);
    written
}

/// One row per packet tshark reads: comments, ip.src, ip.dst, udp.srcport, udp.dstport,
/// each field's occurrences joined by `|` (outer first). Also returns tshark's stderr.
fn tshark_rows(path: &Path) -> (Vec<Vec<String>>, String) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-E", "separator=/t", "-E", "aggregator=|"])
        .args(["-E", "occurrence=a"])
        .args(["-e", "frame.comment", "-e", "ip.src", "-e", "ip.dst"])
        .args(["-e", "udp.srcport", "-e", "udp.dstport"])
        .output()
        .expect("run tshark");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    (rows, stderr)
}

fn ip(addr: Option<IpAddr>) -> String {
    addr.map(|a| a.to_string()).unwrap_or_default()
}

/// The row tshark should print for `ev`: the function as first comment; the outer tuple, and
/// the inner one after it when `inner` is set.
fn check_row(row: &[String], ev: &Event, inner: bool) {
    let t = ev.tuple.expect("tuple captured");
    let comments: Vec<&str> = row[0].split('|').collect();
    assert_eq!(comments[0], &*ev.function, "first comment: {row:?}");
    assert!(
        comments[1].contains(&format!("skb={:#x}", ev.skb))
            && comments[1].contains("probe=tracepoint"),
        "second comment: {row:?}"
    );
    let mut src = ip(t.src);
    let mut dst = ip(t.dst);
    let mut sport = t.sport.to_string();
    let mut dport = t.dport.to_string();
    if inner {
        let i = ev.tunnel.expect("tunnel tuple captured");
        src = format!("{src}|{}", ip(i.src));
        dst = format!("{dst}|{}", ip(i.dst));
        sport = format!("{sport}|{}", i.sport);
        dport = format!("{dport}|{}", i.dport);
    }
    assert_eq!(row[1..5], [src, dst, sport, dport], "{}", ev.function);
}

fn to_port(events: &[Event], port: u16) -> usize {
    events
        .iter()
        .filter(|e| e.tuple.is_some_and(|t| t.dport == port))
        .count()
}

#[test]
fn tshark_reads_traced_udp_as_the_events_say() {
    let name = "tshark_reads_traced_udp_as_the_events_say";
    if skip_unless_root(name) || !have_tshark(name) {
        return;
    }
    let pair = VethPair::create(&tag('x', 1), 211).expect("veth pair");
    let b = IpAddr::from(pair.addr_b);
    let mut s = attach(
        &format!("udp and dst port 7101 and host {b}"),
        Capture::default().with_packet(true),
    );
    let rx = pair.listen_udp(7101).expect("listen in B");
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 47101)),
        SocketAddr::from((b, 7101)),
        3,
        None,
    );
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        rx.recv(&mut buf).expect("datagram received in B");
    }
    // Each datagram is seen at several hops (send, veth, receive).
    let got = collect(&mut s, |evs| to_port(evs, 7101) >= 9, QUIET, LIMIT);
    let events: Vec<Event> = got
        .events
        .into_iter()
        .filter(|e| e.tuple.is_some_and(|t| t.dport == 7101))
        .collect();
    assert!(events.len() >= 6, "few events:\n{}", describe(&events));
    let with_bytes = events.iter().filter(|e| e.packet.is_some()).count();
    assert!(
        with_bytes >= 6,
        "events without packet bytes:\n{}",
        describe(&events)
    );
    // Both capture starts occur: raw IP before the MAC header is built on the sender, then
    // Ethernet on the wire and on the receiver.
    let links: Vec<LinkType> = events
        .iter()
        .filter_map(|e| e.packet.as_ref().map(|p| p.link))
        .collect();
    assert!(links.contains(&LinkType::Ethernet), "{links:?}");

    let path = temp_file("udp");
    let written = write_capture(&path, &events);
    let (rows, stderr) = tshark_rows(&path);
    println!(
        "tshark read {} packets:\n{}",
        rows.len(),
        rows.iter()
            .map(|r| r.join("  "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        rows.len(),
        written.len(),
        "tshark packet count; stderr: {stderr}"
    );
    for (row, ev) in rows.iter().zip(&written) {
        check_row(row, ev, false);
    }

    // Cut inside the last packet block: tshark reads every whole block before the cut.
    let bytes = std::fs::read(&path).expect("read capture");
    let last = written.last().expect("a packet");
    let cut = bytes.len() - 4 - last.packet.as_ref().unwrap().data.len() / 2;
    let cut_path = temp_file("udp-cut");
    std::fs::write(&cut_path, &bytes[..cut]).expect("write cut capture");
    let (cut_rows, cut_err) = tshark_rows(&cut_path);
    assert_eq!(
        cut_rows.len(),
        written.len() - 1,
        "tshark on the cut file; stderr: {cut_err}"
    );
    for (row, ev) in cut_rows.iter().zip(&written) {
        check_row(row, ev, false);
    }
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&cut_path);
}

/// A short snap length: the kernel copies that many bytes, and tshark sees the captured
/// length and the packet's own length apart.
#[test]
fn a_short_snap_length_keeps_the_wire_length() {
    let name = "a_short_snap_length_keeps_the_wire_length";
    if skip_unless_root(name) || !have_tshark(name) {
        return;
    }
    let pair = VethPair::create(&tag('x', 3), 213).expect("veth pair");
    let b = IpAddr::from(pair.addr_b);
    let mut s = attach(
        &format!("udp and dst port 7103 and host {b}"),
        Capture::default().with_packet(true).with_snaplen(34),
    );
    let rx = pair.listen_udp(7103).expect("listen in B");
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 47103)),
        SocketAddr::from((b, 7103)),
        1,
        None,
    );
    let mut buf = [0u8; 64];
    rx.recv(&mut buf).expect("datagram received in B");
    let got = collect(&mut s, |evs| to_port(evs, 7103) >= 3, QUIET, LIMIT);
    let events: Vec<Event> = got
        .events
        .into_iter()
        .filter(|e| e.tuple.is_some_and(|t| t.dport == 7103) && e.packet.is_some())
        .collect();
    assert!(!events.is_empty(), "no event with bytes");
    // "pwru-rs proof": 13 bytes of payload after 8 (UDP) and 20 (IPv4), 14 more for Ethernet.
    for e in &events {
        let p = e.packet.as_ref().unwrap();
        let header = if p.link == LinkType::Ethernet { 14 } else { 0 };
        assert_eq!(p.data.len(), 34, "{}", e.function);
        assert_eq!(p.wire_len, header + 20 + 8 + 13, "{}", e.function);
        assert!(p.is_truncated());
    }
    let path = temp_file("snaplen");
    let written = write_capture(&path, &events);
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(["-T", "fields", "-E", "separator=/t"])
        .args(["-e", "frame.cap_len", "-e", "frame.len"])
        .output()
        .expect("run tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), written.len());
    for (row, ev) in rows.iter().zip(&written) {
        let p = ev.packet.as_ref().unwrap();
        assert_eq!(*row, format!("34\t{}", p.wire_len));
    }
    let _ = std::fs::remove_file(&path);
}

/// TCP data leaves the sender in page fragments (non-linear skbs): the kernel side copies only
/// the linear part (the headers), and the event says the packet is longer than what it holds.
#[test]
fn paged_data_is_not_read_and_the_wire_length_says_so() {
    let name = "paged_data_is_not_read_and_the_wire_length_says_so";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('x', 4), 214).expect("veth pair");
    let b = IpAddr::from(pair.addr_b);
    let mut s = attach(
        &format!("tcp and dst port 7104 and host {b}"),
        Capture::default().with_packet(true),
    );
    let listener = VethPair::in_netns(&pair.ns_b, move || {
        std::net::TcpListener::bind(SocketAddr::from((b, 7104)))
    })
    .expect("listen in B");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut conn, &mut got).expect("read");
        got.len()
    });
    const DATA: usize = 1000;
    VethPair::in_netns(&pair.ns_a, move || {
        let mut c = std::net::TcpStream::connect(SocketAddr::from((b, 7104)))?;
        std::io::Write::write_all(&mut c, &[b'x'; DATA])?;
        Ok(())
    })
    .expect("send from A");
    assert_eq!(server.join().expect("server"), DATA);
    // The data segment: its wire length covers the payload.
    let is_data = |e: &Event| {
        e.packet
            .as_ref()
            .is_some_and(|p| p.wire_len as usize > DATA)
    };
    let got = collect(
        &mut s,
        |evs| evs.iter().filter(|e| is_data(e)).count() >= 2,
        QUIET,
        LIMIT,
    );
    let data: Vec<&Event> = got.events.iter().filter(|e| is_data(e)).collect();
    assert!(
        !data.is_empty(),
        "no data segment:\n{}",
        describe(&got.events)
    );
    let mut paged = 0;
    for e in &data {
        let p = e.packet.as_ref().unwrap();
        println!(
            "{} {:?}: {} of {} bytes",
            e.function,
            p.link,
            p.data.len(),
            p.wire_len
        );
        assert!(
            p.data.len() <= 256,
            "{}: {} bytes",
            e.function,
            p.data.len()
        );
        if p.data.len() < 256 {
            // Less than the snap length of a longer packet: the linear part ended.
            assert!(p.is_truncated(), "{}", e.function);
            paged += 1;
        }
    }
    assert!(
        paged > 0,
        "every data event held the full snap length; none was paged:\n{}",
        describe(&got.events)
    );
}

#[test]
fn tshark_dissects_the_inner_header_of_a_vxlan_packet() {
    let name = "tshark_dissects_the_inner_header_of_a_vxlan_packet";
    if skip_unless_root(name) || !have_tshark(name) {
        return;
    }
    let pair = VethPair::create(&tag('x', 2), 212).expect("veth pair");
    // A VXLAN tunnel over the veth pair: inner 10.249.212.1 (A) -> 10.249.212.2 (B).
    let (inner_a, inner_b) = ("10.249.212.1", "10.249.212.2");
    let (a, b) = (pair.addr_a.to_string(), pair.addr_b.to_string());
    for (ns, local, remote, dev, addr) in [
        (&pair.ns_a, &a, &b, &pair.if_a, inner_a),
        (&pair.ns_b, &b, &a, &pair.if_b, inner_b),
    ] {
        let steps: [&[&str]; 3] = [
            &[
                "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "local", local,
                "remote", remote, "dstport", "4789", "dev", dev,
            ],
            &["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", "vx0"],
            &["-n", ns, "link", "set", "vx0", "up"],
        ];
        for step in steps {
            netlab::ip(step).expect("vxlan setup");
        }
    }
    let mut s = attach(
        "udp dst port 4789",
        Capture::default().with_packet(true).with_tunnel(true),
    );
    let inner_b_ip: IpAddr = inner_b.parse().unwrap();
    let rx = VethPair::in_netns(&pair.ns_b, move || {
        let s = std::net::UdpSocket::bind(SocketAddr::from((inner_b_ip, 7102)))?;
        s.set_read_timeout(Some(LIMIT))?;
        Ok(s)
    })
    .expect("bind in B");
    // The first datagram may wait for ARP over the tunnel; send until one arrives.
    let mut buf = [0u8; 64];
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((inner_a.parse::<IpAddr>().unwrap(), 47102)),
        SocketAddr::from((inner_b_ip, 7102)),
        1,
        None,
    );
    rx.recv(&mut buf).expect("datagram through the tunnel");
    let is_inner_udp = |e: &Event| {
        e.tunnel
            .is_some_and(|t| t.dport == 7102 && t.dst == Some(inner_b_ip))
    };
    let got = collect(
        &mut s,
        |evs| evs.iter().filter(|e| is_inner_udp(e)).count() >= 2,
        QUIET,
        LIMIT,
    );
    let events: Vec<Event> = got
        .events
        .into_iter()
        .filter(|e| is_inner_udp(e) && e.packet.is_some())
        .collect();
    assert!(!events.is_empty(), "no encapsulated event with bytes");
    let path = temp_file("vxlan");
    let written = write_capture(&path, &events);
    let (rows, stderr) = tshark_rows(&path);
    println!(
        "tshark read {} packets:\n{}",
        rows.len(),
        rows.iter()
            .map(|r| r.join("  "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        rows.len(),
        written.len(),
        "tshark packet count; stderr: {stderr}"
    );
    for (row, ev) in rows.iter().zip(&written) {
        check_row(row, ev, true);
    }
    let _ = std::fs::remove_file(&path);
}
