//! Tests for `casco build`: every Containerfile instruction and build flag, as
//! root and rootless; each built image is run and checked for what its
//! instructions should have made. As root, each case is also built by buildah
//! 1.28 (what podman 4.3.1 builds with) from the same Containerfile, context and
//! base image, and the two images are compared: config field by field, history
//! entry by entry, layers entry by entry (`*_like_buildah` tests).
//!
//! Cases are directories under tests/fixtures/build/. What git cannot hold
//! (symlinks to the host, archives, a secret, a host directory, an HTTP server
//! for `ADD URL`) [`prepare`] makes beside the copied context.
//!
//! Buildah 1.28 lacks heredocs, `COPY --link`, `ADD --checksum` and
//! `--build-arg-file`, and keeps SHELL, HEALTHCHECK and ONBUILD only in docker
//! format (in OCI format it warns and drops them). Cases with those are checked
//! against BuildKit's documented behaviour only, or compared in docker format.
//! Deliberate differences from buildah are listed once, in [`IGNORED`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::*;

/// A build may run several containers; the slowest cases take a few seconds.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// What the `secret` case passes with `--secret id=token,src=...`.
const SECRET: &str = "s3cr3t-token-value";

// ---------------------------------------------------------------------------
// Contexts and builds
// ---------------------------------------------------------------------------

/// tests/fixtures/build/CASE
fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/build")
        .join(case)
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Copies fixture `case` to `<test dir>/<case>`, owned by the env's user, with
/// fixed modes (0755 for directories and executables, 0644 otherwise: git keeps
/// no other bits and the umask must not matter). Returns the copy's path.
fn context(env: &TestEnv, case: &str) -> PathBuf {
    let src = fixture(case);
    assert!(src.is_dir(), "no fixture directory {}", src.display());
    copy_tree(env, &src, case);
    env.path(case)
}

fn copy_tree(env: &TestEnv, src: &Path, rel: &str) {
    chmod(&env.mkdir(rel), 0o755);
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(src)
        .unwrap_or_else(|e| panic!("read {}: {e}", src.display()))
        .flatten()
        .collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    for e in entries {
        let child = format!("{rel}/{}", e.file_name().to_string_lossy());
        let meta = fs::symlink_metadata(e.path()).unwrap_or_else(|err| panic!("stat {}: {err}", e.path().display()));
        if meta.is_dir() {
            copy_tree(env, &e.path(), &child);
        } else if meta.is_file() {
            let data = fs::read(e.path()).unwrap_or_else(|err| panic!("read {}: {err}", e.path().display()));
            let p = env.write_file(&child, data);
            chmod(
                &p,
                if meta.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                },
            );
        } else {
            panic!(
                "fixture {} is neither a file nor a directory: tests make links themselves",
                e.path().display()
            );
        }
    }
}

/// A symlink in the test dir, owned by the env's user.
fn link(env: &TestEnv, target: &str, rel: &str) {
    let p = env.path(rel);
    symlink(target, &p).unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", p.display()));
    if env.is_rootless() {
        lchown(&p, Some(env.uid()), Some(env.gid())).unwrap_or_else(|e| panic!("lchown {}: {e}", p.display()));
    }
}

/// A case's context ready to build: the copied fixture plus what it needs
/// beside it, and the flags that point the build at those.
struct Prepared {
    ctx: PathBuf,
    args: Vec<String>,
    /// Serves `<test dir>/www` for `ADD URL` while the case builds.
    _server: Option<HttpServer>,
}

impl Prepared {
    /// The prepared flags followed by `more`.
    fn with(&self, more: &[&str]) -> Vec<String> {
        self.args
            .iter()
            .cloned()
            .chain(more.iter().map(|s| s.to_string()))
            .collect()
    }
}

/// Copies the fixture and adds what git cannot hold:
/// - `add`, `add-checksum*`: `archive.tar` and `archive.tar.gz` in the context
///   (inner/file.txt, inner/link -> file.txt), `www/remote.txt` and
///   `www/archive.tar` served on 127.0.0.1, `--build-arg URL=http://..`
///   (and `SUM=sha256:..` of remote.txt);
/// - `secret`: the secret file outside the context, `--secret id=token,src=..`;
/// - `runopts`: `hostdir/hostfile.txt`, `-v HOSTDIR:/hostdir --cap-add NET_ADMIN`;
/// - `hostile-context-symlink`: `etc-link -> /etc`, `passwd-link -> /etc/passwd`;
/// - `hostile-parent`: `outside.txt` beside the context.
fn prepare(env: &TestEnv, case: &str) -> Prepared {
    let ctx = context(env, case);
    let mut args = Vec::new();
    let mut server = None;
    match case {
        "add" | "add-checksum" | "add-checksum-bad" => {
            let tar = archive_bytes();
            let p = env.write_file(&format!("{case}/archive.tar"), &tar);
            chmod(&p, 0o644);
            let p = env.write_file(&format!("{case}/archive.tar.gz"), gzip(&tar));
            chmod(&p, 0o644);
            env.write_file("www/remote.txt", "remote\n");
            env.write_file("www/archive.tar", &tar);
            let s = HttpServer::start(env, &env.path("www"));
            args.push("--build-arg".to_string());
            args.push(format!("URL={}", s.url()));
            args.push("--build-arg".to_string());
            args.push(format!("SUM={}", sha256_file(&env.path("www/remote.txt"))));
            server = Some(s);
        }
        "secret" => {
            let p = env.write_file("secret.txt", SECRET);
            chmod(&p, 0o600);
            args.push("--secret".to_string());
            args.push(format!("id=token,src={}", p.display()));
        }
        "runopts" => {
            env.write_file("hostdir/hostfile.txt", "host content\n");
            args.push("-v".to_string());
            args.push(format!("{}:/hostdir", env.path("hostdir").display()));
            args.push("--cap-add".to_string());
            args.push("NET_ADMIN".to_string());
        }
        "hostile-context-symlink" => {
            link(env, "/etc", &format!("{case}/etc-link"));
            link(env, "/etc/passwd", &format!("{case}/passwd-link"));
        }
        "hostile-parent" => {
            env.write_file("outside.txt", "outside the context\n");
        }
        _ => {}
    }
    Prepared {
        ctx,
        args,
        _server: server,
    }
}

/// A tar with `inner/` (0755), `inner/file.txt` ("file\n", 0644) and
/// `inner/link -> file.txt`, all root-owned with a fixed mtime.
fn archive_bytes() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let head = |kind: tar::EntryType, path: &str, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(path).expect("tar path");
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(size);
        h
    };
    let mut h = head(tar::EntryType::Directory, "inner/", 0o755, 0);
    h.set_cksum();
    b.append(&h, io::empty()).expect("tar dir");
    let mut h = head(tar::EntryType::Regular, "inner/file.txt", 0o644, 5);
    h.set_cksum();
    b.append(&h, &b"file\n"[..]).expect("tar file");
    let mut h = head(tar::EntryType::Symlink, "inner/link", 0o777, 0);
    h.set_link_name("file.txt").expect("tar link");
    h.set_cksum();
    b.append(&h, io::empty()).expect("tar link");
    b.into_inner().expect("finish tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// `python3 -m http.server` on 127.0.0.1 (a free port), serving one directory.
/// Dropping it kills the server.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(env: &TestEnv, dir: &Path) -> HttpServer {
        let child = env
            .host(
                "python3",
                [
                    "-u",
                    "-m",
                    "http.server",
                    "0",
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    &dir.to_string_lossy(),
                ],
            )
            .timeout(BUILD_TIMEOUT * 4)
            .spawn();
        let mut port = None;
        wait_until(
            "python3 -m http.server to print its port",
            Duration::from_secs(20),
            || {
                // "Serving HTTP on 127.0.0.1 port 41235 (http://127.0.0.1:41235/) ..."
                port = child
                    .stdout_so_far()
                    .split_once(" port ")
                    .and_then(|(_, rest)| rest.split_whitespace().next().and_then(|p| p.parse().ok()));
                port.is_some()
            },
        );
        HttpServer {
            child,
            port: port.unwrap_or_default(),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.child.kill_group();
    }
}

/// `casco build ARGS... CONTEXT`, run to completion (status not checked).
fn build<S: AsRef<str>>(env: &TestEnv, args: &[S], ctx: &Path) -> Output {
    let mut cmd = env.casco(["build"]);
    for a in args {
        cmd = cmd.arg(a.as_ref());
    }
    cmd.arg(ctx).timeout(BUILD_TIMEOUT).run()
}

/// The image ID a build printed: its last line of stdout, 64 hex digits.
#[track_caller]
fn image_id(out: &Output) -> String {
    let last = out.stdout.lines().last().unwrap_or_default().trim().to_string();
    assert!(
        is_hex(&last, 64),
        "{}",
        out.report("the last line of stdout is not the image ID")
    );
    last
}

/// For each `STEP N/M:` of the (last stage of the) output, in order: whether it
/// printed `--> Using cache <64 hex>`.
fn cached_steps(out: &Output) -> Vec<(String, bool)> {
    let mut steps: Vec<(String, bool)> = Vec::new();
    for line in out.stdout.lines() {
        if line.starts_with("STEP ") {
            steps.push((line.to_string(), false));
        } else if let Some(id) = line.strip_prefix("--> Using cache ")
            && let Some(last) = steps.last_mut()
        {
            assert!(
                is_hex(id.trim(), 64),
                "{}",
                out.report("`--> Using cache` without a 64-hex ID")
            );
            last.1 = true;
        }
    }
    steps
}

/// How many `--> Using cache` lines a build printed.
fn cache_hits(out: &Output) -> usize {
    cached_steps(out).iter().filter(|(_, hit)| *hit).count()
}

