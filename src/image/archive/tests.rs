//! Round trips through the three formats, archives made by hand the way
//! docker, podman and skopeo write them, and hostile or corrupt archives that
//! must leave the store as it was.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tar::{EntryType, Header};

use super::*;
use crate::image::blobs::{self, digest_of};
use crate::image::import::{self, ImportOptions};
use crate::image::{self, ImageRecord};
use crate::layers::store as layer_store;
use crate::store::Store;

use crate::layers::testutil::open_store;

/// A tar in memory, entry by entry (hostile names included).
struct TarBuf {
    b: tar::Builder<Vec<u8>>,
}

impl TarBuf {
    fn new() -> Self {
        TarBuf {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        // set_path refuses "..": write the raw name as a hostile tool would.
        let raw = name.as_bytes();
        h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        self.b.append_data(&mut h, name, &b""[..]).unwrap();
        self
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        self.b.append_link(&mut h, name, target).unwrap();
        self
    }

    fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut t = TarBuf::new();
    for (n, d) in files {
        t.file(n, d.as_bytes());
    }
    t.finish()
}

fn config_for(layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest_of(l)).collect();
    json!({
        "created": "2024-05-01T10:00:00Z",
        "architecture": image::host_arch(),
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string()
    .into_bytes()
}

fn hex(d: &str) -> &str {
    &d["sha256:".len()..]
}

/// A docker-archive as docker (< 25) writes it: `<v1>/layer.tar` files,
/// configs named `<hex>.json`, short RepoTags.
fn docker_archive(images: &[(&[&str], &[&[u8]])]) -> Vec<u8> {
    let mut t = TarBuf::new();
    let mut manifest = Vec::new();
    let mut written = BTreeSet::new();
    for (tags, layers) in images {
        let mut names = Vec::new();
        for l in *layers {
            let d = digest_of(l);
            let name = format!("{}/layer.tar", &hex(&d)[..40]);
            if written.insert(name.clone()) {
                t.file(&name, l);
            }
            names.push(name);
        }
        let config = config_for(layers);
        let cname = format!("{}.json", hex(&digest_of(&config)));
        t.file(&cname, &config);
        manifest.push(json!({"Config": cname, "RepoTags": tags, "Layers": names}));
    }
    t.file("manifest.json", Value::Array(manifest).to_string().as_bytes());
    t.finish()
}

/// The ID (config hex) docker_archive gives an image of these layers.
fn id_of(layers: &[&[u8]]) -> String {
    hex(&digest_of(&config_for(layers))).to_string()
}

fn import_image(store: &Store, dir: &Path, name: &str, files: &[(&str, &str)]) -> ImageRecord {
    let p = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
    fs::write(&p, layer(files)).unwrap();
    let id = import::import(
        store,
        &ImportOptions {
            source: p.to_str().unwrap(),
            reference: Some(name),
            changes: &[],
            message: None,
        },
    )
    .unwrap();
    image::load(store, &id).unwrap().unwrap()
}

fn load_bytes(store: &Store, bytes: Vec<u8>) -> anyhow::Result<Vec<String>> {
    load(store, Box::new(Cursor::new(bytes)))
}

fn load_file(store: &Store, p: &Path) -> anyhow::Result<Vec<String>> {
    load(store, Box::new(fs::File::open(p).unwrap()))
}

/// Every path under the store root (locks included), to show a failed load changed nothing.
fn snapshot(store: &Store) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&store.root, &store.root, &mut out);
    out
}

fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(Cursor::new(bytes));
    let mut v = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        v.push((name, data));
    }
    v
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &entries
        .iter()
        .find(|e| e.0 == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

fn diff_ids(store: &Store, rec: &ImageRecord) -> Vec<String> {
    rec.layers
        .iter()
        .map(|c| layer_store::load(store, c).unwrap().unwrap().diff_id)
        .collect()
}

#[test]
fn docker_archive_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let a = open_store(&t.path().join("a"));
    let rec = import_image(&a, t.path(), "app:1", &[("etc/hello", "hi\n"), ("bin/x", "x")]);
    let out = t.path().join("app.tar");
    save(
        &a,
        &[(rec.clone(), Some("localhost/app:1".into()))],
        Format::DockerArchive,
        SaveTo::Path(out.clone()),
    )
    .unwrap();

    let bytes = fs::read(&out).unwrap();
    let entries = tar_entries(&bytes);
    let manifest: Value = serde_json::from_slice(entry(&entries, "manifest.json")).unwrap();
    let diff = &diff_ids(&a, &rec)[0];
    assert_eq!(
        manifest,
        json!([{"Config": format!("{}.json", rec.id), "RepoTags": ["localhost/app:1"],
                "Layers": [format!("{}.tar", hex(diff))]}])
    );
    // The layer is the uncompressed tar its diff ID names.
    assert_eq!(&digest_of(entry(&entries, &format!("{}.tar", hex(diff)))), diff);
    let repos: Value = serde_json::from_slice(entry(&entries, "repositories")).unwrap();
    assert!(repos["localhost/app"]["1"].is_string());

    let b = open_store(&t.path().join("b"));
    assert_eq!(load_file(&b, &out).unwrap(), ["localhost/app:1"]);
    let loaded = image::load(&b, &rec.id).unwrap().unwrap();
    assert_eq!(loaded.layers, rec.layers);
    assert_eq!(loaded.created, rec.created);
    assert_eq!(image::names_of(&b, &rec.id).unwrap(), ["localhost/app:1"]);
    assert!(
        layer_store::diff_dir(&b, &rec.layers[0])
            .unwrap()
            .join("etc/hello")
            .exists()
    );
    assert_eq!(fs::read_dir(b.tmp_dir()).unwrap().count(), 0, "the spool is removed");

    // The same image saved from the second store gives the same bytes.
    let again = t.path().join("again.tar");
    save(
        &b,
        &[(loaded, Some("localhost/app:1".into()))],
        Format::DockerArchive,
        SaveTo::Path(again.clone()),
    )
    .unwrap();
    assert_eq!(fs::read(&again).unwrap(), bytes);
}

#[test]
fn oci_archive_round_trip_keeps_every_digest() {
    let t = tempfile::tempdir().unwrap();
    let a = open_store(&t.path().join("a"));
    let rec = import_image(&a, t.path(), "quay.io/team/app:2", &[("f", "one")]);
    let out = t.path().join("app.oci.tar");
    save(
        &a,
        &[(rec.clone(), Some("quay.io/team/app:2".into()))],
        Format::OciArchive,
        SaveTo::Path(out.clone()),
    )
    .unwrap();
    let entries = tar_entries(&fs::read(&out).unwrap());
    let index: Value = serde_json::from_slice(entry(&entries, "index.json")).unwrap();
    assert_eq!(index["manifests"][0]["digest"], json!(rec.digest));
    assert_eq!(
        index["manifests"][0]["annotations"][media::REF_NAME],
        json!("quay.io/team/app:2")
    );
    assert_eq!(
        digest_of(entry(&entries, &format!("blobs/sha256/{}", hex(&rec.digest)))),
        rec.digest
    );

    let b = open_store(&t.path().join("b"));
    assert_eq!(load_file(&b, &out).unwrap(), ["quay.io/team/app:2"]);
    let loaded = image::load(&b, &rec.id).unwrap().unwrap();
    assert_eq!(loaded.digest, rec.digest);
    assert_eq!(loaded.layers, rec.layers);
    assert_eq!(loaded.manifest_media_type, rec.manifest_media_type);
}

