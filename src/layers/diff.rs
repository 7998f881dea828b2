//! A container's changes: as a layer tar (`commit`) and as a list of paths
//! (`diff`).
//!
//! On the overlay driver the changes are the container's upper directory,
//! whose markers are translated to the OCI ones: a 0/0 character device
//! becomes `.wh.NAME`, an opaque directory gets `.wh..wh..opq` after its own
//! entry. On the vfs driver the container owns a full copy (`rootfs/`), which
//! is compared with the merged lower layers the way Docker's naive differ
//! does: a path changed when its type, mode, owner, size, mtime, symlink
//! target, device number or file capability differ; deleted when the lowers
//! have it and the copy does not. Parent directories of anything written are
//! written too (as overlay's copy-up does), so that a layer never carries a
//! directory with made-up metadata.
//!
//! The lower layers are read as overlayfs would merge them: a directory of
//! the merged view is the stack of that directory in each layer, top first,
//! down to a layer that whites it out, holds a non-directory there, or marks
//! it opaque ([`LowerDir`]).
//!
//! Everything here reads files that rootless belong to subordinate IDs, so the
//! walks run in the store's context (`Store::in_context`).

use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{BufReader, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use nix::dir::Type;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, readlinkat};
use nix::sys::stat::{FileStat, fstatat};
use serde::{Deserialize, Serialize};

use super::archive::{self, Packer};
use super::ingest::{self, Expect, Ingested};
use super::store::{LayerRecord, diff_dir};
use super::tree::{self, Node, show};
use crate::container::Container;
use crate::image::blobs::BlobWriter;
use crate::store::{Driver, Store};
use crate::sys::fsops;

/// Writes an overlay upper directory as an OCI layer tar: whiteout devices
/// (char 0/0) become `.wh.NAME`; an opaque directory (trusted.overlay.opaque=y,
/// or user.overlay.opaque=y when `userxattr`) gets `.wh..wh..opq` after its
/// own entry; overlay's private xattrs (trusted.overlay.*, user.overlay.*) are
/// never written; other xattrs (security.capability, user.*) are kept as PAX
/// SCHILY.xattr. Names sorted, owners/modes/mtimes as on disk, hard links
/// within the tree kept as links, deterministic bytes for the same tree.
/// Sockets skipped.
pub fn pack_upper(upper: &Path, userxattr: bool, out: &mut dyn Write) -> Result<()> {
    let root = archive::open_root(upper)?;
    let mut p = Packer::new(out, Some(tree::opaque_xattr(userxattr)));
    p.pack_tree(root.as_fd(), &mut Vec::new())
        .with_context(|| format!("pack {}", upper.display()))?;
    p.finish().with_context(|| format!("pack {}", upper.display()))
}

/// Commits a container's changes as a new layer on top of its image's top
/// layer (see the module doc for the two drivers). Works for rootful and
/// rootless stores; the container need not be running, and when it runs the
/// caller has paused it.
///
/// The new layer is referenced by no image yet: hold
/// `image::import::layers_gc_lock(store, Shared)` from before this call until
/// the image record that lists it is saved.
pub fn commit_container(store: &Store, c: &Container) -> Result<LayerRecord> {
    let dir = store.container_dir(&c.config.id);
    let parent = c.config.layers.last().map(String::as_str);
    let res = match c.config.driver {
        Driver::Overlay => commit_upper(store, &dir.join("upper"), c.config.id_mapping.is_some(), parent),
        Driver::Vfs => {
            let rootfs = dir.join("rootfs");
            let lowers = lower_dirs(store, &c.config.layers)?;
            let lower_attr = tree::opaque_xattr(store.rootless);
            let store_c = store.clone();
            let ing = store.in_context(move || {
                ingest_packed(&store_c, |w| {
                    let mut p = Packer::new(w, None);
                    vfs_walk(&rootfs, &lowers, lower_attr, Some(&mut p))?;
                    p.finish()
                        .with_context(|| format!("pack the changes of {}", rootfs.display()))
                })
            })?;
            finish(store, ing, parent)
        }
    };
    res.with_context(|| format!("commit the changes of container {}", c.config.name))
}

