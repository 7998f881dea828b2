//! Tests for the registry verbs: `pull`, `push`, `login`, `logout`, `save`,
//! `load`, `manifest inspect` and `run --pull`, against a real registry
//! (Debian's docker-registry, started by each test on 127.0.0.1: plain HTTP,
//! or TLS with a generated CA and htpasswd authentication), against skopeo as
//! the other implementation, and against a small hostile server for what a
//! real registry never serves. Expected behaviour is podman 4.3.1's (and
//! skopeo 1.9's, which shares its image library).
//!
//! Every test makes its own registry and images, so none depends on another
//! or on the network. Images are small: the harness's busybox rootfs and a
//! few hand-made layers.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

mod hostile;
mod oci;
mod server;

use hostile::{Bearer, Hostile, Reply, blob_path, manifest_path};
use oci::{Entry, Image, Layer, busybox_layer, decompress, hex, raw_tar, read_layout, sha256};
use server::{Registry, SystemCertsD, must_run};

/// Plain HTTP (and unverified TLS) for this call.
const TLS_OFF: &str = "--tls-verify=false";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A second, empty store of the same kind as `env` (root or rootless).
fn fresh_like(env: &TestEnv) -> TestEnv {
    if env.is_rootless() {
        TestEnv::rootless()
    } else {
        TestEnv::root()
    }
}

/// The bare 64-hex ID from `sha256:<hex>` (or the hex itself).
fn bare(id: &str) -> String {
    id.trim().strip_prefix("sha256:").unwrap_or(id.trim()).to_string()
}

/// `image inspect --format {{.Id}} NAME`.
#[track_caller]
fn image_id(env: &TestEnv, name: &str) -> String {
    env.casco(["image", "inspect", "--format", "{{.Id}}", name])
        .run()
        .success()
        .stdout_trim()
        .to_string()
}

/// `image inspect NAME`, its one element.
#[track_caller]
fn inspect_image(env: &TestEnv, name: &str) -> Value {
    let out = env.casco(["image", "inspect", name]).run().success();
    match out.json().as_array().map(Vec::as_slice) {
        Some([one]) => one.clone(),
        _ => panic!("{}", out.report("expected a JSON array of one image")),
    }
}

/// The last line of a pull's stdout: podman prints the image ID there.
#[track_caller]
fn pulled_id(out: &Output) -> String {
    let last = out.stdout.lines().last().unwrap_or_default().trim().to_string();
    assert!(
        is_hex(&last, 64),
        "{}",
        out.report("expected the image ID (64 hex) as the last line of stdout")
    );
    last
}

/// `run --rm IMAGE sh -c SCRIPT`; asserts success and returns stdout.
#[track_caller]
fn run_sh(env: &TestEnv, image: &str, script: &str) -> String {
    env.casco(["run", "--rm", image, "sh", "-c", script])
        .run()
        .success()
        .stdout
}

/// Asserts that stderr (lowercased) contains one of `words`.
#[track_caller]
fn assert_mentions(out: &Output, words: &[&str], what: &str) {
    let err = out.stderr.to_lowercase();
    assert!(
        words.iter().any(|w| err.contains(&w.to_lowercase())),
        "{}",
        out.report(&format!("{what}: expected stderr to mention one of {words:?}"))
    );
}

/// A registries.conf in the test dir (readable by the env's user).
fn registries_conf(env: &TestEnv, body: &str) -> PathBuf {
    env.write_file("registries.conf", body)
}

/// A registries.conf that searches `reg` for short names and marks it insecure
/// (plain HTTP), so commands without `--tls-verify` (run, create) reach it.
fn insecure_conf(env: &TestEnv, host: &str) -> PathBuf {
    registries_conf(
        env,
        &format!(
            "unqualified-search-registries = [\"{host}\"]\n\n[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"
        ),
    )
}

/// A private, empty XDG_RUNTIME_DIR for the env's user (mode 0700): where
/// the default auth.json goes without touching the host's.
fn private_runtime_dir(env: &TestEnv, rel: &str) -> PathBuf {
    let d = env.mkdir(rel);
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// Every path under the store root except lock files, relative, sorted.
fn store_listing(env: &TestEnv) -> Vec<String> {
    listing(&env.store_root(), &[])
}

/// Every path under `base` (relative, sorted) except lock files and what is
/// under the top-level entries named in `skip`.
fn listing(base: &Path, skip: &[&str]) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, skip: &[&str], out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
            if dir == base && skip.contains(&rel.as_str()) {
                continue;
            }
            if !rel.ends_with(".lock") {
                out.push(rel);
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, skip, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(base, base, skip, &mut out);
    out.sort();
    out
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

/// A URL query with its %XX escapes (and `+` for space) decoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) => {
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What an auth file stores for `host` ("user:password"), if anything.
fn stored_login(auth_file: &Path, host: &str) -> Option<String> {
    let text = fs::read_to_string(auth_file).ok()?;
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}):\n{text}", auth_file.display()));
    let auth = v["auths"][host]["auth"].as_str()?;
    Some(String::from_utf8_lossy(&unbase64(auth)?).into_owned())
}

/// The entries (path → bytes) of an uncompressed tar archive.
fn tar_entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in a.entries().expect("read tar entries") {
        let mut e = e.expect("read a tar entry");
        let name = String::from_utf8_lossy(&e.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("read a tar entry's data");
        out.push((name, data));
    }
    out
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d.as_slice())
        .unwrap_or_else(|| {
            panic!(
                "no {name} in the archive; it holds {:?}",
                entries.iter().map(|(n, _)| n).collect::<Vec<_>>()
            )
        })
}

/// A docker-archive's manifest.json entries and the archive's files.
fn docker_archive(path: &Path) -> (Vec<Value>, Vec<(String, Vec<u8>)>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let entries = tar_entries(&bytes);
    let manifest: Value = serde_json::from_slice(entry(&entries, "manifest.json")).expect("manifest.json is JSON");
    let list = manifest
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("manifest.json is not an array: {manifest}"));
    (list, entries)
}

/// Checks a docker-archive image entry: its config hashes to `id`, and each
/// layer file is a plain or gzip tar (what `docker load` reads: never zstd)
/// whose content matches the config's diff ID.
#[track_caller]
fn check_docker_archive_image(entries: &[(String, Vec<u8>)], item: &Value, id: &str) {
    let config_name = item["Config"].as_str().unwrap_or_else(|| panic!("no Config in {item}"));
    let config_bytes = entry(entries, config_name);
    assert_eq!(
        hex(&sha256(config_bytes)),
        id,
        "the archive's config {config_name} is not the image's"
    );
    let config: Value = serde_json::from_slice(config_bytes).expect("config is JSON");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    let layers = item["Layers"].as_array().cloned().unwrap_or_default();
    assert_eq!(layers.len(), diff_ids.len(), "Layers vs diff_ids in {item}");
    for (layer, diff) in layers.iter().zip(&diff_ids) {
        let name = layer.as_str().unwrap_or_default();
        let data = entry(entries, name);
        assert!(
            !data.starts_with(oci::ZSTD_MAGIC),
            "{name} is zstd: docker load cannot read it"
        );
        assert_eq!(
            Some(sha256(&decompress(data)).as_str()),
            diff.as_str(),
            "{name} does not match its diff ID"
        );
    }
}

/// Pushes the busybox image (with `label`) to `dest` with skopeo; returns it.
fn skopeo_busybox(reg: &Registry, env: &TestEnv, label: &str, dest: &str) -> Image {
    let img = Image::busybox(label);
    reg.push_image(&img, env.dir(), dest);
    img
}

// ---------------------------------------------------------------------------
// Harness checks (no casco verb needed)
// ---------------------------------------------------------------------------

/// The helpers themselves: a plain and a TLS registry start and take an image
/// from skopeo, http_push stores exact bytes, base64 round-trips.
#[test]
fn registry_helpers_work() {
    require_root_for_registry();
    assert_eq!(base64(b"casco:s3cret"), "Y2FzY286czNjcmV0");
    assert_eq!(unbase64("Y2FzY286czNjcmV0").as_deref(), Some(&b"casco:s3cret"[..]));
    assert_eq!(base64(b"ab"), "YWI=");
    let scratch = tempfile::tempdir().unwrap();
    let plain = Registry::start_plain();
    let img = Image::busybox("helpers");
    plain.push_image(&img, scratch.path(), "h/bb:v1");
    assert_eq!(sha256(&plain.raw_config("h/bb:v1")), img.config_digest());
    let zimg = Image::new(
        oci_arch(),
        vec![Layer::zstd(&raw_tar(&[Entry::file("z", "z")]))],
        &["sh"],
        "z",
    );
    plain.http_push(&zimg, "h/z", "v1");
    assert_eq!(plain.raw_manifest("h/z:v1"), zimg.manifest);
    let tls = Registry::start_tls_auth("u", "p");
    tls.push_image(&img, scratch.path(), "h/bb:v1");
    assert_eq!(sha256(&tls.raw_config("h/bb:v1")), img.config_digest());
}

fn require_root_for_registry() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the registry tests run as root (rootless ones switch to the casco-test user): run them as root after \
         `bash .ci/setup`, as CI does"
    );
}

// ---------------------------------------------------------------------------
// Push and pull
// ---------------------------------------------------------------------------

