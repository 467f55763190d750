//! The test-only system calls of the kit and of the tests that use it (signals, credentials,
//! sockets, libpcap's interpreter as an oracle), each behind one safe function with its
//! `SAFETY` note. Everything pwru-core's syscall layer (`pwru_core::sys`) already offers (bpf(2),
//! namespaces, process facts) is called there, not written again. The other modules of the kit
//! and the test files hold no `unsafe` of their own.

use std::ffi::{c_int, c_uint, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use pwru_ebpf::{PwruEvent, PwruRecordHdr};
use pwru_filter::CbpfInsn;

// ---- processes and credentials -------------------------------------------------------------

/// True when this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    pwru_core::sys::process::is_root()
}

/// Sends signal `signal` to process `pid` (a child of the test, not yet reaped).
pub fn kill(pid: u32, signal: c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) takes two plain numbers; it touches no memory of this process.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Drops every privilege for good: no supplementary groups, gid and uid 65534 (nobody), which
/// clears every effective capability. For a child process that must run unprivileged.
pub fn become_nobody() -> io::Result<()> {
    // SAFETY: setgroups with size 0 reads no memory; setresgid/setresuid take plain numbers.
    // glibc applies the credential changes to every thread of the process.
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(65534, 65534, 65534) == 0
            && libc::setresuid(65534, 65534, 65534) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The size of a memory page in bytes.
pub fn page_size() -> u64 {
    u64::from(pwru_core::sys::page_size())
}

/// Clock ticks per second (`_SC_CLK_TCK`, the unit of the times in `/proc/PID/stat`), at least 1.
pub fn clock_ticks_per_second() -> u64 {
    pwru_core::sys::process::clock_ticks_per_second()
}

/// Pins the calling thread to CPU `cpu` (best effort: the error says why it did not work).
pub fn pin_thread_to_cpu(cpu: usize) -> io::Result<()> {
    pwru_core::sys::process::pin_thread_to_cpu(cpu)
}

// ---- namespaces ----------------------------------------------------------------------------

/// Moves the calling thread into the network namespace `ns` (an open `/run/netns/NAME` or
/// `/proc/PID/ns/net`). Other threads keep theirs.
pub fn enter_netns(ns: &File) -> io::Result<()> {
    pwru_core::sys::ns::enter_netns(ns.as_fd())
}

/// Gives the calling thread a new, empty network namespace (needs CAP_SYS_ADMIN).
pub fn unshare_netns() -> io::Result<()> {
    // SAFETY: unshare(2) takes a flag word; it changes only this thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    pwru_core::sys::ns::if_nametoindex(&c)
}

// ---- file descriptors and sockets ----------------------------------------------------------

/// Waits until `fd` is readable or `timeout` passes; true when readable.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: poll on one live pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

/// How many bytes are queued for reading on `fd` (FIONREAD: a pipe or a socket).
pub fn bytes_queued(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD stores one int at the given address, which is live for the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(n).map_err(io::Error::other)
}

/// Receives one datagram or frame into `buf` without blocking: `Ok(None)` when nothing is
/// queued.
pub fn recv_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: recv writes at most buf.len() bytes into the live buffer.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Sets `SO_MARK` (the skb mark of what the socket sends) on socket `fd`; needs CAP_NET_ADMIN.
pub fn set_mark(fd: BorrowedFd<'_>, mark: u32) -> io::Result<()> {
    // SAFETY: setsockopt reads a u32 from a live local of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            &mark as *const u32 as *const libc::c_void,
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An AF_PACKET raw socket for every protocol, bound to interface `ifindex` of the calling
/// thread's namespace (0: every interface of it).
pub fn packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = i32::try_from(ifindex).map_err(io::Error::other)?;
    // SAFETY: bind with a pointer to a live sockaddr_ll and its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

// ---- records of the kernel programs -------------------------------------------------------

/// Decodes one ring buffer record into its header and event (None if it is too short or not
/// an event).
pub fn decode_record(record: &[u8]) -> Option<(PwruRecordHdr, PwruEvent)> {
    let hs = std::mem::size_of::<PwruRecordHdr>();
    let es = std::mem::size_of::<PwruEvent>();
    if record.len() < hs + es {
        return None;
    }
    // SAFETY: the lengths were checked; both mirrors are plain-old-data #[repr(C)] structs
    // for which every bit pattern is valid, read unaligned from the record bytes.
    let hdr: PwruRecordHdr = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
    // SAFETY: as above.
    let ev: PwruEvent = unsafe { std::ptr::read_unaligned(record[hs..].as_ptr().cast()) };
    (hdr.kind == pwru_ebpf::PWRU_RECORD_EVENT).then_some((hdr, ev))
}

// ---- libpcap's interpreter -----------------------------------------------------------------

#[link(name = "pcap")]
extern "C" {
    /// The interpreter, on any instruction slice, returning the program's value.
    fn bpf_filter(pc: *const CbpfInsn, pkt: *const u8, wirelen: c_uint, buflen: c_uint) -> c_uint;
    /// libpcap's validator, which must accept a program before its interpreter may run it;
    /// the `pcap` crate does not expose it.
    fn bpf_validate(f: *const CbpfInsn, len: c_int) -> c_int;
}

/// libpcap's `bpf_validate` then `bpf_filter` on `packet` as a full capture: `None` when the
/// validator refuses the program (or it is empty or too long).
pub fn libpcap_filter(insns: &[CbpfInsn], packet: &[u8]) -> Option<u32> {
    let len = c_int::try_from(insns.len()).ok()?;
    let pkt_len = c_uint::try_from(packet.len()).ok()?;
    if insns.is_empty() {
        return None;
    }
    // SAFETY: insns is a valid slice of repr(C) bpf_insn of the given length.
    if unsafe { bpf_validate(insns.as_ptr(), len) } == 0 {
        return None;
    }
    // SAFETY: the program was validated (forward jumps in range, ends in ret, scratch indices in
    // range), and the interpreter bounds-checks every packet access against pkt_len.
    Some(unsafe { bpf_filter(insns.as_ptr(), packet.as_ptr(), pkt_len, pkt_len) })
}

// ---- rbpf ----------------------------------------------------------------------------------

/// `bpf_probe_read_kernel` for rbpf: copies `size` bytes from `src` to `dst` only when the
/// source lies inside `[lo, hi)` (the packet being run), like a kernel read of valid memory;
/// anything else zeroes `dst` and returns -EFAULT, as the kernel does.
///
/// `dst` comes from the program rbpf runs: rbpf checks stack accesses of the program but not
/// helper arguments, so a wrong `dst` from a translator bug would write outside rbpf's stack.
/// The translated bodies pass only their own stack buffers (a few hundred bytes at most).
pub(crate) fn rbpf_probe_read(dst: u64, size: u64, src: u64, lo: u64, hi: u64) -> u64 {
    if size == 0 {
        return 0;
    }
    let ok = src >= lo && src.checked_add(size).is_some_and(|end| end <= hi);
    // SAFETY: (test code) dst points into rbpf's stack (see above), size is at most a few
    // hundred bytes (the filter's own buffer), src was checked to lie inside the packet slice.
    unsafe {
        if ok {
            std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, size as usize);
            0
        } else {
            std::ptr::write_bytes(dst as *mut u8, 0, size as usize);
            (-14i64) as u64
        }
    }
}
