//! `load`: images from a docker-archive or an OCI layout (oci-archive) into
//! the store.
//!
//! The archive is spooled first (see [`super::spool`]); then every document
//! is checked before any layer is taken in: configs against their names
//! (docker) or descriptors (OCI), manifests against their descriptors, layer
//! counts against the configs' diff IDs. Layers go through
//! [`ingest`](crate::layers::ingest) with the diff ID (and, for OCI, the blob
//! digest and size) expected; all of them are taken in before any is
//! committed. On any failure after that, the records this load made are
//! removed and unreferenced layers and blobs collected, so nothing of a
//! failed load remains.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

use super::MAX_JSON;
use super::media;
use super::spool::Spool;
use crate::image::import::{layers_gc_lock, oci_manifest};
use crate::image::reference::{Reference, validate_digest};
use crate::image::{self, ImageRecord, blobs};
use crate::layers::ingest::{self, Expect, Ingested};
use crate::layers::store::{self as layer_store, LayerRecord};
use crate::store::Store;
use crate::store::lock::Mode;
use crate::store::record::{self, Durability};
use crate::util::time;

/// A layer may unpack to at most this many times its archived size (plus a
/// floor): beyond it, it is a decompression bomb.
const MAX_EXPANSION: u64 = 2000;
const MIN_UNPACKED_LIMIT: u64 = 1 << 30;

/// One image of the archive, checked and ready to store.
struct Planned {
    config: Vec<u8>,
    config_digest: String,
    /// OCI: the manifest as it is in the layout, and its media type. Docker:
    /// none; one is made from the stored layers.
    manifest: Option<(Vec<u8>, String)>,
    layers: Vec<PlannedLayer>,
    names: Vec<String>,
    created: time::Nanos,
}

#[derive(Clone)]
struct PlannedLayer {
    file: PathBuf,
    /// The archive name, for messages.
    name: String,
    diff_id: String,
    blob_digest: Option<String>,
    blob_size: Option<u64>,
}

/// Reads an archive (docker-archive or OCI layout in a tar; gzip, zstd or
/// plain), stores its images and names them. Returns what it loaded in the
/// archive's order, as podman prints it: each name, or `sha256:<id>` for an
/// image without one.
pub fn load(store: &Store, input: Box<dyn Read>) -> Result<Vec<String>> {
    layer_store::clean_stale_tmp(store);
    let (tar, _) = crate::layers::archive::decompress(input).context("read the archive")?;
    let spool = Spool::read(store, tar)?;
    // docker 25 writes both an OCI layout and manifest.json; manifest.json has
    // the full names (its index.json has only the tag in ref.name).
    let planned = if spool.has("manifest.json") {
        plan_docker(&spool).context("read the docker-archive")?
    } else if spool.has("index.json") {
        plan_oci(&spool).context("read the OCI layout")?
    } else {
        bail!("not an image archive: it holds neither manifest.json (docker-archive) nor index.json (OCI layout)");
    };
    if planned.is_empty() {
        bail!("the archive holds no image");
    }
    store_images(store, planned)
}

// ---------------------------------------------------------------- docker-archive

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// A RepoTags entry as docker and podman read it: no domain means docker.io,
/// and a one-component path there is `library/`'s.
fn docker_name(tag: &str) -> Result<String> {
    let mut r = Reference::parse_with_default(tag, "docker.io")?;
    if r.short && r.domain == "docker.io" && !r.path.contains('/') {
        r.path = format!("library/{}", r.path);
    }
    if r.digest.is_some() {
        bail!("invalid RepoTags entry {tag:?}: a digest is not a tag");
    }
    Ok(r.to_string())
}

