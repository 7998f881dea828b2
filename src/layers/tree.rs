//! fd-relative tree operations shared by unpack, merge and pack: walking down
//! to a directory without ever following a symlink (with a cache of the
//! directories along the last walk), removing trees, listing directories,
//! setting owners, modes, times and xattrs on a node, and directory metadata
//! that is applied only once a tree is complete.
//!
//! Nothing here resolves a path through the host's "/": every call is relative
//! to a directory descriptor and takes a single name.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, mkdirat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, unlinkat};

use crate::sys::fsops;

/// Flags for every directory we open inside a tree: a real (not O_PATH)
/// descriptor, so that fchown/fchmod/fsetxattr work on it, and never a symlink.
const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Quotes a path of the tree for messages (lossy for non-UTF-8 names).
pub(crate) fn show(path: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(path))
}

/// The non-empty components of a relative path.
pub(crate) fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/').filter(|c| !c.is_empty())
}

/// Splits a normalized relative path into (parent, last component).
pub(crate) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Opens the directory `name` inside `dir`, refusing a symlink.
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> nix::Result<OwnedFd> {
    openat(dir, name, DIR_FLAGS, Mode::empty())
}

/// Opens the caller's directory `path` (symlinks in it are the caller's
/// business) and checks that it is empty.
pub(super) fn open_empty_dir(path: &Path) -> Result<OwnedFd> {
    let fd = openat(
        AT_FDCWD,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", path.display()))?;
    let names = read_names(fd.as_fd()).with_context(|| format!("read {}", path.display()))?;
    if !names.is_empty() {
        bail!("{} is not empty", path.display());
    }
    Ok(fd)
}

/// The entries of a directory, without "." and "..", in directory order.
pub(crate) fn read_names(dir: BorrowedFd<'_>) -> nix::Result<Vec<(CString, Option<Type>)>> {
    // A new open file description: reading it does not move `dir`'s offset.
    let fd = openat(
        dir,
        c".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = Dir::from_fd(fd)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name();
        if n == c"." || n == c".." {
            continue;
        }
        out.push((n.to_owned(), e.file_type()));
    }
    Ok(out)
}

/// What [`remove_at`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removed {
    Nothing,
    NonDir,
    Dir,
}

/// Removes `name` from `dir`: a non-directory, or a directory with everything in it.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &[u8]) -> nix::Result<Removed> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(Removed::NonDir),
        Err(Errno::ENOENT) => Ok(Removed::Nothing),
        // Linux answers EISDIR for unlink(2) of a directory.
        Err(Errno::EISDIR) => {
            let fd = open_dir_at(dir, name)?;
            clear_dir(fd.as_fd())?;
            drop(fd);
            unlinkat(dir, name, UnlinkatFlags::RemoveDir)?;
            Ok(Removed::Dir)
        }
        Err(e) => Err(e),
    }
}

