//! Mount syscalls: classic mount(2) through nix, and the fd-based calls nix
//! lacks — openat2 with in-root resolution, open_tree, move_mount and
//! mount_setattr — that let casco mount onto paths resolved inside a container
//! root, so a symlink in an image can never redirect a mount onto the host.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub const OPEN_TREE_CLONE: u32 = 1;
pub const AT_RECURSIVE: u32 = 0x8000;
const AT_EMPTY_PATH: u32 = 0x1000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// struct open_how (linux/openat2.h); libc's is non-exhaustive.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cstr(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// How [`open_in_root`] treats the last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Open what is there; symlinks are followed inside the root.
    Existing,
    /// Do not follow a final symlink (O_NOFOLLOW): returns the link itself.
    NoFollow,
}

/// openat2(root, path, O_PATH|O_CLOEXEC, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS):
/// `path` is resolved as if `root` were "/", so neither ".." nor an absolute
/// symlink can leave it.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, how: Resolve) -> io::Result<OwnedFd> {
    let mut flags = libc::O_PATH | libc::O_CLOEXEC;
    if how == Resolve::NoFollow {
        flags |= libc::O_NOFOLLOW;
    }
    openat2_in_root(root, path, flags)
}

/// openat2(root, path, flags, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS): `path`
/// resolved as if `root` were "/" (".." and absolute symlinks stay inside,
/// magic links are refused), opened with `flags`.
pub fn openat2_in_root(root: BorrowedFd<'_>, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let open_how = OpenHow {
        flags: flags as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `c` is a valid NUL-terminated string and `open_how` a valid struct;
    // both outlive the call, and the size argument is the struct's size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &open_how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    let fd = check(r)?;
    // SAFETY: a new descriptor returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The path through which mount(2) can reach an O_PATH descriptor.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// open_tree(dirfd, path, OPEN_TREE_CLONE | flags): a detached copy of the mount
/// tree at `path` (AT_RECURSIVE for submounts too), to attach elsewhere later.
pub fn open_tree(path: &Path, flags: u32) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    // SAFETY: `c` is valid for the call; integer flags only otherwise.
    let r = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags | libc::O_CLOEXEC as u32,
        )
    };
    let fd = check(r)?;
    // SAFETY: a new descriptor returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// move_mount(from, "", to, "", F_EMPTY_PATH|T_EMPTY_PATH): attaches the
/// mount `from` (from open_tree) on the object `to` refers to.
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let empty = c"";
    // SAFETY: both descriptors are valid for the call; the empty strings are
    // static NUL-terminated literals.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    check(r).map(drop)
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [|AT_RECURSIVE], set, clear): changes
/// only the named attributes of the mount `fd` refers to (and its submounts
/// when `recursive`), keeping locked flags as they are — what a read-only
/// remount inside a user namespace needs.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64, clear: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `attr` is a valid mount_attr that outlives the call; its size is
    // passed; the path is a static empty C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(r).map(drop)
}

/// Makes every mount of this (new) mount namespace private, so that nothing
/// mounted here propagates back to the host.
pub fn make_private() -> io::Result<()> {
    use nix::mount::{MsFlags, mount};
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// pivot_root(".", ".") after chdir into the new root, then detaches the old
/// root stacked on top of it: the old root is never reachable again, and no
/// directory is needed for it inside the container (youki and runc do the same).
pub fn pivot_into(new_root: BorrowedFd<'_>) -> io::Result<()> {
    nix::unistd::fchdir(new_root).map_err(io::Error::from)?;
    nix::unistd::pivot_root(".", ".").map_err(io::Error::from)?;
    // The old root is now mounted over the new one at "/". Make it a slave so
    // the unmount cannot propagate to the host, then detach it.
    nix::mount::mount(
        None::<&str>,
        ".",
        None::<&str>,
        nix::mount::MsFlags::MS_SLAVE | nix::mount::MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(io::Error::from)?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)?;
    nix::unistd::chdir("/").map_err(io::Error::from)
}