/// `casco run --rm --entrypoint "" IMAGE /bin/busybox sh -c SCRIPT`, which must
/// succeed; its stdout.
#[track_caller]
fn sh(env: &TestEnv, image: &str, script: &str) -> String {
    env.casco([
        "run",
        "--rm",
        "--entrypoint",
        "",
        image,
        "/bin/busybox",
        "sh",
        "-c",
        script,
    ])
    .run()
    .success()
    .stdout
}

// ---------------------------------------------------------------------------
// Images as OCI pieces
// ---------------------------------------------------------------------------

/// One entry of a layer tar, as compared: no mtimes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    link: String,
    /// First 12 hex digits of the content's sha256 (regular files).
    sha: String,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:04o} {}:{}", self.kind, self.mode, self.uid, self.gid)?;
        if self.kind == "file" {
            write!(f, " {}B sha256:{}", self.size, self.sha)?;
        }
        if !self.link.is_empty() {
            write!(f, " -> {}", self.link)?;
        }
        Ok(())
    }
}

/// An image: manifest and config as stored (raw JSON), and each layer's
/// entries by path, bottom layer first.
struct Image {
    manifest: Value,
    config: Value,
    layers: Vec<BTreeMap<String, Entry>>,
    /// The layer blobs (possibly compressed), bottom first.
    blobs: Vec<PathBuf>,
}

impl Image {
    /// Whether any layer holds these bytes (decompressed).
    fn layers_contain(&self, needle: &[u8]) -> bool {
        self.blobs.iter().any(|b| {
            let mut data = Vec::new();
            open_layer(b)
                .read_to_end(&mut data)
                .unwrap_or_else(|e| panic!("read {}: {e}", b.display()));
            data.windows(needle.len()).any(|w| w == needle)
        })
    }

    /// Every path any layer has, with its entry in the topmost layer that has it.
    fn all_entries(&self) -> BTreeMap<String, Entry> {
        let mut all = BTreeMap::new();
        for l in &self.layers {
            all.extend(l.iter().map(|(p, e)| (p.clone(), e.clone())));
        }
        all
    }
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    layout.join("blobs/sha256").join(hex)
}

fn read_json(path: &Path) -> Value {
    let text = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A layer blob, decompressed by its first bytes (gzip, zstd or plain tar).
fn open_layer(path: &Path) -> Box<dyn Read> {
    let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if data.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(io::Cursor::new(data)))
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::new(io::Cursor::new(data)).expect("zstd decoder"))
    } else {
        Box::new(io::Cursor::new(data))
    }
}

fn layer_entries(path: &Path) -> BTreeMap<String, Entry> {
    let mut archive = tar::Archive::new(open_layer(path));
    let mut out = BTreeMap::new();
    for e in archive
        .entries()
        .unwrap_or_else(|e| panic!("read layer {}: {e}", path.display()))
    {
        let mut e = e.unwrap_or_else(|e| panic!("read layer {}: {e}", path.display()));
        let h = e.header().clone();
        let name = e.path().expect("entry path").to_string_lossy().into_owned();
        let name = name.trim_start_matches("./").trim_end_matches('/').to_string();
        if name.is_empty() || name == "." {
            continue;
        }
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => "file",
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "hardlink",
            tar::EntryType::Char => "char",
            tar::EntryType::Block => "block",
            tar::EntryType::Fifo => "fifo",
            other => panic!("layer {}: {name} has entry type {other:?}", path.display()),
        };
        let link = e
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut sha = String::new();
        if kind == "file" {
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read layer entry");
            sha = Sha256::digest(&data)
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect();
        }
        out.insert(
            name,
            Entry {
                kind,
                mode: h.mode().unwrap_or(0) & 0o7777,
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                size: if kind == "file" { h.size().unwrap_or(0) } else { 0 },
                link,
                sha,
            },
        );
    }
    out
}

/// The first (only) image of an OCI layout directory.
fn read_layout(dir: &Path) -> Image {
    let index = read_json(&dir.join("index.json"));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("{}/index.json lists no manifest: {index}", dir.display()));
    let manifest = read_json(&blob_path(dir, digest));
    let config = read_json(&blob_path(
        dir,
        manifest["config"]["digest"].as_str().expect("config digest"),
    ));
    let blobs: Vec<PathBuf> = manifest["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|l| blob_path(dir, l["digest"].as_str().expect("layer digest")))
        .collect();
    Image {
        manifest,
        config,
        layers: blobs.iter().map(|b| layer_entries(b)).collect(),
        blobs,
    }
}

fn scratch_dir(env: &TestEnv, what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    env.path(&format!("{what}-{}", N.fetch_add(1, Ordering::Relaxed)))
}

/// `casco save --format oci-dir` of IMAGE, read back: the stored manifest,
/// config and layers, byte for byte.
#[track_caller]
fn casco_image(env: &TestEnv, image: &str) -> Image {
    let dir = scratch_dir(env, "saved");
    env.casco(["save", "--format", "oci-dir", "-o"])
        .arg(&dir)
        .arg(image)
        .run()
        .success();
    read_layout(&dir)
}

/// The names of `dir`'s entries (lock files aside), for layer counts.
fn layer_dirs(env: &TestEnv) -> Vec<String> {
    store_entries(env, "layers")
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

// ---------------------------------------------------------------------------
// Buildah
// ---------------------------------------------------------------------------

/// buildah with a private vfs store in the test dir (root only), holding the
/// env's `busybox` image: same config and layer blob as casco's.
struct Buildah<'a> {
    env: &'a TestEnv,
    dir: PathBuf,
}

impl<'a> Buildah<'a> {
    #[track_caller]
    fn new(env: &'a TestEnv) -> Buildah<'a> {
        assert!(!env.is_rootless(), "buildah comparisons run as root");
        assert!(
            Path::new("/usr/bin/buildah").exists(),
            "buildah is missing: run `bash .ci/setup` (it installs buildah)"
        );
        let dir = env.mkdir("buildah");
        env.mkdir("buildah/tmp");
        let b = Buildah { env, dir };
        let tar = b.dir.join("base.tar");
        env.casco(["save", "--format", "oci-archive", "-o"])
            .arg(&tar)
            .arg("busybox")
            .run()
            .success();
        b.cmd(&["pull", "-q", &format!("oci-archive:{}", tar.display())])
            .run()
            .success();
        b
    }

    fn cmd<S: AsRef<str>>(&self, args: &[S]) -> Cmd<'a> {
        let mut all = vec![
            "--root".to_string(),
            self.dir.join("storage").display().to_string(),
            "--runroot".to_string(),
            self.dir.join("run").display().to_string(),
            "--storage-driver".to_string(),
            "vfs".to_string(),
        ];
        all.extend(args.iter().map(|a| a.as_ref().to_string()));
        // buildah keeps RUN --mount=type=cache directories under $TMPDIR
        // (/var/tmp by default), shared by every store: keep them in the test dir.
        self.env
            .host("buildah", all)
            .env("TMPDIR", self.dir.join("tmp"))
            .timeout(BUILD_TIMEOUT)
    }

    /// `buildah bud --layers ARGS... CONTEXT`.
    fn build<S: AsRef<str>>(&self, args: &[S], ctx: &Path) -> Output {
        let mut all = vec!["bud".to_string(), "--layers".to_string()];
        all.extend(args.iter().map(|a| a.as_ref().to_string()));
        all.push(ctx.display().to_string());
        self.cmd(&all).run()
    }

