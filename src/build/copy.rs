//! COPY and ADD into a working container's root filesystem: matching the
//! sources (globs, ignore rules) in a source root, hashing what they would
//! copy (the build cache key), copying them with Docker's rules, extracting
//! local archives for ADD, resolving `--chown`/`--chmod`, and downloading ADD
//! URLs.
//!
//! Both roots are hostile. Source paths are resolved inside the source root
//! (openat2 RESOLVE_IN_ROOT for the parent components; the last component is
//! never followed, so a symlink is copied as a symlink), and walks go one name
//! at a time with O_NOFOLLOW. The destination is resolved inside `rootfs` the
//! same way: an image's `/d -> /etc` means `rootfs/etc`, never the host's.
//! Nothing is ever reached through a plain path join below a root.
//!
//! Differences from buildah 1.28, on purpose: a symlink named as a source is
//! copied as a symlink (buildah and BuildKit copy what it points to inside the
//! root); of the xattrs only `security.capability` is copied; a file or symlink
//! meeting an existing directory of the image is an error, also inside a copied
//! tree (buildah replaces the directory there); `ADD --chown` also owns the
//! extracted files (buildah 1.28 owns only the directories it creates).

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{UnlinkatFlags, linkat, symlinkat, unlinkat};
use sha2::{Digest as _, Sha256};

use crate::build::ignore::Matcher;
use crate::layers::archive::{Compression, decompress};
use crate::layers::tree::{self, Node, components, show, split_last};
use crate::sys::mount::{Resolve, open_in_root};

/// Where sources are read from.
pub struct Source<'a> {
    pub root: &'a Path,
    /// Only for the build context: excluded paths are invisible (not matched by globs, skipped in walks).
    pub ignore: Option<&'a Matcher>,
}

/// One COPY or ADD instruction, its words expanded.
#[derive(Debug, Clone, Default)]
pub struct CopyRequest {
    /// Sources as written (after variable expansion), relative to the source root (a leading '/' means the
    /// root too); globs `*`, `?`, `[...]` per path component (Go filepath.Match). `..` that would leave the
    /// root → error "outside the build context".
    pub sources: Vec<String>,
    /// Destination: absolute, or relative to `workdir`. Trailing '/' (or '.' endings) = a directory.
    pub dest: String,
    pub workdir: String,
    /// Owner for everything copied and for the directories the copy creates (as buildah does). None: COPY
    /// makes files 0:0; ADD of a local archive keeps the archive's owners.
    pub chown: Option<(u32, u32)>,
    /// Mode for every copied file and directory (BuildKit semantics), or None to keep modes. Not applied to
    /// the entries of an extracted archive (buildah does not either).
    pub chmod: Option<u32>,
    /// ADD: a local source that is a tar archive (plain, gzip, zstd; sniffed from the content) is extracted
    /// into dest instead of copied. bzip2/xz: copied as a plain file with a warning (no decoder).
    pub extract_archives: bool,
}

/// What the ignore rules answer; [`Matcher`] in production, a stand-in in tests.
trait Exclude {
    fn excluded(&self, rel: &str) -> bool;
    fn may_reinclude_below(&self, rel_dir: &str) -> bool;
}

impl Exclude for Matcher {
    fn excluded(&self, rel: &str) -> bool {
        self.is_excluded(rel)
    }
    fn may_reinclude_below(&self, rel_dir: &str) -> bool {
        Matcher::may_reinclude_below(self, rel_dir)
    }
}

/// sha256 hex over what the request would read: for each matched source in order, the walk in sorted
/// order of relative path, file type, mode bits, uid, gid, symlink target, and content (not mtimes, not
/// atimes); excluded paths left out.
pub fn hash_sources(src: &Source, req: &CopyRequest) -> Result<String> {
    let root = SrcRoot::open(src.root, src.ignore.map(|m| m as &dyn Exclude))?;
    hash_in(&root, req)
}

/// Performs the copy into `rootfs`.
pub fn copy(src: &Source, rootfs: &Path, req: &CopyRequest) -> Result<()> {
    let root = SrcRoot::open(src.root, src.ignore.map(|m| m as &dyn Exclude))?;
    copy_in(&root, rootfs, req)
}

// ---------------------------------------------------------------------------
// Source side: cleaning, globbing, resolving, walking.

const SPEC_CHARS: &[char] = &['*', '?', '[', '\\'];

fn has_meta(comp: &str) -> bool {
    comp.contains(SPEC_CHARS)
}

/// Cleans a source as written: leading '/' and "." dropped, ".." resolved
/// lexically; leaving the root is an error.
fn clean_source(s: &str) -> Result<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    bail!("source {s:?}: forbidden path outside the build context");
                }
            }
            c => out.push(c),
        }
    }
    Ok(out.join("/"))
}

fn join_rel(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// A source root, open.
struct SrcRoot<'a> {
    fd: OwnedFd,
    path: &'a Path,
    ignore: Option<&'a dyn Exclude>,
}

/// One matched source: its path relative to the root, the directory holding it, its name there.
struct Matched {
    rel: String,
    parent: OwnedFd,
    name: CString,
    st: FileStat,
}

impl Matched {
    fn is_dir(&self) -> bool {
        tree::file_type(self.st.st_mode) == libc::S_IFDIR
    }
    fn is_file(&self) -> bool {
        tree::file_type(self.st.st_mode) == libc::S_IFREG
    }
    /// The name an item takes in a destination directory (the root's own for ".").
    fn base_name(&self) -> &[u8] {
        let (_, last) = split_last(self.rel.as_bytes());
        last
    }
}

impl<'a> SrcRoot<'a> {
    fn open(path: &'a Path, ignore: Option<&'a dyn Exclude>) -> Result<SrcRoot<'a>> {
        // The root path itself is the caller's; everything below it is resolved inside.
        let fd = openat(
            AT_FDCWD,
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("open the source root {}", path.display()))?;
        Ok(SrcRoot { fd, path, ignore })
    }

    /// Whether `rel` is hidden by the ignore rules. A directory the rules may
    /// re-include paths below stays visible (its walk filters its entries).
    fn hidden(&self, rel: &str, is_dir: impl FnOnce() -> bool) -> bool {
        match self.ignore {
            Some(ig) if !rel.is_empty() && ig.excluded(rel) => !(is_dir() && ig.may_reinclude_below(rel)),
            _ => false,
        }
    }

    /// The directory `rel` (resolved inside the root), or None when it is missing or not a directory.
    fn open_dir(&self, rel: &str) -> Result<Option<OwnedFd>> {
        if rel.is_empty() {
            return Ok(Some(self.fd.try_clone().context("dup the source root")?));
        }
        match open_in_root(self.fd.as_fd(), Path::new(rel), Resolve::Existing) {
            Ok(fd) => {
                let st = fstat(&fd).with_context(|| format!("stat {rel:?} in {}", self.path.display()))?;
                Ok((tree::file_type(st.st_mode) == libc::S_IFDIR).then_some(fd))
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("open {rel:?} in {}", self.path.display())),
        }
    }

    /// The item at `rel`: parents resolved inside the root, the last component not followed.
    fn resolve(&self, rel: &str) -> Result<Option<Matched>> {
        let (parent_rel, name) = match rel.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None if rel.is_empty() => ("", "."),
            None => ("", rel),
        };
        let Some(parent) = self.open_dir(parent_rel)? else {
            return Ok(None);
        };
        let name = CString::new(name).with_context(|| format!("source {rel:?}: a NUL byte"))?;
        match fstatat(&parent, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Matched {
                rel: rel.to_string(),
                parent,
                name,
                st,
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(anyhow!(e)).with_context(|| format!("stat {rel:?} in {}", self.path.display())),
        }
    }

    /// Expands one source as written into the items it names, in order.
    fn expand(&self, source: &str) -> Result<Vec<Matched>> {
        let clean = clean_source(source)?;
        let literal = !clean.split('/').any(has_meta);
        let mut out = Vec::new();
        if literal {
            if let Some(m) = self.resolve(&clean)?
                && !self.hidden(&clean, || m.is_dir())
            {
                out.push(m);
            }
            if out.is_empty() {
                bail!(
                    "source {source:?}: no such file or directory in {}",
                    self.path.display()
                );
            }
            return Ok(out);
        }
        let mut candidates = vec![String::new()];
        for comp in clean.split('/').filter(|c| !c.is_empty()) {
            let mut next = Vec::new();
            if !has_meta(comp) {
                next.extend(candidates.into_iter().map(|c| join_rel(&c, comp)));
            } else {
                let glob = Glob::parse(comp).with_context(|| format!("source {source:?}"))?;
                for cand in candidates {
                    let Some(dir) = self.open_dir(&cand)? else { continue };
                    let mut names: Vec<(CString, Option<nix::dir::Type>)> = tree::read_names(dir.as_fd())
                        .with_context(|| format!("read {cand:?} in {}", self.path.display()))?;
                    names.sort_by(|a, b| a.0.cmp(&b.0));
                    for (name, ty) in names {
                        let name = String::from_utf8_lossy(name.to_bytes()).into_owned();
                        if !glob.matches(&name) {
                            continue;
                        }
                        let rel = join_rel(&cand, &name);
                        if self.hidden(&rel, || ty == Some(nix::dir::Type::Directory)) {
                            continue;
                        }
                        next.push(rel);
                    }
                }
            }
            candidates = next;
        }
        for rel in candidates {
            if let Some(m) = self.resolve(&rel)?
                && !self.hidden(&rel, || m.is_dir())
            {
                out.push(m);
            }
        }
        if out.is_empty() {
            bail!("source {source:?}: no source files were specified (the pattern matches nothing)");
        }
        Ok(out)
    }

    fn expand_all(&self, req: &CopyRequest) -> Result<Vec<Matched>> {
        if req.sources.is_empty() {
            bail!("no source files were specified");
        }
        let mut all = Vec::new();
        for s in &req.sources {
            all.extend(self.expand(s)?);
        }
        Ok(all)
    }
}

/// What a walk meets, in sorted order. `rel` is relative to the matched
/// source ("" is the source itself).
trait Visit {
    fn enter_dir(&mut self, rel: &[u8], dir: BorrowedFd<'_>, st: &FileStat) -> Result<()>;
    fn leave_dir(&mut self, rel: &[u8], st: &FileStat) -> Result<()>;
    fn file(&mut self, rel: &[u8], file: &mut File, st: &FileStat) -> Result<()>;
    fn symlink(&mut self, rel: &[u8], target: &[u8], st: &FileStat) -> Result<()>;
    /// A device, fifo or socket (skipped).
    fn special(&mut self, ctx_rel: &str, st: &FileStat);
}

fn kind_name(mode: u32) -> &'static str {
    match tree::file_type(mode) {
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        _ => "special file",
    }
}

