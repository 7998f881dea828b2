//! Making an image from layers already in the store and a config: the config
//! and manifest blobs and the image record (`import`, `commit`, `build`).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::image::{self, ImageRecord, blobs};
use crate::layers::archive::Compression;
use crate::layers::store::{self as layer_store, BlobRef, LayerRecord};
use crate::registry::manifest as media;
use crate::store::Store;
use crate::store::lock::Mode;
use crate::util::time;

/// Docker's name for zstd layers (not in the schema 2 spec; what tools write).
const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/// Writes the config blob (must parse as an OCI ImageConfiguration), the
/// manifest blob (OCI media types, or Docker schema 2 ones when
/// `docker_format`; each layer's media type is its blob's, in that format's
/// spelling) and an image record without names; returns the record. The
/// caller has filled `config.rootfs.diff_ids` (checked against the layers,
/// chain IDs bottom first) and `config.history`. Idempotent: the same config
/// gives the same ID, and an image already stored under it is returned as it is.
pub fn store_image(store: &Store, layers: &[String], config: &Value, docker_format: bool) -> Result<ImageRecord> {
    store_image_with(store, layers, config, docker_format, &[])
}

/// [`store_image`] with annotations in the manifest (`build --annotation`).
/// An image with annotations always gets a fresh manifest.
pub fn store_image_with(
    store: &Store,
    layers: &[String],
    config: &Value,
    docker_format: bool,
    annotations: &[(String, String)],
) -> Result<ImageRecord> {
    let config_bytes = serde_json::to_vec(config).context("encode the image config")?;
    serde_json::from_slice::<oci_spec::image::ImageConfiguration>(&config_bytes)
        .context("the image config is not a valid OCI configuration")?;
    // Garbage collection must not take the layers before the record that
    // references them exists.
    let _gc = image::import::layers_gc_lock(store, Mode::Shared)?;
    let records = layer_records(store, layers)?;
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let have: Vec<&str> = records.iter().map(|r| r.diff_id.as_str()).collect();
    if diff_ids != have {
        bail!(
            "the config's rootfs.diff_ids [{}] do not match the layers' [{}]",
            diff_ids.join(", "),
            have.join(", ")
        );
    }

    let config_digest = blobs::digest_of(&config_bytes);
    let id = config_digest["sha256:".len()..].to_string();
    let _lock = image::lock(store, &id, Mode::Exclusive)?;
    let previous = image::load(store, &id)?;
    if let Some(existing) = previous.clone()
        && annotations.is_empty()
        && existing.manifest_media_type
            == if docker_format {
                media::DOCKER_MANIFEST
            } else {
                media::OCI_MANIFEST
            }
        && blobs::has_blob(store, &existing.digest)
        && blobs::has_blob(store, &config_digest)
    {
        return Ok(existing);
    }
    blobs::write_blob(store, &config_bytes)?;
    let blob_refs = records
        .iter()
        .map(|l| {
            l.blob
                .clone()
                .with_context(|| format!("layer {} has no blob", l.chain_id))
        })
        .collect::<Result<Vec<BlobRef>>>()?;
    let (manifest_type, manifest) = manifest_for(
        &config_digest,
        config_bytes.len() as u64,
        &blob_refs,
        docker_format,
        annotations,
    )?;
    let manifest_digest = blobs::write_blob(store, &manifest)?;
    let now = time::now_nanos();
    let rec = ImageRecord {
        id,
        digest: manifest_digest,
        manifest_media_type: manifest_type.to_string(),
        layers: layers.to_vec(),
        created: config["created"]
            .as_str()
            .and_then(|c| time::parse_rfc3339(c).ok())
            .unwrap_or(now),
        size: records.iter().map(|r| r.size).sum(),
        added: now,
        // The same image in another format or with other annotations keeps its names.
        names: previous.as_ref().map(|p| p.names.clone()).unwrap_or_default(),
        repo_digests: Vec::new(),
    };
    image::save(store, &rec)?;
    Ok(rec)
}

fn layer_records(store: &Store, layers: &[String]) -> Result<Vec<LayerRecord>> {
    let mut parent: Option<&str> = None;
    let mut out = Vec::with_capacity(layers.len());
    for chain in layers {
        let rec = layer_store::load(store, chain)?.with_context(|| format!("layer {chain} is not in the store"))?;
        if rec.parent.as_deref() != parent {
            bail!("layer {chain} does not sit on {}", parent.unwrap_or("nothing"));
        }
        parent = Some(chain);
        out.push(rec);
    }
    Ok(out)
}

