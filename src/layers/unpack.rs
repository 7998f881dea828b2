//! Unpacking one layer (an uncompressed tar, OCI image spec layer.md) into an
//! empty directory of the store, as real root or as root of a user namespace.
//!
//! The archive is hostile until proven otherwise. Names are normalized and a
//! ".." component is refused; every entry is created relative to a descriptor
//! of its parent, reached one component at a time with O_NOFOLLOW, so a symlink
//! the layer planted earlier ("link -> /etc") can never redirect a later entry
//! ("link/passwd") out of the layer. Hardlink targets are resolved the same
//! way. Symlink targets are stored verbatim: they are only ever resolved inside
//! the container.
//!
//! Whiteouts become what overlayfs reads: ".wh.NAME" a 0/0 character device,
//! ".wh..wh..opq" the opaque xattr on its directory (`trusted.overlay.opaque`
//! rootful, `user.overlay.opaque` rootless, for a `userxattr` mount). No file
//! named ".wh.*" is ever created.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat, makedev, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat};
use tar::EntryType;

use super::tree::{
    self, DeferredDirs, DirCache, DirMeta, Node, Removed, WalkError, Warnings, components, show, split_last,
};

/// How a layer is unpacked.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Inside a user namespace: opaque directories get `user.overlay.opaque`,
    /// device nodes (which cannot be created there) are skipped with a warning.
    pub rootless: bool,
}

/// What an unpack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// Bytes of regular-file data written.
    pub size: u64,
    /// Problems that did not stop the unpack (capped, with "and N more" lines).
    pub warnings: Vec<String>,
}

/// Buffer size for reading the archive and copying file data.
const BUF_SIZE: usize = 128 * 1024;

const WH_PREFIX: &[u8] = b".wh.";
const WH_META_PREFIX: &[u8] = b".wh..wh.";
const WH_OPAQUE: &[u8] = b".wh..wh..opq";

const DEVICES_SKIPPED: &str = "device nodes skipped";
const ENTRIES_SKIPPED: &str = "entries skipped";

/// Unpacks an uncompressed tar stream (the caller wraps decompression and
/// hashing) into the empty directory `dest`. The stream is read to its end,
/// past the archive's end marker, so that a hash of it covers every byte.
pub fn unpack(tar: impl Read, dest: &Path, opts: &UnpackOptions) -> Result<UnpackReport> {
    let root = tree::open_empty_dir(dest).context("unpack a layer")?;
    let mut u = Unpacker {
        cache: DirCache::new(),
        st: State {
            rootless: opts.rootless,
            deferred: DeferredDirs::new(),
            warnings: Warnings::default(),
            size: 0,
            buf: vec![0; BUF_SIZE],
            skipped_devices: HashSet::new(),
        },
    };
    let mut archive = tar::Archive::new(BufReader::with_capacity(BUF_SIZE, tar));
    for entry in archive.entries().context("read the layer archive")? {
        let mut entry = entry.context("read the layer archive")?;
        let raw = entry.path_bytes().into_owned();
        let path = normalize(&raw).ok_or_else(|| anyhow!("layer entry {} leaves the layer", show(&raw)))?;
        u.entry(root.as_fd(), &raw, &path, &mut entry)
            .with_context(|| format!("layer entry {}", show(&raw)))?;
    }
    // Trailing zero blocks and padding: part of the blob the caller may be hashing.
    io::copy(&mut archive.into_inner(), &mut io::sink()).context("read the end of the layer archive")?;
    drop(u.cache);
    u.st.deferred
        .apply(root.as_fd())
        .context("set directory modes and times")?;
    Ok(UnpackReport {
        size: u.st.size,
        warnings: u.st.warnings.into_vec(),
    })
}

