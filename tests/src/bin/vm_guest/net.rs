//! Pings across the veth lab (pwru-testkit's `netlab`) with the guest's busybox.

use pwru_testkit::netlab::{exec_in, VethPair};

/// busybox by name: the guest's only userland, and on the host the static build setup.sh installs.
pub const BUSYBOX: &str = "busybox";

/// Pings B (IPv4 or IPv6) from namespace A `count` times; fails if no reply came back.
pub fn ping_a_to_b(pair: &VethPair, ipv6: bool, count: u32) -> Result<String, String> {
    let c = count.to_string();
    let (family, dst) = if ipv6 {
        ("-6", pair.addr6_b.to_string())
    } else {
        ("-4", pair.addr_b.to_string())
    };
    exec_in(
        &pair.ns_a,
        &[
            BUSYBOX, "ping", family, "-c", &c, "-i", "0.2", "-W", "2", &dst,
        ],
    )
    .map_err(|e| e.to_string())
}
