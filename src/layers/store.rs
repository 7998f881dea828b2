//! The layer store: `ROOT/layers/<chain-id-hex>/{diff/,layer.json}`.
//!
//! A layer is unpacked into a staging directory under `ROOT/tmp` and renamed
//! into place only when complete, with its record inside: a layer directory
//! that exists is whole. Two processes unpacking the same layer both finish;
//! the first rename wins and the second discards its copy.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::image::reference::validate_digest;
use crate::store::Store;
use crate::store::record::{self, Durability, TMP_PREFIX};
use crate::util::{ids, time};

/// The compressed blob a layer came from, kept for `save` and `push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// sha256 over the parent's chain ID and this diff ID (OCI image spec).
    pub chain_id: String,
    /// sha256 of the uncompressed layer tar.
    pub diff_id: String,
    pub parent: Option<String>,
    /// Bytes of file data in the unpacked layer.
    pub size: u64,
    pub created: time::Nanos,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<BlobRef>,
    /// The same tar, compressed otherwise (made by `push`), kept for reuse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<BlobRef>,
}

/// ChainID(L₀) = DiffID(L₀); ChainID(Lₙ) = sha256(ChainID(Lₙ₋₁) + " " + DiffID(Lₙ)).
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => format!(
            "sha256:{}",
            ids::hex(&Sha256::digest(format!("{p} {diff_id}").as_bytes()))
        ),
    }
}

pub fn layer_dir(store: &Store, chain_id: &str) -> Result<PathBuf> {
    validate_digest(chain_id)?;
    Ok(store.layers_dir().join(&chain_id["sha256:".len()..]))
}

/// The directory overlayfs uses as a lower layer.
pub fn diff_dir(store: &Store, chain_id: &str) -> Result<PathBuf> {
    Ok(layer_dir(store, chain_id)?.join("diff"))
}

pub fn load(store: &Store, chain_id: &str) -> Result<Option<LayerRecord>> {
    record::read_json(&layer_dir(store, chain_id)?.join("layer.json"))
}

pub fn exists(store: &Store, chain_id: &str) -> bool {
    layer_dir(store, chain_id)
        .map(|d| d.join("layer.json").exists())
        .unwrap_or(false)
}

/// Every committed layer's chain ID.
pub fn list(store: &Store) -> Result<Vec<String>> {
    let dir = store.layers_dir();
    let mut v = Vec::new();
    for e in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if ids::is_full_id(&name) {
            v.push(format!("sha256:{name}"));
        }
    }
    Ok(v)
}

/// A layer being unpacked.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    pub fn new(store: &Store) -> Result<Staging> {
        let mut r = [0u8; 8];
        crate::sys::random_bytes(&mut r);
        let dir = store.tmp_dir().join(format!(
            "{TMP_PREFIX}{}-{}-layer",
            crate::store::owner_pid(),
            ids::hex(&r)
        ));
        fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        fs::create_dir(dir.join("diff")).with_context(|| format!("create {}/diff", dir.display()))?;
        Ok(Staging { dir })
    }

    /// Takes back a staging directory made by a helper process.
    pub fn adopt(dir: PathBuf) -> Staging {
        Staging { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn diff_path(&self) -> PathBuf {
        self.dir.join("diff")
    }

    /// Moves the staged layer into place. Returns false when the same layer
    /// was already there (ours is then discarded).
    pub fn commit(self, store: &Store, rec: &LayerRecord) -> Result<bool> {
        record::write_json(&self.dir.join("layer.json"), rec, Durability::Durable)?;
        let dest = layer_dir(store, &rec.chain_id)?;
        match fs::rename(&self.dir, &dest) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY)) => {
                self.discard(store)?;
                Ok(false)
            }
            Err(e) => Err(e).with_context(|| format!("commit layer {}", rec.chain_id)),
        }
    }

    pub fn discard(self, store: &Store) -> Result<()> {
        remove_tree(store, &self.dir)
    }
}

/// Removes a directory tree of the store. Rootless, the tree may hold files
/// owned by subordinate IDs that only root of the user namespace can remove.
pub fn remove_tree(store: &Store, path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        _ => {}
    }
    let first = remove_all(path);
    match first {
        Ok(()) => Ok(()),
        Err(e) if store.rootless && e.kind() == io::ErrorKind::PermissionDenied => {
            let p = path.to_path_buf();
            crate::namespaces::userns::run_in_userns(store.id_mapping(), move || {
                remove_all(&p).with_context(|| format!("remove {}", p.display()))
            })
        }
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}

/// remove_dir_all that also copes with directories without permissions (a
/// layer may hold a 0555 directory; overlayfs leaves a mode-000 work/work),
/// and treats a missing path as removed.
pub fn remove_all(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Ok(m) if !m.is_dir() => return fs::remove_file(path),
        _ => {}
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path);
            match fs::remove_dir_all(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        }
        Err(e) => Err(e),
    }
}

fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(md) = fs::symlink_metadata(path) else { return };
    if !md.is_dir() {
        return;
    }
    let mode = md.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(rd) = fs::read_dir(path) {
        for e in rd.flatten() {
            make_writable(&e.path());
        }
    }
}

/// Removes staging directories and temp files left by processes that died.
pub fn clean_stale_tmp(store: &Store) {
    let dir = store.tmp_dir();
    let Ok(entries) = fs::read_dir(&dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
            continue;
        };
        let pid: i32 = rest.split('-').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if pid > 0 && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = remove_tree(store, &e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        assert_eq!(chain_id(None, &a), a);
        let expect = format!("sha256:{}", ids::hex(&Sha256::digest(format!("{a} {b}").as_bytes())));
        assert_eq!(chain_id(Some(&a), &b), expect);
    }
}
