//! A throw-away network lab: two network namespaces joined by a veth pair.
//!
//! Used by the `pwru --demo` example, by the integration tests, the benches and the
//! distro-kernel guest to make real traffic without touching the host's own network.
//! Everything it creates is removed when the [`VethPair`] is dropped. It drives iproute2's `ip`
//! command (Debian package `iproute2`) and needs CAP_NET_ADMIN and CAP_SYS_ADMIN (setns).

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::sys;

/// Two network namespaces `a` and `b`, joined by veth; `a` holds `addr_a`, `b` holds `addr_b`
/// (both in one /24), and each side also has an IPv6 address in one /64.
#[derive(Debug)]
pub struct VethPair {
    /// Name of namespace A (under /run/netns).
    pub ns_a: String,
    /// Name of namespace B.
    pub ns_b: String,
    /// Interface name in A.
    pub if_a: String,
    /// Interface name in B.
    pub if_b: String,
    /// IPv4 address of A.
    pub addr_a: Ipv4Addr,
    /// IPv4 address of B.
    pub addr_b: Ipv4Addr,
    /// IPv6 address of A.
    pub addr6_a: std::net::Ipv6Addr,
    /// IPv6 address of B.
    pub addr6_b: std::net::Ipv6Addr,
}

/// Runs `ip ARGS`, returning its stderr as the error when it fails.
pub fn ip(args: &[&str]) -> io::Result<()> {
    ip_output(args).map(drop)
}

/// Runs `ip ARGS` and returns its standard output; its stderr is the error when it fails.
pub fn ip_output(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        io::Error::new(e.kind(), format!("cannot run `ip` ({e}): install iproute2"))
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Runs the command `args` inside namespace `ns` (`ip netns exec`) and returns its standard
/// output; its stderr is the error when it fails.
pub fn exec_in(ns: &str, args: &[&str]) -> io::Result<String> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    ip_output(&full)
}

/// Moves the calling thread into namespace `ns` (made by `ip netns add`) for good: what it
/// does afterwards (sockets it opens, packets it sends) happens in `ns`. For a thread that
/// stays there, such as a benchmark's; [`VethPair::in_netns`] runs one closure instead.
pub fn enter(ns: &str) -> io::Result<()> {
    let path = VethPair::netns_path(ns);
    let file = File::open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
    sys::enter_netns(&file)
}

