//! `push`: an image from the store to a registry.
//!
//! Layers go as the blobs the store keeps (byte for byte, so their digests and
//! the image's config are unchanged); an uncompressed layer (from `import` or
//! `load`) is compressed first, gzip unless `--compression-format` says zstd,
//! and the compressed blob is kept beside it for the next push. Each blob is
//! checked with HEAD first, mounted from another repository of the same
//! registry when the store knows one that has it, and uploaded otherwise; the
//! manifest goes last, so a registry never names an incomplete image.

use std::fs::File;
use std::io::{self, BufReader};

use anyhow::{Context, Result, bail};

use crate::image::progress::Progress;
use crate::image::reference::Reference;
use crate::image::remote::Remote;
use crate::image::{self, ImageRecord, blobs};
use crate::layers::archive::{self, Compression};
use crate::layers::store::{self as layer_store, BlobRef, LayerRecord};
use crate::registry::manifest;
use crate::store::Store;
use crate::store::record::{self, Durability};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    Oci,
    Docker,
}

pub struct PushOptions<'a> {
    pub remote: &'a Remote,
    /// Recompress every layer to this; None keeps compressed layers as they are.
    pub compression: Option<Compression>,
    pub format: Option<ManifestFormat>,
    pub progress: &'a dyn Progress,
}

fn compression_of(media_type: &str) -> Compression {
    if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
        Compression::Zstd
    } else if media_type.ends_with("gzip") {
        Compression::Gzip
    } else {
        Compression::None
    }
}

fn layer_media_type(c: Compression, format: ManifestFormat) -> &'static str {
    match (format, c) {
        (ManifestFormat::Docker, Compression::None) => manifest::DOCKER_LAYER,
        (ManifestFormat::Docker, _) => manifest::DOCKER_LAYER_GZIP,
        (ManifestFormat::Oci, c) => crate::layers::ingest::media_type_for(c),
    }
}

/// The blob to push for a layer in `want` compression: the stored one, a
/// recompressed copy made earlier, or a new one made now (and remembered in
/// the layer's record).
fn blob_for(store: &Store, layer: &LayerRecord, want: Option<Compression>) -> Result<BlobRef> {
    let stored = layer
        .blob
        .clone()
        .with_context(|| format!("layer {} has no blob to push", layer.chain_id))?;
    let have = compression_of(&stored.media_type);
    let want = match want {
        Some(w) => w,
        None if have == Compression::None => Compression::Gzip,
        None => return Ok(stored),
    };
    if want == have {
        return Ok(stored);
    }
    if let Some(alt) = layer.alternates.iter().find(|b| compression_of(&b.media_type) == want)
        && blobs::has_blob(store, &alt.digest)
    {
        return Ok(alt.clone());
    }
    // Recompress the same uncompressed tar: the diff ID, and so the config,
    // stay the same.
    let src =
        File::open(blobs::blob_path(store, &stored.digest)?).with_context(|| format!("open blob {}", stored.digest))?;
    let (mut tar, _) = archive::decompress(BufReader::with_capacity(256 * 1024, src))?;
    let mut out = blobs::BlobWriter::new(store)?;
    match want {
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
            io::copy(&mut tar, &mut enc).context("compress a layer")?;
            enc.finish().context("compress a layer")?;
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(&mut out, 3).context("start zstd")?;
            io::copy(&mut tar, &mut enc).context("compress a layer")?;
            enc.finish().context("compress a layer")?;
        }
        Compression::None => {
            io::copy(&mut tar, &mut out).context("decompress a layer")?;
        }
    }
    let size = out.size();
    let digest = out.commit(store, None)?;
    let alt = BlobRef {
        digest,
        media_type: crate::layers::ingest::media_type_for(want).into(),
        size,
    };
    // Remember it (best effort: a push that cannot record it still works).
    let mut updated = layer.clone();
    updated.alternates.push(alt.clone());
    if let Ok(dir) = layer_store::layer_dir(store, &layer.chain_id) {
        let _ = record::write_json(&dir.join("layer.json"), &updated, Durability::Durable);
    }
    Ok(alt)
}

