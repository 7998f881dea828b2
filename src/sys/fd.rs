//! File descriptor plumbing below std: dup2 onto a fixed number, close ranges.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

/// Makes `to` a copy of `from` (dup2), without close-on-exec. When they are
/// already equal, dup2 would keep FD_CLOEXEC, so it is cleared explicitly.
/// `to` is one of the container's stdio numbers, which the child owns.
pub fn dup_onto(from: RawFd, to: RawFd) -> io::Result<()> {
    if from == to {
        // SAFETY: F_SETFD with 0 on a descriptor the caller holds.
        let r = unsafe { libc::fcntl(from, libc::F_SETFD, 0) };
        return if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) };
    }
    // SAFETY: dup2 replaces `to` atomically; the child owns descriptors 0-2 and
    // hands them to the container, so no Rust object still refers to `to`.
    let r = unsafe { libc::dup2(from, to) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Takes a descriptor number handed over across exec (an environment
/// variable names it) as a File. Wrap it in ManuallyDrop to borrow instead.
pub fn file_from_raw(fd: RawFd) -> std::fs::File {
    use std::os::fd::FromRawFd;
    // SAFETY: the caller names a descriptor this process was given for exactly
    // this use, and nothing else in the process owns it.
    unsafe { std::fs::File::from_raw_fd(fd) }
}