#[test]
fn oci_dir_holds_the_stored_blobs() {
    let t = tempfile::tempdir().unwrap();
    let a = open_store(&t.path().join("a"));
    let rec = import_image(&a, t.path(), "app:3", &[("f", "three")]);
    let dir = t.path().join("layout");
    save(&a, &[(rec.clone(), None)], Format::OciDir, SaveTo::Path(dir.clone())).unwrap();
    let layout: Value = serde_json::from_slice(&fs::read(dir.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert!(
        index["manifests"][0].get("annotations").is_none(),
        "saved by ID: no name"
    );
    for d in [rec.digest.clone(), rec.config_digest()] {
        let blob = fs::read(dir.join("blobs/sha256").join(hex(&d))).unwrap();
        assert_eq!(digest_of(&blob), d);
    }
    // A second save into the same, now full, directory is refused.
    assert!(save(&a, &[(rec.clone(), None)], Format::OciDir, SaveTo::Path(dir.clone())).is_err());
    assert!(dir.join("index.json").exists());

    // The directory, archived, loads back: unnamed, so its ID is what is reported.
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", &dir).unwrap();
    let store_b = open_store(&t.path().join("b"));
    assert_eq!(
        load_bytes(&store_b, b.into_inner().unwrap()).unwrap(),
        [format!("sha256:{}", rec.id)]
    );
    assert_eq!(image::load(&store_b, &rec.id).unwrap().unwrap().digest, rec.digest);
    assert!(image::names_of(&store_b, &rec.id).unwrap().is_empty());
}

#[test]
fn several_images_in_one_docker_archive() {
    let t = tempfile::tempdir().unwrap();
    let a = open_store(&t.path().join("a"));
    let one = import_image(&a, t.path(), "one:1", &[("f", "1")]);
    let two = import_image(&a, t.path(), "two:2", &[("f", "2")]);
    image::set_name(&a, "docker.io/library/one:alias", &one.id).unwrap();
    let out = t.path().join("both.tar");
    save(
        &a,
        &[
            (one.clone(), Some("localhost/one:1".into())),
            (two.clone(), Some("localhost/two:2".into())),
            (one.clone(), Some("docker.io/library/one:alias".into())),
        ],
        Format::DockerArchive,
        SaveTo::Path(out.clone()),
    )
    .unwrap();
    let entries = tar_entries(&fs::read(&out).unwrap());
    let manifest: Value = serde_json::from_slice(entry(&entries, "manifest.json")).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 2, "one entry per image");
    assert_eq!(
        manifest[0]["RepoTags"],
        json!(["localhost/one:1", "docker.io/library/one:alias"])
    );

    let b = open_store(&t.path().join("b"));
    assert_eq!(
        load_file(&b, &out).unwrap(),
        ["localhost/one:1", "docker.io/library/one:alias", "localhost/two:2"]
    );
    assert_eq!(image::resolve(&b, "two:2").unwrap().id, two.id);
    assert_eq!(image::resolve(&b, "one:alias").unwrap().id, one.id);
    assert_eq!(image::list(&b).unwrap().len(), 2);
}

#[test]
fn docker_made_archive_with_shared_layers_and_short_names() {
    let base = layer(&[("etc/os-release", "base")]);
    let app1 = layer(&[("app/one", "1")]);
    let app2 = layer(&[("app/two", "2")]);
    let archive = docker_archive(&[
        (&["x:tag", "foo/bar:v6"], &[&base, &app1]),
        (&["quay.io/a/b:1"], &[&base, &app2]),
        (&[], &[&app2]),
    ]);
    let t = tempfile::tempdir().unwrap();
    let s = open_store(t.path());
    let loaded = load_bytes(&s, archive).unwrap();
    assert_eq!(
        loaded,
        [
            "docker.io/library/x:tag".to_string(),
            "docker.io/foo/bar:v6".into(),
            "quay.io/a/b:1".into(),
            format!("sha256:{}", id_of(&[&app2])),
        ]
    );
    let r1 = image::load(&s, &id_of(&[&base, &app1])).unwrap().unwrap();
    let r2 = image::load(&s, &id_of(&[&base, &app2])).unwrap().unwrap();
    assert_eq!(r1.layers[0], r2.layers[0], "the base layer is shared");
    assert_eq!(layer_store::list(&s).unwrap().len(), 4);
    // The manifest made for a docker-archive image lists the stored, uncompressed tars.
    let m: Value = serde_json::from_slice(&blobs::read_blob(&s, &r1.digest).unwrap()).unwrap();
    assert_eq!(m["layers"][1]["digest"], json!(digest_of(&app1)));
    assert_eq!(
        m["layers"][1]["mediaType"],
        json!("application/vnd.oci.image.layer.v1.tar")
    );
    assert_eq!(
        r1.created,
        crate::util::time::parse_rfc3339("2024-05-01T10:00:00Z").unwrap()
    );

    // Both images out again as one oci-archive, and into a fresh store.
    let out = t.path().join("two.oci.tar");
    save(
        &s,
        &[
            (r1.clone(), Some("docker.io/library/x:tag".into())),
            (r2.clone(), Some("quay.io/a/b:1".into())),
        ],
        Format::OciArchive,
        SaveTo::Path(out.clone()),
    )
    .unwrap();
    let s2 = open_store(&t.path().join("again"));
    assert_eq!(
        load_file(&s2, &out).unwrap(),
        ["docker.io/library/x:tag", "quay.io/a/b:1"]
    );
    assert_eq!(image::load(&s2, &r2.id).unwrap().unwrap().digest, r2.digest);
}

/// An OCI layout of one image: its layers as (tar, blob as stored, media type).
fn oci_layout(layers: &[(&[u8], Vec<u8>, &str)], ref_name: &str, created: &str) -> (Vec<u8>, String) {
    let tars: Vec<&[u8]> = layers.iter().map(|l| l.0).collect();
    let mut config: Value = serde_json::from_slice(&config_for(&tars)).unwrap();
    config["created"] = json!(created);
    let config = config.to_string().into_bytes();
    let descs: Vec<Value> = layers
        .iter()
        .map(|(_, b, mt)| json!({"mediaType": mt, "digest": digest_of(b), "size": b.len()}))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(&config), "size": config.len()},
        "layers": descs,
    })
    .to_string()
    .into_bytes();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": media::OCI_MANIFEST, "digest": digest_of(&manifest), "size": manifest.len(),
        "annotations": {media::REF_NAME: ref_name}}]});
    let mut t = TarBuf::new();
    t.dir("blobs").dir("blobs/sha256");
    for b in layers.iter().map(|l| &l.1).chain([&config, &manifest]) {
        t.file(&format!("blobs/sha256/{}", hex(&digest_of(b))), b);
    }
    t.file("oci-layout", br#"{"imageLayoutVersion": "1.0.0"}"#);
    t.file("index.json", index.to_string().as_bytes());
    (t.finish(), digest_of(&manifest))
}

