//! Images made by hand for the registry tests: layer tars written header by
//! header (whiteouts, `..` names), compressed with gzip or zstd or left
//! plain; OCI configs, manifests and indexes; OCI image layouts on disk that
//! skopeo copies into a registry or an archive. Every digest is computed
//! here, so a test knows the image ID (the config digest) a pull must give.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MT_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The mtime of every hand-made tar entry and the `created` of every config.
const MTIME: u64 = 1_700_000_000;
const CREATED: &str = "2023-11-14T22:13:20Z";

/// `sha256:<hex>` of some bytes.
pub fn sha256(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The hex part of a `sha256:<hex>` digest.
pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

// ---------------------------------------------------------------------------
// Tar archives, byte by byte
// ---------------------------------------------------------------------------

/// One entry of a hand-made tar archive.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The name exactly as it goes into the header (may hold `..` or `.wh.`).
    pub name: String,
    /// ustar typeflag: b'0' file, b'1' hardlink, b'2' symlink, b'5' directory.
    pub kind: u8,
    pub link: String,
    pub mode: u32,
    pub data: Vec<u8>,
    /// Device major and minor (kind b'3' or b'4').
    pub dev: (u64, u64),
}

impl Entry {
    pub fn file(name: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry {
            name: name.into(),
            kind: b'0',
            link: String::new(),
            mode: 0o644,
            data: data.into(),
            dev: (0, 0),
        }
    }
    pub fn dir(name: &str) -> Entry {
        Entry {
            name: name.into(),
            kind: b'5',
            link: String::new(),
            mode: 0o755,
            data: Vec::new(),
            dev: (0, 0),
        }
    }
    pub fn symlink(name: &str, target: &str) -> Entry {
        Entry {
            name: name.into(),
            kind: b'2',
            link: target.into(),
            mode: 0o777,
            data: Vec::new(),
            dev: (0, 0),
        }
    }
    pub fn hardlink(name: &str, target: &str) -> Entry {
        Entry {
            name: name.into(),
            kind: b'1',
            link: target.into(),
            mode: 0o644,
            data: Vec::new(),
            dev: (0, 0),
        }
    }
    /// A character device node.
    pub fn chardev(name: &str, major: u64, minor: u64) -> Entry {
        Entry {
            name: name.into(),
            kind: b'3',
            link: String::new(),
            mode: 0o666,
            data: Vec::new(),
            dev: (major, minor),
        }
    }
    /// A regular file with this mode (setuid bits and all).
    pub fn file_mode(name: &str, mode: u32, data: impl Into<Vec<u8>>) -> Entry {
        Entry {
            mode,
            ..Entry::file(name, data)
        }
    }
    /// An OCI whiteout for `path` (`dir/.wh.name`): deletes it from the layers below.
    pub fn whiteout(path: &str) -> Entry {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        Entry::file(&wh, Vec::new())
    }
    /// The OCI opaque marker for `dir`: hides everything the layers below put in it.
    pub fn opaque(dir: &str) -> Entry {
        Entry::file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), Vec::new())
    }
}

/// Writes `value` as zero-padded octal into `field`, leaving the last byte NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

/// A ustar archive whose headers are written byte by byte (the tar crate
/// refuses names with `..`, which the hostile layers need). Owner 0:0.
pub fn raw_tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        assert!(
            e.name.len() < 100 && e.link.len() < 100,
            "tar names must fit the v7 fields: {e:?}"
        );
        let mut h = [0u8; 512];
        h[..e.name.len()].copy_from_slice(e.name.as_bytes());
        octal(&mut h[100..108], u64::from(e.mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], e.data.len() as u64);
        octal(&mut h[136..148], MTIME);
        h[156] = e.kind;
        h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], e.dev.0);
        octal(&mut h[337..345], e.dev.1);
        // The checksum is computed with its own field as eight spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&e.data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

// ---------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// gzip with stored (uncompressed) deflate blocks: the output's length
/// depends only on the input's, so two inputs of one length give two valid
/// blobs of one length.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(data), &mut out).expect("gunzip");
    out
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd")
}