/// Removes everything inside the directory `dir`, keeping `dir` itself.
pub(super) fn clear_dir(dir: BorrowedFd<'_>) -> nix::Result<()> {
    for (name, ty) in read_names(dir)? {
        let name = name.to_bytes();
        if ty == Some(Type::Directory) {
            remove_at_dir(dir, name)?;
        } else {
            match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(Errno::EISDIR) => remove_at_dir(dir, name)?,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn remove_at_dir(dir: BorrowedFd<'_>, name: &[u8]) -> nix::Result<()> {
    let fd = open_dir_at(dir, name)?;
    clear_dir(fd.as_fd())?;
    drop(fd);
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// Why a walk down a tree stopped, at which component (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WalkError {
    Missing(usize),
    Symlink(usize),
    NotDir(usize),
    Io(usize, Errno),
}

impl WalkError {
    /// A sentence about `path` (whose components were walked): "passes through symlink \"a/link\"".
    pub(super) fn describe(&self, path: &[u8]) -> String {
        let upto = |i: usize| {
            let comps: Vec<&[u8]> = components(path).take(i + 1).collect();
            show(&comps.join(&b'/'))
        };
        match *self {
            WalkError::Missing(i) => format!("{} does not exist", upto(i)),
            WalkError::Symlink(i) => format!("passes through symlink {}", upto(i)),
            WalkError::NotDir(i) => format!("passes through non-directory {}", upto(i)),
            WalkError::Io(i, e) => format!("open {}: {e}", upto(i)),
        }
    }
}

/// The directories along the last walk, so that consecutive entries of one
/// directory (the usual order of a tar) cost no extra openat.
///
/// Invariant: after `dir(root, comps, ..)` returns, the cache holds exactly the
/// directories of `comps`. Callers only remove or replace names *below* the
/// directory they got, so no cached descriptor ever refers to a removed directory.
#[derive(Default)]
pub(super) struct DirCache {
    names: Vec<Vec<u8>>,
    fds: Vec<OwnedFd>,
}

impl DirCache {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// The directory `comps` below `root`. Missing directories are created
    /// (mode 0755, owned by the caller) when `create` is set; a symlink or a
    /// non-directory on the way is an error.
    pub(super) fn dir<'s>(
        &'s mut self,
        root: BorrowedFd<'s>,
        comps: &[&[u8]],
        create: bool,
    ) -> std::result::Result<BorrowedFd<'s>, WalkError> {
        let keep = self
            .names
            .iter()
            .zip(comps)
            .take_while(|(a, b)| a.as_slice() == **b)
            .count();
        self.names.truncate(keep);
        self.fds.truncate(keep);
        for (i, comp) in comps.iter().enumerate().skip(keep) {
            let parent = self.fds.last().map_or(root, |f| f.as_fd());
            let fd = walk_one(parent, comp, create).map_err(|e| match e {
                Step::Missing => WalkError::Missing(i),
                Step::Symlink => WalkError::Symlink(i),
                Step::NotDir => WalkError::NotDir(i),
                Step::Io(e) => WalkError::Io(i, e),
            })?;
            self.names.push(comp.to_vec());
            self.fds.push(fd);
        }
        Ok(self.fds.last().map_or(root, |f| f.as_fd()))
    }

    /// Records `fd` as the directory `name` inside the directory the last
    /// [`DirCache::dir`] call returned.
    pub(super) fn push(&mut self, name: &[u8], fd: OwnedFd) {
        self.names.push(name.to_vec());
        self.fds.push(fd);
    }
}

enum Step {
    Missing,
    Symlink,
    NotDir,
    Io(Errno),
}

fn walk_one(parent: BorrowedFd<'_>, name: &[u8], create: bool) -> std::result::Result<OwnedFd, Step> {
    match open_dir_at(parent, name) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) if create => {
            match mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Step::Io(e)),
            }
            let fd = open_dir_at(parent, name).map_err(Step::Io)?;
            // mkdirat's mode was reduced by the umask.
            fchmod(fd.as_fd(), Mode::from_bits_truncate(0o755)).map_err(Step::Io)?;
            Ok(fd)
        }
        Err(Errno::ENOENT) => Err(Step::Missing),
        Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() => Err(Step::Symlink),
            Ok(_) => Err(Step::NotDir),
            Err(_) => Err(Step::Io(e)),
        },
        Err(e) => Err(Step::Io(e)),
    }
}

/// The mode and mtime of a directory, set after everything inside it was
/// written: creating a child changes the mtime, and a 0555 directory must
/// still receive its children.
#[derive(Debug, Clone, Copy)]
pub(super) struct DirMeta {
    pub(super) mode: u32,
    pub(super) mtime: TimeSpec,
}

#[derive(Default)]
pub(super) struct DeferredDirs {
    map: HashMap<Vec<u8>, DirMeta>,
}

impl DeferredDirs {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Records (or replaces) the metadata for the directory at `path` ("" is the root).
    pub(super) fn record(&mut self, path: &[u8], meta: DirMeta) {
        match self.map.get_mut(path) {
            Some(m) => *m = meta,
            None => {
                self.map.insert(path.to_vec(), meta);
            }
        }
    }