/// An OCI layout with a zstd layer, named as skopeo's `oci:DIR:v5` names it.
fn oci_layout_zstd() -> (Vec<u8>, Vec<u8>, String) {
    let tar = layer(&[("z/file", "zstd content")]);
    let blob = zstd::encode_all(&tar[..], 3).unwrap();
    let (layout, manifest) = oci_layout(
        &[(&tar, blob, "application/vnd.oci.image.layer.v1.tar+zstd")],
        "v5",
        "2024-05-01T10:00:00Z",
    );
    (layout, tar, manifest)
}

#[test]
fn a_known_layer_compressed_otherwise_keeps_the_layout_blob() {
    let tar = layer(&[("shared", "same tar, two blobs")]);
    let t = tempfile::tempdir().unwrap();
    let s = open_store(t.path());
    // The layer arrives first uncompressed, in a docker-archive...
    load_bytes(&s, docker_archive(&[(&["first:1"], &[&tar])])).unwrap();
    // ...then gzip-compressed in an OCI layout, as another image.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let (layout, manifest) = oci_layout(
        &[(&tar, gz.clone(), "application/vnd.oci.image.layer.v1.tar+gzip")],
        "second:1",
        "2024-06-01T00:00:00Z",
    );
    assert_eq!(load_bytes(&s, layout).unwrap(), ["localhost/second:1"]);
    let second = image::resolve(&s, "second:1").unwrap();
    assert_eq!(second.digest, manifest);
    let l = layer_store::load(&s, &second.layers[0]).unwrap().unwrap();
    assert_eq!(l.alternates[0].digest, digest_of(&gz));

    // Garbage collection after the first image goes keeps the gzip blob.
    let first = image::resolve(&s, "docker.io/library/first:1").unwrap();
    crate::image::remove::remove_image(&s, &first, None, false).unwrap();
    assert!(blobs::has_blob(&s, &digest_of(&gz)));
    let out = t.path().join("second.tar");
    save(&s, &[(second, None)], Format::OciArchive, SaveTo::Path(out.clone())).unwrap();
    let entries = tar_entries(&fs::read(&out).unwrap());
    assert_eq!(
        entry(&entries, &format!("blobs/sha256/{}", hex(&digest_of(&gz)))),
        &gz[..]
    );
}