both! {
    /// podman 4.3.1: `push` of an imported image to another name, then `pull`
    /// of it into an empty store, gives the same image (same config digest,
    /// so the same ID) and it runs. `--digestfile` gets the manifest's digest
    /// as the registry has it; pushing again (every blob already there) and
    /// pushing a name with no destination (to the name itself) work too.
    fn push_then_pull_round_trip(env) {
        let reg = Registry::start_plain();
        let id = bare(&env.import_busybox("bb"));
        let digestfile = env.path("digest");
        env.casco(["push", TLS_OFF, "--digestfile", digestfile.to_str().unwrap(), "bb", &reg.image("rt/bb:v1")])
            .run()
            .success();
        let pushed = fs::read_to_string(&digestfile).unwrap_or_else(|e| panic!("--digestfile was not written: {e}"));
        assert_eq!(pushed.trim(), sha256(&reg.raw_manifest("rt/bb:v1")), "--digestfile vs the registry's manifest");
        assert_eq!(bare(&sha256(&reg.raw_config("rt/bb:v1"))), id, "the pushed config is not the image's");
        env.casco(["push", TLS_OFF, "bb", &reg.image("rt/bb:v1")]).run().success();
        env.casco(["tag", "bb", &reg.image("rt/named:v2")]).run().success();
        env.casco(["push", TLS_OFF, &reg.image("rt/named:v2")]).run().success();
        assert_eq!(bare(&sha256(&reg.raw_config("rt/named:v2"))), id);

        let other = fresh_like(&env);
        let out = other.casco(["pull", TLS_OFF, &reg.image("rt/bb:v1")]).run().success();
        assert_eq!(pulled_id(&out), id);
        assert_eq!(image_id(&other, &reg.image("rt/bb:v1")), id);
        assert_eq!(run_sh(&other, &reg.image("rt/bb:v1"), "cat /etc/passwd"), BUSYBOX_PASSWD);
    }
}

/// A layer over the client's 16 MiB chunk size goes up in chunks (PATCH with
/// Content-Range, then PUT) to the real registry; a push to another
/// repository of the same registry mounts the blob from the one the store
/// knows has it instead of uploading it again; both pull back as the same
/// image.
#[test]
fn big_layers_go_in_chunks_and_blobs_mount_across_repositories() {
    let env = TestEnv::root();
    let reg = Registry::start_plain();
    let tar = raw_tar(&[Entry::file("big", noise(20 << 20, 7)), Entry::file("small", "x\n")]);
    let tar_path = env.path("big.tar");
    fs::write(&tar_path, &tar).unwrap();
    let id = bare(
        env.casco(["import", tar_path.to_str().unwrap(), "big"])
            .run()
            .success()
            .stdout_trim(),
    );
    let first = reg.image("one/big:v1");
    env.casco(["tag", "big", &first]).run().success();
    let out = env
        .casco(["--log-level", "debug", "push", TLS_OFF, &first])
        .run()
        .success();
    assert!(
        out.stderr.contains("in chunks"),
        "{}",
        out.report("a 20 MiB layer was not uploaded in chunks")
    );
    let second = reg.image("two/big:v1");
    let out = env
        .casco(["--log-level", "debug", "push", TLS_OFF, "big", &second])
        .run()
        .success();
    assert!(
        out.stderr.contains("mounted from one/big"),
        "{}",
        out.report("the layer was not mounted from one/big")
    );
    assert!(
        !out.stderr.contains("in chunks"),
        "{}",
        out.report("the layer was uploaded again")
    );
    for name in [&first, &second] {
        let other = fresh_like(&env);
        assert_eq!(pulled_id(&other.casco(["pull", TLS_OFF, name]).run().success()), id);
    }
}

both! {
    /// An image skopeo pushed (from an OCI layout the test wrote, so every
    /// digest is known): `pull` prints its ID last on stdout, the ID is the
    /// config digest, the name and the repo digest are recorded as podman
    /// does (RepoTags, RepoDigests), and the image runs, default command
    /// included.
    fn pull_of_an_image_skopeo_pushed(env) {
        let reg = Registry::start_plain();
        let img = Image::busybox_with("skopeo", &[("etc/motd", "pushed by skopeo\n")]);
        reg.push_image(&img, env.dir(), "sk/bb:v1");
        let manifest_digest = sha256(&reg.raw_manifest("sk/bb:v1"));
        let name = reg.image("sk/bb:v1");
        let out = env.casco(["pull", TLS_OFF, &name]).run().success();
        assert_eq!(pulled_id(&out), img.id());
        let inspect = inspect_image(&env, &name);
        assert_eq!(inspect["Id"], json!(img.id()));
        assert_eq!(inspect["RepoTags"], json!([name]));
        let repo_digest = format!("{}@{manifest_digest}", reg.image("sk/bb"));
        assert!(
            inspect["RepoDigests"].as_array().is_some_and(|d| d.contains(&json!(repo_digest))),
            "RepoDigests lacks {repo_digest}: {}",
            inspect["RepoDigests"]
        );
        assert_eq!(inspect["Architecture"], json!(oci_arch()));
        assert_eq!(inspect["Labels"]["casco.test"], json!("skopeo"));
        assert_eq!(run_sh(&env, &name, "cat /etc/motd"), "pushed by skopeo\n");
        // The config's Cmd is sh; with stdin at /dev/null it exits 0.
        env.casco(["run", "--rm", &name]).run().success();
    }
}

/// podman 4.3.1: `pull -q` prints the image ID and nothing else: no progress
/// on stderr.
#[test]
fn pull_quiet_prints_only_the_id() {
    let env = TestEnv::root();
    let reg = Registry::start_plain();
    let img = skopeo_busybox(&reg, &env, "quiet", "q/bb:v1");
    let out = env
        .casco(["pull", "-q", TLS_OFF, &reg.image("q/bb:v1")])
        .run()
        .success();
    assert_eq!(
        out.stdout,
        format!("{}\n", img.id()),
        "{}",
        out.report("pull -q must print only the ID")
    );
    assert_eq!(out.stderr, "", "{}", out.report("pull -q must print nothing on stderr"));
}

/// skopeo reads what casco pushed: the config it fetches is the image's, a
/// full `skopeo copy` to an OCI layout verifies every blob, and each layer
/// decompresses to its diff ID. `push --format v2s2` writes a Docker schema2
/// manifest; `--compression-format zstd` writes zstd layers skopeo can copy.
#[test]
fn skopeo_reads_what_casco_pushed() {
    let env = TestEnv::root();
    let reg = Registry::start_plain();
    let id = bare(&env.import_busybox("bb"));
    let check = |reference: &str, id: &str, layer_type: &str, manifest_type: &str| {
        let raw = reg.raw_manifest(reference);
        let manifest: Value = serde_json::from_slice(&raw).expect("manifest is JSON");
        // mediaType is optional in an OCI manifest (podman leaves it out), required in schema2.
        let mt = &manifest["mediaType"];
        assert!(
            *mt == json!(manifest_type) || (mt.is_null() && manifest_type == oci::MT_OCI_MANIFEST),
            "{reference}: expected a {manifest_type} manifest: {manifest}"
        );
        assert_eq!(
            manifest["config"]["digest"],
            json!(format!("sha256:{id}")),
            "{reference}: {manifest}"
        );
        assert_eq!(
            bare(&sha256(&reg.raw_config(reference))),
            id,
            "{reference}: skopeo's config"
        );
        for l in manifest["layers"].as_array().unwrap() {
            assert_eq!(l["mediaType"], json!(layer_type), "{reference}: {manifest}");
        }
        let layout = env.path(&format!("copy-{}", reference.replace(['/', ':'], "-")));
        reg.skopeo_pull(reference, &format!("oci:{}:t", layout.display()));
        let (m, config) = read_layout(&layout, Some("t"));
        let diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
        let layers = m["layers"].as_array().cloned().unwrap_or_default();
        assert_eq!(layers.len(), diff_ids.len(), "{reference}");
        for (l, d) in layers.iter().zip(&diff_ids) {
            let blob = oci::layout_blob(&layout, l["digest"].as_str().unwrap());
            assert_eq!(
                Some(sha256(&decompress(&blob)).as_str()),
                d.as_str(),
                "{reference}: layer vs diff ID"
            );
        }
    };
    env.casco(["push", TLS_OFF, "bb", &reg.image("cs/bb:v1")])
        .run()
        .success();
    check("cs/bb:v1", &id, oci::MT_LAYER_GZIP, oci::MT_OCI_MANIFEST);
    env.casco(["push", TLS_OFF, "--format", "v2s2", "bb", &reg.image("cs/bb:v2s2")])
        .run()
        .success();
    check(
        "cs/bb:v2s2",
        &id,
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.distribution.manifest.v2+json",
    );
    // zstd from a second store, whose image was never pushed as gzip: no
    // gzip copy of its layers to reuse (podman 4.3.1 reuses one over the flag).
    let second = TestEnv::root();
    let id2 = bare(&second.import_busybox("bb"));
    second
        .casco([
            "push",
            TLS_OFF,
            "--compression-format",
            "zstd",
            "bb",
            &reg.image("cs/bb:zstd"),
        ])
        .run()
        .success();
    check("cs/bb:zstd", &id2, oci::MT_LAYER_ZSTD, oci::MT_OCI_MANIFEST);
}

