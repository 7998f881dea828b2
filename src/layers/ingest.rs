//! Taking in a layer: one pass over the bytes as they arrive (from a registry,
//! an archive, or a file) that stores them as a blob, checks their digest,
//! decompresses, checks the diff ID, and unpacks into a staging directory.
//! Nothing is committed unless every check passes; on any failure the blob's
//! temp file and the staging directory are removed.
//!
//! Runs in the store's context: rootless, the caller is already root of a user
//! namespace with the store's mapping (see `Store::in_context`).

use std::io::{self, Read};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::image::blobs::BlobWriter;
use crate::layers::archive::{self, Compression, HashingReader};
use crate::layers::store::{BlobRef, LayerRecord, Staging};
use crate::layers::unpack::{self, UnpackOptions};
use crate::store::Store;

/// What the bytes must turn out to be.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// The compressed blob's digest (a registry descriptor's).
    pub blob_digest: Option<String>,
    /// Its exact size; more bytes than this is an error (a never-ending body).
    pub blob_size: Option<u64>,
    /// The uncompressed tar's digest (the config's rootfs.diff_ids entry).
    pub diff_id: Option<String>,
    /// Refuse to unpack more than this many bytes of tar (a decompression bomb).
    pub max_unpacked: Option<u64>,
}

/// A layer taken in but not yet committed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ingested {
    pub blob: BlobRef,
    pub diff_id: String,
    /// Bytes of file data unpacked.
    pub size: u64,
    /// The staging directory (see `Staging::adopt`).
    pub staging: PathBuf,
    pub warnings: Vec<String>,
    /// The blob's temp file, committed with [`commit_blob`].
    pub blob_tmp: PathBuf,
}

/// Copies what passes through into the blob writer.
struct Tee<'a, R> {
    inner: &'a mut R,
    out: &'a mut BlobWriter,
    limit: Option<u64>,
    seen: u64,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen += n as u64;
        if let Some(l) = self.limit
            && self.seen > l
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more data than the {l} bytes declared"),
            ));
        }
        io::Write::write_all(self.out, &buf[..n])?;
        Ok(n)
    }
}

/// Stops a reader after `limit` bytes with an error.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the layer unpacks to more than the limit",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

pub fn media_type_for(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// Takes in one layer from `src`. On success the blob waits in a temp file
/// and the layer in a staging directory; both are removed on failure.
pub fn ingest(store: &Store, mut src: impl Read, expect: &Expect) -> Result<Ingested> {
    let mut blob = BlobWriter::new(store)?;
    let staging = Staging::new(store)?;
    let result = (|| -> Result<(String, unpack::UnpackReport, Compression)> {
        let tee = Tee {
            inner: &mut src,
            out: &mut blob,
            limit: expect.blob_size,
            seen: 0,
        };
        let (dec, compression) = archive::decompress(tee)?;
        let limit = expect.max_unpacked.unwrap_or(u64::MAX);
        let mut hashed = HashingReader::new(Capped {
            inner: dec,
            left: limit,
        });
        let report = unpack::unpack(
            &mut hashed,
            &staging.diff_path(),
            &UnpackOptions {
                rootless: store.rootless,
            },
        )?;
        // The tar's end-of-archive blocks and any padding count in the diff ID.
        io::copy(&mut hashed, &mut io::sink()).context("read the end of the layer")?;
        Ok((hashed.digest(), report, compression))
    })();
    let (diff_id, report, compression) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = staging.discard(store);
            return Err(e);
        }
    };
    // Whatever the decompressor did not need (trailing bytes) is still part of the blob.
    let rest = (|| -> Result<()> {
        let mut tail = Tee {
            inner: &mut src,
            out: &mut blob,
            limit: None,
            seen: 0,
        };
        io::copy(&mut tail, &mut io::sink()).context("read the end of the blob")?;
        Ok(())
    })();
    let checks = rest.and_then(|()| {
        let got = blob.digest();
        if let Some(size) = expect.blob_size
            && blob.size() != size
        {
            bail!("blob {got} has {} bytes where {size} were declared", blob.size());
        }
        if let Some(want) = &expect.blob_digest
            && *want != got
        {
            bail!("blob digest mismatch: expected {want}, got {got}");
        }
        if let Some(want) = &expect.diff_id
            && *want != diff_id
        {
            bail!("layer {got}: uncompressed digest mismatch: expected {want}, got {diff_id}");
        }
        Ok(())
    });
    if let Err(e) = checks {
        let _ = staging.discard(store);
        return Err(e);
    }
    let blob_ref = BlobRef {
        digest: blob.digest(),
        media_type: media_type_for(compression).into(),
        size: blob.size(),
    };
    let blob_tmp = match blob.keep() {
        Ok(p) => p,
        Err(e) => {
            let _ = staging.discard(store);
            return Err(e);
        }
    };
    Ok(Ingested {
        blob: blob_ref,
        diff_id,
        size: report.size,
        staging: staging.path().to_path_buf(),
        warnings: report.warnings,
        blob_tmp,
    })
}

