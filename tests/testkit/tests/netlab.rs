//! The network lab really carries packets between its two namespaces.

use std::time::Duration;

use pwru_testkit::capabilities;
use pwru_testkit::netlab::{self, VethPair};
use pwru_testkit::packet_socket;

#[test]
fn veth_pair_carries_udp_and_cleans_up() {
    if !capabilities::is_root() {
        capabilities::skip(
            "veth_pair_carries_udp_and_cleans_up",
            "needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)",
        );
        return;
    }
    let tag = format!("nl{}", std::process::id() % 100000);
    let ns_a;
    {
        let pair = VethPair::create(&tag, 201).expect("create veth pair");
        ns_a = pair.ns_a.clone();
        let sock = pair.listen_udp(7001).expect("listen in B");
        pair.send_udp(40001, 7001, 3, 32).expect("send from A");
        let mut buf = [0u8; 64];
        let (n, from) = sock.recv_from(&mut buf).expect("datagram arrives in B");
        assert_eq!(n, 32);
        assert_eq!(from.ip(), std::net::IpAddr::from(pair.addr_a));
        assert!(VethPair::netns_inode(&pair.ns_b).expect("inode") > 0);
    }
    assert!(
        !VethPair::netns_path(&ns_a).exists(),
        "namespace {ns_a} left behind after drop"
    );
}

#[test]
fn capture_socket_sees_the_datagram_and_exec_in_runs_in_the_namespace() {
    let name = "capture_socket_sees_the_datagram_and_exec_in_runs_in_the_namespace";
    if capabilities::skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&format!("ps{}", std::process::id() % 100000), 202)
        .expect("create veth pair");
    // `ip` inside B lists B's interface, and only there.
    let links = netlab::exec_in(&pair.ns_b, &["ip", "-o", "link"]).expect("ip link in B");
    assert!(links.contains(&pair.if_b), "{links}");
    assert!(!links.contains(&pair.if_a), "{links}");
    let on_dev = packet_socket::open_in(&pair.ns_b, &pair.if_b).expect("capture on B's veth");
    let on_all = packet_socket::open_all_in(&pair.ns_b).expect("capture on all of B");
    pair.send_udp(40002, 7002, 1, 16).expect("send from A");
    for (what, sock) in [("interface", &on_dev), ("namespace", &on_all)] {
        assert!(
            packet_socket::read_until(
                sock,
                |f| packet_socket::is_udp_to(f, 7002),
                Duration::from_secs(5)
            ),
            "the capture on B's {what} never saw the datagram to port 7002"
        );
    }
    // Nothing else was sent to port 7002: what is left is at most ARP/ICMP, never it.
    assert!(!packet_socket::read_until(
        &on_dev,
        |f| packet_socket::is_udp_to(f, 7002),
        Duration::from_millis(200)
    ));
}