    /// The stored manifest and config (`buildah inspect`), and the layers
    /// (`buildah push` to an OCI layout; layer contents do not change on the way).
    #[track_caller]
    fn image(&self, name: &str) -> Image {
        let out = self.cmd(&["inspect", "--type", "image", name]).run().success();
        let v = out.json();
        let parse = |key: &str| -> Value {
            serde_json::from_str(v[key].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{}", out.report(&format!("buildah inspect .{key}: {e}"))))
        };
        let (manifest, config) = (parse("Manifest"), parse("Config"));
        let dir = scratch_dir(self.env, "buildah-pushed");
        self.cmd(&["push", "-q", name, &format!("oci:{}:latest", dir.display())])
            .run()
            .success();
        let pushed = read_layout(&dir);
        Image {
            manifest,
            config,
            layers: pushed.layers,
            blobs: pushed.blobs,
        }
    }
}

// ---------------------------------------------------------------------------
// Comparing with buildah
// ---------------------------------------------------------------------------

/// Where a deliberate difference lies.
#[derive(Debug, PartialEq, Eq)]
enum Field<'a> {
    /// A top-level key of the image config.
    Top(&'a str),
    /// A key of the config's `config` object.
    Config(&'a str),
    /// A key of `config.Labels`.
    Label(&'a str),
    /// A key of every history entry.
    History(&'a str),
    /// A key of the manifest's annotations.
    Annotation(&'a str),
    /// An empty file or directory that only buildah's layer has.
    BuildahEntry(&'a str),
}

/// Differences from buildah that are deliberate, with the reason: never reported.
/// Everything else in config, history, manifest media types and layer entries
/// must match.
const IGNORED: &[(Field<'static>, &str)] = &[
    (
        Field::Label("io.buildah.version"),
        "buildah stamps its own version on every image it builds",
    ),
    (Field::Top("created"), "a timestamp"),
    (Field::History("created"), "a timestamp"),
    (
        Field::History("comment"),
        "buildah notes the image each step started from (`FROM 5e34ba9172b1`), an ID of its own store",
    ),
    (
        Field::Top("rootfs"),
        "layer digests depend on tar details (mtimes, header formats); the layer count and every \
         entry of every layer are compared instead",
    ),
    (
        Field::Annotation("org.opencontainers.image.base.name"),
        "buildah names the image the last stage started from; with --layers it even names whichever \
         cached image it found",
    ),
    (
        Field::Annotation("org.opencontainers.image.base.digest"),
        "the same, by digest",
    ),
    // Docker v1 legacy fields that buildah fills from its working container in
    // docker format; OCI configs have none of them.
    (Field::Top("container"), "ID of buildah's working container"),
    (
        Field::Top("container_config"),
        "buildah's working container's config (a copy of config)",
    ),
    (
        Field::Top("docker_version"),
        "the Docker version a docker-format image claims",
    ),
    (Field::Top("parent"), "an image ID of buildah's own store"),
    (
        Field::Config("Hostname"),
        "buildah's working container's hostname (random)",
    ),
    (Field::Config("Domainname"), "buildah's working container's domain name"),
    (Field::Config("AttachStdin"), "runtime setting of a docker v1 container"),
    (
        Field::Config("AttachStdout"),
        "runtime setting of a docker v1 container",
    ),
    (
        Field::Config("AttachStderr"),
        "runtime setting of a docker v1 container",
    ),
    (Field::Config("Tty"), "runtime setting of a docker v1 container"),
    (Field::Config("OpenStdin"), "runtime setting of a docker v1 container"),
    (Field::Config("StdinOnce"), "runtime setting of a docker v1 container"),
    (Field::Config("Image"), "docker v1: the image a container ran"),
    // buildah creates these to bind-mount over in RUN and commits them, empty.
    (Field::BuildahEntry("etc"), "parent of the next three"),
    (Field::BuildahEntry("etc/hostname"), "buildah's RUN mount point"),
    (Field::BuildahEntry("etc/hosts"), "buildah's RUN mount point"),
    (Field::BuildahEntry("etc/resolv.conf"), "buildah's RUN mount point"),
    (
        Field::BuildahEntry("run"),
        "buildah's RUN mount point (run/.containerenv, run/secrets)",
    ),
    (Field::BuildahEntry("run/secrets"), "buildah's RUN mount point"),
];

fn ignored(f: &Field<'_>) -> bool {
    IGNORED.iter().any(|(i, _)| i == f)
}

/// Keys of two JSON objects (absent or null objects have none), sorted.
fn keys(a: &Value, b: &Value) -> BTreeSet<String> {
    let mut k = BTreeSet::new();
    for v in [a, b] {
        if let Some(o) = v.as_object() {
            k.extend(o.keys().cloned());
        }
    }
    k
}

/// Absent, null, false, "", [] and {} all mean "not set".
fn norm(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        Some(Value::Array(a)) if a.is_empty() => Value::Null,
        Some(Value::Object(o)) if o.is_empty() => Value::Null,
        Some(v) => v.clone(),
    }
}

fn differ(diffs: &mut Vec<String>, what: &str, casco: Option<&Value>, buildah: Option<&Value>) {
    let (c, b) = (norm(casco), norm(buildah));
    if c != b {
        diffs.push(format!("{what}: casco {c} | buildah {b}"));
    }
}

/// `created_by` with the content digest of a COPY/ADD (`file:<hex>`,
/// `dir:<hex>`, `multi:<hex>`, or a bare `<hex>` for a URL) cut: that digest is
/// buildah's own summary of the copied content, which no other builder
/// computes the same way. The words around it are still compared.
fn created_by(h: &Value) -> Value {
    let Some(s) = h.get("created_by").and_then(Value::as_str) else {
        return norm(h.get("created_by"));
    };
    let mut out = String::new();
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.split_once(':') {
            Some((kind @ ("file" | "dir" | "multi"), hex)) if is_hex(hex, 64) => {
                out.push_str(kind);
                out.push_str(":<digest>");
            }
            _ if is_hex(word, 64) => out.push_str("<digest>"),
            _ => out.push_str(word),
        }
    }
    Value::String(out)
}

/// Every difference between casco's image and buildah's that [`IGNORED`] does
/// not excuse. `mounts` are more paths whose empty entries only buildah's
/// layers may have (a RUN --mount target, a -v destination).
fn compare(casco: &Image, buildah: &Image, mounts: &[&str]) -> Vec<String> {
    let mut d = Vec::new();
    let (c, b) = (&casco.config, &buildah.config);
    for key in keys(c, b) {
        if matches!(key.as_str(), "config" | "history") || ignored(&Field::Top(&key)) {
            continue;
        }
        differ(&mut d, &key, c.get(&key), b.get(&key));
    }
    let (cc, bc) = (&c["config"], &b["config"]);
    for key in keys(cc, bc) {
        if ignored(&Field::Config(&key)) {
            continue;
        }
        if key == "Labels" {
            let strip = |v: &Value| -> Value {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.retain(|k, _| !ignored(&Field::Label(k)));
                }
                v
            };
            differ(
                &mut d,
                "config.Labels",
                Some(&strip(&cc[&key])),
                Some(&strip(&bc[&key])),
            );
        } else {
            differ(&mut d, &format!("config.{key}"), cc.get(&key), bc.get(&key));
        }
    }
    let empty = Vec::new();
    let ch = c["history"].as_array().unwrap_or(&empty);
    let bh = b["history"].as_array().unwrap_or(&empty);
    if ch.len() != bh.len() {
        let list = |h: &[Value]| -> String {
            h.iter()
                .map(|e| {
                    format!(
                        "\n    {} {}",
                        created_by(e),
                        if e["empty_layer"] == json!(true) { "(empty)" } else { "" }
                    )
                })
                .collect()
        };
        d.push(format!(
            "history: {} entries in casco, {} in buildah\n  casco:{}\n  buildah:{}",
            ch.len(),
            bh.len(),
            list(ch),
            list(bh)
        ));
    } else {
        for (i, (ce, be)) in ch.iter().zip(bh).enumerate() {
            for key in keys(ce, be) {
                if ignored(&Field::History(&key)) {
                    continue;
                }
                let what = format!("history[{i}].{key}");
                if key == "created_by" {
                    differ(&mut d, &what, Some(&created_by(ce)), Some(&created_by(be)));
                } else {
                    differ(&mut d, &what, ce.get(&key), be.get(&key));
                }
            }
        }
    }
    let (cm, bm) = (&casco.manifest, &buildah.manifest);
    differ(&mut d, "manifest.mediaType", cm.get("mediaType"), bm.get("mediaType"));
    differ(
        &mut d,
        "manifest.config.mediaType",
        cm["config"].get("mediaType"),
        bm["config"].get("mediaType"),
    );
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.retain(|k, _| !ignored(&Field::Annotation(k)));
        }
        v
    };
    differ(
        &mut d,
        "manifest.annotations",
        Some(&strip(&cm["annotations"])),
        Some(&strip(&bm["annotations"])),
    );
    if casco.layers.len() != buildah.layers.len() {
        let list = |img: &Image| -> String {
            img.layers
                .iter()
                .enumerate()
                .map(|(i, l)| format!("\n    {i}: {}", l.keys().cloned().collect::<Vec<_>>().join(" ")))
                .collect()
        };
        d.push(format!(
            "layers: {} in casco, {} in buildah\n  casco:{}\n  buildah:{}",
            casco.layers.len(),
            buildah.layers.len(),
            list(casco),
            list(buildah)
        ));
        return d;
    }
    for (i, (cl, bl)) in casco.layers.iter().zip(&buildah.layers).enumerate() {
        let paths: BTreeSet<&String> = cl.keys().chain(bl.keys()).collect();
        for p in paths {
            match (cl.get(p), bl.get(p)) {
                (Some(ce), Some(be)) if ce != be => d.push(format!("layer {i}: {p}: casco {ce} | buildah {be}")),
                (Some(ce), None) => d.push(format!("layer {i}: {p}: only casco has it ({ce})")),
                (None, Some(be)) => {
                    let empty = be.kind == "dir" || (be.kind == "file" && be.size == 0);
                    let excused = ignored(&Field::BuildahEntry(p)) || mounts.iter().any(|m| m == p);
                    if !(empty && excused) {
                        d.push(format!("layer {i}: {p}: only buildah has it ({be})"));
                    }
                }
                _ => {}
            }
        }
    }
    d
}

/// Panics listing every difference, if there is one.
#[track_caller]
fn assert_no_differences(what: &str, diffs: &[String]) {
    assert!(
        diffs.is_empty(),
        "{what}: casco's image differs from buildah's in {} place(s):\n  {}",
        diffs.len(),
        diffs.join("\n  ")
    );
}

/// Builds `case` with casco and with buildah, with the prepared flags plus
/// `flags`, tagged `case`; both must succeed. Returns both images.
#[track_caller]
fn build_both<'a>(env: &'a TestEnv, b: &Buildah<'a>, case: &str, p: &Prepared, flags: &[&str]) -> (Image, Image) {
    let args = p.with(&[&["-t", case], flags].concat());
    build(env, &args, &p.ctx).success();
    b.build(&args, &p.ctx).success();
    (casco_image(env, case), b.image(case))
}

/// The whole comparison for one case: a fresh root env, busybox in casco and in
/// buildah, the case prepared, built by both with `flags`, compared.
#[track_caller]
fn assert_like_buildah(case: &str, flags: &[&str], mounts: &[&str]) {
    assert_like_buildah_except(case, flags, mounts, &[]);
}

/// [`assert_like_buildah`] where casco differs on purpose: each difference
/// that starts with one of `deliberate`'s prefixes is excused (the second
/// element says why), and each prefix must excuse something, so that a
/// deliberate difference that went away is noticed.
#[track_caller]
fn assert_like_buildah_except(case: &str, flags: &[&str], mounts: &[&str], deliberate: &[(&str, &str)]) {
    let env = TestEnv::root();
    env.import_busybox("busybox");
    let b = Buildah::new(&env);
    let p = prepare(&env, case);
    let (c, bi) = build_both(&env, &b, case, &p, flags);
    let diffs = compare(&c, &bi, mounts);
    for (prefix, why) in deliberate {
        assert!(
            diffs.iter().any(|d| d.starts_with(prefix)),
            "{case}: the deliberate difference {prefix:?} ({why}) is gone: update the test\n  {}",
            diffs.join("\n  ")
        );
    }
    let left: Vec<String> = diffs
        .into_iter()
        .filter(|d| !deliberate.iter().any(|(prefix, _)| d.starts_with(prefix)))
        .collect();
    assert_no_differences(&format!("{case} {flags:?}"), &left);
}

// ---------------------------------------------------------------------------
// Output, tags, labels, annotations, formats, squash
// ---------------------------------------------------------------------------

both! {
    /// podman 4.3.1: `STEP N/M: INSTRUCTION` per step (as written), a RUN's
    /// output, `--> <ID>` after each step (podman prints 11 hex digits, the
    /// brief 12: either is accepted), `COMMIT NAME` and `Successfully tagged
    /// localhost/NAME:latest`, and the full image ID as the last line.
    fn output_is_podmans(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "layers");
        let out = build(&env, &["-t", "out"], &ctx).success();
        let lines = out.lines();
        let steps: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("STEP ")).collect();
        assert_eq!(
            steps,
            [
                "STEP 1/5: FROM busybox",
                "STEP 2/5: RUN echo 1 > /one",
                "STEP 3/5: COPY two.txt /two",
                "STEP 4/5: RUN echo 3 > /three",
                "STEP 5/5: LABEL fromfile=yes",
            ],
            "{}",
            out.report("STEP lines")
        );
        let arrows: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("--> ")).collect();
        assert_eq!(arrows.len(), 4, "{}", out.report("one `--> ID` after each step but FROM"));
        assert!(
            arrows.iter().all(|a| is_hex(a, 11) || is_hex(a, 12)),
            "{}",
            out.report("`--> ` followed by a short image ID")
        );
        assert!(lines.contains(&"COMMIT out"), "{}", out.report("no `COMMIT out`"));
        assert!(
            lines.contains(&"Successfully tagged localhost/out:latest"),
            "{}",
            out.report("no `Successfully tagged localhost/out:latest`")
        );
        let id = image_id(&out);
        let inspect = env.casco(["image", "inspect", "out"]).run().success().json();
        assert_eq!(inspect[0]["Id"], json!(id), "the printed ID is the image's");
        // The step ID after the last step is the image's own short ID.
        assert!(id.starts_with(arrows[3]), "{}", out.report("last `-->` is not the image's ID"));
    }
}

