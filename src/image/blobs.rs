//! Content-addressed blobs (`ROOT/blobs/sha256/<hex>`): manifests, configs and
//! layer tarballs. A blob is written to `ROOT/tmp`, hashed on the way, and
//! renamed into place only when complete, so a blob file always matches its name.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest as _, Sha256};

use crate::image::reference::validate_digest;
use crate::store::Store;
use crate::util::ids;

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", ids::hex(&Sha256::digest(data)))
}

/// The path of a blob; the digest is validated first, since it becomes a path.
pub fn blob_path(store: &Store, digest: &str) -> Result<PathBuf> {
    validate_digest(digest)?;
    Ok(store.blobs_dir().join(&digest["sha256:".len()..]))
}

pub fn has_blob(store: &Store, digest: &str) -> bool {
    blob_path(store, digest).map(|p| p.exists()).unwrap_or(false)
}

pub fn read_blob(store: &Store, digest: &str) -> Result<Vec<u8>> {
    let p = blob_path(store, digest)?;
    fs::read(&p).with_context(|| format!("read blob {digest}"))
}

/// Stores `data`; returns its digest.
pub fn write_blob(store: &Store, data: &[u8]) -> Result<String> {
    let mut w = BlobWriter::new(store)?;
    w.write_all(data).context("write blob")?;
    w.commit(store, None)
}

/// Streams a blob into the store.
pub struct BlobWriter {
    file: Option<File>,
    tmp: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    pub fn new(store: &Store) -> Result<BlobWriter> {
        let mut r = [0u8; 8];
        crate::sys::random_bytes(&mut r);
        let tmp = store.tmp_dir().join(format!(
            "{}{}-{}-blob",
            crate::store::record::TMP_PREFIX,
            crate::store::owner_pid(),
            ids::hex(&r)
        ));
        let file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn digest(&self) -> String {
        format!("sha256:{}", ids::hex(&self.hasher.clone().finalize()))
    }

    /// Moves the blob into place. With `expected`, a different digest is an
    /// error and nothing is stored.
    pub fn commit(mut self, store: &Store, expected: Option<&str>) -> Result<String> {
        let digest = self.digest();
        if let Some(want) = expected
            && want != digest
        {
            bail!("blob digest mismatch: expected {want}, got {digest}");
        }
        let file = self.file.take().context("blob already committed")?;
        file.sync_all()
            .with_context(|| format!("sync {}", self.tmp.display()))?;
        drop(file);
        let dest = blob_path(store, &digest)?;
        fs::rename(&self.tmp, &dest).with_context(|| format!("store blob {digest}"))?;
        Ok(digest)
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Finishes writing and keeps the temp file (for [`commit_tmp`] later,
    /// possibly from another process); its digest is [`BlobWriter::digest`].
    pub fn keep(mut self) -> Result<PathBuf> {
        let file = self.file.take().context("blob already committed")?;
        file.sync_all()
            .with_context(|| format!("sync {}", self.tmp.display()))?;
        Ok(self.tmp.clone())
    }
}

/// Moves a kept temp file into place as blob `digest` (already verified by
/// whoever wrote it). If the blob is there already, the temp file goes.
pub fn commit_tmp(store: &Store, tmp: &Path, digest: &str) -> Result<()> {
    let dest = blob_path(store, digest)?;
    if dest.exists() {
        let _ = fs::remove_file(tmp);
        return Ok(());
    }
    fs::rename(tmp, &dest).with_context(|| format!("store blob {digest}"))
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already committed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