/// Normalizes an entry name: leading "/" and "./" dropped, "." and empty
/// components removed. `None` when a ".." component would leave the layer;
/// an empty result names the layer root.
fn normalize(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    for c in components(raw) {
        match c {
            b"." => {}
            b".." => return None,
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Some(out)
}

/// Parses a PAX time ("1700000000.123456789", possibly negative).
fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    Some(if !neg {
        TimeSpec::new(secs, nanos)
    } else if nanos == 0 {
        TimeSpec::new(-secs, 0)
    } else {
        TimeSpec::new(-secs - 1, 1_000_000_000 - nanos)
    })
}

/// What a tar header says about the node, apart from its type and data.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: TimeSpec,
    /// From PAX `SCHILY.xattr.NAME` records.
    xattrs: Vec<(CString, Vec<u8>)>,
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta> {
        let h = entry.header();
        let mode = h.mode().context("bad mode")? & 0o7777;
        // The tar crate has already applied PAX uid/gid records to the header.
        let uid = h.uid().context("bad uid")?;
        let gid = h.gid().context("bad gid")?;
        let secs = i64::try_from(h.mtime().context("bad mtime")?).unwrap_or(i64::MAX);
        let mut meta = Meta {
            mode,
            uid,
            gid,
            mtime: TimeSpec::new(secs, 0),
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions().context("bad PAX header")? {
            for ext in exts {
                let ext = ext.context("bad PAX record")?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    if let Some(t) = parse_pax_time(ext.value_bytes()) {
                        meta.mtime = t;
                    }
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    let name = CString::new(name).context("xattr name with a NUL byte")?;
                    meta.xattrs.push((name, ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(meta)
    }
}

struct Unpacker {
    cache: DirCache,
    st: State,
}

/// Everything but the directory cache, so that a descriptor borrowed from the
/// cache and `&mut State` can be held at once.
struct State {
    rootless: bool,
    deferred: DeferredDirs,
    warnings: Warnings,
    size: u64,
    buf: Vec<u8>,
    /// Device nodes skipped rootless, so that a hardlink to one is skipped too.
    skipped_devices: HashSet<Vec<u8>>,
}

impl Unpacker {
    fn entry<R: Read>(
        &mut self,
        root: BorrowedFd<'_>,
        raw: &[u8],
        path: &[u8],
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<()> {
        let mut kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        // Pre-POSIX archives mark directories as regular files named "dir/".
        if raw.ends_with(b"/") && matches!(kind, EntryType::Regular | EntryType::Continuous) {
            kind = EntryType::Directory;
        }
        let (parent, name) = split_last(path);
        let comps: Vec<&[u8]> = components(parent).collect();
        if let Some(c) = comps.iter().find(|c| c.starts_with(WH_PREFIX)) {
            // Inside a whiteout "directory" (aufs's .wh..wh.plnk and the like).
            if !c.starts_with(WH_META_PREFIX) {
                self.st.warnings.add(
                    ENTRIES_SKIPPED,
                    format!("skipped {}: inside a whiteout name", show(path)),
                );
            }
            return Ok(());
        }
        if name.starts_with(WH_PREFIX) {
            let dir = self
                .cache
                .dir(root, &comps, true)
                .map_err(|e| anyhow!(e.describe(parent)))?;
            return self.st.whiteout(dir, parent, name, entry);
        }
        let meta = Meta::read(entry)?;
        if path.is_empty() {
            // "./": the layer root's own owner, mode and times.
            if kind == EntryType::Directory {
                self.st.directory_meta(root, path, &meta)?;
            } else {
                self.st.warnings.add(
                    ENTRIES_SKIPPED,
                    format!("skipped {}: a non-directory at the layer root", show(raw)),
                );
            }
            return Ok(());
        }
        let dir = self
            .cache
            .dir(root, &comps, true)
            .map_err(|e| anyhow!(e.describe(path)))?;
        match kind {
            EntryType::Directory => {
                let fd = self.st.directory(dir, path, name, &meta)?;
                // The next entries are most likely inside this directory.
                self.cache.push(name, fd);
            }
            // The tar crate expands GNU sparse files when they are read.
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.st.regular(dir, path, name, &meta, entry)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .context("symlink without a target")?
                    .into_owned();
                self.st.symlink(dir, path, name, &target, &meta)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .context("hardlink without a target")?
                    .into_owned();
                self.st.hardlink(root, dir, path, name, &target)?;
            }
            EntryType::Fifo => self.st.special(dir, path, name, kind, 0, 0, &meta)?,
            EntryType::Char | EntryType::Block => {
                let h = entry.header();
                let major = h.device_major().context("bad device major")?.unwrap_or(0);
                let minor = h.device_minor().context("bad device minor")?.unwrap_or(0);
                self.st.special(dir, path, name, kind, major, minor, &meta)?;
            }
            other => self.st.warnings.add(
                ENTRIES_SKIPPED,
                format!(
                    "skipped {}: unsupported entry type {:?}",
                    show(path),
                    other.as_byte() as char
                ),
            ),
        }
        Ok(())
    }
}

impl State {
    /// Removes whatever is at `name` (a whole tree for a directory) so that a
    /// later entry can take its place.
    fn replace(&mut self, dir: BorrowedFd<'_>, path: &[u8], name: &[u8]) -> Result<()> {
        let removed = tree::remove_at(dir, name).with_context(|| format!("remove {} to replace it", show(path)))?;
        if removed == Removed::Dir {
            self.deferred.forget_under(path);
        }
        Ok(())
    }

    /// Owner, then mode (chown clears setuid/setgid), then xattrs (chown also
    /// clears security.capability), then times.
    fn finish(&mut self, node: Node<'_>, path: &[u8], meta: &Meta, mode: bool, times: bool) -> Result<()> {
        tree::set_owner(node, meta.uid, meta.gid, path, &mut self.warnings)?;
        if mode {
            node.chmod(meta.mode)
                .with_context(|| format!("chmod {} to {:o}", show(path), meta.mode))?;
        }
        for (attr, value) in &meta.xattrs {
            if tree::is_overlay_xattr(attr.to_bytes()) {
                self.warnings.add(
                    tree::XATTR_NOT_SET,
                    format!(
                        "{}: ignored xattr {} (overlay markers come from whiteouts only)",
                        show(path),
                        attr.to_string_lossy()
                    ),
                );
                continue;
            }
            tree::set_xattr(node, attr, value, path, &mut self.warnings)?;
        }
        if times {
            node.set_times(meta.mtime)
                .with_context(|| format!("set the times of {}", show(path)))?;
        }
        Ok(())
    }

    fn whiteout<R: Read>(
        &mut self,
        dir: BorrowedFd<'_>,
        parent: &[u8],
        name: &[u8],
        entry: &tar::Entry<'_, R>,
    ) -> Result<()> {
        if name == WH_OPAQUE {
            let attr = tree::opaque_xattr(self.rootless);
            return crate::sys::fsops::fsetxattr(dir, attr, b"y")
                .with_context(|| format!("mark {} opaque ({})", show(parent), attr.to_string_lossy()));
        }
        if name.starts_with(WH_META_PREFIX) {
            return Ok(());
        }
        let target = &name[WH_PREFIX.len()..];
        let mut path = parent.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(target);
        if target.is_empty() || target == b"." || target == b".." {
            self.warnings
                .add(ENTRIES_SKIPPED, format!("skipped whiteout {}: no name", show(name)));
            return Ok(());
        }
        let (uid, gid) = (
            entry.header().uid().context("bad uid")?,
            entry.header().gid().context("bad gid")?,
        );
        self.replace(dir, &path, target)?;
        mknodat(dir, target, SFlag::S_IFCHR, Mode::empty(), 0)
            .with_context(|| format!("create the whiteout for {}", show(&path)))?;
        let cname = CString::new(target).context("name with a NUL byte")?;
        tree::set_owner(Node::At(dir, &cname), uid, gid, &path, &mut self.warnings)
    }

    fn directory_meta(&mut self, fd: BorrowedFd<'_>, path: &[u8], meta: &Meta) -> Result<()> {
        self.finish(Node::Fd(fd), path, meta, false, false)?;
        self.deferred.record(
            path,
            DirMeta {
                mode: meta.mode,
                mtime: meta.mtime,
            },
        );
        Ok(())
    }

    fn directory(&mut self, dir: BorrowedFd<'_>, path: &[u8], name: &[u8], meta: &Meta) -> Result<OwnedFd> {
        match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let st =
                    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).with_context(|| format!("stat {}", show(path)))?;
                // A directory over a directory keeps its contents.
                if tree::file_type(st.st_mode) != libc::S_IFDIR {
                    self.replace(dir, path, name)?;
                    mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                        .with_context(|| format!("mkdir {}", show(path)))?;
                }
            }
            Err(e) => return Err(anyhow!(e)).with_context(|| format!("mkdir {}", show(path))),
        }
        let fd = tree::open_dir_at(dir, name).with_context(|| format!("open {}", show(path)))?;
        self.directory_meta(fd.as_fd(), path, meta)?;
        Ok(fd)
    }

    fn regular<R: Read>(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &[u8],
        name: &[u8],
        meta: &Meta,
        data: &mut tar::Entry<'_, R>,
    ) -> Result<()> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        let fd = match openat(dir, name, flags, mode) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => {
                self.replace(dir, path, name)?;
                openat(dir, name, flags, mode).with_context(|| format!("create {}", show(path)))?
            }
            Err(e) => return Err(anyhow!(e)).with_context(|| format!("create {}", show(path))),
        };
        let mut file = File::from(fd);
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("read the layer archive"),
            };
            file.write_all(&self.buf[..n])
                .with_context(|| format!("write {}", show(path)))?;
            self.size += n as u64;
        }
        self.finish(Node::Fd(file.as_fd()), path, meta, true, true)
    }

    fn symlink(&mut self, dir: BorrowedFd<'_>, path: &[u8], name: &[u8], target: &[u8], meta: &Meta) -> Result<()> {
        match symlinkat(target, dir, name) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                self.replace(dir, path, name)?;
                symlinkat(target, dir, name).with_context(|| format!("symlink {}", show(path)))?;
            }
            Err(e) => return Err(anyhow!(e)).with_context(|| format!("symlink {} -> {}", show(path), show(target))),
        }
        let cname = CString::new(name).context("name with a NUL byte")?;
        self.finish(Node::At(dir, &cname), path, meta, false, true)
    }

    fn hardlink(
        &mut self,
        root: BorrowedFd<'_>,
        dir: BorrowedFd<'_>,
        path: &[u8],
        name: &[u8],
        target: &[u8],
    ) -> Result<()> {
        let tpath = normalize(target).ok_or_else(|| anyhow!("hardlink target {} leaves the layer", show(target)))?;
        if tpath.is_empty() {
            bail!("hardlink to the layer root");
        }
        if tpath == path {
            return Ok(());
        }
        if self.skipped_devices.contains(&tpath) {
            self.warnings.add(
                DEVICES_SKIPPED,
                format!(
                    "skipped hardlink {} to device node {} (not permitted rootless)",
                    show(path),
                    show(&tpath)
                ),
            );
            return Ok(());
        }
        let (tparent, tname) = split_last(&tpath);
        let tcomps: Vec<&[u8]> = components(tparent).collect();
        let mut walk = DirCache::new();
        let tdir = walk.dir(root, &tcomps, false).map_err(|e| match e {
            WalkError::Missing(_) => anyhow!("hardlink target {} does not exist", show(&tpath)),
            e => anyhow!("hardlink target {} {}", show(&tpath), e.describe(&tpath)),
        })?;
        match fstatat(tdir, tname, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if tree::file_type(st.st_mode) == libc::S_IFDIR => {
                bail!("hardlink target {} is a directory", show(&tpath))
            }
            Ok(_) => {}
            Err(Errno::ENOENT) => bail!("hardlink target {} does not exist", show(&tpath)),
            Err(e) => return Err(anyhow!(e)).with_context(|| format!("stat hardlink target {}", show(&tpath))),
        }
        // Flags 0: a link to a symlink links the symlink itself.
        match linkat(tdir, tname, dir, name, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST) => {
                self.replace(dir, path, name)?;
                linkat(tdir, tname, dir, name, AtFlags::empty())
                    .with_context(|| format!("hardlink {} to {}", show(path), show(&tpath)))
            }
            Err(e) => Err(anyhow!(e)).with_context(|| format!("hardlink {} to {}", show(path), show(&tpath))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn special(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &[u8],
        name: &[u8],
        kind: EntryType,
        major: u32,
        minor: u32,
        meta: &Meta,
    ) -> Result<()> {
        let (sflag, rdev) = match kind {
            EntryType::Char => (SFlag::S_IFCHR, makedev(major.into(), minor.into())),
            EntryType::Block => (SFlag::S_IFBLK, makedev(major.into(), minor.into())),
            _ => (SFlag::S_IFIFO, 0),
        };
        if self.rootless && sflag != SFlag::S_IFIFO {
            self.warnings.add(
                DEVICES_SKIPPED,
                format!("skipped device node {} (not permitted rootless)", show(path)),
            );
            self.skipped_devices.insert(path.to_vec());
            return Ok(());
        }
        match mknodat(dir, name, sflag, Mode::empty(), rdev) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                self.replace(dir, path, name)?;
                mknodat(dir, name, sflag, Mode::empty(), rdev).with_context(|| format!("mknod {}", show(path)))?;
            }
            Err(e) => return Err(anyhow!(e)).with_context(|| format!("mknod {}", show(path))),
        }
        let cname = CString::new(name).context("name with a NUL byte")?;
        self.finish(Node::At(dir, &cname), path, meta, true, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{MTIME, Tar, cap_net_raw, snapshot};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::path::PathBuf;

    /// A base directory with an empty `dest` and an `outside` sentinel next to it.
    struct Fixture {
        base: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let base = tempfile::tempdir().unwrap();
            std::fs::create_dir(base.path().join("dest")).unwrap();
            std::fs::create_dir(base.path().join("outside")).unwrap();
            std::fs::write(base.path().join("outside/secret"), b"secret").unwrap();
            Fixture { base }
        }
        fn dest(&self) -> PathBuf {
            self.base.path().join("dest")
        }
        fn outside(&self) -> String {
            self.base.path().join("outside").to_str().unwrap().to_string()
        }
        fn unpack(&self, tar: &[u8]) -> Result<UnpackReport> {
            unpack(tar, &self.dest(), &UnpackOptions::default())
        }
        /// Nothing was written outside dest.
        fn assert_outside_untouched(&self) {
            let mut names: Vec<_> = std::fs::read_dir(self.base.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            assert_eq!(names, ["dest", "outside"]);
            let outside: Vec<_> = std::fs::read_dir(self.base.path().join("outside"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(outside, ["secret"]);
            assert_eq!(
                std::fs::read(self.base.path().join("outside/secret")).unwrap(),
                b"secret"
            );
            let md = std::fs::metadata(self.base.path().join("outside/secret")).unwrap();
            assert_eq!(md.nlink(), 1);
        }
    }

    fn err_text(r: Result<UnpackReport>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    #[test]
    fn normal_tree_is_reproduced() {
        let fx = Fixture::new();
        let cap = cap_net_raw();
        let tar = Tar::new()
            .dir("etc", 0o755)
            .pax(&[("SCHILY.xattr.user.foo", b"bar")])
            .file("etc/hosts", 0o644, b"127.0.0.1 localhost\n")
            .dir("bin", 0o755)
            .file("bin/su", 0o4755, b"su binary")
            .pax(&[("SCHILY.xattr.security.capability", &cap)])
            .file("bin/ping", 0o755, b"ping binary")
            .hardlink("bin/su2", "bin/su")
            .dir("var", 0o755)
            .symlink("var/run", "/run")
            .entry(EntryType::Fifo, "fifo", 0o600, b"", |_| {})
            .device(EntryType::Char, "dev/null", 1, 3)
            .device(EntryType::Block, "dev/loop0", 7, 0)
            .finish();
        let report = fx.unpack(&tar).unwrap();
        assert_eq!(report.warnings, Vec::<String>::new());
        assert_eq!(report.size, (20 + 9 + 11) as u64);
        let s = snapshot(&fx.dest());
        assert_eq!(s["etc/hosts"].data, b"127.0.0.1 localhost\n");
        assert_eq!(s["etc/hosts"].xattrs["user.foo"], b"bar");
        assert_eq!(s["etc/hosts"].mtime, MTIME as i64);
        assert_eq!(s["bin/su"].mode, 0o4755);
        assert_eq!(s["bin/su2"].link_of.as_deref(), Some("bin/su"));
        assert_eq!(s["bin/ping"].xattrs["security.capability"], cap);
        assert_eq!(s["var/run"].kind, 'l');
        assert_eq!(s["var/run"].target, b"/run");
        assert_eq!(s["fifo"].kind, 'p');
        assert_eq!(s["fifo"].mode, 0o600);
        assert_eq!(
            (s["dev/null"].kind, s["dev/null"].rdev),
            ('c', nix::sys::stat::makedev(1, 3))
        );
        assert_eq!(s["dev/null"].mode, 0o666);
        assert_eq!(
            (s["dev/loop0"].kind, s["dev/loop0"].rdev),
            ('b', nix::sys::stat::makedev(7, 0))
        );
        // An implicit parent is 0755 whatever the umask; explicit dirs get their time.
        assert_eq!((s["dev"].kind, s["dev"].mode), ('d', 0o755));
        assert_eq!(s["etc"].mtime, MTIME as i64);
        assert_eq!(s.len(), 12);
    }

    #[test]
    fn dotdot_is_refused_and_nothing_written_outside() {
        for name in [&b"../escape"[..], b"a/../../escape", b"./../outside/secret", b".."] {
            let fx = Fixture::new();
            let tar = Tar::new().raw(EntryType::Regular, name, b"", b"evil").finish();
            let msg = err_text(fx.unpack(&tar));
            assert!(
                msg.contains(&format!("layer entry {} leaves the layer", show(name))),
                "{msg}"
            );
            fx.assert_outside_untouched();
            assert!(std::fs::read_dir(fx.dest()).unwrap().next().is_none());
        }
    }

    #[test]
    fn absolute_and_dotted_names_stay_inside() {
        let fx = Fixture::new();
        let tar = Tar::new()
            .raw(EntryType::Regular, b"/abs/file", b"", b"a")
            .raw(EntryType::Regular, b"./rel/./file", b"", b"b")
            .raw(EntryType::Regular, b"//x//y", b"", b"c")
            .finish();
        fx.unpack(&tar).unwrap();
        assert_eq!(std::fs::read(fx.dest().join("abs/file")).unwrap(), b"a");
        assert_eq!(std::fs::read(fx.dest().join("rel/file")).unwrap(), b"b");
        assert_eq!(std::fs::read(fx.dest().join("x/y")).unwrap(), b"c");
        fx.assert_outside_untouched();
    }

    #[test]
    fn entry_through_a_symlink_is_refused() {
        let fx = Fixture::new();
        let tar = Tar::new()
            .symlink("link", &fx.outside())
            .file("link/passwd", 0o644, b"root::0:0")
            .finish();
        let msg = err_text(fx.unpack(&tar));
        assert!(msg.contains("layer entry \"link/passwd\""), "{msg}");
        assert!(msg.contains("passes through symlink \"link\""), "{msg}");
        fx.assert_outside_untouched();

        // A directory entry through it, and a symlink in a deeper component.
        let fx = Fixture::new();
        let tar = Tar::new()
            .dir("a", 0o755)
            .symlink("a/l", &fx.outside())
            .dir("a/l/sub", 0o755)
            .finish();
        let msg = err_text(fx.unpack(&tar));
        assert!(msg.contains("passes through symlink \"a/l\""), "{msg}");
        fx.assert_outside_untouched();

        // A file at an intermediate component.
        let fx = Fixture::new();
        let tar = Tar::new().file("f", 0o644, b"").file("f/x", 0o644, b"").finish();
        assert!(err_text(fx.unpack(&tar)).contains("passes through non-directory \"f\""));
    }

    #[test]
    fn hardlink_leaving_the_layer_is_refused() {
        let fx = Fixture::new();
        let tar = Tar::new().raw(EntryType::Link, b"h", b"../../etc/passwd", b"").finish();
        let msg = err_text(fx.unpack(&tar));
        assert!(
            msg.contains("hardlink target \"../../etc/passwd\" leaves the layer"),
            "{msg}"
        );
        assert!(!fx.dest().join("h").exists());
        fx.assert_outside_untouched();

        let fx = Fixture::new();
        let target = format!("{}/secret", fx.outside());
        let tar = Tar::new().raw(EntryType::Link, b"h", target.as_bytes(), b"").finish();
        // An absolute target is taken inside the layer, where it does not exist.
        assert!(err_text(fx.unpack(&tar)).contains("does not exist"));
        fx.assert_outside_untouched();
    }

    #[test]
    fn hardlink_through_a_symlink_is_refused() {
        let fx = Fixture::new();
        let tar = Tar::new()
            .symlink("link", &fx.outside())
            .hardlink("h", "link/secret")
            .finish();
        let msg = err_text(fx.unpack(&tar));
        assert!(
            msg.contains("hardlink target \"link/secret\" passes through symlink \"link\""),
            "{msg}"
        );
        assert!(std::fs::symlink_metadata(fx.dest().join("h")).is_err());
        fx.assert_outside_untouched();

        // A hardlink to a directory is refused too.
        let fx = Fixture::new();
        let tar = Tar::new().dir("d", 0o755).hardlink("h", "d").finish();
        assert!(err_text(fx.unpack(&tar)).contains("is a directory"));
    }

    #[test]
    fn hardlink_to_a_symlink_links_the_symlink() {
        let fx = Fixture::new();
        let tar = Tar::new().symlink("l", &fx.outside()).hardlink("h", "l").finish();
        fx.unpack(&tar).unwrap();
        let md = std::fs::symlink_metadata(fx.dest().join("h")).unwrap();
        assert!(md.file_type().is_symlink());
        assert_eq!(md.nlink(), 2);
        fx.assert_outside_untouched();
    }

    fn is_whiteout(p: &Path) -> bool {
        let md = std::fs::symlink_metadata(p).unwrap();
        md.file_type().is_char_device() && md.rdev() == 0
    }

    fn xattr(p: &Path, name: &std::ffi::CStr) -> Option<Vec<u8>> {
        let f = File::open(p).unwrap();
        crate::sys::fsops::fgetxattr(f.as_fd(), name).ok()
    }

    fn no_wh_names(dir: &Path) {
        for (path, _) in snapshot(dir) {
            assert!(!path.rsplit('/').next().unwrap().starts_with(".wh."), "{path}");
        }
    }

    #[test]
    fn whiteouts_and_opaque_dirs_rootful() {
        let fx = Fixture::new();
        let tar = Tar::new()
            .dir("d", 0o755)
            .file("d/.wh..wh..opq", 0o644, b"")
            .file("d/new", 0o644, b"n")
            .file(".wh.gone", 0o644, b"")
            .entry(EntryType::Regular, "x/.wh.y", 0o644, b"", |h| {
                h.set_uid(7);
                h.set_gid(8);
            })
            // Opaque marker for a directory that has no entry of its own.
            .file("implicit/.wh..wh..opq", 0o644, b"")
            .file(".wh..wh.plnk", 0o644, b"")
            .file(".wh..wh.plnk/123", 0o644, b"")
            .finish();
        let report = fx.unpack(&tar).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let d = fx.dest();
        assert_eq!(
            xattr(&d.join("d"), c"trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(
            xattr(&d.join("implicit"), c"trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(xattr(&d.join("d"), c"user.overlay.opaque"), None);
        assert!(is_whiteout(&d.join("gone")));
        assert!(is_whiteout(&d.join("x/y")));
        let md = std::fs::symlink_metadata(d.join("x/y")).unwrap();
        assert_eq!((md.uid(), md.gid()), (7, 8));
        assert_eq!(std::fs::read(d.join("d/new")).unwrap(), b"n");
        no_wh_names(&d);
    }

    #[test]
    fn rootless_mode_uses_user_xattr_and_skips_devices() {
        let fx = Fixture::new();
        let tar = Tar::new()
            .dir("d", 0o755)
            .file("d/.wh..wh..opq", 0o644, b"")
            .file(".wh.gone", 0o644, b"")
            .device(EntryType::Char, "dev/null", 1, 3)
            .hardlink("dev/null2", "dev/null")
            .entry(EntryType::Fifo, "fifo", 0o644, b"", |_| {})
            .finish();
        let report = unpack(&tar[..], &fx.dest(), &UnpackOptions { rootless: true }).unwrap();
        let d = fx.dest();
        assert_eq!(xattr(&d.join("d"), c"user.overlay.opaque").as_deref(), Some(&b"y"[..]));
        assert_eq!(xattr(&d.join("d"), c"trusted.overlay.opaque"), None);
        assert!(is_whiteout(&d.join("gone")));
        assert!(!d.join("dev/null").exists());
        assert!(std::fs::symlink_metadata(d.join("fifo")).unwrap().file_type().is_fifo());
        assert_eq!(
            report.warnings,
            [
                "skipped device node \"dev/null\" (not permitted rootless)",
                "skipped hardlink \"dev/null2\" to device node \"dev/null\" (not permitted rootless)",
            ]
        );
    }

    #[test]
    fn read_only_directory_receives_children() {
        let fx = Fixture::new();
        let tar = Tar::new()
            .entry(EntryType::Directory, "ro", 0o555, b"", |h| h.set_mtime(1000))
            .file("ro/f", 0o444, b"x")
            .entry(EntryType::Directory, "ro/sub", 0o500, b"", |h| h.set_mtime(2000))
            .file("ro/sub/g", 0o400, b"y")
            .finish();
        fx.unpack(&tar).unwrap();
        let s = snapshot(&fx.dest());
        assert_eq!((s["ro"].mode, s["ro"].mtime), (0o555, 1000));
        assert_eq!((s["ro/sub"].mode, s["ro/sub"].mtime), (0o500, 2000));
        assert_eq!(s["ro/sub/g"].data, b"y");
        assert_eq!(s["ro/f"].mode, 0o444);
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let fx = Fixture::new();
        let tar = Tar::new()
            .file("f", 0o644, b"one")
            .file("f", 0o600, b"two")
            .dir("d", 0o755)
            .file("d/child", 0o644, b"c")
            .file("d", 0o644, b"now a file")
            .dir("k", 0o755)
            .file("k/a", 0o644, b"a")
            .dir("k", 0o700)
            .symlink("s", "/nowhere")
            .file("s", 0o644, b"regular")
            .file("t", 0o644, b"file")
            .dir("t", 0o711)
            .file("t/inside", 0o644, b"i")
            .finish();
        fx.unpack(&tar).unwrap();
        let s = snapshot(&fx.dest());
        assert_eq!((s["f"].data.as_slice(), s["f"].mode), (&b"two"[..], 0o600));
        assert_eq!((s["d"].kind, s["d"].data.as_slice()), ('f', &b"now a file"[..]));
        assert!(!s.contains_key("d/child"));
        assert_eq!((s["k"].mode, s["k/a"].data.as_slice()), (0o700, &b"a"[..]));
        assert_eq!((s["s"].kind, s["s"].data.as_slice()), ('f', &b"regular"[..]));
        assert_eq!((s["t"].kind, s["t"].mode), ('d', 0o711));
        assert_eq!(s["t/inside"].data, b"i");
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn owners_come_from_the_header() {
        let fx = Fixture::new();
        let ids = |h: &mut tar::Header| {
            h.set_uid(1234);
            h.set_gid(5678);
        };
        let tar = Tar::new()
            .entry(EntryType::Directory, "d", 0o2755, b"", ids)
            .entry(EntryType::Regular, "d/f", 0o2755, b"x", ids)
            .entry(EntryType::Fifo, "p", 0o644, b"", ids)
            .entry(EntryType::Symlink, "l", 0o777, b"", |h| {
                ids(h);
                h.set_link_name("d/f").unwrap();
                h.set_mtime(5);
            })
            // PAX uid/gid override the header (ids too large for it).
            .pax(&[("uid", b"3000000"), ("gid", b"3000001"), ("mtime", b"1234.5")])
            .file("big", 0o644, b"")
            .finish();
        fx.unpack(&tar).unwrap();
        let s = snapshot(&fx.dest());
        for p in ["d", "d/f", "p", "l"] {
            assert_eq!((s[p].uid, s[p].gid), (1234, 5678), "{p}");
        }
        // setgid survives the chown.
        assert_eq!(s["d/f"].mode, 0o2755);
        assert_eq!(s["d"].mode, 0o2755);
        assert_eq!(s["l"].mtime, 5);
        assert_eq!((s["big"].uid, s["big"].gid), (3_000_000, 3_000_001));
        let md = std::fs::metadata(fx.dest().join("big")).unwrap();
        assert_eq!((md.mtime(), md.mtime_nsec()), (1234, 500_000_000));
    }

    #[test]
    fn invalid_owner_is_a_warning() {
        let fx = Fixture::new();
        let tar = Tar::new().pax(&[("uid", b"4294967295")]).file("f", 0o644, b"").finish();
        let report = fx.unpack(&tar).unwrap();
        assert_eq!(report.warnings.len(), 1);
        assert!(
            report.warnings[0].contains("\"f\": owner 4294967295:0"),
            "{:?}",
            report.warnings
        );
        assert_eq!(
            std::fs::metadata(fx.dest().join("f")).unwrap().uid(),
            nix::unistd::geteuid().as_raw()
        );
    }

    #[test]
    fn archive_overlay_xattrs_are_ignored() {
        let fx = Fixture::new();
        let tar = Tar::new()
            .pax(&[
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                ("SCHILY.xattr.user.ok", b"1"),
            ])
            .dir("d", 0o755)
            .finish();
        let report = fx.unpack(&tar).unwrap();
        assert_eq!(xattr(&fx.dest().join("d"), c"trusted.overlay.redirect"), None);
        assert_eq!(xattr(&fx.dest().join("d"), c"user.ok").as_deref(), Some(&b"1"[..]));
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    }

    #[test]
    fn root_entry_sets_the_layer_root() {
        let fx = Fixture::new();
        std::fs::set_permissions(fx.dest(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let tar = Tar::new()
            .raw(EntryType::Directory, b"./", b"", b"")
            .raw(EntryType::Regular, b"./", b"", b"")
            .finish();
        fx.unpack(&tar).unwrap();
        let md = std::fs::metadata(fx.dest()).unwrap();
        assert_eq!((md.mode() & 0o7777, md.mtime()), (0o644, MTIME as i64));
    }

    #[test]
    fn long_names_and_links() {
        let fx = Fixture::new();
        let long = format!("{}/{}", "a".repeat(120), "b".repeat(120));
        let target = format!("/{}", "t".repeat(200));
        let tar = Tar::new()
            .file(&long, 0o644, b"x")
            .symlink("l", &target)
            .hardlink("h", &long)
            .finish();
        fx.unpack(&tar).unwrap();
        assert_eq!(std::fs::read(fx.dest().join(&long)).unwrap(), b"x");
        assert_eq!(
            std::fs::read_link(fx.dest().join("l")).unwrap().to_str().unwrap(),
            target
        );
        assert_eq!(std::fs::metadata(fx.dest().join("h")).unwrap().nlink(), 2);
    }

    #[test]
    fn the_whole_stream_is_read() {
        let fx = Fixture::new();
        let mut tar = Tar::new().file("f", 0o644, b"data").finish();
        tar.extend_from_slice(&[0u8; 10240]);
        use crate::layers::archive::HashingReader;
        let mut r = HashingReader::new(&tar[..]);
        unpack(&mut r, &fx.dest(), &UnpackOptions::default()).unwrap();
        // (Read::bytes would shadow the inherent method on a value.)
        assert_eq!(HashingReader::bytes(&r), tar.len() as u64);
        let mut w = crate::layers::archive::HashingWriter::new(Vec::new());
        w.write_all(&tar).unwrap();
        assert_eq!(r.digest(), w.digest());
    }

    #[test]
    fn refuses_a_non_empty_destination() {
        let fx = Fixture::new();
        std::fs::write(fx.dest().join("x"), b"").unwrap();
        let msg = err_text(fx.unpack(&Tar::new().finish()));
        assert!(msg.contains("is not empty"), "{msg}");
    }

    #[test]
    fn unsupported_entries_are_warnings() {
        let fx = Fixture::new();
        let tar = Tar::new()
            .raw(EntryType::new(b'V'), b"volume", b"", b"")
            .file("ok", 0o644, b"")
            .finish();
        let report = fx.unpack(&tar).unwrap();
        assert_eq!(report.warnings, ["skipped \"volume\": unsupported entry type 'V'"]);
    }

    #[test]
    fn pax_times_parse() {
        let t = |s: &str| parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(t("1.5"), Some((1, 500_000_000)));
        assert_eq!(t("1.0000000019"), Some((1, 1)));
        assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t("x"), None);
        assert_eq!(t("1.x"), None);
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize(b"/a/./b//c/").as_deref(), Some(&b"a/b/c"[..]));
        assert_eq!(normalize(b"./").as_deref(), Some(&b""[..]));
        assert_eq!(normalize(b"a/../b"), None);
        assert_eq!(normalize(b"a/..b").as_deref(), Some(&b"a/..b"[..]));
    }
}