/// Walks the item `name` of `parent` (with stat `st`), never following a symlink.
fn walk(
    root: &SrcRoot,
    parent: BorrowedFd<'_>,
    name: &CStr,
    st: &FileStat,
    ctx_rel: &str,
    rel: &mut Vec<u8>,
    v: &mut dyn Visit,
) -> Result<()> {
    let shown = || format!("{:?} in {}", ctx_rel, root.path.display());
    match tree::file_type(st.st_mode) {
        libc::S_IFDIR => {
            let dir = openat(
                parent,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("open {}", shown()))?;
            v.enter_dir(rel, dir.as_fd(), st)?;
            let mut names = tree::read_names(dir.as_fd()).with_context(|| format!("read {}", shown()))?;
            names.sort_by(|a, b| a.0.cmp(&b.0));
            for (child, _) in names {
                let child_rel = join_rel(ctx_rel, &String::from_utf8_lossy(child.to_bytes()));
                let cst = match fstatat(&dir, child.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(s) => s,
                    Err(Errno::ENOENT) => continue,
                    Err(e) => {
                        return Err(anyhow!(e))
                            .with_context(|| format!("stat {child_rel:?} in {}", root.path.display()));
                    }
                };
                if root.hidden(&child_rel, || tree::file_type(cst.st_mode) == libc::S_IFDIR) {
                    continue;
                }
                let len = rel.len();
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend_from_slice(child.to_bytes());
                walk(root, dir.as_fd(), &child, &cst, &child_rel, rel, v)?;
                rel.truncate(len);
            }
            v.leave_dir(rel, st)
        }
        libc::S_IFREG => {
            let fd = openat(
                parent,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("open {}", shown()))?;
            v.file(rel, &mut File::from(fd), st)
        }
        libc::S_IFLNK => {
            let target = readlinkat(parent, name).with_context(|| format!("read the symlink {}", shown()))?;
            v.symlink(rel, target.as_bytes(), st)
        }
        _ => {
            v.special(ctx_rel, st);
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------
// Glob patterns: Go's filepath.Match, for one path component.

enum Tok {
    Lit(char),
    Any,
    Star,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

struct Glob(Vec<Tok>);

impl Glob {
    fn parse(p: &str) -> Result<Glob> {
        let bad = || anyhow!("syntax error in pattern {p:?}");
        let mut toks = Vec::new();
        let mut it = p.chars().peekable();
        let esc = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Result<char> {
            match it.next() {
                Some('\\') => it.next().ok_or_else(bad),
                Some('-' | ']') | None => Err(bad()),
                Some(c) => Ok(c),
            }
        };
        while let Some(c) = it.next() {
            match c {
                '*' => {
                    if !matches!(toks.last(), Some(Tok::Star)) {
                        toks.push(Tok::Star);
                    }
                }
                '?' => toks.push(Tok::Any),
                '\\' => toks.push(Tok::Lit(it.next().ok_or_else(bad)?)),
                '[' => {
                    let negated = it.peek() == Some(&'^');
                    if negated {
                        it.next();
                    }
                    let mut ranges = Vec::new();
                    loop {
                        if it.peek() == Some(&']') && !ranges.is_empty() {
                            it.next();
                            break;
                        }
                        let lo = esc(&mut it)?;
                        let hi = if it.peek() == Some(&'-') {
                            it.next();
                            esc(&mut it)?
                        } else {
                            lo
                        };
                        if hi < lo {
                            return Err(bad());
                        }
                        ranges.push((lo, hi));
                    }
                    toks.push(Tok::Class { negated, ranges });
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Glob(toks))
    }

    fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        match_toks(&self.0, &chars)
    }
}

fn match_toks(toks: &[Tok], name: &[char]) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return name.is_empty();
    };
    match first {
        Tok::Star => (0..=name.len()).any(|i| match_toks(rest, &name[i..])),
        Tok::Lit(_) | Tok::Any | Tok::Class { .. } => {
            let Some((&c, tail)) = name.split_first() else {
                return false;
            };
            let ok = match first {
                Tok::Lit(l) => *l == c,
                Tok::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
                Tok::Any | Tok::Star => true,
            };
            ok && match_toks(rest, tail)
        }
    }
}

// ---------------------------------------------------------------------------
// Hashing.

struct Hasher {
    h: Sha256,
    buf: Vec<u8>,
}

impl Hasher {
    fn field(&mut self, b: &[u8]) {
        self.h.update((b.len() as u64).to_le_bytes());
        self.h.update(b);
    }

    fn header(&mut self, rel: &[u8], kind: u8, st: &FileStat) {
        self.field(rel);
        self.field(&[kind]);
        self.field(&(st.st_mode & 0o7777).to_le_bytes());
        self.field(&st.st_uid.to_le_bytes());
        self.field(&st.st_gid.to_le_bytes());
    }
}

impl Visit for Hasher {
    fn enter_dir(&mut self, rel: &[u8], _: BorrowedFd<'_>, st: &FileStat) -> Result<()> {
        self.header(rel, b'd', st);
        Ok(())
    }
    fn leave_dir(&mut self, _: &[u8], _: &FileStat) -> Result<()> {
        Ok(())
    }
    fn file(&mut self, rel: &[u8], file: &mut File, st: &FileStat) -> Result<()> {
        self.header(rel, b'f', st);
        let mut content = Sha256::new();
        loop {
            match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => content.update(&self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).with_context(|| format!("read {}", show(rel))),
            }
        }
        let digest = content.finalize();
        self.field(&digest);
        Ok(())
    }
    fn symlink(&mut self, rel: &[u8], target: &[u8], st: &FileStat) -> Result<()> {
        self.header(rel, b'l', st);
        self.field(target);
        Ok(())
    }
    fn special(&mut self, _: &str, _: &FileStat) {}
}

fn hash_in(root: &SrcRoot, req: &CopyRequest) -> Result<String> {
    let items = root.expand_all(req)?;
    let mut h = Hasher {
        h: Sha256::new(),
        buf: vec![0; 128 * 1024],
    };
    for m in &items {
        h.field(b"source");
        h.field(m.rel.as_bytes());
        walk(root, m.parent.as_fd(), &m.name, &m.st, &m.rel, &mut Vec::new(), &mut h)?;
    }
    Ok(crate::util::ids::hex(&h.h.finalize()))
}

// ---------------------------------------------------------------------------
// Destination side.

/// The destination cleaned inside the root: its components, and whether it names a directory.
fn dest_components(req: &CopyRequest) -> Result<(Vec<Vec<u8>>, bool)> {
    let dest = req.dest.as_str();
    if dest.is_empty() {
        bail!("no destination given");
    }
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", req.workdir)
    };
    let last = joined.rsplit('/').next().unwrap_or("");
    let is_dir = joined.ends_with('/') || last == "." || last == "..";
    let mut comps: Vec<Vec<u8>> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            // ".." clamps at the root, as "/.." does.
            ".." => {
                comps.pop();
            }
            c => comps.push(c.as_bytes().to_vec()),
        }
    }
    let is_dir = is_dir || comps.is_empty();
    Ok((comps, is_dir))
}

fn join_comps(comps: &[impl AsRef<[u8]>]) -> Vec<u8> {
    comps.iter().map(|c| c.as_ref()).collect::<Vec<_>>().join(&b'/')
}

fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

fn is_dir_fd(fd: BorrowedFd<'_>) -> nix::Result<bool> {
    Ok(tree::file_type(fstat(fd)?.st_mode) == libc::S_IFDIR)
}

/// A real (not O_PATH) descriptor of the directory an O_PATH descriptor refers to.
fn reopen_dir(fd: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    openat(
        fd,
        c".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn chown_at(dir: BorrowedFd<'_>, name: &[u8], (uid, gid): (u32, u32), path: &[u8]) -> Result<()> {
    let c = CString::new(name).context("name with a NUL byte")?;
    Node::At(dir, &c)
        .chown(uid, gid)
        .with_context(|| format!("chown {} to {uid}:{gid}", show(path)))
}

/// The directory `comps` resolved inside `root` (symlinks followed, clamped at
/// the root), as an O_PATH descriptor. Missing directories are created 0755,
/// owned by `owner`; a non-directory or dangling symlink on the way is an error.
fn ensure_dir(root: BorrowedFd<'_>, comps: &[impl AsRef<[u8]>], owner: (u32, u32)) -> Result<OwnedFd> {
    let full = join_comps(comps);
    // Usually it exists: one lookup.
    match open_in_root(root, os(&full), Resolve::Existing) {
        Ok(fd) => {
            if is_dir_fd(fd.as_fd()).with_context(|| format!("stat {}", show(&full)))? {
                return Ok(fd);
            }
            bail!("{} exists and is not a directory", show(&full));
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {}
        Err(e) => return Err(e).with_context(|| format!("open {}", show(&full))),
    }
    let mut cur = root.try_clone_to_owned().context("dup a directory descriptor")?;
    for i in 0..comps.len() {
        let path = join_comps(&comps[..=i]);
        let name = comps[i].as_ref();
        match open_in_root(root, os(&path), Resolve::Existing) {
            Ok(fd) => {
                if !is_dir_fd(fd.as_fd()).with_context(|| format!("stat {}", show(&path)))? {
                    bail!("{} exists and is not a directory", show(&path));
                }
                cur = fd;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match mkdirat(&cur, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => bail!("{} is a symlink to a missing directory", show(&path)),
                    Err(e) => return Err(anyhow!(e)).with_context(|| format!("mkdir {}", show(&path))),
                }
                let c = CString::new(name).context("name with a NUL byte")?;
                // mkdirat's mode was reduced by the umask.
                Node::At(cur.as_fd(), &c)
                    .chmod(0o755)
                    .with_context(|| format!("chmod {}", show(&path)))?;
                chown_at(cur.as_fd(), name, owner, &path)?;
                cur = open_in_root(root, os(&path), Resolve::NoFollow)
                    .with_context(|| format!("open {}", show(&path)))?;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                bail!("{} passes through a non-directory", show(&path))
            }
            Err(e) => return Err(e).with_context(|| format!("open {}", show(&path))),
        }
    }
    Ok(cur)
}

/// Makes room for a non-directory at `name` of `dir`: an existing file or
/// symlink is removed; an existing directory is an error.
fn clear_for_nondir(dir: BorrowedFd<'_>, name: &[u8], path: &[u8]) -> Result<()> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(anyhow!(e)).with_context(|| format!("stat {}", show(path))),
        Ok(st) if tree::file_type(st.st_mode) == libc::S_IFDIR => {
            bail!("cannot replace the directory {} with a non-directory", show(path))
        }
        Ok(_) => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
            .with_context(|| format!("remove {} to replace it", show(path))),
    }
}

fn mtime_of(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_mtime, st.st_mtime_nsec)
}

const CAPABILITY: &CStr = c"security.capability";