both! {
    /// podman 4.3.1: `-q` prints only the image ID; `--iidfile F` writes
    /// `sha256:<ID>` (no newline) to F; `-t` twice tags both names.
    fn quiet_iidfile_and_several_tags(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "layers");
        let iid = env.path("iid");
        let out = build(
            &env,
            &["-q", "-t", "first", "-t", "second:v2", "--iidfile", &iid.to_string_lossy()],
            &ctx,
        )
        .success();
        let id = image_id(&out);
        assert_eq!(out.stdout, format!("{id}\n"), "{}", out.report("-q prints the ID alone"));
        assert_eq!(fs::read_to_string(&iid).unwrap_or_default(), format!("sha256:{id}"));
        let v = env.casco(["image", "inspect", "first"]).run().success().json();
        let mut tags: Vec<&str> = v[0]["RepoTags"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        tags.sort();
        assert_eq!(tags, ["localhost/first:latest", "localhost/second:v2"]);
    }
}

both! {
    /// podman 4.3.1: `--label` adds to the config's labels and wins over the
    /// Containerfile's LABEL; `--annotation` lands in the manifest.
    fn label_and_annotation_flags(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "layers");
        build(
            &env,
            &["-t", "lab", "--label", "extra=yes", "--label", "fromfile=overridden", "--annotation", "org.example.note=hi"],
            &ctx,
        )
        .success();
        let img = casco_image(&env, "lab");
        assert_eq!(img.config["config"]["Labels"]["extra"], json!("yes"));
        assert_eq!(img.config["config"]["Labels"]["fromfile"], json!("overridden"));
        assert_eq!(img.manifest["annotations"]["org.example.note"], json!("hi"), "manifest: {}", img.manifest);
    }
}

both! {
    /// podman 4.3.1: the default format is OCI; `--format docker` stores a
    /// Docker v2 schema 2 manifest and a Docker config.
    fn format_docker(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "layers");
        build(&env, &["-t", "oci"], &ctx).success();
        build(&env, &["-t", "dock", "--format", "docker"], &ctx).success();
        let oci = casco_image(&env, "oci");
        assert_eq!(oci.manifest["mediaType"], json!("application/vnd.oci.image.manifest.v1+json"));
        assert_eq!(oci.manifest["config"]["mediaType"], json!("application/vnd.oci.image.config.v1+json"));
        let dock = casco_image(&env, "dock");
        assert_eq!(dock.manifest["mediaType"], json!("application/vnd.docker.distribution.manifest.v2+json"));
        assert_eq!(dock.manifest["config"]["mediaType"], json!("application/vnd.docker.container.image.v1+json"));
        let v = env.casco(["image", "inspect", "dock"]).run().success().json();
        assert_eq!(v[0]["ManifestType"], json!("application/vnd.docker.distribution.manifest.v2+json"));
        assert_eq!(sh(&env, "dock", "cat /one /two /three"), "1\ntwo\n3\n");
    }
}

both! {
    /// podman 4.3.1 on the `layers` case (busybox + RUN, COPY, RUN, LABEL):
    /// 4 layers by default; `--squash` keeps the base and squashes the new ones
    /// (2); `--squash-all` makes one; `--layers=false` commits once per stage
    /// (2). The files are all there each time.
    fn squash_and_layers_false(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "layers");
        for (flags, layers) in [
            (&[][..], 4),
            (&["--squash"][..], 2),
            (&["--squash-all"][..], 1),
            (&["--layers=false"][..], 2),
        ] {
            let tag = format!("sq{layers}-{}", flags.len());
            let args = [&["-t", tag.as_str()][..], flags].concat();
            build(&env, &args, &ctx).success();
            let img = casco_image(&env, &tag);
            assert_eq!(img.layers.len(), layers, "{flags:?}: layers {:?}", img.manifest["layers"]);
            assert_eq!(
                img.config["rootfs"]["diff_ids"].as_array().map(Vec::len),
                Some(layers),
                "{flags:?}: diff_ids"
            );
            assert_eq!(sh(&env, &tag, "cat /one /two /three"), "1\ntwo\n3\n", "{flags:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Instructions
// ---------------------------------------------------------------------------

both! {
    /// Every metadata instruction: MAINTAINER, LABEL (continuations, a comment
    /// inside one, quoted keys), ENV both forms, EXPOSE (80, 53/udp), WORKDIR
    /// (relative after absolute, with a variable), USER, VOLUME both forms,
    /// STOPSIGNAL, ENTRYPOINT and CMD; `# syntax=` is accepted. HEALTHCHECK
    /// with its flags is checked in docker format (buildah keeps it only there).
    fn metadata_instructions(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "metadata");
        build(&env, &["-t", "meta"], &ctx).success();
        let img = casco_image(&env, "meta");
        let c = &img.config;
        assert_eq!(c["author"], json!("casco tests <tests@example.org>"));
        let cfg = &c["config"];
        assert_eq!(cfg["Labels"]["org.example.title"], json!("casco build test"));
        assert_eq!(cfg["Labels"]["org.example.multi"], json!("a b"));
        assert_eq!(cfg["Labels"]["plain"], json!("value"));
        assert_eq!(cfg["Labels"]["quoted key"], json!("quoted value"));
        assert_eq!(
            cfg["Env"],
            json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "GREETING=hello",
                "OTHER=two words",
                "LEGACY=legacy form value"
            ])
        );
        assert_eq!(cfg["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}, "8080/tcp": {}}));
        assert_eq!(cfg["WorkingDir"], json!("/srv/app/hello"));
        assert_eq!(cfg["User"], json!("tester"));
        assert_eq!(cfg["Volumes"], json!({"/data": {}, "/cache": {}, "/logs": {}}));
        assert_eq!(cfg["StopSignal"], json!("SIGUSR1"));
        assert_eq!(cfg["Entrypoint"], json!(["/bin/sh", "-c"]));
        assert_eq!(cfg["Cmd"], json!(["echo $GREETING from $(pwd) as $(id -u)"]));
        env.casco(["run", "--rm", "meta"])
            .run()
            .success()
            .stdout_is("hello from /srv/app/hello as 1000\n");

        build(&env, &["-t", "meta-docker", "--format", "docker"], &ctx).success();
        let img = casco_image(&env, "meta-docker");
        assert_eq!(
            img.config["config"]["Healthcheck"],
            json!({
                "Test": ["CMD", "cat", "/etc/passwd"],
                "Interval": 30_000_000_000u64,
                "Timeout": 5_000_000_000u64,
                "StartPeriod": 10_000_000_000u64,
                "Retries": 4
            })
        );
    }
}

both! {
    /// `HEALTHCHECK NONE` clears an inherited healthcheck (docker format, where
    /// buildah keeps healthchecks).
    fn healthcheck_none(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "metadata");
        build(&env, &["-t", "withcheck", "--format", "docker"], &ctx).success();
        let file = env.write_file("none.containerfile", "FROM withcheck\nHEALTHCHECK NONE\n");
        build(&env, &["-t", "nocheck", "--format", "docker", "-f", &file.to_string_lossy()], &ctx).success();
        let img = casco_image(&env, "nocheck");
        assert_eq!(img.config["config"]["Healthcheck"], json!({"Test": ["NONE"]}));
    }
}

both! {
    /// Substitution in ENV, LABEL, WORKDIR, EXPOSE, USER: `$V ${V} ${V:-d}
    /// ${V:+a}`, an escaped `\$V`, single quotes keeping `$V`, empty values
    /// counting as unset for `:-`; RUN sees the ENV values.
    fn variable_substitution(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "expand");
        build(&env, &["-t", "exp"], &ctx).success();
        let cfg = casco_image(&env, "exp").config["config"].clone();
        assert_eq!(
            cfg["Env"],
            json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "V=value", "EMPTY=", "A=value", "B=value", "C=default", "D=alt", "E=", "F=dflt",
                "G=$V", "H=$V", "I=value-x"
            ])
        );
        assert_eq!(cfg["Labels"]["l1"], json!("value"));
        assert_eq!(cfg["Labels"]["l2"], json!("valuesuffix"));
        assert_eq!(cfg["Labels"]["l3"], json!("fallback"));
        assert_eq!(cfg["WorkingDir"], json!("/w/value"));
        assert_eq!(cfg["ExposedPorts"], json!({"8080/tcp": {}}));
        assert_eq!(cfg["User"], json!("nobody"));
        assert_eq!(sh(&env, "exp", "cat /tmp/expanded"), "value|value|default|alt||dflt|$V|$V|value-x\n");
    }
}

