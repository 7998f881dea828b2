//! `import`: a root filesystem (tarball, stdin, or directory) becomes a
//! one-layer image.
//!
//! The source is first copied whole into the blob store (hashed on the way),
//! then unpacked from there: the blob is exactly what was given, and the
//! unpack reads from the page cache. Rootless, the unpack runs as root of a user
//! namespace so that files keep their owners.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::image::{self, ImageRecord, blobs, change, reference::Reference};
use crate::layers::archive::{self, Compression};
use crate::layers::store::{self as layer_store, BlobRef, LayerRecord, Staging};
use crate::layers::unpack::{self, UnpackOptions};
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

/// What the unpacking step reports back (from a child process when rootless).
#[derive(Debug, Serialize, Deserialize)]
struct Unpacked {
    staging: std::path::PathBuf,
    diff_id: String,
    size: u64,
    warnings: Vec<String>,
}

/// The store-wide lock that layer garbage collection takes exclusive: whoever
/// is about to reference existing layers holds it shared.
pub fn layers_gc_lock(store: &Store, mode: Mode) -> Result<Lock> {
    Lock::acquire(&store.layers_dir().join(".gc.lock"), mode, Some("the layer store"))
}

pub fn media_type_for(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
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
    layer_store::clean_stale_tmp(store);
    // Garbage collection must not take our blobs and layers before the image
    // record that references them exists.
    let gc = layers_gc_lock(store, Mode::Shared)?;

    // 1. The source, whole, into a blob.
    let mut blob = blobs::BlobWriter::new(store)?;
    if opts.source.starts_with("http://") || opts.source.starts_with("https://") {
        bail!("importing from a URL is not supported yet: download the file and import it");
    }
    if opts.source == "-" {
        io::copy(&mut io::stdin().lock(), &mut blob).context("read the tarball from standard input")?;
    } else {
        let path = Path::new(opts.source);
        let md = std::fs::metadata(path).with_context(|| format!("open {}", path.display()))?;
        if md.is_dir() {
            archive::pack_dir(path, &mut blob).with_context(|| format!("archive directory {}", path.display()))?;
        } else {
            let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
            io::copy(&mut f, &mut blob).with_context(|| format!("read {}", path.display()))?;
        }
    }
    if blob.size() == 0 {
        bail!("{}: empty input, not a tar archive", opts.source);
    }
    let blob_size = blob.size();
    let blob_was_there = blobs::has_blob(store, &blob.digest());
    let blob_digest = blob.commit(store, None)?;
    // A refused archive leaves nothing behind, not even its blob (unless an
    // earlier import had stored the very same bytes).
    let forget_blob = |e: anyhow::Error| {
        if !blob_was_there && let Ok(p) = blobs::blob_path(store, &blob_digest) {
            let _ = std::fs::remove_file(p);
        }
        e
    };
    let blob_path = blobs::blob_path(store, &blob_digest)?;

    // 2. Unpack it into a staging layer (as root of a user namespace when rootless).
    let rootless = store.rootless;
    let store_c = store.clone();
    let compression = {
        let mut f = File::open(&blob_path).with_context(|| format!("open {}", blob_path.display()))?;
        let mut magic = [0u8; 4];
        let n = f.read(&mut magic).unwrap_or(0);
        Compression::sniff(&magic[..n])
    };
    let do_unpack = move || -> Result<Unpacked> {
        let staging = Staging::new(&store_c)?;
        let result = (|| {
            let f = File::open(&blob_path).with_context(|| format!("open {}", blob_path.display()))?;
            let (dec, _) = archive::decompress(io::BufReader::with_capacity(256 * 1024, f))?;
            let mut hashing = archive::HashingReader::new(dec);
            let report = unpack::unpack(&mut hashing, &staging.diff_path(), &UnpackOptions { rootless })?;
            io::copy(&mut hashing, &mut io::sink()).context("read the end of the archive")?;
            Ok(Unpacked {
                staging: staging.path().to_path_buf(),
                diff_id: hashing.digest(),
                size: report.size,
                warnings: report.warnings,
            })
        })();
        match result {
            Ok(u) => {
                std::mem::forget(staging);
                Ok(u)
            }
            Err(e) => {
                let _ = staging.discard(&store_c);
                Err(e)
            }
        }
    };
    let unpacked = if rootless {
        crate::namespaces::userns::run_in_userns(store.id_mapping(), do_unpack)
    } else {
        do_unpack()
    }
    .map_err(forget_blob)?;
    for w in &unpacked.warnings {
        crate::output::warn(w);
    }
    let chain_id = layer_store::chain_id(None, &unpacked.diff_id);
    let layer = LayerRecord {
        chain_id: chain_id.clone(),
        diff_id: unpacked.diff_id.clone(),
        parent: None,
        size: unpacked.size,
        created: now,
        blob: Some(BlobRef {
            digest: blob_digest.clone(),
            media_type: media_type_for(compression).into(),
            size: blob_size,
        }),
    };
    Staging::adopt(unpacked.staging).commit(store, &layer)?;

    // 3. Config, manifest, record, name.
    config["rootfs"]["diff_ids"] = json!([unpacked.diff_id]);
    config["history"] = json!([{
        "created": created,
        "created_by": format!("/bin/sh -c #(nop) ADD file:{} in / ", &blob_digest["sha256:".len()..]),
        "comment": opts.message.unwrap_or("imported from tarball"),
    }]);
    let config_bytes = serde_json::to_vec(&config).context("encode image config")?;
    // What we store must read back as an OCI image configuration.
    serde_json::from_slice::<oci_spec::image::ImageConfiguration>(&config_bytes)
        .context("the image config is not a valid OCI configuration")?;
    let config_digest = blobs::write_blob(store, &config_bytes)?;
    let manifest = oci_manifest(&config_digest, config_bytes.len() as u64, &[&layer])?;
    let manifest_bytes = manifest.to_string().context("encode manifest")?.into_bytes();
    let manifest_digest = blobs::write_blob(store, &manifest_bytes)?;
    let id = config_digest["sha256:".len()..].to_string();
    let rec = ImageRecord {
        id: id.clone(),
        digest: manifest_digest,
        manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        layers: vec![chain_id],
        created: now,
        size: unpacked.size,
        added: now,
        names: Vec::new(),
    };
    image::save(store, &rec)?;
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