    /// Forgets `path` and everything below it (the directory was removed).
    pub(super) fn forget_under(&mut self, path: &[u8]) {
        self.map
            .retain(|k, _| !(k.starts_with(path) && (k.len() == path.len() || k[path.len()] == b'/')));
    }

    /// Applies every recorded mode and mtime. A directory that is no longer
    /// there (replaced by a later entry) is skipped.
    pub(super) fn apply(self, root: BorrowedFd<'_>) -> Result<()> {
        let mut paths: Vec<(Vec<u8>, DirMeta)> = self.map.into_iter().collect();
        // Sorted, consecutive paths share the cache's directories.
        paths.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut cache = DirCache::new();
        for (path, meta) in paths {
            let comps: Vec<&[u8]> = components(&path).collect();
            let fd = match cache.dir(root, &comps, false) {
                Ok(fd) => fd,
                Err(WalkError::Io(_, e)) => return Err(anyhow!(e)).with_context(|| format!("open {}", show(&path))),
                Err(_) => continue,
            };
            fchmod(fd, Mode::from_bits_truncate(meta.mode & 0o7777))
                .with_context(|| format!("chmod {} to {:o}", show(&path), meta.mode))?;
            futimens(fd, &meta.mtime, &meta.mtime).with_context(|| format!("set the times of {}", show(&path)))?;
        }
        Ok(())
    }
}

/// Non-fatal problems, grouped, each group cut at [`Warnings::SHOWN`] messages
/// plus one "and N more" line.
#[derive(Default)]
pub(super) struct Warnings {
    groups: Vec<Group>,
}

struct Group {
    what: &'static str,
    shown: Vec<String>,
    more: usize,
}

impl Warnings {
    pub(super) const SHOWN: usize = 20;

    /// Adds `msg` to the group `what` (a plural noun phrase for the summary line).
    pub(super) fn add(&mut self, what: &'static str, msg: String) {
        let i = match self.groups.iter().position(|g| g.what == what) {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    what,
                    shown: Vec::new(),
                    more: 0,
                });
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[i];
        if g.shown.len() < Self::SHOWN {
            g.shown.push(msg);
        } else {
            g.more += 1;
        }
    }

    pub(super) fn into_vec(self) -> Vec<String> {
        let mut out = Vec::new();
        for g in self.groups {
            out.extend(g.shown);
            if g.more > 0 {
                out.push(format!("... and {} more {}", g.more, g.what));
            }
        }
        out
    }
}

pub(super) const UNMAPPED: &str = "paths left owned by the unpacking user (ids not mapped)";
pub(super) const XATTR_NOT_SET: &str = "xattrs not set";

/// One node of a tree: an open descriptor, or a name inside a directory
/// descriptor (for symlinks, devices and fifos, which we do not open).
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a CStr),
}

impl Node<'_> {
    pub(crate) fn chown(self, uid: u32, gid: u32) -> nix::Result<()> {
        let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        match self {
            Node::Fd(fd) => fchown(fd, u, g),
            Node::At(dir, name) => fchownat(dir, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW),
        }
    }

    /// Sets the permission bits. Never called for a symlink (the At form follows).
    pub(crate) fn chmod(self, mode: u32) -> nix::Result<()> {
        let mode = Mode::from_bits_truncate(mode & 0o7777);
        match self {
            Node::Fd(fd) => fchmod(fd, mode),
            Node::At(dir, name) => fchmodat(dir, name, mode, FchmodatFlags::FollowSymlink),
        }
    }

    /// Sets atime and mtime to `t`.
    pub(crate) fn set_times(self, t: TimeSpec) -> nix::Result<()> {
        match self {
            Node::Fd(fd) => futimens(fd, &t, &t),
            Node::At(dir, name) => utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink),
        }
    }

    pub(super) fn set_xattr(self, attr: &CStr, value: &[u8]) -> io::Result<()> {
        match self {
            Node::Fd(fd) => fsops::fsetxattr(fd, attr, value),
            Node::At(dir, name) => fsops::setxattr_at(dir, name, attr, value),
        }
    }

    pub(super) fn get_xattr(self, attr: &CStr) -> io::Result<Vec<u8>> {
        match self {
            Node::Fd(fd) => fsops::fgetxattr(fd, attr),
            Node::At(dir, name) => fsops::getxattr_at(dir, name, attr),
        }
    }

    pub(super) fn list_xattrs(self) -> io::Result<Vec<u8>> {
        match self {
            Node::Fd(fd) => fsops::flistxattr(fd),
            Node::At(dir, name) => fsops::listxattr_at(dir, name),
        }
    }
}