both! {
    /// A four-layer image with whiteouts and an opaque directory (layers written
    /// by hand, pushed by skopeo), checked in a running container: whited-out
    /// files and directories are gone, a file whited out and then added again
    /// is back, the opaque directory shows only its own layer's entries, and
    /// no `.wh.` name is visible anywhere.
    fn whiteouts_and_opaque_dirs_in_a_pulled_image(env) {
        let reg = Registry::start_plain();
        let l1 = raw_tar(&[
            Entry::dir("data/"),
            Entry::file("data/keep", "keep\n"),
            Entry::file("data/gone", "gone\n"),
            Entry::dir("data/dir/"),
            Entry::file("data/dir/a", "a\n"),
            Entry::file("data/dir/b", "b\n"),
            Entry::dir("opq/"),
            Entry::file("opq/old1", "old\n"),
            Entry::dir("opq/sub/"),
            Entry::file("opq/sub/old2", "old\n"),
            Entry::file("etc/removed", "x\n"),
        ]);
        let l2 = raw_tar(&[
            Entry::dir("data/"),
            Entry::whiteout("data/gone"),
            Entry::whiteout("data/dir"),
            Entry::file("data/added", "added\n"),
            Entry::dir("opq/"),
            Entry::opaque("opq"),
            Entry::file("opq/new", "new\n"),
            Entry::dir("etc/"),
            Entry::whiteout("etc/removed"),
        ]);
        let l3 = raw_tar(&[Entry::dir("data/"), Entry::file("data/gone", "back\n")]);
        let img = Image::new(
            oci_arch(),
            vec![busybox_layer(), Layer::gzip(&l1), Layer::gzip(&l2), Layer::gzip(&l3)],
            &["sh"],
            "whiteouts",
        );
        reg.push_image(&img, env.dir(), "wh/bb:v1");
        let name = reg.image("wh/bb:v1");
        let out = env.casco(["pull", TLS_OFF, &name]).run().success();
        assert_eq!(pulled_id(&out), img.id());
        let got = run_sh(
            &env,
            &name,
            "echo data: $(ls -A /data); echo opq: $(ls -A /opq); cat /data/keep /data/gone; \
             test -e /data/dir && echo dir-still-there; test -e /etc/removed && echo removed-still-there; \
             test -e /etc/passwd || echo passwd-missing; echo wh: $(find / -xdev -name '.wh.*')",
        );
        assert_eq!(got, "data: added gone keep\nopq: new\nkeep\nback\nwh:\n", "what the container sees");
        assert_eq!(inspect_image(&env, &name)["RootFS"]["Layers"].as_array().map(Vec::len), Some(4));
    }
}

both! {
    /// What a pulled layer's entries keep: setuid and setgid bits stay; a
    /// device node is created as root, and rootless (where it cannot be) is
    /// skipped with a notice naming it, the pull still succeeding.
    fn pulled_layers_keep_setuid_bits_and_skip_devices_rootless(env) {
        let reg = Registry::start_plain();
        let extra = raw_tar(&[
            Entry::file_mode("suid", 0o4755, "#!/bin/sh\n"),
            Entry::file_mode("sgid", 0o2755, "#!/bin/sh\n"),
            Entry::chardev("devnode", 1, 3),
        ]);
        let img = Image::new(oci_arch(), vec![busybox_layer(), Layer::gzip(&extra)], &["sh"], "modes");
        reg.http_push(&img, "md/bb", "v1");
        let name = reg.image("md/bb:v1");
        let out = env.casco(["pull", TLS_OFF, &name]).run().success();
        assert_eq!(pulled_id(&out), img.id());
        let got = run_sh(&env, &name, "stat -c '%a %n' /suid /sgid; test -c /devnode && echo devnode; true");
        if env.is_rootless() {
            assert_eq!(got, "4755 /suid\n2755 /sgid\n", "what the container sees");
            assert_mentions(&out, &["devnode"], "a device node skipped rootless");
        } else {
            assert_eq!(got, "4755 /suid\n2755 /sgid\ndevnode\n", "what the container sees");
        }
    }
}

/// An OCI index with this machine's platform and another (arm64, or amd64
/// on arm64), pushed by skopeo: `pull` takes the host's; `--platform
/// linux/OTHER` and `--arch OTHER` the other (its config says so); a
/// platform the index lacks fails with 125. `manifest inspect` shows the
/// index.
#[test]
fn manifest_list_picks_the_platform() {
    let env = TestEnv::root();
    let reg = Registry::start_plain();
    let other_arch = if oci_arch() == "arm64" { "amd64" } else { "arm64" };
    let host_img = Image::busybox("host");
    let other_img = Image::new(other_arch, vec![busybox_layer()], &["sh"], "other");
    let layout = env.path("index-layout");
    // The other platform first, so "take the first entry" is caught.
    let index = oci::write_index_layout(&layout, "t", &[&other_img, &host_img]);
    reg.skopeo_push(&format!("oci:{}:t", layout.display()), "ml/bb:v1", true);
    assert_eq!(
        reg.raw_manifest("ml/bb:v1"),
        index,
        "skopeo changed the index on the way"
    );
    let name = reg.image("ml/bb:v1");

    let out = env.casco(["pull", TLS_OFF, &name]).run().success();
    assert_eq!(pulled_id(&out), host_img.id(), "pull took the wrong platform");
    env.casco(["run", "--rm", &name, "true"]).run().success();

    let out = env
        .casco(["pull", TLS_OFF, "--platform", &format!("linux/{other_arch}"), &name])
        .run()
        .success();
    assert_eq!(
        pulled_id(&out),
        other_img.id(),
        "--platform linux/{other_arch} took the wrong image"
    );
    assert_eq!(image_id(&env, &name), other_img.id());
    env.casco(["image", "inspect", "--format", "{{.Architecture}}", &name])
        .run()
        .success()
        .stdout_is(&format!("{other_arch}\n"));

    let second = TestEnv::root();
    let out = second
        .casco(["pull", TLS_OFF, "--arch", other_arch, &name])
        .run()
        .success();
    assert_eq!(
        pulled_id(&out),
        other_img.id(),
        "--arch {other_arch} took the wrong image"
    );

    let out = second
        .casco(["pull", TLS_OFF, "--platform", "linux/s390x", &name])
        .run()
        .code(125)
        .says_why();
    assert_mentions(&out, &["s390x", "platform"], "a platform the index lacks");

    // podman 4.3.1's `manifest inspect` has no --tls-verify: registries.conf says insecure.
    let conf = insecure_conf(&env, &reg.host());
    let out = env
        .casco(["manifest", "inspect", &name])
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .run()
        .success();
    let v = out.json();
    let digests: Vec<&str> = v["manifests"]
        .as_array()
        .map_or(Vec::new(), |m| m.iter().filter_map(|d| d["digest"].as_str()).collect());
    assert_eq!(
        digests,
        vec![
            other_img.manifest_digest().as_str(),
            host_img.manifest_digest().as_str()
        ],
        "{}",
        out.report("manifest inspect of the index")
    );
}

both! {
    /// Layers as zstd, plain tar and gzip in one image (pushed byte for byte,
    /// media types kept): pull unpacks all three and the image runs. Saved
    /// as a docker-archive, its layers are plain or gzip tars (docker load
    /// reads those, not zstd), each matching its diff ID.
    fn zstd_plain_and_gzip_layers(env) {
        let reg = Registry::start_plain();
        let busybox = fs::read(busybox_tar()).unwrap();
        let img = Image::new(
            oci_arch(),
            vec![
                Layer::zstd(&busybox),
                Layer::plain(&raw_tar(&[Entry::file("plain", "plain layer\n")])),
                Layer::gzip(&raw_tar(&[Entry::file("gz", "gzip layer\n")])),
            ],
            &["sh"],
            "zstd",
        );
        reg.http_push(&img, "zs/bb", "v1");
        let name = reg.image("zs/bb:v1");
        let out = env.casco(["pull", TLS_OFF, &name]).run().success();
        assert_eq!(pulled_id(&out), img.id());
        assert_eq!(run_sh(&env, &name, "cat /plain /gz"), "plain layer\ngzip layer\n");

        let archive = env.path("zstd.tar");
        env.casco(["save", "-o", archive.to_str().unwrap(), &name]).run().success();
        let (items, entries) = docker_archive(&archive);
        assert_eq!(items.len(), 1, "manifest.json: {items:?}");
        check_docker_archive_image(&entries, &items[0], &img.id());
    }
}

/// podman 4.3.1: pull by digest (`REPO@sha256:...`, and `REPO:TAG@sha256:...`
/// where the digest wins) gets that manifest; the image is found by the
/// digest reference and lists it in RepoDigests. A digest the registry lacks
/// fails with 125.
#[test]
fn pull_by_digest() {
    let env = TestEnv::root();
    let reg = Registry::start_plain();
    let img = skopeo_busybox(&reg, &env, "digest", "dg/bb:v1");
    let digest = sha256(&reg.raw_manifest("dg/bb:v1"));
    let by_digest = format!("{}@{digest}", reg.image("dg/bb"));
    let out = env.casco(["pull", TLS_OFF, &by_digest]).run().success();
    assert_eq!(pulled_id(&out), img.id());
    assert_eq!(image_id(&env, &by_digest), img.id());
    let inspect = inspect_image(&env, &img.id());
    assert!(
        inspect["RepoDigests"]
            .as_array()
            .is_some_and(|d| d.contains(&json!(by_digest))),
        "RepoDigests lacks {by_digest}: {}",
        inspect["RepoDigests"]
    );
    // Tag and digest: the digest decides (the tag names another image).
    let _other = skopeo_busybox(&reg, &env, "other", "dg/bb:v2");
    let both = format!("{}:v2@{digest}", reg.image("dg/bb"));
    let fresh = TestEnv::root();
    let out = fresh.casco(["pull", TLS_OFF, &both]).run().success();
    assert_eq!(pulled_id(&out), img.id(), "tag+digest must pull the digest");
    let missing = format!("{}@sha256:{}", reg.image("dg/bb"), "0".repeat(64));
    fresh.casco(["pull", TLS_OFF, &missing]).run().code(125).says_why();
}

/// `pull --all-tags REPO` pulls every tag of the repository.
#[test]
fn pull_all_tags() {
    let env = TestEnv::root();
    let reg = Registry::start_plain();
    let a = skopeo_busybox(&reg, &env, "a", "at/bb:v1");
    reg.push_image(&a, env.dir(), "at/bb:v2");
    let b = skopeo_busybox(&reg, &env, "b", "at/bb:v3");
    // podman 4.3.1 lists tags over HTTPS whatever --tls-verify says: registries.conf says insecure too.
    let conf = insecure_conf(&env, &reg.host());
    env.casco(["pull", TLS_OFF, "--all-tags", &reg.image("at/bb")])
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .run()
        .success();
    for (tag, img) in [("v1", &a), ("v2", &a), ("v3", &b)] {
        assert_eq!(
            image_id(&env, &reg.image(&format!("at/bb:{tag}"))),
            img.id(),
            "tag {tag}"
        );
    }
}

