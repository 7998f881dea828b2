//! Test helpers for the layer modules: building tar archives entry by entry
//! (hostile names included) and describing a directory tree for comparison.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

use crate::sys::fsops;

/// Builds an archive in memory.
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

pub const MTIME: u64 = 1_600_000_000;

fn header(kind: EntryType, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(0);
    h
}

impl Tar {
    pub fn new() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry after letting `f` adjust the header.
    pub fn entry(
        &mut self,
        kind: EntryType,
        path: &str,
        mode: u32,
        data: &[u8],
        f: impl FnOnce(&mut Header),
    ) -> &mut Self {
        let mut h = header(kind, mode);
        h.set_size(data.len() as u64);
        f(&mut h);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.entry(EntryType::Regular, path, mode, data, |_| {})
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.entry(EntryType::Directory, path, mode, b"", |_| {})
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(EntryType::Symlink, 0o777);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = header(EntryType::Link, 0o644);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn device(&mut self, kind: EntryType, path: &str, major: u32, minor: u32) -> &mut Self {
        self.entry(kind, path, 0o666, b"", |h| {
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
        })
    }

    /// PAX records for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.b.append_pax_extensions(records.iter().copied()).unwrap();
        self
    }

    /// An entry whose name (and link name) bytes are written as they are,
    /// which the tar crate's builder would refuse ("..", absolute paths).
    pub fn raw(&mut self, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) -> &mut Self {
        let mut h = header(kind, 0o644);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.b.finish().unwrap();
        self.b.get_ref().clone()
    }
}

/// Everything the layer code is meant to preserve about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub data: Vec<u8>,
    pub target: Vec<u8>,
    pub rdev: u64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// For a file with several links: the first path (in sorted order) of its inode.
    pub link_of: Option<String>,
}

/// Describes every node under `root` (not `root` itself), keyed by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<String, Desc> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    walk(root, "", &mut out, &mut inodes);
    out
}

fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, Desc>, inodes: &mut BTreeMap<u64, String>) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let dfd = File::open(dir).unwrap();
    for name in names {
        let path = dir.join(&name);
        let key = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let md = std::fs::symlink_metadata(&path).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_fifo() {
            'p'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_socket() {
            's'
        } else {
            'f'
        };
        let cname = std::ffi::CString::new(name.as_bytes()).unwrap();
        let mut xattrs = BTreeMap::new();
        if let Ok(list) = fsops::listxattr_at(dfd.as_fd(), &cname) {
            for n in fsops::xattr_names(&list) {
                let attr = std::ffi::CString::new(n).unwrap();
                let v = fsops::getxattr_at(dfd.as_fd(), &cname, &attr).unwrap();
                xattrs.insert(String::from_utf8_lossy(n).into_owned(), v);
            }
        }
        let link_of =
            (kind == 'f' && md.nlink() > 1).then(|| inodes.entry(md.ino()).or_insert_with(|| key.clone()).clone());
        out.insert(
            key.clone(),
            Desc {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: md.mtime(),
                data: if kind == 'f' {
                    std::fs::read(&path).unwrap()
                } else {
                    Vec::new()
                },
                target: if kind == 'l' {
                    std::fs::read_link(&path).unwrap().as_os_str().as_bytes().to_vec()
                } else {
                    Vec::new()
                },
                rdev: md.rdev(),
                xattrs,
                link_of,
            },
        );
        if kind == 'd' {
            walk(&path, &key, out, inodes);
        }
    }
}

/// A `vfs_cap_data` (revision 2) granting CAP_NET_RAW, effective.
pub fn cap_net_raw() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    v.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

/// A vfs store under `dir` (root/ and run/), for tests.
pub fn open_store(dir: &Path) -> crate::store::Store {
    crate::store::Store::open(&crate::cli::GlobalArgs {
        root: Some(dir.join("root")),
        runroot: Some(dir.join("run")),
        storage_driver: Some("vfs".into()),
        log_level: "warn".into(),
    })
    .unwrap()
}