/// Commits a taken-in layer on top of `parent`: its blob, then its directory.
/// Returns the layer's record (the existing one when another process got
/// there first).
pub fn commit(store: &Store, ing: Ingested, parent: Option<&str>) -> Result<LayerRecord> {
    crate::image::blobs::commit_tmp(store, &ing.blob_tmp, &ing.blob.digest)?;
    let chain_id = crate::layers::store::chain_id(parent, &ing.diff_id);
    let rec = LayerRecord {
        chain_id: chain_id.clone(),
        diff_id: ing.diff_id,
        parent: parent.map(String::from),
        size: ing.size,
        created: crate::util::time::now_nanos(),
        blob: Some(ing.blob),
        alternates: Vec::new(),
    };
    if !Staging::adopt(ing.staging).commit(store, &rec)? {
        // The same layer was already there: keep its record.
        if let Some(existing) = crate::layers::store::load(store, &chain_id)? {
            return Ok(existing);
        }
    }
    Ok(rec)
}

/// Throws away a taken-in layer that will not be committed.
pub fn discard(store: &Store, ing: Ingested) {
    let _ = std::fs::remove_file(&ing.blob_tmp);
    let _ = Staging::adopt(ing.staging).discard(store);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::layers::testutil::open_store;

    /// Everything under ROOT/tmp and ROOT/blobs, to see that a refused
    /// layer leaves nothing.
    fn leftovers(store: &Store) -> Vec<String> {
        let mut v = Vec::new();
        for d in [store.tmp_dir(), store.blobs_dir(), store.layers_dir()] {
            if let Ok(rd) = std::fs::read_dir(&d) {
                v.extend(rd.flatten().map(|e| e.path().display().to_string()));
            }
        }
        v
    }

    /// A zstd bomb: 64 MiB of zeros in one file compress to a few KiB; with
    /// a 1 MiB unpack limit the layer is refused and nothing stays.
    #[test]
    fn decompression_bomb_is_cut_off_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(64 << 20);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, "zeros", io::repeat(0).take(64 << 20)).unwrap();
        let tar = b.into_inner().unwrap();
        let bomb = zstd::encode_all(&tar[..], 19).unwrap();
        assert!(bomb.len() < 64 << 10, "the bomb is {} bytes", bomb.len());
        let before = leftovers(&store);
        let expect = Expect {
            max_unpacked: Some(1 << 20),
            ..Default::default()
        };
        let Err(err) = ingest(&store, &bomb[..], &expect) else {
            panic!("a bomb must be refused")
        };
        assert!(format!("{err:#}").contains("limit"), "{err:#}");
        assert_eq!(leftovers(&store), before);
    }

    /// A blob longer than its descriptor says is refused as soon as it
    /// passes the size, and nothing stays.
    #[test]
    fn blob_over_its_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut b = tar::Builder::new(Vec::new());
        let data = vec![7u8; 10_000];
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, "f", &data[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let before = leftovers(&store);
        let expect = Expect {
            blob_size: Some(100),
            ..Default::default()
        };
        assert!(ingest(&store, &tar[..], &expect).is_err());
        assert_eq!(leftovers(&store), before);
    }
}