/// registries.conf (CONTAINERS_REGISTRIES_CONF): a short name resolves
/// through `unqualified-search-registries` and an alias; an `insecure`
/// registry is reached over plain HTTP without `--tls-verify`; a `blocked`
/// prefix is refused; a `[[registry.mirror]]` serves a registry that does
/// not exist.
#[test]
fn registries_conf_search_alias_insecure_blocked_mirror() {
    let env = TestEnv::root();
    let reg = Registry::start_plain();
    let host = reg.host();
    let img = skopeo_busybox(&reg, &env, "short", "shortbb:latest");
    reg.push_image(&img, env.dir(), "mir/bb:v1");
    reg.push_image(&img, env.dir(), "blocked/bb:v1");
    let conf = registries_conf(
        &env,
        &format!(
            "unqualified-search-registries = [\"{host}\"]\n\
             short-name-mode = \"permissive\"\n\n\
             [aliases]\n\"myalias\" = \"{host}/shortbb\"\n\n\
             [[registry]]\nlocation = \"{host}\"\ninsecure = true\n\n\
             [[registry]]\nprefix = \"{host}/blocked\"\nlocation = \"{host}/blocked\"\nblocked = true\n\n\
             [[registry]]\nprefix = \"mirrored.invalid\"\nlocation = \"mirrored.invalid\"\n\
             [[registry.mirror]]\nlocation = \"{host}\"\ninsecure = true\n"
        ),
    );
    let casco = |args: &[&str]| env.casco(args).env("CONTAINERS_REGISTRIES_CONF", &conf);
    let out = casco(&["pull", "shortbb"]).run().success();
    assert_eq!(pulled_id(&out), img.id());
    assert_eq!(image_id(&env, &format!("{host}/shortbb:latest")), img.id());
    let out = casco(&["pull", "myalias"]).run().success();
    assert_eq!(pulled_id(&out), img.id(), "the alias");
    let out = casco(&["pull", &format!("{host}/blocked/bb:v1")]).run().code(125);
    assert_mentions(&out, &["blocked"], "a blocked registry");
    let out = casco(&["pull", "mirrored.invalid/mir/bb:v1"]).run().success();
    assert_eq!(pulled_id(&out), img.id(), "the mirror");
    assert_eq!(image_id(&env, "mirrored.invalid/mir/bb:v1"), img.id());
}

/// podman 4.3.1: `manifest inspect` of a remote image prints its manifest as
/// JSON (the same document the registry holds).
#[test]
fn manifest_inspect_prints_the_remote_manifest() {
    let env = TestEnv::root();
    let reg = Registry::start_plain();
    let img = Image::busybox("inspect");
    reg.http_push(&img, "mi/bb", "v1");
    // podman 4.3.1's `manifest inspect` has no --tls-verify: registries.conf says insecure.
    let conf = insecure_conf(&env, &reg.host());
    let out = env
        .casco(["manifest", "inspect", &reg.image("mi/bb:v1")])
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .run()
        .success();
    let want: Value = serde_json::from_slice(&img.manifest).unwrap();
    assert_eq!(out.json(), want, "{}", out.report("manifest inspect"));
    // Nothing is stored by an inspect.
    env.casco(["images", "-q"]).run().success().stdout_is("");
}

/// Errors that are the user's or the network's: a malformed reference, a
/// repository the registry lacks, nothing listening, HTTPS to a plain-HTTP
/// registry without --tls-verify=false. Each exits 125 with a message, and
/// stores nothing.
#[test]
fn pull_errors_exit_125() {
    let env = TestEnv::root();
    let reg = Registry::start_plain();
    let _img = skopeo_busybox(&reg, &env, "errors", "err/bb:v1");
    for bad in ["UPPER/Case:tag", "bb@sha256:xyz", "bb:bad:tag", "127.0.0.1:99999/x:1"] {
        env.casco(["pull", TLS_OFF, bad]).run().code(125).says_why();
    }
    let out = env
        .casco(["pull", TLS_OFF, &reg.image("nosuch/image:v1")])
        .run()
        .code(125);
    assert_mentions(&out, &["nosuch/image"], "a missing repository");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    env.casco(["pull", TLS_OFF, &format!("127.0.0.1:{closed}/x:1")])
        .run()
        .code(125)
        .says_why();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a refused connection took {:?}",
        started.elapsed()
    );
    let out = env.casco(["pull", &reg.image("err/bb:v1")]).run().code(125).says_why();
    assert!(
        !out.stderr.contains("panicked"),
        "{}",
        out.report("a panic is not an error message")
    );
    env.casco(["images", "-q"]).run().success().stdout_is("");
}

// ---------------------------------------------------------------------------
// run --pull
// ---------------------------------------------------------------------------

both! {
    /// podman 4.3.1, `run --pull`: `never` with the image absent fails with
    /// 125; `missing` (the default) pulls it; after the tag moves in the
    /// registry, `missing` and `never` keep the local image, `always` gets
    /// the new one and `newer` follows the registry when its digest differs.
    /// With the registry gone, `missing` and `never` still run the local
    /// image and `always` fails with 125. `create` pulls a missing image too.
    fn run_pull_policies(env) {
        let reg = Registry::start_plain();
        let conf = insecure_conf(&env, &reg.host());
        let a = Image::busybox_with("A", &[("marker", "A\n")]);
        let b = Image::busybox_with("B", &[("marker", "B\n")]);
        reg.push_image(&a, env.dir(), "pol/bb:v1");
        let name = reg.image("pol/bb:v1");
        let run = |policy: Option<&str>| {
            let mut args = vec!["run".to_string(), "--rm".to_string()];
            if let Some(p) = policy {
                args.push(format!("--pull={p}"));
            }
            args.extend([name.clone(), "cat".into(), "/marker".into()]);
            env.casco(&args).env("CONTAINERS_REGISTRIES_CONF", &conf).run()
        };
        run(Some("never")).code(125).says_why();
        env.casco(["images", "-q"]).run().success().stdout_is("");
        run(None).success().stdout_is("A\n");
        reg.push_image(&b, env.dir(), "pol/bb:v1");
        run(Some("missing")).success().stdout_is("A\n");
        run(Some("never")).success().stdout_is("A\n");
        run(Some("always")).success().stdout_is("B\n");
        reg.push_image(&a, env.dir(), "pol/bb:v1");
        run(Some("newer")).success().stdout_is("A\n");

        let created = env
            .casco(["create", "--pull=missing", &reg.image("pol/other:v1")])
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .run();
        assert_eq!(created.status, 125, "{}", created.report("create of an image the registry lacks"));
        reg.push_image(&b, env.dir(), "pol/other:v1");
        env.casco(["create", "--name", "c1", &reg.image("pol/other:v1"), "true"])
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .run()
            .success();
        assert_eq!(image_id(&env, &reg.image("pol/other:v1")), b.id(), "create pulled the wrong image");

        drop(reg);
        run(Some("missing")).success().stdout_is("A\n");
        run(Some("never")).success().stdout_is("A\n");
        run(Some("always")).code(125).says_why();
    }
}

// ---------------------------------------------------------------------------
// Authentication and TLS
// ---------------------------------------------------------------------------

both! {
    /// podman 4.3.1 against a TLS registry with htpasswd: a wrong password
    /// exits 125 saying authentication failed and stores nothing (nor
    /// replaces what was stored); `login -u -p` prints "Login Succeeded!" and
    /// stores `user:password` (base64) under the registry in
    /// $XDG_RUNTIME_DIR/containers/auth.json; `--get-login` prints the user;
    /// pull uses the stored login; `logout HOST` removes it ("Removed login
    /// credentials for HOST"), after which `--get-login` and pull fail with
    /// 125; `--password-stdin` reads the password; `logout -a` removes all.
    fn login_logout_and_a_wrong_password(env) {
        let reg = Registry::start_tls_auth("casco", "s3cret");
        let img = skopeo_busybox(&reg, &env, "auth", "auth/bb:v1");
        let host = reg.host();
        let certs = reg.certs_dir();
        let certs = certs.to_str().unwrap();
        let rt = private_runtime_dir(&env, "xdg-run");
        let auth = rt.join("containers/auth.json");
        let casco = |args: &[&str]| env.casco(args).env("XDG_RUNTIME_DIR", &rt);
        let auth_words = ["authentication", "unauthorized", "username/password", "credentials"];

        let out = casco(&["login", "--cert-dir", certs, "-u", "casco", "-p", "wrong", &host]).run().code(125);
        assert_mentions(&out, &auth_words, "login with a wrong password");
        assert_eq!(stored_login(&auth, &host), None, "a failed login stored credentials");

        let out = casco(&["login", "--cert-dir", certs, "-u", "casco", "-p", "s3cret", &host]).run().success();
        assert!(out.stdout.contains("Login Succeeded"), "{}", out.report("expected Login Succeeded!"));
        assert_eq!(stored_login(&auth, &host).as_deref(), Some("casco:s3cret"), "auth.json after login");
        casco(&["login", "--get-login", &host]).run().success().stdout_is("casco\n");

        casco(&["login", "--cert-dir", certs, "-u", "casco", "-p", "wrong", &host]).run().code(125).says_why();
        assert_eq!(stored_login(&auth, &host).as_deref(), Some("casco:s3cret"), "a failed login replaced the login");

        let out = casco(&["pull", "--cert-dir", certs, &reg.image("auth/bb:v1")]).run().success();
        assert_eq!(pulled_id(&out), img.id());

        casco(&["logout", &host]).run().success().stdout_is(&format!("Removed login credentials for {host}\n"));
        assert_eq!(stored_login(&auth, &host), None, "auth.json after logout");
        casco(&["login", "--get-login", &host]).run().code(125).says_why();
        casco(&["logout", &host]).run().code(125).says_why();
        env.casco(["rmi", &reg.image("auth/bb:v1")]).run().success();
        let out = casco(&["pull", "--cert-dir", certs, &reg.image("auth/bb:v1")]).run().code(125);
        assert_mentions(&out, &auth_words, "pull after logout");

        casco(&["login", "--cert-dir", certs, "-u", "casco", "--password-stdin", &host])
            .stdin("s3cret\n")
            .run()
            .success();
        assert_eq!(stored_login(&auth, &host).as_deref(), Some("casco:s3cret"), "after --password-stdin");
        casco(&["logout", "-a"]).run().success().stdout_is("Removed login credentials for all registries\n");
        assert_eq!(stored_login(&auth, &host), None, "auth.json after logout -a");
    }
}

