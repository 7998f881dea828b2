//! `pull`: an image from a registry into the store.
//!
//! The manifest (and, for a manifest list, the entry for the wanted platform)
//! and the config are fetched and verified first. Then every layer not yet in
//! the store is fetched concurrently, each in one pass through
//! [`ingest`](crate::layers::ingest): the bytes are stored as a blob, hashed,
//! decompressed, hashed again and unpacked as they arrive, and nothing is
//! committed unless both digests check out. A dropped connection resumes
//! with a Range request under that pipeline. Layers are committed bottom
//! first (a layer's chain ID depends on its parent's). Rootless, the fetching
//! runs as root of a user namespace so files keep their owners.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::image::progress::Progress;
use crate::image::reference::Reference;
use crate::image::remote::Remote;
use crate::image::{self, ImageRecord, blobs};
use crate::layers::ingest::{self, Expect, Ingested};
use crate::layers::store as layer_store;
use crate::registry::client::{Client, Fetched};
use crate::registry::manifest::{self, Descriptor, ImageManifest, Parsed, Platform};
use crate::store::Store;
use crate::store::lock::Mode;
use crate::util::time;

/// How many layers are fetched at once, unless containers.conf's
/// `[engine] image_parallel_copies` says otherwise.
pub const PARALLEL_LAYERS: usize = 4;

/// `image_parallel_copies` from containers.conf, as podman reads it:
/// $CONTAINERS_CONF alone when set, else the user's file over the system's.
/// 0 or absent means the default.
pub fn parallel_copies() -> usize {
    let files: Vec<std::path::PathBuf> = match std::env::var_os("CONTAINERS_CONF") {
        Some(f) => vec![f.into()],
        None => {
            let mut v = vec![std::path::PathBuf::from("/etc/containers/containers.conf")];
            let config_home = std::env::var_os("XDG_CONFIG_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".config")));
            if let Some(c) = config_home {
                v.push(c.join("containers/containers.conf"));
            }
            v
        }
    };
    let mut n = 0;
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        match text.parse::<toml::Table>() {
            Ok(t) => {
                if let Some(v) = t
                    .get("engine")
                    .and_then(|e| e.get("image_parallel_copies"))
                    .and_then(|v| v.as_integer())
                {
                    n = v.clamp(0, 64) as usize;
                }
            }
            Err(e) => crate::output::warn(&format!("{}: {e}", f.display())),
        }
    }
    if n == 0 { PARALLEL_LAYERS } else { n }
}

/// A layer may unpack to at most this many times its compressed size (plus a
/// floor): beyond it, it is a decompression bomb.
const MAX_EXPANSION: u64 = 2000;
const MIN_UNPACKED_LIMIT: u64 = 1 << 30;

pub struct PullOptions<'a> {
    pub remote: &'a Remote,
    pub platform: Platform,
    pub progress: &'a dyn Progress,
}

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The full name it is stored under.
    pub name: String,
    pub id: String,
}

/// Pulls `name` (a short name is tried against each search registry in
/// turn) and returns what was stored.
pub fn pull(store: &Store, name: &str, opts: &PullOptions) -> Result<Pulled> {
    opts.remote.first_found(name, |cand| {
        opts.progress.message(&format!("Trying to pull {cand}..."));
        pull_reference(store, cand, opts)
    })
}