both! {
    /// RUN in shell form (`/bin/sh -c`), exec form (through a shell and
    /// directly), output of both streams shown; SHELL changes the shell of later
    /// RUNs and of shell-form CMD. Docker format, where buildah keeps SHELL.
    fn run_forms_and_shell(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "run");
        let out = build(&env, &["-t", "runs", "--format", "docker"], &ctx).success();
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains("to stdout") && all.contains("to stderr"), "{}", out.report("RUN output"));
        assert!(
            out.stdout.contains("custom-shell: hello from the custom shell"),
            "{}",
            out.report("RUN through SHELL [\"/bin/echo\", \"custom-shell:\"]")
        );
        assert_eq!(
            sh(&env, "runs", "cat /shell.txt /shell0.txt /exec.txt; test -e /exec-direct && echo direct"),
            "shell form\n/bin/sh\nexec form\ndirect\n"
        );
        assert!(sh(&env, "runs", "cat /shell-flags.txt").contains('e'), "SHELL [\"/bin/sh\", \"-e\", \"-c\"] sets -e");
        let img = casco_image(&env, "runs");
        assert_eq!(img.config["config"]["Cmd"], json!(["/bin/echo", "custom-shell:", "echo shell-form cmd"]));
    }
}

both! {
    /// SHELL applies to RUN whatever the image format (BuildKit; buildah 1.28
    /// ignores SHELL in OCI format, with a warning).
    fn shell_applies_in_oci_format(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "run");
        let out = build(&env, &["-t", "runs"], &ctx).success();
        assert!(
            out.stdout.contains("custom-shell: hello from the custom shell"),
            "{}",
            out.report("RUN through SHELL in OCI format")
        );
    }
}

both! {
    /// podman 4.3.1: a failing RUN fails the build with the RUN's exit status
    /// (7 here); later steps do not run and no image is tagged.
    fn failing_run_exits_with_its_status(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "run-fail");
        let out = build(&env, &["-t", "failed"], &ctx).code(7).says_why();
        assert!(out.stdout.contains("failing now"), "{}", out.report("the RUN's output"));
        assert!(!out.stdout.contains("never"), "{}", out.report("a step after the failure ran"));
        env.casco(["image", "inspect", "failed"]).run().failure();
    }
}

both! {
    /// Heredocs (BuildKit syntax; buildah 1.28 has none): RUN with a heredoc
    /// script, `<<-` tab stripping, a heredoc as a command's stdin, COPY from a
    /// heredoc with expansion, with a quoted delimiter (no expansion), and two
    /// heredocs into a directory (files named after the delimiters).
    fn heredocs(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "heredoc");
        build(&env, &["-t", "here"], &ctx).success();
        assert_eq!(
            sh(&env, "here", "cat /heredoc1 /heredoc2 /withcmd /copied.txt /literal.txt /multi/ONE /multi/TWO"),
            "heredoc line 1\nheredoc line 2\ntab-stripped\ninline world\nhello world\nhello $NAME\none\ntwo\n"
        );
    }
}

both! {
    /// ARG before FROM (used in FROM, visible in the stage only once declared
    /// again), defaults, `--build-arg`, `--build-arg-file` (comments skipped,
    /// the command line wins), and proxy variables: HTTP_PROXY reaches RUN with
    /// no ARG but stays out of the config and the history.
    fn build_args(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "args");
        build(&env, &["-t", "a1"], &ctx).success();
        assert_eq!(
            sh(&env, "a1", "cat /args.txt"),
            "base=busybox who=default-who fromfile=unset empty=[] global=[] proxy=[]\n"
        );
        let file = ctx.join("build-args.conf");
        build(
            &env,
            &[
                "-t", "a2", "--build-arg", "WHO=cli", "--build-arg-file", &file.to_string_lossy(),
                "--build-arg", "HTTP_PROXY=http://proxy.invalid:3128",
            ],
            &ctx,
        )
        .success();
        assert_eq!(
            sh(&env, "a2", "cat /args.txt"),
            "base=busybox who=cli fromfile=from-the-file empty=[] global=[] proxy=[http://proxy.invalid:3128]\n"
        );
        let img = casco_image(&env, "a2");
        assert_eq!(
            img.config["config"]["Env"],
            json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "KEEP=cli"])
        );
        // The RUN's own text names $HTTP_PROXY; its value must appear nowhere.
        let text = img.config.to_string();
        assert!(!text.contains("proxy.invalid"), "the proxy value is in the config: {text}");
    }
}

both! {
    /// Multi-stage: `AS` names, COPY --from a stage by name and by index and
    /// from an image, FROM another stage, FROM scratch; a stage the target does
    /// not need is not built (its failing RUN must not run); `--target` stops at
    /// a stage.
    fn stages_and_target(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "stages");
        let out = build(&env, &["-t", "final"], &ctx).success();
        assert!(!out.stdout.contains("this stage must not run"), "{}", out.report("the unused stage ran"));
        env.casco(["run", "--rm", "final"]).run().success().stdout_is("built\nmiddle\nsecond\n");
        let img = casco_image(&env, "final");
        let files: Vec<String> = img.all_entries().into_iter().filter(|(_, e)| e.kind == "file").map(|(p, _)| p).collect();
        assert_eq!(files, ["artifact", "bin/busybox", "middle", "other"], "FROM scratch holds only the copies");

        build(&env, &["-t", "mid", "--target", "middle"], &ctx).success();
        assert_eq!(sh(&env, "mid", "cat /out/middle; test -e /artifact || echo no-artifact"), "middle\nno-artifact\n");
        assert_eq!(casco_image(&env, "mid").config["config"]["Labels"]["stage"], json!("middle"));
    }
}

both! {
    /// COPY: a file into a directory, a directory's contents, several sources,
    /// --chown numeric and by name (from the image's passwd/group), --chmod,
    /// globs, an executable keeping its mode, a relative destination under
    /// WORKDIR.
    fn copy_flags(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "copy");
        build(&env, &["-t", "cp"], &ctx).success();
        let listing = sh(
            &env,
            "cp",
            "cd / && for p in dst/a.txt tree/a.txt tree/c.txt tree/sub/b.txt two/a.txt two/c.txt owned-numeric.txt \
             owned-dir owned-dir/b.txt mode640.txt exec-b glob/a.txt glob/c.txt usr/local/bin/script.sh rel/relative.txt; \
             do stat -c '%n %a %u:%g' $p; done; test -e /glob/sub || echo glob-no-sub; script.sh",
        );
        assert_eq!(
            listing,
            "dst/a.txt 644 0:0\ntree/a.txt 644 0:0\ntree/c.txt 644 0:0\ntree/sub/b.txt 644 0:0\n\
             two/a.txt 644 0:0\ntwo/c.txt 644 0:0\nowned-numeric.txt 644 1000:1000\nowned-dir 755 1000:1000\n\
             owned-dir/b.txt 644 1000:1000\nmode640.txt 640 0:0\nexec-b 755 0:0\nglob/a.txt 644 0:0\n\
             glob/c.txt 644 0:0\nusr/local/bin/script.sh 755 0:0\nrel/relative.txt 644 0:0\nglob-no-sub\nscript ran\n"
        );
        assert_eq!(sh(&env, "cp", "cat /dst/a.txt /tree/sub/b.txt"), "a\nb\n");
    }
}

both! {
    /// `COPY --link` (BuildKit; buildah 1.28 refuses the flag): the files land
    /// as with a plain COPY, --chmod applies to a directory's files.
    fn copy_link(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "copy");
        let file = ctx.join("Containerfile.link");
        build(&env, &["-t", "linked", "-f", &file.to_string_lossy()], &ctx).success();
        assert_eq!(
            sh(&env, "linked", "cat /linked/a.txt /linked/sub/b.txt; stat -c '%a' /linked/sub/b.txt"),
            "a\nb\n600\n"
        );
    }
}

both! {
    /// ADD: a local tar and a local tar.gz are extracted (symlinks kept), a
    /// plain file is copied; from a URL a file lands with mode 0600 and an
    /// archive is not extracted.
    fn add_local_and_url(env) {
        env.import_busybox("busybox");
        let p = prepare(&env, "add");
        build(&env, &p.with(&["-t", "added"]), &p.ctx).success();
        assert_eq!(
            sh(
                &env,
                "added",
                "cat /extracted/inner/file.txt /extracted-gz/inner/file.txt /plain.txt /remote/remote.txt; \
                 readlink /extracted/inner/link; stat -c '%a' /remote/remote.txt; \
                 tar -tf /remote-archive.tar | head -1"
            ),
            "file\nfile\nplain\nremote\nfile.txt\n600\ninner/\n"
        );
    }
}

both! {
    /// `ADD --checksum=sha256:..` (BuildKit; buildah 1.28 lacks it): a matching
    /// digest passes, a wrong one fails the build (125) and says so.
    fn add_checksum(env) {
        env.import_busybox("busybox");
        let p = prepare(&env, "add-checksum");
        build(&env, &p.with(&["-t", "sum"]), &p.ctx).success();
        assert_eq!(sh(&env, "sum", "cat /checked.txt"), "remote\n");
        let bad = prepare(&env, "add-checksum-bad");
        let out = build(&env, &bad.with(&["-t", "badsum"]), &bad.ctx).code(125).says_why();
        let err = out.stderr.to_lowercase();
        assert!(err.contains("checksum") || err.contains("digest"), "{}", out.report("no word of the checksum"));
        env.casco(["image", "inspect", "badsum"]).run().failure();
    }
}