/// `--authfile` and REGISTRY_AUTH_FILE choose the credentials file for login,
/// push and pull; without credentials a push to an authenticating registry
/// fails with 125; `--creds` works without any login and a wrong `--creds`
/// fails; logins in ~/.config/containers/auth.json and ~/.docker/config.json
/// are used when $XDG_RUNTIME_DIR has none.
#[test]
fn authfile_creds_and_other_credential_files() {
    let env = TestEnv::root();
    let reg = Registry::start_tls_auth("pusher", "pw");
    let host = reg.host();
    let certs = reg.certs_dir();
    let certs = certs.to_str().unwrap();
    // An empty runtime dir, so the host's /run/containers/0/auth.json is never used.
    let rt = private_runtime_dir(&env, "xdg-run");
    let casco = |args: &[&str]| env.casco(args).env("XDG_RUNTIME_DIR", &rt);
    let auth_words = ["authentication", "unauthorized", "username/password", "credentials"];
    let id = bare(&env.import_busybox("bb"));

    let af = env.path("my-auth.json");
    let afs = af.to_str().unwrap();
    casco(&[
        "login",
        "--authfile",
        afs,
        "--cert-dir",
        certs,
        "-u",
        "pusher",
        "-p",
        "pw",
        &host,
    ])
    .run()
    .success();
    assert_eq!(
        stored_login(&af, &host).as_deref(),
        Some("pusher:pw"),
        "--authfile after login"
    );
    assert!(
        !rt.join("containers/auth.json").exists(),
        "login --authfile also wrote the default file"
    );

    let out = casco(&["push", "--cert-dir", certs, "bb", &reg.image("a/bb:v0")])
        .run()
        .code(125);
    assert_mentions(&out, &auth_words, "push without credentials");
    casco(&["push", "--cert-dir", certs, "bb", &reg.image("a/bb:v1")])
        .env("REGISTRY_AUTH_FILE", &af)
        .run()
        .success();
    casco(&[
        "push",
        "--cert-dir",
        certs,
        "--authfile",
        afs,
        "bb",
        &reg.image("a/bb:v2"),
    ])
    .run()
    .success();
    casco(&[
        "push",
        "--cert-dir",
        certs,
        "--creds",
        "pusher:pw",
        "bb",
        &reg.image("a/bb:v3"),
    ])
    .run()
    .success();
    for tag in ["v1", "v2", "v3"] {
        assert_eq!(bare(&sha256(&reg.raw_config(&format!("a/bb:{tag}")))), id, "a/bb:{tag}");
    }

    let pull = |extra: &[&str], tag: &str| {
        let fresh = TestEnv::root();
        let frt = private_runtime_dir(&fresh, "xdg-run");
        let image = reg.image(&format!("a/bb:{tag}"));
        let mut args = vec!["pull", "--cert-dir", certs];
        args.extend_from_slice(extra);
        args.push(&image);
        let out = fresh.casco(&args).env("XDG_RUNTIME_DIR", &frt).run();
        (fresh, out)
    };
    let (_f, out) = pull(&["--authfile", afs], "v1");
    assert_eq!(pulled_id(&out.success()), id);
    let (_f, out) = pull(&["--creds", "pusher:pw"], "v2");
    assert_eq!(pulled_id(&out.success()), id);
    let (_f, out) = pull(&["--creds", "pusher:nope"], "v2");
    assert_mentions(&out.code(125), &auth_words, "pull with wrong --creds");

    let entry = json!({"auths": {host.clone(): {"auth": base64(b"pusher:pw")}}}).to_string();
    for file in [".config/containers/auth.json", ".docker/config.json"] {
        let fresh = TestEnv::root();
        let frt = private_runtime_dir(&fresh, "xdg-run");
        fresh.write_file(&format!("home/{file}"), &entry);
        let out = fresh
            .casco(["pull", "--cert-dir", certs, &reg.image("a/bb:v3")])
            .env("XDG_RUNTIME_DIR", &frt)
            .run();
        assert_eq!(
            out.status,
            0,
            "{}",
            out.report(&format!("pull with the login in ~/{file}"))
        );
    }
}

/// Bearer tokens, as Docker Hub hands them out: `/v2/` answers 401 with a
/// `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge and
/// the token endpoint gives a token for the repository's pull scope. An
/// anonymous pull gets one and reuses it for the whole pull (at most 3
/// token requests), and follows a 307 for the layer to "object storage".
/// When the token endpoint wants credentials, a pull without them fails with
/// 125 and one with `--creds` works.
#[test]
fn bearer_token_auth_and_blob_redirects() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let img = Image::busybox("bearer");
    srv.serve_image("tok/bb", "latest", &img);
    let layer = img.layers[0].digest();
    srv.route(
        &blob_path("tok/bb", &layer),
        Reply::Redirect(format!("/storage/{layer}")),
    );
    srv.route(
        &format!("/storage/{layer}"),
        Reply::Full {
            content_type: "application/octet-stream".into(),
            body: img.layers[0].blob.clone(),
            digest: None,
        },
    );
    srv.require_bearer(Bearer {
        token: "anonymous-token".into(),
        basic: None,
    });
    let out = env.casco(["pull", TLS_OFF, &srv.image("tok/bb")]).run().success();
    assert_eq!(pulled_id(&out), img.id());
    let tokens = srv.token_requests();
    assert!(
        !tokens.is_empty() && tokens.len() <= 3,
        "expected 1 to 3 token requests, got {tokens:?}"
    );
    assert!(
        tokens.iter().all(|q| q.contains("service=casco-hostile")),
        "token requests without the challenge's service: {tokens:?}"
    );
    assert!(
        tokens.iter().any(|q| percent_decode(q)
            .split('&')
            .any(|kv| kv == "scope=repository:tok/bb:pull")),
        "no token request for the repository's pull scope: {tokens:?}"
    );
    assert!(
        srv.requests().iter().any(|r| r == &format!("GET /storage/{layer}")),
        "the redirect was not followed: {:?}",
        srv.requests()
    );
    env.casco(["run", "--rm", &srv.image("tok/bb"), "true"]).run().success();

    srv.require_bearer(Bearer {
        token: "user-token".into(),
        basic: Some(base64(b"u:p")),
    });
    let other = TestEnv::root();
    let rt = private_runtime_dir(&other, "xdg-run");
    let out = other
        .casco(["pull", TLS_OFF, &srv.image("tok/bb")])
        .env("XDG_RUNTIME_DIR", &rt)
        .run()
        .code(125);
    assert_mentions(
        &out,
        &["authentication", "unauthorized", "credentials", "401"],
        "a token endpoint that wants a login",
    );
    let out = other
        .casco(["pull", TLS_OFF, "--creds", "u:p", &srv.image("tok/bb")])
        .env("XDG_RUNTIME_DIR", &rt)
        .run()
        .success();
    assert_eq!(pulled_id(&out), img.id());
}

/// Credential helpers (the docker-credential-* protocol: `get` with the
/// server on stdin, JSON with Username and Secret on stdout), named per
/// registry by `credHelpers` or for all by `credsStore` in the auth file:
/// pull gets its login from the helper.
#[test]
fn credential_helpers_supply_the_login() {
    let env = TestEnv::root();
    let reg = Registry::start_tls_auth("helped", "pw");
    let img = skopeo_busybox(&reg, &env, "helper", "ch/bb:v1");
    let host = reg.host();
    let certs = reg.certs_dir();
    let bin = env.mkdir("helpers");
    let log = env.path("helper.log");
    let helper = bin.join("docker-credential-castest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r server\necho \"$1 $server\" >> {}\ncase \"$1\" in\n  \
             get) printf '{{\"ServerURL\":\"%s\",\"Username\":\"helped\",\"Secret\":\"pw\"}}\\n' \"$server\" ;;\n  \
             *) exit 1 ;;\nesac\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    for (kind, conf) in [
        (
            "credHelpers",
            json!({"auths": {}, "credHelpers": {host.clone(): "castest"}}),
        ),
        ("credsStore", json!({"auths": {}, "credsStore": "castest"})),
    ] {
        let _ = fs::remove_file(&log);
        let af = env.write_file(&format!("{kind}.json"), conf.to_string());
        let fresh = TestEnv::root();
        let rt = private_runtime_dir(&fresh, "xdg-run");
        let out = fresh
            .casco([
                "pull",
                "--cert-dir",
                certs.to_str().unwrap(),
                "--authfile",
                af.to_str().unwrap(),
                &reg.image("ch/bb:v1"),
            ])
            .env("PATH", &path)
            .env("XDG_RUNTIME_DIR", &rt)
            .run();
        assert_eq!(
            out.status,
            0,
            "{}",
            out.report(&format!("pull with the login from a helper named by {kind}"))
        );
        assert_eq!(pulled_id(&out), img.id());
        let calls = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            calls.lines().any(|l| l.starts_with("get ") && l.contains(&host)),
            "{kind}: helper calls: {calls:?}"
        );
    }
}