fn compression_of(media_type: &str) -> Compression {
    if media_type.ends_with("zstd") {
        Compression::Zstd
    } else if media_type.ends_with("gzip") {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// A layer blob's media type in the manifest format wanted.
fn layer_media_type(stored: &str, docker_format: bool) -> &'static str {
    match (docker_format, compression_of(stored)) {
        (false, c) => crate::layers::ingest::media_type_for(c),
        (true, Compression::None) => media::DOCKER_LAYER,
        (true, Compression::Gzip) => media::DOCKER_LAYER_GZIP,
        (true, Compression::Zstd) => DOCKER_LAYER_ZSTD,
    }
}

/// The manifest's media type and bytes.
fn manifest_for(
    config_digest: &str,
    config_size: u64,
    layers: &[BlobRef],
    docker_format: bool,
    annotations: &[(String, String)],
) -> Result<(&'static str, Vec<u8>)> {
    let (mt, config_mt) = if docker_format {
        (media::DOCKER_MANIFEST, media::DOCKER_CONFIG)
    } else {
        (media::OCI_MANIFEST, media::OCI_CONFIG)
    };
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|b| json!({"mediaType": layer_media_type(&b.media_type, docker_format), "digest": b.digest, "size": b.size}))
        .collect();
    let m = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": config_mt, "digest": config_digest, "size": config_size},
        "layers": layer_descs,
    });
    let mut m = m;
    if !annotations.is_empty() {
        let map: serde_json::Map<String, Value> = annotations.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        m["annotations"] = Value::Object(map);
    }
    Ok((mt, serde_json::to_vec(&m).context("encode the manifest")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::ingest::{self, Expect};

    use crate::layers::testutil::open_store;

    /// A one-file layer committed on `parent`.
    fn layer(store: &Store, data: &[u8], parent: Option<&str>) -> LayerRecord {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_data(&mut h, "f", data).unwrap();
        let tar = b.into_inner().unwrap();
        let ing = ingest::ingest(store, &tar[..], &Expect::default()).unwrap();
        ingest::commit(store, ing, parent).unwrap()
    }

    fn config_for(layers: &[&LayerRecord]) -> Value {
        json!({
            "created": "2024-01-02T03:04:05Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
            "history": [{"created_by": "a"}, {"created_by": "b"}],
        })
    }

    #[test]
    fn stores_config_manifest_and_record_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let a = layer(&store, b"one", None);
        let b = layer(&store, b"two!", Some(&a.chain_id));
        let chain = vec![a.chain_id.clone(), b.chain_id.clone()];
        let config = config_for(&[&a, &b]);

        let rec = store_image(&store, &chain, &config, false).unwrap();
        assert_eq!(rec.layers, chain);
        assert_eq!(rec.size, 7);
        assert!(rec.names.is_empty());
        assert_eq!(rec.created, time::parse_rfc3339("2024-01-02T03:04:05Z").unwrap());
        assert_eq!(rec.id, blobs::digest_of(&serde_json::to_vec(&config).unwrap())[7..]);
        assert_eq!(image::config(&store, &rec).unwrap(), config);
        let m: Value = serde_json::from_slice(&blobs::read_blob(&store, &rec.digest).unwrap()).unwrap();
        assert_eq!(m["mediaType"], media::OCI_MANIFEST);
        assert_eq!(m["config"]["mediaType"], media::OCI_CONFIG);
        assert_eq!(m["config"]["digest"], rec.config_digest());
        assert_eq!(m["layers"][0]["mediaType"], media::OCI_LAYER);
        assert_eq!(m["layers"][1]["digest"], b.blob.as_ref().unwrap().digest);
        // Header, one data block, two end blocks.
        assert_eq!(m["layers"][1]["size"], 512 + 512 + 1024);
        assert_eq!(image::load(&store, &rec.id).unwrap().unwrap().digest, rec.digest);

        // Same config and format: the same record.
        let again = store_image(&store, &chain, &config, false).unwrap();
        assert_eq!(
            (&again.id, &again.digest, again.added),
            (&rec.id, &rec.digest, rec.added)
        );
        // Another format: the same image (ID, names) with that format's manifest.
        image::set_name(&store, "localhost/x:latest", &rec.id).unwrap();
        let docker = store_image(&store, &chain, &config, true).unwrap();
        assert_eq!(docker.id, rec.id);
        assert_ne!(docker.digest, rec.digest);
        assert_eq!(docker.manifest_media_type, media::DOCKER_MANIFEST);
        assert_eq!(docker.names, vec!["localhost/x:latest".to_string()]);
    }

    #[test]
    fn docker_format_uses_docker_media_types() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let a = layer(&store, b"one", None);
        let rec = store_image(&store, std::slice::from_ref(&a.chain_id), &config_for(&[&a]), true).unwrap();
        assert_eq!(rec.manifest_media_type, media::DOCKER_MANIFEST);
        let m: Value = serde_json::from_slice(&blobs::read_blob(&store, &rec.digest).unwrap()).unwrap();
        assert_eq!(m["mediaType"], media::DOCKER_MANIFEST);
        assert_eq!(m["config"]["mediaType"], media::DOCKER_CONFIG);
        assert_eq!(m["layers"][0]["mediaType"], media::DOCKER_LAYER);
        assert_eq!(layer_media_type(media::OCI_LAYER_GZIP, true), media::DOCKER_LAYER_GZIP);
        assert_eq!(layer_media_type(media::DOCKER_LAYER_GZIP, false), media::OCI_LAYER_GZIP);
        assert_eq!(layer_media_type(media::OCI_LAYER_ZSTD, true), DOCKER_LAYER_ZSTD);
    }

    #[test]
    fn refuses_mismatched_diff_ids_and_invalid_configs() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let a = layer(&store, b"one", None);
        let b = layer(&store, b"two", Some(&a.chain_id));
        let chain = vec![a.chain_id.clone(), b.chain_id.clone()];
        let e = store_image(&store, &chain, &config_for(&[&a]), false).unwrap_err();
        assert!(format!("{e:#}").contains("diff_ids"), "{e:#}");
        // Layers out of order do not chain.
        let e = store_image(&store, std::slice::from_ref(&b.chain_id), &config_for(&[&b]), false).unwrap_err();
        assert!(format!("{e:#}").contains("does not sit on"), "{e:#}");
        let e = store_image(&store, &[], &json!({"rootfs": 5}), false).unwrap_err();
        assert!(format!("{e:#}").contains("OCI configuration"), "{e:#}");
        assert!(image::list(&store).unwrap().is_empty());
    }
}
