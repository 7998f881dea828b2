//! Manifests as registries serve them: the media types casco knows, parsing
//! of image manifests (OCI and Docker schema 2) and indexes (OCI index and
//! Docker manifest list), and picking a platform's entry from an index.
//!
//! Docker schema 2 JSON has the shape of OCI's, with other media types, so
//! both are read through oci-spec's types. Schema 1, foreign and encrypted
//! layers, and artifacts that are not container images are refused with a
//! message that says so.

use std::fmt;

use anyhow::{Context, Result, bail};
use oci_spec::image::{ImageIndex, ImageManifest as OciManifest};
use serde::Deserialize;

use crate::image::reference::validate_digest;

/// Largest manifest (or index) casco reads.
/// The Accept header of a manifest request: every manifest type casco reads.
pub const ACCEPT: &[&str] = &[OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest image config casco reads.
pub const MAX_CONFIG: u64 = 8 << 20;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// An uncompressed Docker layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Not in the Docker spec, but written by some tools for zstd layers in
/// schema 2 manifests; read like OCI's tar+zstd.
const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

const SCHEMA1_REFUSED: &str =
    "schema 1 manifests are deprecated and not supported: push the image again with a current client";

/// A reference to a blob or manifest: what it is, its digest, its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// An image manifest (OCI or Docker schema 2): the config and the layers,
/// bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// One manifest named by an index, with the platform it is for (entries
/// without one are kept: they are never selected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub descriptor: Descriptor,
    pub platform: Option<Platform>,
}

/// An OCI index or a Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub media_type: String,
    pub manifests: Vec<IndexEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Image(ImageManifest),
    Index(Index),
}

/// Just the fields that tell what a manifest is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

/// `application/json; charset=utf-8` → `application/json`.
fn bare(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn is_generic(ct: &str) -> bool {
    matches!(
        ct,
        "" | "application/json" | "text/plain" | "application/octet-stream" | "binary/octet-stream"
    )
}

/// The media type of a manifest: its own `mediaType` field (covered by its
/// digest) when it has one, else the Content-Type it was served with when
/// that is specific, else what its shape says (schema 1, index or image).
pub fn media_type_of(bytes: &[u8], content_type: &str) -> Result<String> {
    let probe: Probe = serde_json::from_slice(bytes).context("invalid manifest: not a JSON object")?;
    if let Some(mt) = probe.media_type.filter(|m| !m.is_empty()) {
        return Ok(mt);
    }
    let ct = bare(content_type);
    if !is_generic(ct) {
        return Ok(ct.to_string());
    }
    Ok(if probe.schema_version == Some(1) || probe.fs_layers.is_some() {
        DOCKER_SCHEMA1.to_string()
    } else if probe.manifests.is_some() {
        OCI_INDEX.to_string()
    } else if probe.config.is_some() || probe.layers.is_some() {
        OCI_MANIFEST.to_string()
    } else {
        bail!("invalid manifest: neither an image manifest nor an index")
    })
}

/// Layer media types casco can unpack.
fn known_layer(mt: &str) -> bool {
    matches!(
        mt,
        OCI_LAYER | OCI_LAYER_GZIP | OCI_LAYER_ZSTD | DOCKER_LAYER | DOCKER_LAYER_GZIP | DOCKER_LAYER_ZSTD
    )
}

fn check_layer(d: &Descriptor) -> Result<()> {
    if known_layer(&d.media_type) {
        return Ok(());
    }
    let mt = &d.media_type;
    if mt.contains("foreign") || mt.contains("nondistributable") {
        bail!(
            "layer {} is a foreign (non-distributable) layer ({mt}), which casco does not fetch",
            d.digest
        );
    }
    if mt.contains("+encrypted") {
        bail!(
            "layer {} is encrypted ({mt}); encrypted images are not supported",
            d.digest
        );
    }
    bail!("layer {} has an unknown media type {mt:?}", d.digest)
}

fn descriptor(mt: String, digest: String, size: u64, what: &str) -> Result<Descriptor> {
    validate_digest(&digest).with_context(|| format!("invalid manifest: {what}"))?;
    Ok(Descriptor {
        media_type: mt,
        digest,
        size,
    })
}

/// Parses a manifest served with `content_type`.
pub fn parse(bytes: &[u8], content_type: &str) -> Result<Parsed> {
    let mt = media_type_of(bytes, content_type)?;
    match mt.as_str() {
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => bail!("{SCHEMA1_REFUSED}"),
        OCI_INDEX | DOCKER_LIST => parse_index(bytes, mt),
        OCI_MANIFEST | DOCKER_MANIFEST => parse_image(bytes, mt),
        other => bail!("unsupported manifest media type {other:?}"),
    }
}

fn parse_image(bytes: &[u8], media_type: String) -> Result<Parsed> {
    let probe: Probe = serde_json::from_slice(bytes).context("invalid manifest")?;
    if probe.schema_version == Some(1) {
        bail!("{SCHEMA1_REFUSED}");
    }
    let m: OciManifest = serde_json::from_slice(bytes).context("invalid image manifest")?;
    let c = m.config();
    let config = descriptor(c.media_type().to_string(), c.digest().to_string(), c.size(), "config")?;
    if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
        bail!(
            "not a container image: the manifest's config has media type {:?} (an artifact, not an image)",
            config.media_type
        );
    }
    let mut layers = Vec::with_capacity(m.layers().len());
    for l in m.layers() {
        let d = descriptor(l.media_type().to_string(), l.digest().to_string(), l.size(), "layer")?;
        check_layer(&d)?;
        layers.push(d);
    }
    Ok(Parsed::Image(ImageManifest {
        media_type,
        config,
        layers,
    }))
}

