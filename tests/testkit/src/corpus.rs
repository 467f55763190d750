//! The pcap-filter expression corpus the filter tests, pwru-core's loader tests and the
//! benches share, and generated expressions.

/// The corpus file `tests/testkit/corpus/expressions.txt`: one pcap-filter expression a line,
/// `#` starts a comment line.
pub const EXPRESSIONS_FILE: &str = include_str!("../corpus/expressions.txt");

/// The expressions of [`EXPRESSIONS_FILE`] (comments and blank lines skipped), followed by
/// [`many_hosts_expr`]`(200)`.
pub fn expressions() -> Vec<String> {
    let mut list: Vec<String> = EXPRESSIONS_FILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    list.push(many_hosts_expr(200));
    list
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