/// Loads an nftables ruleset (the `nft -f` file syntax) into namespace `ns`; needs the
/// Debian package `nftables`. The rules go away with the namespace.
///
/// ```no_run
/// pwru_testkit::netlab::nft("pwru-demo-b", "table ip t { chain c { type filter hook prerouting priority 0; meta mark set 7; } }")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn nft(ns: &str, ruleset: &str) -> io::Result<()> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run `ip netns exec` ({e}): install iproute2"),
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(ruleset.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`nft -f -` in {ns} failed (is the `nftables` package installed?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl VethPair {
    /// Creates the pair. `tag` makes the names unique (at most 8 characters are used, so
    /// interface names stay within 15); `subnet` is the third octet of 10.248.`subnet`.0/24.
    pub fn create(tag: &str, subnet: u8) -> io::Result<VethPair> {
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect();
        let pair = VethPair {
            ns_a: format!("pwru-{tag}-a"),
            ns_b: format!("pwru-{tag}-b"),
            if_a: format!("pw{tag}a"),
            if_b: format!("pw{tag}b"),
            addr_a: Ipv4Addr::new(10, 248, subnet, 1),
            addr_b: Ipv4Addr::new(10, 248, subnet, 2),
            addr6_a: format!("fd00:248:{subnet}::1")
                .parse()
                .map_err(io::Error::other)?,
            addr6_b: format!("fd00:248:{subnet}::2")
                .parse()
                .map_err(io::Error::other)?,
        };
        // Remove leftovers of an earlier run with the same tag, then build.
        let _ = ip(&["netns", "del", &pair.ns_a]);
        let _ = ip(&["netns", "del", &pair.ns_b]);
        let a4 = format!("{}/24", pair.addr_a);
        let b4 = format!("{}/24", pair.addr_b);
        let a6 = format!("{}/64", pair.addr6_a);
        let b6 = format!("{}/64", pair.addr6_b);
        let steps: [&[&str]; 12] = [
            &["netns", "add", &pair.ns_a],
            &["netns", "add", &pair.ns_b],
            &[
                "link", "add", &pair.if_a, "netns", &pair.ns_a, "type", "veth", "peer", "name",
                &pair.if_b, "netns", &pair.ns_b,
            ],
            &["-n", &pair.ns_a, "addr", "add", &a4, "dev", &pair.if_a],
            &["-n", &pair.ns_b, "addr", "add", &b4, "dev", &pair.if_b],
            &[
                "-n", &pair.ns_a, "addr", "add", &a6, "dev", &pair.if_a, "nodad",
            ],
            &[
                "-n", &pair.ns_b, "addr", "add", &b6, "dev", &pair.if_b, "nodad",
            ],
            &["-n", &pair.ns_a, "link", "set", &pair.if_a, "up"],
            &["-n", &pair.ns_b, "link", "set", &pair.if_b, "up"],
            &["-n", &pair.ns_a, "link", "set", "lo", "up"],
            &["-n", &pair.ns_b, "link", "set", "lo", "up"],
            &["-n", &pair.ns_a, "neigh", "flush", "all"],
        ];
        for step in steps {
            // On failure `pair` is dropped here, which removes what was made so far.
            ip(step)?;
        }
        Ok(pair)
    }

    /// Path of a namespace made by `ip netns add`.
    pub fn netns_path(name: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(name)
    }

    /// Runs `f` on a fresh thread that has entered namespace `ns` (the caller's thread keeps
    /// its own namespace). Sockets made by `f` belong to `ns`.
    pub fn in_netns<T: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let path = Self::netns_path(ns);
        let file = File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
        std::thread::spawn(move || {
            // Affects only this new thread.
            pwru_core::sys::ns::enter_netns(file.as_fd())?;
            f()
        })
        .join()
        .map_err(|_| io::Error::other("netns worker thread panicked"))?
    }

    /// Sends `count` UDP datagrams of `payload` bytes from A to B's `port` (IPv4).
    pub fn send_udp(
        &self,
        src_port: u16,
        port: u16,
        count: usize,
        payload: usize,
    ) -> io::Result<()> {
        let dst = SocketAddr::from((self.addr_b, port));
        let src = SocketAddr::from((self.addr_a, src_port));
        Self::in_netns(&self.ns_a, move || {
            let s = UdpSocket::bind(src)?;
            let buf = vec![0x5au8; payload];
            for _ in 0..count {
                s.send_to(&buf, dst)?;
            }
            Ok(())
        })
    }

    /// Sends `count` UDP datagrams from A to B's `port` over IPv6.
    pub fn send_udp6(&self, src_port: u16, port: u16, count: usize) -> io::Result<()> {
        let dst = SocketAddr::from((self.addr6_b, port));
        let src = SocketAddr::from((self.addr6_a, src_port));
        Self::in_netns(&self.ns_a, move || {
            let s = UdpSocket::bind(src)?;
            for _ in 0..count {
                s.send_to(b"pwru-rs", dst)?;
            }
            Ok(())
        })
    }

    /// Binds a UDP socket on B's `port` and returns it (so datagrams to it are delivered, not
    /// dropped). Keep it alive as long as the port must stay open.
    pub fn listen_udp(&self, port: u16) -> io::Result<UdpSocket> {
        let addr = SocketAddr::from((std::net::IpAddr::from(Ipv4Addr::UNSPECIFIED), port));
        Self::in_netns(&self.ns_b, move || {
            let s = UdpSocket::bind(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            Ok(s)
        })
    }

    /// The inode of a namespace (what the kernel programs compare with `--filter-netns`).
    pub fn netns_inode(ns: &str) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(std::fs::metadata(Self::netns_path(ns))?.ino())
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting the namespaces also deletes the veth pair.
        let _ = ip(&["netns", "del", &self.ns_a]);
        let _ = ip(&["netns", "del", &self.ns_b]);
    }
}