#[test]
fn zstd_oci_layer_goes_out_uncompressed_in_a_docker_archive() {
    let (layout, tar, manifest_digest) = oci_layout_zstd();
    let t = tempfile::tempdir().unwrap();
    let s = open_store(t.path());
    assert_eq!(load_bytes(&s, layout).unwrap(), ["localhost/v5:latest"]);
    let rec = image::resolve(&s, "v5").unwrap();
    assert_eq!(rec.digest, manifest_digest, "the manifest is stored as it was");

    let out = t.path().join("d.tar");
    save(
        &s,
        &[(rec.clone(), Some("localhost/v5:latest".into()))],
        Format::DockerArchive,
        SaveTo::Path(out.clone()),
    )
    .unwrap();
    let entries = tar_entries(&fs::read(&out).unwrap());
    assert_eq!(entry(&entries, &format!("{}.tar", hex(&digest_of(&tar)))), &tar[..]);
    assert_eq!(
        fs::read_dir(s.tmp_dir()).unwrap().count(),
        0,
        "the decompressed copy is removed"
    );
}

#[test]
fn compressed_archives_load() {
    let l = layer(&[("c", "compressed")]);
    let archive = docker_archive(&[(&["gz:1"], &[&l])]);
    let t = tempfile::tempdir().unwrap();

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&archive).unwrap();
    let s = open_store(&t.path().join("gz"));
    assert_eq!(
        load_bytes(&s, gz.finish().unwrap()).unwrap(),
        ["docker.io/library/gz:1"]
    );

    let s = open_store(&t.path().join("zst"));
    let zst = zstd::encode_all(&archive[..], 3).unwrap();
    assert_eq!(load_bytes(&s, zst).unwrap(), ["docker.io/library/gz:1"]);
}

/// A store with one image in it, and its snapshot.
fn store_with_image(dir: &Path) -> (Store, BTreeSet<PathBuf>) {
    let s = open_store(&dir.join("s"));
    import_image(&s, dir, "present:1", &[("p", "present")]);
    let snap = snapshot(&s);
    (s, snap)
}

#[test]
fn diff_id_mismatch_is_refused_and_leaves_nothing() {
    let good = layer(&[("g", "good")]);
    let claimed = layer(&[("g", "what the config says")]);
    // The second image's layer file does not hold what its config's diff ID says.
    let mut t = TarBuf::new();
    let c1 = config_for(&[&good]);
    let c2 = config_for(&[&claimed]);
    t.file("good.tar", &good);
    t.file("bad.tar", &layer(&[("g", "tampered")]));
    t.file(&format!("{}.json", hex(&digest_of(&c1))), &c1);
    t.file(&format!("{}.json", hex(&digest_of(&c2))), &c2);
    let manifest = json!([
        {"Config": format!("{}.json", hex(&digest_of(&c1))), "RepoTags": ["ok:1"], "Layers": ["good.tar"]},
        {"Config": format!("{}.json", hex(&digest_of(&c2))), "RepoTags": ["bad:1"], "Layers": ["bad.tar"]},
    ]);
    t.file("manifest.json", manifest.to_string().as_bytes());

    let dir = tempfile::tempdir().unwrap();
    let (s, before) = store_with_image(dir.path());
    let err = load_bytes(&s, t.finish()).unwrap_err();
    assert!(format!("{err:#}").contains("uncompressed digest mismatch"), "{err:#}");
    assert_eq!(snapshot(&s), before);
}