/// Copies `security.capability` (file capabilities, e.g. ping's cap_net_raw).
/// Other xattrs are not copied. Set after chown, which clears it.
fn copy_capability(src: &File, dst: BorrowedFd<'_>, path: &[u8]) -> Result<()> {
    match crate::sys::fsops::fgetxattr(src.as_fd(), CAPABILITY) {
        Ok(v) => match crate::sys::fsops::fsetxattr(dst, CAPABILITY, &v) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP | libc::EINVAL)) => {
                crate::output::warn(&format!("{}: file capabilities not copied: {e}", show(path)));
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("set security.capability on {}", show(path))),
        },
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::EOPNOTSUPP)) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("read security.capability of {}", show(path))),
    }
}

/// A directory being written: its descriptor, its path inside the rootfs (for
/// messages and in-root resolution), and whether the source's metadata goes on it.
struct OpenDir {
    fd: OwnedFd,
    path: Vec<u8>,
    set_meta: bool,
}

/// Copies one matched item into the rootfs.
struct Writer<'a> {
    rootfs: BorrowedFd<'a>,
    owner: (u32, u32),
    chmod: Option<u32>,
    /// The name the matched item itself takes (rel "").
    top_name: Vec<u8>,
    stack: Vec<OpenDir>,
}

impl Writer<'_> {
    fn target(&self, rel: &[u8]) -> Result<(BorrowedFd<'_>, Vec<u8>, Vec<u8>)> {
        let name = if rel.is_empty() {
            self.top_name.clone()
        } else {
            split_last(rel).1.to_vec()
        };
        let top = self.stack.last().context("directory stack underflow")?;
        let mut path = top.path.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        Ok((top.fd.as_fd(), name, path))
    }

    fn mode(&self, st: &FileStat) -> u32 {
        self.chmod.unwrap_or(st.st_mode & 0o7777)
    }
}

