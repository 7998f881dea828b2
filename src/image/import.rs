//! `import`: a root filesystem (tarball, stdin, or directory) becomes a
//! one-layer image. The bytes are taken in once (stored as a blob, hashed,
//! decompressed and unpacked in the same pass); rootless, that happens as root
//! of a user namespace so that files keep their owners.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::image::{self, blobs, change, reference::Reference};
use crate::layers::archive;
use crate::layers::ingest::{self, Expect, Ingested};
use crate::layers::store::{self as layer_store, LayerRecord};
use crate::store::Store;
use crate::store::lock::{Lock, Mode};
use crate::util::time;

pub struct ImportOptions<'a> {
    /// A path, a directory, or "-" for stdin.
    pub source: &'a str,
    pub reference: Option<&'a str>,
    pub changes: &'a [String],
    pub message: Option<&'a str>,
}

/// The store-wide lock that layer garbage collection takes exclusive: whoever
/// is about to reference existing layers holds it shared.
pub fn layers_gc_lock(store: &Store, mode: Mode) -> Result<Lock> {
    Lock::acquire(&store.layers_dir().join(".gc.lock"), mode, Some("the layer store"))
}

/// Imports and returns the new image's ID.
pub fn import(store: &Store, opts: &ImportOptions) -> Result<String> {
    // Validate everything cheap before reading a byte.
    let name = opts.reference.map(Reference::parse_local).transpose()?;
    let now = time::now_nanos();
    let created = time::rfc3339_nanos(now);
    let mut config = json!({
        "created": created,
        "architecture": image::host_arch(),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    for c in opts.changes {
        change::apply(&mut config, c).with_context(|| format!("--change {c:?}"))?;
    }
    if opts.source.starts_with("http://") || opts.source.starts_with("https://") {
        bail!("importing from a URL is not supported yet: download the file and import it");
    }
    layer_store::clean_stale_tmp(store);
    // Garbage collection must not take our blobs and layers before the image
    // record that references them exists.
    let gc = layers_gc_lock(store, Mode::Shared)?;

    let source = opts.source.to_string();
    let store_c = store.clone();
    let ingested: Ingested = store.in_context(move || {
        if source == "-" {
            return ingest::ingest(&store_c, io::stdin().lock(), &Expect::default())
                .context("import the tarball from standard input");
        }
        let path = Path::new(&source);
        let md = std::fs::metadata(path).with_context(|| format!("open {}", path.display()))?;
        if md.is_dir() {
            // A directory is archived first (into the store's temp space).
            let mut packed = blobs::BlobWriter::new(&store_c)?;
            archive::pack_dir(path, &mut packed).with_context(|| format!("archive directory {}", path.display()))?;
            let tmp = packed.keep()?;
            let r = File::open(&tmp)
                .map_err(anyhow::Error::from)
                .and_then(|f| ingest::ingest(&store_c, BufReader::with_capacity(256 * 1024, f), &Expect::default()));
            let _ = std::fs::remove_file(&tmp);
            return r;
        }
        let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
        if md.len() == 0 {
            bail!("{}: empty file, not a tar archive", path.display());
        }
        ingest::ingest(&store_c, BufReader::with_capacity(256 * 1024, f), &Expect::default())
            .with_context(|| format!("import {}", path.display()))
    })?;
    for w in &ingested.warnings {
        crate::output::warn(w);
    }
    let layer: LayerRecord = ingest::commit(store, ingested, None)?;
    let blob = layer.blob.clone().context("layer without blob")?;

    config["rootfs"]["diff_ids"] = json!([layer.diff_id]);
    config["history"] = json!([{
        "created": created,
        "created_by": format!("/bin/sh -c #(nop) ADD file:{} in / ", &blob.digest["sha256:".len()..]),
        "comment": opts.message.unwrap_or("imported from tarball"),
    }]);
    let rec = super::create::store_image(store, std::slice::from_ref(&layer.chain_id), &config, false)?;
    let id = rec.id;
    drop(gc);
    if let Some(n) = name {
        image::set_name(store, &n.to_string(), &id)?;
    }
    Ok(id)
}

/// An OCI image manifest for a config blob and its layers.
pub fn oci_manifest(
    config_digest: &str,
    config_size: u64,
    layers: &[&LayerRecord],
) -> Result<oci_spec::image::ImageManifest> {
    use oci_spec::image::{Descriptor, Digest, ImageManifestBuilder, MediaType};
    use std::str::FromStr;
    let digest = |d: &str| Digest::from_str(d).with_context(|| format!("invalid digest {d}"));
    let mut descriptors = Vec::new();
    for l in layers {
        let b = l
            .blob
            .as_ref()
            .with_context(|| format!("layer {} has no blob", l.chain_id))?;
        descriptors.push(Descriptor::new(
            MediaType::from(b.media_type.as_str()),
            b.size,
            digest(&b.digest)?,
        ));
    }
    ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config_size,
            digest(config_digest)?,
        ))
        .layers(descriptors)
        .build()
        .context("build the image manifest")
}
