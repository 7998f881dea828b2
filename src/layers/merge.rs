//! The copying fallback for when overlayfs cannot be mounted: a container's
//! root filesystem built by copying unpacked layer directories, bottom first,
//! into one directory and applying each layer's whiteouts on the way.
//!
//! A 0/0 character device removes the path from what lower layers put there;
//! a directory carrying the opaque xattr first loses everything lower layers
//! put in it. Neither marker is copied. Owners, modes, times, symlinks,
//! hardlinks (within one layer, by inode), device nodes (rootful) and xattrs
//! (but overlay's own) are; file data is reflinked where the file system can
//! (FICLONE), else copied in the kernel (copy_file_range), else read and written.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, copy_file_range, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat};

use super::tree::{self, DeferredDirs, DirCache, DirMeta, Node, Removed, Warnings, components, show, split_last};
use super::unpack::UnpackOptions;
use crate::sys::fsops;

const BUF_SIZE: usize = 128 * 1024;
const DEVICES_SKIPPED: &str = "device nodes skipped";

/// Builds a container root filesystem in the empty directory `dest` from the
/// unpacked layer directories `layers`, bottom first (see the module doc).
/// Problems that do not stop the merge (unmapped owners, xattrs this user
/// cannot set, devices rootless) are reported as warnings.
pub fn merge_layers(layers: &[PathBuf], dest: &Path, opts: &UnpackOptions) -> Result<()> {
    let root = tree::open_empty_dir(dest).context("merge layers")?;
    let mut m = Merger {
        rootless: opts.rootless,
        deferred: DeferredDirs::new(),
        warnings: Warnings::default(),
        buf: Vec::new(),
        try_clone: true,
        try_copy_range: true,
    };
    for layer in layers {
        let src = openat(
            nix::fcntl::AT_FDCWD,
            layer.as_path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("open layer {}", layer.display()))?;
        m.layer(src.as_fd(), root.as_fd())
            .with_context(|| format!("merge layer {}", layer.display()))?;
    }
    let Merger { deferred, warnings, .. } = m;
    deferred.apply(root.as_fd()).context("set directory modes and times")?;
    for w in warnings.into_vec() {
        crate::output::warn(&w);
    }
    Ok(())
}

struct Merger {
    rootless: bool,
    deferred: DeferredDirs,
    warnings: Warnings,
    buf: Vec<u8>,
    /// Cleared at the first FICLONE failure: the file systems will not change.
    try_clone: bool,
    /// Cleared when copy_file_range cannot work between these file systems.
    try_copy_range: bool,
}

fn mtime_of(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_mtime, st.st_mtime_nsec)
}

impl Merger {
    fn layer(&mut self, src: BorrowedFd<'_>, root: BorrowedFd<'_>) -> Result<()> {
        let st = fstat(src).context("stat the layer root")?;
        if self.is_opaque(Node::Fd(src)) {
            tree::clear_dir(root).context("clear the root for an opaque layer root")?;
            self.deferred = DeferredDirs::new();
        }
        self.dir_meta(Node::Fd(src), root, b"", &st)?;
        let mut links = HashMap::new();
        self.merge_dir(src, root, root, &mut Vec::new(), &mut links)
    }

    fn is_opaque(&self, node: Node<'_>) -> bool {
        matches!(node.get_xattr(tree::opaque_xattr(self.rootless)), Ok(v) if v == b"y")
    }

    /// Owner and xattrs now, mode and mtime once everything is in place.
    fn dir_meta(&mut self, src: Node<'_>, dst: BorrowedFd<'_>, rel: &[u8], st: &FileStat) -> Result<()> {
        tree::set_owner(
            Node::Fd(dst),
            st.st_uid.into(),
            st.st_gid.into(),
            rel,
            &mut self.warnings,
        )?;
        tree::copy_xattrs(src, Node::Fd(dst), rel, &mut self.warnings)?;
        self.deferred.record(
            rel,
            DirMeta {
                mode: st.st_mode & 0o7777,
                mtime: mtime_of(st),
            },
        );
        Ok(())
    }

    /// Removes what lower layers put at `name`.
    fn remove(&mut self, dst: BorrowedFd<'_>, rel: &[u8], name: &CStr) -> Result<()> {
        if tree::remove_at(dst, name.to_bytes()).with_context(|| format!("remove {}", show(rel)))? == Removed::Dir {
            self.deferred.forget_under(rel);
        }
        Ok(())
    }