impl Visit for Writer<'_> {
    fn enter_dir(&mut self, rel: &[u8], _: BorrowedFd<'_>, _: &FileStat) -> Result<()> {
        if rel.is_empty() {
            // The destination directory itself: prepared by the caller, its metadata kept.
            return Ok(());
        }
        let (parent, name, path) = self.target(rel)?;
        let (fd, set_meta) = match tree::open_dir_at(parent, &name) {
            Ok(fd) => (fd, true),
            Err(Errno::ENOENT) => {
                mkdirat(parent, name.as_slice(), Mode::from_bits_truncate(0o700))
                    .with_context(|| format!("mkdir {}", show(&path)))?;
                chown_at(parent, &name, self.owner, &path)?;
                let fd = tree::open_dir_at(parent, &name).with_context(|| format!("open {}", show(&path)))?;
                (fd, true)
            }
            Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                let st = fstatat(parent, name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|_| e)
                    .with_context(|| format!("stat {}", show(&path)))?;
                if tree::file_type(st.st_mode) != libc::S_IFLNK {
                    bail!("cannot replace the non-directory {} with a directory", show(&path));
                }
                // An image's symlink to a directory (lib -> usr/lib): followed inside the rootfs,
                // and the directory it names keeps its own metadata.
                let fd = open_in_root(self.rootfs, os(&path), Resolve::Existing)
                    .with_context(|| format!("open {} (a symlink) inside the root", show(&path)))?;
                if !is_dir_fd(fd.as_fd()).with_context(|| format!("stat {}", show(&path)))? {
                    bail!(
                        "cannot copy a directory to {}: a symlink to a non-directory",
                        show(&path)
                    );
                }
                (
                    reopen_dir(fd.as_fd()).with_context(|| format!("open {}", show(&path)))?,
                    false,
                )
            }
            Err(e) => return Err(anyhow!(e)).with_context(|| format!("open {}", show(&path))),
        };
        if set_meta {
            Node::Fd(fd.as_fd())
                .chown(self.owner.0, self.owner.1)
                .with_context(|| format!("chown {}", show(&path)))?;
        }
        self.stack.push(OpenDir { fd, path, set_meta });
        Ok(())
    }

    fn leave_dir(&mut self, rel: &[u8], st: &FileStat) -> Result<()> {
        if rel.is_empty() {
            return Ok(());
        }
        let d = self.stack.pop().context("directory stack underflow")?;
        if d.set_meta {
            let mode = self.mode(st);
            Node::Fd(d.fd.as_fd())
                .chmod(mode)
                .with_context(|| format!("chmod {} to {mode:o}", show(&d.path)))?;
            Node::Fd(d.fd.as_fd())
                .set_times(mtime_of(st))
                .with_context(|| format!("set the times of {}", show(&d.path)))?;
        }
        Ok(())
    }

    fn file(&mut self, rel: &[u8], src: &mut File, st: &FileStat) -> Result<()> {
        let (parent, name, path) = self.target(rel)?;
        clear_for_nondir(parent, &name, &path)?;
        let fd = openat(
            parent,
            name.as_slice(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .with_context(|| format!("create {}", show(&path)))?;
        let mut dst = File::from(fd);
        // copy_file_range where the file systems allow it.
        io::copy(src, &mut dst).with_context(|| format!("copy data into {}", show(&path)))?;
        let mode = self.mode(st);
        let node = Node::Fd(dst.as_fd());
        node.chown(self.owner.0, self.owner.1)
            .with_context(|| format!("chown {}", show(&path)))?;
        node.chmod(mode)
            .with_context(|| format!("chmod {} to {mode:o}", show(&path)))?;
        copy_capability(src, dst.as_fd(), &path)?;
        node.set_times(mtime_of(st))
            .with_context(|| format!("set the times of {}", show(&path)))?;
        Ok(())
    }

    fn symlink(&mut self, rel: &[u8], target: &[u8], st: &FileStat) -> Result<()> {
        let (parent, name, path) = self.target(rel)?;
        clear_for_nondir(parent, &name, &path)?;
        symlinkat(target, parent, name.as_slice()).with_context(|| format!("symlink {}", show(&path)))?;
        let c = CString::new(name).context("name with a NUL byte")?;
        let node = Node::At(parent, &c);
        node.chown(self.owner.0, self.owner.1)
            .with_context(|| format!("chown {}", show(&path)))?;
        node.set_times(mtime_of(st))
            .with_context(|| format!("set the times of {}", show(&path)))?;
        Ok(())
    }

    fn special(&mut self, ctx_rel: &str, st: &FileStat) {
        crate::output::warn(&format!(
            "skipped {ctx_rel:?}: a {} cannot be copied",
            kind_name(st.st_mode)
        ));
    }
}

fn copy_in(root: &SrcRoot, rootfs: &Path, req: &CopyRequest) -> Result<()> {
    let (comps, dest_is_dir) = dest_components(req)?;
    let items = root.expand_all(req)?;
    if items.len() > 1 && !dest_is_dir {
        bail!(
            "when copying several sources ({}), the destination {:?} must be a directory ending in '/'",
            items.len(),
            req.dest
        );
    }
    let rootfs_fd = openat(
        AT_FDCWD,
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open the root filesystem {}", rootfs.display()))?;
    let rootfs_fd = rootfs_fd.as_fd();
    let owner = req.chown.unwrap_or((0, 0));
    let dest_path = join_comps(&comps);
    for m in &items {
        let what = || format!("copy {:?} to {:?}", m.rel, req.dest);
        if m.is_file() && req.extract_archives {
            let mut file = open_item(root, m)?;
            match sniff_archive(&mut file).with_context(|| format!("read {:?}", m.rel))? {
                Archive::Tar => {
                    let dest = ensure_dir(rootfs_fd, &comps, owner).with_context(what)?;
                    extract(file, dest.as_fd(), &dest_path, req.chown)
                        .with_context(|| format!("extract {:?} into {:?}", m.rel, req.dest))?;
                    continue;
                }
                Archive::Undecodable(kind) => crate::output::warn(&format!(
                    "{:?} looks {kind}-compressed, which casco cannot decompress: copied as a file, not extracted",
                    m.rel
                )),
                Archive::No => {}
            }
        }
        // Where the item goes: into the destination directory, or at the destination path.
        let (dir_comps, top_name): (&[Vec<u8>], Vec<u8>) = if m.is_dir() {
            (&comps, Vec::new())
        } else if dest_is_dir || existing_dir(rootfs_fd, &dest_path)? {
            (&comps, m.base_name().to_vec())
        } else {
            let (last, parent) = comps.split_last().context("no destination file name")?;
            (parent, last.clone())
        };
        let dir = ensure_dir(rootfs_fd, dir_comps, owner).with_context(what)?;
        let dir = reopen_dir(dir.as_fd()).with_context(|| format!("open {}", show(&join_comps(dir_comps))))?;
        let mut w = Writer {
            rootfs: rootfs_fd,
            owner,
            chmod: req.chmod,
            top_name,
            stack: vec![OpenDir {
                fd: dir,
                path: join_comps(dir_comps),
                set_meta: false,
            }],
        };
        walk(root, m.parent.as_fd(), &m.name, &m.st, &m.rel, &mut Vec::new(), &mut w).with_context(what)?;
    }
    Ok(())
}

/// Whether `path` resolves (inside the root, following symlinks) to a directory.
fn existing_dir(root: BorrowedFd<'_>, path: &[u8]) -> Result<bool> {
    match open_in_root(root, os(path), Resolve::Existing) {
        Ok(fd) => is_dir_fd(fd.as_fd()).with_context(|| format!("stat {}", show(path))),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("open {}", show(path))),
    }
}

fn open_item(root: &SrcRoot, m: &Matched) -> Result<File> {
    let fd = openat(
        &m.parent,
        m.name.as_c_str(),
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {:?} in {}", m.rel, root.path.display()))?;
    Ok(File::from(fd))
}

// ---------------------------------------------------------------------------
// ADD: archives.

enum Archive {
    Tar,
    /// bzip2 or xz: no decoder in casco.
    Undecodable(&'static str),
    No,
}

/// Whether a 512-byte block is a tar header: its checksum field matches the
/// sum of its bytes with that field read as spaces (unsigned, or signed as
/// some old tars wrote it).
fn is_tar_header(b: &[u8]) -> bool {
    if b.len() < 512 || b[..512].iter().all(|&x| x == 0) {
        return false;
    }
    let field = &b[148..156];
    let digits: String = field
        .iter()
        .map(|&c| c as char)
        .skip_while(|c| *c == ' ')
        .take_while(|c| c.is_digit(8))
        .collect();
    let Ok(want) = u64::from_str_radix(&digits, 8) else {
        return false;
    };
    let unsigned: u64 = b[..512]
        .iter()
        .enumerate()
        .map(|(i, &x)| u64::from(if (148..156).contains(&i) { b' ' } else { x }))
        .sum();
    let signed: i64 = b[..512]
        .iter()
        .enumerate()
        .map(|(i, &x)| i64::from(if (148..156).contains(&i) { b' ' as i8 } else { x as i8 }))
        .sum();
    want == unsigned || i64::try_from(want).is_ok_and(|w| w == signed)
}

/// Sniffs the content (never the name); leaves the file at its start.
fn sniff_archive(file: &mut File) -> Result<Archive> {
    use std::io::Seek;
    let mut head = [0u8; 6];
    let n = read_full(file, &mut head)?;
    let head = &head[..n];
    file.rewind()?;
    if head.starts_with(b"BZh") {
        return Ok(Archive::Undecodable("bzip2"));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok(Archive::Undecodable("xz"));
    }
    let mut block = [0u8; 512];
    let n = {
        let (mut r, _) = decompress(&mut *file)?;
        // A gzip file that is not gzip past its magic is just a file.
        read_full(&mut r, &mut block).unwrap_or(0)
    };
    file.rewind()?;
    Ok(if is_tar_header(&block[..n]) {
        Archive::Tar
    } else {
        Archive::No
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An entry name made relative to the extraction directory: absolute names
/// and ".." are clamped inside it (as buildah does), "." dropped.
fn normalize_entry(raw: &[u8]) -> Vec<u8> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in components(raw) {
        match c {
            b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join(&b'/')
}

/// Whether `prefix` is `path` or one of its parent directories.
fn is_prefix(prefix: &[u8], path: &[u8]) -> bool {
    path.starts_with(prefix) && (path.len() == prefix.len() || prefix.is_empty() || path[prefix.len()] == b'/')
}

/// Extracts a tar (plain, gzip or zstd) into `dest` (an O_PATH directory
/// descriptor; `dest_path` names it for messages). Every name and every
/// symlink on the way is resolved with `dest` as the root, as buildah does
/// by extracting chrooted there: nothing can land outside it.
fn extract(file: File, dest: BorrowedFd<'_>, dest_path: &[u8], chown: Option<(u32, u32)>) -> Result<()> {
    let (reader, _): (Box<dyn Read>, Compression) = decompress(file)?;
    let mut archive = tar::Archive::new(reader);
    let dir_owner = chown.unwrap_or((0, 0));
    let mut cache: Option<(Vec<u8>, OwnedFd)> = None;
    let mut written: HashSet<Vec<u8>> = HashSet::new();
    let mut dirs: Vec<(Vec<u8>, u32, TimeSpec)> = Vec::new();
    let mut stale = false;
    let shown = |p: &[u8]| {
        let mut full = dest_path.to_vec();
        if !full.is_empty() {
            full.push(b'/');
        }
        full.extend_from_slice(p);
        show(&full)
    };
    for entry in archive.entries().context("read the archive")? {
        let mut entry = entry.context("read the archive")?;
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() || kind.is_gnu_longname() {
            continue;
        }
        let path = normalize_entry(&raw);
        if path.is_empty() {
            // The extraction directory itself keeps its metadata.
            continue;
        }
        if std::mem::take(&mut stale) || cache.as_ref().is_some_and(|(p, _)| is_prefix(&path, p)) {
            cache = None;
        }
        let (parent_path, name) = split_last(&path);
        let parent = match &cache {
            Some((p, fd)) if p.as_slice() == parent_path => fd,
            _ => {
                let comps: Vec<&[u8]> = components(parent_path).collect();
                let fd = ensure_dir(dest, &comps, dir_owner).with_context(|| format!("entry {}", show(&raw)))?;
                &cache.insert((parent_path.to_vec(), fd)).1
            }
        };
        let parent = parent.as_fd();
        let h = entry.header();
        let mode = h.mode().context("bad mode")? & 0o7777;
        let (uid, gid) = match chown {
            Some(o) => o,
            None => (
                u32::try_from(h.uid().context("bad uid")?).context("uid out of range")?,
                u32::try_from(h.gid().context("bad gid")?).context("gid out of range")?,
            ),
        };
        let mtime = TimeSpec::new(i64::try_from(h.mtime().context("bad mtime")?).unwrap_or(i64::MAX), 0);
        let at = shown(&path);
        let existing = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Some(tree::file_type(st.st_mode)),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(anyhow!(e)).with_context(|| format!("stat {at}")),
        };
        let is_dir = kind == tar::EntryType::Directory || (raw.ends_with(b"/") && kind.is_file());
        // Anything but a directory over a directory is replaced.
        let replaces = existing.is_some() && !(is_dir && existing == Some(libc::S_IFDIR));
        if replaces {
            tree::remove_at(parent, name).with_context(|| format!("remove {at} to replace it"))?;
        }
        let cname = CString::new(name).context("name with a NUL byte")?;
        let node = Node::At(parent, &cname);
        // A removal or a new symlink may change what a cached parent path
        // resolves to (through symlinks, not only by name): look it up again.
        stale = replaces || kind == tar::EntryType::Symlink;
        match kind {
            _ if is_dir => {
                if existing != Some(libc::S_IFDIR) {
                    mkdirat(parent, name, Mode::from_bits_truncate(0o700)).with_context(|| format!("mkdir {at}"))?;
                }
                node.chown(uid, gid).with_context(|| format!("chown {at}"))?;
                dirs.push((path.clone(), mode, mtime));
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = openat(
                    parent,
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .with_context(|| format!("create {at}"))?;
                let mut f = File::from(fd);
                io::copy(&mut entry, &mut f).with_context(|| format!("write {at}"))?;
                let node = Node::Fd(f.as_fd());
                node.chown(uid, gid).with_context(|| format!("chown {at}"))?;
                node.chmod(mode).with_context(|| format!("chmod {at}"))?;
                if let Some(exts) = entry.pax_extensions().context("bad PAX header")? {
                    for ext in exts {
                        let ext = ext.context("bad PAX record")?;
                        if ext.key_bytes() == b"SCHILY.xattr.security.capability" {
                            crate::sys::fsops::fsetxattr(f.as_fd(), CAPABILITY, ext.value_bytes())
                                .with_context(|| format!("set security.capability on {at}"))?;
                        }
                    }
                }
                node.set_times(mtime)
                    .with_context(|| format!("set the times of {at}"))?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().context("symlink without a target")?;
                symlinkat(target.as_ref(), parent, name).with_context(|| format!("symlink {at}"))?;
                node.chown(uid, gid).with_context(|| format!("chown {at}"))?;
                node.set_times(mtime)
                    .with_context(|| format!("set the times of {at}"))?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().context("hardlink without a target")?;
                let tpath = normalize_entry(&target);
                if !written.contains(&tpath) {
                    bail!(
                        "entry {}: hardlink target {} is not a file extracted from this archive",
                        show(&raw),
                        show(&target)
                    );
                }
                let (tparent, tname) = split_last(&tpath);
                let tdir = open_in_root(dest, os(tparent), Resolve::Existing)
                    .with_context(|| format!("open the directory of {}", shown(&tpath)))?;
                linkat(&tdir, tname, parent, name, AtFlags::empty())
                    .with_context(|| format!("hardlink {at} to {}", shown(&tpath)))?;
            }
            tar::EntryType::Fifo | tar::EntryType::Char | tar::EntryType::Block => {
                let (sflag, dev) = match kind {
                    tar::EntryType::Fifo => (SFlag::S_IFIFO, 0),
                    t => {
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let f = if t == tar::EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (f, nix::sys::stat::makedev(major.into(), minor.into()))
                    }
                };
                match mknodat(parent, name, sflag, Mode::from_bits_truncate(0o600), dev) {
                    Ok(()) => {}
                    Err(Errno::EPERM) => {
                        crate::output::warn(&format!("skipped {at}: device nodes cannot be created here"));
                        continue;
                    }
                    Err(e) => return Err(anyhow!(e)).with_context(|| format!("mknod {at}")),
                }
                node.chown(uid, gid).with_context(|| format!("chown {at}"))?;
                node.chmod(mode).with_context(|| format!("chmod {at}"))?;
                node.set_times(mtime)
                    .with_context(|| format!("set the times of {at}"))?;
            }
            other => {
                crate::output::warn(&format!(
                    "skipped {at}: unsupported entry type {:?}",
                    other.as_byte() as char
                ));
                continue;
            }
        }
        written.insert(path);
    }
    // Modes and times of directories last: their children changed the mtimes,
    // and a 0555 directory had to receive its children first.
    for (path, mode, mtime) in dirs.into_iter().rev() {
        let fd = match open_in_root(dest, os(&path), Resolve::NoFollow) {
            Ok(fd) if is_dir_fd(fd.as_fd()).unwrap_or(false) => fd,
            _ => continue, // replaced by a later entry
        };
        let fd = reopen_dir(fd.as_fd()).with_context(|| format!("open {}", shown(&path)))?;
        Node::Fd(fd.as_fd())
            .chmod(mode)
            .with_context(|| format!("chmod {}", shown(&path)))?;
        Node::Fd(fd.as_fd())
            .set_times(mtime)
            .with_context(|| format!("set the times of {}", shown(&path)))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// --chown and --chmod.

/// `--chown` spec `user[:group]`, names or numbers; names looked up in the rootfs's /etc/passwd and
/// /etc/group (opened inside the root). `user` alone: a name takes that user's primary group, a
/// number the same number as gid (as buildah does). Unknown name → error.
pub fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group == Some("") {
        bail!("invalid --chown {spec:?}: expected USER[:GROUP]");
    }
    let root = || {
        openat(
            AT_FDCWD,
            rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("open the root filesystem {}", rootfs.display()))
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let passwd = read_in_root(root()?.as_fd(), "/etc/passwd")
                .with_context(|| format!("--chown {spec:?}: look up user {user:?}"))?;
            lookup(&passwd, user)
                .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
                .ok_or_else(|| anyhow!("--chown {spec:?}: no user {user:?} in the image's /etc/passwd"))?
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = read_in_root(root()?.as_fd(), "/etc/group")
                    .with_context(|| format!("--chown {spec:?}: look up group {g:?}"))?;
                lookup(&groups, g)
                    .and_then(|f| f.get(2)?.parse().ok())
                    .ok_or_else(|| anyhow!("--chown {spec:?}: no group {g:?} in the image's /etc/group"))?
            }
        },
    };
    Ok((uid, gid))
}

/// The ':'-separated fields of the passwd or group line for `name`.
fn lookup<'a>(text: &'a str, name: &str) -> Option<Vec<&'a str>> {
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f[0] == name)
}

/// A small text file of the image (at most 16 MiB), opened inside the root.
fn read_in_root(root: BorrowedFd<'_>, path: &str) -> Result<String> {
    let f = crate::sys::inroot::open_read_in_root(root, Path::new(path)).with_context(|| format!("open {path}"))?;
    let st = fstat(&f).with_context(|| format!("stat {path}"))?;
    if tree::file_type(st.st_mode) != libc::S_IFREG {
        bail!("{path} is not a regular file");
    }
    let mut s = Vec::new();
    f.take(16 << 20)
        .read_to_end(&mut s)
        .with_context(|| format!("read {path}"))?;
    Ok(String::from_utf8_lossy(&s).into_owned())
}

/// `--chmod` octal (755, 0644); symbolic modes are not supported.
pub fn parse_chmod(spec: &str) -> Result<u32> {
    let bad = || {
        anyhow!(
            "invalid --chmod {spec:?}: expected an octal mode such as 755 or 0644 (symbolic modes are not supported)"
        )
    };
    if spec.is_empty() || spec.len() > 5 || !spec.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    let mode = u32::from_str_radix(spec, 8).map_err(|_| bad())?;
    if mode > 0o7777 {
        return Err(bad());
    }
    Ok(mode)
}

// ---------------------------------------------------------------------------
// ADD URL.

/// Idle time on the connection before a download fails.
const DOWNLOAD_IDLE: Duration = Duration::from_secs(30);

/// ADD URL: GET (redirects followed, 30 s idle timeout), at most `max_bytes` (error beyond), into a
/// file under `dir`; with `checksum` ("sha256:HEX") the content must match (error otherwise, file
/// removed). The file is named after the URL's last path segment ("download" when that is empty),
/// mode 0600, mtime from Last-Modified when the server sends one.
pub fn download(url: &str, dir: &Path, checksum: Option<&str>, max_bytes: u64) -> Result<PathBuf> {
    let want = checksum.map(parse_checksum).transpose()?;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(10)
        .user_agent(format!("casco/{}", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(DOWNLOAD_IDLE))
        .timeout_per_read(Some(DOWNLOAD_IDLE))
        .timeout_per_write(Some(DOWNLOAD_IDLE))
        .build()
        .new_agent();
    let resp = agent.get(url).call().with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {url}: HTTP {status}");
    }
    if let Some(len) = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        && len > max_bytes
    {
        bail!("GET {url}: {len} bytes is more than the limit of {max_bytes}");
    }
    let mtime = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    let path = dir.join(file_name_of(url));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    let result = (|| -> Result<()> {
        out.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .with_context(|| format!("chmod {}", path.display()))?;
        let mut body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 128 * 1024];
        let mut total: u64 = 0;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("GET {url}: read the body")),
            };
            total += n as u64;
            if total > max_bytes {
                bail!("GET {url}: more than the limit of {max_bytes} bytes");
            }
            hash.update(&buf[..n]);
            out.write_all(&buf[..n])
                .with_context(|| format!("write {}", path.display()))?;
        }
        if let Some(want) = &want {
            let got = crate::util::ids::hex(&hash.finalize());
            if &got != want {
                bail!("GET {url}: checksum mismatch: expected sha256:{want}, got sha256:{got}");
            }
        }
        if let Some(t) = mtime {
            out.set_modified(t)
                .with_context(|| format!("set the mtime of {}", path.display()))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        drop(out);
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

fn parse_checksum(s: &str) -> Result<String> {
    let hex = s
        .strip_prefix("sha256:")
        .ok_or_else(|| anyhow!("invalid checksum {s:?}: expected sha256:HEX"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("invalid checksum {s:?}: expected sha256: and 64 hex digits");
    }
    Ok(hex.to_ascii_lowercase())
}

/// The last path segment of a URL (percent-decoded), or "download" when it
/// is empty or could not be a file name.
fn file_name_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme.split(['?', '#']).next().unwrap_or("");
    let path = path.split_once('/').map_or("", |(_, p)| p);
    let last = path.rsplit('/').next().unwrap_or("");
    let decoded = percent_decode(last);
    match decoded {
        Some(n) if !n.is_empty() && n != "." && n != ".." && !n.contains(['/', '\0']) => n,
        _ => "download".to_string(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An HTTP date in the IMF-fixdate form ("Sun, 06 Nov 1994 08:49:37 GMT");
/// the obsolete forms are ignored.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let f: Vec<&str> = s.split_whitespace().collect();
    if f.len() != 6 || f[5] != "GMT" {
        return None;
    }
    let day: u32 = f[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == f[2])? as u32
        + 1;
    let year: i64 = f[3].parse().ok()?;
    let hms: Vec<u64> = f[4].split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if hms.len() != 3 || hms[0] > 23 || hms[1] > 59 || hms[2] > 60 || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{MTIME, Tar, cap_net_raw, snapshot};
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    use tar::EntryType;

    /// Stand-in for the ignore rules (the real parser lands separately):
    /// `excluded` paths and everything below them are excluded, except the
    /// `reincluded` paths and everything below those.
    struct Rules {
        excluded: Vec<&'static str>,
        reincluded: Vec<&'static str>,
    }

    fn under(p: &str, rel: &str) -> bool {
        rel == p || rel.starts_with(&format!("{p}/"))
    }

    impl Exclude for Rules {
        fn excluded(&self, rel: &str) -> bool {
            self.excluded.iter().any(|p| under(p, rel)) && !self.reincluded.iter().any(|p| under(p, rel))
        }
        fn may_reinclude_below(&self, rel_dir: &str) -> bool {
            self.reincluded.iter().any(|p| p.starts_with(&format!("{rel_dir}/")))
        }
    }

    /// A build context, a root filesystem and a directory outside both that must stay untouched.
    struct Fx {
        _tmp: tempfile::TempDir,
        ctx: PathBuf,
        root: PathBuf,
        outside: PathBuf,
    }

    impl Fx {
        fn new() -> Fx {
            let tmp = tempfile::tempdir().unwrap();
            let (ctx, root, outside) = (
                tmp.path().join("ctx"),
                tmp.path().join("root"),
                tmp.path().join("outside"),
            );
            for d in [&ctx, &root, &outside] {
                std::fs::create_dir(d).unwrap();
            }
            std::fs::write(outside.join("secret"), b"secret").unwrap();
            Fx {
                _tmp: tmp,
                ctx,
                root,
                outside,
            }
        }

        fn write(&self, rel: &str, data: &[u8], mode: u32) {
            let p = self.ctx.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, data).unwrap();
            std::fs::set_permissions(&p, PermissionsExt::from_mode(mode)).unwrap();
        }

        fn copy_with(&self, rules: Option<&Rules>, req: &CopyRequest) -> Result<()> {
            let root = SrcRoot::open(&self.ctx, rules.map(|r| r as &dyn Exclude))?;
            copy_in(&root, &self.root, req)
        }

        fn copy(&self, req: &CopyRequest) -> Result<()> {
            self.copy_with(None, req)
        }

        fn hash_with(&self, rules: Option<&Rules>, req: &CopyRequest) -> String {
            let root = SrcRoot::open(&self.ctx, rules.map(|r| r as &dyn Exclude)).unwrap();
            hash_in(&root, req).unwrap()
        }

        fn rootfs(&self) -> BTreeMapSnap {
            snapshot(&self.root)
        }

        fn assert_outside_untouched(&self) {
            let s = snapshot(&self.outside);
            assert_eq!(s.keys().collect::<Vec<_>>(), ["secret"], "{s:?}");
            assert_eq!(s["secret"].data, b"secret");
        }
    }

    type BTreeMapSnap = std::collections::BTreeMap<String, crate::layers::testutil::Desc>;

    fn req(sources: &[&str], dest: &str) -> CopyRequest {
        CopyRequest {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.to_string(),
            workdir: "/".to_string(),
            ..Default::default()
        }
    }

    fn err_text(r: Result<impl std::fmt::Debug>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    fn set_owner(p: &Path, uid: u32, gid: u32) {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    }

    fn set_mtime(p: &Path, secs: i64) {
        let t = TimeSpec::new(secs, 0);
        nix::sys::stat::utimensat(AT_FDCWD, p, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink).unwrap();
    }

    #[test]
    fn directory_contents_are_copied_with_modes_and_mtimes() {
        let fx = Fx::new();
        fx.write("dir/a", b"a", 0o640);
        fx.write("dir/sub/b", b"b", 0o755);
        std::fs::set_permissions(fx.ctx.join("dir/sub"), PermissionsExt::from_mode(0o700)).unwrap();
        set_mtime(&fx.ctx.join("dir/a"), 1000);
        set_mtime(&fx.ctx.join("dir/sub"), 2000);
        set_owner(&fx.ctx.join("dir/a"), 1234, 5678);
        std::fs::set_permissions(fx.ctx.join("dir"), PermissionsExt::from_mode(0o711)).unwrap();
        fx.copy(&req(&["dir"], "/opt/x")).unwrap();
        let s = fx.rootfs();
        // The directory itself is not copied: its contents go into dest, created 0755.
        assert_eq!((s["opt"].mode, s["opt/x"].mode, s["opt/x"].uid), (0o755, 0o755, 0));
        assert_eq!((s["opt/x/a"].data.as_slice(), s["opt/x/a"].mode), (&b"a"[..], 0o640));
        assert_eq!((s["opt/x/a"].uid, s["opt/x/a"].gid, s["opt/x/a"].mtime), (0, 0, 1000));
        assert_eq!((s["opt/x/sub"].mode, s["opt/x/sub"].mtime), (0o700, 2000));
        assert_eq!(
            (s["opt/x/sub/b"].data.as_slice(), s["opt/x/sub/b"].mode),
            (&b"b"[..], 0o755)
        );
        assert_eq!(s.len(), 5);

        // Into an existing directory: merged; the existing destination keeps its metadata.
        std::fs::create_dir(fx.root.join("srv")).unwrap();
        std::fs::set_permissions(fx.root.join("srv"), PermissionsExt::from_mode(0o750)).unwrap();
        std::fs::write(fx.root.join("srv/keep"), b"k").unwrap();
        fx.copy(&req(&["/dir/"], "/srv")).unwrap();
        let s = fx.rootfs();
        assert_eq!(s["srv"].mode, 0o750);
        assert_eq!(s["srv/keep"].data, b"k");
        assert_eq!(s["srv/sub/b"].data, b"b");
    }

    #[test]
    fn file_destinations() {
        let fx = Fx::new();
        fx.write("f", b"data", 0o604);
        fx.write("g", b"gg", 0o644);
        std::fs::create_dir_all(fx.root.join("exists")).unwrap();
        // Trailing slash, an existing directory, a file path, "." endings, relative to workdir.
        fx.copy(&req(&["f"], "/new/dir/")).unwrap();
        fx.copy(&req(&["f"], "/exists")).unwrap();
        fx.copy(&req(&["f"], "/renamed")).unwrap();
        fx.copy(&req(&["f"], "/dot/.")).unwrap();
        let mut r = req(&["f"], "rel/x");
        r.workdir = "/work".into();
        fx.copy(&r).unwrap();
        let mut r = req(&["f"], "./");
        r.workdir = "/wd".into();
        fx.copy(&r).unwrap();
        // ".." in the destination is clamped at the root.
        fx.copy(&req(&["g"], "/../../up")).unwrap();
        let s = fx.rootfs();
        for p in ["new/dir/f", "exists/f", "renamed", "dot/f", "work/rel/x", "wd/f"] {
            assert_eq!(
                (s[p].kind, s[p].data.as_slice(), s[p].mode),
                ('f', &b"data"[..], 0o604),
                "{p}"
            );
        }
        assert_eq!(s["up"].data, b"gg");
        assert_eq!(s["new"].mode, 0o755);

        // An existing file is replaced, an existing directory where a file goes is an error.
        fx.copy(&req(&["g"], "/renamed")).unwrap();
        assert_eq!(std::fs::read(fx.root.join("renamed")).unwrap(), b"gg");
        std::fs::create_dir_all(fx.root.join("d/f")).unwrap();
        let msg = err_text(fx.copy(&req(&["f"], "/d/")));
        assert!(msg.contains("cannot replace the directory \"d/f\""), "{msg}");
        // A symlink at a file destination is replaced, not written through.
        symlink(fx.outside.join("secret"), fx.root.join("lnk")).unwrap();
        fx.copy(&req(&["g"], "/lnk")).unwrap();
        assert!(std::fs::symlink_metadata(fx.root.join("lnk")).unwrap().is_file());
        // A directory source onto a file.
        fx.write("dir/x", b"", 0o644);
        let msg = err_text(fx.copy(&req(&["dir"], "/renamed")));
        assert!(msg.contains("\"renamed\" exists and is not a directory"), "{msg}");
        fx.assert_outside_untouched();
    }

    #[test]
    fn several_sources_need_a_directory_destination() {
        let fx = Fx::new();
        fx.write("a.txt", b"a", 0o644);
        fx.write("b.txt", b"b", 0o644);
        fx.write("c.md", b"c", 0o644);
        let msg = err_text(fx.copy(&req(&["a.txt", "b.txt"], "/dst")));
        assert!(msg.contains("must be a directory ending in '/'"), "{msg}");
        let msg = err_text(fx.copy(&req(&["*.txt"], "/dst")));
        assert!(msg.contains("several sources (2)"), "{msg}");
        assert!(!fx.root.join("dst").exists());
        fx.copy(&req(&["*.txt", "c.md"], "/dst/")).unwrap();
        assert_eq!(
            fx.rootfs().keys().collect::<Vec<_>>(),
            ["dst", "dst/a.txt", "dst/b.txt", "dst/c.md"]
        );
        // One glob match is a single source.
        fx.copy(&req(&["c.*"], "/single")).unwrap();
        assert_eq!(std::fs::read(fx.root.join("single")).unwrap(), b"c");
        let msg = err_text(fx.copy(&req(&["*.none"], "/x/")));
        assert!(msg.contains("\"*.none\": no source files were specified"), "{msg}");
        let msg = err_text(fx.copy(&req(&["missing"], "/x/")));
        assert!(msg.contains("\"missing\": no such file or directory"), "{msg}");
        // Nothing was copied when a later source is missing.
        let msg = err_text(fx.copy(&req(&["a.txt", "missing"], "/partial/")));
        assert!(msg.contains("missing"), "{msg}");
        assert!(!fx.root.join("partial").exists());
    }

    #[test]
    fn globs_per_component() {
        let fx = Fx::new();
        for p in ["src/a1/x.rs", "src/b2/y.rs", "src/c3/z.txt", "[lit]", "q?"] {
            fx.write(p, p.as_bytes(), 0o644);
        }
        fx.copy(&req(&["src/[ab]?/*.rs"], "/g/")).unwrap();
        fx.copy(&req(&["\\[lit]", "q\\?"], "/e/")).unwrap();
        let keys: Vec<String> = fx.rootfs().into_keys().collect();
        assert_eq!(keys, ["e", "e/[lit]", "e/q?", "g", "g/x.rs", "g/y.rs"]);
        let msg = err_text(fx.copy(&req(&["src/[a"], "/x/")));
        assert!(msg.contains("syntax error in pattern"), "{msg}");
    }

    #[test]
    fn go_match_semantics() {
        let m = |p: &str, n: &str| Glob::parse(p).unwrap().matches(n);
        assert!(m("*", "abc") && m("*", "") && m("a*c", "abbbc") && !m("a*c", "abd"));
        assert!(m("a?c", "abc") && !m("a?c", "ac") && m("?", "é"));
        assert!(m("[a-c]x", "bx") && !m("[^a-c]x", "bx") && m("[^a-c]x", "dx"));
        assert!(m("[\\]]", "]") && m("[a\\-z]", "-") && !m("[a\\-z]", "b"));
        assert!(m("\\*", "*") && !m("\\*", "a"));
        assert!(m("*.tar.*", "x.tar.gz") && m("a*b*c", "aXbYbZc"));
        for bad in ["[", "[]", "[a-", "[z-a]", "\\", "[]a]"] {
            assert!(Glob::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_cannot_leave_the_root() {
        let fx = Fx::new();
        fx.write("a/x", b"x", 0o644);
        for s in ["../x", "a/../../x", "/../outside/secret"] {
            let msg = err_text(fx.copy(&req(&[s], "/d/")));
            assert!(msg.contains("outside the build context"), "{s}: {msg}");
        }
        assert_eq!(clean_source("/a/./b/../c/").unwrap(), "a/c");
        assert_eq!(clean_source("/").unwrap(), "");
        // A leading '/' is the root.
        fx.copy(&req(&["/a/x"], "/d/")).unwrap();
        assert_eq!(std::fs::read(fx.root.join("d/x")).unwrap(), b"x");
        // Parent components resolve inside the root: ctx/up -> ".." and ctx/abs -> "/" both mean ctx.
        fx.write("etc/hostname", b"from the context", 0o644);
        symlink("..", fx.ctx.join("up")).unwrap();
        symlink("/", fx.ctx.join("abs")).unwrap();
        symlink(&fx.outside, fx.ctx.join("out")).unwrap();
        fx.copy(&req(&["up/etc/hostname"], "/h1")).unwrap();
        fx.copy(&req(&["abs/etc/hostname"], "/h2")).unwrap();
        assert_eq!(std::fs::read(fx.root.join("h1")).unwrap(), b"from the context");
        assert_eq!(std::fs::read(fx.root.join("h2")).unwrap(), b"from the context");
        let msg = err_text(fx.copy(&req(&["out/secret"], "/s")));
        assert!(msg.contains("no such file or directory"), "{msg}");
        assert!(!fx.root.join("s").exists());
    }

    #[test]
    fn source_symlinks_are_copied_as_symlinks() {
        let fx = Fx::new();
        symlink("/etc", fx.ctx.join("etc-link")).unwrap();
        symlink("/etc/passwd", fx.ctx.join("passwd-link")).unwrap();
        fx.write("d/f", b"f", 0o644);
        symlink("../../../../etc/shadow", fx.ctx.join("d/rel")).unwrap();
        set_owner(&fx.ctx.join("d/rel"), 5, 5);
        fx.copy(&req(&["etc-link", "passwd-link"], "/l/")).unwrap();
        fx.copy(&req(&["d"], "/w")).unwrap();
        let s = fx.rootfs();
        assert_eq!(
            (s["l/etc-link"].kind, s["l/etc-link"].target.as_slice()),
            ('l', &b"/etc"[..])
        );
        assert_eq!(s["l/passwd-link"].target, b"/etc/passwd");
        assert_eq!(
            (s["w/rel"].kind, s["w/rel"].target.as_slice()),
            ('l', &b"../../../../etc/shadow"[..])
        );
        assert_eq!(s["w/rel"].uid, 0);
        // Nothing of the host's /etc was read or copied.
        assert_eq!(s.len(), 6, "{:?}", s.keys());
        // Globs list the symlink, not what it points to.
        fx.copy(&req(&["etc-*"], "/glob/")).unwrap();
        assert_eq!(
            std::fs::read_link(fx.root.join("glob/etc-link")).unwrap(),
            Path::new("/etc")
        );
    }

    #[test]
    fn destination_symlinks_resolve_inside_the_rootfs() {
        let fx = Fx::new();
        fx.write("f", b"payload", 0o644);
        fx.write("tree/sub/g", b"g", 0o644);
        std::fs::create_dir(fx.root.join("etc")).unwrap();
        std::fs::create_dir_all(fx.root.join("usr/lib")).unwrap();
        symlink("/etc", fx.root.join("d")).unwrap();
        symlink("../../../..", fx.root.join("up")).unwrap();
        symlink(&fx.outside, fx.root.join("out")).unwrap();
        symlink("usr/lib", fx.root.join("lib")).unwrap();
        let name = format!("casco-copy-test-{}", std::process::id());
        fx.copy(&req(&["f"], &format!("/d/{name}"))).unwrap();
        fx.copy(&req(&["f"], "/d")).unwrap(); // an existing directory (through the link): /etc/f
        fx.copy(&req(&["f"], "/up/escaped")).unwrap();
        fx.copy(&req(&["f"], "/up/up/deeper/")).unwrap();
        // A symlink to a host path means that path inside the rootfs (missing there: an error).
        let msg = err_text(fx.copy(&req(&["f"], "/out/secret")));
        assert!(msg.contains("\"out\" is a symlink to a missing directory"), "{msg}");
        std::fs::create_dir_all(fx.root.join(fx.outside.strip_prefix("/").unwrap())).unwrap();
        fx.copy(&req(&["f"], "/out/secret")).unwrap();
        // A copied tree meets lib -> usr/lib: written into usr/lib.
        std::fs::create_dir_all(fx.ctx.join("tree/lib")).unwrap();
        fx.write("tree/lib/libx.so", b"so", 0o755);
        fx.copy(&req(&["tree"], "/")).unwrap();
        let s = fx.rootfs();
        assert_eq!(s[&format!("etc/{name}")].data, b"payload");
        assert_eq!(s["etc/f"].data, b"payload");
        assert_eq!(s["escaped"].data, b"payload");
        assert_eq!(s["deeper/f"].data, b"payload");
        let out_inside = format!("{}/secret", fx.outside.display())
            .trim_start_matches('/')
            .to_string();
        assert_eq!(s[&out_inside].data, b"payload");
        assert_eq!(s["usr/lib/libx.so"].data, b"so");
        assert_eq!(s["lib"].kind, 'l');
        assert!(!Path::new("/etc").join(&name).exists());
        fx.assert_outside_untouched();
        // A dangling symlink as a parent is an error, not a way out.
        symlink("/nowhere", fx.root.join("dangling")).unwrap();
        let msg = err_text(fx.copy(&req(&["f"], "/dangling/x")));
        assert!(msg.contains("symlink to a missing directory"), "{msg}");
    }

    #[test]
    fn chown_and_chmod() {
        let fx = Fx::new();
        fx.write("dir/f", b"f", 0o4755);
        fx.write("dir/sub/g", b"g", 0o600);
        symlink("f", fx.ctx.join("dir/l")).unwrap();
        let mut r = req(&["dir"], "/a/b/c");
        r.chown = Some((1000, 1001));
        r.chmod = Some(0o751);
        fx.copy(&r).unwrap();
        let s = fx.rootfs();
        // Created parents take the owner (buildah does so too) and 0755.
        for p in ["a", "a/b", "a/b/c"] {
            assert_eq!((s[p].uid, s[p].gid, s[p].mode), (1000, 1001, 0o755), "{p}");
        }
        for p in ["a/b/c/f", "a/b/c/sub", "a/b/c/sub/g"] {
            assert_eq!((s[p].uid, s[p].gid, s[p].mode), (1000, 1001, 0o751), "{p}");
        }
        assert_eq!((s["a/b/c/l"].uid, s["a/b/c/l"].kind), (1000, 'l'));
        // Without --chmod the setuid bit survives the chown.
        let mut r = req(&["dir/f"], "/suid");
        r.chown = Some((7, 7));
        fx.copy(&r).unwrap();
        assert_eq!(fx.rootfs()["suid"].mode, 0o4755);
    }

    #[test]
    fn file_capabilities_are_copied() {
        let fx = Fx::new();
        fx.write("ping", b"elf", 0o755);
        let f = File::open(fx.ctx.join("ping")).unwrap();
        crate::sys::fsops::fsetxattr(f.as_fd(), CAPABILITY, &cap_net_raw()).unwrap();
        crate::sys::fsops::fsetxattr(f.as_fd(), c"user.other", b"x").unwrap();
        let mut r = req(&["ping"], "/bin/");
        r.chown = Some((1, 1));
        fx.copy(&r).unwrap();
        let s = fx.rootfs();
        assert_eq!(s["bin/ping"].xattrs.get("security.capability"), Some(&cap_net_raw()));
        assert!(!s["bin/ping"].xattrs.contains_key("user.other"));
    }

    #[test]
    fn special_files_are_skipped() {
        let fx = Fx::new();
        fx.write("d/f", b"f", 0o644);
        nix::unistd::mkfifo(&fx.ctx.join("d/fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        fx.copy(&req(&["d"], "/x")).unwrap();
        assert_eq!(fx.rootfs().keys().collect::<Vec<_>>(), ["x", "x/f"]);
    }

    #[test]
    fn excluded_paths_are_invisible() {
        let fx = Fx::new();
        for p in [
            "keep",
            "secret.key",
            "logs/a.log",
            "logs/keep.log",
            "node_modules/m/x",
            "app/.env",
            "app/main",
        ] {
            fx.write(p, p.as_bytes(), 0o644);
        }
        let rules = Rules {
            excluded: vec!["secret.key", "logs", "node_modules", "app/.env"],
            reincluded: vec!["logs/keep.log"],
        };
        fx.copy_with(Some(&rules), &req(&["."], "/c/")).unwrap();
        let keys: Vec<String> = fx.rootfs().into_keys().collect();
        assert_eq!(
            keys,
            ["c", "c/app", "c/app/main", "c/keep", "c/logs", "c/logs/keep.log"]
        );
        // Globs do not match excluded paths; a named excluded file does not exist.
        fx.copy_with(Some(&rules), &req(&["*"], "/g/")).unwrap();
        assert!(!fx.root.join("g/secret.key").exists() && !fx.root.join("g/node_modules").exists());
        assert!(fx.root.join("g/keep").exists());
        let msg = err_text(fx.copy_with(Some(&rules), &req(&["secret.key"], "/x/")));
        assert!(msg.contains("no such file or directory"), "{msg}");
        let msg = err_text(fx.copy_with(Some(&rules), &req(&["node_modules/m/x"], "/x/")));
        assert!(msg.contains("no such file or directory"), "{msg}");
        // An excluded directory that holds re-included paths can be named.
        fx.copy_with(Some(&rules), &req(&["logs"], "/l")).unwrap();
        assert_eq!(std::fs::read_dir(fx.root.join("l")).unwrap().count(), 1);
    }

    #[test]
    fn hash_follows_content_mode_owner_not_mtime() {
        let fx = Fx::new();
        fx.write("d/a", b"a", 0o644);
        fx.write("d/b", b"b", 0o644);
        fx.write("d/ignored", b"i", 0o644);
        symlink("a", fx.ctx.join("d/l")).unwrap();
        let rules = Rules {
            excluded: vec!["d/ignored"],
            reincluded: vec![],
        };
        let r = req(&["d"], "/x/");
        let h = || fx.hash_with(Some(&rules), &r);
        let h0 = h();
        assert_eq!(h0.len(), 64);
        set_mtime(&fx.ctx.join("d/a"), 12345);
        set_mtime(&fx.ctx.join("d"), 12345);
        assert_eq!(h(), h0, "mtime");
        std::fs::write(fx.ctx.join("d/ignored"), b"changed").unwrap();
        assert_eq!(h(), h0, "excluded file");
        std::fs::write(fx.ctx.join("d/a"), b"A").unwrap();
        let h1 = h();
        assert_ne!(h1, h0, "content");
        std::fs::set_permissions(fx.ctx.join("d/b"), PermissionsExt::from_mode(0o600)).unwrap();
        let h2 = h();
        assert_ne!(h2, h1, "mode");
        set_owner(&fx.ctx.join("d/b"), 3, 3);
        let h3 = h();
        assert_ne!(h3, h2, "owner");
        std::fs::remove_file(fx.ctx.join("d/l")).unwrap();
        symlink("b", fx.ctx.join("d/l")).unwrap();
        let h4 = h();
        assert_ne!(h4, h3, "symlink target");
        // The excluded file counts without the rules; the sources' order counts.
        assert_ne!(fx.hash_with(None, &r), h4);
        fx.write("e", b"e", 0o644);
        assert_ne!(
            fx.hash_with(None, &req(&["d", "e"], "/x/")),
            fx.hash_with(None, &req(&["e", "d"], "/x/"))
        );
        // Moving content between files changes it even when the bytes are the same overall.
        fx.write("m/x", b"ab", 0o644);
        fx.write("m/y", b"", 0o644);
        let before = fx.hash_with(None, &req(&["m"], "/x/"));
        fx.write("m/x", b"a", 0o644);
        fx.write("m/y", b"b", 0o644);
        assert_ne!(fx.hash_with(None, &req(&["m"], "/x/")), before);
    }

    #[test]
    fn hash_of_a_thousand_files_is_quick() {
        let fx = Fx::new();
        for i in 0..1000 {
            fx.write(&format!("t/{}/{i}", i % 10), &[i as u8; 100], 0o644);
        }
        let r = req(&["t"], "/x/");
        let t = std::time::Instant::now();
        let a = fx.hash_with(None, &r);
        let b = fx.hash_with(None, &r);
        assert_eq!(a, b);
        // Generous for a loaded CI machine; well under 100 ms here.
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    fn add(fx: &Fx, name: &str, data: &[u8], dest: &str, chown: Option<(u32, u32)>) -> Result<()> {
        std::fs::write(fx.ctx.join(name), data).unwrap();
        let mut r = req(&[name], dest);
        r.extract_archives = true;
        r.chown = chown;
        fx.copy(&r)
    }

    fn sample_tar() -> Vec<u8> {
        Tar::new()
            .entry(EntryType::Directory, "app", 0o750, b"", |h| {
                h.set_uid(10);
                h.set_gid(20);
            })
            .entry(EntryType::Regular, "app/run", 0o755, b"#!", |h| {
                h.set_uid(10);
                h.set_gid(20);
            })
            .symlink("app/link", "/etc/passwd")
            .hardlink("app/hard", "app/run")
            .entry(EntryType::Fifo, "app/fifo", 0o600, b"", |_| {})
            .finish()
    }

    #[test]
    fn add_extracts_plain_gzip_and_zstd_archives() {
        let fx = Fx::new();
        let tar = sample_tar();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&tar[..], 1).unwrap();
        // Names do not matter: the content is sniffed.
        add(&fx, "plain.bin", &tar, "/p", None).unwrap();
        add(&fx, "a.tgz", &gz, "/g/", None).unwrap();
        add(&fx, "noext", &zst, "/z", None).unwrap();
        let s = fx.rootfs();
        for d in ["p", "g", "z"] {
            let k = |p: &str| format!("{d}/{p}");
            assert_eq!((s[d].mode, s[d].uid), (0o755, 0), "{d}");
            assert_eq!((s[&k("app")].mode, s[&k("app")].uid, s[&k("app")].gid), (0o750, 10, 20));
            assert_eq!(s[&k("app")].mtime, MTIME as i64);
            let run = &s[&k("app/run")];
            assert_eq!(
                (run.data.as_slice(), run.mode, run.uid, run.gid),
                (&b"#!"[..], 0o755, 10, 20)
            );
            assert_eq!(s[&k("app/link")].target, b"/etc/passwd");
            assert_eq!(s[&k("app/run")].link_of.as_deref(), Some(k("app/hard").as_str()));
            assert_eq!(s[&k("app/fifo")].kind, 'p');
        }
        // --chown overrides the archive's owners; --chmod does not apply to entries.
        let mut r = req(&["plain.bin"], "/c/");
        r.extract_archives = true;
        r.chown = Some((3, 4));
        r.chmod = Some(0o700);
        fx.copy(&r).unwrap();
        let s = fx.rootfs();
        assert_eq!((s["c"].uid, s["c/app"].uid, s["c/app/run"].gid), (3, 3, 4));
        assert_eq!((s["c/app/run"].mode, s["c/app/link"].uid), (0o755, 3));
        // COPY (no extraction) copies the archive as a file.
        fx.copy(&req(&["a.tgz"], "/copied")).unwrap();
        assert_eq!(std::fs::read(fx.root.join("copied")).unwrap(), gz);
    }

    #[test]
    fn add_copies_what_is_not_a_tar() {
        let fx = Fx::new();
        add(&fx, "text.tar", b"just text, not a tar", "/t", None).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"gzip but not tar").unwrap();
        let gz = gz.finish().unwrap();
        add(&fx, "x.gz", &gz, "/x.gz", None).unwrap();
        add(&fx, "b.tar.bz2", b"BZh91AY&SY....", "/b/", None).unwrap();
        add(&fx, "empty", b"", "/e", None).unwrap();
        let s = fx.rootfs();
        assert_eq!(s["t"].data, b"just text, not a tar");
        assert_eq!(s["x.gz"].data, gz);
        assert_eq!(s["b/b.tar.bz2"].data, b"BZh91AY&SY....");
        assert_eq!((s["e"].kind, s["e"].data.len()), ('f', 0));
    }

    #[test]
    fn hostile_archives_stay_inside() {
        let fx = Fx::new();
        let outside = fx.outside.display().to_string();
        let tar = Tar::new()
            .raw(EntryType::Regular, b"../../evil", b"", b"1")
            .raw(EntryType::Regular, b"/abs-evil", b"", b"2")
            .raw(EntryType::Regular, b"a/../../../dots", b"", b"3")
            // Symlink-then-file: the link resolves inside the extraction directory.
            .symlink("toroot", "/")
            .file("toroot/via-root", 0o644, b"4")
            .symlink("up", "../../../..")
            .file("up/via-up", 0o644, b"5")
            .symlink("out", &outside)
            .finish();
        add(&fx, "evil.tar", &tar, "/x/", None).unwrap();
        let s = fx.rootfs();
        for (p, d) in [
            ("x/evil", "1"),
            ("x/abs-evil", "2"),
            ("x/dots", "3"),
            ("x/via-root", "4"),
            ("x/via-up", "5"),
        ] {
            assert_eq!(s[p].data, d.as_bytes(), "{p}");
        }
        assert!(!fx.root.join("evil").exists() && !fx.root.join("abs-evil").exists());
        // Through a link to a host directory: that path inside the extraction directory, which is missing.
        let tar = Tar::new()
            .symlink("out", &outside)
            .file("out/secret", 0o644, b"pwned")
            .finish();
        let msg = err_text(add(&fx, "evil2.tar", &tar, "/y/", None));
        assert!(msg.contains("symlink to a missing directory"), "{msg}");
        // A symlink already in the rootfs below the destination resolves inside the destination too.
        std::fs::create_dir_all(fx.root.join("z")).unwrap();
        symlink(&fx.outside, fx.root.join("z/o")).unwrap();
        let tar = Tar::new().file("o/secret", 0o644, b"pwned").finish();
        assert!(add(&fx, "evil3.tar", &tar, "/z/", None).is_err());
        // Hardlinks only to files of the same archive.
        let tar = Tar::new()
            .raw(EntryType::Link, b"h", format!("{outside}/secret").as_bytes(), b"")
            .finish();
        let msg = err_text(add(&fx, "evil4.tar", &tar, "/w/", None));
        assert!(msg.contains("is not a file extracted from this archive"), "{msg}");
        let tar = Tar::new()
            .raw(EntryType::Link, b"h", b"../../../../etc/passwd", b"")
            .finish();
        assert!(add(&fx, "evil5.tar", &tar, "/w/", None).is_err());
        fx.assert_outside_untouched();
        assert_eq!(std::fs::read(fx.outside.join("secret")).unwrap(), b"secret");
    }

    #[test]
    fn archive_entries_replace_and_merge() {
        let fx = Fx::new();
        std::fs::create_dir_all(fx.root.join("x/d")).unwrap();
        std::fs::write(fx.root.join("x/d/old"), b"old").unwrap();
        std::fs::create_dir_all(fx.root.join("x/gone/deep")).unwrap();
        let tar = Tar::new()
            .dir("d", 0o700)
            .file("d/new", 0o644, b"new")
            .file("gone", 0o644, b"now a file")
            .dir("ro", 0o555)
            .file("ro/f", 0o444, b"r")
            .finish();
        add(&fx, "m.tar", &tar, "/x", None).unwrap();
        let s = fx.rootfs();
        assert_eq!((s["x/d"].mode, s["x/d/old"].data.as_slice()), (0o700, &b"old"[..]));
        assert_eq!(s["x/d/new"].data, b"new");
        assert_eq!(
            (s["x/gone"].kind, s["x/gone"].data.as_slice()),
            ('f', &b"now a file"[..])
        );
        assert_eq!((s["x/ro"].mode, s["x/ro/f"].data.as_slice()), (0o555, &b"r"[..]));
    }

    #[test]
    fn tar_headers_are_recognized() {
        let tar = Tar::new().file("f", 0o644, b"x").finish();
        assert!(is_tar_header(&tar[..512]));
        let mut bad = tar[..512].to_vec();
        bad[0] ^= 1;
        assert!(!is_tar_header(&bad));
        assert!(!is_tar_header(&[0u8; 512]));
        assert!(!is_tar_header(b"short"));
        assert_eq!(normalize_entry(b"/a/./b/../../../c"), b"c");
        assert!(is_prefix(b"a/b", b"a/b/c") && is_prefix(b"a/b", b"a/b") && !is_prefix(b"a/b", b"a/bc"));
    }

    fn rootfs_with_users() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(
            d.path().join("data/passwd"),
            "# comment\nroot:x:0:0:root:/root:/bin/sh\nbob:x:1000:1500::/home/bob:/bin/sh\nbroken:x\n",
        )
        .unwrap();
        std::fs::write(d.path().join("data/group"), "root:x:0:\nbobs:x:1500:\nstaff:x:50\n").unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        // Absolute links, as some images have: they must mean the image's files.
        symlink("/data/passwd", d.path().join("etc/passwd")).unwrap();
        symlink("../../../data/group", d.path().join("etc/group")).unwrap();
        d
    }

    #[test]
    fn chown_specs_resolve_in_the_image() {
        let d = rootfs_with_users();
        let r = |s: &str| resolve_chown(d.path(), s);
        assert_eq!(r("bob").unwrap(), (1000, 1500));
        assert_eq!(r("bob:staff").unwrap(), (1000, 50));
        assert_eq!(r("bob:7").unwrap(), (1000, 7));
        // A number alone: the same number as gid (buildah), even when a user has it.
        assert_eq!(r("1000").unwrap(), (1000, 1000));
        assert_eq!(r("0:bobs").unwrap(), (0, 1500));
        assert!(err_text(r("alice")).contains("no user \"alice\" in the image's /etc/passwd"));
        assert!(err_text(r("bob:nogroup")).contains("no group \"nogroup\""));
        assert!(err_text(r("broken")).contains("no user \"broken\""));
        assert!(err_text(r(":5")).contains("expected USER[:GROUP]"));
        assert!(err_text(r("5:")).contains("expected USER[:GROUP]"));
        // No passwd in the image: numbers work, names do not (the host's is never read).
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(resolve_chown(empty.path(), "5:6").unwrap(), (5, 6));
        let msg = err_text(resolve_chown(empty.path(), "root"));
        assert!(msg.contains("open /etc/passwd"), "{msg}");
    }

    #[test]
    fn chmod_specs() {
        assert_eq!(parse_chmod("755").unwrap(), 0o755);
        assert_eq!(parse_chmod("0644").unwrap(), 0o644);
        assert_eq!(parse_chmod("4755").unwrap(), 0o4755);
        assert_eq!(parse_chmod("00755").unwrap(), 0o755);
        for bad in ["", "u+x", "789", "77777", "0x1ff", "-1"] {
            assert!(err_text(parse_chmod(bad)).contains("invalid --chmod"), "{bad}");
        }
    }

    // --- download -----------------------------------------------------------

    /// A one-thread HTTP/1.1 server on 127.0.0.1 answering each request from
    /// `routes` (path → status line, extra headers, body; `None` length sends
    /// no Content-Length and closes the connection after the body).
    fn serve(routes: Vec<(&'static str, &'static str, String, Vec<u8>, bool)>) -> String {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let route = routes.iter().find(|r| r.0 == path);
                let (status, headers, body, with_len) = match route {
                    Some((_, s, h, b, l)) => (*s, h.as_str(), b.as_slice(), *l),
                    None => ("404 Not Found", "", &b""[..], true),
                };
                let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n{headers}");
                if with_len {
                    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(body);
            }
        });
        format!("http://{addr}")
    }

    fn sha(b: &[u8]) -> String {
        format!("sha256:{}", crate::util::ids::hex(&Sha256::digest(b)))
    }

    #[test]
    fn download_names_modes_times_and_redirects() {
        let body = b"hello from the server".to_vec();
        let base = serve(vec![
            (
                "/files/app%20v1.tar.gz?x=1",
                "200 OK",
                "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n".into(),
                body.clone(),
                true,
            ),
            (
                "/moved",
                "302 Found",
                "Location: /files/app%20v1.tar.gz?x=1\r\n".into(),
                vec![],
                true,
            ),
            ("/", "200 OK", String::new(), b"root".to_vec(), false),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let p = download(
            &format!("{base}/files/app%20v1.tar.gz?x=1"),
            dir.path(),
            Some(&sha(&body)),
            1 << 20,
        )
        .unwrap();
        assert_eq!(p, dir.path().join("app v1.tar.gz"));
        assert_eq!(std::fs::read(&p).unwrap(), body);
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!((md.mode() & 0o7777, md.mtime()), (0o600, 784_111_777));
        // Redirects are followed; the name comes from the URL asked for.
        let p = download(&format!("{base}/moved"), dir.path(), None, 1 << 20).unwrap();
        assert_eq!(
            (p.file_name().unwrap().to_str().unwrap(), std::fs::read(&p).unwrap()),
            ("moved", body)
        );
        // No Content-Length, body until close; no path: "download".
        let p = download(&format!("{base}/"), dir.path(), None, 100).unwrap();
        assert_eq!(
            (p, std::fs::read(dir.path().join("download")).unwrap()),
            (dir.path().join("download"), b"root".to_vec())
        );
        let msg = err_text(download(&format!("{base}/nothing"), dir.path(), None, 100));
        assert!(msg.contains("404"), "{msg}");
    }

    #[test]
    fn download_limits_and_checksums() {
        let big = vec![b'x'; 10_000];
        let base = serve(vec![
            ("/big", "200 OK", String::new(), big.clone(), true),
            ("/big-unsized", "200 OK", String::new(), big.clone(), false),
            ("/small", "200 OK", String::new(), b"small".to_vec(), true),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let msg = err_text(download(&format!("{base}/big"), dir.path(), None, 9_999));
        assert!(msg.contains("more than the limit of 9999"), "{msg}");
        let msg = err_text(download(&format!("{base}/big-unsized"), dir.path(), None, 9_999));
        assert!(msg.contains("more than the limit of 9999 bytes"), "{msg}");
        assert!(!dir.path().join("big-unsized").exists());
        download(&format!("{base}/big-unsized"), dir.path(), None, 10_000).unwrap();
        let wrong = sha(b"something else");
        let msg = err_text(download(&format!("{base}/small"), dir.path(), Some(&wrong), 100));
        assert!(msg.contains("checksum mismatch"), "{msg}");
        assert!(msg.contains(&wrong), "{msg}");
        assert!(!dir.path().join("small").exists());
        let msg = err_text(download(&format!("{base}/small"), dir.path(), Some("md5:abc"), 100));
        assert!(msg.contains("expected sha256:HEX"), "{msg}");
    }

    #[test]
    fn url_names_and_http_dates() {
        assert_eq!(file_name_of("https://h/a/b/file.txt"), "file.txt");
        assert_eq!(file_name_of("https://h/a/b/"), "download");
        assert_eq!(file_name_of("https://h"), "download");
        assert_eq!(file_name_of("https://h/x%2Fy"), "download");
        assert_eq!(file_name_of("https://h/.."), "download");
        assert_eq!(file_name_of("https://h/%2e%2e"), "download");
        assert_eq!(file_name_of("https://h/f?q=/etc/passwd#frag"), "f");
        let t = |s: &str| parse_http_date(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(t("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(t("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(t("Tue, 29 Feb 2028 12:00:00 GMT"), Some(1_835_438_400));
        assert_eq!(t("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(t("garbage"), None);
    }
}