#[test]
fn config_not_matching_its_name_is_refused() {
    let l = layer(&[("f", "x")]);
    let c = config_for(&[&l]);
    let mut t = TarBuf::new();
    t.file("l.tar", &l);
    let wrong = format!("{}.json", "0".repeat(64));
    t.file(&wrong, &c);
    t.file(
        "manifest.json",
        json!([{"Config": wrong, "RepoTags": ["c:1"], "Layers": ["l.tar"]}])
            .to_string()
            .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let (s, before) = store_with_image(dir.path());
    let err = load_bytes(&s, t.finish()).unwrap_err();
    assert!(format!("{err:#}").contains("digest mismatch"), "{err:#}");
    assert_eq!(snapshot(&s), before);
}

#[test]
fn oci_blob_digest_mismatch_is_refused() {
    let (layout, _, _) = oci_layout_zstd();
    // Corrupt the layer blob's bytes, keeping its name and size.
    let mut entries = tar_entries(&layout);
    let first = entries
        .iter_mut()
        .find(|e| e.0.starts_with("blobs/sha256/") && e.1.len() > 4)
        .unwrap();
    let last = first.1.len() - 1;
    first.1[last] ^= 0xff;
    let mut t = TarBuf::new();
    for (n, d) in &entries {
        t.file(n, d);
    }
    let dir = tempfile::tempdir().unwrap();
    let (s, before) = store_with_image(dir.path());
    assert!(load_bytes(&s, t.finish()).is_err());
    assert_eq!(snapshot(&s), before);
}

#[test]
fn hostile_archives_are_refused() {
    let l = layer(&[("f", "x")]);
    let c = config_for(&[&l]);
    let cname = format!("{}.json", hex(&digest_of(&c)));
    let manifest = json!([{"Config": cname, "RepoTags": ["h:1"], "Layers": ["l.tar"]}]).to_string();
    let dir = tempfile::tempdir().unwrap();
    let (s, before) = store_with_image(dir.path());

    // An entry that climbs out.
    let mut t = TarBuf::new();
    t.file("../x", b"escape")
        .file("l.tar", &l)
        .file(&cname, &c)
        .file("manifest.json", manifest.as_bytes());
    let err = load_bytes(&s, t.finish()).unwrap_err();
    assert!(format!("{err:#}").contains("leading out"), "{err:#}");

    // An absolute name.
    let mut t = TarBuf::new();
    t.file("/tmp/x", b"abs").file("manifest.json", manifest.as_bytes());
    assert!(load_bytes(&s, t.finish()).is_err());

    // manifest.json as a symlink to a host file, and to a file inside.
    let mut t = TarBuf::new();
    t.file("l.tar", &l)
        .file(&cname, &c)
        .symlink("manifest.json", "/etc/passwd");
    assert!(load_bytes(&s, t.finish()).is_err());
    let mut t = TarBuf::new();
    t.file("l.tar", &l)
        .file(&cname, &c)
        .file("m.json", manifest.as_bytes())
        .symlink("manifest.json", "m.json");
    let err = load_bytes(&s, t.finish()).unwrap_err();
    assert!(format!("{err:#}").contains("is a link"), "{err:#}");

    // A layer reached through a symlink that leaves the archive.
    let mut t = TarBuf::new();
    t.file(&cname, &c)
        .symlink("l.tar", "../../../etc/passwd")
        .file("manifest.json", manifest.as_bytes());
    assert!(load_bytes(&s, t.finish()).is_err());

    // manifest.json naming a layer outside the archive.
    let evil = json!([{"Config": cname, "RepoTags": ["h:1"], "Layers": ["../../etc/passwd"]}]).to_string();
    let mut t = TarBuf::new();
    t.file(&cname, &c).file("manifest.json", evil.as_bytes());
    assert!(load_bytes(&s, t.finish()).is_err());

    // Not an archive at all.
    assert!(load_bytes(&s, b"hello, not a tar".to_vec()).is_err());
    assert!(load_bytes(&s, Vec::new()).is_err());

    assert_eq!(snapshot(&s), before);
}

#[test]
fn podman_style_legacy_symlinks_are_followed_inside_the_archive() {
    // podman writes <v1>/layer.tar as a symlink to ../<diff>.tar; a
    // manifest.json naming the symlink must still load.
    let l = layer(&[("f", "legacy")]);
    let c = config_for(&[&l]);
    let cname = format!("{}.json", hex(&digest_of(&c)));
    let lname = format!("{}.tar", hex(&digest_of(&l)));
    let mut t = TarBuf::new();
    t.file(&lname, &l)
        .symlink("abc/layer.tar", &format!("../{lname}"))
        .file(&cname, &c);
    t.file(
        "manifest.json",
        json!([{"Config": cname, "RepoTags": ["localhost/legacy:1"], "Layers": ["abc/layer.tar"]}])
            .to_string()
            .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let s = open_store(dir.path());
    assert_eq!(load_bytes(&s, t.finish()).unwrap(), ["localhost/legacy:1"]);
}

#[test]
fn loading_twice_keeps_one_image_and_adds_names() {
    let l = layer(&[("f", "twice")]);
    let t = tempfile::tempdir().unwrap();
    let s = open_store(t.path());
    load_bytes(&s, docker_archive(&[(&["a:1"], &[&l])])).unwrap();
    load_bytes(&s, docker_archive(&[(&["b:1"], &[&l])])).unwrap();
    let id = id_of(&[&l]);
    assert_eq!(image::list(&s).unwrap().len(), 1);
    assert_eq!(
        image::names_of(&s, &id).unwrap(),
        ["docker.io/library/a:1", "docker.io/library/b:1"]
    );
}

#[test]
fn formats_parse() {
    assert_eq!(Format::parse("docker-archive").unwrap(), Format::DockerArchive);
    assert_eq!(Format::parse("oci-archive").unwrap(), Format::OciArchive);
    assert_eq!(Format::parse("oci-dir").unwrap(), Format::OciDir);
    assert!(Format::parse("docker-dir").is_err());
}

#[test]
fn failed_save_leaves_no_file() {
    let t = tempfile::tempdir().unwrap();
    let s = open_store(t.path());
    let mut rec = import_image(&s, t.path(), "gone:1", &[("f", "gone")]);
    // A record whose manifest blob is missing cannot be saved.
    rec.digest = format!("sha256:{}", "1".repeat(64));
    let out = t.path().join("out.tar");
    assert!(save(&s, &[(rec, None)], Format::OciArchive, SaveTo::Path(out.clone())).is_err());
    assert!(!out.exists());
    let leftovers: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(crate::store::record::TMP_PREFIX)
        })
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn docker_25_archive_reads_manifest_json_over_its_oci_layout() {
    // docker 25 writes an OCI layout (ref.name = the tag only) and a
    // manifest.json whose Config and Layers point into blobs/sha256/.
    let l = layer(&[("d25", "docker 25")]);
    let (mut layout_entries, blob_name_of) = {
        let (layout, _) = oci_layout(
            &[(&l, l.clone(), "application/vnd.oci.image.layer.v1.tar")],
            "latest",
            "2024-05-01T10:00:00Z",
        );
        (tar_entries(&layout), |d: &str| format!("blobs/sha256/{}", hex(d)))
    };
    let config = layout_entries
        .iter()
        .find(|(n, d)| {
            n.starts_with("blobs/") && serde_json::from_slice::<Value>(d).is_ok_and(|v| v.get("rootfs").is_some())
        })
        .map(|(_, d)| d.clone())
        .unwrap();
    let manifest = json!([{"Config": blob_name_of(&digest_of(&config)), "RepoTags": ["web:2"],
                           "Layers": [blob_name_of(&digest_of(&l))]}]);
    layout_entries.push(("manifest.json".into(), manifest.to_string().into_bytes()));
    let mut t = TarBuf::new();
    for (n, d) in &layout_entries {
        if !n.ends_with('/') {
            t.file(n, d);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let s = open_store(dir.path());
    assert_eq!(load_bytes(&s, t.finish()).unwrap(), ["docker.io/library/web:2"]);
    assert_eq!(image::resolve(&s, "web:2").unwrap().id, hex(&digest_of(&config)));
}
