//! `save`: images from the store into a docker-archive, an oci-archive or an
//! OCI layout directory. Every blob is checked to be in the store before the
//! first byte is written; a file is written beside its destination and
//! renamed into place, a directory removed again on failure.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::{Format, SaveTo, media};
use crate::image::blobs::{self, BlobWriter};
use crate::image::reference::Reference;
use crate::image::{ImageRecord, import::layers_gc_lock};
use crate::layers::archive::{Compression, decompress};
use crate::layers::store::{self as layer_store, LayerRecord};
use crate::store::Store;
use crate::store::lock::Mode;
use crate::store::record::TMP_PREFIX;
use crate::util::ids;

/// Writes the images (each under the name the user asked for, if any) to
/// `out`. The same image asked for twice is written once with both names.
pub fn save(store: &Store, images: &[(ImageRecord, Option<String>)], format: Format, out: SaveTo) -> Result<()> {
    if images.is_empty() {
        bail!("no image to save");
    }
    let groups = group(images)?;
    // Keep rmi's garbage collection off the blobs while we read them.
    let _gc = layers_gc_lock(store, Mode::Shared)?;
    match format {
        Format::DockerArchive => {
            let plan = plan_docker(store, &groups)?;
            write_archive(out, |w| write_docker(store, &plan, w))
        }
        Format::OciArchive => {
            let plan = plan_oci(store, &groups)?;
            write_archive(out, |w| write_oci_archive(store, &plan, w))
        }
        Format::OciDir => {
            let plan = plan_oci(store, &groups)?;
            match out {
                SaveTo::Path(p) => write_oci_dir(store, &plan, &p),
                SaveTo::Writer(_) => bail!("oci-dir writes a directory: give its path"),
            }
        }
    }
}

/// One image and the names to write it under, in the order asked.
struct Group<'a> {
    rec: &'a ImageRecord,
    names: Vec<Reference>,
}

fn group(images: &[(ImageRecord, Option<String>)]) -> Result<Vec<Group<'_>>> {
    let mut groups: Vec<Group> = Vec::new();
    for (rec, name) in images {
        let name = name
            .as_deref()
            .map(|n| Reference::parse_local(n).with_context(|| format!("save image {}", &rec.id[..12])))
            .transpose()?;
        let g = match groups.iter_mut().position(|g| g.rec.id == rec.id) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Group { rec, names: Vec::new() });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        if let Some(n) = name
            && !g.names.contains(&n)
        {
            g.names.push(n);
        }
    }
    Ok(groups)
}

/// Writes an archive to a file (via a temp file renamed into place) or a stream.
fn write_archive(out: SaveTo, f: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    match out {
        SaveTo::Writer(mut w) => {
            f(&mut w)?;
            w.flush().context("flush the archive")
        }
        SaveTo::Path(path) => {
            let special = fs::metadata(&path)
                .map(|m| !m.is_file() && !m.is_dir())
                .unwrap_or(false);
            if special {
                // /dev/stdout, a fifo: write straight into it.
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .with_context(|| format!("open {}", path.display()))?;
                let mut w = BufWriter::with_capacity(256 * 1024, file);
                f(&mut w)?;
                return w.flush().with_context(|| format!("write {}", path.display()));
            }
            let tmp = TempFile::beside(&path)?;
            let file = File::create_new(&tmp.0).with_context(|| format!("create {}", tmp.0.display()))?;
            let mut w = BufWriter::with_capacity(256 * 1024, file);
            f(&mut w)?;
            let file = w
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("write {}", path.display()))?;
            file.sync_all().with_context(|| format!("sync {}", tmp.0.display()))?;
            fs::rename(&tmp.0, &path).with_context(|| format!("rename to {}", path.display()))?;
            std::mem::forget(tmp);
            Ok(())
        }
    }
}

/// A temp file that is removed unless forgotten.
struct TempFile(PathBuf);