/// Commits a bare upper directory (overlay format; `userxattr` as it was
/// mounted) as a new layer on top of `parent`. The same GC caveat as
/// [`commit_container`] applies.
pub fn commit_upper(store: &Store, upper: &Path, userxattr: bool, parent: Option<&str>) -> Result<LayerRecord> {
    let store_c = store.clone();
    let up = upper.to_path_buf();
    let ing = store.in_context(move || ingest_packed(&store_c, |w| pack_upper(&up, userxattr, w)))?;
    finish(store, ing, parent)
}

/// Packs into a temp file of the store, then takes that tar in as a layer
/// (stored uncompressed: `push` compresses when it needs to).
fn ingest_packed(store: &Store, pack: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<Ingested> {
    let mut packed = BlobWriter::new(store)?;
    pack(&mut packed)?;
    let tmp = packed.keep()?;
    let r = File::open(&tmp)
        .with_context(|| format!("open {}", tmp.display()))
        .and_then(|f| ingest::ingest(store, BufReader::with_capacity(256 * 1024, f), &Expect::default()));
    let _ = std::fs::remove_file(&tmp);
    r
}

fn finish(store: &Store, ing: Ingested, parent: Option<&str>) -> Result<LayerRecord> {
    for w in &ing.warnings {
        crate::output::warn(w);
    }
    ingest::commit(store, ing, parent)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// podman's letter: A, C or D.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Absolute, e.g. "/etc/foo".
    pub path: String,
    pub kind: ChangeKind,
}

/// Paths the engine itself creates in every container (mount points and
/// generated files), which podman leaves out of `diff` (libpod's initInodes).
const ENGINE_PATHS: &[&str] = &[
    "/dev",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/proc",
    "/run",
    "/run/notify",
    "/run/.containerenv",
    "/run/secrets",
    "/run/podman-init",
    "/sys",
];

/// podman diff semantics for a container: every path in the upper dir (or,
/// vfs, that differs) is A if no lower layer has it (or a lower whiteout or
/// opaque directory hides it), C if one does (directories in the upper that
/// only exist to hold changes are C); whiteouts are D, and so is an opaque
/// directory (podman reports the directory it replaced as deleted, and what
/// it holds now as added). The engine's own mount points are left out, as
/// podman does. Sorted by path.
pub fn container_changes(store: &Store, c: &Container) -> Result<Vec<Change>> {
    let dir = store.container_dir(&c.config.id);
    let lowers = lower_dirs(store, &c.config.layers)?;
    let lower_attr = tree::opaque_xattr(store.rootless);
    let changes = match c.config.driver {
        Driver::Overlay => {
            let upper = dir.join("upper");
            let upper_attr = tree::opaque_xattr(c.config.id_mapping.is_some());
            store.in_context(move || upper_changes(&upper, upper_attr, &lowers, lower_attr))
        }
        Driver::Vfs => {
            let rootfs = dir.join("rootfs");
            store.in_context(move || vfs_walk(&rootfs, &lowers, lower_attr, None))
        }
    }
    .with_context(|| format!("list the changes of container {}", c.config.name))?;
    Ok(tidy(changes))
}

/// For an image (podman `diff IMAGE`): the changes its top layer makes over
/// the layers below (`layers` bottom first, as in the image record).
pub fn image_changes(store: &Store, layers: &[String]) -> Result<Vec<Change>> {
    let Some((top, below)) = layers.split_last() else {
        return Ok(Vec::new());
    };
    let upper = diff_dir(store, top)?;
    let lowers = lower_dirs(store, below)?;
    let attr = tree::opaque_xattr(store.rootless);
    let changes = store
        .in_context(move || upper_changes(&upper, attr, &lowers, attr))
        .with_context(|| format!("list the changes of layer {top}"))?;
    Ok(tidy(changes))
}

/// The layers' directories, top first.
fn lower_dirs(store: &Store, layers: &[String]) -> Result<Vec<PathBuf>> {
    layers.iter().rev().map(|l| diff_dir(store, l)).collect()
}

fn tidy(mut changes: Vec<Change>) -> Vec<Change> {
    changes.retain(|c| !ENGINE_PATHS.contains(&c.path.as_str()));
    changes.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    changes
}

fn abs_path(rel: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(rel))
}

fn is_whiteout(st: &FileStat) -> bool {
    tree::file_type(st.st_mode) == libc::S_IFCHR && st.st_rdev == 0
}

fn is_opaque(fd: BorrowedFd<'_>, attr: &CStr) -> bool {
    matches!(fsops::fgetxattr(fd, attr), Ok(v) if v == b"y")
}