both! {
    /// A TLS registry whose CA the host does not trust: pull fails with 125
    /// and a message about the certificate; `--cert-dir DIR` with the CA as
    /// ca.crt works; `--tls-verify=false` works.
    fn tls_needs_the_ca_or_tls_verify_false(env) {
        let reg = Registry::start_tls_auth("u", "p");
        let img = skopeo_busybox(&reg, &env, "tls", "tls/bb:v1");
        let name = reg.image("tls/bb:v1");
        let creds = reg.creds();
        let out = env.casco(["pull", "--creds", &creds, &name]).run().code(125);
        assert_mentions(&out, &["certificate", "x509", "tls", "issuer"], "an untrusted CA");
        env.casco(["images", "-q"]).run().success().stdout_is("");
        let certs = reg.certs_dir();
        let out = env.casco(["pull", "--creds", &creds, "--cert-dir", certs.to_str().unwrap(), &name]).run().success();
        assert_eq!(pulled_id(&out), img.id());
        env.casco(["rmi", &name]).run().success();
        let out = env.casco(["pull", "--creds", &creds, TLS_OFF, &name]).run().success();
        assert_eq!(pulled_id(&out), img.id());
    }
}

both! {
    /// certs.d: with the CA at /etc/containers/certs.d/HOST:PORT/ca.crt (root)
    /// or ~/.config/containers/certs.d/HOST:PORT/ca.crt (rootless), pull
    /// trusts the registry with no flag. Root's directory is removed after
    /// the test.
    fn certs_d_ca_is_trusted(env) {
        let reg = Registry::start_tls_auth("u", "p");
        let img = skopeo_busybox(&reg, &env, "certsd", "cd/bb:v1");
        let _guard = if env.is_rootless() {
            env.write_file(&format!("home/.config/containers/certs.d/{}/ca.crt", reg.host()), reg.ca_pem());
            None
        } else {
            Some(SystemCertsD::install(&reg))
        };
        let out = env.casco(["pull", "--creds", &reg.creds(), &reg.image("cd/bb:v1")]).run().success();
        assert_eq!(pulled_id(&out), img.id());
    }
}

// ---------------------------------------------------------------------------
// save and load
// ---------------------------------------------------------------------------

both! {
    /// podman 4.3.1: `save -o FILE NAME` writes a docker-archive whose
    /// manifest.json names the image (RepoTags) and holds its config and
    /// layers; `load -i FILE` into an empty store prints "Loaded image:
    /// NAME" and gives the same ID, and the image runs.
    fn save_load_docker_archive_round_trip(env) {
        let id = bare(&env.import_busybox("bb"));
        let archive = env.path("bb.tar");
        env.casco(["save", "-o", archive.to_str().unwrap(), "bb"]).run().success();
        let (items, entries) = docker_archive(&archive);
        assert_eq!(items.len(), 1, "manifest.json: {items:?}");
        assert_eq!(items[0]["RepoTags"], json!(["localhost/bb:latest"]), "manifest.json: {items:?}");
        check_docker_archive_image(&entries, &items[0], &id);

        let other = fresh_like(&env);
        let out = other.casco(["load", "-i", archive.to_str().unwrap()]).run().success();
        assert!(out.stdout.contains("localhost/bb:latest"), "{}", out.report("load must name what it loaded"));
        assert_eq!(image_id(&other, "bb"), id);
        assert_eq!(run_sh(&other, "bb", "cat /etc/passwd"), BUSYBOX_PASSWD);
    }
}

/// `save --format oci-archive` writes an OCI layout in a tar, and
/// `--format oci-dir` one in a directory; skopeo reads both, and `load`
/// of each into an empty store gives the same image.
#[test]
fn save_load_oci_archive_and_oci_dir() {
    let env = TestEnv::root();
    let id = bare(&env.import_busybox("bb"));
    let archive = env.path("bb-oci.tar");
    env.casco(["save", "--format", "oci-archive", "-o", archive.to_str().unwrap(), "bb"])
        .run()
        .success();
    let entries = tar_entries(&fs::read(&archive).unwrap());
    for name in ["oci-layout", "index.json"] {
        entry(&entries, name);
    }
    let raw = must_run(
        Command::new("skopeo")
            .args(["inspect", "--config", "--raw"])
            .arg(format!("oci-archive:{}", archive.display())),
    );
    assert_eq!(bare(&sha256(&raw.stdout)), id, "skopeo's view of the oci-archive");
    let other = TestEnv::root();
    other.casco(["load", "-i", archive.to_str().unwrap()]).run().success();
    assert_eq!(image_id(&other, &id), id);
    assert_eq!(
        image_id(&other, "localhost/bb:latest"),
        id,
        "the name from the oci-archive"
    );

    let dir = env.path("bb-oci-dir");
    env.casco(["save", "--format", "oci-dir", "-o", dir.to_str().unwrap(), "bb"])
        .run()
        .success();
    let (manifest, _config) = read_layout(&dir, None);
    assert_eq!(manifest["config"]["digest"], json!(format!("sha256:{id}")));
    let third = TestEnv::root();
    third.casco(["load", "-i", dir.to_str().unwrap()]).run().success();
    assert_eq!(image_id(&third, &id), id);
    third.casco(["run", "--rm", &id, "true"]).run().success();
}

/// podman 4.3.1: `save -m -o FILE A B` puts both images in one docker-archive
/// (two manifest.json entries); `load` restores both, names and IDs.
#[test]
fn save_two_images_in_one_archive() {
    let env = TestEnv::root();
    let bb = bare(&env.import_busybox("bb"));
    let small_tar = env.write_file("small.tar", raw_tar(&[Entry::file("hello", "hi\n")]));
    let small = bare(
        env.casco(["import", small_tar.to_str().unwrap(), "small"])
            .run()
            .success()
            .stdout_trim(),
    );
    let archive = env.path("two.tar");
    // -m: podman 4.3.1 without it takes "small" as another name for "bb".
    env.casco(["save", "-m", "-o", archive.to_str().unwrap(), "bb", "small"])
        .run()
        .success();
    let (items, entries) = docker_archive(&archive);
    assert_eq!(items.len(), 2, "manifest.json: {items:?}");
    check_docker_archive_image(&entries, &items[0], &bb);
    check_docker_archive_image(&entries, &items[1], &small);
    let other = TestEnv::root();
    let out = other.casco(["load", "-i", archive.to_str().unwrap()]).run().success();
    for name in ["localhost/bb:latest", "localhost/small:latest"] {
        assert!(
            out.stdout.contains(name),
            "{}",
            out.report(&format!("load must name {name}"))
        );
    }
    assert_eq!(image_id(&other, "bb"), bb);
    assert_eq!(image_id(&other, "small"), small);
}

/// `load` reads compressed archives: a docker-archive compressed with gzip
/// and with zstd, from a file and from standard input.
#[test]
fn load_compressed_archives() {
    let env = TestEnv::root();
    let id = bare(&env.import_busybox("bb"));
    let archive = env.path("bb.tar");
    env.casco(["save", "-o", archive.to_str().unwrap(), "bb"])
        .run()
        .success();
    let plain = fs::read(&archive).unwrap();
    for (ext, bytes) in [("gz", oci::gzip(&plain)), ("zst", oci::zstd(&plain))] {
        let file = env.write_file(&format!("bb.tar.{ext}"), &bytes);
        let other = TestEnv::root();
        other.casco(["load", "-i", file.to_str().unwrap()]).run().success();
        assert_eq!(image_id(&other, "bb"), id, "load of a .{ext} archive");
        let third = TestEnv::root();
        third.casco(["load"]).stdin(bytes).run().success();
        assert_eq!(image_id(&third, "bb"), id, "load of a .{ext} archive from stdin");
    }
}

both! {
    /// `casco save NAME | casco load` through a real pipe, into another store.
    fn save_piped_into_load(env) {
        let id = bare(&env.import_busybox("bb"));
        let other = fresh_like(&env);
        let side = |e: &TestEnv| {
            format!("{} --root {} --runroot {}", casco_bin().display(), e.store_root().display(), e.run_root().display())
        };
        let script = format!("set -o pipefail; {} save bb | {} load", side(&env), side(&other));
        let out = env.host("bash", ["-c", &script]).run().success();
        assert!(out.stdout.contains("localhost/bb:latest"), "{}", out.report("load must name what it loaded"));
        assert_eq!(image_id(&other, "bb"), id);
        other.casco(["run", "--rm", "bb", "true"]).run().success();
    }
}

/// Archives skopeo wrote (docker-archive and oci-archive, from an OCI layout
/// the test made): `load` gives the image with its config digest as ID, the
/// docker-archive one under the name skopeo gave it.
#[test]
fn load_archives_made_by_skopeo() {
    let env = TestEnv::root();
    let img = Image::busybox_with("skopeo-archive", &[("etc/motd", "from skopeo\n")]);
    let layout = env.path("layout");
    oci::write_layout(&layout, &[(&img, "t")]);
    let src = format!("oci:{}:t", layout.display());
    let da = env.path("skopeo-docker.tar");
    let oa = env.path("skopeo-oci.tar");
    must_run(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy", &src])
            .arg(format!("docker-archive:{}:example.test/sk/bb:v1", da.display())),
    );
    must_run(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy", &src])
            .arg(format!("oci-archive:{}:example.test/sk/oa:v1", oa.display())),
    );
    let a = TestEnv::root();
    a.casco(["load", "-i", da.to_str().unwrap()]).run().success();
    assert_eq!(
        image_id(&a, "example.test/sk/bb:v1"),
        img.id(),
        "docker-archive from skopeo"
    );
    assert_eq!(run_sh(&a, "example.test/sk/bb:v1", "cat /etc/motd"), "from skopeo\n");
    let b = TestEnv::root();
    b.casco(["load", "-i", oa.to_str().unwrap()]).run().success();
    assert_eq!(image_id(&b, &img.id()), img.id(), "oci-archive from skopeo");
}