    fn merge_dir(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        root: BorrowedFd<'_>,
        rel: &mut Vec<u8>,
        links: &mut HashMap<(u64, u64), Vec<u8>>,
    ) -> Result<()> {
        let names = tree::read_names(src).with_context(|| format!("read directory {}", show(rel)))?;
        for (name, _) in names {
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.to_bytes());
            let r = self.merge_one(src, dst, root, &name, rel, links);
            rel.truncate(len);
            r?;
        }
        Ok(())
    }

    fn merge_one(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        root: BorrowedFd<'_>,
        name: &CStr,
        rel: &mut Vec<u8>,
        links: &mut HashMap<(u64, u64), Vec<u8>>,
    ) -> Result<()> {
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).with_context(|| format!("stat {}", show(rel)))?;
        let nb = name.to_bytes();
        match tree::file_type(st.st_mode) {
            // A whiteout: the path is gone from this layer up.
            libc::S_IFCHR if st.st_rdev == 0 => self.remove(dst, rel, name)?,
            libc::S_IFDIR => {
                let sfd = tree::open_dir_at(src, nb).with_context(|| format!("open {}", show(rel)))?;
                let opaque = self.is_opaque(Node::Fd(sfd.as_fd()));
                match fstatat(dst, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(d) if tree::file_type(d.st_mode) == libc::S_IFDIR => {
                        if opaque {
                            let dfd = tree::open_dir_at(dst, nb).with_context(|| format!("open {}", show(rel)))?;
                            tree::clear_dir(dfd.as_fd()).with_context(|| format!("clear opaque {}", show(rel)))?;
                            self.deferred.forget_under(rel);
                        }
                    }
                    Ok(_) => {
                        self.remove(dst, rel, name)?;
                        mkdirat(dst, name, Mode::from_bits_truncate(0o700))
                            .with_context(|| format!("mkdir {}", show(rel)))?;
                    }
                    Err(Errno::ENOENT) => {
                        mkdirat(dst, name, Mode::from_bits_truncate(0o700))
                            .with_context(|| format!("mkdir {}", show(rel)))?;
                    }
                    Err(e) => return Err(anyhow!(e)).with_context(|| format!("stat {}", show(rel))),
                }
                let dfd = tree::open_dir_at(dst, nb).with_context(|| format!("open {}", show(rel)))?;
                self.dir_meta(Node::Fd(sfd.as_fd()), dfd.as_fd(), rel, &st)?;
                self.merge_dir(sfd.as_fd(), dfd.as_fd(), root, rel, links)?;
            }
            libc::S_IFREG => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1
                    && let Some(first) = links.get(&key)
                {
                    return self.link(root, first, dst, name, rel);
                }
                self.remove(dst, rel, name)?;
                let rflags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let sf = File::from(
                    openat(src, name, rflags, Mode::empty()).with_context(|| format!("open {}", show(rel)))?,
                );
                let wflags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let df = File::from(
                    openat(dst, name, wflags, Mode::from_bits_truncate(0o600))
                        .with_context(|| format!("create {}", show(rel)))?,
                );
                self.copy_data(&sf, &df, u64::try_from(st.st_size).unwrap_or(0))
                    .with_context(|| format!("copy {}", show(rel)))?;
                self.finish(Node::Fd(sf.as_fd()), Node::Fd(df.as_fd()), rel, &st, true)?;
                if st.st_nlink > 1 {
                    links.insert(key, rel.clone());
                }
            }
            libc::S_IFLNK => {
                let target = readlinkat(src, name).with_context(|| format!("readlink {}", show(rel)))?;
                self.remove(dst, rel, name)?;
                symlinkat(target.as_os_str(), dst, name).with_context(|| format!("symlink {}", show(rel)))?;
                self.finish(Node::At(src, name), Node::At(dst, name), rel, &st, false)?;
            }
            t @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                if self.rootless && t != libc::S_IFIFO {
                    self.warnings.add(
                        DEVICES_SKIPPED,
                        format!("skipped device node {} (not permitted rootless)", show(rel)),
                    );
                    return Ok(());
                }
                self.remove(dst, rel, name)?;
                let kind = SFlag::from_bits_truncate(t);
                mknodat(dst, name, kind, Mode::empty(), st.st_rdev).with_context(|| format!("mknod {}", show(rel)))?;
                self.finish(Node::At(src, name), Node::At(dst, name), rel, &st, true)?;
            }
            // Sockets belong to no image.
            _ => {}
        }
        Ok(())
    }

    /// Owner, mode (after chown, which clears setuid), xattrs (after chown,
    /// which clears security.capability), times.
    fn finish(&mut self, src: Node<'_>, dst: Node<'_>, rel: &[u8], st: &FileStat, mode: bool) -> Result<()> {
        tree::set_owner(dst, st.st_uid.into(), st.st_gid.into(), rel, &mut self.warnings)?;
        if mode {
            dst.chmod(st.st_mode).with_context(|| format!("chmod {}", show(rel)))?;
        }
        tree::copy_xattrs(src, dst, rel, &mut self.warnings)?;
        dst.set_times(mtime_of(st))
            .with_context(|| format!("set the times of {}", show(rel)))
    }

    /// Links `name` in `dst` to the copy already made at `first` (relative to `root`).
    fn link(&mut self, root: BorrowedFd<'_>, first: &[u8], dst: BorrowedFd<'_>, name: &CStr, rel: &[u8]) -> Result<()> {
        let (parent, tname) = split_last(first);
        let comps: Vec<&[u8]> = components(parent).collect();
        let mut cache = DirCache::new();
        let tdir = cache
            .dir(root, &comps, false)
            .map_err(|e| anyhow!("hardlink to {} {}", show(first), e.describe(first)))?;
        self.remove(dst, rel, name)?;
        linkat(tdir, tname, dst, name, AtFlags::empty())
            .with_context(|| format!("hardlink {} to {}", show(rel), show(first)))
    }

    fn copy_data(&mut self, src: &File, dst: &File, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        if self.try_clone {
            match fsops::ficlone(dst.as_fd(), src.as_fd()) {
                Ok(()) => return Ok(()),
                Err(_) => self.try_clone = false,
            }
        }
        if self.try_copy_range {
            let mut done = 0u64;
            while done < len {
                let chunk = usize::try_from(len - done).unwrap_or(usize::MAX).min(1 << 30);
                match copy_file_range(src.as_fd(), None, dst.as_fd(), None, chunk) {
                    Ok(0) => return Ok(()),
                    Ok(n) => done += n as u64,
                    Err(Errno::EXDEV | Errno::ENOSYS | Errno::EINVAL | Errno::EOPNOTSUPP) if done == 0 => {
                        self.try_copy_range = false;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if self.try_copy_range {
                return Ok(());
            }
        }
        if self.buf.is_empty() {
            self.buf = vec![0; BUF_SIZE];
        }
        let (mut r, mut w) = (src, dst);
        loop {
            let n = match r.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            w.write_all(&self.buf[..n])?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{Tar, snapshot};
    use crate::layers::unpack::unpack;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use tar::EntryType;

    fn layers(tars: &[Vec<u8>], opts: &UnpackOptions) -> (tempfile::TempDir, Vec<PathBuf>) {
        let base = tempfile::tempdir().unwrap();
        let mut dirs = Vec::new();
        for (i, t) in tars.iter().enumerate() {
            let d = base.path().join(format!("l{i}"));
            std::fs::create_dir(&d).unwrap();
            unpack(&t[..], &d, opts).unwrap();
            dirs.push(d);
        }
        (base, dirs)
    }

    #[test]
    fn three_layers_with_whiteouts_and_opaque_dirs() {
        let l1 = Tar::new()
            .file("a/x", 0o644, b"1")
            .file("a/y", 0o644, b"1")
            .file("b/z", 0o644, b"1")
            .file("b/sub/deep", 0o644, b"1")
            .file("c/keep", 0o644, b"1")
            .file("f1", 0o644, b"1")
            .file("hl1", 0o640, b"linked")
            .hardlink("hl2", "hl1")
            .symlink("run", "/var/run")
            .device(EntryType::Char, "dev/null", 1, 3)
            .entry(EntryType::Fifo, "fifo", 0o600, b"", |_| {})
            .dir("ro", 0o555)
            .file("ro/f", 0o644, b"")
            .finish();
        let l2 = Tar::new()
            .file("a/.wh.x", 0o644, b"")
            .dir("b", 0o711)
            .file("b/.wh..wh..opq", 0o644, b"")
            .file("b/new", 0o644, b"2")
            .file("f1", 0o600, b"2")
            .file("c/more", 0o644, b"2")
            .pax(&[("SCHILY.xattr.user.note", b"l2")])
            .file("x", 0o644, b"")
            .finish();
        let l3 = Tar::new()
            .file(".wh.c", 0o644, b"")
            .file("a/x", 0o644, b"3")
            // As in overlayfs, the topmost layer's directory gives the mode.
            .dir("ro", 0o555)
            .file("ro/g", 0o644, b"3")
            .file(".wh.hl2", 0o644, b"")
            .finish();
        let opts = UnpackOptions::default();
        let (base, dirs) = layers(&[l1, l2, l3], &opts);
        let dest = base.path().join("rootfs");
        std::fs::create_dir(&dest).unwrap();
        merge_layers(&dirs, &dest, &opts).unwrap();

        let s = snapshot(&dest);
        let names: Vec<&str> = s.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "a", "a/x", "a/y", "b", "b/new", "dev", "dev/null", "f1", "fifo", "hl1", "ro", "ro/f", "ro/g", "run",
                "x"
            ]
        );
        assert_eq!(s["a/x"].data, b"3");
        assert_eq!(s["a/y"].data, b"1");
        assert_eq!((s["f1"].data.as_slice(), s["f1"].mode), (&b"2"[..], 0o600));
        assert_eq!(s["b"].mode, 0o711);
        assert_eq!(s["ro"].mode, 0o555);
        assert_eq!(s["run"].target, b"/var/run");
        assert_eq!(
            (s["dev/null"].kind, s["dev/null"].rdev),
            ('c', nix::sys::stat::makedev(1, 3))
        );
        assert_eq!(s["fifo"].kind, 'p');
        assert_eq!(s["x"].xattrs["user.note"], b"l2");
        for (k, d) in &s {
            assert!(!d.xattrs.keys().any(|x| x.contains(".overlay.")), "{k}");
            assert!(!(d.kind == 'c' && d.rdev == 0), "whiteout copied at {k}");
        }
        // hl2 was whited out in l3: hl1 is now a single link.
        assert_eq!(std::fs::metadata(dest.join("hl1")).unwrap().nlink(), 1);
    }

    #[test]
    fn hardlinks_within_a_layer_are_kept() {
        let l1 = Tar::new()
            .file("a", 0o644, b"data")
            .hardlink("b", "a")
            .hardlink("sub/c", "a")
            .finish();
        let opts = UnpackOptions::default();
        let (base, dirs) = layers(&[l1], &opts);
        let dest = base.path().join("rootfs");
        std::fs::create_dir(&dest).unwrap();
        merge_layers(&dirs, &dest, &opts).unwrap();
        let ino = |p: &str| std::fs::metadata(dest.join(p)).unwrap().ino();
        assert_eq!(ino("a"), ino("b"));
        assert_eq!(ino("a"), ino("sub/c"));
        assert_eq!(std::fs::metadata(dest.join("a")).unwrap().nlink(), 3);
        // The layer itself is untouched: a copy, not a link into the store.
        assert_ne!(ino("a"), std::fs::metadata(dirs[0].join("a")).unwrap().ino());
    }

    #[test]
    fn rootless_layers_use_user_opaque() {
        let l1 = Tar::new().file("d/old", 0o644, b"").finish();
        let l2 = Tar::new()
            .dir("d", 0o755)
            .file("d/.wh..wh..opq", 0o644, b"")
            .file("d/new", 0o644, b"")
            .finish();
        let opts = UnpackOptions { rootless: true };
        let (base, dirs) = layers(&[l1, l2], &opts);
        let dest = base.path().join("rootfs");
        std::fs::create_dir(&dest).unwrap();
        merge_layers(&dirs, &dest, &opts).unwrap();
        assert!(!dest.join("d/old").exists());
        assert!(dest.join("d/new").exists());
        let md = std::fs::symlink_metadata(dest.join("d")).unwrap();
        assert!(md.is_dir() && !md.file_type().is_char_device());
    }

    #[test]
    fn refuses_a_non_empty_destination() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("x"), b"").unwrap();
        assert!(merge_layers(&[], base.path(), &UnpackOptions::default()).is_err());
    }
}
