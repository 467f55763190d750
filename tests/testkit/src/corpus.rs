//! The pcap-filter expression corpus the filter tests, pwru-core's loader tests and the
//! benches share, and generated expressions.

/// The corpus file `tests/testkit/corpus/expressions.txt`: one pcap-filter expression a line,
/// `#` starts a comment line.
pub const EXPRESSIONS_FILE: &str = include_str!("../corpus/expressions.txt");

/// The expressions of [`EXPRESSIONS_FILE`] (comments and blank lines skipped), followed by
/// the generated large disjunctions [`many_terms_expr`]`(150)` and [`many_hosts_expr`]`(200)`
/// (pwru-filter compiles those in groups; larger ones are tested on their own, as interpreting
/// them on every corpus packet in a user-space VM takes minutes).
pub fn expressions() -> Vec<String> {
    let mut list: Vec<String> = EXPRESSIONS_FILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    list.push(many_terms_expr(150));
    list.push(many_hosts_expr(200));
    list
}

/// `n` OR'd terms of mixed kinds (hosts with and without direction, networks, ports with and
/// without protocol, protocols, negations, parenthesised conjunctions), chosen so that the
/// test packets (10.0.0.x, 192.168.1.10, 172.16.0.5; ports 22, 53, 80, 443, 8080, ...) hit
/// terms in early, middle and late groups.
pub fn many_terms_expr(n: usize) -> String {
    (0..n)
        .map(|i| {
            let v = i + 1;
            let (a, b) = ((v >> 8) & 0xff, v & 0xff);
            match i % 9 {
                0 => format!("src host 10.9.{a}.{b}"),
                1 => format!("dst net 10.{}.0.0/16", 100 + b % 100),
                2 => format!("tcp dst port {}", 20_000 + v),
                3 => format!("udp src port {}", 30_000 + v),
                4 => format!("(host 172.16.{a}.{b} and tcp)"),
                5 => format!("(not (ip or ip6 or arp) and less {})", 40 + b % 60),
                6 if v % 4 == 0 => "dst port 8080".to_string(),
                6 => format!("ip6 host 2001:db8::{v:x}"),
                7 if v % 5 == 0 => "host 10.0.0.200".to_string(),
                7 => format!("port {}", 40_000 + v),
                _ if v == n / 2 => "icmp".to_string(),
                _ => format!("ip proto {}", 140 + b % 100),
            }
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `host 10.0.0.1 or host 10.0.0.2 or ...` with `n` distinct IPv4 hosts (10.x.y.z), the kind
/// of large expression that makes libpcap's optimiser slow and the eBPF code long.
pub fn many_hosts_expr(n: usize) -> String {
    (0..n)
        .map(|i| {
            let v = i + 1;
            format!(
                "host 10.{}.{}.{}",
                (v >> 16) & 0xff,
                (v >> 8) & 0xff,
                v & 0xff
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}