/// skopeo reads a docker-archive casco saved, checking every blob on the way
/// into a `dir:` copy (no manifest conversion, which would re-serialize the
/// config): the same config, the same layers.
#[test]
fn skopeo_reads_what_casco_saved() {
    let env = TestEnv::root();
    let id = bare(&env.import_busybox("bb"));
    let archive = env.path("bb.tar");
    env.casco(["save", "-o", archive.to_str().unwrap(), "bb"])
        .run()
        .success();
    let dir = env.path("from-casco");
    must_run(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy"])
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("dir:{}", dir.display())),
    );
    let manifest: Value = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["config"]["digest"],
        json!(format!("sha256:{id}")),
        "skopeo's manifest: {manifest}"
    );
    let config: Value = serde_json::from_slice(&fs::read(dir.join(&id)).unwrap()).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    assert_eq!(layers.len(), diff_ids.len(), "{manifest}");
    for (l, d) in layers.iter().zip(&diff_ids) {
        let blob = fs::read(dir.join(hex(l["digest"].as_str().unwrap()))).unwrap();
        assert_eq!(
            Some(sha256(&decompress(&blob)).as_str()),
            d.as_str(),
            "layer vs diff ID"
        );
    }
}

// ---------------------------------------------------------------------------
// The hostile registry
// ---------------------------------------------------------------------------

/// A tar of one file `name` holding `size` bytes of `fill`.
fn one_file_tar(name: &str, fill: u8, size: usize) -> Vec<u8> {
    raw_tar(&[Entry::file(name, vec![fill; size])])
}

/// Pseudo-random bytes (xorshift), so gzip cannot shrink them.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Pulls `reference` from the hostile server and asserts that it fails with
/// 125 and a message (mentioning one of `mentions`, when given), within
/// `limit`; that the store holds no image and nothing it did not hold before
/// (ROOT/tmp empty); and that nothing appeared in the test dir outside the
/// store.
#[track_caller]
fn assert_pull_rejected(env: &TestEnv, reference: &str, mentions: &[&str], what: &str, limit: Duration) -> Output {
    env.casco(["images", "-q"]).run().success().stdout_is("");
    let before = store_listing(env);
    let outside_before = listing(env.dir(), &["root", "run"]);
    let started = Instant::now();
    let out = env.casco(["pull", TLS_OFF, reference]).timeout(limit).run();
    let took = started.elapsed();
    let out = out.code(125).says_why();
    if !mentions.is_empty() {
        assert_mentions(&out, mentions, what);
    }
    assert!(
        !out.stderr.contains("panicked"),
        "{}",
        out.report("a panic is not an error message")
    );
    env.casco(["images", "-q"]).run().success().stdout_is("");
    let after = store_listing(env);
    let added: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
    assert!(
        added.is_empty(),
        "{what}: the failed pull left in the store: {added:?}\n(took {took:?})"
    );
    assert_eq!(
        store_entries(env, "tmp"),
        Vec::<String>::new(),
        "{what}: ROOT/tmp is not empty"
    );
    let outside_after = listing(env.dir(), &["root", "run"]);
    let written: Vec<&String> = outside_after.iter().filter(|p| !outside_before.contains(p)).collect();
    assert!(
        written.is_empty(),
        "{what}: the failed pull wrote outside the store: {written:?}"
    );
    out
}

/// The control for the hostile tests: an honest tiny image from the same
/// server pulls fine, so a rejection above was casco refusing the lie, not
/// casco failing at everything.
#[track_caller]
fn assert_control_pull(env: &TestEnv, srv: &Hostile) {
    let img = Image::new(
        oci_arch(),
        vec![Layer::gzip(&raw_tar(&[Entry::file("ok", "ok\n")]))],
        &["sh"],
        "control",
    );
    srv.serve_image("control", "latest", &img);
    let out = env.casco(["pull", TLS_OFF, &srv.image("control")]).run();
    assert_eq!(
        out.status,
        0,
        "{}",
        out.report(
            "the control pull of an honest image from the hostile server failed, so the rejections above prove nothing"
        )
    );
    assert_eq!(pulled_id(&out), img.id(), "the control pull");
}

/// The first 12 hex digits of a digest: what a message shows at the least.
fn short(digest: &str) -> String {
    hex(digest)[..12].to_string()
}

/// A blob whose bytes do not match the digest the manifest gives (the
/// server even sends that digest in Docker-Content-Digest): pull fails with
/// 125, naming the digest, and stores nothing. The wrong blob is a valid gzip
/// tar of the same length, so only the digest check can catch it. Also a
/// config that does not match its digest, and a manifest fetched by digest
/// that is not that digest's.
#[test]
fn hostile_wrong_digests_are_rejected() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let good = oci::gzip_stored(&one_file_tar("data", b'A', 4096));
    let evil = oci::gzip_stored(&one_file_tar("data", b'B', 4096));
    assert_eq!(good.len(), evil.len());
    let layer = Layer {
        media_type: oci::MT_LAYER_GZIP,
        blob: good,
        diff_id: sha256(&one_file_tar("data", b'A', 4096)),
    };
    let img = Image::new(oci_arch(), vec![layer.clone()], &["sh"], "wrong-layer");
    srv.serve_image("layer", "latest", &img);
    srv.route(
        &blob_path("layer", &layer.digest()),
        Reply::Full {
            content_type: "application/octet-stream".into(),
            body: evil,
            digest: Some(layer.digest()),
        },
    );
    let out = assert_pull_rejected(
        &env,
        &srv.image("layer"),
        &[],
        "a layer with the wrong digest",
        DEFAULT_TIMEOUT,
    );
    assert_mentions(
        &out,
        &[&short(&layer.digest()), &short(&layer.diff_id)],
        "a layer with the wrong digest",
    );

    let cimg = Image::new(oci_arch(), vec![layer.clone()], &["sh"], "wrong-config");
    srv.serve_image("config", "latest", &cimg);
    let mut forged = cimg.config.clone();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'x' { b'y' } else { b'x' };
    srv.route(
        &blob_path("config", &cimg.config_digest()),
        Reply::Full {
            content_type: "application/json".into(),
            body: forged,
            digest: Some(cimg.config_digest()),
        },
    );
    let out = assert_pull_rejected(
        &env,
        &srv.image("config"),
        &[],
        "a config with the wrong digest",
        DEFAULT_TIMEOUT,
    );
    assert_mentions(&out, &[&short(&cimg.config_digest())], "a config with the wrong digest");

    let m1 = Image::busybox("m1");
    let m2 = Image::busybox("m2");
    srv.serve_image("bydigest", "latest", &m2);
    srv.route(
        &manifest_path("bydigest", &m1.manifest_digest()),
        Reply::Full {
            content_type: oci::MT_OCI_MANIFEST.into(),
            body: m2.manifest.clone(),
            digest: Some(m1.manifest_digest()),
        },
    );
    let reference = format!("{}@{}", srv.image("bydigest"), m1.manifest_digest());
    let out = assert_pull_rejected(
        &env,
        &reference,
        &[],
        "a manifest that is not the digest's",
        DEFAULT_TIMEOUT,
    );
    assert_mentions(
        &out,
        &[&short(&m1.manifest_digest()), &short(&m2.manifest_digest())],
        "a manifest that is not the digest's",
    );
    assert_control_pull(&env, &srv);
}

/// A blob response cut short (Content-Length larger than what comes, then
/// the connection closes), every time: pull fails with 125 after its
/// retries, and stores nothing.
#[test]
fn hostile_truncated_blob_is_rejected() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let tar = raw_tar(&[Entry::file("noise", noise(256 * 1024, 7))]);
    let layer = Layer::gzip(&tar);
    let img = Image::new(oci_arch(), vec![layer.clone()], &["sh"], "truncated");
    srv.serve_image("trunc", "latest", &img);
    let half = layer.blob[..layer.blob.len() / 2].to_vec();
    srv.route(
        &blob_path("trunc", &layer.digest()),
        Reply::Truncated {
            declared: layer.blob.len() as u64,
            body: half,
        },
    );
    assert_pull_rejected(
        &env,
        &srv.image("trunc"),
        &[],
        "a truncated blob",
        Duration::from_secs(120),
    );
    assert_control_pull(&env, &srv);
}

/// A blob cut short once and whole the next time (a transient failure): pull
/// retries and succeeds.
#[test]
fn truncated_blob_is_retried() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let img = Image::busybox("retry");
    srv.serve_image("retry", "latest", &img);
    let blob = img.layers[0].blob.clone();
    srv.route(
        &blob_path("retry", &img.layers[0].digest()),
        Reply::Sequence(vec![
            Reply::Truncated {
                declared: blob.len() as u64,
                body: blob[..blob.len() / 3].to_vec(),
            },
            Reply::Full {
                content_type: "application/octet-stream".into(),
                body: blob,
                digest: None,
            },
        ]),
    );
    let out = env.casco(["pull", TLS_OFF, &srv.image("retry")]).run().success();
    assert_eq!(pulled_id(&out), img.id());
    env.casco(["run", "--rm", &srv.image("retry"), "true"]).run().success();
    assert_eq!(
        store_entries(&env, "tmp"),
        Vec::<String>::new(),
        "ROOT/tmp after a retried pull"
    );
}