fn parse_index(bytes: &[u8], media_type: String) -> Result<Parsed> {
    let idx: ImageIndex = serde_json::from_slice(bytes).context("invalid manifest list")?;
    let mut manifests = Vec::with_capacity(idx.manifests().len());
    for e in idx.manifests() {
        let d = descriptor(
            e.media_type().to_string(),
            e.digest().to_string(),
            e.size(),
            "manifest list entry",
        )?;
        let platform = e.platform().as_ref().map(|p| {
            Platform::normalized(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref(),
            )
        });
        manifests.push(IndexEntry {
            descriptor: d,
            platform,
        });
    }
    Ok(Parsed::Index(Index { media_type, manifests }))
}

/// An OS, architecture and variant, with Go's names (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    /// Parses `os/arch[/variant]` (architecture aliases such as x86_64 and
    /// aarch64 are taken).
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            bail!("invalid platform {s:?}: want OS/ARCH[/VARIANT], e.g. linux/arm64/v8");
        }
        Ok(Platform::normalized(parts[0], parts[1], parts.get(2).copied()))
    }

    /// Go's names for architecture aliases; the variant a bare arm64 or arm
    /// means (v8, v7).
    pub fn normalized(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        let os = os.to_ascii_lowercase();
        let arch = arch.to_ascii_lowercase();
        let mut variant = variant.filter(|v| !v.is_empty()).map(|v| v.to_ascii_lowercase());
        let arch = match arch.as_str() {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            "i386" | "i686" => "386".to_string(),
            "armhf" => {
                variant.get_or_insert_with(|| "v7".into());
                "arm".to_string()
            }
            "armel" => {
                variant.get_or_insert_with(|| "v6".into());
                "arm".to_string()
            }
            _ => arch,
        };
        if arch == "arm64" && variant.as_deref().is_none_or(|v| v == "8" || v == "v8") {
            variant = Some("v8".into());
        }
        if arch == "arm"
            && let Some(v) = &variant
            && !v.starts_with('v')
        {
            variant = Some(format!("v{v}"));
        }
        Platform {
            os,
            architecture: arch,
            variant,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The entry of `index` for `want`: the first with the same OS, architecture
/// and variant; else, for arm, the newest older variant the CPU also runs
/// (v7 runs v6 and v5); else, when `want` names no variant, the first with
/// the same OS and architecture.
pub fn select(index: &Index, want: &Platform) -> Result<Descriptor> {
    let want = Platform::normalized(&want.os, &want.architecture, want.variant.as_deref());
    let same_arch: Vec<(&IndexEntry, &Platform)> = index
        .manifests
        .iter()
        .filter_map(|e| e.platform.as_ref().map(|p| (e, p)))
        .filter(|(_, p)| p.os == want.os && p.architecture == want.architecture)
        .collect();
    if let Some((e, _)) = same_arch.iter().find(|(_, p)| p.variant == want.variant) {
        return Ok(e.descriptor.clone());
    }
    if want.architecture == "arm"
        && let Some(n) = want
            .variant
            .as_deref()
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|n| n.parse::<u32>().ok())
    {
        for lower in (5..n).rev() {
            let v = format!("v{lower}");
            if let Some((e, _)) = same_arch.iter().find(|(_, p)| p.variant.as_deref() == Some(v.as_str())) {
                return Ok(e.descriptor.clone());
            }
        }
    }
    if want.variant.is_none()
        && let Some((e, _)) = same_arch.first()
    {
        return Ok(e.descriptor.clone());
    }
    let offers: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|e| e.platform.as_ref().map(|p| p.to_string()))
        .collect();
    if offers.is_empty() {
        bail!("no image for {want} in the manifest list: it names no platforms");
    }
    bail!(
        "no image for {want} in the manifest list; it offers: {}",
        offers.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    fn image_json(mt: Option<&str>, layer_mt: &str) -> Vec<u8> {
        let mut v = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": DOCKER_CONFIG, "digest": d('a'), "size": 7023},
            "layers": [
                {"mediaType": layer_mt, "digest": d('b'), "size": 32654},
                {"mediaType": layer_mt, "digest": d('c'), "size": 16724},
            ],
        });
        if let Some(mt) = mt {
            v["mediaType"] = mt.into();
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn docker_schema2_manifest() {
        let bytes = image_json(Some(DOCKER_MANIFEST), DOCKER_LAYER_GZIP);
        let Parsed::Image(m) = parse(&bytes, DOCKER_MANIFEST).unwrap() else {
            panic!("not an image")
        };
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        assert_eq!(
            m.config,
            Descriptor {
                media_type: DOCKER_CONFIG.into(),
                digest: d('a'),
                size: 7023
            }
        );
        assert_eq!(m.layers.len(), 2);
        assert_eq!(
            m.layers[1],
            Descriptor {
                media_type: DOCKER_LAYER_GZIP.into(),
                digest: d('c'),
                size: 16724
            }
        );
    }

    #[test]
    fn media_type_field_wins_over_generic_content_type() {
        let bytes = image_json(Some(DOCKER_MANIFEST), DOCKER_LAYER_GZIP);
        for ct in ["", "application/json", "application/json; charset=utf-8"] {
            let Parsed::Image(m) = parse(&bytes, ct).unwrap() else {
                panic!("not an image")
            };
            assert_eq!(m.media_type, DOCKER_MANIFEST, "content type {ct:?}");
        }
        // No field: a specific content type is used, else the shape decides.
        let bare = image_json(None, OCI_LAYER_ZSTD);
        assert_eq!(media_type_of(&bare, DOCKER_MANIFEST).unwrap(), DOCKER_MANIFEST);
        assert_eq!(media_type_of(&bare, "application/json").unwrap(), OCI_MANIFEST);
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(media_type_of(idx, "").unwrap(), OCI_INDEX);
    }

    #[test]
    fn every_known_layer_type_is_accepted() {
        for mt in [
            OCI_LAYER,
            OCI_LAYER_GZIP,
            OCI_LAYER_ZSTD,
            DOCKER_LAYER,
            DOCKER_LAYER_GZIP,
        ] {
            let Parsed::Image(m) = parse(&image_json(Some(OCI_MANIFEST), mt), "").unwrap() else {
                panic!()
            };
            assert_eq!(m.layers[0].media_type, mt);
        }
    }

    #[test]
    fn schema1_is_refused_clearly() {
        let signed =
            br#"{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[{"blobSum":"sha256:00"}],"signatures":[]}"#;
        for ct in [DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1, "application/json", ""] {
            let err = parse(signed, ct).unwrap_err().to_string();
            assert!(err.contains("schema 1 manifests are deprecated"), "{ct}: {err}");
        }
    }

    #[test]
    fn foreign_encrypted_and_unknown_layers_are_refused() {
        let foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
        let err = parse(&image_json(Some(DOCKER_MANIFEST), foreign), "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("foreign") && err.contains(&d('b')), "{err}");
        let enc = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted";
        let err = parse(&image_json(Some(OCI_MANIFEST), enc), "").unwrap_err().to_string();
        assert!(err.contains("encrypted"), "{err}");
        let err = parse(&image_json(Some(OCI_MANIFEST), "text/plain"), "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown media type"), "{err}");
    }

    #[test]
    fn artifacts_and_bad_digests_are_refused() {
        let v = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": d('a'), "size": 1},
            "layers": [],
        });
        let err = parse(&serde_json::to_vec(&v).unwrap(), "").unwrap_err().to_string();
        assert!(err.contains("not a container image"), "{err}");
        let v = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": "sha512:".to_string() + &"a".repeat(128), "size": 1},
            "layers": [],
        });
        assert!(parse(&serde_json::to_vec(&v).unwrap(), "").is_err());
        assert!(parse(b"not json", OCI_MANIFEST).is_err());
        assert!(parse(br#"{"mediaType":"application/vnd.example+json"}"#, "").is_err());
    }

    fn index() -> Index {
        let v = serde_json::json!({
            "schemaVersion": 2, "mediaType": DOCKER_LIST,
            "manifests": [
                {"mediaType": DOCKER_MANIFEST, "digest": d('1'), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": DOCKER_MANIFEST, "digest": d('2'), "size": 2, "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
                {"mediaType": DOCKER_MANIFEST, "digest": d('3'), "size": 3, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
                {"mediaType": DOCKER_MANIFEST, "digest": d('4'), "size": 4, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": DOCKER_MANIFEST, "digest": d('5'), "size": 5, "platform": {"os": "windows", "architecture": "amd64"}},
                {"mediaType": OCI_MANIFEST, "digest": d('6'), "size": 6, "platform": {"os": "unknown", "architecture": "unknown"}},
            ],
        });
        let Parsed::Index(i) = parse(&serde_json::to_vec(&v).unwrap(), DOCKER_LIST).unwrap() else {
            panic!()
        };
        i
    }

    #[test]
    fn index_parsing_keeps_platforms() {
        let i = index();
        assert_eq!(i.media_type, DOCKER_LIST);
        assert_eq!(i.manifests.len(), 6);
        assert_eq!(i.manifests[2].platform, Some(Platform::parse("linux/arm/v7").unwrap()));
        assert_eq!(i.manifests[1].descriptor.size, 2);
    }

    #[test]
    fn select_picks_the_platform() {
        let i = index();
        let pick = |p: &str| select(&i, &Platform::parse(p).unwrap()).map(|d| d.digest);
        assert_eq!(pick("linux/amd64").unwrap(), d('1'));
        assert_eq!(pick("linux/arm/v6").unwrap(), d('2'));
        assert_eq!(pick("linux/arm/v7").unwrap(), d('3'));
        // arm64 with or without v8 is the same platform.
        assert_eq!(pick("linux/arm64").unwrap(), d('4'));
        assert_eq!(pick("linux/aarch64/v8").unwrap(), d('4'));
        // An older arm variant runs on a newer CPU; no variant takes the first.
        assert_eq!(pick("linux/arm/v8").unwrap(), d('3'));
        assert_eq!(pick("linux/arm").unwrap(), d('2'));
        assert_eq!(pick("windows/amd64").unwrap(), d('5'));
        let err = pick("linux/s390x").unwrap_err().to_string();
        assert!(
            err.contains("linux/s390x") && err.contains("linux/amd64, linux/arm/v6"),
            "{err}"
        );
        // A variant that nothing offers is not silently replaced.
        assert!(pick("linux/arm/v5").is_err());
    }

    #[test]
    fn platform_parse_and_display() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(
            p,
            Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: Some("v8".into())
            }
        );
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(Platform::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/armhf").unwrap().to_string(), "linux/arm/v7");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        let h = Platform::host();
        assert_eq!(h.os, std::env::consts::OS);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.to_string(), "linux/amd64");
        }
    }
}
