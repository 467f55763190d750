//! Namespaces and interface names: setns(2), fstatfs(2) and the nsfs ioctl NS_GET_NSTYPE
//! that tell what a namespace file is, and if_nametoindex / if_nameindex.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `ioctl(fd, NS_GET_NSTYPE)` (`_IO(0xb7, 0x3)`, Linux 4.11+).
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Moves the calling thread into the network namespace of the namespace file `ns`.
pub fn enter_netns(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns(2) on a valid open fd; it changes only the calling thread's network
    // namespace (the caller's choice of thread).
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The `f_type` magic of the filesystem holding `fd` (fstatfs).
pub fn filesystem_type(fd: BorrowedFd<'_>) -> io::Result<i64> {
    // SAFETY: statfs is plain old data, for which all-zero bytes are a valid value.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes into the live statfs passed; fd stays open for the call.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut fs) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures
    Ok(fs.f_type as i64)
}

/// The `CLONE_NEW*` type of the namespace file `fd` (ioctl NS_GET_NSTYPE).
pub fn namespace_type(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the open fd; on a file that is
    // not a namespace it fails with an errno.
    let kind = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if kind < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(kind)
}

/// The ifindex of interface `name` in the calling thread's network namespace (ENODEV if
/// there is none).
pub fn if_nametoindex(name: &CStr) -> io::Result<u32> {
    // SAFETY: if_nametoindex reads a valid NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        n => Ok(n),
    }
}

/// The (ifindex, name) of every interface of the calling thread's network namespace (empty
/// if the C library cannot list them).
pub fn interfaces() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns a heap array terminated by a {0, NULL} entry, or NULL on
    // error; we read entries until the terminator and free it with if_freenameindex.
    unsafe {
        let head = libc::if_nameindex();
        if head.is_null() {
            return out;
        }
        let mut p = head;
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            let name = CStr::from_ptr((*p).if_name).to_string_lossy().into_owned();
            out.push(((*p).if_index, name));
            p = p.add(1);
        }
        libc::if_freenameindex(head);
    }
    out
}
