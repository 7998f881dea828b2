//! The only place with `unsafe` and raw `libc` calls. Each wrapper is thin and
//! returns `io::Result`; callers above add context naming the object.

#![allow(unsafe_code)]

use std::io;

/// Fills `buf` from the kernel's random source (getrandom(2)); blocks only
/// before the pool is initialised at boot.
pub fn random_bytes(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`,
        // which is valid for writes for the duration of the call.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n > 0 {
            done += n as usize;
        } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // getrandom cannot fail on Linux >= 3.17 for these arguments; fall back to
            // the clock rather than returning zeros.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            for (i, b) in buf[done..].iter_mut().enumerate() {
                *b = (t.as_nanos() >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8);
            }
            return;
        }
    }
}

/// prctl(PR_SET_DUMPABLE): a non-dumpable process's /proc/PID files (exe, mem,
/// fds) are closed to processes without CAP_SYS_PTRACE over it.
pub fn set_dumpable(on: bool) -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes one integer argument; no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

pub fn geteuid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

pub fn getegid() -> u32 {
    nix::unistd::getegid().as_raw()
}

pub mod exec;
pub mod fd;
pub mod fsops;
pub mod inroot;
pub mod mount;
pub mod net;
pub mod process;
pub mod signal;
pub mod term;