fn stat_at(dir: BorrowedFd<'_>, name: &CStr, rel: &[u8]) -> Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(anyhow!(e)).with_context(|| format!("stat {}", show(rel))),
    }
}

fn sorted_names(dir: BorrowedFd<'_>, rel: &[u8]) -> Result<Vec<(CString, Option<Type>)>> {
    let mut names = tree::read_names(dir).with_context(|| format!("read directory {}", show(rel)))?;
    names.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(names)
}

/// Appends `/name` to `rel` for the duration of `f`.
fn with_child<T>(rel: &mut Vec<u8>, name: &[u8], f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    let len = rel.len();
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    let r = f(rel);
    rel.truncate(len);
    r
}

/// One directory of the merged lower layers: that directory in each layer
/// where it is visible, top first (see the module doc).
struct LowerDir {
    dirs: Vec<OwnedFd>,
    attr: &'static CStr,
}

impl LowerDir {
    /// The merged root of the layer directories `layers` (top first).
    fn root(layers: &[PathBuf], attr: &'static CStr) -> Result<LowerDir> {
        let mut dirs = Vec::new();
        for l in layers {
            let fd = archive::open_root(l)?;
            let opaque = is_opaque(fd.as_fd(), attr);
            dirs.push(fd);
            if opaque {
                break;
            }
        }
        Ok(LowerDir { dirs, attr })
    }

    fn empty(attr: &'static CStr) -> LowerDir {
        LowerDir { dirs: Vec::new(), attr }
    }

    /// The node the merged view shows at `name`, and the layer directory it
    /// comes from; None when no layer has it or a whiteout hides it.
    fn lookup(&self, name: &CStr, rel: &[u8]) -> Result<Option<(FileStat, BorrowedFd<'_>)>> {
        for d in &self.dirs {
            match stat_at(d.as_fd(), name, rel)? {
                None => continue,
                Some(st) if is_whiteout(&st) => return Ok(None),
                Some(st) => return Ok(Some((st, d.as_fd()))),
            }
        }
        Ok(None)
    }

    /// The merged directory `name` below this one (empty when it is not a
    /// directory in the merged view).
    fn child(&self, name: &CStr, rel: &[u8]) -> Result<LowerDir> {
        let mut dirs = Vec::new();
        for d in &self.dirs {
            let Some(st) = stat_at(d.as_fd(), name, rel)? else {
                continue;
            };
            if tree::file_type(st.st_mode) != libc::S_IFDIR {
                break;
            }
            let fd = tree::open_dir_at(d.as_fd(), name.to_bytes()).with_context(|| format!("open {}", show(rel)))?;
            let opaque = is_opaque(fd.as_fd(), self.attr);
            dirs.push(fd);
            if opaque {
                break;
            }
        }
        Ok(LowerDir { dirs, attr: self.attr })
    }

    /// The names the merged directory shows.
    fn names(&self, rel: &[u8]) -> Result<BTreeSet<CString>> {
        let mut seen = BTreeSet::new();
        let mut shown = BTreeSet::new();
        for d in &self.dirs {
            for (name, ty) in tree::read_names(d.as_fd()).with_context(|| format!("read directory {}", show(rel)))? {
                if seen.contains(&name) {
                    continue;
                }
                let whiteout = matches!(ty, Some(Type::CharacterDevice) | None)
                    && with_child(&mut rel.to_vec(), name.to_bytes(), |r| stat_at(d.as_fd(), &name, r))?
                        .is_some_and(|st| is_whiteout(&st));
                if !whiteout {
                    shown.insert(name.clone());
                }
                seen.insert(name);
            }
        }
        Ok(shown)
    }
}

