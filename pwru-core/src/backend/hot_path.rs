//! The order targets are attached in: the functions most packets cross first, so events flow
//! within moments of starting while the long tail (seconds to minutes for thousands of
//! kprobes or trampolines) is still being attached.

use super::Target;

/// Functions on the paths most packets take (receive, local delivery, send, free), in the
/// order they are attached. Names a kernel lacks are simply not found.
const HOT_PATH: &[&str] = &[
    "__netif_receive_skb_core",
    "ip_rcv",
    "ipv6_rcv",
    "ip_local_deliver",
    "ip_output",
    "ip6_output",
    "__dev_queue_xmit",
    "dev_hard_start_xmit",
    "sk_skb_reason_drop",
    "kfree_skb_reason",
    "consume_skb",
    "__netif_receive_skb_one_core",
    "netif_receive_skb",
    "napi_gro_receive",
    "__netif_rx",
    "netif_rx",
    "ip_rcv_core",
    "ip_rcv_finish",
    "ip_local_out",
    "__ip_local_out",
    "ip_finish_output",
    "ip_finish_output2",
    "ip6_finish_output2",
    "neigh_resolve_output",
    "arp_rcv",
    "icmp_rcv",
    "udp_rcv",
    "tcp_v4_rcv",
    "skb_release_data",
    "kfree_skbmem",
];

/// `targets` with the hot path first (in [`HOT_PATH`]'s order), then the others in their
/// own order.
pub(crate) fn hot_first(targets: &[Target]) -> Vec<Target> {
    let rank = |t: &Target| {
        HOT_PATH
            .iter()
            .position(|h| *h == t.name)
            .unwrap_or(HOT_PATH.len())
    };
    let mut ordered = targets.to_vec();
    // Stable: the cold ones keep their order.
    ordered.sort_by_key(rank);
    ordered
}

/// How many of `ordered` (as [`hot_first`] returns them) are on the hot path.
pub(crate) fn hot_len(ordered: &[Target]) -> usize {
    ordered
        .iter()
        .take_while(|t| HOT_PATH.contains(&t.name.as_str()))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Target {
        Target {
            name: name.into(),
            module: None,
            position: 1,
            address: None,
        }
    }

    #[test]
    fn hot_path_first_rest_in_order() {
        let names = [
            "a_cold",
            "ip_output",
            "b_cold",
            "__netif_receive_skb_core",
            "c_cold",
        ];
        let targets: Vec<Target> = names.iter().map(|n| t(n)).collect();
        let got: Vec<String> = hot_first(&targets).into_iter().map(|t| t.name).collect();
        assert_eq!(
            got,
            [
                "__netif_receive_skb_core",
                "ip_output",
                "a_cold",
                "b_cold",
                "c_cold"
            ]
        );
    }
}
