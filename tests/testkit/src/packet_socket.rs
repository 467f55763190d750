//! An AF_PACKET capture socket (what tcpdump opens): the kernel queues a clone of each frame
//! received on the interface, which is how tests make skb clones on real traffic, and reading
//! a frame frees its clone. One home for the host tests and the VM guest; the socket calls are
//! in [`crate::sys`].

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::netlab::VethPair;
use crate::sys;

/// Opens a capture socket bound to interface `ifindex` of the calling thread's namespace
/// (0: every interface of that namespace).
pub fn open(ifindex: u32) -> io::Result<OwnedFd> {
    sys::packet_socket(ifindex)
}

/// Opens a capture socket on interface `dev` of namespace `ns` (made by `ip netns add`).
pub fn open_in(ns: &str, dev: &str) -> io::Result<OwnedFd> {
    let dev = dev.to_string();
    VethPair::in_netns(ns, move || open(sys::interface_index(&dev)?))
}

/// Opens a capture socket on every interface of namespace `ns`.
pub fn open_all_in(ns: &str) -> io::Result<OwnedFd> {
    VethPair::in_netns(ns, || open(0))
}

/// Reads every frame queued on a capture socket without blocking; returns how many.
pub fn drain(fd: &OwnedFd) -> usize {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while let Ok(Some(_)) = sys::recv_nonblocking(fd.as_fd(), &mut buf) {
        n += 1;
    }
    n
}

/// Reads (and so frees) frames from `fd` until one satisfies `wanted`, waiting on the socket
/// until `timeout` passes; true when one did. Frames before it are read too.
pub fn read_until(fd: &OwnedFd, wanted: impl Fn(&[u8]) -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        match sys::recv_nonblocking(fd.as_fd(), &mut buf) {
            Ok(Some(n)) if n > 0 => {
                if wanted(&buf[..n]) {
                    return true;
                }
                continue;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return false;
        };
        if !sys::wait_readable(fd.as_fd(), left) {
            return false;
        }
    }
}

/// True when `frame` is an Ethernet frame carrying an IPv4 UDP datagram to `port`.
pub fn is_udp_to(frame: &[u8], port: u16) -> bool {
    // Ethernet, IPv4, UDP: ethertype at 12, protocol at 23, ports after the IP header.
    let ihl = frame.get(14).map_or(0, |b| usize::from(b & 0xf) * 4);
    let dport = frame.get(14 + ihl + 2..14 + ihl + 4);
    frame.get(12..14) == Some(&[0x08, 0x00])
        && frame.get(23) == Some(&17)
        && dport == Some(&port.to_be_bytes()[..])
}