pub const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
pub const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The uncompressed tar of a layer blob, whatever its compression.
pub fn decompress(blob: &[u8]) -> Vec<u8> {
    if blob.starts_with(GZIP_MAGIC) {
        gunzip(blob)
    } else if blob.starts_with(ZSTD_MAGIC) {
        zstd::decode_all(blob).expect("unzstd")
    } else {
        blob.to_vec()
    }
}

// ---------------------------------------------------------------------------
// Layers, images, indexes
// ---------------------------------------------------------------------------

/// A layer blob with its media type and the digest of its uncompressed tar.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: &'static str,
    pub blob: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    pub fn gzip(tar: &[u8]) -> Layer {
        Layer {
            media_type: MT_LAYER_GZIP,
            blob: gzip(tar),
            diff_id: sha256(tar),
        }
    }
    pub fn zstd(tar: &[u8]) -> Layer {
        Layer {
            media_type: MT_LAYER_ZSTD,
            blob: zstd(tar),
            diff_id: sha256(tar),
        }
    }
    pub fn plain(tar: &[u8]) -> Layer {
        Layer {
            media_type: MT_LAYER_TAR,
            blob: tar.to_vec(),
            diff_id: sha256(tar),
        }
    }
    pub fn digest(&self) -> String {
        sha256(&self.blob)
    }
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest(), "size": self.blob.len()})
    }
}

/// The busybox rootfs of the harness (`busybox_tar()`) as one gzip layer,
/// compressed once per test process.
pub fn busybox_layer() -> Layer {
    use std::sync::OnceLock;
    static LAYER: OnceLock<Layer> = OnceLock::new();
    LAYER
        .get_or_init(|| {
            let tar = fs::read(crate::common::busybox_tar()).expect("read the busybox tarball");
            Layer::gzip(&tar)
        })
        .clone()
}

/// An OCI image: its layers, config and manifest, all as bytes.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub arch: String,
}

impl Image {
    /// A linux/`arch` image of `layers` whose default command is `cmd`;
    /// `label` goes into the config's labels (different labels, different IDs).
    pub fn new(arch: &str, layers: Vec<Layer>, cmd: &[&str], label: &str) -> Image {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        let history: Vec<Value> = (0..layers.len())
            .map(|i| json!({"created": CREATED, "created_by": format!("casco registry test, layer {i}")}))
            .collect();
        let config = json!({
            "created": CREATED,
            "architecture": arch,
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": cmd,
                "Labels": {"casco.test": label},
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        let config = serde_json::to_vec(&config).expect("serialize a config");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": layers.iter().map(Layer::descriptor).collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec(&manifest).expect("serialize a manifest");
        Image {
            layers,
            config,
            manifest,
            arch: arch.to_string(),
        }
    }

    /// The busybox rootfs as one gzip layer, for this machine's architecture.
    pub fn busybox(label: &str) -> Image {
        Image::new(crate::common::oci_arch(), vec![busybox_layer()], &["sh"], label)
    }

    /// busybox plus one layer with `files` (path, contents) on top.
    pub fn busybox_with(label: &str, files: &[(&str, &str)]) -> Image {
        let mut entries = Vec::new();
        for (path, data) in files {
            let mut dir = String::new();
            for part in path
                .split('/')
                .collect::<Vec<_>>()
                .split_last()
                .map_or(&[][..], |(_, d)| d)
            {
                dir.push_str(part);
                dir.push('/');
                entries.push(Entry::dir(&dir));
            }
            entries.push(Entry::file(path, data.as_bytes()));
        }
        let top = Layer::gzip(&raw_tar(&entries));
        Image::new(crate::common::oci_arch(), vec![busybox_layer(), top], &["sh"], label)
    }

    pub fn config_digest(&self) -> String {
        sha256(&self.config)
    }

    /// The image ID podman and casco show: the config digest's hex.
    pub fn id(&self) -> String {
        hex(&self.config_digest()).to_string()
    }

    pub fn manifest_digest(&self) -> String {
        sha256(&self.manifest)
    }

    /// The manifest's descriptor, with the platform for an index.
    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": MT_OCI_MANIFEST,
            "digest": self.manifest_digest(),
            "size": self.manifest.len(),
            "platform": {"architecture": self.arch, "os": "linux"},
        })
    }

    /// Every blob: layers, config, manifest.
    fn blobs(&self) -> Vec<&[u8]> {
        let mut b: Vec<&[u8]> = self.layers.iter().map(|l| l.blob.as_slice()).collect();
        b.push(&self.config);
        b.push(&self.manifest);
        b
    }
}

