//! File-system calls that nix lacks, relative to file descriptors: extended
//! attributes on an open fd or on one name inside a directory fd (never
//! following a symlink), and the FICLONE reflink ioctl.
//!
//! The `*_at` calls use getxattrat(2) and friends (Linux 6.13) and fall back to
//! the l*xattr(2) calls on `/proc/self/fd/DIR/NAME` on older kernels: the magic
//! link resolves to the directory the fd holds, and the final NAME is not
//! followed. That is why they accept a single name only, never a path.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

// The xattr *at syscalls were added in Linux 6.13 with the same number on every
// architecture that uses the common syscall table (x86, x86_64, arm64, riscv,
// ...); libc 0.2.191 does not name them for x86_64 yet.
const SYS_SETXATTRAT: libc::c_long = 463;
const SYS_GETXATTRAT: libc::c_long = 464;
const SYS_LISTXATTRAT: libc::c_long = 465;

/// `struct xattr_args` of the *xattrat syscalls (include/uapi/linux/xattr.h).
#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// Set once a *xattrat syscall answered ENOSYS: the /proc fallback is used from then on.
static NO_XATTRAT: AtomicBool = AtomicBool::new(false);

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn check_size(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Calls `f(buf)` (a get/list xattr call returning the length or -1) with a
/// buffer that grows until the value fits (ERANGE means it changed in between).
fn read_sized(mut f: impl FnMut(&mut [u8]) -> io::Result<usize>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) && buf.len() < (1 << 20) => {
                // Ask for the size, then leave room for a concurrent change.
                let need = f(&mut [])?;
                buf.resize(need.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// fsetxattr(2) on an open (not O_PATH) descriptor.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: name is NUL-terminated and value's pointer/length describe a live
    // slice; both outlive the call, which only reads them.
    check(unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
}

/// fgetxattr(2): the value of `name`; ENODATA when it is not set.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    read_sized(|buf| {
        // SAFETY: buf's pointer/length describe a writable slice (a null pointer
        // with length 0 only asks for the size); name is NUL-terminated.
        check_size(unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
    })
}

/// flistxattr(2): the attribute names, each followed by a NUL byte.
pub fn flistxattr(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    read_sized(|buf| {
        // SAFETY: buf's pointer/length describe a writable slice.
        check_size(unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
    })
}

/// The names in a list returned by [`flistxattr`] or [`listxattr_at`].
pub fn xattr_names(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|b| *b == 0).filter(|n| !n.is_empty())
}

/// `name` must be a single path component: the /proc fallback would follow
/// symlinks in any component but the last.
fn single_name(name: &CStr) -> io::Result<()> {
    let b = name.to_bytes();
    if b.is_empty() || b.contains(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(())
}

/// `/proc/self/fd/DIR/NAME` for the l*xattr fallback.
fn proc_path(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<CString> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.to_bytes());
    CString::new(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn xattrat_missing(e: &io::Error) -> bool {
    if e.raw_os_error() == Some(libc::ENOSYS) {
        NO_XATTRAT.store(true, Ordering::Relaxed);
        true
    } else {
        false
    }
}

/// Sets xattr `attr` on the entry `name` of directory `dir` without following
/// it if it is a symlink (lsetxattr semantics).
pub fn setxattr_at(dir: BorrowedFd<'_>, name: &CStr, attr: &CStr, value: &[u8]) -> io::Result<()> {
    single_name(name)?;
    if !NO_XATTRAT.load(Ordering::Relaxed) {
        let args = XattrArgs {
            value: value.as_ptr() as u64,
            size: value.len() as u32,
            flags: 0,
        };
        // SAFETY: name and attr are NUL-terminated; args points at a live
        // XattrArgs whose value/size describe the `value` slice; the size
        // argument is that struct's size. The kernel only reads them.
        let r = unsafe {
            libc::syscall(
                SYS_SETXATTRAT,
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
                attr.as_ptr(),
                &args as *const XattrArgs,
                std::mem::size_of::<XattrArgs>(),
            )
        };
        match check_size(r as isize) {
            Ok(_) => return Ok(()),
            Err(e) if xattrat_missing(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let path = proc_path(dir, name)?;
    // SAFETY: path and attr are NUL-terminated; value's pointer/length describe a live slice.
    check(unsafe { libc::lsetxattr(path.as_ptr(), attr.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
}

/// The value of xattr `attr` on the entry `name` of `dir`, not following a symlink.
pub fn getxattr_at(dir: BorrowedFd<'_>, name: &CStr, attr: &CStr) -> io::Result<Vec<u8>> {
    single_name(name)?;
    if !NO_XATTRAT.load(Ordering::Relaxed) {
        let r = read_sized(|buf| {
            let mut args = XattrArgs {
                value: buf.as_mut_ptr() as u64,
                size: buf.len() as u32,
                flags: 0,
            };
            // SAFETY: name and attr are NUL-terminated; args points at a live
            // XattrArgs whose value/size describe the writable `buf`.
            let r = unsafe {
                libc::syscall(
                    SYS_GETXATTRAT,
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                    attr.as_ptr(),
                    &mut args as *mut XattrArgs,
                    std::mem::size_of::<XattrArgs>(),
                )
            };
            check_size(r as isize)
        });
        match r {
            Err(e) if xattrat_missing(&e) => {}
            other => return other,
        }
    }
    let path = proc_path(dir, name)?;
    read_sized(|buf| {
        // SAFETY: path and attr are NUL-terminated; buf's pointer/length describe a writable slice.
        check_size(unsafe { libc::lgetxattr(path.as_ptr(), attr.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
    })
}

/// The xattr names (NUL-terminated each) of the entry `name` of `dir`, not following a symlink.
pub fn listxattr_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    single_name(name)?;
    if !NO_XATTRAT.load(Ordering::Relaxed) {
        let r = read_sized(|buf| {
            // SAFETY: name is NUL-terminated; buf's pointer/length describe a writable slice.
            let r = unsafe {
                libc::syscall(
                    SYS_LISTXATTRAT,
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            check_size(r as isize)
        });
        match r {
            Err(e) if xattrat_missing(&e) => {}
            other => return other,
        }
    }
    let path = proc_path(dir, name)?;
    read_sized(|buf| {
        // SAFETY: path is NUL-terminated; buf's pointer/length describe a writable slice.
        check_size(unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
    })
}

/// ioctl(dst, FICLONE, src): makes `dst` share `src`'s data blocks (btrfs, xfs,
/// bcachefs). EOPNOTSUPP/EXDEV/EINVAL where the file system cannot.
pub fn ficlone(dst: BorrowedFd<'_>, src: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: FICLONE takes the source descriptor as its integer argument; both
    // descriptors are valid for the duration of the call.
    check(unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn xattrs_on_fd_and_at_name() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("f")).unwrap();
        fsetxattr(f.as_fd(), c"user.one", b"1").unwrap();
        assert_eq!(fgetxattr(f.as_fd(), c"user.one").unwrap(), b"1");
        let d = std::fs::File::open(dir.path()).unwrap();
        setxattr_at(d.as_fd(), c"f", c"user.two", &[7u8; 1000]).unwrap();
        assert_eq!(getxattr_at(d.as_fd(), c"f", c"user.two").unwrap(), vec![7u8; 1000]);
        let list = flistxattr(f.as_fd()).unwrap();
        let mut names: Vec<_> = xattr_names(&list).collect();
        names.sort();
        assert_eq!(names, [&b"user.one"[..], b"user.two"]);
        assert_eq!(listxattr_at(d.as_fd(), c"f").unwrap(), list);
        let missing = fgetxattr(f.as_fd(), c"user.none").unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(libc::ENODATA));
        // A path with a slash would follow symlinks in the fallback: refused.
        assert_eq!(
            listxattr_at(d.as_fd(), c"a/b").unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
    }

    #[test]
    fn at_calls_do_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("target"), b"").unwrap();
        std::os::unix::fs::symlink("target", dir.path().join("link")).unwrap();
        let d = std::fs::File::open(dir.path()).unwrap();
        // user.* xattrs are not allowed on symlinks: had the call followed the
        // link it would have succeeded on the target.
        assert!(setxattr_at(d.as_fd(), c"link", c"user.x", b"y").is_err());
        let t = std::fs::File::open(dir.path().join("target")).unwrap();
        assert!(xattr_names(&flistxattr(t.as_fd()).unwrap()).next().is_none());
    }

    #[test]
    fn proc_fallback_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("f")).unwrap();
        fsetxattr(f.as_fd(), c"user.k", b"v").unwrap();
        let d = std::fs::File::open(dir.path()).unwrap();
        let path = proc_path(d.as_fd(), c"f").unwrap();
        let mut buf = [0u8; 8];
        // SAFETY: NUL-terminated strings and a writable buffer of the given length.
        let n = unsafe { libc::lgetxattr(path.as_ptr(), c"user.k".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(&buf[..usize::try_from(n).unwrap()], b"v");
    }
}
