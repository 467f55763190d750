//! The network lab really carries packets between its two namespaces.

use pwru_testkit::capabilities;

use pwru_testkit::netlab::VethPair;

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