/// The changes an overlay upper directory makes over `lowers` (top first).
fn upper_changes(
    upper: &Path,
    upper_attr: &'static CStr,
    lowers: &[PathBuf],
    lower_attr: &'static CStr,
) -> Result<Vec<Change>> {
    let root = archive::open_root(upper)?;
    let lower = LowerDir::root(lowers, lower_attr)?;
    let mut out = Vec::new();
    upper_dir_changes(root.as_fd(), upper_attr, &lower, &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn upper_dir_changes(
    dir: BorrowedFd<'_>,
    attr: &'static CStr,
    lower: &LowerDir,
    rel: &mut Vec<u8>,
    out: &mut Vec<Change>,
) -> Result<()> {
    for (name, _) in sorted_names(dir, rel)? {
        with_child(rel, name.to_bytes(), |rel| -> Result<()> {
            let Some(st) = stat_at(dir, &name, rel)? else {
                return Ok(());
            };
            let path = abs_path(rel);
            let in_lower = || -> Result<ChangeKind> {
                Ok(match lower.lookup(&name, rel)? {
                    Some(_) => ChangeKind::Changed,
                    None => ChangeKind::Added,
                })
            };
            match tree::file_type(st.st_mode) {
                _ if is_whiteout(&st) => out.push(Change {
                    path,
                    kind: ChangeKind::Deleted,
                }),
                libc::S_IFDIR => {
                    let fd = tree::open_dir_at(dir, name.to_bytes()).with_context(|| format!("open {}", show(rel)))?;
                    let (kind, below) = if is_opaque(fd.as_fd(), attr) {
                        (ChangeKind::Deleted, LowerDir::empty(lower.attr))
                    } else {
                        (in_lower()?, lower.child(&name, rel)?)
                    };
                    out.push(Change { path, kind });
                    upper_dir_changes(fd.as_fd(), attr, &below, rel, out)?;
                }
                libc::S_IFSOCK => {}
                _ => out.push(Change {
                    path,
                    kind: in_lower()?,
                }),
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// A directory of the copy that both sides have, entered but (until
/// something below it is written) not yet written to the layer.
struct Pending {
    parent: OwnedFd,
    name: CString,
    rel: Vec<u8>,
    written: bool,
}

/// The vfs differ: walks `rootfs` and the merged `lowers` side by side,
/// recording the changes and, with a packer, writing them as a layer.
struct VfsDiff<'p, 'w> {
    packer: Option<&'p mut Packer<'w>>,
    changes: Vec<Change>,
    pending: Vec<Pending>,
}

fn vfs_walk(
    rootfs: &Path,
    lowers: &[PathBuf],
    lower_attr: &'static CStr,
    packer: Option<&mut Packer<'_>>,
) -> Result<Vec<Change>> {
    let root = archive::open_root(rootfs)?;
    let lower = LowerDir::root(lowers, lower_attr)?;
    let mut d = VfsDiff {
        packer,
        changes: Vec::new(),
        pending: Vec::new(),
    };
    d.dir(root.as_fd(), &lower, &mut Vec::new())
        .with_context(|| format!("compare {} with its layers", rootfs.display()))?;
    Ok(d.changes)
}

impl VfsDiff<'_, '_> {
    fn dir(&mut self, dir: BorrowedFd<'_>, lower: &LowerDir, rel: &mut Vec<u8>) -> Result<()> {
        let mut names: BTreeSet<CString> = lower.names(rel)?;
        names.extend(
            tree::read_names(dir)
                .with_context(|| format!("read directory {}", show(rel)))?
                .into_iter()
                .map(|n| n.0),
        );
        for name in names {
            with_child(rel, name.to_bytes(), |rel| self.node(dir, &name, lower, rel))?;
        }
        Ok(())
    }

    fn node(&mut self, dir: BorrowedFd<'_>, name: &CStr, lower: &LowerDir, rel: &mut Vec<u8>) -> Result<()> {
        let now = stat_at(dir, name, rel)?;
        let before = lower.lookup(name, rel)?;
        let path = abs_path(rel);
        match (now, before) {
            (None, None) => {}
            (None, Some((st, _))) => {
                self.flush()?;
                if let Some(p) = self.packer.as_deref_mut() {
                    p.whiteout(&archive::whiteout_name(rel), 0o600, &st)?;
                }
                self.changes.push(Change {
                    path,
                    kind: ChangeKind::Deleted,
                });
            }
            (Some(st), _) if tree::file_type(st.st_mode) == libc::S_IFSOCK => {}
            (Some(st), None) => {
                self.flush()?;
                if let Some(p) = self.packer.as_deref_mut() {
                    p.pack_node(dir, name, rel, true)?;
                }
                self.changes.push(Change {
                    path,
                    kind: ChangeKind::Added,
                });
                if tree::file_type(st.st_mode) == libc::S_IFDIR {
                    self.all_added(dir, name, rel)?;
                }
            }
            (Some(st), Some((old, old_dir))) => {
                let is_dir = tree::file_type(st.st_mode) == libc::S_IFDIR;
                let was_dir = tree::file_type(old.st_mode) == libc::S_IFDIR;
                let same = same_node(dir, &st, old_dir, &old, name, rel)?;
                if !same {
                    self.flush()?;
                    if let Some(p) = self.packer.as_deref_mut() {
                        // A directory that replaced a non-directory is new with everything in it.
                        p.pack_node(dir, name, rel, is_dir && !was_dir)?;
                    }
                    self.changes.push(Change {
                        path,
                        kind: ChangeKind::Changed,
                    });
                    if is_dir && !was_dir {
                        return self.all_added(dir, name, rel);
                    }
                }
                if is_dir && was_dir {
                    let fd = tree::open_dir_at(dir, name.to_bytes()).with_context(|| format!("open {}", show(rel)))?;
                    let parent = nix::unistd::dup(dir).context("dup a directory descriptor")?;
                    self.pending.push(Pending {
                        parent,
                        name: name.to_owned(),
                        rel: rel.clone(),
                        written: !same,
                    });
                    let below = lower.child(name, rel)?;
                    let r = self.dir(fd.as_fd(), &below, rel);
                    self.pending.pop();
                    r?;
                }
            }
        }
        Ok(())
    }

    /// Writes the directories around what is about to be written, once.
    fn flush(&mut self) -> Result<()> {
        for p in self.pending.iter_mut().filter(|p| !p.written) {
            p.written = true;
            if let Some(packer) = self.packer.as_deref_mut() {
                packer.pack_node(p.parent.as_fd(), &p.name, &mut p.rel, false)?;
            }
            self.changes.push(Change {
                path: abs_path(&p.rel),
                kind: ChangeKind::Changed,
            });
        }
        Ok(())
    }

    /// Records everything below the new directory `name` as added.
    fn all_added(&mut self, dir: BorrowedFd<'_>, name: &CStr, rel: &mut Vec<u8>) -> Result<()> {
        let fd = tree::open_dir_at(dir, name.to_bytes()).with_context(|| format!("open {}", show(rel)))?;
        for (child, _) in sorted_names(fd.as_fd(), rel)? {
            with_child(rel, child.to_bytes(), |rel| -> Result<()> {
                let Some(st) = stat_at(fd.as_fd(), &child, rel)? else {
                    return Ok(());
                };
                match tree::file_type(st.st_mode) {
                    libc::S_IFSOCK => return Ok(()),
                    libc::S_IFDIR => {
                        self.changes.push(Change {
                            path: abs_path(rel),
                            kind: ChangeKind::Added,
                        });
                        self.all_added(fd.as_fd(), &child, rel)?;
                    }
                    _ => self.changes.push(Change {
                        path: abs_path(rel),
                        kind: ChangeKind::Added,
                    }),
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// Docker's naive comparison of two nodes: type, permission bits, owner,
/// device number, size (not for directories), mtime (a zero nanosecond part
/// on either side compares seconds only), symlink target, file capability.
fn same_node(
    dir: BorrowedFd<'_>,
    st: &FileStat,
    old_dir: BorrowedFd<'_>,
    old: &FileStat,
    name: &CStr,
    rel: &[u8],
) -> Result<bool> {
    let ty = tree::file_type(st.st_mode);
    if ty != tree::file_type(old.st_mode)
        || st.st_mode & 0o7777 != old.st_mode & 0o7777
        || st.st_uid != old.st_uid
        || st.st_gid != old.st_gid
        || st.st_rdev != old.st_rdev
        || (ty != libc::S_IFDIR && st.st_size != old.st_size)
        || st.st_mtime != old.st_mtime
        || (st.st_mtime_nsec != old.st_mtime_nsec && st.st_mtime_nsec != 0 && old.st_mtime_nsec != 0)
    {
        return Ok(false);
    }
    if ty == libc::S_IFLNK {
        let a = readlinkat(dir, name).with_context(|| format!("readlink {}", show(rel)))?;
        let b = readlinkat(old_dir, name).with_context(|| format!("readlink {}", show(rel)))?;
        return Ok(a == b);
    }
    let cap = |d: BorrowedFd<'_>| -> Result<Option<Vec<u8>>> {
        match Node::At(d, name).get_xattr(c"security.capability") {
            Ok(v) => Ok(Some(v)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::EOPNOTSUPP | libc::EPERM)) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("read the capabilities of {}", show(rel))),
        }
    };
    if ty == libc::S_IFREG {
        return Ok(cap(dir)? == cap(old_dir)?);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{Tar, cap_net_raw};
    use crate::layers::unpack::{UnpackOptions, unpack};
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    use crate::layers::testutil::open_store;

    fn whiteout(p: &Path) {
        mknod(p, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).unwrap();
    }

    fn set_xattr(p: &Path, name: &CStr, value: &[u8]) {
        let f = File::open(p).unwrap();
        fsops::fsetxattr(f.as_fd(), name, value).unwrap();
    }

    /// Entry name → (type, mode, uid, size, PAX records).
    type Entries = BTreeMap<String, (tar::EntryType, u32, u64, u64, Vec<String>)>;

    fn entries(tar_bytes: &[u8]) -> (Vec<String>, Entries) {
        let mut ar = tar::Archive::new(tar_bytes);
        let mut order = Vec::new();
        let mut map = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let pax: Vec<String> = e
                .pax_extensions()
                .unwrap()
                .map(|x| x.map(|x| x.unwrap().key().unwrap().to_string()).collect::<Vec<_>>())
                .unwrap_or_default();
            let h = e.header();
            map.insert(
                name.clone(),
                (
                    h.entry_type(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.size().unwrap(),
                    pax,
                ),
            );
            order.push(name);
        }
        (order, map)
    }

    /// An upper directory as overlayfs leaves it (rootful, trusted.* markers).
    fn build_upper(root: &Path, userxattr: bool) {
        let opaque = tree::opaque_xattr(userxattr);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        whiteout(&root.join("etc/group"));
        whiteout(&root.join("old"));
        std::fs::create_dir(root.join("data")).unwrap();
        set_xattr(&root.join("data"), opaque, b"y");
        set_xattr(&root.join("data"), c"trusted.overlay.origin", b"junk");
        std::fs::write(root.join("data/c"), b"c").unwrap();
        std::fs::write(root.join("ping"), b"ping").unwrap();
        set_xattr(&root.join("ping"), c"security.capability", &cap_net_raw());
        set_xattr(&root.join("ping"), c"user.note", b"kept");
        std::fs::hard_link(root.join("ping"), root.join("ping2")).unwrap();
        std::fs::set_permissions(root.join("data"), PermissionsExt::from_mode(0o750)).unwrap();
        std::os::unix::fs::lchown(root.join("data"), Some(12), Some(34)).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    }

    #[test]
    fn pack_upper_writes_oci_whiteouts() {
        let up = tempfile::tempdir().unwrap();
        build_upper(up.path(), false);
        let mut tar = Vec::new();
        pack_upper(up.path(), false, &mut tar).unwrap();
        let (order, e) = entries(&tar);
        assert_eq!(
            order,
            [
                "data/",
                "data/.wh..wh..opq",
                "data/c",
                "etc/",
                "etc/.wh.group",
                "etc/passwd",
                ".wh.old",
                "ping",
                "ping2"
            ]
        );
        // Whiteouts are empty regular files; the opaque marker has the directory's owner and permissions.
        assert_eq!(e["etc/.wh.group"].0, tar::EntryType::Regular);
        assert_eq!(e["etc/.wh.group"].3, 0);
        assert_eq!(e[".wh.old"].1, 0o600);
        assert_eq!(e["data/.wh..wh..opq"].0, tar::EntryType::Regular);
        assert_eq!((e["data/.wh..wh..opq"].1, e["data/.wh..wh..opq"].2), (0o750, 12));
        // Overlay's xattrs never reach the archive; others do.
        assert!(e["data/"].4.is_empty(), "{:?}", e["data/"].4);
        assert_eq!(
            e["ping"].4,
            ["SCHILY.xattr.security.capability", "SCHILY.xattr.user.note"]
        );
        assert_eq!(e["ping2"].0, tar::EntryType::Link);
        assert!(!tar.windows(8).any(|w| w == b"overlay."));

        // Deterministic, and what unpack makes of it is the upper again.
        let mut again = Vec::new();
        pack_upper(up.path(), false, &mut again).unwrap();
        assert!(again == tar);
        let out = tempfile::tempdir().unwrap();
        unpack(&tar[..], out.path(), &UnpackOptions::default()).unwrap();
        let st = nix::sys::stat::lstat(&out.path().join("etc/group")).unwrap();
        assert!(is_whiteout(&st));
        let d = File::open(out.path().join("data")).unwrap();
        assert!(is_opaque(d.as_fd(), c"trusted.overlay.opaque"));
    }

    #[test]
    fn pack_upper_reads_user_opaque_only_with_userxattr() {
        let up = tempfile::tempdir().unwrap();
        build_upper(up.path(), true);
        let mut tar = Vec::new();
        pack_upper(up.path(), true, &mut tar).unwrap();
        assert!(entries(&tar).1.contains_key("data/.wh..wh..opq"));
        let mut tar = Vec::new();
        pack_upper(up.path(), false, &mut tar).unwrap();
        assert!(!entries(&tar).1.contains_key("data/.wh..wh..opq"));
        assert!(!tar.windows(8).any(|w| w == b"overlay."));
    }

    /// Two layers in a store: /etc/{passwd,group}, /data/{a,b}, /old/x, then /bin/sh.
    fn two_layers(store: &Store) -> Vec<String> {
        let base = Tar::new()
            .dir("etc/", 0o755)
            .file("etc/passwd", 0o644, b"root\n")
            .file("etc/group", 0o644, b"root\n")
            .dir("data/", 0o755)
            .file("data/a", 0o644, b"a")
            .file("data/b", 0o644, b"b")
            .dir("old/", 0o755)
            .file("old/x", 0o644, b"x")
            .finish();
        let top = Tar::new().dir("bin/", 0o755).file("bin/sh", 0o755, b"sh").finish();
        let mut parent: Option<String> = None;
        let mut chain = Vec::new();
        for t in [base, top] {
            let ing = ingest::ingest(store, &t[..], &Expect::default()).unwrap();
            let rec = ingest::commit(store, ing, parent.as_deref()).unwrap();
            parent = Some(rec.chain_id.clone());
            chain.push(rec.chain_id);
        }
        chain
    }

    fn show_changes(v: &[Change]) -> Vec<String> {
        v.iter().map(|c| format!("{} {}", c.kind.letter(), c.path)).collect()
    }

    #[test]
    fn upper_changes_follow_podman() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let chain = two_layers(&store);
        let up = tempfile::tempdir().unwrap();
        build_upper(up.path(), false);
        std::fs::create_dir_all(up.path().join("nd/deep")).unwrap();
        std::fs::write(up.path().join("nd/deep/z"), b"z").unwrap();
        std::fs::create_dir(up.path().join("proc")).unwrap();
        let lowers = lower_dirs(&store, &chain).unwrap();
        let attr = tree::opaque_xattr(false);
        let got = tidy(upper_changes(up.path(), attr, &lowers, attr).unwrap());
        assert_eq!(
            show_changes(&got),
            [
                "D /data",
                "A /data/c",
                "C /etc",
                "D /etc/group",
                "C /etc/passwd",
                "A /nd",
                "A /nd/deep",
                "A /nd/deep/z",
                "D /old",
                "A /ping",
                "A /ping2",
            ]
        );

        // The top layer of an image over the one below.
        let got = image_changes(&store, &chain).unwrap();
        assert_eq!(show_changes(&got), ["A /bin", "A /bin/sh"]);
        assert!(image_changes(&store, &[]).unwrap().is_empty());
    }

    #[test]
    fn lower_view_honours_whiteouts_and_opaque_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut chain = two_layers(&store);
        // A third layer: /old whited out, /data opaque with only /data/n.
        let third = Tar::new()
            .file(".wh.old", 0o600, b"")
            .dir("data/", 0o755)
            .file("data/.wh..wh..opq", 0o755, b"")
            .file("data/n", 0o644, b"n")
            .finish();
        let ing = ingest::ingest(&store, &third[..], &Expect::default()).unwrap();
        chain.push(
            ingest::commit(&store, ing, chain.last().map(String::as_str))
                .unwrap()
                .chain_id,
        );
        let lowers = lower_dirs(&store, &chain).unwrap();
        let root = LowerDir::root(&lowers, tree::opaque_xattr(false)).unwrap();
        let names: Vec<String> = root
            .names(b"")
            .unwrap()
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["bin", "data", "etc"]);
        assert!(root.lookup(c"old", b"old").unwrap().is_none());
        let data = root.child(c"data", b"data").unwrap();
        assert_eq!(data.dirs.len(), 1);
        assert!(data.lookup(c"a", b"data/a").unwrap().is_none());
        assert!(data.lookup(c"n", b"data/n").unwrap().is_some());
        assert!(root.child(c"old", b"old").unwrap().dirs.is_empty());
    }

    #[test]
    fn commit_upper_makes_a_layer_that_reads_back_as_the_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut chain = two_layers(&store);
        let up = tempfile::tempdir().unwrap();
        build_upper(up.path(), false);
        let rec = commit_upper(&store, up.path(), false, chain.last().map(String::as_str)).unwrap();
        assert_eq!(rec.parent.as_ref(), chain.last());
        let blob = rec.blob.clone().unwrap();
        assert_eq!(blob.digest, rec.diff_id, "stored uncompressed");
        let tar = crate::image::blobs::read_blob(&store, &blob.digest).unwrap();
        assert!(entries(&tar).1.contains_key("etc/.wh.group"));
        // The unpacked layer carries overlay's markers again.
        let layer = diff_dir(&store, &rec.chain_id).unwrap();
        assert!(is_whiteout(&nix::sys::stat::lstat(&layer.join("old")).unwrap()));
        chain.push(rec.chain_id.clone());
        assert_eq!(
            show_changes(&image_changes(&store, &chain).unwrap()),
            [
                "D /data",
                "A /data/c",
                "C /etc",
                "D /etc/group",
                "C /etc/passwd",
                "D /old",
                "A /ping",
                "A /ping2"
            ]
        );
        // The same upper again is the same layer.
        let again = commit_upper(&store, up.path(), false, chain.get(1).map(String::as_str)).unwrap();
        assert_eq!(again.chain_id, rec.chain_id);
    }

    #[test]
    fn vfs_diff_finds_changes_and_packs_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let chain = two_layers(&store);
        let lowers = lower_dirs(&store, &chain).unwrap();
        let rootfs = tempfile::tempdir().unwrap();
        let bottom_first: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
        crate::layers::merge::merge_layers(&bottom_first, rootfs.path(), &UnpackOptions::default()).unwrap();
        let attr = tree::opaque_xattr(false);
        assert!(vfs_walk(rootfs.path(), &lowers, attr, None).unwrap().is_empty());

        let r = |s: &str| rootfs.path().join(s);
        // Content changed but size and mtime kept: only the mtime tells (as in Docker), so move it.
        std::fs::write(r("etc/passwd"), b"toor\n").unwrap();
        std::fs::remove_file(r("etc/group")).unwrap();
        std::fs::remove_dir_all(r("old")).unwrap();
        std::fs::create_dir_all(r("nd/deep")).unwrap();
        std::fs::write(r("nd/deep/z"), b"z").unwrap();
        std::fs::remove_file(r("data/a")).unwrap();
        let dir_before = nix::sys::stat::stat(&r("bin")).unwrap();
        std::fs::set_permissions(r("bin/sh"), PermissionsExt::from_mode(0o700)).unwrap();
        // /bin's own metadata is untouched: it is written only as the parent of /bin/sh.
        assert_eq!(nix::sys::stat::stat(&r("bin")).unwrap().st_mtime, dir_before.st_mtime);

        let mut tar = Vec::new();
        let mut p = Packer::new(&mut tar, None);
        let got = vfs_walk(rootfs.path(), &lowers, attr, Some(&mut p)).unwrap();
        p.finish().unwrap();
        assert_eq!(
            show_changes(&tidy(got)),
            [
                "C /bin",
                "C /bin/sh",
                "C /data",
                "D /data/a",
                "C /etc",
                "D /etc/group",
                "C /etc/passwd",
                "A /nd",
                "A /nd/deep",
                "A /nd/deep/z",
                "D /old",
            ]
        );
        let (order, e) = entries(&tar);
        assert_eq!(
            order,
            [
                "bin/",
                "bin/sh",
                "data/",
                "data/.wh.a",
                "etc/",
                "etc/.wh.group",
                "etc/passwd",
                "nd/",
                "nd/deep/",
                "nd/deep/z",
                ".wh.old"
            ]
        );
        assert_eq!(e["bin/sh"].1, 0o700);
    }
}
