//! Layer archives as byte streams: sniffing and undoing their compression,
//! hashing what flows through a reader or writer (digests of blobs and diff
//! IDs), and writing a directory tree as a deterministic tar (`export`,
//! importing a directory, committing a container's changes).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, fstatat, major, minor};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::tree::{self, Node, show};
use crate::sys::fsops;
use crate::util::ids;

/// Buffer size for stream reads and writes.
const BUF_SIZE: usize = 128 * 1024;

/// How a blob is compressed, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Recognizes gzip (1f 8b) and zstd (28 b5 2f fd) magic numbers.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Sniffs the first bytes of `r` and returns a reader of the decompressed
/// stream. Gzip members and zstd frames may be concatenated (pigz, zstd -T).
pub fn decompress<'a, R: Read + 'a>(mut r: R) -> Result<(Box<dyn Read + 'a>, Compression)> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("read the start of the blob"),
        }
    }
    let kind = Compression::sniff(&head[..n]);
    let joined = BufReader::with_capacity(BUF_SIZE, io::Cursor::new(head).take(n as u64).chain(r));
    let reader: Box<dyn Read + 'a> = match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(joined)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(joined).context("start zstd")?),
        Compression::None => Box::new(joined),
    };
    Ok((reader, kind))
}

fn sha256_digest(h: &Sha256) -> String {
    format!("sha256:{}", ids::hex(&h.clone().finalize()))
}