both! {
    /// `ADD --checksum=${SUM}`: BuildKit expands variables in the flag
    /// (moby/buildkit#3287).
    fn add_checksum_from_a_variable(env) {
        env.import_busybox("busybox");
        let p = prepare(&env, "add-checksum");
        let file = p.ctx.join("Containerfile.expand");
        build(&env, &p.with(&["-t", "sumvar", "-f", &file.to_string_lossy()]), &p.ctx).success();
        assert_eq!(sh(&env, "sumvar", "cat /checked.txt"), "remote\n");
    }
}

both! {
    /// ONBUILD (docker format; buildah drops it in OCI format): the triggers are
    /// stored in the parent, not run there, and run (RUN and COPY from the
    /// child's context) in a build FROM it, which does not inherit them.
    fn onbuild_triggers(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "onbuild");
        let parent = ctx.join("Containerfile");
        build(&env, &["-t", "onbuild-parent", "--format", "docker", "-f", &parent.to_string_lossy()], &ctx).success();
        let img = casco_image(&env, "onbuild-parent");
        assert_eq!(
            img.config["config"]["OnBuild"],
            json!(["RUN echo triggered > /onbuild-ran", "COPY trigger.txt /trigger.txt"])
        );
        let child = ctx.join("Containerfile.child");
        build(&env, &["-t", "onbuild-child", "--format", "docker", "-f", &child.to_string_lossy()], &ctx).success();
        assert_eq!(sh(&env, "onbuild-child", "cat /child-saw"), "triggered\nfrom the child context\n");
        let img = casco_image(&env, "onbuild-child");
        assert_eq!(norm(img.config["config"].get("OnBuild")), Value::Null, "triggers are not inherited");
    }
}

both! {
    /// `# escape=\`` makes the backtick the line-continuation character and the
    /// backslash an ordinary one.
    fn escape_directive(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "escape");
        build(&env, &["-t", "esc"], &ctx).success();
        let cfg = casco_image(&env, "esc").config["config"].clone();
        assert!(cfg["Env"].as_array().unwrap().contains(&json!("WIN=C:\\dir\\file")), "Env {}", cfg["Env"]);
        assert_eq!(cfg["Labels"]["multi"], json!("one"));
        assert_eq!(cfg["Labels"]["other"], json!("two"));
        assert_eq!(sh(&env, "esc", "cat /win.txt"), "C:\\path\\file\ncontinued line\n");
    }
}

/// `find /ctx` in IMAGE, sorted, one path per line.
fn listed(env: &TestEnv, image: &str) -> String {
    sh(env, image, "find /ctx | sort")
}

both! {
    /// .containerignore (`**`, a directory, `!` re-inclusion, a comment) wins
    /// over .dockerignore, whose pattern then does not apply.
    fn containerignore(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "ignore");
        build(&env, &["-t", "ign"], &ctx).success();
        assert_eq!(
            listed(&env, "ign"),
            "/ctx\n/ctx/.containerignore\n/ctx/.dockerignore\n/ctx/Containerfile\n/ctx/app.txt\n/ctx/docs\n\
             /ctx/docs/keep.md\n/ctx/keep-by-docker.txt\n/ctx/sub\n/ctx/sub/deep\n/ctx/sub/kept.txt\n"
        );
    }
}

both! {
    /// .dockerignore alone: `**/*.log` at any depth, `!important.log` re-includes
    /// only the top-level one, and ignoring the Containerfile does not stop
    /// the build from reading it.
    fn dockerignore(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "ignore-docker");
        build(&env, &["-t", "ign"], &ctx).success();
        assert_eq!(
            listed(&env, "ign"),
            "/ctx\n/ctx/.dockerignore\n/ctx/a\n/ctx/a/b\n/ctx/app.txt\n/ctx/important.log\n"
        );
    }
}

both! {
    /// `-f -` reads the Containerfile from stdin; `-f FILE` outside the context;
    /// with no -f a Dockerfile is used when there is no Containerfile, and a
    /// Containerfile wins when there are both.
    fn containerfile_sources(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "layers");
        let text = fs::read_to_string(ctx.join("Containerfile")).unwrap();
        env.casco(["build", "-t", "fromstdin", "-f", "-"])
            .arg(&ctx)
            .stdin(text)
            .timeout(BUILD_TIMEOUT)
            .run()
            .success();
        assert_eq!(sh(&env, "fromstdin", "cat /one /two /three"), "1\ntwo\n3\n");

        let other = env.write_file("elsewhere/My.containerfile", "FROM busybox\nCOPY two.txt /copied-two\n");
        build(&env, &["-t", "elsewhere", "-f", &other.to_string_lossy()], &ctx).success();
        assert_eq!(sh(&env, "elsewhere", "cat /copied-two"), "two\n");

        let dctx = context(&env, "dockerfile-default");
        build(&env, &["-t", "picked"], &dctx).success();
        assert_eq!(casco_image(&env, "picked").config["config"]["Labels"]["picked"], json!("Dockerfile"));
        env.write_file("dockerfile-default/Containerfile", "FROM busybox\nLABEL picked=Containerfile\n");
        build(&env, &["-t", "picked2"], &dctx).success();
        assert_eq!(casco_image(&env, "picked2").config["config"]["Labels"]["picked"], json!("Containerfile"));
    }
}

both! {
    /// `--platform` and `FROM --platform=$BUILDPLATFORM` with the host's
    /// platform work and set the automatic platform ARGs; a foreign platform
    /// is refused rather than built wrong.
    fn platform_host_only(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "platform");
        let host = format!("linux/{}", oci_arch());
        build(&env, &["-t", "plat", "--platform", &host], &ctx).success();
        assert_eq!(
            sh(&env, "plat", "cat /platform.txt"),
            format!("build={host} target={host} arch={}\n", oci_arch())
        );
        let img = casco_image(&env, "plat");
        assert_eq!(img.config["architecture"], json!(oci_arch()));
        assert_eq!(img.config["os"], json!("linux"));
        let foreign = if oci_arch() == "s390x" { "linux/ppc64le" } else { "linux/s390x" };
        build(&env, &["-t", "foreign", "--platform", foreign], &ctx).failure().says_why();
    }
}

both! {
    /// `--pull=never` and `--pull=missing` build from the local image;
    /// `--pull=never` with a base that is not there fails (125) and says so.
    fn pull_policies(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "layers");
        build(&env, &["-t", "never", "--pull=never"], &ctx).success();
        build(&env, &["-t", "missing", "--pull=missing"], &ctx).success();
        let file = env.write_file("nosuch.containerfile", "FROM nosuch-image-casco-test\nRUN true\n");
        build(&env, &["--pull=never", "-f", &file.to_string_lossy()], &ctx).code(125).says_why();
    }
}

// ---------------------------------------------------------------------------
// RUN options: secrets, mounts, network, volumes, capabilities
// ---------------------------------------------------------------------------

both! {
    /// `--secret id=token,src=F` + `RUN --mount=type=secret,id=token`: the RUN
    /// reads it at /run/secrets/token (or a `target=`), and it is in no layer,
    /// not in the config and not left at its mount point.
    fn secret_mount(env) {
        env.import_busybox("busybox");
        let p = prepare(&env, "secret");
        let out = build(&env, &p.with(&["-t", "sec"]), &p.ctx).success();
        assert!(out.stdout.contains(SECRET), "{}", out.report("the RUN could not cat the secret"));
        assert_eq!(sh(&env, "sec", "cat /secret-len /secret-ok /secret-gone"), "18\nok\ngone\n");
        let img = casco_image(&env, "sec");
        assert!(!img.layers_contain(SECRET.as_bytes()), "the secret is in a layer");
        assert!(!img.config.to_string().contains(SECRET), "the secret is in the config");
        for (path, e) in img.all_entries() {
            assert!(
                !(e.kind == "file" && e.size > 0 && (path.ends_with("secrets/token") || path == "custom/token")),
                "{path} left in a layer: {e}"
            );
        }
    }
}

both! {
    /// `RUN --mount=type=cache` keeps its content between builds (and out of
    /// the image); `type=bind` mounts a context file or the whole context.
    fn cache_and_bind_mounts(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "mounts");
        build(&env, &["-t", "m1"], &ctx).success();
        assert_eq!(
            sh(&env, "m1", "cat /cache-count /from-bind.txt /from-ctx-bind.txt; ls /var/cache/test 2>/dev/null | wc -l"),
            "1\nbound file\nbound file\n0\n"
        );
        build(&env, &["-t", "m2", "--no-cache"], &ctx).success();
        assert_eq!(sh(&env, "m2", "cat /cache-count"), "2\n", "the cache mount kept the first build's file");
        let img = casco_image(&env, "m2");
        for (path, e) in img.all_entries() {
            assert!(path != "var/cache/test/runs", "the cache mount's content is in a layer: {e}");
            assert!(
                !(e.kind == "file" && e.size > 0 && (path == "mnt/bound.txt" || path.starts_with("ctx/"))),
                "a bind mount's content is in a layer: {path} {e}"
            );
        }
    }
}

/// Interface names in /proc/net/dev of this (the host's) network namespace.
fn host_netdevs() -> BTreeSet<String> {
    let text = fs::read_to_string("/proc/net/dev").expect("read /proc/net/dev");
    text.lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_string())
        .collect()
}

/// Whether capability `bit` is set in a `CapEff:\t<hex>` line.
fn has_cap(capeff: &str, bit: u32) -> bool {
    let hex = capeff.trim().rsplit(['\t', ' ']).next().unwrap_or_default();
    u64::from_str_radix(hex, 16).is_ok_and(|v| v & (1 << bit) != 0)
}