impl TempFile {
    fn beside(path: &Path) -> Result<TempFile> {
        let file = path
            .file_name()
            .with_context(|| format!("{} is not a file name", path.display()))?;
        let mut r = [0u8; 6];
        crate::sys::random_bytes(&mut r);
        let name = format!(
            "{TMP_PREFIX}{}-{}-{}",
            std::process::id(),
            ids::hex(&r),
            file.to_string_lossy()
        );
        Ok(TempFile(path.with_file_name(name)))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn header(kind: EntryType, size: u64) -> Header {
    // As podman writes them: read-only, root's, at the epoch.
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == EntryType::Symlink { 0o777 } else { 0o444 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_bytes(b: &mut tar::Builder<&mut dyn Write>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = header(EntryType::Regular, data.len() as u64);
    b.append_data(&mut h, name, data)
        .with_context(|| format!("write {name}"))
}

fn append_file(b: &mut tar::Builder<&mut dyn Write>, name: &str, path: &Path) -> Result<()> {
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let size = f.metadata().with_context(|| format!("stat {}", path.display()))?.len();
    let mut h = header(EntryType::Regular, size);
    // take(): a file that grew meanwhile must not overrun its header's size.
    b.append_data(&mut h, name, io::BufReader::with_capacity(256 * 1024, f).take(size))
        .with_context(|| format!("write {name}"))
}

// ---------------------------------------------------------------- docker-archive

struct DockerImage {
    config: Vec<u8>,
    id: String,
    layers: Vec<LayerRecord>,
    tags: Vec<Reference>,
}

fn plan_docker(store: &Store, groups: &[Group]) -> Result<Vec<DockerImage>> {
    let mut out = Vec::new();
    for g in groups {
        let config = blobs::read_blob(store, &g.rec.config_digest())?;
        let mut layers = Vec::new();
        for c in &g.rec.layers {
            let l = layer_store::load(store, c)?
                .with_context(|| format!("image {}: layer {c} is missing from the store", &g.rec.id[..12]))?;
            let b = l.blob.as_ref().with_context(|| format!("layer {c} has no blob"))?;
            if !blobs::has_blob(store, &b.digest) {
                bail!(
                    "image {}: blob {} of layer {c} is missing from the store",
                    &g.rec.id[..12],
                    b.digest
                );
            }
            layers.push(l);
        }
        out.push(DockerImage {
            config,
            id: g.rec.id.clone(),
            layers,
            // RepoTags hold tags only.
            tags: g.names.iter().filter(|n| n.digest.is_none()).cloned().collect(),
        });
    }
    Ok(out)
}

/// The legacy (docker 1.9) layer ID podman and docker write beside the
/// layers; only its uniqueness matters to readers.
fn v1_id(parent: Option<&str>, diff_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent.unwrap_or("").as_bytes());
    h.update(b" ");
    h.update(diff_id.as_bytes());
    ids::hex(&h.finalize())
}

fn write_docker(store: &Store, plan: &[DockerImage], w: &mut dyn Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    let mut written: HashSet<String> = HashSet::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for img in plan {
        let mut layer_names = Vec::new();
        let mut parent_v1: Option<String> = None;
        for l in &img.layers {
            let hex = &l.diff_id["sha256:".len()..];
            let name = format!("{hex}.tar");
            if written.insert(name.clone()) {
                append_layer(store, &mut b, &name, l)?;
            }
            let v1 = v1_id(parent_v1.as_deref(), &l.diff_id);
            if written.insert(v1.clone()) {
                append_bytes(&mut b, &format!("{v1}/VERSION"), b"1.0")?;
                let mut j = json!({"id": v1, "created": "1970-01-01T00:00:00Z"});
                if let Some(p) = &parent_v1 {
                    j["parent"] = json!(p);
                }
                append_bytes(&mut b, &format!("{v1}/json"), j.to_string().as_bytes())?;
                let mut h = header(EntryType::Symlink, 0);
                b.append_link(&mut h, format!("{v1}/layer.tar"), format!("../{name}"))
                    .with_context(|| format!("write {v1}/layer.tar"))?;
            }
            parent_v1 = Some(v1);
            layer_names.push(name);
        }
        let config_name = format!("{}.json", img.id);
        if written.insert(config_name.clone()) {
            append_bytes(&mut b, &config_name, &img.config)?;
        }
        for t in &img.tags {
            if let (Some(top), Some(tag)) = (&parent_v1, &t.tag) {
                repositories
                    .entry(t.repository())
                    .or_default()
                    .insert(tag.clone(), top.clone());
            }
        }
        manifest.push(json!({
            "Config": config_name,
            "RepoTags": img.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            "Layers": layer_names,
        }));
    }
    append_bytes(&mut b, "manifest.json", Value::Array(manifest).to_string().as_bytes())?;
    append_bytes(&mut b, "repositories", serde_json::to_string(&repositories)?.as_bytes())?;
    b.into_inner()
        .context("finish the archive")?
        .flush()
        .context("flush the archive")
}

/// Writes a layer as an uncompressed tar: the stored blob itself when it is
/// one, else the blob decompressed into the store's temp space first (the
/// tar header needs the size) and checked against the diff ID.
fn append_layer(store: &Store, b: &mut tar::Builder<&mut dyn Write>, name: &str, l: &LayerRecord) -> Result<()> {
    let blob = l
        .blob
        .as_ref()
        .with_context(|| format!("layer {} has no blob", l.chain_id))?;
    let path = blobs::blob_path(store, &blob.digest)?;
    let f = File::open(&path).with_context(|| format!("open blob {}", blob.digest))?;
    let (mut dec, compression) = decompress(f).with_context(|| format!("read blob {}", blob.digest))?;
    if compression == Compression::None {
        drop(dec);
        return append_file(b, name, &path);
    }
    let mut tmp = BlobWriter::new(store)?;
    io::copy(&mut dec, &mut tmp).with_context(|| format!("decompress blob {}", blob.digest))?;
    if tmp.digest() != l.diff_id {
        bail!(
            "layer {}: the stored blob decompresses to {}, not its diff ID {}",
            l.chain_id,
            tmp.digest(),
            l.diff_id
        );
    }
    let kept = TempFile(tmp.keep()?);
    append_file(b, name, &kept.0)
}

// ---------------------------------------------------------------- OCI layout

struct OciPlan {
    /// Every blob to write, each once: digest and size.
    blobs: Vec<(String, u64)>,
    /// index.json's entries.
    index: Vec<Value>,
}

fn plan_oci(store: &Store, groups: &[Group]) -> Result<OciPlan> {
    let mut blobs_out: Vec<(String, u64)> = Vec::new();
    let mut seen = HashSet::new();
    let mut index = Vec::new();
    for g in groups {
        let raw = blobs::read_blob(store, &g.rec.digest)?;
        let m: Value =
            serde_json::from_slice(&raw).with_context(|| format!("parse the manifest of image {}", &g.rec.id[..12]))?;
        let mut digests = vec![g.rec.digest.clone()];
        digests.extend(m["config"]["digest"].as_str().map(String::from));
        for l in m["layers"].as_array().map(Vec::as_slice).unwrap_or_default() {
            digests.extend(l["digest"].as_str().map(String::from));
        }
        for d in digests {
            if !seen.insert(d.clone()) {
                continue;
            }
            let p = blobs::blob_path(store, &d)?;
            let size = fs::metadata(&p)
                .with_context(|| format!("image {}: blob {d} is missing from the store", &g.rec.id[..12]))?
                .len();
            blobs_out.push((d, size));
        }
        let descriptor = |name: Option<&Reference>| {
            let mut d = json!({
                "mediaType": g.rec.manifest_media_type,
                "digest": g.rec.digest,
                "size": raw.len(),
            });
            if let Some(n) = name {
                // The full name, as podman writes it (skopeo's oci:DIR:TAG writes TAG).
                d["annotations"] = json!({ media::REF_NAME: n.to_string() });
            }
            d
        };
        if g.names.is_empty() {
            index.push(descriptor(None));
        }
        for n in &g.names {
            index.push(descriptor(Some(n)));
        }
    }
    Ok(OciPlan {
        blobs: blobs_out,
        index,
    })
}

fn index_json(plan: &OciPlan) -> Vec<u8> {
    json!({"schemaVersion": 2, "manifests": plan.index})
        .to_string()
        .into_bytes()
}

fn layout_json() -> Vec<u8> {
    json!({"imageLayoutVersion": media::OCI_LAYOUT_VERSION})
        .to_string()
        .into_bytes()
}

fn write_oci_archive(store: &Store, plan: &OciPlan, w: &mut dyn Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    append_bytes(&mut b, media::OCI_LAYOUT_FILE, &layout_json())?;
    append_bytes(&mut b, "index.json", &index_json(plan))?;
    for (d, _) in &plan.blobs {
        let hex = &d["sha256:".len()..];
        append_file(&mut b, &format!("blobs/sha256/{hex}"), &blobs::blob_path(store, d)?)?;
    }
    b.into_inner()
        .context("finish the archive")?
        .flush()
        .context("flush the archive")
}

fn write_oci_dir(store: &Store, plan: &OciPlan, dir: &Path) -> Result<()> {
    let created = match fs::create_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let md = fs::symlink_metadata(dir).with_context(|| format!("stat {}", dir.display()))?;
            if !md.is_dir() {
                bail!("{} exists and is not a directory", dir.display());
            }
            if fs::read_dir(dir)
                .with_context(|| format!("read {}", dir.display()))?
                .next()
                .is_some()
            {
                bail!(
                    "{} is not empty: oci-dir writes into a new or empty directory",
                    dir.display()
                );
            }
            false
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
    };
    let r = fill_oci_dir(store, plan, dir);
    if r.is_err() {
        if created {
            let _ = layer_store::remove_all(dir);
        } else {
            for n in ["blobs", media::OCI_LAYOUT_FILE, "index.json"] {
                let p = dir.join(n);
                let _ = if p.is_dir() {
                    layer_store::remove_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
    r
}

fn fill_oci_dir(store: &Store, plan: &OciPlan, dir: &Path) -> Result<()> {
    let blob_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blob_dir).with_context(|| format!("create {}", blob_dir.display()))?;
    for (d, _) in &plan.blobs {
        let dest = blob_dir.join(&d["sha256:".len()..]);
        fs::copy(blobs::blob_path(store, d)?, &dest).with_context(|| format!("write {}", dest.display()))?;
    }
    let write = |name: &str, data: &[u8]| {
        let p = dir.join(name);
        fs::write(&p, data).with_context(|| format!("write {}", p.display()))
    };
    write(media::OCI_LAYOUT_FILE, &layout_json())?;
    // Last: a layout with an index.json is complete.
    write("index.json", &index_json(plan))
}