/// A reader that sha256-hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// "sha256:<hex>" of the bytes read so far.
    pub fn digest(&self) -> String {
        sha256_digest(&self.hasher)
    }

    /// Bytes read so far. Where `std::io::Read` is in scope, `r.bytes()` on a
    /// value picks `Read::bytes`; call it as `HashingReader::bytes(&r)`.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A writer that sha256-hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// "sha256:<hex>" of the bytes written so far.
    pub fn digest(&self) -> String {
        sha256_digest(&self.hasher)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a tar of the tree under `dir` to `w`, like `tar -C dir -cf - .`
/// without the "./" entry and prefix: names sorted bytewise at each level
/// (deterministic output), numeric owners only, modes with setuid/sticky bits,
/// mtimes in whole seconds, symlinks as symlinks (never followed), files with
/// several links in the tree as one file plus hardlink entries, devices and
/// fifos, xattrs as PAX `SCHILY.xattr.*` (but not overlay's own markers).
/// Sockets are skipped. A file that changes size while it is read is cut or
/// zero-padded to the size it had when its header was written.
///
/// The tree is walked through directory descriptors with O_NOFOLLOW, so a
/// running container swapping a directory for a symlink cannot make this read
/// outside `dir`.
pub fn pack_dir(dir: &Path, w: &mut dyn Write) -> Result<()> {
    let root = open_root(dir)?;
    let mut p = Packer::new(w, None);
    let mut rel = Vec::new();
    p.pack_tree(root.as_fd(), &mut rel)
        .with_context(|| format!("pack {}", dir.display()))?;
    p.finish().with_context(|| format!("pack {}", dir.display()))
}

/// Opens the directory a tree is packed from (symlinks in its path are the caller's business).
pub(super) fn open_root(dir: &Path) -> Result<std::os::fd::OwnedFd> {
    openat(
        nix::fcntl::AT_FDCWD,
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", dir.display()))
}

/// The OCI whiteout entry that deletes `rel`: `dir/.wh.NAME`.
pub(super) fn whiteout_name(rel: &[u8]) -> Vec<u8> {
    let (parent, last) = tree::split_last(rel);
    let mut wh = parent.to_vec();
    if !wh.is_empty() {
        wh.push(b'/');
    }
    wh.extend_from_slice(b".wh.");
    wh.extend_from_slice(last);
    wh
}

/// Writes tar entries for nodes of a tree (see [`pack_dir`]). With `upper`
/// set (the opaque xattr's name), the tree is an overlay upper directory and
/// its markers become the OCI whiteout files (layers::diff).
pub(super) struct Packer<'w> {
    b: tar::Builder<BufWriter<&'w mut dyn Write>>,
    /// (st_dev, st_ino) of files with more than one link → the path written first.
    links: HashMap<(u64, u64), Vec<u8>>,
    upper: Option<&'static std::ffi::CStr>,
}

impl<'w> Packer<'w> {
    pub(super) fn new(w: &'w mut dyn Write, upper: Option<&'static std::ffi::CStr>) -> Packer<'w> {
        Packer {
            b: tar::Builder::new(BufWriter::with_capacity(BUF_SIZE, w)),
            links: HashMap::new(),
            upper,
        }
    }

    /// Writes the end of the archive and flushes.
    pub(super) fn finish(self) -> Result<()> {
        let mut out = self.b.into_inner()?;
        out.flush()?;
        Ok(())
    }

    /// Writes every node below `dir` (whose path in the archive is `rel`).
    pub(super) fn pack_tree(&mut self, dir: BorrowedFd<'_>, rel: &mut Vec<u8>) -> Result<()> {
        let mut names = tree::read_names(dir).with_context(|| format!("read directory {}", show(rel)))?;
        names.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (name, _) in names {
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let r = self.pack_node(dir, &name, rel, true);
            rel.truncate(len);
            r?;
        }
        Ok(())
    }

    /// Writes the node `name` of `dir` (path `rel` in the archive), and with
    /// `recurse` everything below it when it is a directory.
    pub(super) fn pack_node(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &std::ffi::CStr,
        rel: &mut Vec<u8>,
        recurse: bool,
    ) -> Result<()> {
        let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Gone since the directory was read (a running container).
            Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(anyhow!(e)).with_context(|| format!("stat {}", show(rel))),
        };
        let mut h = Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid.into());
        h.set_gid(st.st_gid.into());
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        let path = Path::new(OsStr::from_bytes(rel));
        match tree::file_type(st.st_mode) {
            libc::S_IFDIR => {
                let fd = tree::open_dir_at(dir, name.to_bytes()).with_context(|| format!("open {}", show(rel)))?;
                self.xattrs(Node::Fd(fd.as_fd()), rel)?;
                h.set_entry_type(EntryType::Directory);
                rel.push(b'/');
                let r = self
                    .b
                    .append_data(&mut h, Path::new(OsStr::from_bytes(rel)), io::empty());
                rel.pop();
                r.with_context(|| format!("write entry {}", show(rel)))?;
                if let Some(attr) = self.upper
                    && matches!(fsops::fgetxattr(fd.as_fd(), attr), Ok(v) if v == b"y")
                {
                    let mut wh = rel.clone();
                    wh.extend_from_slice(b"/.wh..wh..opq");
                    self.whiteout(&wh, st.st_mode & 0o777, &st)?;
                }
                if recurse {
                    self.pack_tree(fd.as_fd(), rel)?;
                }
            }
            // An overlay whiteout (its inode is shared by every whiteout of the mount).
            libc::S_IFCHR if self.upper.is_some() && st.st_rdev == 0 => {
                self.whiteout(&whiteout_name(rel), 0o600, &st)?;
            }
            libc::S_IFREG => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        let first = first.clone();
                        h.set_entry_type(EntryType::Link);
                        return self.append_link(&mut h, rel, &first);
                    }
                    self.links.insert(key, rel.clone());
                }
                let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let file =
                    File::from(openat(dir, name, flags, Mode::empty()).with_context(|| format!("open {}", show(rel)))?);
                self.xattrs(Node::Fd(file.as_fd()), rel)?;
                let size = u64::try_from(st.st_size).unwrap_or(0);
                h.set_entry_type(EntryType::Regular);
                h.set_size(size);
                let data = (&file).take(size).chain(io::repeat(0)).take(size);
                self.b
                    .append_data(&mut h, path, data)
                    .with_context(|| format!("write entry {}", show(rel)))?;
            }
            libc::S_IFLNK => {
                let target = readlinkat(dir, name).with_context(|| format!("readlink {}", show(rel)))?;
                self.xattrs(Node::At(dir, name), rel)?;
                h.set_entry_type(EntryType::Symlink);
                self.append_link(&mut h, rel, target.as_bytes())?;
            }
            t @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                self.xattrs(Node::At(dir, name), rel)?;
                h.set_entry_type(match t {
                    libc::S_IFCHR => EntryType::Char,
                    libc::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                });
                if t != libc::S_IFIFO {
                    let (ma, mi) = (major(st.st_rdev), minor(st.st_rdev));
                    let ma = u32::try_from(ma).context("device major out of range")?;
                    let mi = u32::try_from(mi).context("device minor out of range")?;
                    h.set_device_major(ma).context("device major")?;
                    h.set_device_minor(mi).context("device minor")?;
                }
                self.b
                    .append_data(&mut h, path, io::empty())
                    .with_context(|| format!("write entry {}", show(rel)))?;
            }
            // Sockets (and anything else) have no place in an archive.
            _ => {}
        }
        Ok(())
    }

    /// Writes an OCI whiteout file (an empty regular file) at `path`, with the
    /// owner and mtime of `st` (as containers/storage writes them).
    pub(super) fn whiteout(&mut self, path: &[u8], mode: u32, st: &nix::sys::stat::FileStat) -> Result<()> {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(mode);
        h.set_uid(st.st_uid.into());
        h.set_gid(st.st_gid.into());
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        self.b
            .append_data(&mut h, Path::new(OsStr::from_bytes(path)), io::empty())
            .with_context(|| format!("write entry {}", show(path)))
    }

    /// Writes the PAX xattr header for the next entry.
    fn xattrs(&mut self, node: Node<'_>, rel: &[u8]) -> Result<()> {
        let list = match node.list_xattrs() {
            Ok(l) => l,
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("list the xattrs of {}", show(rel))),
        };
        let mut names: Vec<&[u8]> = fsops::xattr_names(&list)
            .filter(|n| !tree::is_overlay_xattr(n))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        names.sort_unstable();
        let mut records: Vec<(String, Vec<u8>)> = Vec::with_capacity(names.len());
        for n in names {
            let Ok(s) = std::str::from_utf8(n) else {
                crate::output::warn(&format!("{}: xattr {} is not UTF-8; not archived", show(rel), show(n)));
                continue;
            };
            let attr = std::ffi::CString::new(n).context("xattr name with a NUL byte")?;
            match node.get_xattr(&attr) {
                Ok(v) => records.push((format!("SCHILY.xattr.{s}"), v)),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::EPERM)) => {}
                Err(e) => return Err(e).with_context(|| format!("read xattr {s} of {}", show(rel))),
            }
        }
        self.b
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .with_context(|| format!("write the xattrs of {}", show(rel)))
    }

    /// Appends a symlink or hardlink entry whose link name is written byte for
    /// byte (the tar crate's `append_link` would normalize it), with a GNU
    /// long-link record when it does not fit the header.
    fn append_link(&mut self, h: &mut Header, rel: &[u8], target: &[u8]) -> Result<()> {
        const FIELD: usize = 100;
        if target.len() > FIELD {
            let mut long = Header::new_gnu();
            long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
            long.set_mode(0o644);
            long.set_entry_type(EntryType::GNULongLink);
            long.set_size(target.len() as u64 + 1);
            long.set_cksum();
            self.b
                .append(&long, target.chain(&[0u8][..]))
                .with_context(|| format!("write entry {}", show(rel)))?;
        }
        h.set_link_name_literal(&target[..target.len().min(FIELD)])
            .context("link name")?;
        self.b
            .append_data(h, Path::new(OsStr::from_bytes(rel)), io::empty())
            .with_context(|| format!("write entry {}", show(rel)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testutil::{cap_net_raw, snapshot};
    use crate::layers::unpack::{UnpackOptions, unpack};
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn read_all(mut r: impl Read) -> Vec<u8> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn decompress_sniffs_gzip_zstd_and_plain() {
        let data = b"hello layer ".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        for (blob, kind) in [
            (&gz, Compression::Gzip),
            (&zst, Compression::Zstd),
            (&data, Compression::None),
        ] {
            let (r, k) = decompress(&blob[..]).unwrap();
            assert_eq!(k, kind);
            assert_eq!(read_all(r), data);
        }
        // Concatenated gzip members (pigz) are one stream.
        let mut two = gz.clone();
        two.extend_from_slice(&gz);
        assert_eq!(read_all(decompress(&two[..]).unwrap().0).len(), 2 * data.len());
        // Shorter than any magic number, and empty.
        for short in [&b"ab"[..], b""] {
            let (r, k) = decompress(short).unwrap();
            assert_eq!((k, read_all(r)), (Compression::None, short.to_vec()));
        }
        // A corrupt gzip body is an error when read, not garbage.
        let mut bad = gz.clone();
        bad[20] ^= 0xff;
        assert!(decompress(&bad[..]).unwrap().0.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn hashing_reader_and_writer() {
        const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut r = HashingReader::new(&b"abc"[..]);
        assert_eq!(read_all(&mut r), b"abc");
        assert_eq!((r.digest(), HashingReader::bytes(&r)), (ABC.to_string(), 3));
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        assert_eq!((w.digest(), w.bytes()), (ABC.to_string(), 3));
        assert_eq!(w.into_inner(), b"abc");
    }

    fn set_mtime_nofollow(p: &Path, secs: i64) {
        let t = nix::sys::time::TimeSpec::new(secs, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            p,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    /// A tree with every kind of node pack_dir must carry.
    fn build_tree(root: &Path) {
        let p = |s: &str| root.join(s);
        std::fs::create_dir_all(p("etc")).unwrap();
        std::fs::write(p("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
        let hosts = File::open(p("etc/hosts")).unwrap();
        fsops::fsetxattr(hosts.as_fd(), c"user.foo", b"bar").unwrap();
        std::fs::create_dir(p("bin")).unwrap();
        std::fs::write(p("bin/su"), b"su").unwrap();
        std::fs::set_permissions(p("bin/su"), PermissionsExt::from_mode(0o4755)).unwrap();
        std::fs::hard_link(p("bin/su"), p("bin/su2")).unwrap();
        std::fs::write(p("bin/ping"), b"ping").unwrap();
        let ping = File::open(p("bin/ping")).unwrap();
        fsops::fsetxattr(ping.as_fd(), c"security.capability", &cap_net_raw()).unwrap();
        std::fs::create_dir(p("var")).unwrap();
        symlink("/run", p("var/run")).unwrap();
        symlink("a//b/./c/", p("weird")).unwrap();
        symlink(format!("/{}", "t".repeat(150)), p("longlink")).unwrap();
        let long = format!("{}/{}", "d".repeat(100), "f".repeat(100));
        std::fs::create_dir(p(&"d".repeat(100))).unwrap();
        std::fs::write(p(&long), b"long").unwrap();
        nix::unistd::mkfifo(&p("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
        std::fs::create_dir(p("dev")).unwrap();
        let dev = |name: &str, kind, ma, mi| {
            nix::sys::stat::mknod(
                &p(name),
                kind,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(ma, mi),
            )
            .unwrap()
        };
        dev("dev/null", nix::sys::stat::SFlag::S_IFCHR, 1, 3);
        dev("dev/loop0", nix::sys::stat::SFlag::S_IFBLK, 7, 0);
        std::fs::write(p("owned"), b"o").unwrap();
        std::os::unix::fs::lchown(p("owned"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(p("weird"), Some(42), Some(43)).unwrap();
        std::fs::create_dir(p("opaque")).unwrap();
        let od = File::open(p("opaque")).unwrap();
        fsops::fsetxattr(od.as_fd(), c"trusted.overlay.opaque", b"y").unwrap();
        fsops::fsetxattr(od.as_fd(), c"user.overlay.origin", b"x").unwrap();
        fsops::fsetxattr(od.as_fd(), c"user.kept", b"k").unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(p("sock")).unwrap();
        std::fs::create_dir(p("ro")).unwrap();
        std::fs::write(p("ro/f"), b"").unwrap();
        // Times last, deepest first: creating children moves a directory's mtime.
        let mut all: Vec<_> = snapshot(root).into_keys().collect();
        all.sort_by_key(|k| std::cmp::Reverse(k.matches('/').count()));
        for (i, k) in all.iter().enumerate() {
            set_mtime_nofollow(&p(k), 1_500_000_000 + i as i64);
        }
        std::fs::set_permissions(p("ro"), PermissionsExt::from_mode(0o555)).unwrap();
    }

    #[test]
    fn pack_then_unpack_preserves_everything() {
        let src = tempfile::tempdir().unwrap();
        build_tree(src.path());
        let mut tar = Vec::new();
        pack_dir(src.path(), &mut tar).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let report = unpack(&tar[..], dst.path(), &UnpackOptions::default()).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);

        let mut want = snapshot(src.path());
        want.remove("sock");
        for d in want.values_mut() {
            d.xattrs.retain(|k, _| !k.contains(".overlay."));
        }
        let got = snapshot(dst.path());
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
        for (k, w) in &want {
            assert_eq!(&got[k], w, "{k}");
        }
        // Spot checks that the comparison covered what matters.
        assert_eq!(got["bin/su2"].link_of.as_deref(), Some("bin/su"));
        assert_eq!(got["weird"].target, b"a//b/./c/");
        assert_eq!(got["opaque"].xattrs.keys().collect::<Vec<_>>(), ["user.kept"]);
        assert_eq!(got["bin/ping"].xattrs["security.capability"], cap_net_raw());
    }

    #[test]
    fn pack_is_deterministic_with_plain_sorted_names() {
        let src = tempfile::tempdir().unwrap();
        build_tree(src.path());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        pack_dir(src.path(), &mut a).unwrap();
        pack_dir(src.path(), &mut b).unwrap();
        assert!(a == b);
        let mut ar = tar::Archive::new(&a[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
            .collect();
        assert_eq!(&names[..4], ["bin/", "bin/ping", "bin/su", "bin/su2"]);
        assert!(names.iter().all(|n| !n.starts_with("./") && !n.starts_with('/')));
        assert!(names.contains(&"opaque/".to_string()));
        assert!(!names.contains(&"sock".to_string()));
        let mut ar = tar::Archive::new(&a[..]);
        let su2 = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| &*e.path_bytes() == b"bin/su2")
            .unwrap();
        assert_eq!(su2.header().entry_type(), EntryType::Link);
        assert_eq!(&*su2.link_name_bytes().unwrap(), b"bin/su");
    }

    #[test]
    fn pack_does_not_follow_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        let src = tempfile::tempdir().unwrap();
        symlink(outside.path(), src.path().join("link")).unwrap();
        let mut tar = Vec::new();
        pack_dir(src.path(), &mut tar).unwrap();
        let mut ar = tar::Archive::new(&tar[..]);
        let entries: Vec<_> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().entry_type())
            .collect();
        assert_eq!(entries, [EntryType::Symlink]);
    }
}
