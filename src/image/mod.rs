//! Images in the local store: records, the names index, and lookups.
//!
//! An image is an OCI manifest and config in the blob store plus a record
//! `ROOT/images/<id>.json` (id = hex of the config digest) that lists its
//! layers' chain IDs. Names live in `ROOT/image-names/` as symlinks to the ID,
//! so naming is one atomic rename and needs no lock.

pub mod archive;
pub mod blobs;
pub mod change;
pub mod create;
pub mod import;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod remote;
pub mod remove;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::store::lock::{Lock, Mode};
use crate::store::record::{self, Durability};
use crate::util::{ids, time};
use reference::Reference;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Hex of the config digest.
    pub id: String,
    /// Digest of the manifest.
    pub digest: String,
    pub manifest_media_type: String,
    /// Layer chain IDs, bottom first.
    pub layers: Vec<String>,
    /// From the config's `created`.
    pub created: time::Nanos,
    /// Sum of the unpacked layers' sizes.
    pub size: u64,
    /// When this store got the image.
    pub added: time::Nanos,
    /// Names in the order they were given (podman lists RepoTags so). The
    /// names index decides which of them still name this image.
    #[serde(default)]
    pub names: Vec<String>,
    /// `REPOSITORY@DIGEST` references the image was pulled by: a digest
    /// reference finds the image through these, and `images` shows the
    /// repository of an image that has no tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
}

impl ImageRecord {
    pub fn config_digest(&self) -> String {
        format!("sha256:{}", self.id)
    }

    /// podman's RepoDigests: `REPOSITORY@MANIFEST-DIGEST` for each name's
    /// repository, and each digest reference it was pulled by.
    pub fn repo_digests(&self, names: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for n in names {
            let repo = Reference::parse_local(n)
                .map(|r| r.repository())
                .unwrap_or_else(|_| n.clone());
            let d = format!("{repo}@{}", self.digest);
            if !out.contains(&d) {
                out.push(d);
            }
        }
        for d in &self.repo_digests {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }
}

/// The error for an unknown image; callers branch on it (`--ignore`).
#[derive(Debug)]
pub struct ImageNotFound(pub String);

impl std::fmt::Display for ImageNotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: image not known", self.0)
    }
}

impl std::error::Error for ImageNotFound {}

fn record_path(store: &Store, id: &str) -> Result<PathBuf> {
    if !ids::is_full_id(id) {
        bail!("invalid image ID {id:?}");
    }
    Ok(store.images_dir().join(format!("{id}.json")))
}

/// The lock a container creation holds shared and `rmi` holds exclusive.
pub fn lock(store: &Store, id: &str, mode: Mode) -> Result<Lock> {
    if !ids::is_full_id(id) {
        bail!("invalid image ID {id:?}");
    }
    Lock::acquire(
        &store.images_dir().join(format!("{id}.lock")),
        mode,
        Some(&format!("image {}", &id[..12])),
    )
}

pub fn load(store: &Store, id: &str) -> Result<Option<ImageRecord>> {
    record::read_json(&record_path(store, id)?)
}

pub fn save(store: &Store, rec: &ImageRecord) -> Result<()> {
    record::write_json(&record_path(store, &rec.id)?, rec, Durability::Durable)
}

/// Every image record; unreadable ones are reported and skipped.
pub fn list(store: &Store) -> Result<Vec<ImageRecord>> {
    let dir = store.images_dir();
    let mut v = Vec::new();
    for e in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".json") else { continue };
        if !ids::is_full_id(id) {
            continue;
        }
        match load(store, id) {
            Ok(Some(r)) => v.push(r),
            Ok(None) => {}
            Err(e) => crate::output::warn(&format!("{e:#}")),
        }
    }
    v.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(v)
}

/// A file name for a reference in the names index: '/' cannot appear in a
/// file name and '%' cannot appear in a reference, so it stands in.
fn escape(name: &str) -> String {
    name.replace('/', "%")
}

fn unescape(file: &str) -> String {
    file.replace('%', "/")
}

fn name_path(store: &Store, name: &str) -> PathBuf {
    store.image_names_dir().join(escape(name))
}

/// The image ID a full name points at, if any.
pub fn id_for_name(store: &Store, name: &str) -> Option<String> {
    let target = fs::read_link(name_path(store, name)).ok()?;
    let id = target.to_string_lossy().into_owned();
    ids::is_full_id(&id).then_some(id)
}

/// Points `name` (normalised) at image `id`, replacing whatever it named.
/// Returns the ID it named before, if another.
pub fn set_name(store: &Store, name: &str, id: &str) -> Result<Option<String>> {
    let previous = id_for_name(store, name);
    let path = name_path(store, name);
    let mut r = [0u8; 6];
    crate::sys::random_bytes(&mut r);
    let tmp = store.image_names_dir().join(format!(
        "{}{}-{}",
        record::TMP_PREFIX,
        crate::store::owner_pid(),
        ids::hex(&r)
    ));
    std::os::unix::fs::symlink(id, &tmp).with_context(|| format!("create {}", tmp.display()))?;
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("name image {name}"));
    }
    {
        let _lock = lock(store, id, Mode::Exclusive)?;
        if let Some(mut rec) = load(store, id)?
            && !rec.names.iter().any(|n| n == name)
        {
            rec.names.push(name.to_string());
            save(store, &rec)?;
        }
    }
    Ok(previous.filter(|p| p != id))
}

/// Removes a name; true if it existed.
pub fn remove_name(store: &Store, name: &str) -> Result<bool> {
    match fs::remove_file(name_path(store, name)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("remove name {name}")),
    }
}