fn plan_docker(spool: &Spool) -> Result<Vec<Planned>> {
    let raw = spool.read_small("manifest.json", MAX_JSON)?;
    let entries: Vec<DockerEntry> = serde_json::from_slice(&raw).context("parse manifest.json")?;
    let mut out = Vec::new();
    for e in entries {
        // The config's file name is its digest: "<hex>.json" (docker < 25,
        // podman, skopeo) or "blobs/sha256/<hex>" (docker 25).
        let base = e.config.rsplit('/').next().unwrap_or_default();
        let hex = base.strip_suffix(".json").unwrap_or(base);
        let want = format!("sha256:{hex}");
        validate_digest(&want).with_context(|| format!("config {:?} is not named after its digest", e.config))?;
        let config = spool.read_small_linked(&e.config, MAX_JSON)?;
        let got = blobs::digest_of(&config);
        if got != want {
            bail!("config {}: digest mismatch: expected {want}, got {got}", e.config);
        }
        let (diff_ids, created) = read_config(&config, &e.config)?;
        if diff_ids.len() != e.layers.len() {
            bail!(
                "image {}: manifest.json lists {} layers and its config {}",
                &hex[..12],
                e.layers.len(),
                diff_ids.len()
            );
        }
        let mut layers = Vec::new();
        for (name, diff_id) in e.layers.iter().zip(diff_ids) {
            layers.push(PlannedLayer {
                file: spool.path(name)?.to_path_buf(),
                name: name.clone(),
                diff_id,
                blob_digest: None,
                blob_size: None,
            });
        }
        let mut names = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            let n = docker_name(&t).with_context(|| format!("image {}", &hex[..12]))?;
            if !names.contains(&n) {
                names.push(n);
            }
        }
        out.push(Planned {
            config,
            config_digest: want,
            manifest: None,
            layers,
            names,
            created,
        });
    }
    Ok(out)
}

/// A config's diff IDs and creation time; the config must read as an OCI one.
fn read_config(config: &[u8], what: &str) -> Result<(Vec<String>, time::Nanos)> {
    let v: Value = serde_json::from_slice(config).with_context(|| format!("parse config {what}"))?;
    serde_json::from_slice::<oci_spec::image::ImageConfiguration>(config)
        .with_context(|| format!("config {what} is not a valid OCI image configuration"))?;
    let mut diff_ids = Vec::new();
    for d in v["rootfs"]["diff_ids"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let d = d
            .as_str()
            .with_context(|| format!("config {what}: a diff ID is not a string"))?;
        validate_digest(d).with_context(|| format!("config {what}: diff ID"))?;
        diff_ids.push(d.to_string());
    }
    let created = v["created"]
        .as_str()
        .and_then(|c| time::parse_rfc3339(c).ok())
        .unwrap_or(0);
    Ok((diff_ids, created))
}

// ---------------------------------------------------------------- OCI layout

#[derive(Deserialize, Clone)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize, Clone)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// Reads the blob a descriptor names, small, checked against digest and size.
fn read_blob_of(spool: &Spool, d: &Descriptor) -> Result<Vec<u8>> {
    validate_digest(&d.digest)?;
    if d.size > MAX_JSON {
        bail!("blob {} is {} bytes, over the {MAX_JSON}-byte limit", d.digest, d.size);
    }
    let data = spool.read_small_linked(&blob_name(&d.digest), MAX_JSON)?;
    let got = blobs::digest_of(&data);
    if got != d.digest {
        bail!("blob digest mismatch: expected {}, got {got}", d.digest);
    }
    if data.len() as u64 != d.size {
        bail!(
            "blob {} has {} bytes where {} were declared",
            d.digest,
            data.len(),
            d.size
        );
    }
    Ok(data)
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", &digest["sha256:".len()..])
}

fn is_index(media_type: &str) -> bool {
    media_type == media::OCI_INDEX || media_type == media::DOCKER_LIST
}

/// The name an index entry gives its image, read as podman reads it: the
/// full name containerd (and docker 25) record, else `ref.name` as a local name.
fn oci_name(d: &Descriptor) -> Result<Option<String>> {
    let Some(a) = &d.annotations else { return Ok(None) };
    if let Some(n) = a.get(media::CONTAINERD_NAME)
        && let Ok(r) = Reference::parse_with_default(n, "docker.io")
        && !r.short
    {
        return Ok(Some(r.to_string()));
    }
    match a.get(media::REF_NAME) {
        Some(n) => {
            let r = Reference::parse_local(n).with_context(|| format!("the image name {n:?} in index.json"))?;
            Ok(Some(r.to_string()))
        }
        None => Ok(None),
    }
}

