//! memfd_create, file seals and execveat: what the exec trampoline needs.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const MFD_CLOEXEC: libc::c_uint = 0x1;
const MFD_ALLOW_SEALING: libc::c_uint = 0x2;
const MFD_EXEC: libc::c_uint = 0x10;

/// memfd_create(name, flags). With `exec`, asks for an executable memfd
/// (MFD_EXEC, needed where vm.memfd_noexec forbids exec by default), falling
/// back to no such flag on kernels that predate it.
pub fn memfd(name: &str, sealing: bool, exec: bool) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut flags = MFD_CLOEXEC;
    if sealing {
        flags |= MFD_ALLOW_SEALING;
    }
    let call = |flags: libc::c_uint| {
        // SAFETY: `c` is a valid C string for the duration of the call.
        unsafe { libc::syscall(libc::SYS_memfd_create, c.as_ptr(), flags) }
    };
    let mut r = if exec { call(flags | MFD_EXEC) } else { call(flags) };
    if r < 0 && exec && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        r = call(flags);
    }
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Seals a memfd against any further change.
pub fn seal_all(fd: BorrowedFd<'_>) -> io::Result<()> {
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an integer argument.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Clears close-on-exec on a descriptor that must survive one exec.
pub fn keep_across_exec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_SETFD with 0 on a descriptor the caller holds.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): runs the file `fd` refers to.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: argv and envp are NUL-terminated arrays of valid C strings that
    // outlive the call (it only returns on failure); the path is a static "".
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    io::Error::last_os_error()
}