/// Pushes image `rec` to `dest`; returns the pushed manifest's digest.
pub fn push(store: &Store, rec: &ImageRecord, dest: &Reference, opts: &PushOptions) -> Result<String> {
    if dest.digest.is_some() {
        bail!("cannot push to a digest reference {dest}: name a tag");
    }
    let client = opts.remote.client_for_push(dest)?;
    let repo = client.repository().to_string();
    let tag = dest.tag.clone().unwrap_or_else(|| "latest".into());
    let stored_format = if rec.manifest_media_type == manifest::DOCKER_MANIFEST {
        ManifestFormat::Docker
    } else {
        ManifestFormat::Oci
    };
    let format = opts.format.unwrap_or(stored_format);
    let mut pushed_layers = Vec::new();
    let mut unchanged = true;
    for chain in &rec.layers {
        let layer =
            layer_store::load(store, chain)?.with_context(|| format!("layer {chain} is missing from the store"))?;
        let blob = blob_for(store, &layer, opts.compression)?;
        unchanged &= Some(&blob.digest) == layer.blob.as_ref().map(|b| &b.digest);
        upload(store, &client, &repo, &blob, opts.progress)?;
        pushed_layers.push(blob);
    }
    let config_digest = rec.config_digest();
    let config_bytes = blobs::read_blob(store, &config_digest)?;
    let config_ref = BlobRef {
        digest: config_digest.clone(),
        media_type: manifest::OCI_CONFIG.into(),
        size: config_bytes.len() as u64,
    };
    opts.progress.message(&format!("Copying config {}", &rec.id[..12]));
    upload(store, &client, &repo, &config_ref, &crate::image::progress::Silent)?;

    // The stored manifest, byte for byte, when nothing changed and the format
    // is its own; else a new one over the same config.
    let (media_type, bytes) = if unchanged && format == stored_format && blobs::has_blob(store, &rec.digest) {
        (rec.manifest_media_type.clone(), blobs::read_blob(store, &rec.digest)?)
    } else {
        build_manifest(format, &config_ref, &pushed_layers)?
    };
    opts.progress.message("Writing manifest to image destination");
    let digest = client.put_manifest(&repo, &tag, &media_type, &bytes)?;
    let want = blobs::digest_of(&bytes);
    if digest != want {
        bail!("the registry stored the manifest as {digest}, not {want}");
    }
    Ok(digest)
}

fn build_manifest(format: ManifestFormat, config: &BlobRef, layers: &[BlobRef]) -> Result<(String, Vec<u8>)> {
    let desc = |media_type: &str, b: &BlobRef| serde_json::json!({"mediaType": media_type, "digest": b.digest, "size": b.size});
    let (mt, config_mt) = match format {
        ManifestFormat::Oci => (manifest::OCI_MANIFEST, manifest::OCI_CONFIG),
        ManifestFormat::Docker => (manifest::DOCKER_MANIFEST, manifest::DOCKER_CONFIG),
    };
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|b| desc(layer_media_type(compression_of(&b.media_type), format), b))
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": desc(config_mt, config),
        "layers": layer_descs,
    });
    Ok((mt.to_string(), serde_json::to_vec(&m).context("encode the manifest")?))
}

/// Makes sure the registry has blob `b`: already there, mounted, or uploaded.
fn upload(
    store: &Store,
    client: &crate::registry::client::Client,
    repo: &str,
    b: &BlobRef,
    progress: &dyn Progress,
) -> Result<()> {
    progress.blob_start(&b.digest, b.size);
    if client.blob_exists(repo, &b.digest)?.is_some() {
        progress.blob_done(&b.digest, true);
        return Ok(());
    }
    for from in mount_sources(store, client.host(), repo, &b.digest) {
        if client.mount_blob(repo, &b.digest, &from).unwrap_or(false) {
            crate::output::debug(|| format!("blob {} mounted from {from}", b.digest));
            progress.blob_done(&b.digest, true);
            return Ok(());
        }
    }
    let f = File::open(blobs::blob_path(store, &b.digest)?).with_context(|| format!("open blob {}", b.digest))?;
    client
        .upload_blob(
            repo,
            &b.digest,
            b.size,
            Box::new(BufReader::with_capacity(256 * 1024, f)),
        )
        .with_context(|| format!("upload blob {}", b.digest))?;
    progress.blob_done(&b.digest, false);
    Ok(())
}

/// Repositories of the same registry that the store's names say hold the
/// blob (images that were pulled from or pushed to there with that layer).
fn mount_sources(store: &Store, host: &str, repo: &str, digest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(names) = image::names_by_id(store) else {
        return out;
    };
    for (id, list) in names {
        let Ok(Some(img)) = image::load(store, &id) else {
            continue;
        };
        let has = img.layers.iter().any(|c| {
            layer_store::load(store, c).ok().flatten().is_some_and(|l| {
                l.blob.as_ref().is_some_and(|b| b.digest == digest) || l.alternates.iter().any(|b| b.digest == digest)
            })
        });
        if !has {
            continue;
        }
        for n in list {
            if let Ok(r) = Reference::parse_local(&n)
                && r.domain == host
                && r.path != repo
                && !out.contains(&r.path)
            {
                out.push(r.path.clone());
            }
        }
    }
    out
}
