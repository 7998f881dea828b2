//! Opening a file for reading by a path resolved inside a root directory
//! (openat2 with RESOLVE_IN_ROOT): what `COPY --chown=NAME` needs to read an
//! image's /etc/passwd without ever reaching the host's through a symlink.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// struct open_how (linux/openat2.h); libc's is non-exhaustive.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` read-only, resolved as if `root` were "/" (".." and absolute
/// symlinks stay inside; magic links refused). O_NONBLOCK keeps a FIFO planted
/// at the path from blocking the open; the caller checks the file type.
pub fn open_read_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<File> {
    let c =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `c` is NUL-terminated and `how` a valid open_how; both outlive
    // the call, which only reads them; the size argument is the struct's size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor returned by the kernel, owned by nobody else.
    Ok(unsafe { File::from_raw_fd(r as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsFd;

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", dir.path().join("rel")).unwrap();
        let root = File::open(dir.path()).unwrap();
        for p in ["abs", "rel", "/etc/passwd", "../etc/passwd"] {
            let mut s = String::new();
            open_read_in_root(root.as_fd(), Path::new(p))
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            assert_eq!(s, "inside", "{p}");
        }
        let e = open_read_in_root(root.as_fd(), Path::new("missing")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