/// Pulls one fully qualified reference.
pub fn pull_reference(store: &Store, r: &Reference, opts: &PullOptions) -> Result<Pulled> {
    layer_store::clean_stale_tmp(store);
    let client = opts.remote.client_for_pull(r)?;
    let repo = client.repository().to_string();
    let fetched = client.get_manifest(&repo, &r.tag_or_digest(), manifest::ACCEPT)?;
    let (fetched, m) = resolve_platform(&client, &repo, fetched, &opts.platform)?;

    // The config: small, verified, and the image's identity.
    let config_bytes = fetch_config(&client, &repo, &m.config, manifest::MAX_CONFIG)?;
    let config: Value = serde_json::from_slice(&config_bytes).with_context(|| format!("{r}: invalid image config"))?;
    serde_json::from_slice::<oci_spec::image::ImageConfiguration>(&config_bytes)
        .with_context(|| format!("{r}: the image config is not a valid OCI configuration"))?;
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if diff_ids.len() != m.layers.len() {
        bail!(
            "{r}: the manifest lists {} layers and the config {}",
            m.layers.len(),
            diff_ids.len()
        );
    }
    for d in &diff_ids {
        crate::image::reference::validate_digest(d).with_context(|| format!("{r}: config diff ID"))?;
    }
    let id = m.config.digest["sha256:".len()..].to_string();
    let full_name = r.to_string();

    let gc = super::import::layers_gc_lock(store, Mode::Shared)?;
    let mut chain = Vec::with_capacity(diff_ids.len());
    let mut parent: Option<String> = None;
    for d in &diff_ids {
        let c = layer_store::chain_id(parent.as_deref(), d);
        parent = Some(c.clone());
        chain.push(c);
    }
    // Layers the store lacks, by position.
    let missing: Vec<usize> = (0..chain.len())
        .filter(|&i| !layer_store::exists(store, &chain[i]))
        .collect();
    for (i, l) in m.layers.iter().enumerate() {
        if !missing.contains(&i) {
            opts.progress.blob_done(&l.digest, true);
        }
    }
    let jobs: Vec<(usize, Descriptor, String)> = missing
        .iter()
        .map(|&i| (i, m.layers[i].clone(), diff_ids[i].clone()))
        .collect();
    let store_c = store.clone();
    let fetched_layers: Vec<(usize, Ingested)> = if jobs.is_empty() {
        Vec::new()
    } else {
        store.in_context(move || fetch_layers(&store_c, &client, &repo, jobs, opts.progress))?
    };
    // Commit bottom first; a failure discards what is left.
    let mut by_index: Vec<Option<Ingested>> = (0..chain.len()).map(|_| None).collect();
    for (i, ing) in fetched_layers {
        by_index[i] = Some(ing);
    }
    let mut size = 0;
    let mut parent: Option<String> = None;
    for i in 0..chain.len() {
        if let Some(ing) = by_index[i].take() {
            for w in &ing.warnings {
                crate::output::warn(w);
            }
            let rec = match ingest::commit(store, ing, parent.as_deref()) {
                Ok(rec) => rec,
                Err(e) => {
                    for rest in by_index.iter_mut().filter_map(Option::take) {
                        ingest::discard(store, rest);
                    }
                    return Err(e);
                }
            };
            size += rec.size;
        } else if let Some(rec) = layer_store::load(store, &chain[i])? {
            size += rec.size;
        }
        parent = Some(chain[i].clone());
    }

    opts.progress.message(&format!("Copying config {}", &id[..12]));
    let config_digest = blobs::write_blob(store, &config_bytes)?;
    if config_digest != m.config.digest {
        bail!(
            "{r}: config digest mismatch: expected {}, got {config_digest}",
            m.config.digest
        );
    }
    opts.progress.message("Writing manifest to image destination");
    let manifest_digest = blobs::write_blob(store, &fetched.bytes)?;
    let created = config["created"]
        .as_str()
        .and_then(|c| time::parse_rfc3339(c).ok())
        .unwrap_or(0);
    let existing = image::load(store, &id)?;
    let rec = ImageRecord {
        id: id.clone(),
        digest: manifest_digest,
        manifest_media_type: fetched.media_type.clone(),
        layers: chain,
        created,
        size,
        added: existing.as_ref().map(|e| e.added).unwrap_or_else(time::now_nanos),
        names: existing.as_ref().map(|e| e.names.clone()).unwrap_or_default(),
        repo_digests: {
            let mut v = existing.map(|e| e.repo_digests).unwrap_or_default();
            if r.digest.is_some() {
                let d = format!("{}@{}", r.repository(), r.digest.as_deref().unwrap_or_default());
                if !v.contains(&d) {
                    v.push(d);
                }
            }
            v
        },
    };
    image::save(store, &rec)?;
    drop(gc);
    // A digest reference names nothing; a tag names the image.
    if r.digest.is_none() {
        image::set_name(store, &full_name, &id)?;
    }
    Ok(Pulled { name: full_name, id })
}

/// The image manifest `fetched` is, or, for a manifest list, the one of the
/// wanted platform (fetched and checked against the list's digest).
fn resolve_platform(
    client: &Client,
    repo: &str,
    fetched: Fetched,
    want: &Platform,
) -> Result<(Fetched, ImageManifest)> {
    match manifest::parse(&fetched.bytes, &fetched.media_type)? {
        Parsed::Image(m) => Ok((fetched, m)),
        Parsed::Index(index) => {
            let d = manifest::select(&index, want)?;
            let inner = client.get_manifest(repo, &d.digest, manifest::ACCEPT)?;
            if inner.digest != d.digest {
                bail!("manifest digest mismatch: expected {}, got {}", d.digest, inner.digest);
            }
            match manifest::parse(&inner.bytes, &inner.media_type)? {
                Parsed::Image(m) => Ok((inner, m)),
                Parsed::Index(_) => bail!("the platform's manifest is itself a list"),
            }
        }
    }
}

