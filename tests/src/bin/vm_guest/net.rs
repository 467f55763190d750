//! A pair of network namespaces joined by a veth pair, torn down on drop.
//!
//! Names carry the process id so that concurrent runs (on a shared host) never collide.

use std::process::Command;

const IP: &str = "/usr/sbin/ip";
/// busybox by name: the guest's only userland, and on the host the static build setup.sh installs.
pub const BUSYBOX: &str = "busybox";

/// Two namespaces `a` and `b`; `a` holds `veth_a` (`addr_a`), `b` holds `veth_b` (`addr_b`).
pub struct NetnsPair {
    /// Namespace names (`ip netns` names).
    pub ns_a: String,
    /// See `ns_a`.
    pub ns_b: String,
    /// Interface in `ns_a`.
    pub veth_a: String,
    /// Interface in `ns_b`.
    pub veth_b: String,
    /// IPv4 address of `veth_a`.
    pub addr_a: &'static str,
    /// IPv4 address of `veth_b`.
    pub addr_b: &'static str,
    /// IPv6 address of `veth_a`.
    pub addr6_a: &'static str,
    /// IPv6 address of `veth_b`.
    pub addr6_b: &'static str,
}

/// Runs a command; returns its stdout, or an error with its stderr.
pub fn run(prog: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{prog} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetnsPair {
    /// Creates both namespaces, the veth pair and the addresses (IPv4 and IPv6, no DAD).
    /// `tag` (a few characters) keeps pairs of one run apart.
    pub fn create(tag: &str) -> Result<Self, String> {
        let pid = std::process::id();
        let pair = NetnsPair {
            ns_a: format!("pwt-{pid}-{tag}a"),
            ns_b: format!("pwt-{pid}-{tag}b"),
            veth_a: short_name(pid, tag, 'a'),
            veth_b: short_name(pid, tag, 'b'),
            addr_a: "192.0.2.1",
            addr_b: "192.0.2.2",
            addr6_a: "2001:db8::1",
            addr6_b: "2001:db8::2",
        };
        // from here on, Drop cleans up whatever was created
        run(IP, &["netns", "add", &pair.ns_a])?;
        run(IP, &["netns", "add", &pair.ns_b])?;
        run(
            IP,
            &[
                "link",
                "add",
                &pair.veth_a,
                "netns",
                &pair.ns_a,
                "type",
                "veth",
                "peer",
                "name",
                &pair.veth_b,
                "netns",
                &pair.ns_b,
            ],
        )?;
        for (ns, dev, a4, a6) in [
            (&pair.ns_a, &pair.veth_a, pair.addr_a, pair.addr6_a),
            (&pair.ns_b, &pair.veth_b, pair.addr_b, pair.addr6_b),
        ] {
            run(IP, &["-n", ns, "link", "set", "lo", "up"])?;
            run(
                IP,
                &["-n", ns, "addr", "add", &format!("{a4}/24"), "dev", dev],
            )?;
            run(
                IP,
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{a6}/64"),
                    "dev",
                    dev,
                    "nodad",
                ],
            )?;
            run(IP, &["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(pair)
    }

    /// Runs `args` inside namespace `ns` (through `ip netns exec`).
    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["netns", "exec", ns];
        full.extend_from_slice(args);
        run(IP, &full)
    }

    /// Pings `addr_b` (or `addr6_b`) from `ns_a` `count` times; fails if no reply came back.
    pub fn ping_a_to_b(&self, ipv6: bool, count: u32) -> Result<String, String> {
        let c = count.to_string();
        let (family, dst) = if ipv6 {
            ("-6", self.addr6_b)
        } else {
            ("-4", self.addr_b)
        };
        self.exec(
            &self.ns_a,
            &[
                BUSYBOX, "ping", family, "-c", &c, "-i", "0.2", "-W", "2", dst,
            ],
        )
    }
}

fn short_name(pid: u32, tag: &str, side: char) -> String {
    // IFNAMSIZ is 16: keep "pwt" + pid + tag + side within 15 characters
    let mut s = format!("pwt{pid}{tag}{side}");
    if s.len() > 15 {
        s = format!("pwt{}{tag}{side}", pid % 1_000_000);
        s.truncate(15);
    }
    s
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // deleting a namespace destroys the veth end inside it, and with it the peer
        let _ = run(IP, &["netns", "del", &self.ns_a]);
        let _ = run(IP, &["netns", "del", &self.ns_b]);
    }
}