/// overlayfs's own markers (opaque, redirect, metacopy, ...): never taken from
/// an archive or copied between layers; whiteouts are their only source.
pub(super) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// The xattr that marks an opaque directory for overlayfs as it will be
/// mounted: by real root (trusted.*) or in a user namespace with `userxattr`.
pub(super) fn opaque_xattr(rootless: bool) -> &'static CStr {
    if rootless {
        c"user.overlay.opaque"
    } else {
        c"trusted.overlay.opaque"
    }
}

/// Errors from setting an xattr that mean "not available here" (a namespace
/// this user or file system does not allow), not a broken tree.
fn xattr_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP | libc::EACCES))
}

/// Changes the owner of `node` (at `path`, for messages). An id that the user
/// namespace does not map (EINVAL) leaves the caller's owner and a warning.
pub(super) fn set_owner(node: Node<'_>, uid: u64, gid: u64, path: &[u8], w: &mut Warnings) -> Result<()> {
    let ids = (u32::try_from(uid), u32::try_from(gid));
    let (Ok(u), Ok(g)) = ids else {
        w.add(
            UNMAPPED,
            format!(
                "{}: owner {uid}:{gid} is out of range; left owned by the unpacking user",
                show(path)
            ),
        );
        return Ok(());
    };
    if u == u32::MAX || g == u32::MAX {
        // (uid_t)-1 means "leave unchanged" to chown(2).
        w.add(
            UNMAPPED,
            format!(
                "{}: owner {uid}:{gid} is not a valid id; left owned by the unpacking user",
                show(path)
            ),
        );
        return Ok(());
    }
    match node.chown(u, g) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => {
            w.add(
                UNMAPPED,
                format!(
                    "{}: owner {uid}:{gid} is not mapped in this user namespace; left owned by the unpacking user",
                    show(path)
                ),
            );
            Ok(())
        }
        Err(e) => Err(anyhow!(e)).with_context(|| format!("chown {} to {uid}:{gid}", show(path))),
    }
}

/// Sets one xattr; a namespace that is not available here is a warning.
pub(super) fn set_xattr(node: Node<'_>, attr: &CStr, value: &[u8], path: &[u8], w: &mut Warnings) -> Result<()> {
    match node.set_xattr(attr, value) {
        Ok(()) => Ok(()),
        Err(e) if xattr_unsupported(&e) => {
            w.add(
                XATTR_NOT_SET,
                format!("{}: xattr {} not set: {e}", show(path), attr.to_string_lossy()),
            );
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("set xattr {} on {}", attr.to_string_lossy(), show(path))),
    }
}

/// Copies every xattr but overlay's markers from `src` to `dst`.
pub(super) fn copy_xattrs(src: Node<'_>, dst: Node<'_>, path: &[u8], w: &mut Warnings) -> Result<()> {
    let list = match src.list_xattrs() {
        Ok(l) => l,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("list the xattrs of {}", show(path))),
    };
    for name in fsops::xattr_names(&list) {
        if is_overlay_xattr(name) {
            continue;
        }
        let attr = CString::new(name).context("xattr name with a NUL byte")?;
        let value = match src.get_xattr(&attr) {
            Ok(v) => v,
            // Removed in between, or hidden from this user (trusted.* rootless).
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::EPERM)) => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("read xattr {} of {}", attr.to_string_lossy(), show(path)));
            }
        };
        set_xattr(dst, &attr, &value, path, w)?;
    }
    Ok(())
}