/// A small blob (the config), read whole with a size limit and verified.
fn fetch_config(client: &Client, repo: &str, d: &Descriptor, limit: u64) -> Result<Vec<u8>> {
    if d.size > limit {
        bail!(
            "the image config {} is {} bytes, over the {limit}-byte limit",
            d.digest,
            d.size
        );
    }
    let mut body = client.get_blob(repo, &d.digest, 0)?.take(limit + 1);
    let mut data = Vec::with_capacity(d.size as usize);
    body.read_to_end(&mut data)
        .with_context(|| format!("read blob {}", d.digest))?;
    if data.len() as u64 > limit {
        bail!("the image config {} is over the {limit}-byte limit", d.digest);
    }
    let got = blobs::digest_of(&data);
    if got != d.digest {
        bail!("blob digest mismatch: expected {}, got {got}", d.digest);
    }
    Ok(data)
}

/// Fetches and takes in layers, several at once. Runs in the store's context.
fn fetch_layers(
    store: &Store,
    client: &Client,
    repo: &str,
    jobs: Vec<(usize, Descriptor, String)>,
    progress: &dyn Progress,
) -> Result<Vec<(usize, Ingested)>> {
    let queue = Mutex::new(jobs.into_iter().collect::<VecDeque<_>>());
    let done: Mutex<Vec<(usize, Ingested)>> = Mutex::new(Vec::new());
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let workers = parallel_copies().min(queue.lock().map(|q| q.len()).unwrap_or(1)).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    let Some((i, d, diff_id)) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                        return;
                    };
                    progress.blob_start(&d.digest, d.size);
                    match fetch_layer(store, client, repo, &d, &diff_id, progress) {
                        Ok(ing) => {
                            progress.blob_done(&d.digest, false);
                            if let Ok(mut v) = done.lock() {
                                v.push((i, ing));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failed.lock() {
                                f.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    let done = done.into_inner().unwrap_or_default();
    if let Some(e) = failed.into_inner().ok().flatten() {
        for (_, ing) in done {
            ingest::discard(store, ing);
        }
        return Err(e);
    }
    Ok(done)
}

fn fetch_layer(
    store: &Store,
    client: &Client,
    repo: &str,
    d: &Descriptor,
    diff_id: &str,
    progress: &dyn Progress,
) -> Result<Ingested> {
    let body = client.get_blob(repo, &d.digest, 0)?;
    let reader = Resuming {
        client,
        repo,
        digest: &d.digest,
        received: 0,
        inner: body,
        retries: 0,
        progress,
    };
    let expect = Expect {
        blob_digest: Some(d.digest.clone()),
        blob_size: Some(d.size),
        diff_id: Some(diff_id.to_string()),
        max_unpacked: Some((d.size.saturating_mul(MAX_EXPANSION)).max(MIN_UNPACKED_LIMIT)),
    };
    ingest::ingest(store, io::BufReader::with_capacity(256 * 1024, reader), &expect)
        .with_context(|| format!("layer {}", d.digest))
}

/// A blob body that, when the connection breaks, asks again from where it
/// stopped (Range), so the single-pass pipeline above never notices.
struct Resuming<'a> {
    client: &'a Client,
    repo: &'a str,
    digest: &'a str,
    received: u64,
    inner: Box<dyn Read + Send>,
    retries: u32,
    progress: &'a dyn Progress,
}

const MAX_RETRIES: u32 = 3;

impl Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.received += n as u64;
                    self.progress.blob_advance(self.digest, n as u64);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A server that stalled once gets one more chance, not three:
                // each wait is a whole idle timeout.
                Err(e) if timed_out(&e) && self.retries >= 1 => return Err(e),
                Err(e) if self.retries < MAX_RETRIES && transient(&e) => {
                    self.retries += 1;
                    crate::output::debug(|| {
                        format!(
                            "blob {}: {e} ({:?}); resuming at byte {}",
                            self.digest,
                            e.kind(),
                            self.received
                        )
                    });
                    std::thread::sleep(Duration::from_millis(200 * u64::from(self.retries)));
                    match self.client.get_blob(self.repo, self.digest, self.received) {
                        Ok(body) => self.inner = body,
                        Err(again) => return Err(io::Error::other(format!("{e}; resuming failed: {again:#}"))),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A read that waited a whole idle timeout (ureq reports it as "timeout: ...").
fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) || e.to_string().starts_with("timeout")
}

/// Errors worth another try: the connection, not the data.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::TimedOut
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::Other
    )
}