both! {
    /// `--network none`: RUN sees only lo; `-v HOST:CTR`: RUN reads the host
    /// directory, which is not committed; `--cap-add NET_ADMIN`: RUN has it.
    fn network_none_volume_cap_add(env) {
        env.import_busybox("busybox");
        let p = prepare(&env, "runopts");
        build(&env, &p.with(&["-t", "ro", "--network", "none"]), &p.ctx).success();
        assert_eq!(sh(&env, "ro", "cat /netdevs /from-volume"), "lo\nhost content\n");
        let capeff = sh(&env, "ro", "cat /capeff");
        assert!(has_cap(&capeff, 12), "CAP_NET_ADMIN (12) missing: {capeff}");
        for (path, e) in casco_image(&env, "ro").all_entries() {
            assert!(!path.starts_with("hostdir/"), "the -v volume's content is in a layer: {path} {e}");
        }
    }
}

both! {
    /// `--network host`: RUN sees the host's interfaces.
    fn network_host(env) {
        env.import_busybox("busybox");
        let p = prepare(&env, "runopts");
        // Other tests add and remove interfaces meanwhile: those present before
        // and after the build must all be seen, and nothing else but them.
        let before = host_netdevs();
        build(&env, &p.with(&["-t", "rh", "--network", "host"]), &p.ctx).success();
        let after = host_netdevs();
        let seen: BTreeSet<String> = sh(&env, "rh", "cat /netdevs").lines().map(String::from).collect();
        let stable: BTreeSet<String> = before.intersection(&after).cloned().collect();
        assert!(seen.is_superset(&stable), "RUN saw {seen:?}; the host has {stable:?}");
        assert!(seen.len() > 1, "RUN saw only {seen:?}: not the host's network");
    }
}

// ---------------------------------------------------------------------------
// The layer cache
// ---------------------------------------------------------------------------

both! {
    /// The cache case (FROM, RUN, COPY first, RUN, COPY second, RUN, COPY ., ENV;
    /// .containerignore lists ignored.txt): a rebuild with nothing changed uses
    /// the cache for every step, gives the same image ID and adds no layer;
    /// touching only a file's mtime or changing an ignored file invalidates
    /// nothing; changing second.txt's content rebuilds exactly from its COPY on.
    fn cache_hits_and_misses(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "cache");
        let first = build(&env, &["-t", "c"], &ctx).success();
        assert_eq!(cache_hits(&first), 0, "{}", first.report("a first build with cache hits"));
        let id = image_id(&first);
        let layers = layer_dirs(&env);

        let again = build(&env, &["-t", "c"], &ctx).success();
        assert_eq!(cache_hits(&again), 7, "{}", again.report("unchanged: every step after FROM cached"));
        assert_eq!(image_id(&again), id, "unchanged: same image");
        assert_eq!(layer_dirs(&env), layers, "unchanged: no new layer");

        env.host("touch", ["-d", "2001-02-03 04:05:06"]).arg(ctx.join("first.txt")).run().success();
        let touched = build(&env, &["-t", "c"], &ctx).success();
        assert_eq!(cache_hits(&touched), 7, "{}", touched.report("mtime only: everything cached"));
        assert_eq!(image_id(&touched), id);

        env.write_file("cache/ignored.txt", "ignored v2, longer\n");
        let ignored = build(&env, &["-t", "c"], &ctx).success();
        assert_eq!(cache_hits(&ignored), 7, "{}", ignored.report("ignored file changed: everything cached"));
        assert_eq!(image_id(&ignored), id);
        assert_eq!(layer_dirs(&env), layers, "no new layer");

        env.write_file("cache/second.txt", "second v2\n");
        let changed = build(&env, &["-t", "c"], &ctx).success();
        let hits: Vec<bool> = cached_steps(&changed).into_iter().skip(1).map(|(_, hit)| hit).collect();
        assert_eq!(
            hits,
            [true, true, true, false, false, false, false],
            "{}",
            changed.report("second.txt changed: steps 2-4 cached, 5-8 rebuilt")
        );
        assert_ne!(image_id(&changed), id);
        assert_eq!(sh(&env, "c", "cat /s6 /all/second.txt"), "second v2\nsecond v2\n");
    }
}

both! {
    /// `--no-cache` runs every step again (and the next plain build can use
    /// what it made).
    fn no_cache_rebuilds_everything(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "cache");
        build(&env, &["-t", "c"], &ctx).success();
        let out = build(&env, &["-t", "c", "--no-cache"], &ctx).success();
        let steps = cached_steps(&out);
        assert_eq!(steps.len(), 8, "{}", out.report("8 steps"));
        assert_eq!(cache_hits(&out), 0, "{}", out.report("--no-cache used the cache"));
        let arrows = out.lines().iter().filter(|l| l.starts_with("--> ")).count();
        assert_eq!(arrows, 7, "{}", out.report("a `--> ID` for each rebuilt step"));
    }
}

// ---------------------------------------------------------------------------
// Hostile contexts and bad Containerfiles
// ---------------------------------------------------------------------------

/// Whether any regular file in the image has the same content as `host`.
fn holds_copy_of(img: &Image, host: &Path) -> bool {
    let data = fs::read(host).unwrap_or_else(|e| panic!("read {}: {e}", host.display()));
    let sha: String = Sha256::digest(&data)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    img.all_entries().values().any(|e| e.kind == "file" && e.sha == sha)
}

both! {
    /// A context with `etc-link -> /etc` and `passwd-link -> /etc/passwd`:
    /// `COPY .` and COPY naming the links give symlinks in the image; nothing of
    /// the host's /etc gets in.
    fn context_symlinks_stay_links(env) {
        env.import_busybox("busybox");
        let p = prepare(&env, "hostile-context-symlink");
        build(&env, &["-t", "links"], &p.ctx).success();
        let img = casco_image(&env, "links");
        assert!(!holds_copy_of(&img, Path::new("/etc/passwd")), "the host's /etc/passwd is in the image");
        assert!(img.all_entries().keys().all(|k| !k.starts_with("ctx/etc-link/")), "/etc was followed");
        assert_eq!(sh(&env, "links", "readlink /ctx/etc-link; readlink /ctx/passwd-link"), "/etc\n/etc/passwd\n");

        let direct = p.ctx.join("Containerfile.direct");
        let out = build(&env, &["-t", "direct", "-f", &direct.to_string_lossy()], &p.ctx);
        if out.status == 0 {
            let img = casco_image(&env, "direct");
            assert!(!holds_copy_of(&img, Path::new("/etc/passwd")), "the host's /etc/passwd is in the image");
            assert!(img.all_entries().keys().all(|k| !k.starts_with("etc-link/")), "/etc was followed");
        }
        // Deliberate: buildah 1.28 refuses `COPY etc-link /etc-link` (it
        // resolves the link inside the context: "lstat /etc: no such file");
        // casco copies the link as a link, as the issue asks.
        out.success();
        assert_eq!(sh(&env, "direct", "readlink /etc-link; readlink /passwd-link; cat /etc/passwd"), format!("/etc\n/etc/passwd\n{BUSYBOX_PASSWD}"));
    }
}

both! {
    /// COPY into a directory that is, in the image, an absolute or relative
    /// symlink to /etc lands in the image's /etc; the host's /etc is untouched.
    fn copy_through_image_symlink(env) {
        let host_file = Path::new("/etc/casco-build-test-payload.txt");
        let host_sub = Path::new("/etc/sub/casco-build-test-payload.txt");
        assert!(!host_file.exists() && !host_sub.exists(), "leftover {} on the host: remove it", host_file.display());
        env.import_busybox("busybox");
        let ctx = context(&env, "hostile-image-symlink");
        build(&env, &["-t", "through"], &ctx).success();
        assert!(!host_file.exists(), "COPY wrote {} on the host", host_file.display());
        assert!(!host_sub.exists(), "COPY wrote {} on the host", host_sub.display());
        assert_eq!(
            sh(&env, "through", "cat /etc/casco-build-test-payload.txt /etc/sub/casco-build-test-payload.txt; readlink /abs-link"),
            "payload\npayload\n/etc\n"
        );
    }
}

both! {
    /// `COPY ../outside.txt /` and `ADD ../outside.txt /` are refused (125)
    /// with a message naming the path and the context; no image is made.
    fn parent_of_context_refused(env) {
        env.import_busybox("busybox");
        let p = prepare(&env, "hostile-parent");
        for file in ["Containerfile", "Containerfile.add"] {
            let f = p.ctx.join(file);
            let out = build(&env, &["-t", "escaped", "-f", &f.to_string_lossy()], &p.ctx).code(125).says_why();
            assert!(
                out.stderr.contains("outside.txt") && out.stderr.to_lowercase().contains("context"),
                "{}",
                out.report("the error names neither the path nor the context")
            );
            env.casco(["image", "inspect", "escaped"]).run().failure();
        }
    }
}

both! {
    /// Containerfile errors exit 125 with `Error: FILE:LINE: ...`: an unknown
    /// instruction, an instruction before FROM, an unknown flag, an unterminated
    /// heredoc; a file without instructions is refused too.
    fn parse_errors_name_file_and_line(env) {
        env.import_busybox("busybox");
        let ctx = context(&env, "errors");
        for (file, line) in [
            ("Containerfile.unknown", 3),
            ("Containerfile.nofrom", 2),
            ("Containerfile.badflag", 2),
            ("Containerfile.heredoc", 3),
        ] {
            let f = ctx.join(file);
            let out = build(&env, &["-f", &f.to_string_lossy()], &ctx).code(125);
            let want = format!("{}:{line}:", f.display());
            assert!(
                out.stderr.lines().any(|l| l.starts_with("Error: ") && l.contains(&want)),
                "{}",
                out.report(&format!("no `Error: {want} ...` line"))
            );
        }
        let f = ctx.join("Containerfile.empty");
        build(&env, &["-f", &f.to_string_lossy()], &ctx).code(125).says_why();
    }
}