fn plan_oci(spool: &Spool) -> Result<Vec<Planned>> {
    let layout: Value =
        serde_json::from_slice(&spool.read_small(media::OCI_LAYOUT_FILE, MAX_JSON)?).context("parse oci-layout")?;
    if layout["imageLayoutVersion"].as_str().is_none() {
        bail!("oci-layout has no imageLayoutVersion");
    }
    let index: Document =
        serde_json::from_slice(&spool.read_small("index.json", MAX_JSON)?).context("parse index.json")?;
    let mut out: Vec<Planned> = Vec::new();
    for entry in index.manifests.unwrap_or_default() {
        let name = oci_name(&entry)?;
        let mut d = entry.clone();
        let mut raw = read_blob_of(spool, &d)?;
        let mut doc: Document = serde_json::from_slice(&raw).with_context(|| format!("parse manifest {}", d.digest))?;
        let mut media_type = doc.media_type.clone().unwrap_or_else(|| d.media_type.clone());
        if is_index(&media_type) {
            // An index inside the layout (a multi-platform image): the host's entry.
            let want_arch = image::host_arch();
            let inner = doc
                .manifests
                .take()
                .unwrap_or_default()
                .into_iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == want_arch)
                })
                .with_context(|| format!("index {} has no image for linux/{want_arch}", d.digest))?;
            d = inner;
            raw = read_blob_of(spool, &d)?;
            doc = serde_json::from_slice(&raw).with_context(|| format!("parse manifest {}", d.digest))?;
            media_type = doc.media_type.clone().unwrap_or_else(|| d.media_type.clone());
        }
        if media_type.is_empty() {
            media_type = media::OCI_MANIFEST.to_string();
        }
        if media_type != media::OCI_MANIFEST && media_type != media::DOCKER_MANIFEST {
            bail!(
                "manifest {} has media type {media_type:?}, not an image manifest",
                d.digest
            );
        }
        // The same manifest under a second name: one image, two names.
        if let Some(p) = out.iter_mut().find(|p| {
            p.manifest
                .as_ref()
                .is_some_and(|(m, _)| blobs::digest_of(m) == d.digest)
        }) {
            if let Some(n) = name
                && !p.names.contains(&n)
            {
                p.names.push(n);
            }
            continue;
        }
        let config_d = doc
            .config
            .clone()
            .with_context(|| format!("manifest {} has no config", d.digest))?;
        let config = read_blob_of(spool, &config_d).context("the image config")?;
        let (diff_ids, created) = read_config(&config, &config_d.digest)?;
        if diff_ids.len() != doc.layers.len() {
            bail!(
                "manifest {} lists {} layers and its config {}",
                d.digest,
                doc.layers.len(),
                diff_ids.len()
            );
        }
        let mut layers = Vec::new();
        for (l, diff_id) in doc.layers.iter().zip(diff_ids) {
            validate_digest(&l.digest)?;
            let bname = blob_name(&l.digest);
            layers.push(PlannedLayer {
                file: spool.path(&bname)?.to_path_buf(),
                name: bname,
                diff_id,
                blob_digest: Some(l.digest.clone()),
                blob_size: Some(l.size),
            });
        }
        out.push(Planned {
            config,
            config_digest: config_d.digest.clone(),
            manifest: Some((raw, media_type)),
            layers,
            names: name.into_iter().collect(),
            created,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- storing

/// Takes in the layers the store lacks; runs in the store's context.
fn ingest_all(store: &Store, jobs: Vec<(String, PlannedLayer)>) -> Result<Vec<(String, Ingested)>> {
    let mut done: Vec<(String, Ingested)> = Vec::new();
    for (chain, l) in jobs {
        let r = std::fs::File::open(&l.file)
            .with_context(|| format!("open {}", l.file.display()))
            .and_then(|f| {
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                let expect = Expect {
                    blob_digest: l.blob_digest.clone(),
                    blob_size: l.blob_size,
                    diff_id: Some(l.diff_id.clone()),
                    max_unpacked: Some(size.saturating_mul(MAX_EXPANSION).max(MIN_UNPACKED_LIMIT)),
                };
                ingest::ingest(store, BufReader::with_capacity(256 * 1024, f), &expect)
            })
            .with_context(|| format!("layer {}", l.name));
        match r {
            Ok(ing) => done.push((chain, ing)),
            Err(e) => {
                for (_, ing) in done {
                    ingest::discard(store, ing);
                }
                return Err(e);
            }
        }
    }
    Ok(done)
}

fn store_images(store: &Store, planned: Vec<Planned>) -> Result<Vec<String>> {
    // Garbage collection must not take our layers and blobs before the image
    // records that reference them exist.
    let gc = layers_gc_lock(store, Mode::Shared)?;
    let chains: Vec<Vec<String>> = planned
        .iter()
        .map(|p| {
            let mut parent: Option<String> = None;
            p.layers
                .iter()
                .map(|l| {
                    let c = layer_store::chain_id(parent.as_deref(), &l.diff_id);
                    parent = Some(c.clone());
                    c
                })
                .collect()
        })
        .collect();
    let mut seen = HashSet::new();
    let mut jobs = Vec::new();
    for (p, cs) in planned.iter().zip(&chains) {
        for (l, c) in p.layers.iter().zip(cs) {
            if !layer_store::exists(store, c) && seen.insert(c.clone()) {
                jobs.push((c.clone(), l.clone()));
            }
        }
    }
    let store_c = store.clone();
    let ingested = if jobs.is_empty() {
        Vec::new()
    } else {
        store.in_context(move || ingest_all(&store_c, jobs))?
    };
    let mut pending: HashMap<String, Ingested> = ingested.into_iter().collect();
    let mut new_records = Vec::new();
    let result = commit_images(store, &planned, &chains, &mut pending, &mut new_records);
    for (_, ing) in pending.drain() {
        ingest::discard(store, ing);
    }
    let ids = match result {
        Ok(ids) => ids,
        Err(e) => {
            drop(gc);
            undo(store, &new_records);
            return Err(e);
        }
    };
    drop(gc);
    let mut loaded = Vec::new();
    for (p, id) in planned.iter().zip(&ids) {
        for n in &p.names {
            image::set_name(store, n, id)?;
            loaded.push(n.clone());
        }
        if p.names.is_empty() {
            loaded.push(format!("sha256:{id}"));
        }
    }
    Ok(loaded)
}

/// Commits the layers bottom first and writes configs, manifests and image
/// records. Returns the image IDs; `new_records` gets those this load created.
fn commit_images(
    store: &Store,
    planned: &[Planned],
    chains: &[Vec<String>],
    pending: &mut HashMap<String, Ingested>,
    new_records: &mut Vec<String>,
) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for (p, cs) in planned.iter().zip(chains) {
        let mut records: Vec<LayerRecord> = Vec::new();
        let mut parent: Option<&str> = None;
        for (c, l) in cs.iter().zip(&p.layers) {
            let rec = match pending.remove(c) {
                Some(ing) => {
                    for w in &ing.warnings {
                        crate::output::warn(w);
                    }
                    ingest::commit(store, ing, parent)?
                }
                None => {
                    let rec =
                        layer_store::load(store, c)?.with_context(|| format!("layer {c} vanished from the store"))?;
                    keep_layer_blob(store, rec, l)?
                }
            };
            records.push(rec);
            parent = Some(c);
        }
        let config_digest = blobs::write_blob(store, &p.config)?;
        if config_digest != p.config_digest {
            bail!(
                "config digest mismatch: expected {}, got {config_digest}",
                p.config_digest
            );
        }
        let id = config_digest["sha256:".len()..].to_string();
        let existing = image::load(store, &id)?;
        let (manifest_digest, media_type) = match (&existing, &p.manifest) {
            // The image is here already (pulled, or loaded before): its
            // manifest stays; the load only adds names.
            (Some(e), _) if blobs::has_blob(store, &e.digest) => (e.digest.clone(), e.manifest_media_type.clone()),
            (_, Some((raw, mt))) => (blobs::write_blob(store, raw)?, mt.clone()),
            (_, None) => {
                let refs: Vec<&LayerRecord> = records.iter().collect();
                let m = oci_manifest(&config_digest, p.config.len() as u64, &refs)?;
                let bytes = m.to_string().context("encode manifest")?.into_bytes();
                (blobs::write_blob(store, &bytes)?, media::OCI_MANIFEST.to_string())
            }
        };
        let rec = ImageRecord {
            id: id.clone(),
            digest: manifest_digest,
            manifest_media_type: media_type,
            layers: cs.clone(),
            created: p.created,
            size: records.iter().map(|r| r.size).sum(),
            added: existing.as_ref().map(|e| e.added).unwrap_or_else(time::now_nanos),
            names: existing.as_ref().map(|e| e.names.clone()).unwrap_or_default(),
        };
        if existing.is_none() {
            new_records.push(id.clone());
        }
        image::save(store, &rec)?;
        ids.push(id);
    }
    Ok(ids)
}

/// An OCI layout's layer that the store already has (from another image),
/// compressed otherwise: the layout's manifest names the layout's blob, so
/// that blob is stored too, after checking that it holds the same tar, and
/// recorded as an alternate of the layer (as `push` records the blobs it
/// makes) so that garbage collection keeps it.
fn keep_layer_blob(store: &Store, rec: LayerRecord, l: &PlannedLayer) -> Result<LayerRecord> {
    let Some(want) = &l.blob_digest else { return Ok(rec) };
    let known = rec.blob.iter().chain(&rec.alternates).any(|b| &b.digest == want);
    if known && blobs::has_blob(store, want) {
        return Ok(rec);
    }
    let f = std::fs::File::open(&l.file).with_context(|| format!("open {}", l.file.display()))?;
    let mut out = blobs::BlobWriter::new(store)?;
    let tee = TeeReader {
        inner: f,
        out: &mut out,
    };
    let (dec, compression) = crate::layers::archive::decompress(BufReader::with_capacity(256 * 1024, tee))?;
    let mut hashed = crate::layers::archive::HashingReader::new(dec);
    std::io::copy(&mut hashed, &mut std::io::sink()).with_context(|| format!("read layer {}", l.name))?;
    let diff_id = hashed.digest();
    drop(hashed);
    if diff_id != rec.diff_id {
        bail!(
            "layer {}: uncompressed digest mismatch: expected {}, got {diff_id}",
            l.name,
            rec.diff_id
        );
    }
    if let Some(size) = l.blob_size
        && out.size() != size
    {
        bail!("layer {}: {} bytes where {size} were declared", l.name, out.size());
    }
    let size = out.size();
    let digest = out.commit(store, Some(want))?;
    let mut updated = rec.clone();
    if !known {
        updated.alternates.push(layer_store::BlobRef {
            digest,
            media_type: ingest::media_type_for(compression).into(),
            size,
        });
        let path = layer_store::layer_dir(store, &rec.chain_id)?.join("layer.json");
        record::write_json(&path, &updated, Durability::Durable)?;
    }
    Ok(updated)
}

/// Copies what is read into a blob writer.
struct TeeReader<'a, R> {
    inner: R,
    out: &'a mut blobs::BlobWriter,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        std::io::Write::write_all(self.out, &buf[..n])?;
        Ok(n)
    }
}

/// Removes the records a failed load made, then the layers and blobs nothing
/// references any more.
fn undo(store: &Store, new_records: &[String]) {
    for id in new_records {
        let _ = std::fs::remove_file(store.images_dir().join(format!("{id}.json")));
        let _ = std::fs::remove_file(store.images_dir().join(format!("{id}.lock")));
    }
    if let Err(e) = crate::image::remove::collect_garbage(store) {
        crate::output::warn(&format!("clean up after the failed load: {e:#}"));
    }
}