/// An OCI index (manifest list) over `images`, as bytes.
pub fn index_of(images: &[&Image]) -> Vec<u8> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": images.iter().map(|i| i.descriptor()).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&index).expect("serialize an index")
}

fn write_blob(layout: &Path, data: &[u8]) {
    let p = layout.join("blobs/sha256").join(hex(&sha256(data)));
    fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

fn start_layout(layout: &Path) {
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap_or_else(|e| panic!("create {}: {e}", layout.display()));
    fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
}

fn write_index_json(layout: &Path, refs: &[(Value, &str)]) {
    let manifests: Vec<Value> = refs
        .iter()
        .map(|(desc, tag)| {
            let mut d = desc.clone();
            if let Some(o) = d.as_object_mut() {
                o.remove("platform");
                o.insert("annotations".into(), json!({"org.opencontainers.image.ref.name": tag}));
            }
            d
        })
        .collect();
    let index = json!({"schemaVersion": 2, "manifests": manifests});
    fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).expect("write index.json");
}

/// Writes an OCI image layout at `layout` holding each image under its tag
/// (`oci:LAYOUT:TAG` for skopeo).
pub fn write_layout(layout: &Path, images: &[(&Image, &str)]) {
    start_layout(layout);
    for (img, _) in images {
        for b in img.blobs() {
            write_blob(layout, b);
        }
    }
    write_index_json(
        layout,
        &images.iter().map(|(i, t)| (i.descriptor(), *t)).collect::<Vec<_>>(),
    );
}

/// Writes an OCI image layout whose tag `tag` is an index over `images`
/// (copy it with `skopeo copy --all`). Returns the index's bytes.
pub fn write_index_layout(layout: &Path, tag: &str, images: &[&Image]) -> Vec<u8> {
    start_layout(layout);
    for img in images {
        for b in img.blobs() {
            write_blob(layout, b);
        }
    }
    let index = index_of(images);
    write_blob(layout, &index);
    let desc = json!({"mediaType": MT_OCI_INDEX, "digest": sha256(&index), "size": index.len()});
    write_index_json(layout, &[(desc, tag)]);
    index
}

/// Reads an OCI layout back: the manifest tagged `tag` (or the only one),
/// and the config it names. Panics with the layout's index.json on trouble.
pub fn read_layout(layout: &Path, tag: Option<&str>) -> (Value, Value) {
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).expect("read index.json"))
        .expect("index.json is JSON");
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let desc = match tag {
        Some(t) => manifests
            .iter()
            .find(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .is_some_and(|n| n == t || n.ends_with(&format!(":{t}")))
            })
            .cloned(),
        None if manifests.len() == 1 => Some(manifests[0].clone()),
        None => None,
    }
    .unwrap_or_else(|| panic!("no manifest for {tag:?} in {}: {index}", layout.display()));
    let blob = |d: &Value| -> Vec<u8> {
        let digest = d["digest"].as_str().unwrap_or_default();
        let p = layout.join("blobs/sha256").join(hex(digest));
        let data = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        assert_eq!(sha256(&data), digest, "{} does not match its digest", p.display());
        data
    };
    let manifest: Value = serde_json::from_slice(&blob(&desc)).expect("manifest is JSON");
    let config: Value = serde_json::from_slice(&blob(&manifest["config"])).expect("config is JSON");
    (manifest, config)
}

/// The blob `digest` of an OCI layout.
pub fn layout_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let p = layout.join("blobs/sha256").join(hex(digest));
    fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteout_names() {
        assert_eq!(Entry::whiteout("a/b/c").name, "a/b/.wh.c");
        assert_eq!(Entry::whiteout("top").name, ".wh.top");
        assert_eq!(Entry::opaque("a/b/").name, "a/b/.wh..wh..opq");
    }
}