/// Every name in the index, grouped by image ID, oldest first.
pub fn names_by_id(store: &Store) -> Result<BTreeMap<String, Vec<String>>> {
    let dir = store.image_names_dir();
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stamped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
        let e = e?;
        let file = e.file_name().to_string_lossy().into_owned();
        if file.starts_with(record::TMP_PREFIX) {
            continue;
        }
        if let Ok(t) = fs::read_link(e.path()) {
            let id = t.to_string_lossy().into_owned();
            if ids::is_full_id(&id) {
                stamped.entry(id).or_default().push(unescape(&file));
            }
        }
    }
    // In the order the names were given, as podman lists RepoTags.
    for (id, mut v) in stamped {
        v.sort();
        if v.len() > 1
            && let Ok(Some(rec)) = load(store, &id)
        {
            v.sort_by_key(|n| rec.names.iter().position(|x| x == n).unwrap_or(usize::MAX));
        }
        map.insert(id, v);
    }
    Ok(map)
}

pub fn names_of(store: &Store, id: &str) -> Result<Vec<String>> {
    Ok(names_by_id(store)?.remove(id).unwrap_or_default())
}

/// Finds an image by name (full, or short as podman matches it), full ID,
/// `sha256:` ID, or unique ID prefix.
pub fn resolve(store: &Store, query: &str) -> Result<ImageRecord> {
    resolve_named(store, query).map(|x| x.0)
}

/// [`resolve`], and the full name the query matched (None for an ID).
pub fn resolve_named(store: &Store, query: &str) -> Result<(ImageRecord, Option<String>)> {
    let not_found = || anyhow::Error::new(ImageNotFound(query.to_string()));
    if let Ok(r) = Reference::parse_local(query)
        && let Some(digest) = &r.digest
    {
        return find_by_digest(store, &r, digest)?
            .map(|rec| (rec, None))
            .ok_or_else(not_found);
    }
    if let Ok(r) = Reference::parse_local(query) {
        for cand in r.lookup_candidates() {
            if let Some(id) = id_for_name(store, &cand)
                && let Some(rec) = load(store, &id)?
            {
                return Ok((rec, Some(cand)));
            }
        }
        if r.short {
            // podman also matches a short name against the end of any stored
            // name: "app" finds "quay.io/team/app:latest".
            let want = format!(
                "/{}{}",
                r.path,
                r.tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default()
            );
            let mut found: Vec<(String, String)> = Vec::new();
            for (id, names) in names_by_id(store)? {
                for n in names {
                    if n.ends_with(&want) {
                        found.push((n, id.clone()));
                    }
                }
            }
            found.dedup_by(|a, b| a.1 == b.1);
            match found.len() {
                0 => {}
                1 => {
                    if let Some(rec) = load(store, &found[0].1)? {
                        return Ok((rec, Some(found[0].0.clone())));
                    }
                }
                _ => bail!(
                    "{query} is ambiguous: it matches {}",
                    found.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
    }
    let hex = query.strip_prefix("sha256:").unwrap_or(query);
    if ids::is_hex(hex) && hex.len() <= 64 {
        if hex.len() == 64 {
            return load(store, hex)?.map(|r| (r, None)).ok_or_else(not_found);
        }
        let mut matches = Vec::new();
        let dir = store.images_dir();
        for e in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json")
                && id.starts_with(hex)
                && ids::is_full_id(id)
            {
                matches.push(id.to_string());
            }
        }
        match matches.len() {
            0 => {}
            1 => return load(store, &matches[0])?.map(|r| (r, None)).ok_or_else(not_found),
            n => bail!("image ID prefix {hex} is ambiguous: {n} images match"),
        }
    }
    Err(not_found())
}

/// The image a digest reference (`REPO@sha256:...`) names: one whose
/// manifest has that digest and that was pulled by it or carries a name in
/// that repository. Digest references are rare, so this reads the records
/// rather than keeping another index.
fn find_by_digest(store: &Store, r: &Reference, digest: &str) -> Result<Option<ImageRecord>> {
    let repos: Vec<String> = r
        .lookup_candidates()
        .iter()
        .filter_map(|c| Reference::parse_local(c).ok())
        .map(|c| c.repository())
        .collect();
    let names = names_by_id(store)?;
    let dir = store.images_dir();
    let mut matching = Vec::new();
    for e in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
        let file = e?.file_name().to_string_lossy().into_owned();
        let Some(id) = file.strip_suffix(".json").filter(|id| ids::is_full_id(id)) else {
            continue;
        };
        if let Some(rec) = load(store, id)?
            && rec.digest == digest
        {
            matching.push(rec);
        }
    }
    // The first candidate repository that has one decides, as for names.
    for repo in &repos {
        let want = format!("{repo}@{digest}");
        for rec in &matching {
            let named = names.get(&rec.id).is_some_and(|ns| {
                ns.iter()
                    .any(|n| Reference::parse_local(n).is_ok_and(|x| &x.repository() == repo))
            });
            if named || rec.repo_digests.contains(&want) {
                return Ok(Some(rec.clone()));
            }
        }
    }
    Ok(None)
}

/// The image's config as JSON. The raw document is kept (not an oci-spec
/// struct) so fields oci-spec does not model, such as Docker's Healthcheck,
/// survive every read.
pub fn config(store: &Store, rec: &ImageRecord) -> Result<serde_json::Value> {
    let raw = blobs::read_blob(store, &rec.config_digest())?;
    serde_json::from_slice(&raw).with_context(|| format!("parse config of image {}", &rec.id[..12]))
}

/// The host's platform in OCI/Go spelling.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "arm" => "arm",
        other => other,
    }
}