both! {
    /// Layers that try to write outside themselves, served with correct
    /// digests: an entry "../escape", a deeper "a/../../../escape", a
    /// symlink to a directory outside (absolute, and "../"-relative) with a
    /// file written through it, and a hardlink to a file outside the layer.
    /// Each pull fails with 125 and stores nothing; nothing is written outside
    /// the store and the outside file gets no new link.
    fn hostile_path_traversal_layers_are_rejected(env) {
        let srv = Hostile::start();
        let outside = env.mkdir("outside");
        let outside_abs = outside.display().to_string();
        let climb = format!("{}{}", "../".repeat(12), outside_abs.trim_start_matches('/'));
        let victim = env.write_file("victim", "do not link me\n");
        let victim_climb = format!("{}{}", "../".repeat(12), victim.display().to_string().trim_start_matches('/'));
        let cases: Vec<(&str, Vec<Entry>)> = vec![
            ("dotdot", vec![Entry::file("ok", "fine\n"), Entry::file("../escape", "escaped\n")]),
            ("deep", vec![Entry::file("a/../../../escape", "escaped\n")]),
            ("abslink", vec![Entry::symlink("evil", &outside_abs), Entry::file("evil/escape", "escaped\n")]),
            ("rellink", vec![Entry::symlink("evil", &climb), Entry::file("evil/escape", "escaped\n")]),
            ("hardlink", vec![Entry::hardlink("link", &victim_climb)]),
        ];
        for (repo, entries) in &cases {
            let img = Image::new(oci_arch(), vec![Layer::gzip(&raw_tar(entries))], &["sh"], repo);
            srv.serve_image(repo, "latest", &img);
            assert_pull_rejected(&env, &srv.image(repo), &[], &format!("layer {repo}"), DEFAULT_TIMEOUT);
        }
        let escaped: Vec<String> = listing(env.dir(), &[]).into_iter().filter(|p| p.ends_with("escape")).collect();
        assert!(escaped.is_empty(), "hostile entries were written: {escaped:?}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "something was written through the symlink");
        assert_eq!(fs::metadata(&victim).unwrap().nlink(), 1, "the outside file got a hard link");
        assert_control_pull(&env, &srv);
    }
}

/// A 10 MiB manifest and a 16 MiB config (valid JSON, correct digests): pull
/// refuses each with 125, naming what was too big, and stores nothing.
#[test]
fn hostile_oversized_manifest_and_config_are_rejected() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let img = Image::busybox("big");
    let mut m: Value = serde_json::from_slice(&img.manifest).unwrap();
    m["annotations"] = json!({"pad": "x".repeat(10 << 20)});
    let big_manifest = serde_json::to_vec(&m).unwrap();
    srv.serve_image("bigm", "latest", &img);
    srv.serve_manifest("bigm", "latest", &big_manifest, oci::MT_OCI_MANIFEST);
    assert_pull_rejected(
        &env,
        &srv.image("bigm"),
        &["manifest", "size", "large", "limit", "exceed"],
        "a 10 MiB manifest",
        DEFAULT_TIMEOUT,
    );

    let mut c: Value = serde_json::from_slice(&img.config).unwrap();
    c["config"]["Labels"]["pad"] = json!("x".repeat(16 << 20));
    let big_config = serde_json::to_vec(&c).unwrap();
    let config_digest = sha256(&big_config);
    let mut m: Value = serde_json::from_slice(&img.manifest).unwrap();
    m["config"] = json!({"mediaType": oci::MT_OCI_CONFIG, "digest": config_digest, "size": big_config.len()});
    let manifest = serde_json::to_vec(&m).unwrap();
    srv.serve_manifest("bigc", "latest", &manifest, oci::MT_OCI_MANIFEST);
    srv.serve_blob("bigc", &big_config);
    srv.serve_blob("bigc", &img.layers[0].blob);
    assert_pull_rejected(
        &env,
        &srv.image("bigc"),
        &["config", "size", "large", "limit", "exceed"],
        "a 16 MiB config",
        DEFAULT_TIMEOUT,
    );
    assert_control_pull(&env, &srv);
}

/// A blob that never ends (no Content-Length, zeros until the client goes
/// away; the manifest says 4 KiB): pull stops reading soon after the
/// declared size and fails with 125.
#[test]
fn hostile_endless_blob_is_cut_off() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let tar = one_file_tar("data", b'z', 1024);
    let layer = Layer::gzip(&tar);
    let mut endless = layer.clone();
    endless.blob = vec![0; 4096];
    let img = Image::new(oci_arch(), vec![endless.clone()], &["sh"], "endless");
    srv.serve_image("endless", "latest", &img);
    srv.route(
        &blob_path("endless", &endless.digest()),
        Reply::Endless { cap: 4 << 30 },
    );
    assert_pull_rejected(&env, &srv.image("endless"), &[], "an endless blob", DEFAULT_TIMEOUT);
    let sent = srv.sent();
    assert!(
        sent < 256 << 20,
        "casco read {} MiB of a blob the manifest says is 4 KiB",
        sent >> 20
    );
    assert_control_pull(&env, &srv);
}

/// A blob response that stalls (headers and 100 bytes, then silence with the
/// connection open): pull gives up with 125 in bounded time (casco waits
/// one 30 s idle timeout, resumes once, waits another: here the bound is
/// 100 s) and stores nothing.
#[test]
fn hostile_stalled_blob_times_out() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let img = Image::busybox("stall");
    srv.serve_image("stall", "latest", &img);
    let blob = &img.layers[0].blob;
    srv.route(
        &blob_path("stall", &img.layers[0].digest()),
        Reply::Stall {
            declared: blob.len() as u64,
            body: blob[..100].to_vec(),
        },
    );
    assert_pull_rejected(
        &env,
        &srv.image("stall"),
        &[],
        "a stalled blob",
        Duration::from_secs(100),
    );
    assert_control_pull(&env, &srv);
}

/// A Docker schema1 manifest is refused with 125 and a message saying so.
#[test]
fn hostile_schema1_manifest_is_refused() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let schema1 = json!({
        "schemaVersion": 1,
        "name": "old",
        "tag": "latest",
        "architecture": oci_arch(),
        "fsLayers": [{"blobSum": busybox_layer().digest()}],
        "history": [{"v1Compatibility": "{\"id\":\"0\"}"}],
    });
    let bytes = serde_json::to_vec(&schema1).unwrap();
    srv.serve_manifest(
        "old",
        "latest",
        &bytes,
        "application/vnd.docker.distribution.manifest.v1+json",
    );
    srv.serve_blob("old", &busybox_layer().blob);
    assert_pull_rejected(&env, &srv.image("old"), &["schema"], "schema1", DEFAULT_TIMEOUT);
    assert_control_pull(&env, &srv);
}

/// A second image that shares the busybox layer with one already pulled:
/// pull does not download that layer again.
#[test]
fn pull_skips_layers_already_present() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let a = Image::busybox("first");
    let b = Image::busybox_with("second", &[("etc/second", "2\n")]);
    srv.serve_image("first", "latest", &a);
    srv.serve_image("second", "latest", &b);
    env.casco(["pull", TLS_OFF, &srv.image("first")]).run().success();
    let before = srv.requests().len();
    env.casco(["pull", TLS_OFF, &srv.image("second")]).run().success();
    let shared = busybox_layer().digest();
    let again: Vec<String> = srv.requests()[before..]
        .iter()
        .filter(|r| r.starts_with("GET ") && r.ends_with(&shared))
        .cloned()
        .collect();
    assert!(again.is_empty(), "the busybox layer was fetched again: {again:?}");
    assert_eq!(run_sh(&env, &srv.image("second"), "cat /etc/second"), "2\n");
}

/// `kill -9` of a pull in the middle of a layer (served slowly): no image
/// and no layer become visible, and the next pull finishes the job and
/// leaves ROOT/tmp empty.
#[test]
fn kill_9_during_pull_then_pull_again() {
    let env = TestEnv::root();
    let srv = Hostile::start();
    let img = Image::busybox("slow");
    srv.serve_image("slow", "latest", &img);
    let blob = img.layers[0].blob.clone();
    srv.route(
        &blob_path("slow", &img.layers[0].digest()),
        Reply::Slow {
            body: blob.clone(),
            chunk: 32 * 1024,
            every: Duration::from_millis(20),
        },
    );
    env.casco(["images", "-q"]).run().success().stdout_is("");
    let layers_before = store_entries(&env, "layers");
    let mut child = env.casco(["pull", TLS_OFF, &srv.image("slow")]).spawn();
    wait_until(
        "the pull to be half way through the layer",
        Duration::from_secs(30),
        || srv.sent() > (blob.len() / 2) as u64 || child.try_status().is_some(),
    );
    assert_eq!(
        child.try_status(),
        None,
        "the pull ended before it could be killed: {}",
        child.stderr_so_far()
    );
    let killed = child.pid();
    child.kill_group();
    let _ = child.wait();
    env.casco(["images", "-q"]).run().success().stdout_is("");
    assert_eq!(
        store_entries(&env, "layers"),
        layers_before,
        "a half layer is visible after kill -9"
    );
    env.casco(["run", "--rm", "--pull=never", &srv.image("slow"), "true"])
        .run()
        .code(125);

    let out = env.casco(["pull", TLS_OFF, &srv.image("slow")]).run().success();
    assert_eq!(pulled_id(&out), img.id());
    env.casco(["run", "--rm", &srv.image("slow"), "true"]).run().success();
    assert_eq!(
        store_entries(&env, "tmp"),
        Vec::<String>::new(),
        "ROOT/tmp after the pull that finished the job (the killed pull was pid {killed})"
    );
}