/// File type bits of a stat mode.
pub(crate) fn file_type(mode: libc::mode_t) -> libc::mode_t {
    mode & libc::S_IFMT
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn cache_walks_creates_and_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), dir.path().join("link")).unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let root = open_dir_at(nix::fcntl::AT_FDCWD, dir.path().as_os_str().as_encoded_bytes()).unwrap();
        let mut c = DirCache::new();
        c.dir(root.as_fd(), &[b"a", b"b"], true).unwrap();
        assert!(dir.path().join("a/b").is_dir());
        assert_eq!(
            c.dir(root.as_fd(), &[b"link", b"x"], true).unwrap_err(),
            WalkError::Symlink(0)
        );
        assert_eq!(
            c.dir(root.as_fd(), &[b"file", b"x"], true).unwrap_err(),
            WalkError::NotDir(0)
        );
        assert_eq!(
            c.dir(root.as_fd(), &[b"a", b"nope"], false).unwrap_err(),
            WalkError::Missing(1)
        );
        assert_eq!(
            WalkError::Symlink(0).describe(b"link/x/y"),
            "passes through symlink \"link\""
        );
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        let fd = c.dir(root.as_fd(), &[b"a", b"b"], false).unwrap();
        let st = fstatat(fd, c".", AtFlags::empty()).unwrap();
        assert_eq!(
            st.st_ino,
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(dir.path().join("a/b")).unwrap())
        );
    }

    #[test]
    fn remove_at_removes_trees_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("t/a/b")).unwrap();
        std::fs::write(dir.path().join("t/a/b/f"), b"x").unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        std::fs::set_permissions(
            dir.path().join("t/a"),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
        let root = open_dir_at(nix::fcntl::AT_FDCWD, dir.path().as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(remove_at(root.as_fd(), b"t").unwrap(), Removed::Dir);
        assert_eq!(remove_at(root.as_fd(), b"f").unwrap(), Removed::NonDir);
        assert_eq!(remove_at(root.as_fd(), b"f").unwrap(), Removed::Nothing);
        assert!(read_names(root.as_fd()).unwrap().is_empty());
    }

    #[test]
    fn deferred_dirs_forget_and_apply() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::create_dir_all(dir.path().join("ab")).unwrap();
        let root = open_dir_at(nix::fcntl::AT_FDCWD, dir.path().as_os_str().as_encoded_bytes()).unwrap();
        let mut d = DeferredDirs::new();
        let m = |mode| DirMeta {
            mode,
            mtime: TimeSpec::new(1_000_000, 5),
        };
        d.record(b"a", m(0o700));
        d.record(b"a/b", m(0o555));
        d.record(b"ab", m(0o711));
        d.record(b"gone", m(0o700));
        d.forget_under(b"a/b");
        d.apply(root.as_fd()).unwrap();
        use std::os::unix::fs::MetadataExt;
        let md = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap();
        assert_eq!(md("a").mode() & 0o7777, 0o700);
        assert_eq!(md("a").mtime(), 1_000_000);
        assert_eq!(md("ab").mode() & 0o7777, 0o711);
        assert_ne!(md("a/b").mode() & 0o7777, 0o555);
    }

    #[test]
    fn warnings_are_capped_per_group() {
        let mut w = Warnings::default();
        for i in 0..25 {
            w.add(UNMAPPED, format!("u{i}"));
        }
        w.add(XATTR_NOT_SET, "x".into());
        let v = w.into_vec();
        assert_eq!(v.len(), Warnings::SHOWN + 2);
        assert_eq!(v[Warnings::SHOWN], format!("... and 5 more {UNMAPPED}"));
        assert_eq!(v.last().unwrap(), "x");
    }

    #[test]
    fn path_helpers() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(components(b"a//b/").collect::<Vec<_>>(), [&b"a"[..], b"b"]);
    }
}