// ---------------------------------------------------------------------------
// Against buildah (root only: buildah rootless is not what is compared)
// ---------------------------------------------------------------------------

/// Metadata instructions in docker format (where buildah keeps HEALTHCHECK).
#[test]
fn metadata_like_buildah() {
    assert_like_buildah("metadata", &["--format", "docker"], &[]);
}

/// The same in OCI format, HEALTHCHECK aside: buildah drops it there with a
/// warning; BuildKit keeps it, and casco may.
#[test]
fn metadata_oci_like_buildah() {
    let env = TestEnv::root();
    env.import_busybox("busybox");
    let b = Buildah::new(&env);
    let p = prepare(&env, "metadata");
    let (mut c, bi) = build_both(&env, &b, "metadata", &p, &[]);
    if let Some(cfg) = c.config["config"].as_object_mut() {
        cfg.remove("Healthcheck");
    }
    assert_no_differences("metadata (OCI)", &compare(&c, &bi, &[]));
}

#[test]
fn expand_like_buildah() {
    assert_like_buildah("expand", &[], &[]);
}

/// RUN forms and SHELL, in docker format (buildah ignores SHELL in OCI).
#[test]
fn run_like_buildah() {
    assert_like_buildah_except(
        "run",
        &["--format", "docker"],
        &[],
        &[(
            "config.Cmd",
            "a shell-form CMD after SHELL runs through that shell (Docker's documented rule); \
             buildah 1.28 ignores SHELL there",
        )],
    );
}

#[test]
fn args_like_buildah() {
    assert_like_buildah(
        "args",
        &[
            "--build-arg",
            "WHO=cli",
            "--build-arg",
            "FROMFILE=x",
            "--build-arg",
            "HTTP_PROXY=http://proxy.invalid:3128",
        ],
        &[],
    );
}

#[test]
fn stages_like_buildah() {
    assert_like_buildah("stages", &[], &[]);
}

#[test]
fn stages_target_like_buildah() {
    assert_like_buildah("stages", &["--target", "middle"], &[]);
}

#[test]
fn copy_like_buildah() {
    assert_like_buildah("copy", &[], &[]);
}

#[test]
fn add_like_buildah() {
    assert_like_buildah("add", &[], &[]);
}

/// ONBUILD parent and child, docker format.
#[test]
fn onbuild_like_buildah() {
    let env = TestEnv::root();
    env.import_busybox("busybox");
    let b = Buildah::new(&env);
    let p = prepare(&env, "onbuild");
    let parent = p.ctx.join("Containerfile").display().to_string();
    let child = p.ctx.join("Containerfile.child").display().to_string();
    let (c, bi) = build_both(&env, &b, "onbuild-parent", &p, &["--format", "docker", "-f", &parent]);
    assert_no_differences("onbuild parent", &compare(&c, &bi, &[]));
    let (c, bi) = build_both(&env, &b, "onbuild-child", &p, &["--format", "docker", "-f", &child]);
    assert_no_differences("onbuild child", &compare(&c, &bi, &[]));
}

#[test]
fn escape_like_buildah() {
    assert_like_buildah_except(
        "escape",
        &[],
        &[],
        &[(
            "config.Env",
            "with `# escape=`` a backslash is an ordinary character (BuildKit keeps C:\\dir\\file); \
             buildah 1.28 drops the backslashes",
        )],
    );
}

#[test]
fn containerignore_like_buildah() {
    assert_like_buildah("ignore", &[], &[]);
}

#[test]
fn dockerignore_like_buildah() {
    assert_like_buildah("ignore-docker", &[], &[]);
}

/// buildah leaves the `target=` mount point (`custom`) in the layer.
#[test]
fn secret_like_buildah() {
    assert_like_buildah_except(
        "secret",
        &[],
        &["custom"],
        &[(
            "layer 2: tmp: only casco has it",
            "`cp /custom/token /tmp/copy && rm /tmp/copy` leaves /tmp in the overlay upper \
             directory (copied up, its mtime changed), so the layer records the directory; \
             buildah's vfs diff leaves it out. The image's files are the same",
        )],
    );
}

/// buildah leaves the mount points (`var`, `var/cache`, `mnt`) in the layers.
#[test]
fn mounts_like_buildah() {
    assert_like_buildah("mounts", &[], &["var", "var/cache", "var/cache/test", "mnt", "ctx"]);
}

/// buildah leaves the `-v` destination (`hostdir`) in the layer.
#[test]
fn runopts_like_buildah() {
    assert_like_buildah("runopts", &["--network", "none"], &["hostdir"]);
}

#[test]
fn layers_like_buildah() {
    assert_like_buildah("layers", &[], &[]);
}

#[test]
fn label_annotation_like_buildah() {
    assert_like_buildah(
        "layers",
        &[
            "--label",
            "extra=yes",
            "--label",
            "fromfile=overridden",
            "--annotation",
            "org.example.note=hi",
        ],
        &[],
    );
}

#[test]
fn format_docker_like_buildah() {
    assert_like_buildah("layers", &["--format", "docker"], &[]);
}

#[test]
fn layers_false_like_buildah() {
    assert_like_buildah("layers", &["--layers=false"], &[]);
}

#[test]
fn cache_case_like_buildah() {
    assert_like_buildah("cache", &[], &[]);
}

#[test]
fn context_symlinks_like_buildah() {
    assert_like_buildah("hostile-context-symlink", &[], &[]);
}

#[test]
fn image_symlink_like_buildah() {
    assert_like_buildah("hostile-image-symlink", &[], &[]);
}

#[test]
fn dockerfile_default_like_buildah() {
    assert_like_buildah("dockerfile-default", &[], &[]);
}

#[test]
fn platform_like_buildah() {
    assert_like_buildah("platform", &[], &[]);
}

/// The comparison itself: two identical images do not differ, and each kind
/// of difference is found (so a passing `*_like_buildah` means something).
#[test]
fn comparison_finds_differences() {
    let entry = |sha: &str| Entry {
        kind: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 2,
        link: String::new(),
        sha: sha.to_string(),
    };
    let make = |cmd: &str, label: &str, sha: &str, extra: Option<&str>| {
        let mut layer = BTreeMap::from([("a".to_string(), entry(sha))]);
        if let Some(p) = extra {
            layer.insert(
                p.to_string(),
                Entry {
                    kind: "dir",
                    mode: 0o755,
                    size: 0,
                    sha: String::new(),
                    ..entry("")
                },
            );
        }
        Image {
            manifest: json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {}}),
            config: json!({
                "created": cmd,
                "architecture": "amd64",
                "config": {"Cmd": [cmd], "Labels": {"io.buildah.version": label}},
                "history": [{"created_by": "/bin/sh -c #(nop) COPY file:".to_string() + &"ab".repeat(32) + " in /", "comment": label}]
            }),
            layers: vec![layer],
            blobs: Vec::new(),
        }
    };
    let a = make("x", "1", "aaaa", None);
    assert_eq!(
        compare(&a, &make("x", "2", "aaaa", Some("run")), &[]),
        Vec::<String>::new()
    );
    assert_eq!(
        compare(&a, &make("x", "2", "aaaa", Some("mnt")), &["mnt"]),
        Vec::<String>::new()
    );
    let d = compare(&a, &make("y", "1", "bbbb", Some("opt")), &[]);
    assert_eq!(d.len(), 3, "{d:#?}");
    assert!(d[0].starts_with("config.Cmd: "), "{d:#?}");
    assert!(d[1].starts_with("layer 0: a: "), "{d:#?}");
    assert!(d[2].starts_with("layer 0: opt: only buildah"), "{d:#?}");
    let mut b = make("x", "1", "aaaa", None);
    b.config["history"][0]["empty_layer"] = json!(true);
    b.config["architecture"] = json!("arm64");
    let d = compare(&a, &b, &[]);
    assert_eq!(d.len(), 2, "{d:#?}");
}

both! {
    /// A RUN layer holds what the command changed and nothing the runtime made
    /// to mount on (/etc/hosts, /etc/resolv.conf, /etc/hostname, --mount
    /// targets), on the overlay driver.
    fn run_layers_hold_only_the_commands_changes(env) {
        env.import_busybox("busybox");
        let ctx = env.mkdir("stubs");
        chmod(&ctx, 0o755);
        env.write_file("stubs/Containerfile", "FROM busybox\nRUN --mount=type=tmpfs,target=/scratch/tmp echo hi > /x\n");
        build(&env, &["-t", "stubs"], &ctx).success();
        env.casco(["diff", "stubs"]).run().success().stdout_is("A /x\n");
    }
}

both! {
    /// Builds work on a vfs store too: each step's changes are found by
    /// comparing the working container's copy with its layers, cached alike.
    fn vfs_store_builds_and_caches(env) {
        env.casco(["--storage-driver", "vfs", "info"]).run().success();
        env.import_busybox("busybox");
        let ctx = env.mkdir("vfs");
        chmod(&ctx, 0o755);
        env.write_file("vfs/Containerfile", "FROM busybox\nRUN echo hi > /x\nCOPY f /f\nCMD [\"cat\", \"/x\", \"/f\"]\n");
        env.write_file("vfs/f", "file\n");
        let first = build(&env, &["-t", "v"], &ctx).success();
        env.casco(["diff", "v"]).run().success().stdout_is("A /f\n");
        env.casco(["run", "--rm", "v"]).run().success().stdout_is("hi\nfile\n");
        let again = build(&env, &["-t", "v"], &ctx).success();
        assert_eq!(cache_hits(&again), 3, "{}", again.report("every step from the cache"));
        assert_eq!(image_id(&first), image_id(&again));
        let e = build(&env, &["--layers=false", "-t", "w"], &ctx).code(125);
        assert!(e.stderr.contains("overlay"), "{}", e.report("--layers=false on vfs says why"));
    }
}
